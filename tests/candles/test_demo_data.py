"""Synthetic demo data: determinism, the statistical texture of real markets measured on the
generated candles, store metadata, and the `demo-data` command (serial and under mpirun)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from binance_cluster.candles import demo_data as demo
from binance_cluster.cli import main
from binance_cluster.candles.store import CandleStore, validate_candles
from binance_cluster.types import DAY_MS, MINUTE_MS, parse_time_ms

NAMES = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT", "LINKUSDT")


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> CandleStore:
    """The default demo store: 8 symbols x 60 days, seed 42, written by the command."""
    root = tmp_path_factory.mktemp("demo") / "store"
    assert main(["demo-data", "--store", str(root)]) == 0
    return CandleStore(root)


@pytest.fixture(scope="module")
def minutes(demo_store) -> dict:
    return {s: demo_store.read(s, "1m") for s in demo_store.symbols()}


def log_returns(c) -> tuple[np.ndarray, np.ndarray]:
    """1m log returns between consecutive minutes (never across a gap), and their open times."""
    ok = np.diff(c.open_time) == MINUTE_MS
    r = np.diff(np.log(c.close))
    return r[ok], c.open_time[1:][ok]


def kurtosis(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x ** 4).mean() / (x ** 2).mean() ** 2)


def autocorr(x: np.ndarray, lag: int) -> float:
    x = x - x.mean()
    return float((x[:-lag] * x[lag:]).mean() / x.var())


def test_default_store_shape_and_metadata(demo_store, minutes):
    spec = demo.make_spec()
    assert demo_store.symbols() == sorted(NAMES)
    missing = demo.outages(spec)
    assert 3 <= int(np.count_nonzero(np.diff(missing.astype(int)) == 1)) <= 6
    for symbol, c in minutes.items():
        assert len(c) == spec.minutes - int(missing.sum())
        assert c.open_time[0] == parse_time_ms("2025-04-02")
        assert c.open_time[-1] == parse_time_ms("2025-06-01") - MINUTE_MS
        attrs = demo_store.attrs(symbol)
        assert attrs["synthetic"] is True or attrs["synthetic"] == 1
        assert attrs["source"] == "binance-cluster demo-data seed=42"
        assert attrs["demo_recipe"] == spec.recipe
        assert sorted(c.extras) == ["quote_volume", "taker_buy_base", "taker_buy_quote", "trades"]
    assert demo_store.attrs("SOLUSDT")["demo_regime"].startswith("trend")
    assert demo_store.attrs("LINKUSDT")["demo_regime"].startswith("crash")
    assert demo_store.attrs("BTCUSDT")["demo_regime"] == "none"


def test_candles_are_valid_tick_rounded_and_continuous(minutes):
    for i, (symbol, c) in enumerate(sorted(minutes.items(), key=lambda kv: NAMES.index(kv[0]))):
        validate_candles(c, "1m")
        scale = 10 ** demo.SYMBOLS[i].price_decimals
        for name in ("open", "high", "low", "close"):
            ticks = c.column(name) * scale
            assert np.all(np.abs(ticks - np.round(ticks)) < 1e-6), (symbol, name)
        assert np.all(c.low <= np.minimum(c.open, c.close))
        assert np.all(c.high >= np.maximum(c.open, c.close))
        assert np.mean(c.high > np.maximum(c.open, c.close)) > 0.3  # wicks exist
        step = np.diff(c.open_time) == MINUTE_MS
        np.testing.assert_array_equal(c.open[1:][step], c.close[:-1][step])  # opens at last close
        after_gap = ~step
        assert np.all(np.abs(c.open[1:][after_gap] / c.close[:-1][after_gap] - 1) < 0.1)
        assert np.all(c.extras["taker_buy_base"] <= c.volume)
        assert np.all(c.extras["trades"] >= 0) and c.extras["trades"].mean() > 50
        qv = c.extras["quote_volume"]
        assert np.all((qv >= c.volume * c.low * 0.999) & (qv <= c.volume * c.high * 1.001 + 1e-3))


def test_fat_tails_and_volatility_clustering(minutes):
    for symbol, c in minutes.items():
        r, t = log_returns(c)
        assert kurtosis(r) > 6, symbol  # a normal distribution has 3
        hour = (t // 3_600_000) % 24
        profile = np.array([np.abs(r[hour == h]).mean() for h in range(24)])
        deseasoned = np.abs(r) / profile[hour]  # clustering beyond the daily rhythm
        for lag in (1, 10, 60, 240):
            assert autocorr(deseasoned, lag) > 0.05, (symbol, lag)
        shuffled = np.random.default_rng(0).permutation(deseasoned)
        assert abs(autocorr(shuffled, 10)) < 0.02


def test_intraday_seasonality_of_volatility_and_volume(minutes):
    for symbol, c in minutes.items():
        r, t = log_returns(c)
        hour = (t // 3_600_000) % 24
        vol = np.array([np.abs(r[hour == h]).mean() for h in range(24)])
        assert vol.max() / vol.min() > 1.3, symbol
        assert 12 <= int(np.argmax(vol)) <= 17 or int(np.argmax(vol)) <= 1  # US session/Asia open
        assert 3 <= int(np.argmin(vol)) <= 7  # quiet early European morning
        vhour = (c.open_time // 3_600_000) % 24
        volume = np.array([c.volume[vhour == h].mean() for h in range(24)])
        assert volume.max() / volume.min() > 1.5, symbol


def test_symbols_move_together(minutes):
    common = minutes["BTCUSDT"].open_time
    for c in minutes.values():
        np.testing.assert_array_equal(c.open_time, common)  # outages hit every symbol
    rets = np.array([log_returns(minutes[s])[0] for s in NAMES])
    corr = np.corrcoef(rets)
    assert corr[0, 1] > 0.6  # BTC and ETH
    off = corr[~np.eye(len(NAMES), dtype=bool)]
    assert off.min() > 0.3 and off.mean() > 0.5
    assert np.all(corr[0, 1:] >= off.mean() - 0.05)  # BTC leads: the best-correlated to all


def test_trend_and_crash_regimes(minutes):
    spec = demo.make_spec()
    changes = {s: c.close[-1] / c.open[0] for s, c in minutes.items()}
    assert changes["SOLUSDT"] > 1.5 and max(changes, key=changes.get) == "SOLUSDT"
    link = minutes["LINKUSDT"]
    peak = np.maximum.accumulate(link.close)
    drawdown = 1 - link.close / peak
    assert drawdown.max() > 0.3
    a, b = spec.crash_window()
    start, end = spec.start_ms + a * MINUTE_MS, spec.start_ms + b * MINUTE_MS
    inside = (link.open_time >= start) & (link.open_time < end)
    assert link.close[inside][-1] / link.open[inside][0] < 0.6  # the crash itself
    r, t = log_returns(link)
    crash_vol = np.abs(r[(t >= start) & (t < end)]).mean()
    calm_vol = np.abs(r[t < start - DAY_MS]).mean()
    assert crash_vol > 1.8 * calm_vol
    crash_volume = link.volume[inside].mean()
    assert crash_volume > 2 * link.volume[link.open_time < start - DAY_MS].mean()
    for symbol, c in minutes.items():
        if symbol != "LINKUSDT":
            assert c.close[-1] / c.open[0] > 0.45  # nothing else crashed as far


def test_gaps_are_reported_by_the_store(demo_store):
    spec = demo.make_spec()
    missing = demo.outages(spec)
    starts = np.flatnonzero(np.diff(missing.astype(int)) == 1) + 1
    ends = np.flatnonzero(np.diff(missing.astype(int)) == -1) + 1
    expected = np.stack([spec.start_ms + (starts - 1) * MINUTE_MS,
                         spec.start_ms + ends * MINUTE_MS], axis=1)
    assert len(expected) == 4
    for symbol in demo_store.symbols():
        np.testing.assert_array_equal(demo_store.gaps(symbol, "1m"), expected)
        lengths = (expected[:, 1] - expected[:, 0]) // MINUTE_MS - 1
        assert np.all((lengths >= 3) & (lengths <= 90))


def test_info_shows_synthetic_files(demo_store, cli):
    code, out, err = cli("info", "--store", demo_store.root, "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert len(rows) == 8 and all(r["synthetic"] and r["gaps"] == 4 for r in rows)
    code, out, err = cli("info", "--store", demo_store.root)
    assert "BTCUSDT *" in out and "(* synthetic data)" in out


def read_all(store: CandleStore) -> dict:
    return {s: store.read(s, "1m").columns() for s in store.symbols()}


def test_same_seed_same_arrays_and_other_seed_differs(tmp_path, cli):
    args = ("--symbols", "3", "--days", "4", "--end", "2024-03-10")
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        code, out, err = cli("demo-data", "--store", tmp_path / name, "--seed", seed, *args)
        assert code == 0, err
    a, b, c = (read_all(CandleStore(tmp_path / n)) for n in "abc")
    assert sorted(a) == ["BNBUSDT", "BTCUSDT", "ETHUSDT"]
    for symbol in a:
        assert a[symbol].keys() == b[symbol].keys()
        for col in a[symbol]:
            np.testing.assert_array_equal(a[symbol][col], b[symbol][col])
        assert not np.array_equal(a[symbol]["close"][:1000], c[symbol]["close"][:1000])
    # a symbol does not depend on how many symbols are generated beside it
    spec = demo.make_spec(1, 4, 5, "2024-03-10")
    alone = demo.generate_symbol(spec, 1).columns()
    for col in alone:
        np.testing.assert_array_equal(alone[col], a["ETHUSDT"][col])


def test_rerun_is_a_no_op_and_other_recipes_are_refused(tmp_path, cli):
    root = tmp_path / "demo"
    code, out, err = cli("demo-data", "--store", root, "--symbols", "2", "--days", "3")
    assert code == 0, err
    assert "2 symbols" in out and "candles written" in out and "trend" not in out
    store = CandleStore(root)
    before = {s: store.path(s).read_bytes() for s in store.symbols()}
    code, out, err = cli("demo-data", "--store", root, "--symbols", "2", "--days", "3")
    assert code == 0, err
    assert "already up to date, nothing written" in out
    assert {s: store.path(s).read_bytes() for s in store.symbols()} == before
    for args, text in ((("--seed", "7"), "seed=7"), (("--days", "4"), "days=4"),
                       (("--end", "2025-05-01"), "end=2025-05-01")):
        code, out, err = cli("demo-data", "--store", root, "--symbols", "2", "--days", "3", *args)
        assert code == 2
        line = err.strip()
        assert "\n" not in line and "BTCUSDT.h5: holds demo data made with" in line and text in line
    assert {s: store.path(s).read_bytes() for s in store.symbols()} == before
    # more symbols with the same recipe extend the store, leaving the others as they were
    code, out, err = cli("demo-data", "--store", root, "--symbols", "4", "--days", "3")
    assert code == 0, err
    assert store.symbols() == ["BNBUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert all(store.path(s).read_bytes() == b for s, b in before.items())


def test_refuses_to_write_into_real_data(tmp_path, cli, shared_data):
    import csv
    import gzip

    with gzip.open(shared_data / "BTCUSDT-1m.csv.gz", "rt") as f:
        reader = csv.DictReader(f)
        rows = [next(reader) for _ in range(100)]
    from binance_cluster.types import Candles

    real = Candles.from_columns({k: np.array([float(r[k]) for r in rows])
                                 for k in ("open", "high", "low", "close", "volume")}
                                | {"open_time": np.array([int(r["open_time"]) for r in rows])})
    store = CandleStore(tmp_path / "real")
    store.append("BTCUSDT", "1m", real)
    before = store.path("BTCUSDT").read_bytes()
    code, out, err = cli("demo-data", "--store", store.root, "--days", "2")
    assert code == 2 and "holds real (non-synthetic) candles" in err
    assert store.path("BTCUSDT").read_bytes() == before
    assert store.symbols() == ["BTCUSDT"]  # nothing else written either


def test_bad_arguments(tmp_path, cli):
    for args, text in ((("--symbols", "0"), "symbols: 0 is out of range"),
                       (("--symbols", "17"), "symbols: 17 is out of range"),
                       (("--days", "0"), "days: 0 is out of range"),
                       (("--seed", "-1"), "seed: -1 must be"),
                       (("--end", "2025-06-01T00:00:30"), "is not on a whole minute"),
                       (("--end", "June"), "end: cannot read 'June'")):
        code, out, err = cli("demo-data", "--store", tmp_path / "x", *args)
        assert code == 2 and text in err, (args, err)
    assert not (tmp_path / "x").exists()


@pytest.mark.mpi
def test_demo_data_under_mpirun_equals_serial(tmp_path, mpirun, cli):
    args = ("--symbols", "4", "--days", "2", "--seed", "3")
    proc = mpirun(2, "-m", "binance_cluster", "demo-data", "--store", tmp_path / "mpi", *args)
    assert proc.returncode == 0, proc.stderr
    assert "4 symbols" in proc.stdout and proc.stdout.count("synthetic 1m candles") == 1
    code, out, err = cli("demo-data", "--store", tmp_path / "serial", *args)
    assert code == 0, err
    mpi = read_all(CandleStore(tmp_path / "mpi"))
    serial = read_all(CandleStore(tmp_path / "serial"))
    assert sorted(mpi) == sorted(serial) == ["BNBUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT"]
    for symbol in serial:
        for col in serial[symbol]:
            np.testing.assert_array_equal(mpi[symbol][col], serial[symbol][col])
