"""Strategy registry and causal signal kernels on real candles: no look-ahead, exact
crossovers, fused sweep signals equal to single runs, and references (TA-Lib, plain Python)."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pytest
import talib

from binance_cluster.errors import ConfigError
from binance_cluster.kernels import indicators as ki
from binance_cluster.kernels import signals as sk
from binance_cluster.kernels import simulate as kern
from binance_cluster.strategies.registry import (STRATEGIES, Signals, SignalContext, compute_signals,
                                      get_strategy, price_scale)
from binance_cluster.types import Candles
from support.real_data import load_real

SMA_GRID = [{"fast": f, "slow": s} for f in range(5, 55, 5) for s in range(20, 220, 20)]
LOOKAHEAD_PARAMS = {
    "sma_cross": {"fast": 7, "slow": 25},
    "ema_cross": {"fast": 9, "slow": 21},
    "rsi_reversion": {"n": 14, "lower": 30, "upper": 70},
    "bollinger_reversion": {"n": 20, "k": 2.0},
    "momentum_burst": {"min_weight": 12},   # more bursts than the default, so k cuts through them
}


@pytest.fixture(scope="module")
def layer(shared_data) -> Candles:
    return load_real("LAYERUSDT", str(shared_data)).slice(0, 12_000)


@pytest.fixture(scope="module")
def btc(shared_data) -> Candles:
    return load_real("BTCUSDT", str(shared_data))


def same(a: Signals, b: Signals) -> bool:
    return (np.array_equal(a.entry, b.entry) and np.array_equal(a.exit, b.exit)
            and np.array_equal(a.score, b.score, equal_nan=True))


def closes(values, start=1_700_000_000_000) -> Candles:
    c = np.asarray(values, float)
    return Candles.from_columns(dict(open_time=start + 60_000 * np.arange(c.size), open=c,
                                     high=c, low=c, close=c, volume=np.ones(c.size)))


# -- registry -------------------------------------------------------------------------------

def test_registry_lists_both_seed_strategies_and_resolves_defaults():
    assert set(STRATEGIES) == {"sma_cross", "ema_cross", "rsi_reversion",
                               "bollinger_reversion", "momentum_burst", "ml_barrier"}
    mb = get_strategy("momentum_burst")
    assert mb.resolve({}) == {"window": 5, "min_growth": 0.4, "min_weight": 18, "room": 0.07,
                              "band": 0.07, "hours": 24}
    assert dict(mb.risk_defaults) == {"take_profit": 0.07, "stop_loss": 0.05}
    assert get_strategy("sma_cross").resolve({"fast": 5.0}) == {"fast": 5, "slow": 30}


@pytest.mark.parametrize("name,params,message", [
    ("sma_cross", {"fats": 5}, "unknown parameter 'fats'"),
    ("sma_cross", {"fast": 5.5}, "parameter fast must be a whole number"),
    ("sma_cross", {"fast": "5"}, "parameter fast must be a number"),
    ("sma_cross", {"fast": True}, "parameter fast must be a number"),
    ("sma_cross", {"slow": 0}, "parameter slow = 0 is outside"),
    ("rsi_reversion", {"lower": 80, "upper": 70}, "lower (80) must be below upper (70)"),
    ("bollinger_reversion", {"k": math.nan}, "parameter k must be a finite number"),
])
def test_resolve_names_the_bad_parameter(name, params, message):
    with pytest.raises(ConfigError) as err:
        get_strategy(name).resolve(params)
    assert message in str(err.value) and name in str(err.value)


def test_unknown_strategy_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown strategy 'nope' .known: sma_cross, ema_cross"):
        get_strategy("nope")


def test_momentum_needs_an_interval_within_an_hour(layer):
    with pytest.raises(ConfigError, match="divides one hour"):
        compute_signals(get_strategy("momentum_burst"), layer, {}, "4h")
    assert get_strategy("momentum_burst").warmup({}, "1m") == 25 * 60


# -- no look-ahead -------------------------------------------------------------------------

# ml_barrier reads walk-forward models: its no-look-ahead test is in tests/ml/test_ml_barrier.py
@pytest.mark.parametrize("name", sorted(n for n, s in STRATEGIES.items() if not s.needs_model))
def test_signals_of_a_prefix_equal_the_prefix_of_the_signals(name, layer):
    strategy = get_strategy(name)
    params = LOOKAHEAD_PARAMS[name]
    full = compute_signals(strategy, layer, params, "1m")
    assert full.entry.any(), "the data must exercise the strategy"
    n = len(layer)
    rng = np.random.default_rng(7)
    ks = set(rng.integers(1, n, 40).tolist()) | {1, 2, 30, 250, 1440, 1500, n - 1}
    ks |= set((np.flatnonzero(full.entry | full.exit)[::25] + 1).tolist())   # right after signals
    for k in sorted(ks):
        part = compute_signals(strategy, layer.slice(0, k), params, "1m")
        assert same(part, Signals(full.entry[:k], full.exit[:k], full.score[:k])), (name, k)


def test_sma_prefix_with_fewer_price_decimals_agrees(shared_data):
    # early SUI prices need fewer decimals than the whole month: the tick scale differs
    sui = load_real("SUIUSDT", str(shared_data)).slice(0, 6000)
    st = get_strategy("sma_cross")
    full = compute_signals(st, sui, {"fast": 3, "slow": 12}, "1m")
    for k in (3, 5, 8, 13, 40, 400, 3000):
        part = sui.slice(0, k)
        assert price_scale(part.close) <= price_scale(sui.close)
        got = compute_signals(st, part, {"fast": 3, "slow": 12}, "1m")
        assert same(got, Signals(full.entry[:k], full.exit[:k], full.score[:k]))


# -- exact crossovers ----------------------------------------------------------------------

def test_cross_rule_on_ties():
    # fast = SMA(1) = close, slow = SMA(2): the relation is the sign of close - previous close
    c = closes([10, 11, 10, 10, 11, 11, 12, 11])
    s = compute_signals(get_strategy("sma_cross"), c, {"fast": 1, "slow": 2}, "1m")
    # t=1 above first (never below before): no entry; t=2 below after above: exit;
    # t=4 above after a tie after below: entry; t=6 above after a tie: a new cross (as vectorbt)
    assert s.entry.tolist() == [False, False, False, False, True, False, True, False]
    assert s.exit.tolist() == [False, False, True, False, False, False, False, True]


def test_sma_relation_is_exact_where_float_means_tie(shared_data):
    xrp = load_real("XRPUSDT", str(shared_data))
    scale = price_scale(xrp.close)
    ticks = SignalContext(xrp, "1m").ticks()
    assert np.array_equal(ticks, np.round(xrp.close * scale).astype(np.int64))
    x = [int(v) for v in ticks[:6000]]
    f, s = 5, 10
    prefix = ki.tick_prefix(ticks)
    fs = prefix[f:] - prefix[:-f]     # fs[t - f + 1]: the window sum of f bars ending at t
    ss = prefix[s:] - prefix[:-s]
    ties = 0
    float_disagrees = 0
    for t in range(s - 1, 6000):
        exact = sum(x[t - f + 1:t + 1]) * s - sum(x[t - s + 1:t + 1]) * f    # Python ints
        a, b = fs[t - f + 1], ss[t - s + 1]
        assert a == sum(x[t - f + 1:t + 1]) and b == sum(x[t - s + 1:t + 1])
        rel = ki.mean_relation(a, f, b, s, True)
        assert rel == (exact > 0) - (exact < 0)
        assert ki.mean_relation(a, f, b, s, False) == rel        # overflow-safe path
        ties += exact == 0
        fmean = xrp.close[t - f + 1:t + 1].sum() / f
        smean = xrp.close[t - s + 1:t + 1][::-1].sum() / s
        float_disagrees += exact == 0 and fmean != smean
    assert ties > 0                       # exact ties of two SMAs do happen on real data
    assert float_disagrees > 0            # and float sums do not see them as ties


def test_fused_sweep_signals_equal_single_run_signals(btc):
    """The relations the fused kernel builds give the same signals as the single-run kernel."""
    ctx = SignalContext(btc, "1m")
    prefix = ctx.prefix()
    n = len(btc)
    rel = np.zeros(n, np.int8)
    for kind, name, grid in (("sma", "sma_cross", SMA_GRID),
                             ("ema", "ema_cross", SMA_GRID[::7])):
        st = get_strategy(name)
        for p in grid:
            f, s = p["fast"], p["slow"]
            start = max(f, s) - 1
            rel[:] = 0
            if kind == "sma":
                kern.sum_relations(prefix, f, s, start, n, True, rel)
            else:
                kern.value_relations(ctx.ema(f), ctx.ema(s), start, n, rel)
            r = rel[start:].astype(np.int64)
            prev = np.concatenate([[0], r[:-1]])
            seen_below = np.concatenate([[False], np.logical_or.accumulate(r < 0)[:-1]])
            seen_above = np.concatenate([[False], np.logical_or.accumulate(r > 0)[:-1]])
            entry = np.zeros(n, bool)
            exit_ = np.zeros(n, bool)
            entry[start:] = (r > 0) & (prev <= 0) & seen_below
            exit_[start:] = (r < 0) & (prev >= 0) & seen_above
            single = compute_signals(st, btc, p, "1m")
            assert np.array_equal(entry, single.entry) and np.array_equal(exit_, single.exit), p


# -- references ----------------------------------------------------------------------------

def test_strategies_compute_their_indicators_with_the_family(btc):
    """The arrays the strategies trade on are the family's kernels, bit for bit, and TA-Lib's."""
    x = btc.close[:20_000]
    c = btc.slice(0, 20_000)
    ctx = SignalContext(c, "1m")
    assert np.array_equal(ctx.ema(26), ki.ema(x, 26), equal_nan=True)
    assert np.array_equal(ctx.rsi(14), ki.rsi(x, 14), equal_nan=True)
    mean, std = ctx.mean_std(20)
    mid, _, lower = ki.bollinger(x, 20, 2.0)
    assert np.array_equal(mean, mid, equal_nan=True)
    assert np.array_equal(mean - 2.0 * std, lower, equal_nan=True)     # BBANDS' lower band
    np.testing.assert_allclose(ctx.ema(26), talib.EMA(x, 26), rtol=1e-12)
    np.testing.assert_allclose(ctx.rsi(14), talib.RSI(x, 14), rtol=0, atol=1e-10)
    upper, middle, low = talib.BBANDS(x, 20, 2.0, 2.0, 0)
    np.testing.assert_allclose(mean, middle, rtol=1e-13)
    np.testing.assert_allclose(lower, low, rtol=1e-12)
    sig = compute_signals(get_strategy("bollinger_reversion"), c, {"n": 20, "k": 2.0}, "1m")
    defined = ~np.isnan(mid)
    assert np.array_equal(sig.entry[defined], (x < lower)[defined])
    ticks = ctx.ticks()
    sums = ctx.prefix()[20:] - ctx.prefix()[:-20]
    assert np.array_equal(sig.exit[19:], ticks[19:] * 20 > sums)       # exact, in ticks
    assert (sig.exit[19:] != (x > mid)[19:]).sum() <= 2     # float means: ties go either way


def test_rsi_of_flat_prices_is_talibs_zero_and_rsi_reversion_buys_it():
    flat = np.full(40, 2.345)
    assert np.all(talib.RSI(flat, 14)[14:] == 0.0)                      # TA-Lib's convention
    assert np.all(ki.rsi(flat, 14)[14:] == 0.0)
    moved = np.concatenate([flat, [2.346, 2.346], np.full(20, 2.344)])
    np.testing.assert_allclose(ki.rsi(moved, 14), talib.RSI(moved, 14), atol=1e-10)
    st = get_strategy("rsi_reversion")
    sig = compute_signals(st, closes(flat), {"n": 14, "lower": 30, "upper": 70}, "1m")
    assert not sig.entry[:14].any() and sig.entry[14:].all() and not sig.exit.any()
    assert np.all(sig.score[14:] == 30.0)                               # lower - RSI
    sig = compute_signals(st, closes(moved), {"n": 14, "lower": 30, "upper": 70}, "1m")
    assert sig.exit[40] and sig.exit[41] and not sig.entry[40:42].any()  # RSI 100 after a rise


INDICATOR_WORDS = {"sma", "ema", "wma", "rsi", "macd", "bollinger", "bbands", "atr", "stoch",
                   "vwap", "zscore", "std", "stddev", "wilder", "max", "min", "mean"}


def test_indicators_are_defined_only_in_the_family():
    """Outside kernels/indicators (and its wrappers) no numba kernel computes an indicator and
    no function is named like one of the family's."""
    import ast
    from pathlib import Path

    import binance_cluster
    from binance_cluster.strategies import indicators as ind

    root = Path(binance_cluster.__file__).parent
    allowed = {root / "kernels" / "indicators.py", root / "strategies" / "indicators.py"}
    found = []
    for path in sorted(root.rglob("*.py")):
        if path in allowed:
            continue
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.FunctionDef):
                continue
            jitted = any(getattr(d, "id", None) in ("jit", "kernel") for d in node.decorator_list)
            words = set(node.name.lower().strip("_").split("_"))
            if (jitted and words & INDICATOR_WORDS and not node.name.endswith("_signals")
                    or node.name in ind.__all__):
                found.append(f"{path.relative_to(root)}: {node.name}")
    assert not found, found
    assert {"ema_seeded", "rsi_wilder", "tick_mean_std", "window_sums"}.isdisjoint(dir(sk))


def momentum_reference(c: Candles, window=5, min_growth=0.4, min_weight=18, room=0.07,
                       band=0.07, hours=24) -> np.ndarray:
    """SEEDS.md A in plain Python: hourly closes from the bars, hours closed by the decision."""
    hourly: OrderedDict[int, tuple[int, float]] = OrderedDict()   # hour -> (last bar, close)
    for i, t in enumerate(c.open_time.tolist()):
        hourly[t // 3_600_000] = (i, float(c.close[i]))
    hour_keys = list(hourly)
    entry = np.zeros(len(c), bool)
    for t in range(window - 1, len(c)):
        w = 0
        for i in range(window):
            j = t - window + 1 + i
            g = (c.close[j] - c.open[j]) / c.open[j] * 100
            w += 2 * (i + 1) if g >= min_growth else (-2 * (i + 1) if g < 0 else 0)
        if w <= min_weight:
            continue
        decision = int(c.open_time[t]) + 60_000
        closed = [hourly[h][1] for h in hour_keys if (h + 1) * 3_600_000 <= decision]
        if len(closed) < hours:
            continue
        last = closed[-hours:]
        p = float(c.close[t])
        entry[t] = p * (1 + room) < max(last) and p <= (sum(last) / hours) * (1 + band)
    return entry


def test_momentum_burst_matches_the_seed_rule(layer):
    st = get_strategy("momentum_burst")
    for params in ({}, {"min_weight": 12, "hours": 6}):
        sig = compute_signals(st, layer, params, "1m")
        ref = momentum_reference(layer, **params)
        assert np.array_equal(sig.entry, ref), params
        assert not sig.exit.any()
    assert compute_signals(st, layer, {"min_weight": 12}, "1m").entry.sum() > 10


def test_price_scale_follows_the_decimals(btc, shared_data):
    assert price_scale(btc.close) == 10.0
    assert price_scale(load_real("XLMUSDT", str(shared_data)).close) == 1e5
    assert price_scale(np.array([1.0, 2.0])) == 1.0
    assert price_scale(np.array([math.pi])) == 1e8


@pytest.mark.parametrize("name", ["sma_cross", "ema_cross", "rsi_reversion", "bollinger_reversion"])
def test_no_signal_before_the_warmup(name, layer):
    st = get_strategy(name)
    params = LOOKAHEAD_PARAMS[name]
    sig = compute_signals(st, layer, params, "1m")
    w = st.warmup(params)
    assert not sig.entry[:w].any() and not sig.exit[:w].any()
    assert (sig.entry[w:] | sig.exit[w:]).any()
