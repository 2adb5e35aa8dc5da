"""Champion and challenger: the new model replaces the old only when it does better out of sample."""

from __future__ import annotations

import math

from binance_cluster.errors import ConfigError

METRICS = {"auc": True, "log_loss": False}     # metric -> larger is better


def decide(metric: str, champion: float | None, challenger: float | None) -> dict:
    """The decision on one evaluation window, with both figures.

    No champion yet: the challenger wins. A challenger without a finite figure never wins; a
    tie keeps the champion.
    """
    if metric not in METRICS:
        raise ConfigError(f"unknown champion metric {metric!r} (known: {', '.join(METRICS)})")
    ok = lambda v: v is not None and math.isfinite(v)  # noqa: E731
    if champion is None:
        winner, why = ("challenger", "no champion yet") if ok(challenger) else \
            ("none", "no finite figure")
    elif not ok(challenger):
        winner, why = "champion", f"challenger {metric} is not a number"
    elif not ok(champion):
        winner, why = "challenger", f"champion {metric} is not a number"
    else:
        better = challenger > champion if METRICS[metric] else challenger < champion
        winner, why = ("challenger", f"{metric} better") if better else \
            ("champion", f"{metric} not better")
    return {"metric": metric, "champion": champion, "challenger": challenger,
            "winner": winner, "why": why}
