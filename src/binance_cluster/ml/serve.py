"""Models handed to `ml_barrier` in a backtest: each bar's probability from its fold's model.

A symbol's fold records say which model trades which period ([trade_start, trade_end), the
period after its evaluation window) at which threshold: a fold's own model, an earlier
fold's, a pool's (the same model for every symbol of the pool), or the champion kept from an
earlier run (stored with the fold, with the feature spec it was trained with). A bar whose open time falls in such
a period gets that model's probability and threshold; any other bar (before the first
trained fold, a skipped fold, a fold without a threshold: "do not trade") gets NaN and never
enters. A bar in a traded period whose features are not finite also gets NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from binance_cluster.errors import DataError
from binance_cluster.ml.features import FeatureSpec, compute_features
from binance_cluster.ml.model_store import CHAMPION, FoldRecord, ModelStore
from binance_cluster.ml.models import get_kind
from binance_cluster.types import Candles


@dataclass(frozen=True, slots=True)
class Period:
    """One traded period: its model, the spec it was trained with and its threshold."""

    start: int
    end: int
    fold: str
    model: object
    spec: FeatureSpec
    threshold: float


class SymbolModels:
    """The traded periods of one symbol, read from the model store."""

    def __init__(self, symbol: str, periods: list[Period]):
        self.symbol = symbol
        self.periods = periods

    def probabilities(self, candles: Candles) -> tuple[np.ndarray, np.ndarray]:
        """(probability, threshold) per bar, NaN where no period's model trades."""
        times = np.asarray(candles.open_time, np.int64)
        prob = np.full(times.size, np.nan)
        thr = np.full(times.size, np.nan)
        features: dict[str, np.ndarray] = {}
        for period in self.periods:
            lo, hi = np.searchsorted(times, [period.start, period.end])
            if hi <= lo:
                continue
            key = period.spec.hash
            if key not in features:
                features[key] = compute_features(candles, period.spec)
            x = features[key][lo:hi]
            ok = np.isfinite(x).all(axis=1)
            if ok.any():
                p = np.full(hi - lo, np.nan)
                p[ok] = period.model.predict_proba(x[ok])
                prob[lo:hi] = p
                thr[lo:hi] = np.where(ok, period.threshold, np.nan)
        return prob, thr


def traded_periods(store: ModelStore, symbol: str, records: list[FoldRecord]) -> list[Period]:
    """The periods the records trade, each with its model loaded (checked against its spec)."""
    out = []
    for rec in records:
        if rec.skip or rec.threshold is None or not rec.trades_with:
            continue
        held = store.fold_champion(symbol, rec.fold) if rec.trades_with == CHAMPION else rec
        spec = FeatureSpec.from_json(held.feature_spec)
        if spec.hash != held.feature_hash:
            raise DataError(f"{store.path}: {symbol}/{rec.fold}: the stored feature spec does not "
                            f"match its hash {held.feature_hash[:12]}")
        if held is rec:
            model = store.load_model(symbol, rec.trades_with, feature_hash=spec.hash)
        else:
            model = get_kind(held.kind).model_cls.from_arrays(held.model)
        out.append(Period(rec.trade_start, rec.trade_end, rec.trades_with, model, spec,
                          float(rec.threshold)))
    return out


def feature_history(path: str, symbols) -> int:
    """Bars a feature row of the models trading `symbols` looks back (the largest; 0 with no
    model store or no traded period): the history a bar needs before its probability exists."""
    store = ModelStore(path)
    if not store.path.exists():
        return 0
    bars = 0
    stored = set(store.symbols())
    for symbol in symbols:
        for rec in store.records(symbol) if symbol in stored else ():
            if rec.skip or rec.threshold is None or not rec.trades_with:
                continue
            held = store.fold_champion(symbol, rec.fold) if rec.trades_with == CHAMPION else rec
            bars = max(bars, FeatureSpec.from_json(held.feature_spec).history)
    return bars


def load_symbol_models(path: str, symbol: str) -> SymbolModels:
    """The traded periods of `symbol` in the model store at `path`."""
    store = ModelStore(path)
    return SymbolModels(symbol, traded_periods(store, symbol, store.records(symbol)))


# small fits: the kernels compiled are the same whatever the sizes
WARM_UP_PARAMS = {"logistic": {"max_iter": 3}, "trees": {"n_rounds": 2, "max_bins": 16}}


def warm_up_models(candles: Candles, kind: str = "logistic") -> SymbolModels:
    """A model of `kind` fitted on `candles` (synthetic) trading all of them: compiles (or
    loads) the kernels that serve that kind's models."""
    from binance_cluster.ml.labels import LabelSpec, barrier_labels

    spec = FeatureSpec(returns=(1,), rsi=14, atr=14, volume_z=30, hour=True)
    x = compute_features(candles, spec)
    y, _ = barrier_labels(candles, LabelSpec(0.002, 0.002, 30))
    keep = np.isfinite(x).all(axis=1) & (y >= 0)
    model_kind = get_kind(kind)
    model = model_kind.fit(x[keep], y[keep], model_kind.params(WARM_UP_PARAMS.get(kind)))
    times = np.asarray(candles.open_time, np.int64)
    return SymbolModels("WARMUP", [Period(int(times[0]), int(times[-1]) + 1, "warm-up", model,
                                          spec, 0.5)])

