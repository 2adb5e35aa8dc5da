"""Walk-forward training of one symbol: for every fold, fit before it, judge on it, pick the champion.

Fold k's evaluation window is period k (`folds`). Its challenger is fitted on the rows before
it (the last `train_days`, or all), purged of the last `horizon` rows, whose labels look
into the window. The challenger and the current champion are both scored on the window
(purged of its own last `horizon` rows, whose labels look past it); the better one by the
job's metric is the champion from then on, and its threshold, chosen on the window, trades
period k+1. Nothing fitted or chosen on a window touches a bar before the window ends.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from binance_cluster.errors import DataError
from binance_cluster.ml import evaluate as ev
from binance_cluster.ml.champion import decide
from binance_cluster.ml.features import FeatureSpec, compute_features
from binance_cluster.ml.folds import boundaries, fold_name
from binance_cluster.ml.labels import LabelSpec, barrier_labels, purged_stop
from binance_cluster.ml.model_store import FoldRecord
from binance_cluster.ml.models import get_kind
from binance_cluster.ml.thresholds import GRID, choose_threshold, threshold_curve
from binance_cluster.types import DAY_MS, Candles


@dataclass(frozen=True, slots=True)
class TrainSpec:
    """What and how to train (the job's [train] section, resolved)."""

    kind: str
    params: object
    features: FeatureSpec
    label: LabelSpec
    fold: str = "month"
    train_days: int = 0              # 0: every row before the fold
    min_train_rows: int = 2000
    min_eval_rows: int = 200
    threshold: str = "tp_fp"
    metric: str = "auc"
    fee_rate: float = 0.001
    row_step: int = 1                # train on every row_step-th row (minute rows are near twins)


def _figures(p: np.ndarray, y: np.ndarray) -> dict:
    return {"auc": ev.auc(p, y), "log_loss": ev.log_loss(p, y), "rows": int(y.size),
            "base_rate": float(y.mean()) if y.size else None}


def _diagnostics(model, p: np.ndarray, y: np.ndarray, curve: np.ndarray) -> dict[str, np.ndarray]:
    fpr, tpr = ev.roc_points(p, y)
    mean_p, rate, count = ev.calibration(p, y)
    return {"roc_fpr": fpr, "roc_tpr": tpr, "calibration_predicted": mean_p,
            "calibration_observed": rate, "calibration_rows": count,
            "threshold_grid": GRID.copy(), "threshold_score": curve,
            "importance": np.asarray(model.importance(), np.float64)}


def _rows(usable: np.ndarray, lo: int, hi: int, step: int):
    """Rows [lo, hi) that have features and a label, every step-th: a slice (a view of the
    feature matrix, no copy: a worker's memory) when every row is usable, else an index array."""
    hi = max(lo, hi)
    if lo < hi and not usable[lo]:         # skip the feature warm-up at the start
        lo += int(np.argmax(usable[lo:hi])) if usable[lo:hi].any() else hi - lo
    if usable[lo:hi].all():
        return slice(lo, hi, step)
    rows = np.arange(lo, hi)
    return rows[usable[lo:hi]][::step]


def _count(rows) -> int:
    return len(range(rows.start, rows.stop, rows.step)) if isinstance(rows, slice) else int(rows.size)


def walk_forward(candles: Candles, symbol: str, spec: TrainSpec) -> list[FoldRecord]:
    """Every fold of `symbol`, in time order: fitted models, figures, decisions, or a skip."""
    n = len(candles)
    if n == 0:
        raise DataError(f"{symbol}: no candles to train on")
    kind = get_kind(spec.kind)
    times = np.asarray(candles.open_time, np.int64)
    x = compute_features(candles, spec.features)
    y, outcome = barrier_labels(candles, spec.label)
    usable = np.isfinite(x).all(axis=1) & (y >= 0)
    h = spec.label.horizon
    edges = boundaries(int(times[0]), int(times[-1]), spec.fold)
    index = np.searchsorted(times, edges)
    common = dict(kind=spec.kind, feature_spec=spec.features.to_json(),
                  feature_hash=spec.features.hash, label=json.dumps(asdict(spec.label), sort_keys=True),
                  params=json.dumps(asdict(spec.params), sort_keys=True))
    records: list[FoldRecord] = []
    champion = None            # (fold name, model)
    for k in range(1, len(edges) - 1):
        e0, e1 = edges[k], edges[k + 1]
        trade_end = edges[k + 2] if k + 2 < len(edges) else int(e1 + (e1 - e0))
        i0, i1 = int(index[k]), int(index[k + 1])
        t_lo = 0 if spec.train_days == 0 else int(np.searchsorted(times, e0 - spec.train_days * DAY_MS))
        train = _rows(usable, t_lo, purged_stop(i0, h), spec.row_step)
        evaluate = _rows(usable, i0, purged_stop(i1, h), 1)
        name = fold_name(e0)
        base = dict(symbol=symbol, fold=name, train_start=int(times[t_lo]) if t_lo < n else e0,
                    train_end=e0, eval_start=e0, eval_end=e1, trade_start=e1, trade_end=trade_end,
                    **common)
        skip = ""
        n_train = _count(train)
        n_eval = _count(evaluate)
        if n_train < spec.min_train_rows:
            skip = f"too few training rows ({n_train} < {spec.min_train_rows})"
        elif n_eval < spec.min_eval_rows:
            skip = f"too few evaluation rows ({n_eval} < {spec.min_eval_rows})"
        elif y[train].min() == y[train].max():
            skip = f"single-class training labels (all {int(y[train][0])})"
        elif y[evaluate].min() == y[evaluate].max():
            skip = f"single-class evaluation labels (all {int(y[evaluate][0])})"
        if skip:
            records.append(FoldRecord(skip=skip, metrics={"train_rows": n_train,
                                                           "eval_rows": n_eval},
                                      trades_with="", **base))
            continue
        model = kind.fit(x[train], y[train], spec.params)
        ye = y[evaluate]
        p_new = model.predict_proba(x[evaluate])
        challenger = _figures(p_new, ye)
        held = None
        if champion is not None:
            p_old = champion[1].predict_proba(x[evaluate])
            held = _figures(p_old, ye)
        decision = decide(spec.metric, None if held is None else held[spec.metric],
                          challenger[spec.metric])
        if decision["winner"] == "challenger":
            champion = (name, model)
        if champion is None:
            records.append(FoldRecord(skip="no model with a finite " + spec.metric,
                                      metrics={"challenger": challenger}, decision=decision,
                                      model=model.to_arrays(), **base))
            continue
        trading, p = (champion[1], p_new if champion[0] == name else p_old)
        curve = threshold_curve(p, ye, outcome[evaluate], spec.threshold, spec.fee_rate)
        threshold = choose_threshold(curve)
        metrics = {"train_rows": n_train, "eval_rows": n_eval,
                   "challenger": challenger, "champion": held,
                   "at_threshold": ev.at_threshold(p, ye, threshold),
                   "threshold_rule": spec.threshold, "threshold_score": float(curve.max())}
        records.append(FoldRecord(metrics=metrics, threshold=threshold, trades_with=champion[0],
                                  decision=decision, model=model.to_arrays(),
                                  diagnostics=_diagnostics(trading, p, ye, curve), **base))
    return records
