"""Indicator kernels: against slow plain-Python references and TA-Lib on real candles, edge
lengths, flat series, the bad-bar rule (NaN/inf), prefix invariance (no look-ahead), drift
over a year of 1m bars, use from other numba code, and the public wrappers' validation."""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import talib

from support import reference_indicators as ref
from binance_cluster.strategies import indicators as ind
from binance_cluster.errors import ConfigError, DataError
from binance_cluster.kernels import indicators as K
from binance_cluster.kernels._jit import jit

SYMBOLS = ("BTCUSDT", "LAYERUSDT", "XRPUSDT")  # ~1e5, falling 3.4 -> 0.8, ~2
HEADER = "open_time,open,high,low,close,volume"
REF_BARS = 3000  # the Python references are O(bars * window)


@dataclass(frozen=True, slots=True)
class Bars:
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def head(self, k: int) -> "Bars":
        return Bars(*(np.ascontiguousarray(a[:k]) for a in self.arrays()))

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.high, self.low, self.close, self.volume


@pytest.fixture(scope="session")
def market(shared_data) -> dict[str, Bars]:
    """High, low, close, volume of a few real symbols (about 43,000 1m bars each)."""
    out = {}
    for symbol in SYMBOLS:
        path = shared_data / f"{symbol}-1m.csv.gz"
        with gzip.open(path, "rt") as f:
            assert f.readline().strip() == HEADER, path
            rows = np.loadtxt(f, delimiter=",")
        out[symbol] = Bars(*(np.ascontiguousarray(rows[:, i]) for i in (2, 3, 4, 5)))
    return out


# ---------------------------------------------------------------------------------------
# the indicators under test: ours, the reference, TA-Lib (when it has it)

PRICE, OSCILLATOR, UNIT = "price", "oscillator", "unit"


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    ours: Callable[[Bars], object]
    ref: Callable[[Bars], object]
    talib: Callable[[Bars], object] | None
    scale: str
    warmup: int  # bars before every output is defined
    reads: str  # the inputs it reads: h(igh), l(ow), c(lose), v(olume)
    # absolute tolerances in units of the scale (price level, 100, or 1); measured errors
    # are 10x to 1000x below them
    ref_tol: float = 1e-13
    talib_tol: float = 1e-12

    def __str__(self) -> str:
        return self.name


def bbands(b, n, k):
    upper, mid, lower = talib.BBANDS(b.close, n, k, k, 0)
    return mid, upper, lower


CASES = [
    Case("sma20", lambda b: K.sma(b.close, 20), lambda b: ref.sma(b.close, 20),
         lambda b: talib.SMA(b.close, 20), PRICE, 19, "c"),
    Case("sma3", lambda b: K.sma(b.close, 3), lambda b: ref.sma(b.close, 3),
         lambda b: talib.SMA(b.close, 3), PRICE, 2, "c"),
    Case("ema20", lambda b: K.ema(b.close, 20), lambda b: ref.ema(b.close, 20),
         lambda b: talib.EMA(b.close, 20), PRICE, 19, "c"),
    Case("ema2", lambda b: K.ema(b.close, 2), lambda b: ref.ema(b.close, 2),
         lambda b: talib.EMA(b.close, 2), PRICE, 1, "c"),
    Case("wma20", lambda b: K.wma(b.close, 20), lambda b: ref.wma(b.close, 20),
         lambda b: talib.WMA(b.close, 20), PRICE, 19, "c", 2e-13),
    Case("rsi14", lambda b: K.rsi(b.close, 14), lambda b: ref.rsi(b.close, 14),
         lambda b: talib.RSI(b.close, 14), OSCILLATOR, 14, "c"),
    Case("rsi3", lambda b: K.rsi(b.close, 3), lambda b: ref.rsi(b.close, 3),
         lambda b: talib.RSI(b.close, 3), OSCILLATOR, 3, "c"),
    Case("macd", lambda b: K.macd(b.close, 12, 26, 9), lambda b: ref.macd(b.close, 12, 26, 9),
         lambda b: talib.MACD(b.close, 12, 26, 9), PRICE, 33, "c"),
    Case("macd5-35-5", lambda b: K.macd(b.close, 5, 35, 5),
         lambda b: ref.macd(b.close, 5, 35, 5), lambda b: talib.MACD(b.close, 5, 35, 5),
         PRICE, 38, "c"),
    Case("bollinger", lambda b: K.bollinger(b.close, 20, 2.0),
         lambda b: ref.bollinger(b.close, 20, 2.0), lambda b: bbands(b, 20, 2.0), PRICE, 19, "c"),
    Case("bollinger7", lambda b: K.bollinger(b.close, 7, 1.5),
         lambda b: ref.bollinger(b.close, 7, 1.5), lambda b: bbands(b, 7, 1.5), PRICE, 6, "c"),
    Case("atr14", lambda b: K.atr(b.high, b.low, b.close, 14),
         lambda b: ref.atr(b.high, b.low, b.close, 14),
         lambda b: talib.ATR(b.high, b.low, b.close, 14), PRICE, 14, "hlc"),
    Case("atr1", lambda b: K.atr(b.high, b.low, b.close, 1),
         lambda b: ref.atr(b.high, b.low, b.close, 1),
         lambda b: talib.ATR(b.high, b.low, b.close, 1), PRICE, 1, "hlc"),
    Case("stoch", lambda b: K.stoch(b.high, b.low, b.close, 14, 3),
         lambda b: ref.stoch(b.high, b.low, b.close, 14, 3),
         lambda b: talib.STOCHF(b.high, b.low, b.close, 14, 3, 0), OSCILLATOR, 15, "hlc"),
    Case("stoch5-5", lambda b: K.stoch(b.high, b.low, b.close, 5, 5),
         lambda b: ref.stoch(b.high, b.low, b.close, 5, 5),
         lambda b: talib.STOCHF(b.high, b.low, b.close, 5, 5, 0), OSCILLATOR, 8, "hlc"),
    Case("vwap20", lambda b: K.vwap(b.high, b.low, b.close, b.volume, 20),
         lambda b: ref.vwap(b.high, b.low, b.close, b.volume, 20), None, PRICE, 19, "hlcv"),
    Case("max20", lambda b: K.rolling_max(b.close, 20), lambda b: ref.rolling_max(b.close, 20),
         lambda b: talib.MAX(b.close, 20), PRICE, 19, "c", 0.0, 0.0),
    Case("max3", lambda b: K.rolling_max(b.high, 3), lambda b: ref.rolling_max(b.high, 3),
         lambda b: talib.MAX(b.high, 3), PRICE, 2, "h", 0.0, 0.0),
    Case("min60", lambda b: K.rolling_min(b.low, 60), lambda b: ref.rolling_min(b.low, 60),
         lambda b: talib.MIN(b.low, 60), PRICE, 59, "l", 0.0, 0.0),
    Case("min4", lambda b: K.rolling_min(b.close, 4), lambda b: ref.rolling_min(b.close, 4),
         lambda b: talib.MIN(b.close, 4), PRICE, 3, "c", 0.0, 0.0),
    Case("std20", lambda b: K.rolling_std(b.close, 20, 0),
         lambda b: ref.rolling_std(b.close, 20),
         lambda b: talib.STDDEV(b.close, 20, 1.0), PRICE, 19, "c"),
    Case("std10-ddof1", lambda b: K.rolling_std(b.close, 10, 1),
         lambda b: ref.rolling_std(b.close, 10, 1), None, PRICE, 9, "c"),
    Case("zscore20", lambda b: K.zscore(b.close, 20), lambda b: ref.zscore(b.close, 20),
         None, UNIT, 19, "c", 1e-10),
    Case("log_returns", lambda b: K.log_returns(b.close), lambda b: ref.log_returns(b.close),
         None, UNIT, 1, "c"),  # checked to 2 ulp instead
]


def outputs(value) -> tuple[np.ndarray, ...]:
    items = value if isinstance(value, tuple) else (value,)
    return tuple(np.asarray(v, dtype=np.float64) for v in items)


def scale_of(case: Case, bars: Bars) -> float:
    if case.scale == PRICE:
        return float(np.nanmax(np.abs(bars.close)))
    return 100.0 if case.scale == OSCILLATOR else 1.0


def assert_matches(ours, expected, atol: float, what: str) -> None:
    """Same NaN positions, and values within atol (exact when atol is 0)."""
    for i, (a, b) in enumerate(zip(outputs(ours), outputs(expected), strict=True)):
        assert a.shape == b.shape, what
        nan_a, nan_b = np.isnan(a), np.isnan(b)
        assert np.array_equal(nan_a, nan_b), \
            f"{what}[{i}]: NaN differs at {np.flatnonzero(nan_a != nan_b)[:5]}"
        diff = np.abs(a[~nan_a] - b[~nan_b])
        if diff.size:
            worst = int(np.argmax(diff))
            assert diff[worst] <= atol, \
                f"{what}[{i}]: off by {diff[worst]:.3g} (> {atol:.3g}) at defined value {worst}"


def assert_matches_reference(case: Case, ours, bars: Bars, scale: float, what: str) -> None:
    expected = case.ref(bars)
    if case.name != "log_returns":
        assert_matches(ours, expected, case.ref_tol * scale, what)
        return
    # log returns: within 2 ulp of the exactly rounded value (the reference uses Decimal)
    got, want = outputs(ours)[0], np.asarray(expected)
    assert np.array_equal(np.isnan(got), np.isnan(want)), what
    ok = ~np.isnan(want)
    assert np.all(np.abs(got[ok] - want[ok]) <= 2 * np.spacing(np.abs(want[ok]))), what


def assert_bitwise(a, b, what: str) -> None:
    for i, (x, y) in enumerate(zip(outputs(a), outputs(b), strict=True)):
        assert x.shape == y.shape and np.array_equal(x.view(np.int64), y.view(np.int64)), \
            f"{what}[{i}]: differs at {np.flatnonzero(x.view(np.int64) != y.view(np.int64))[:5]}"


def with_some_bad_bars(bars: Bars) -> Bars:
    """A copy with three bad bars, all after bar 700 (shorter prefixes are clean)."""
    high, low, close, volume = (a.copy() for a in bars.arrays())
    close[700] = np.nan
    high[1900] = np.nan
    volume[2500] = np.inf
    return Bars(high, low, close, volume)


def with_bad_bars(bars: Bars) -> Bars:
    """A copy with NaN / inf in every input at scattered bars (low <= high kept)."""
    high, low, close, volume = (a.copy() for a in bars.arrays())
    close[[0, 7, 8, 9, 1203, 2999]] = np.nan
    close[400] = np.inf
    close[2400] = -np.inf
    high[[60, 1500]] = np.nan
    low[[61, 2100]] = np.nan
    high[1800] = low[1800] = np.inf
    volume[[900, 901]] = np.nan
    volume[2700] = np.inf
    return Bars(high, low, close, volume)


# ---------------------------------------------------------------------------------------
# numbers


@pytest.mark.parametrize("case", [c for c in CASES if c.talib], ids=str)
def test_matches_talib_on_real_data(case, market):
    for symbol, bars in market.items():
        ours, theirs = outputs(case.ours(bars)), outputs(case.talib(bars))
        if case.name.startswith("stoch"):
            # TA-Lib's STOCHF blanks fastk until fastd exists; ours starts it at bar k-1
            k = 14 if case.name == "stoch" else 5
            assert np.isnan(ours[0][:k - 1]).all() and not np.isnan(ours[0][k - 1:]).any()
            ours = (np.where(np.isnan(theirs[0]), np.nan, ours[0]), ours[1])
        assert_matches(ours, theirs, case.talib_tol * scale_of(case, bars),
                       f"{case} vs TA-Lib on {symbol}")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_reference_on_real_data(case, market):
    for symbol in ("BTCUSDT", "LAYERUSDT"):
        bars = market[symbol].head(REF_BARS)
        assert_matches_reference(case, case.ours(bars), bars, scale_of(case, bars),
                                 f"{case} vs reference on {symbol}")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_edge_lengths(case, market):
    bars = market["XRPUSDT"]
    w = case.warmup + 1  # bars needed for every output to be defined
    for size in sorted({0, 1, w - 1, w, w + 1}):
        if size < 0:
            continue
        part = bars.head(size)
        ours = outputs(case.ours(part))
        assert all(o.shape == (size,) for o in ours)
        assert_matches(ours, case.ref(part), case.ref_tol * scale_of(case, bars),
                       f"{case} on {size} bars")
        if size:
            defined = [not np.isnan(o[-1]) for o in ours]
            assert all(defined) == (size >= w), f"{case} on {size} bars: {defined}"
        if case.talib and size and not case.name.startswith("stoch"):
            assert_matches(ours, case.talib(part), case.talib_tol * scale_of(case, bars),
                           f"{case} vs TA-Lib on {size} bars")


def test_flat_series_is_exact():
    c = np.full(200, 43_117.3)
    h, lo, v = c.copy(), c.copy(), np.full(200, 7.5)
    assert np.all(K.sma(c, 20)[19:] == c[0]) and np.all(K.wma(c, 20)[19:] == c[0])
    assert np.all(K.rolling_std(c, 20, 0)[19:] == 0.0) and np.all(K.rolling_std(c, 9, 1)[8:] == 0)
    assert np.all(K.zscore(c, 20)[19:] == 0.0)
    for band in K.bollinger(c, 20, 2.0):
        assert np.all(band[19:] == c[0])
    assert np.all(K.rolling_max(c, 20)[19:] == c[0]) and np.all(K.rolling_min(c, 3)[2:] == c[0])
    assert np.all(K.log_returns(c)[1:] == 0.0)
    assert np.all(K.atr(h, lo, c, 14)[14:] == 0.0)
    # TA-Lib defines RSI and %K of a flat series as 0, and so do we
    assert np.all(K.rsi(c, 14)[14:] == 0.0) and np.all(talib.RSI(c, 14)[14:] == 0.0)
    pk, pd = K.stoch(h, lo, c, 14, 3)
    assert np.all(pk[13:] == 0.0) and np.all(pd[15:] == 0.0)
    assert np.all(talib.STOCHF(h, lo, c, 14, 3, 0)[0][15:] == 0.0)
    # EMA and MACD carry the seed's rounding (n equal values summed, then divided by n)
    ulp = np.spacing(c[0])
    assert np.all(np.abs(K.ema(c, 20)[19:] - c[0]) <= 2 * ulp)
    assert np.all(np.abs(K.macd(c, 12, 26, 9)[0][33:]) <= 4 * ulp)
    assert np.all(np.abs(K.vwap(h, lo, c, v, 20)[19:] - c[0]) <= 2 * ulp)


def test_flat_stretch_after_moves_is_exact(market):
    """Running sums carry rounding from earlier windows; flat windows still come out exact."""
    x = market["BTCUSDT"].close[:3000].copy()
    x[1000:1100] = x[999]
    flat = slice(1000 + 19, 1100)
    assert np.all(K.sma(x, 20)[flat] == x[999]) and np.all(K.wma(x, 20)[flat] == x[999])
    assert np.all(K.rolling_std(x, 20, 0)[flat] == 0.0) and np.all(K.zscore(x, 20)[flat] == 0.0)
    mid, upper, lower = K.bollinger(x, 20, 2.0)
    assert np.all(upper[flat] == x[999]) and np.all(lower[flat] == x[999])
    assert np.all(K.rolling_std(x, 20, 0)[1100:1119] > 0)


def test_vwap_of_windows_without_volume_is_nan(market):
    b = market["BTCUSDT"]
    v = b.volume[:500].copy()
    v[100:140] = 0.0
    out = K.vwap(b.high[:500], b.low[:500], b.close[:500], v, 20)
    assert np.isnan(out[119:140]).all()
    assert not np.isnan(out[np.r_[19:119, 140:500]]).any()
    assert_matches(out, ref.vwap(b.high[:500], b.low[:500], b.close[:500], v, 20),
                   1e-12 * b.close.max(), "vwap with a dry spell")


def test_integer_tick_sma_is_the_family_sma(market):
    """The integer-tick variant averages the same windows as `sma`; it only decides their
    order exactly: wherever the float SMAs differ by more than rounding, the orders agree."""
    x = market["XRPUSDT"].close[:20_000]
    d = K.price_decimals(x)
    assert d == 4
    ticks = K.to_ticks(x, 10.0 ** d)
    assert np.array_equal(ticks, np.round(x * 10 ** d).astype(np.int64))
    prefix = K.tick_prefix(ticks)
    means = {}
    for n in (5, 12, 30):
        sums = prefix[n:] - prefix[:-n]
        means[n] = sums
        np.testing.assert_allclose(sums / n / 10.0 ** d, K.sma(x, n)[n - 1:], rtol=1e-13)
    ties = 0
    for f, s in ((5, 12), (5, 30), (12, 30)):
        fs, ss = means[f][s - f:], means[s]
        gap = K.sma(x, f)[s - 1:] - K.sma(x, s)[s - 1:]
        rel = np.array([K.mean_relation(a, f, b, s, True) for a, b in zip(fs, ss)])
        assert np.array_equal(rel, [K.mean_relation(a, f, b, s, False) for a, b in zip(fs, ss)])
        clear = np.abs(gap) > 1e-12 * x.max()
        assert np.array_equal(rel[clear], np.sign(gap[clear]))
        ties += int(np.count_nonzero(rel == 0))
    assert ties > 0


def test_bollinger_mid_is_sma_bitwise(market):
    x = market["LAYERUSDT"].close
    assert_bitwise(K.bollinger(x, 20, 2.0)[0], K.sma(x, 20), "bollinger mid vs sma")


# ---------------------------------------------------------------------------------------
# bad bars: NaN and infinities


@pytest.mark.parametrize("case", CASES, ids=str)
def test_bad_bars_split_the_series(case, market):
    bars = with_bad_bars(market["LAYERUSDT"].head(REF_BARS))
    read = [a for a, name in zip(bars.arrays(), "hlcv") if name in case.reads]
    bad = [int(i) for i in np.flatnonzero(~np.all([np.isfinite(a) for a in read], axis=0))]
    assert len(bad) >= 3
    ours = outputs(case.ours(bars))
    for o in ours:
        assert np.isnan(o[bad]).all(), f"{case}: a bad bar is not NaN"
    # each stretch between bad bars is computed exactly as a series of its own
    edges = [-1, *bad, REF_BARS]
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi - lo > 1:
            piece = outputs(case.ours(Bars(*(a[lo + 1:hi].copy() for a in bars.arrays()))))
            for i, o in enumerate(ours):
                assert_bitwise(o[lo + 1:hi], piece[i], f"{case} stretch {lo + 1}:{hi}")
    # and matches the reference's own implementation of the rule
    assert_matches_reference(case, ours, bars, scale_of(case, market["LAYERUSDT"]),
                             f"{case} with bad bars vs reference")
    nothing = Bars(*(np.full(50, np.nan) for _ in range(4)))
    assert all(np.isnan(o).all() for o in outputs(case.ours(nothing))), f"{case}: all NaN in"



def test_random_series_windows_and_bad_bars():
    """Short random series (price scales 1e-6..1e6, flat stretches, zero volumes, bad bars)
    with random windows, against the references."""
    rng = np.random.default_rng(2024)
    for trial in range(60):
        size = int(rng.integers(0, 150))
        c = 10 ** rng.uniform(-6, 6) * np.exp(np.cumsum(rng.normal(0, 0.01, size)))
        if size and rng.random() < 0.4:
            i = int(rng.integers(0, size))
            c[i:i + int(rng.integers(2, 40))] = c[i]
        h = c * (1 + rng.uniform(0, 0.01, size))
        lo = c * (1 - rng.uniform(0, 0.01, size))
        v = rng.exponential(1.0, size) * (rng.random(size) < 0.8)
        for arr, bad in ((c, (np.nan, np.inf, -np.inf)), (h, (np.nan,)), (lo, (np.nan,)),
                         (v, (np.nan, np.inf))):
            for i in rng.integers(0, max(size, 1), int(rng.integers(0, 4)) if size else 0):
                arr[i] = rng.choice(bad)
        n = int(rng.integers(1, 30))
        fast = int(rng.integers(1, 10))
        slow = fast + int(rng.integers(1, 15))
        d = int(rng.integers(1, 6))
        finite = c[np.isfinite(c)]
        tol = 1e-13 * (np.abs(finite).max() if finite.size else 1.0)
        what = f"trial {trial}: {size} bars, n={n}"
        pairs = [
            (K.sma(c, n), ref.sma(c, n), tol), (K.ema(c, n), ref.ema(c, n), tol),
            (K.wma(c, n), ref.wma(c, n), 2 * tol), (K.rsi(c, n), ref.rsi(c, n), 1e-11),
            (K.macd(c, fast, slow, d), ref.macd(c, fast, slow, d), tol),
            (K.bollinger(c, n, 1.7), ref.bollinger(c, n, 1.7), tol),
            (K.atr(h, lo, c, n), ref.atr(h, lo, c, n), tol),
            (K.stoch(h, lo, c, n, d), ref.stoch(h, lo, c, n, d), 1e-11),
            (K.vwap(h, lo, c, v, n), ref.vwap(h, lo, c, v, n), tol),
            (K.rolling_max(c, n), ref.rolling_max(c, n), 0.0),
            (K.rolling_min(c, n), ref.rolling_min(c, n), 0.0),
            (K.rolling_std(c, n, 0), ref.rolling_std(c, n, 0), tol),
        ]
        if n >= 2:
            pairs += [(K.rolling_std(c, n, 1), ref.rolling_std(c, n, 1), tol),
                      (K.zscore(c, n), ref.zscore(c, n), 1e-9)]
        for i, (ours, expected, atol) in enumerate(pairs):
            assert_matches(ours, expected, atol, f"{what}, pair {i}")


# ---------------------------------------------------------------------------------------
# no look-ahead


@pytest.mark.parametrize("case", CASES, ids=str)
def test_prefix_invariance(case, market):
    """Outputs on the first k bars equal the first k outputs on all bars, bit for bit.

    Prefixes up to bar 700 are clean and take the kernels' fast path; longer ones and the
    full series hold bad bars and take the split-and-restart path: the two agree."""
    bars = with_some_bad_bars(market["BTCUSDT"].head(REF_BARS))
    full = outputs(case.ours(bars))
    rng = np.random.default_rng(sum(map(ord, case.name)))
    ks = {0, 1, case.warmup, case.warmup + 1, REF_BARS - 1, *rng.integers(2, REF_BARS, 50)}
    for k in sorted(int(k) for k in ks):
        part = outputs(case.ours(bars.head(k)))
        assert_bitwise(part, tuple(f[:k] for f in full), f"{case} on the first {k} bars")


# ---------------------------------------------------------------------------------------
# long series


def test_running_sums_do_not_drift_over_a_year():
    """A year of 1m bars: late values equal a fresh computation from the window alone."""
    rng = np.random.default_rng(11)
    year = 525_600
    x = 60_000.0 * np.exp(np.cumsum(rng.normal(2e-6, 6e-4, year)))
    for n in (20, 1440):
        mean, std, wma = K.sma(x, n), K.rolling_std(x, n, 0), K.wma(x, n)
        weights = np.arange(1, n + 1, dtype=np.float64)
        for t in (year - 1, year - 2, year - 777, year // 2 + 3):
            window = x[t - n + 1:t + 1]
            fresh_mean = math.fsum(window) / n
            fresh_std = math.sqrt(math.fsum((window - fresh_mean) ** 2) / n)
            fresh_wma = math.fsum(weights * window) / weights.sum()
            assert abs(mean[t] / fresh_mean - 1) <= 1e-12, (n, t)
            assert abs(std[t] / fresh_std - 1) <= 1e-9, (n, t)
            assert abs(wma[t] / fresh_wma - 1) <= 1e-12, (n, t)


# ---------------------------------------------------------------------------------------
# use from numba code, and the wrappers


@jit
def _strategy_like_kernel(high, low, close):
    line, signal, hist = K.macd(close, 12, 26, 9)
    pk, pd = K.stoch(high, low, close, 14, 3)
    spread = K.rolling_std(close, 20, 0)
    return line[-1] - signal[-1] - hist[-1], pd[-1], spread[-1]


def test_kernels_compose_inside_numba(market):
    b = market["XRPUSDT"].head(2000)
    got = _strategy_like_kernel(b.high, b.low, b.close)
    line, signal, hist = ind.macd(b.close)
    want = (line[-1] - signal[-1] - hist[-1], ind.stoch(b.high, b.low, b.close)[1][-1],
            ind.rolling_std(b.close, 20, 0)[-1])
    assert got == want


def test_wrappers_equal_kernels_and_take_lists(market):
    b = market["BTCUSDT"].head(500)
    assert_bitwise(ind.vwap(b.high, b.low, b.close, b.volume, 30),
                   K.vwap(b.high, b.low, b.close, b.volume, 30), "vwap wrapper")
    assert_bitwise(ind.stoch(b.high, b.low, b.close, 9, 2), K.stoch(b.high, b.low, b.close, 9, 2),
                   "stoch wrapper")
    as_list = ind.sma(list(b.close), 5)
    assert as_list.dtype == np.float64 and as_list.flags.c_contiguous
    assert_bitwise(as_list, K.sma(b.close, 5), "sma from a list")
    ints = np.arange(1, 50, dtype=np.int32)
    assert_bitwise(ind.rolling_max(ints, np.int64(7)),
                   K.rolling_max(ints.astype(np.float64), 7), "int input")
    assert_bitwise(ind.rolling_std(b.close[::3], 10, 1),
                   K.rolling_std(np.ascontiguousarray(b.close[::3]), 10, 1), "strided input")


X = np.linspace(1.0, 2.0, 50)


@pytest.mark.parametrize("call, error, message", [
    (lambda: ind.sma(np.ones((5, 2)), 2), DataError, "x: expected a 1-D array"),
    (lambda: ind.ema(["a", "b"], 2), DataError, "x: expected real numbers"),
    (lambda: ind.wma(np.array([True, False]), 1), DataError, "x: expected real numbers"),
    (lambda: ind.sma(X, 0), ConfigError, "n must be >= 1, got 0"),
    (lambda: ind.rsi(X, 2.5), ConfigError, "n must be an integer >= 1, got 2.5"),
    (lambda: ind.rolling_max(X, True), ConfigError, "n must be an integer"),
    (lambda: ind.rolling_min(X, 2**41), ConfigError, "n must be <="),
    (lambda: ind.rolling_std(X, 5, 5), ConfigError, "ddof (5) must be below n (5)"),
    (lambda: ind.rolling_std(X, 5, -1), ConfigError, "ddof must be >= 0"),
    (lambda: ind.zscore(X, 1), ConfigError, "n must be >= 2, got 1"),
    (lambda: ind.macd(X, 26, 12), ConfigError, "fast (26) must be below slow (12)"),
    (lambda: ind.macd(X, 12, 26, 0), ConfigError, "signal must be >= 1"),
    (lambda: ind.bollinger(X, 20, -1.0), ConfigError, "k must be a finite number >= 0"),
    (lambda: ind.bollinger(X, 20, float("nan")), ConfigError, "k must be a finite number"),
    (lambda: ind.stoch(X, X, X, 14, 0), ConfigError, "d must be >= 1"),
    (lambda: ind.atr(X + 1, X, X[:-1]), DataError, "input lengths differ: high=50, low=50, "
                                                   "close=49"),
    (lambda: ind.stoch(X, X + 1, X), DataError, "low > high at index 0"),
    (lambda: ind.vwap(X + 1, X, X, -X, 5), DataError, "volume: negative value"),
    (lambda: ind.log_returns([1.0, 0.0, 2.0]), DataError, "x: log returns need positive values"),
])
def test_wrappers_reject_bad_input(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert message in str(raised.value)
    assert raised.value.exit_code == 2


def test_kernels_refuse_bad_windows_and_lengths():
    with pytest.raises(ValueError):
        K.sma(X, 0)
    with pytest.raises(ValueError):
        K.macd(X, 26, 12, 9)
    with pytest.raises(ValueError):
        K.atr(X + 1, X, X[:10], 14)
