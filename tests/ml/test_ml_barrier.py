"""ml_barrier: each bar's probability from the model fitted strictly before its fold; no leakage."""

from __future__ import annotations

import numpy as np
import pytest

from binance_cluster.errors import ConfigError, DataError
from binance_cluster.ml.features import FeatureSpec, compute_features
from binance_cluster.ml.labels import LabelSpec
from binance_cluster.ml.logistic import LogisticModel, LogisticParams
from binance_cluster.ml.model_store import ModelStore
from binance_cluster.ml.serve import load_symbol_models
from binance_cluster.ml.walkforward import TrainSpec, walk_forward
from binance_cluster.strategies.registry import compute_signals, get_strategy
from binance_cluster.types import DAY_MS, Candles, parse_time_ms
from support.real_data import read_real

START = parse_time_ms("2025-05-05")
SPEC = TrainSpec(kind="logistic", params=LogisticParams(), features=FeatureSpec(rsi=14, hour=True),
                 label=LabelSpec(0.003, 0.003, 30), fold="day", min_train_rows=1000,
                 min_eval_rows=200)
ML = get_strategy("ml_barrier")


def _signals(candles: Candles, tmp_path, name: str):
    path = tmp_path / f"{name}.h5"
    records = walk_forward(candles, "ETHUSDT", SPEC)
    ModelStore(path).write({"ETHUSDT": records})
    models = load_symbol_models(str(path), "ETHUSDT")
    return records, models, compute_signals(ML, candles, {}, "1m", model=models)


@pytest.fixture(scope="module")
def eth(shared_data):
    return read_real(shared_data, "ETHUSDT", START, START + 6 * DAY_MS)


def test_entries_only_where_the_fold_model_clears_its_threshold(eth, tmp_path):
    records, models, sig = _signals(eth, tmp_path, "a")
    prob, thr = models.probabilities(eth)
    traded = [r for r in records if r.threshold is not None]
    assert traded and sig.entry.any()
    inside = np.zeros(len(eth), bool)
    for r in traded:
        lo, hi = np.searchsorted(eth.open_time, [r.trade_start, r.trade_end])
        inside[lo:hi] = True
        assert np.all(thr[lo:hi] == r.threshold)
        assert r.trade_start >= r.eval_end > r.train_end - 1     # fitted and chosen before it
    assert np.all(np.isnan(prob[~inside])) and not sig.entry[~inside].any()
    assert np.array_equal(sig.entry, np.nan_to_num(prob - thr, nan=-1) >= 0)
    np.testing.assert_array_equal(sig.score[sig.entry], (prob - thr)[sig.entry])
    assert not sig.exit.any()
    assert ML.risk_defaults == {"take_profit": 0.01, "stop_loss": 0.02, "max_hold_bars": 60}


def test_a_future_planted_in_the_data_changes_nothing_before_it(eth, tmp_path):
    """Rewrite every candle from day 4 on so that price jumps +0.3 % in every hour (labels
    1 there): every model fitted, threshold chosen and signal computed before day 4 is
    unchanged, bit for bit; the fold that evaluates day 4 sees the planted future."""
    records, _, sig = _signals(eth, tmp_path, "before")
    cut = START + 4 * DAY_MS
    k = int(np.searchsorted(eth.open_time, cut))
    cols = {name: np.array(col, copy=True) for name, col in eth.columns().items()}
    ramp = 1.0 + 0.003 * ((np.arange(len(eth) - k) % 60) / 10)
    for name in ("open", "high", "low", "close"):
        cols[name][k:] *= ramp
    cols["high"][k:] *= 1.004
    planted = Candles.from_columns(cols)
    again, _, sig2 = _signals(planted, tmp_path, "after")
    assert np.array_equal(sig.entry[:k], sig2.entry[:k])
    assert np.array_equal(sig.score[:k], sig2.score[:k], equal_nan=True)
    assert not np.array_equal(sig.score[k:], sig2.score[k:], equal_nan=True)
    for a, b in zip(records, again):
        if a.eval_end <= cut:
            assert (a.threshold, a.trades_with, a.decision) == (b.threshold, b.trades_with, b.decision)
            for key in a.model:
                assert np.array_equal(a.model[key], b.model[key])
        elif a.eval_start >= cut:
            assert a.metrics != b.metrics


def test_missing_models_and_a_foreign_feature_spec_are_errors(eth, tmp_path):
    with pytest.raises(ConfigError, match="ml_barrier needs its models"):
        compute_signals(ML, eth, {}, "1m")
    records, _, _ = _signals(eth, tmp_path, "spec")
    fitted = next(r for r in records if r.threshold is not None)
    path = tmp_path / "spec.h5"
    import h5py
    with h5py.File(path, "a") as f:      # the model that trades claims another spec
        f["ETHUSDT"][fitted.trades_with].attrs["feature_hash"] = FeatureSpec().hash
    with pytest.raises(DataError, match="feature spec"):
        load_symbol_models(str(path), "ETHUSDT")
    with h5py.File(path, "a") as f:
        f["ETHUSDT"][fitted.trades_with].attrs["feature_hash"] = fitted.feature_hash
        f["ETHUSDT"][fitted.trades_with]["model"]["coef"][0] = np.nan   # a corrupt model
    with pytest.raises(DataError, match="not finite"):
        load_symbol_models(str(path), "ETHUSDT")


def test_streamed_newest_bar_gives_the_backtest_probability(eth, tmp_path):
    records, models, _ = _signals(eth, tmp_path, "live")
    prob, _ = models.probabilities(eth)
    period = models.periods[0]
    spec = period.spec
    lo = int(np.searchsorted(eth.open_time, period.start))
    for t in range(lo, lo + 50):
        window = eth.slice(t + 1 - spec.history, t + 1)        # the live loop's buffer
        x = compute_features(window, spec, spec.history - 1, spec.history)
        assert period.model.predict_proba(x)[0] == prob[t]
    assert isinstance(period.model, LogisticModel)


def test_a_backtest_with_a_start_reads_the_history_its_models_features_need(eth, tmp_path):
    # ml_barrier declared no warm-up: a run with `start` read no bars before it, so the
    # first rows' features were NaN and the models gave no probability there.
    from binance_cluster.backtest.driver import load_with_history
    from binance_cluster.backtest.job import load_job, warmup_bars
    from binance_cluster.candles.store import CandleStore
    from binance_cluster.types import format_time_ms
    from support.backtest_store import write_job
    from support.model_data import ml_job_text

    store = CandleStore(tmp_path / "store")
    store.append("ETHUSDT", "1m", eth, source="ETHUSDT-1m.csv.gz")
    records, models, full = _signals(eth, tmp_path, "m")
    traded = [r for r in records if r.threshold is not None]
    assert traded
    start = traded[0].trade_start + 60_000     # inside a traded period, a minute past its start
    job = load_job(write_job(tmp_path / "job.toml", ml_job_text(
        tmp_path / "store", ("ETHUSDT",), tmp_path / "out", tmp_path / "m.h5",
        top=f'start = "{format_time_ms(start)}"')))
    assert warmup_bars(job) == SPEC.features.history
    loaded = load_with_history(store, "ETHUSDT", job, warmup_bars(job))
    at = int(np.searchsorted(eth.open_time, start))
    assert int(loaded.candles.open_time[loaded.first]) == start
    n = len(loaded.candles) - loaded.first
    prob_full, _ = models.probabilities(eth)
    prob, _ = models.probabilities(loaded.candles)
    assert np.isfinite(prob_full[at])
    np.testing.assert_array_equal(prob[loaded.first:], prob_full[at:at + n])
    sig = compute_signals(ML, loaded.candles, {}, "1m", model=models)
    np.testing.assert_array_equal(sig.entry[loaded.first:], full.entry[at:at + n])
