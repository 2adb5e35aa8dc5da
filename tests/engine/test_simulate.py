"""Decision step, backtest loops and sweeps: against the plain-Python reference on real data,
hand-built bars for each rule, portfolio limits, and sweep == single run, bit for bit."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from binance_cluster.errors import ConfigError, DataError
from binance_cluster.engine.metrics import compute_metrics
from binance_cluster.engine.simulate import (EXIT_REASONS, Risk, SymbolRules, run_portfolio,
                                      run_symbol, rules_for_prices, sweep_symbol)
from binance_cluster.strategies.registry import Signals, compute_signals, get_strategy
from binance_cluster.types import Candles
from support.real_data import load_real
from support.reference_sim import reference_run

MIN = 60_000
T0 = 1_746_403_200_000          # 2025-05-05 00:00 UTC
SMA_GRID = [{"fast": f, "slow": s} for f in range(5, 55, 5) for s in range(20, 220, 20)]
TRADE_KEYS = ("symbol_index", "entry_time", "exit_time", "entry_bar", "exit_bar", "entry_price",
              "exit_price", "quantity", "sold_quantity", "dust", "fees", "pnl", "exit_reason",
              "paper")


@pytest.fixture(scope="module")
def data(shared_data):
    return lambda symbol, n=15_000: load_real(symbol, str(shared_data)).slice(0, n)


def assert_matches_reference(sim, ref) -> None:
    tr = ref["trades"]
    assert sim.n_trades == len(tr)
    for key in TRADE_KEYS:
        want = np.array([t[key] for t in tr], dtype=float)
        np.testing.assert_allclose(sim.trades[key].astype(float), want, rtol=0, atol=1e-9,
                                   err_msg=key)
    np.testing.assert_allclose(sim.equity, ref["equity"], rtol=0, atol=1e-9)
    assert sim.held.tolist() == ref["held"]
    assert sim.sell_refused == ref["refused"]
    np.testing.assert_allclose(sim.dust, ref["dust"], rtol=0, atol=1e-12)


def bars(rows, start=T0) -> Candles:
    """Candles from (open, high, low, close) rows, one minute apart."""
    a = np.array(rows, float)
    return Candles.from_columns(dict(open_time=start + MIN * np.arange(len(a)), open=a[:, 0],
                                     high=a[:, 1], low=a[:, 2], close=a[:, 3],
                                     volume=np.ones(len(a))))


def signals(n, entries=(), exits=(), score=None) -> Signals:
    e = np.zeros(n, bool)
    x = np.zeros(n, bool)
    e[list(entries)] = True
    x[list(exits)] = True
    return Signals(e, x, np.ones(n) if score is None else np.asarray(score, float))


FREE = SymbolRules(tick_size=0.0, step_size=0.0, min_notional=0.0)


# -- against the reference on real data ----------------------------------------------------

CASES = [
    ("LAYERUSDT", "sma_cross", {}, Risk()),
    ("LAYERUSDT", "rsi_reversion", {}, Risk(stop_loss=0.01, take_profit=0.02, slippage=0.001)),
    ("SUIUSDT", "bollinger_reversion", {"k": 2.5},
     Risk(trailing_stop=0.004, max_hold_bars=30, stake=500.0, stake_mode="quote")),
    ("LAYERUSDT", "momentum_burst", {"min_weight": 12},
     Risk(take_profit=0.07, stop_loss=0.05, shifts=True, shifts_min_trades=2, stake=0.5)),
    ("XRPUSDT", "ema_cross", {}, Risk(shifts=True, shifts_min_trades=2, stop_loss=0.004,
                                      fee_rate=0.00075)),
    ("ETHUSDT", "sma_cross", {"fast": 20, "slow": 60},
     Risk(stop_loss=0.003, take_profit=0.004, trailing_stop=0.002, max_hold_bars=45,
          slippage=0.0002, stake=0.8)),
]


@pytest.mark.parametrize("symbol,name,params,risk", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_run_symbol_matches_reference(data, symbol, name, params, risk):
    candles = data(symbol)
    rules = rules_for_prices(candles.close)
    sig = compute_signals(get_strategy(name), candles, params, "1m")
    sim = run_symbol(candles, sig, risk, rules)
    ref = reference_run(candles.open_time, candles.open, candles.high, candles.low,
                        candles.close, sig.entry, sig.exit, sig.score, risk, rules, MIN)
    assert sim.n_trades > 5
    assert_matches_reference(sim, ref)
    if risk.shifts:
        assert sim.trades["paper"].any()
        assert not np.all(sim.trades["paper"]) or name == "momentum_burst"


def test_min_notional_rejects_entries(data):
    btc = data("BTCUSDT", 43_200)
    sig = compute_signals(get_strategy("sma_cross"), btc, {"fast": 10, "slow": 40}, "1m")
    # 150 USDT buys 0.001 BTC (lot 0.001): worth 94..112 USDT, under 100 below a 100k price
    rules = SymbolRules(tick_size=0.1, step_size=0.001, min_notional=100.0)
    risk = Risk(stake=150.0, stake_mode="quote")
    sim = run_symbol(btc, sig, risk, rules)
    ref = reference_run(btc.open_time, btc.open, btc.high, btc.low, btc.close, sig.entry,
                        sig.exit, sig.score, risk, rules, MIN)
    assert_matches_reference(sim, ref)
    assert sim.rejected > 0 and sim.n_trades > 0
    assert np.all(sim.trades["quantity"] == 0.001)
    assert np.all(sim.trades["entry_price"] * sim.trades["quantity"] >= 100.0)


# -- rules on hand-built bars --------------------------------------------------------------

def test_signal_fills_at_next_open_and_fees_reduce_equity_exactly():
    c = bars([(100, 101, 99, 100), (102, 103, 101, 102), (104, 110, 103, 108),
              (109, 111, 108, 110), (111, 112, 110, 111)])
    sim = run_symbol(c, signals(5, entries=[0], exits=[2]),
                     Risk(initial_cash=1000.0, fee_model="quote"), FREE)
    t = sim.trades
    assert sim.n_trades == 1
    assert (t["entry_bar"][0], t["exit_bar"][0]) == (1, 3)
    assert (t["entry_price"][0], t["exit_price"][0]) == (102.0, 109.0)   # next opens
    q = t["quantity"][0]                       # all in: cost = notional + fee <= cash
    assert q == pytest.approx(1000.0 / (102.0 * 1.001), rel=1e-14)
    assert q * 102.0 + q * 102.0 * 0.001 <= 1000.0
    entry_fee = q * 102.0 * 0.001
    exit_fee = q * 109.0 * 0.001
    assert t["fees"][0] == entry_fee + exit_fee
    assert t["pnl"][0] == (q * 109.0 - exit_fee) - (q * 102.0 + entry_fee)
    cash_after_buy = 1000.0 - (q * 102.0 + entry_fee)
    assert sim.equity[1] == cash_after_buy + q * 102.0     # marked at bar 1's close
    assert sim.equity[2] == cash_after_buy + q * 108.0
    assert sim.equity[3] == cash_after_buy + (q * 109.0 - exit_fee)
    assert sim.equity[4] == sim.equity[3]
    assert sim.held.tolist() == [0, 1, 1, 0, 0]
    assert t["entry_time"][0] == T0 + MIN and t["exit_time"][0] == T0 + 3 * MIN


def test_stop_first_when_stop_and_target_touched_in_one_bar():
    c = bars([(100, 100, 100, 100), (100, 100, 100, 100), (100, 108, 94, 101),
              (101, 101, 101, 101)])
    risk = Risk(initial_cash=1000.0, stop_loss=0.05, take_profit=0.07, fee_rate=0.0)
    sim = run_symbol(c, signals(4, entries=[0]), risk, SymbolRules(0.01, 0.0, 0.0))
    assert sim.trades["exit_price"][0] == 95.0
    assert EXIT_REASONS[sim.trades["exit_reason"][0]] == "stop_loss"
    assert sim.trades["exit_bar"][0] == 2


def test_gap_through_stop_fills_at_the_open_and_target_at_its_price():
    c = bars([(100, 100, 100, 100), (100, 101, 99, 100), (90, 92, 88, 91)])
    risk = Risk(initial_cash=1000.0, stop_loss=0.05, fee_rate=0.0)
    sim = run_symbol(c, signals(3, entries=[0]), risk, SymbolRules(0.01, 0.0, 0.0))
    assert sim.trades["exit_price"][0] == 90.0                 # the open, not the 95 stop
    c = bars([(100, 100, 100, 100), (100, 101, 99, 100), (101, 108, 100, 104)])
    risk = Risk(initial_cash=1000.0, take_profit=0.07, fee_rate=0.0)
    sim = run_symbol(c, signals(3, entries=[0]), risk, SymbolRules(0.01, 0.0, 0.0))
    assert sim.trades["exit_price"][0] == 107.0
    assert EXIT_REASONS[sim.trades["exit_reason"][0]] == "take_profit"


def test_trailing_stop_follows_earlier_highs_only():
    c = bars([(100, 100, 100, 100), (100, 110, 99, 109), (109, 120, 104, 118),
              (118, 119, 107, 110), (110, 111, 109, 110)])
    risk = Risk(initial_cash=1000.0, trailing_stop=0.1, fee_rate=0.0)
    sim = run_symbol(c, signals(5, entries=[0]), risk, SymbolRules(0.01, 0.0, 0.0))
    # bar 2 uses the high of bar 1 (110 -> level 99, not touched by 104); bar 3 uses 120 -> 108
    assert sim.trades["exit_bar"][0] == 3 and sim.trades["exit_price"][0] == 108.0
    assert EXIT_REASONS[sim.trades["exit_reason"][0]] == "trailing_stop"


def test_max_hold_and_end_of_data():
    c = bars([(100 + i, 101 + i, 99 + i, 100 + i) for i in range(8)])
    risk = Risk(initial_cash=1000.0, max_hold_bars=3, fee_rate=0.0)
    sim = run_symbol(c, signals(8, entries=[0, 4, 6]), risk, FREE)
    t = sim.trades
    assert t["entry_bar"].tolist() == [1, 5]
    assert t["exit_bar"].tolist() == [4, 7]                      # held 3 bars; end of data
    assert [EXIT_REASONS[r] for r in t["exit_reason"]] == ["max_hold", "end"]
    assert t["exit_price"][1] == 107.0                           # the last close
    assert sim.equity[-1] == 1000.0 + t["pnl"].sum()


def test_quote_stake_and_lot_rounding():
    c = bars([(3.2713, 3.3, 3.2, 3.25), (3.2701, 3.3, 3.2, 3.28), (3.3, 3.3, 3.3, 3.3)])
    rules = SymbolRules(tick_size=0.0001, step_size=0.1, min_notional=5.0)
    sim = run_symbol(c, signals(3, entries=[0]), Risk(stake=20.0, stake_mode="quote"), rules)
    assert sim.trades["quantity"][0] == 6.1              # floor(20 / 3.2701, 0.1)
    quote = run_symbol(c, signals(3, entries=[0]), Risk(stake=20.0, stake_mode="quote",
                                                        fee_model="quote"), rules)
    assert quote.trades["quantity"][0] == 6.1            # floor(20 / (3.2701 * 1.001), 0.1)
    sim = run_symbol(c, signals(3, entries=[0]), Risk(stake=4.0, stake_mode="quote"), rules)
    assert sim.n_trades == 0 and sim.rejected == 1        # 1.2 * 3.2701 < 5


def test_shifts_paper_trades_never_touch_equity(data):
    candles = data("LAYERUSDT")
    sig = compute_signals(get_strategy("sma_cross"), candles, {"fast": 5, "slow": 20}, "1m")
    rules = rules_for_prices(candles.close)
    real = run_symbol(candles, sig, Risk(), rules)
    shifted = run_symbol(candles, sig, Risk(shifts=True), rules)
    paper = shifted.trades["paper"]
    assert paper.any() and (~paper).any()
    # rebuild equity from real trades only: the final value equals cash + real pnl
    assert shifted.equity[-1] == pytest.approx(10_000 + shifted.trades["pnl"][~paper].sum(),
                                               abs=1e-6)
    # before the first real trade, equity never moves
    first_real = shifted.trades["entry_bar"][~paper][0]
    assert np.all(shifted.equity[:first_real] == 10_000.0)
    # causality: an entry is real only if its hour had >= 3 closed trades, >= 66 % won, before it
    tr = shifted.trades
    hours = ((tr["entry_time"]) // 3_600_000) % 24   # decision at the close = next bar's open
    for k in np.flatnonzero(~paper):
        before = (tr["exit_bar"] < tr["entry_bar"][k]) & (hours == hours[k])
        assert before.sum() >= 3 and (tr["pnl"][before] > 0).mean() >= 0.66
    assert real.n_trades == shifted.n_trades       # the same trades, some on paper


# -- portfolio -----------------------------------------------------------------------------

def aligned(parts: list[Candles], sigs: list[Signals]):
    times = np.unique(np.concatenate([p.open_time for p in parts]))
    n, m = times.size, len(parts)
    cols = {k: np.full((n, m), np.nan) for k in ("open", "high", "low", "close", "score")}
    ent = np.zeros((n, m), bool)
    ext = np.zeros((n, m), bool)
    for j, (p, s) in enumerate(zip(parts, sigs)):
        rows = np.searchsorted(times, p.open_time)
        for k in ("open", "high", "low", "close"):
            cols[k][rows, j] = getattr(p, k)
        cols["score"][rows, j] = s.score
        ent[rows, j] = s.entry
        ext[rows, j] = s.exit
    return times, cols, ent, ext


@pytest.mark.parametrize("risk", [
    Risk(max_positions=1, stop_loss=0.01, take_profit=0.01, max_hold_bars=60),   # SEEDS B
    Risk(max_positions=2, stake=0.5, trailing_stop=0.005, shifts=True, shifts_min_trades=2),
    Risk(max_positions=3, stake=1.0, slippage=0.0005),
    Risk(max_positions=2, stake=0.5, slippage=0.0005, fee_model="quote")],
    ids=["one-all-in", "two-halves-shifts", "three-all-in", "two-quote-fees"])
def test_portfolio_matches_reference_and_limits(data, shared_data, risk):
    names = ["ADAUSDT", "BTCUSDT", "LAYERUSDT", "SUIUSDT"]       # ADA starts 5 days later
    full = [load_real(s, str(shared_data)) for s in names]
    parts = [c.slice(0, 8000) if s != "ADAUSDT" else c.slice(0, 1500)
             for s, c in zip(names, full)]
    st = get_strategy("rsi_reversion")
    sigs = [compute_signals(st, p, {"n": 14, "lower": 25, "upper": 60}, "1m") for p in parts]
    times, cols, ent, ext = aligned(parts, sigs)
    assert np.isnan(cols["open"]).any()
    rules = [rules_for_prices(p.close) for p in parts]
    sim = run_portfolio(times, cols["open"], cols["high"], cols["low"], cols["close"], ent, ext,
                        cols["score"], risk, rules)
    ref = reference_run(times, cols["open"], cols["high"], cols["low"], cols["close"], ent, ext,
                        cols["score"], risk, rules, MIN)
    assert sim.n_trades > 20
    assert_matches_reference(sim, ref)
    # never more real positions than allowed, at any bar
    real = ~sim.trades["paper"]
    assert 1 <= sim.held.max() <= risk.max_positions
    for t in range(0, len(times), 7):
        inside = real & (sim.trades["entry_bar"] <= t) & (sim.trades["exit_bar"] > t)
        assert inside.sum() <= risk.max_positions
    assert len(set(sim.trades["symbol_index"].tolist())) >= 3 and real.any()
    # shared cash never negative: replay fills in order (exits at the open, entries, intrabar)
    cash = risk.initial_cash
    events = []
    quote_fees = risk.fee_model == "quote"
    for k in np.flatnonzero(real):
        tr = {key: sim.trades[key][k] for key in TRADE_KEYS}
        cost = tr["quantity"] * tr["entry_price"]
        # exchange model: the buy's commission comes out of the base bought, not the cash
        events.append((tr["entry_bar"], 1, -(cost + cost * risk.fee_rate * quote_fees)))
        proceeds = tr["sold_quantity"] * tr["exit_price"]
        at_open = EXIT_REASONS[tr["exit_reason"]] in ("signal", "max_hold")
        events.append((tr["exit_bar"], 0 if at_open else 2, proceeds - proceeds * risk.fee_rate))
    low = cash
    for _, _, amount in sorted(events):
        cash += amount
        low = min(low, cash)
    assert low >= -1e-9
    assert cash == pytest.approx(sim.equity[-1], abs=1e-6)


def test_portfolio_ranks_candidates_by_score():
    rows = [(10, 10, 10, 10)] * 4
    c = bars(rows)
    times = c.open_time
    px = np.repeat(c.open[:, None], 4, axis=1)
    ent = np.zeros((4, 4), bool)
    ent[0, :] = True
    score = np.array([[1.0, 3.0, np.nan, 2.0]] * 4)
    free = [FREE] * 4
    for k, want in ((1, [1]), (2, [1, 3]), (3, [1, 3, 0]), (4, [1, 3, 0, 2])):
        risk = Risk(max_positions=k, stake=1 / k, fee_rate=0.0)
        sim = run_portfolio(times, px, px, px, px, ent, np.zeros_like(ent), score, risk, free)
        assert sim.trades["symbol_index"].tolist() == sorted(want)      # closed at the end
        assert sim.held.tolist() == [0, k, k, k]
    # all in: the best takes all the cash, the others cannot buy anything and are rejected
    risk = Risk(max_positions=3, stake=1.0, fee_rate=0.001)
    sim = run_portfolio(times, px, px, px, px, ent, np.zeros_like(ent), score, risk,
                        [SymbolRules(0.01, 0.001, 5.0)] * 4)
    assert sim.trades["symbol_index"].tolist() == [1]
    assert sim.rejected == 3 and sim.held.tolist() == [0, 1, 1, 1]


def test_portfolio_input_errors():
    t = np.arange(3, dtype=np.int64) * MIN
    a = np.ones((3, 2))
    b = np.zeros((3, 2), bool)
    with pytest.raises(DataError, match="entries has shape"):
        run_portfolio(t, a, a, a, a, np.zeros((3, 1), bool), b, a, Risk(), [FREE, FREE])
    with pytest.raises(ConfigError, match="2 symbols"):
        run_portfolio(t, a, a, a, a, b, b, a, Risk(), [FREE])
    bad = a.copy()
    bad[1, 0] = np.nan
    with pytest.raises(DataError, match="same missing candles"):
        run_portfolio(t, bad, a, a, a, b, b, a, Risk(), [FREE, FREE])
    with pytest.raises(DataError, match="strictly increasing"):
        run_portfolio(t[::-1], a, a, a, a, b, b, a, Risk(), [FREE, FREE])


def test_risk_and_rules_validation():
    with pytest.raises(ConfigError, match="risk.stake_mode"):
        Risk(stake_mode="all")
    with pytest.raises(ConfigError, match="risk.stop_loss"):
        Risk(stop_loss=1.5)
    with pytest.raises(ConfigError, match="risk.stake .*at most 1"):
        Risk(stake=2.0)
    with pytest.raises(ConfigError, match="risk.max_hold_bars"):
        Risk(max_hold_bars=0)
    with pytest.raises(ConfigError, match="rules.tick_size"):
        SymbolRules(tick_size=-0.1)
    c = bars([(1, 1, 1, 1)] * 3)
    with pytest.raises(DataError, match="signals.entry has shape"):
        run_symbol(c, signals(2), Risk(), FREE)


# -- sweeps: fused and shared-indicator paths equal single runs -----------------------------

SWEEP_RISKS = [
    Risk(),
    Risk(stop_loss=0.004, take_profit=0.006, trailing_stop=0.003, max_hold_bars=120),
    Risk(stake=300.0, stake_mode="quote", slippage=0.0003, fee_rate=0.00075),
    Risk(shifts=True, shifts_min_trades=2, stake=0.7),
    Risk(fee_model="quote"),
    Risk(fee_model="quote", stop_loss=0.004, take_profit=0.006, trailing_stop=0.003,
         max_hold_bars=120, shifts=True, shifts_min_trades=2),
    Risk(bnb_fees=True, stake=0.9),
]


@pytest.mark.parametrize("name", ["sma_cross", "ema_cross"])
@pytest.mark.parametrize("risk", SWEEP_RISKS, ids=["plain", "exits", "quote-stake", "shifts",
                                                  "quote-fees", "quote-fees-exits", "bnb"])
def test_fused_sweep_equals_single_runs(data, name, risk):
    candles = data("SOLUSDT", 20_000)
    rules = rules_for_prices(candles.close)
    st = get_strategy(name)
    grid = SMA_GRID if name == "sma_cross" else SMA_GRID[::3]
    swept = sweep_symbol(st, candles, grid, risk, rules, "1m")
    assert len(swept) == len(grid)
    for p, m in zip(grid, swept):
        sim = run_symbol(candles, compute_signals(st, candles, p, "1m"), risk, rules)
        assert m == compute_metrics(sim, MIN, risk.initial_cash), p      # bit for bit
    assert sum(m["trades"] for m in swept) > len(grid)


def test_sweep_is_the_same_alone_or_in_any_grid(data):
    candles = data("BTCUSDT", 43_200)
    rules = rules_for_prices(candles.close)
    st = get_strategy("sma_cross")
    risk = Risk(stop_loss=0.01)
    swept = sweep_symbol(st, candles, SMA_GRID, risk, rules, "1m")
    order = np.random.default_rng(3).permutation(len(SMA_GRID))
    shuffled = sweep_symbol(st, candles, [SMA_GRID[i] for i in order], risk, rules, "1m")
    for i, j in enumerate(order):
        assert shuffled[i] == swept[j]
    for i in (0, 37, 99):
        assert sweep_symbol(st, candles, [SMA_GRID[i]], risk, rules, "1m") == [swept[i]]


@pytest.mark.parametrize("name,grid", [
    ("rsi_reversion", [{"n": n, "lower": lo, "upper": 70} for n in (7, 14) for lo in (20, 30)]),
    ("bollinger_reversion", [{"n": n, "k": k} for n in (20, 50) for k in (1.5, 2.5)]),
    ("momentum_burst", [{"min_weight": w} for w in (10, 14, 18)])])
def test_generic_sweep_equals_single_runs(data, name, grid):
    candles = data("LAYERUSDT")
    rules = rules_for_prices(candles.close)
    st = get_strategy(name)
    risk = dataclasses.replace(Risk(), **dict(st.risk_defaults))
    swept = sweep_symbol(st, candles, grid, risk, rules, "1m")
    for p, m in zip(grid, swept):
        sim = run_symbol(candles, compute_signals(st, candles, p, "1m"), risk, rules)
        assert m == compute_metrics(sim, MIN, risk.initial_cash)
    assert any(m["trades"] > 0 for m in swept)
    assert all(math.isfinite(m["sharpe"]) for m in swept)


def test_fused_scans_find_the_next_bar_from_any_start():
    from binance_cluster.kernels.signals import CODE_ENTER, CODE_EXIT
    from binance_cluster.kernels.simulate import (code_buffer, next_enter,
                                                  next_exit)

    rng = np.random.default_rng(5)
    for n in list(range(1, 40)) + [63, 64, 65, 200]:
        code, words = code_buffer(n)
        for trial in range(3):
            p = [0.9, 0.05, 0.05] if trial == 0 else [1 / 3] * 3
            code[:] = rng.choice(np.array([0, CODE_ENTER, CODE_EXIT], np.int8), n, p=p)
            for t in range(n + 1):
                enters = np.flatnonzero(code[t:] == CODE_ENTER)
                assert next_enter(code, words, t) == (t + enters[0] if enters.size else n)
                exits = np.flatnonzero(code[t:] == CODE_EXIT)
                assert next_exit(code, words, t) == (t + exits[0] if exits.size else n), (n, t)


@pytest.mark.parametrize("fee_model", ["exchange", "quote"])
@pytest.mark.parametrize("rules", ["free", "data"])
def test_fused_sweep_equals_single_runs_on_every_symbol(shared_data, rules, fee_model):
    from support.real_data import real_symbols

    st = get_strategy("sma_cross")
    grid = SMA_GRID[::4]
    risk = Risk(slippage=0.0002 if rules == "data" else 0.0, fee_model=fee_model)
    for symbol in real_symbols(str(shared_data)):
        candles = load_real(symbol, str(shared_data))
        r = FREE if rules == "free" else rules_for_prices(candles.close)
        swept = sweep_symbol(st, candles, grid, risk, r, "1m")
        for p, m in zip(grid, swept):
            sim = run_symbol(candles, compute_signals(st, candles, p, "1m"), risk, r)
            assert m == compute_metrics(sim, MIN, risk.initial_cash), (symbol, p)


# -- exchange-exact accounting ---------------------------------------------------------------

BTC_RULES = SymbolRules(tick_size=0.01, step_size=0.00001, min_notional=5.0)


def test_exchange_model_takes_the_buy_commission_in_base_and_keeps_the_dust():
    c = bars([(100_000, 100_000, 100_000, 100_000), (100_000, 100_500, 99_500, 100_200),
              (101_000, 101_000, 101_000, 101_000), (101_000, 101_000, 101_000, 101_000)])
    risk = Risk(initial_cash=1000.0, stake=1000.0, stake_mode="quote")
    sim = run_symbol(c, signals(4, entries=[0], exits=[1]), risk, BTC_RULES)
    t = sim.trades
    # 1000 USDT buys 0.01 BTC at 100,000 (no fee on top); the 0.1 % commission is 0.00001 BTC
    assert t["quantity"][0] == 0.01
    assert sim.equity[1] == 0.0 + 0.00999 * 100_200          # cash 0, 0.00999 BTC held
    assert t["sold_quantity"][0] == 0.00999 and t["dust"][0] == 0.0
    proceeds = 0.00999 * 101_000 - round(0.00999 * 101_000 * 0.001, 8)
    assert t["pnl"][0] == pytest.approx(proceeds - 1000.0, abs=1e-9)
    assert t["fees"][0] == pytest.approx(0.00001 * 100_000 + 1.00899, abs=1e-9)
    assert sim.equity[-1] == pytest.approx(proceeds, abs=1e-9)
    # 777 USDT: 0.00777 BTC bought, 0.00776223 held, 0.00776 sold, 0.00000223 BTC of dust
    risk = Risk(initial_cash=1000.0, stake=777.0, stake_mode="quote")
    sim = run_symbol(c, signals(4, entries=[0], exits=[1]), risk, BTC_RULES)
    t = sim.trades
    assert (t["quantity"][0], t["sold_quantity"][0]) == (0.00777, 0.00776)
    assert t["dust"][0] == 0.00000223 and sim.dust.tolist() == [0.00000223]
    assert sim.equity[1] == (1000.0 - 777.0) + 0.00776223 * 100_200
    # the quote model charges both fees in quote and sells what it bought
    quote = run_symbol(c, signals(4, entries=[0], exits=[1]),
                       dataclasses.replace(risk, fee_model="quote"), BTC_RULES)
    assert quote.trades["quantity"][0] == quote.trades["sold_quantity"][0] == 0.00776
    assert quote.trades["dust"][0] == 0.0


def test_exchange_model_refuses_market_sells_under_the_minimum_notional():
    # 6 USDT buys 0.0006 at 10,000 (6 >= 5); the price falls to 8,000: 0.00059 x 8,000 < 5
    c = bars([(10_000, 10_000, 10_000, 10_000)] * 2 + [(8_000, 8_000, 8_000, 8_000)] * 4)
    rules = SymbolRules(tick_size=0.01, step_size=0.00001, min_notional=5.0)
    risk = Risk(initial_cash=6.0, stake=1.0)
    sim = run_symbol(c, signals(6, entries=[0], exits=[1, 2]), risk, rules)
    assert sim.sell_refused == 2                              # at the opens of bars 2 and 3
    assert sim.n_trades == 1 and EXIT_REASONS[sim.trades["exit_reason"][0]] == "end"
    assert sim.trades["exit_bar"][0] == 5
    assert sim.held.tolist() == [0, 1, 1, 1, 1, 1]
    quote = run_symbol(c, signals(6, entries=[0], exits=[1, 2]),
                       dataclasses.replace(risk, fee_model="quote"), rules)
    assert quote.sell_refused == 0 and EXIT_REASONS[quote.trades["exit_reason"][0]] == "signal"
    assert quote.trades["exit_bar"][0] == 2


def test_bnb_fees_leave_the_quantity_whole_at_the_discounted_rate():
    c = bars([(100_000, 100_000, 100_000, 100_000)] * 2
             + [(101_000, 101_000, 101_000, 101_000)] * 2)
    risk = Risk(initial_cash=1000.0, stake=1.0, bnb_fees=True)
    sim = run_symbol(c, signals(4, entries=[0], exits=[1]), risk, BTC_RULES)
    t = sim.trades
    # spend = notional + 0.075 % fee: 1000 / (100,000 x 1.00075) floored to 0.00999
    assert t["quantity"][0] == t["sold_quantity"][0] == 0.00999
    entry_fee = round(999.0 * 0.00075, 8)
    exit_fee = round(0.00999 * 101_000 * 0.00075, 8)
    assert t["fees"][0] == pytest.approx(entry_fee + exit_fee, abs=1e-12)
    assert t["pnl"][0] == pytest.approx(0.00999 * 101_000 - exit_fee - 999.0 - entry_fee,
                                        abs=1e-9)
    with pytest.raises(ConfigError, match="risk.bnb_fees"):
        Risk(bnb_fees=True, fee_model="quote")
    with pytest.raises(ConfigError, match="risk.fee_model"):
        Risk(fee_model="binance")


# -- a symbol whose data ends; break-even trades (issue 13) ----------------------------------

def test_a_symbol_whose_data_ends_is_sold_at_its_last_candle_and_frees_its_slot(shared_data):
    """BTCUSDT's data ends 12 days before ETHUSDT's: its position must not keep the slot."""
    btc = load_real("BTCUSDT", str(shared_data))
    eth = load_real("ETHUSDT", str(shared_data))
    last = int(btc.open_time[-1])
    parts = [btc.slice(len(btc) - 600, len(btc)),
             eth.slice(*np.searchsorted(eth.open_time, [last - 600 * MIN, last + 300 * MIN]))]
    assert parts[1].open_time[-1] > last
    sigs = [signals(len(parts[0]), entries=[100]),                       # held to its end
            signals(len(parts[1]), entries=range(len(parts[1])))]       # always wants in
    sigs[1] = Signals(sigs[1].entry, sigs[1].exit, np.zeros(len(parts[1])))
    sigs[0] = Signals(sigs[0].entry, sigs[0].exit, np.ones(len(parts[0])))
    times, cols, ent, ext = aligned(parts, sigs)
    ent[:, 1] &= times > int(parts[0].open_time[100])     # ETH asks only once BTC is in
    rules = [BTC_RULES, rules_for_prices(parts[1].close)]
    for risk in (Risk(max_positions=1, slippage=0.0005), Risk(max_positions=1, fee_model="quote")):
        sim = run_portfolio(times, cols["open"], cols["high"], cols["low"], cols["close"], ent,
                            ext, cols["score"], risk, rules)
        ref = reference_run(times, cols["open"], cols["high"], cols["low"], cols["close"], ent,
                            ext, cols["score"], risk, rules, MIN)
        assert_matches_reference(sim, ref)
        tr = sim.trades
        b = np.flatnonzero(tr["symbol_index"] == 0)[0]
        end_bar = int(np.searchsorted(times, last))
        assert EXIT_REASONS[tr["exit_reason"][b]] == "end"
        assert tr["exit_time"][b] == last and tr["exit_bar"][b] == end_bar
        from binance_cluster.kernels.fills import market_sell_price
        assert tr["exit_price"][b] == market_sell_price(btc.close[-1], risk.slippage, 0.01)
        # the slot is free at the next open: ETH enters there, not at the end of its data
        e = np.flatnonzero(tr["symbol_index"] == 1)[0]
        assert tr["entry_bar"][e] == end_bar + 1
        assert sim.held[end_bar + 1] == 1 and sim.held[end_bar] == 1


def _exact_pnl(tr, k, fee_rate):
    """The exact quote-model pnl of trade k from the decimals of its prices and quantity."""
    from fractions import Fraction

    q = Fraction(repr(float(tr["quantity"][k])))
    pi = Fraction(repr(float(tr["entry_price"][k])))
    pe = Fraction(repr(float(tr["exit_price"][k])))
    f = Fraction(repr(fee_rate))
    return q * pe * (1 - f) - q * pi * (1 + f)


def test_break_even_trades_are_neither_wins_nor_losses(shared_data):
    """A take profit of 2/999 exactly pays both 0.1 % fees: a target hit from an entry whose
    ticks divide by 999 has an exact pnl of 0, whatever float noise the sums leave (on
    BCHUSDT and SUIUSDT the float pnl of such a trade is +9.1e-13, a win by the float sign)."""
    st = get_strategy("bollinger_reversion")
    base = Risk(take_profit=2 / 999, stop_loss=0.01, fee_model="quote")
    zero, positive_noise, checked = 0, 0, 0
    for symbol in ("BCHUSDT", "SUIUSDT", "XRPUSDT", "ENAUSDT"):
        candles = load_real(symbol, str(shared_data))
        rules = rules_for_prices(candles.close)
        sig = compute_signals(st, candles, {"n": 20, "k": 2.0}, "1m")
        for risk in (base, dataclasses.replace(base, shifts=True, shifts_min_trades=2,
                                               shifts_min_win_rate=0.5)):
            sim = run_symbol(candles, sig, risk, rules)
            tr = sim.trades
            exact = [_exact_pnl(tr, k, risk.fee_rate) for k in range(sim.n_trades)]
            even = np.array([p == 0 for p in exact])
            real = ~tr["paper"]
            m = compute_metrics(sim, MIN, risk.initial_cash)
            wins = sum(1 for k in np.flatnonzero(real) if exact[k] > 0)
            assert m["win_rate"] == wins / real.sum()
            if not risk.shifts:
                zero += int(even.sum())
                positive_noise += int((even & real & (tr["pnl"] > 0.0)).sum())
                continue
            # shifts: an entry is real only when its hour won often enough, on exact results
            hours = (tr["entry_time"] // 3_600_000) % 24
            for k in np.flatnonzero(real):
                before = (tr["exit_bar"] < tr["entry_bar"][k]) & (hours == hours[k])
                won = sum(1 for j in np.flatnonzero(before) if exact[j] > 0)
                assert before.sum() >= 2 and won / before.sum() >= 0.5
                checked += 1
    assert zero >= 2 and positive_noise >= 2 and checked > 50


# -- written-down rules (README, backtest section) -------------------------------------------

def test_max_hold_counts_the_entry_bar_and_an_exit_signal_on_that_close_wins():
    c = bars([(100, 100, 100, 100)] * 8)
    risk = Risk(initial_cash=1000.0, max_hold_bars=3, fee_rate=0.0)
    sim = run_symbol(c, signals(8, entries=[0]), risk, FREE)
    assert (sim.trades["entry_bar"][0], sim.trades["exit_bar"][0]) == (1, 4)   # bar 1 + 3
    sim = run_symbol(c, signals(8, entries=[0], exits=[3]), risk, FREE)
    assert sim.trades["exit_bar"][0] == 4
    assert EXIT_REASONS[sim.trades["exit_reason"][0]] == "signal"


def test_trailing_stop_equal_to_the_stop_loss_reports_the_stop_loss():
    # entry 100: stop loss 95; trailing 5 % of the peak 100 is 95 too, touched in the entry bar
    c = bars([(100, 100, 100, 100), (100, 100, 94, 96), (96, 96, 96, 96)])
    risk = Risk(initial_cash=1000.0, stop_loss=0.05, trailing_stop=0.05, fee_rate=0.0)
    sim = run_symbol(c, signals(3, entries=[0]), risk, SymbolRules(0.01, 0.0, 0.0))
    assert sim.trades["exit_bar"][0] == 1 and sim.trades["exit_price"][0] == 95.0
    assert EXIT_REASONS[sim.trades["exit_reason"][0]] == "stop_loss"
    # a higher peak lifts the trailing level above the stop: reported as trailing_stop
    c = bars([(100, 100, 100, 100), (100, 110, 99, 108), (108, 108, 100, 101)])
    sim = run_symbol(c, signals(3, entries=[0]), risk, SymbolRules(0.01, 0.0, 0.0))
    assert sim.trades["exit_price"][0] == 104.5                       # 110 x 0.95
    assert EXIT_REASONS[sim.trades["exit_reason"][0]] == "trailing_stop"


def test_portfolio_budget_cash_cut_freed_slots_and_refused_buys():
    px = np.array([[10.0, 10.0, 10.0]] * 5)
    times = T0 + MIN * np.arange(5)
    ent = np.zeros((5, 3), bool)
    ext = np.zeros((5, 3), bool)
    score = np.array([[3.0, 2.0, 1.0]] * 5)
    ent[0, :] = True
    free = [FREE] * 3
    # every buy of one open gets stake x the equity marked at the decision's close (600 each),
    # cut to the cash left: 600, then 400, then nothing (rejected)
    risk = Risk(initial_cash=1000.0, stake=0.6, fee_rate=0.0, max_positions=3)
    sim = run_portfolio(times, px, px, px, px, ent, ext, score, risk, free)
    q = dict(zip(sim.trades["symbol_index"].tolist(), sim.trades["quantity"].tolist()))
    assert q == {0: 60.0, 1: 40.0}                                    # 600, then the 400 left
    # a buy refused for the minimum notional passes its slot to the next candidate
    rules = [SymbolRules(0.0, 0.0, 700.0), FREE, FREE]
    risk = Risk(initial_cash=1000.0, stake=0.6, fee_rate=0.0, max_positions=1)
    sim = run_portfolio(times, px, px, px, px, ent, ext, score, risk, rules)
    assert sim.trades["symbol_index"].tolist() == [1] and sim.rejected == 1
    # a slot freed by a sell decided at the same close is free at that open
    ent2 = np.zeros((5, 3), bool)
    ext2 = np.zeros((5, 3), bool)
    ent2[0, 0] = True
    ent2[2, 1] = True
    ext2[2, 0] = True
    sim = run_portfolio(times, px, px, px, px, ent2, ext2, score, risk, free)
    tr = sim.trades
    assert tr["symbol_index"].tolist() == [0, 1]
    assert (tr["exit_bar"][0], tr["entry_bar"][1]) == (3, 3)


def test_paper_trades_take_no_slot_and_no_cash_and_are_sized_from_equity():
    px = np.array([[10.0, 10.0]] * 6)
    times = T0 + MIN * np.arange(6)
    ent = np.zeros((6, 2), bool)
    ent[0, :] = True
    ext = np.zeros((6, 2), bool)
    score = np.array([[1.0, 2.0]] * 6)
    # no hour is qualified yet: both entries are paper trades; with one slot both still fill
    risk = Risk(initial_cash=1000.0, stake=0.8, fee_rate=0.0, max_positions=1, shifts=True)
    sim = run_portfolio(times, px, px, px, px, ent, ext, score, risk, [FREE, FREE])
    assert sim.trades["paper"].all() and sim.n_trades == 2
    assert sim.trades["quantity"].tolist() == [80.0, 80.0]     # 0.8 x 1000 each, not cash-capped
    assert sim.held.max() == 0 and np.all(sim.equity == 1000.0)
    m = compute_metrics(sim, MIN, risk.initial_cash)
    assert m["trades"] == 0 and m["fees"] == 0.0


def test_after_a_stop_in_bar_t_a_buy_decided_at_its_close_fills_at_the_next_open():
    c = bars([(100, 100, 100, 100), (100, 100, 94, 97), (98, 99, 97, 98), (99, 99, 99, 99)])
    risk = Risk(initial_cash=1000.0, stop_loss=0.05, fee_rate=0.0)
    sim = run_symbol(c, signals(4, entries=[0, 1]), risk, SymbolRules(0.01, 0.0, 0.0))
    t = sim.trades
    assert EXIT_REASONS[t["exit_reason"][0]] == "stop_loss" and t["exit_bar"][0] == 1
    assert t["entry_bar"][1] == 2 and t["entry_price"][1] == 98.0


# -- the per-bar decision API (engine.step) --------------------------------------------------

def _step_through(times, cols, ent, ext, score, risk, rules, max_positions=None):
    """Step bar by bar, rebuilding the decision state from the fills after every bar."""
    from binance_cluster.engine.step import (DecisionState, flat_state, hour_stats_of,
                                             peak_since, step_bar)

    n, m = cols["open"].shape
    present = ~np.isnan(cols["open"])
    last = [int(np.flatnonzero(present[:, s])[-1]) for s in range(m)]
    state = flat_state(m, risk.initial_cash)
    open_positions: dict[int, object] = {}
    closed = []                    # every trade, in order
    equity = []
    for t in range(n):
        res = step_bar(state, t, int(times[t]), cols["open"][t], cols["high"][t],
                       cols["low"][t], cols["close"][t], ent[t], ext[t], score[t],
                       np.array([last[s] == t for s in range(m)]), risk, rules, MIN,
                       max_positions=max_positions)
        equity.append(res.equity)
        for p in res.opened:
            open_positions[p.symbol] = p
        for k in range(len(res.trades["pnl"])):
            row = {key: res.trades[key][k] for key in res.trades}
            closed.append(row)
            open_positions.pop(int(row["symbol_index"]), None)
        # the rebuild: positions from their entry fills, dust from each symbol's last real
        # exit, statistics from the closed trades, peaks and closes from the candles
        dust = [0.0] * m
        for row in closed:
            if not row["paper"]:
                dust[int(row["symbol_index"])] = float(row["dust"])
        lc = [math.nan] * m
        for s in range(m):
            seen = np.flatnonzero(present[:t + 1, s])
            if seen.size:
                lc[s] = float(cols["close"][seen[-1], s])
        positions = tuple(open_positions[s] for s in sorted(open_positions))
        state = DecisionState(
            cash=res.cash, positions=positions, orders=res.orders,
            hour_stats=hour_stats_of([(int(r["hour"]), float(r["pnl"])) for r in closed]),
            dust=tuple(dust), last_close=tuple(lc),
            peaks=tuple(peak_since(p.price, cols["high"][p.bar:t + 1, p.symbol])
                        for p in positions))
    return closed, equity


def _same_trades(sim, closed):
    assert sim.n_trades == len(closed) > 5
    for key in TRADE_KEYS:
        got = np.array([row[key] for row in closed])
        np.testing.assert_array_equal(got, sim.trades[key], err_msg=key)


@pytest.mark.parametrize("fee_model", ["exchange", "quote"])
def test_stepping_a_day_from_rebuilt_states_gives_run_symbols_trades(data, fee_model):
    candles = data("LAYERUSDT", 1440)
    sig = compute_signals(get_strategy("rsi_reversion"), candles, {"n": 7, "lower": 25}, "1m")
    risk = Risk(stop_loss=0.003, take_profit=0.006, trailing_stop=0.005, max_hold_bars=10,
                shifts=True, shifts_min_trades=2, fee_model=fee_model, slippage=0.0002)
    rules = rules_for_prices(candles.close)
    whole = run_symbol(candles, sig, risk, rules)
    cols = {k: getattr(candles, k).reshape(-1, 1) for k in ("open", "high", "low", "close")}
    closed, equity = _step_through(candles.open_time, cols, sig.entry.reshape(-1, 1),
                                   sig.exit.reshape(-1, 1), sig.score.reshape(-1, 1), risk,
                                   [rules], max_positions=1)
    _same_trades(whole, closed)
    np.testing.assert_array_equal(equity, whole.equity)
    reasons = {EXIT_REASONS[r] for r in whole.trades["exit_reason"]}
    assert len(reasons) >= 4 and "max_hold" in reasons and whole.trades["paper"].any()


def test_stepping_a_day_from_rebuilt_states_gives_run_portfolios_trades(data):
    names = ["BTCUSDT", "LAYERUSDT", "SUIUSDT"]
    parts = [data(s, 1440) for s in names]
    parts[2] = parts[2].slice(0, 1000)                         # its data ends early
    st = get_strategy("rsi_reversion")
    sigs = [compute_signals(st, p, {"n": 7, "lower": 25, "upper": 60}, "1m") for p in parts]
    times, cols, ent, ext = aligned(parts, sigs)
    rules = [rules_for_prices(p.close) for p in parts]
    risk = Risk(max_positions=2, stake=0.5, trailing_stop=0.003, max_hold_bars=30,
                shifts=True, shifts_min_trades=2)
    sim = run_portfolio(times, cols["open"], cols["high"], cols["low"], cols["close"], ent, ext,
                        cols["score"], risk, rules)
    closed, equity = _step_through(times, cols, ent, ext, cols["score"], risk, rules)
    _same_trades(sim, closed)
    np.testing.assert_array_equal(equity, sim.equity)
    assert len(set(sim.trades["symbol_index"].tolist())) == 3


@pytest.mark.parametrize("name", ["sma_cross", "ema_cross"])
def test_fused_sweep_with_warm_up_history_equals_single_runs(data, name):
    """Bars before `first` feed the averages and the cross state only, in both paths."""
    candles = data("SOLUSDT", 12_000)
    rules = rules_for_prices(candles.close)
    st = get_strategy(name)
    grid = SMA_GRID[::7]
    first = max(p["slow"] for p in grid)
    for risk in (Risk(), Risk(fee_model="quote", stop_loss=0.004, max_hold_bars=90,
                              shifts=True, shifts_min_trades=2)):
        swept = sweep_symbol(st, candles, grid, risk, rules, "1m", first=first)
        for p, m in zip(grid, swept):
            sim = run_symbol(candles, compute_signals(st, candles, p, "1m"), risk, rules,
                             first=first)
            assert sim.times[0] == candles.open_time[first] and len(sim.equity) == 12_000 - first
            assert m == compute_metrics(sim, MIN, risk.initial_cash), p
        assert sum(m["trades"] for m in swept) > len(grid)
