"""Entry thresholds chosen on an evaluation window: the seed's TP - FP rule or profit after fees.

The threshold grid is 0.50, 0.51, ..., 1.00. `tp_fp` scores a threshold by true positives
minus false positives of "enter when the probability is at or above it" (the seed's rule);
`profit` by the sum of the barrier trades' outcomes minus the round-trip fee (2 x fee rate)
over the bars that would enter (overlapping trades each counted). The best score wins, the
lowest threshold on a tie; when no threshold scores above 0 the answer is None: do not trade.
"""

from __future__ import annotations

import numpy as np

from binance_cluster.errors import ConfigError

GRID = np.round(np.arange(50, 101) / 100.0, 2)
RULES = ("tp_fp", "profit")


def threshold_curve(p: np.ndarray, y: np.ndarray, outcome: np.ndarray, rule: str,
                    fee_rate: float) -> np.ndarray:
    """The rule's score at every threshold of GRID."""
    if rule not in RULES:
        raise ConfigError(f"unknown threshold rule {rule!r} (known: {', '.join(RULES)})")
    out = np.empty(GRID.size)
    for k, t in enumerate(GRID):
        hit = p >= t
        if rule == "tp_fp":
            out[k] = float((hit & (y == 1)).sum() - (hit & (y == 0)).sum())
        else:
            out[k] = float((outcome[hit] - 2.0 * fee_rate).sum())
    return out


def choose_threshold(curve: np.ndarray) -> float | None:
    """The threshold of the best score (lowest on a tie), or None when no score is above 0."""
    k = int(np.argmax(curve))
    return float(GRID[k]) if curve[k] > 0 else None
