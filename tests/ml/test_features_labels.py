"""Feature and label kernels: the seed's 70 columns, streaming equals batch, barrier labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from binance_cluster.errors import ConfigError, DataError
from binance_cluster.kernels import indicators as ind
from binance_cluster.ml.features import (SEED_LAGS, FeatureSpec, compute_features,
                                         newest_features)
from binance_cluster.ml.labels import UNKNOWN, LabelSpec, barrier_labels, purged_stop
from binance_cluster.types import Candles
from support.real_data import first_rows

ALL_FAMILIES = FeatureSpec(returns=(1, 5, 60), rsi=14, atr=14, volume_z=30, hour=True)


def test_seed_features_are_the_70_close_ratios(shared_data):
    spec = FeatureSpec()
    assert len(spec.names) == 70 and spec.history == 1441
    assert SEED_LAGS[:61] == tuple(range(61)) and SEED_LAGS[61:] == (
        120, 180, 240, 300, 360, 420, 480, 720, 1440)
    c = first_rows(shared_data, "BTCUSDT", 1600)
    x = compute_features(c, spec)
    assert np.isnan(x[:1440]).all() and np.isfinite(x[1440:]).all()
    for t in (1440, 1512, 1599):
        mean = math.fsum(c.close[t - 1440:t + 1]) / 1441
        expect = [c.close[t - d] / mean for d in SEED_LAGS]
        np.testing.assert_allclose(x[t], expect, rtol=1e-12)


def test_optional_families_follow_their_definitions(shared_data):
    c = first_rows(shared_data, "ETHUSDT", 1700)
    x = compute_features(c, ALL_FAMILIES)
    names = ALL_FAMILIES.names
    assert len(names) == 70 + 3 + 1 + 1 + 1 + 2 == x.shape[1]
    t = 1650
    row = dict(zip(names, x[t]))
    assert row["return5"] == pytest.approx(c.close[t] / c.close[t - 5] - 1, rel=1e-12)
    span = 141
    rsi = ind.rsi(np.ascontiguousarray(c.close[t - span + 1:t + 1]), 14)[-1]
    assert row["rsi14"] == pytest.approx(rsi / 100, rel=1e-12)
    atr = ind.atr(*(np.ascontiguousarray(a[t - span + 1:t + 1]) for a in (c.high, c.low, c.close)), 14)[-1]
    assert row["range_atr14"] == pytest.approx((c.high[t] - c.low[t]) / atr, rel=1e-12)
    v = c.volume[t - 29:t + 1]
    assert row["volume_z30"] == pytest.approx((v[-1] - v.mean()) / v.std(), rel=1e-9)
    hours = (c.open_time[t] % 86_400_000) / 3_600_000
    assert row["hour_sin"] == pytest.approx(math.sin(2 * math.pi * hours / 24), abs=1e-12)
    assert row["hour_cos"] == pytest.approx(math.cos(2 * math.pi * hours / 24), abs=1e-12)


@pytest.mark.parametrize("spec", [FeatureSpec(), ALL_FAMILIES], ids=["seed", "all"])
def test_streaming_one_candle_at_a_time_equals_batch_exactly(shared_data, spec):
    c = first_rows(shared_data, "SOLUSDT", spec.history + 400)
    batch = compute_features(c, spec)
    keep = spec.history   # the live loop's bounded buffer: only the last `history` candles
    for t in range(spec.history - 1, len(c)):
        window = c.slice(max(0, t + 1 - keep), t + 1)
        live = newest_features(window, spec)
        assert np.array_equal(live, batch[t]), f"bar {t} differs"


def test_features_are_causal_a_future_change_moves_no_past_row(shared_data):
    c = first_rows(shared_data, "XRPUSDT", 1700)
    before = compute_features(c, ALL_FAMILIES)
    cols = {k: v.copy() for k, v in c.columns().items()}
    for name in ("open", "high", "low", "close"):
        cols[name][1600:] *= 1.5
    cols["volume"][1600:] *= 3
    after = compute_features(Candles.from_columns(cols), ALL_FAMILIES)
    assert np.array_equal(before[:1600], after[:1600], equal_nan=True)
    assert not np.array_equal(before[1600:], after[1600:])


def test_spec_hash_and_json_round_trip():
    spec = ALL_FAMILIES
    again = FeatureSpec.from_json(spec.to_json())
    assert again == spec and again.hash == spec.hash
    assert FeatureSpec().hash != spec.hash
    with pytest.raises(ConfigError, match="unknown key"):
        FeatureSpec.from_json('{"lags": [0], "colour": 1}')
    with pytest.raises(ConfigError, match="features.rsi"):
        FeatureSpec(rsi=-1)
    with pytest.raises(ConfigError, match="listed twice"):
        FeatureSpec(lags=(0, 1, 1))


def test_newest_features_needs_a_full_history(shared_data):
    c = first_rows(shared_data, "BTCUSDT", 1000)
    with pytest.raises(DataError, match="needs the last 1441"):
        newest_features(c, FeatureSpec())


def _bars(opens, highs, lows, closes=None):
    n = len(opens)
    closes = opens if closes is None else closes
    return Candles.from_columns({"open_time": np.arange(n, dtype=np.int64) * 60_000,
                                 "open": np.array(opens, float), "high": np.array(highs, float),
                                 "low": np.array(lows, float), "close": np.array(closes, float),
                                 "volume": np.ones(n)})


def test_barrier_label_is_path_aware_and_stop_first():
    spec = LabelSpec(take_profit=0.01, stop_loss=0.02, horizon=3)
    # bar 0 decides; entry at bar 1's open 100: target 101, stop 98
    up_first = _bars([100, 100, 100, 100, 100], [100, 100.5, 101.2, 100, 100], [100, 99.5, 99, 97, 100])
    assert barrier_labels(up_first, spec)[0][0] == 1       # the seed's bug would also see -2 % (bar 3)
    down_first = _bars([100, 100, 100, 100, 100], [100, 100.5, 100, 102, 100], [100, 99.5, 97.9, 99, 100])
    assert barrier_labels(down_first, spec)[0][0] == 0
    both = _bars([100, 100, 100, 100, 100], [100, 101.5, 100, 100, 100], [100, 97.5, 100, 100, 100])
    label, outcome = barrier_labels(both, spec)
    assert label[0] == 0 and outcome[0] == -0.02           # both in one candle: the stop
    neither = _bars([100, 100, 100, 100, 100], [100, 100.5, 100.5, 100.5, 100], [100, 99, 99, 99, 100],
                    [100, 100, 100, 100.4, 100])
    label, outcome = barrier_labels(neither, spec)
    assert label[0] == 0 and outcome[0] == pytest.approx(0.004)
    assert label[-1] == UNKNOWN and label[-2] == UNKNOWN   # horizon past the data, nothing touched


def test_labels_match_a_plain_python_oracle(shared_data):
    c = first_rows(shared_data, "LAYERUSDT", 3000)
    spec = LabelSpec()
    label, _ = barrier_labels(c, spec)
    n = len(c)
    for t in range(0, n - 1, 7):
        entry = c.open[t + 1]
        want = UNKNOWN
        for k in range(t + 1, min(n - 1, t + spec.horizon) + 1):
            if c.low[k] <= entry * (1 - spec.stop_loss):
                want = 0
                break
            if c.high[k] >= entry * (1 + spec.take_profit):
                want = 1
                break
        if want == UNKNOWN and t + spec.horizon <= n - 1:
            want = 0
        assert label[t] == want, t
    assert 0 < (label == 1).mean() < 1


def test_purge_drops_the_rows_whose_label_looks_past_the_window():
    assert purged_stop(1000, 60) == 940
    assert purged_stop(30, 60) == 0
