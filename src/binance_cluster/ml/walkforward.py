"""Walk-forward training of one symbol or a pool: for every fold, fit before it, judge on it.

Fold k's evaluation window is period k (`folds`). Its challenger is fitted on the rows before
it (the last `train_days`, or all), purged of the last `horizon` rows, whose labels look
into the window. The challenger and the current champion are both scored on the window
(purged of its own last `horizon` rows, whose labels look past it); the better one by the
job's metric is the champion from then on, and its threshold, chosen on the window, trades
period k+1. Nothing fitted or chosen on a window touches a bar before the window ends.

A pool fits one model per fold on the rows of all its symbols (each symbol's features and
purge as alone) and judges it on all their rows of the window; every symbol's record holds
the pool's model and figures.

Across runs (`judge_stored`): the model a run would trade with after its last judged window
and the champion kept in the model store from an earlier run are scored on that same window;
the stored one keeps trading unless the new one does better. The stored champion is judged
only on a window that starts after its training data ends; on an earlier window it cannot be
judged honestly, so it is kept and this run's folds trade this run's models.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass

import numpy as np

from binance_cluster.candles.synthetic import synthetic_candles
from binance_cluster.errors import DataError
from binance_cluster.ml import evaluate as ev
from binance_cluster.ml.champion import decide
from binance_cluster.ml.features import FeatureSpec, compute_features
from binance_cluster.ml.folds import boundaries, fold_name
from binance_cluster.ml.labels import LabelSpec, barrier_labels, purged_stop
from binance_cluster.ml.model_store import CHAMPION, FoldRecord
from binance_cluster.ml.models import get_kind
from binance_cluster.ml.thresholds import GRID, choose_threshold, threshold_curve
from binance_cluster.types import DAY_MS, Candles, format_time_ms

POOL = "pool"          # the champion name of a job's pooled model


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
    pool: bool = False               # one model per fold for all the job's symbols


@dataclass(frozen=True, slots=True)
class Block:
    """One symbol's rows: candles, features, labels, trade outcomes and which rows are usable.
    Features None: computed again from the candles whenever rows are taken (`light`)."""

    symbol: str
    candles: Candles
    x: np.ndarray | None
    y: np.ndarray
    outcome: np.ndarray
    usable: np.ndarray

    @property
    def times(self) -> np.ndarray:
        return np.asarray(self.candles.open_time, np.int64)


@dataclass(frozen=True, slots=True)
class Trained:
    """A walk-forward run: every symbol's fold records and the champion to keep (name ->
    (record, history)), empty when the run has nothing to say about it."""

    records: dict[str, list[FoldRecord]]
    champions: dict[str, tuple[FoldRecord, list[dict]]]


def symbol_block(candles: Candles, symbol: str, spec: TrainSpec) -> Block:
    """The features, labels and usable rows of `symbol`'s candles."""
    if len(candles) == 0:
        raise DataError(f"{symbol}: no candles to train on")
    x = compute_features(candles, spec.features)
    y, outcome = barrier_labels(candles, spec.label)
    return Block(symbol, candles, x, y, outcome, np.isfinite(x).all(axis=1) & (y >= 0))


def light(block: Block) -> Block:
    """`block` without its feature matrix: a pool's blocks, all held at once by the fitting
    rank, keep only candles and labels (a symbol-month of the seed's features is 26 MB)."""
    return dataclasses.replace(block, x=None)


def warm_up(spec: TrainSpec) -> None:
    """Run once every kernel a walk-forward of `spec` calls (features, labels, the kind's fit,
    prediction and importance), on small synthetic candles, so numba loads (or compiles) them
    here."""
    candles = synthetic_candles(spec.features.history + 500)
    block = symbol_block(candles, "warm-up", spec)
    x = block.x[np.isfinite(block.x).all(axis=1)]
    y = (np.arange(x.shape[0]) % 2).astype(np.int8)      # both classes, whatever the barrier
    model = get_kind(spec.kind).fit(x, y, spec.params)
    model.predict_proba(x)
    model.importance()


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


def _stack(blocks: list[Block], rows: list, attr: str) -> np.ndarray:
    """The `attr` rows of every block, one block after another (a view for a single block
    with a slice of rows; several blocks are copied once, into one array)."""
    if len(blocks) == 1:
        return getattr(blocks[0], attr)[rows[0]]
    first = getattr(blocks[0], attr)
    out = np.empty((sum(_count(r) for r in rows),) + first.shape[1:], first.dtype)
    at = 0
    for b, r in zip(blocks, rows):
        k = _count(r)
        if isinstance(r, slice):
            out[at:at + k] = getattr(b, attr)[r]
        else:
            np.take(getattr(b, attr), r, axis=0, out=out[at:at + k])
        at += k
    return out


def _span(rows) -> tuple[int, int]:
    """First and one past the last row of `rows` (a slice or an index array), not empty."""
    if isinstance(rows, slice):
        return rows.start, rows.start + (_count(rows) - 1) * rows.step + 1
    return int(rows[0]), int(rows[-1]) + 1


def _stack_features(blocks: list[Block], rows: list, spec: FeatureSpec,
                    recompute: bool = False) -> np.ndarray:
    """The `spec` feature rows `rows` of every block, one block after another, as `_stack`
    takes them; those of a light block (or of every block with `recompute`: another spec than
    the blocks') computed from its candles, one block at a time, straight into the result
    (the kernel gives the same values for any range of bars)."""
    if not recompute and all(b.x is not None for b in blocks):
        return _stack(blocks, rows, "x")
    out = np.empty((sum(_count(r) for r in rows), len(spec.names)))
    at = 0
    for b, r in zip(blocks, rows):
        k = _count(r)
        if k == 0:
            continue
        if b.x is not None and not recompute:
            src, lo = b.x, 0
        else:
            lo, hi = _span(r)
            src = compute_features(b.candles, spec, lo, hi)
        if isinstance(r, slice):
            out[at:at + k] = src[r.start - lo:r.stop - lo:r.step]
        else:
            np.take(src, r - lo, axis=0, out=out[at:at + k])
        del src
        at += k
    return out


@dataclass(slots=True)
class _Judged:
    """The newest fold with a trading model: where the stored champion is judged."""

    fold: str
    eval_start: int
    rows: list
    p: np.ndarray
    trading: str


def walk_forward(candles: Candles, symbol: str, spec: TrainSpec) -> list[FoldRecord]:
    """Every fold of `symbol`, in time order: fitted models, figures, decisions, or a skip."""
    return walk_forward_blocks([symbol_block(candles, symbol, spec)], spec).records[symbol]


def walk_forward_blocks(blocks: list[Block], spec: TrainSpec, stored: FoldRecord | None = None,
                        history: list[dict] | None = None, pool: str = "") -> Trained:
    """Walk-forward over `blocks` (one symbol, or the symbols of `pool` fitted as one), then
    the new model judged against the `stored` champion (see `judge_stored`)."""
    kind = get_kind(spec.kind)
    firsts = [int(b.times[0]) for b in blocks]
    edges = boundaries(min(firsts), max(int(b.times[-1]) for b in blocks), spec.fold)
    index = [np.searchsorted(b.times, edges) for b in blocks]
    h = spec.label.horizon
    common = dict(kind=spec.kind, feature_spec=spec.features.to_json(),
                  feature_hash=spec.features.hash, label=json.dumps(asdict(spec.label), sort_keys=True),
                  params=json.dumps(asdict(spec.params), sort_keys=True), pool=pool)
    folds: list[dict] = []        # per fold: the record fields every block shares
    champion = None               # (fold name, model)
    judged = None
    for k in range(1, len(edges) - 1):
        e0, e1 = edges[k], edges[k + 1]
        trade_end = edges[k + 2] if k + 2 < len(edges) else int(e1 + (e1 - e0))
        train, evaluate, starts = [], [], []
        for b, ix in zip(blocks, index):
            i0, i1 = int(ix[k]), int(ix[k + 1])
            t_lo = 0 if spec.train_days == 0 else int(np.searchsorted(b.times, e0 - spec.train_days * DAY_MS))
            train.append(_rows(b.usable, t_lo, purged_stop(i0, h), spec.row_step))
            evaluate.append(_rows(b.usable, i0, purged_stop(i1, h), 1))
            if t_lo < len(b.times):
                starts.append(int(b.times[t_lo]))
        name = fold_name(e0)
        base = dict(fold=name, train_start=min(starts, default=e0), train_end=e0, eval_start=e0,
                    eval_end=e1, trade_start=e1, trade_end=trade_end, **common)
        n_train = sum(_count(r) for r in train)
        n_eval = sum(_count(r) for r in evaluate)
        y_train = _stack(blocks, train, "y")
        ye = _stack(blocks, evaluate, "y")
        skip = ""
        if n_train < spec.min_train_rows:
            skip = f"too few training rows ({n_train} < {spec.min_train_rows})"
        elif n_eval < spec.min_eval_rows:
            skip = f"too few evaluation rows ({n_eval} < {spec.min_eval_rows})"
        elif y_train.min() == y_train.max():
            skip = f"single-class training labels (all {int(y_train[0])})"
        elif ye.min() == ye.max():
            skip = f"single-class evaluation labels (all {int(ye[0])})"
        if skip:
            folds.append(dict(skip=skip, metrics={"train_rows": n_train, "eval_rows": n_eval},
                              trades_with="", **base))
            continue
        model = kind.fit(_stack_features(blocks, train, spec.features), y_train, spec.params)
        del y_train
        xe = _stack_features(blocks, evaluate, spec.features)
        p_new = model.predict_proba(xe)
        challenger = _figures(p_new, ye)
        held = None
        if champion is not None:
            p_old = champion[1].predict_proba(xe)
            held = _figures(p_old, ye)
        del xe
        decision = decide(spec.metric, None if held is None else held[spec.metric],
                          challenger[spec.metric])
        if decision["winner"] == "challenger":
            champion = (name, model)
        if champion is None:
            folds.append(dict(skip="no model with a finite " + spec.metric,
                              metrics={"challenger": challenger}, decision=decision,
                              model=model.to_arrays(), **base))
            continue
        trading, p = (champion[1], p_new if champion[0] == name else p_old)
        outcome = _stack(blocks, evaluate, "outcome")
        curve = threshold_curve(p, ye, outcome, spec.threshold, spec.fee_rate)
        threshold = choose_threshold(curve)
        metrics = {"train_rows": n_train, "eval_rows": n_eval,
                   "challenger": challenger, "champion": held,
                   "at_threshold": ev.at_threshold(p, ye, threshold),
                   "threshold_rule": spec.threshold, "threshold_score": float(curve.max())}
        folds.append(dict(metrics=metrics, threshold=threshold, trades_with=champion[0],
                          decision=decision, model=model.to_arrays(),
                          diagnostics=_diagnostics(trading, p, ye, curve), **base))
        judged = _Judged(name, e0, evaluate, p, champion[0])
    name = pool or blocks[0].symbol
    champions = judge_stored(blocks, spec, folds, judged, stored, history or [], name)
    records = {b.symbol: [FoldRecord(symbol=b.symbol, **f) for f in folds] for b in blocks}
    return Trained(records, champions)


def judge_stored(blocks: list[Block], spec: TrainSpec, folds: list[dict], judged: _Judged | None,
                 stored: FoldRecord | None, history: list[dict], name: str
                 ) -> dict[str, tuple[FoldRecord, list[dict]]]:
    """The champion to keep for `name` after this run, with the decision appended to its
    history; edits the judged fold (in `folds`) when the stored champion wins and trades it."""
    if judged is None:
        if stored is None:
            return {}
        decision = {"metric": spec.metric, "champion": None, "challenger": None,
                    "winner": "champion", "why": "no model judged in this run; champion kept"}
        return {name: (stored, history + [decision])}
    fold = next(f for f in folds if f["fold"] == judged.fold)
    origin = next(f for f in folds if f["fold"] == judged.trading)
    ye = _stack(blocks, judged.rows, "y")
    if stored is None:
        decision = decide(spec.metric, None, fold["metrics"]["challenger" if origin is fold
                                                               else "champion"][spec.metric])
        decision["why"] = "no stored champion yet"
    elif stored.train_end > judged.eval_start:
        decision = {"metric": spec.metric, "champion": None, "challenger": None,
                    "winner": "champion",
                    "why": f"the stored champion was trained on data up to "
                           f"{format_time_ms(stored.train_end)}, after this run's last window "
                           f"starts ({format_time_ms(judged.eval_start)}): not judged, kept; "
                           f"this run's folds trade this run's models"}
        fold["metrics"]["stored_champion"] = {"decision": decision}
        return {name: (stored, history + [decision])}
    else:
        p_old, p_new, keep = _stored_probabilities(blocks, judged, stored)
        y = ye[keep]
        old, new = _figures(p_old, y), _figures(p_new, y)
        decision = decide(spec.metric, old[spec.metric], new[spec.metric])
        fold["metrics"]["stored_champion"] = {"stored": old, "this_run": new,
                                              "decision": decision}
        if decision["winner"] == "champion":
            outcome = _stack(blocks, judged.rows, "outcome")[keep]
            curve = threshold_curve(p_old, y, outcome, spec.threshold, spec.fee_rate)
            threshold = choose_threshold(curve)
            stored_model = get_kind(stored.kind).model_cls.from_arrays(stored.model)
            fold.update(trades_with=CHAMPION, threshold=threshold,
                        diagnostics=_diagnostics(stored_model, p_old, y, curve))
            fold["metrics"].update(at_threshold=ev.at_threshold(p_old, y, threshold),
                                   threshold_score=float(curve.max()))
            judged_on = dict(eval_start=fold["eval_start"], eval_end=fold["eval_end"],
                             trade_start=fold["trade_start"], trade_end=fold["trade_end"])
            kept = dataclasses.replace(stored, threshold=threshold, decision=decision,
                                       metrics={"judged_on": judged.fold, "figures": old},
                                       **judged_on)
            return {name: (kept, history + [decision])}
    decision["run"] = judged.fold
    new = FoldRecord(symbol=name, **{**origin, "eval_start": fold["eval_start"],
                                     "eval_end": fold["eval_end"], "trade_start": fold["trade_start"],
                                     "trade_end": fold["trade_end"], "threshold": fold["threshold"],
                                     "decision": decision, "skip": "",
                                     "metrics": {"judged_on": judged.fold}, "diagnostics": {}})
    return {name: (new, history + [decision])}


def _stored_probabilities(blocks: list[Block], judged: _Judged, stored: FoldRecord):
    """(stored champion's p, this run's p, rows kept) on the judged window's rows where the
    stored champion's own features are finite (both scored on the same rows)."""
    spec = FeatureSpec.from_json(stored.feature_spec)
    if spec.hash != stored.feature_hash:
        raise DataError(f"stored champion {stored.symbol}/{stored.fold}: its feature spec does "
                        f"not match its hash {stored.feature_hash[:12]}")
    model = get_kind(stored.kind).model_cls.from_arrays(stored.model)
    x = _stack_features(blocks, judged.rows, spec, recompute=True)
    keep = np.isfinite(x).all(axis=1)
    if not keep.any():
        raise DataError(f"stored champion {stored.symbol}/{stored.fold}: no row of window "
                        f"{judged.fold} has its features")
    return model.predict_proba(x[keep]), judged.p[keep], keep
