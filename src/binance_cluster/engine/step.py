"""Per-bar decision API: a decision state a live loop rebuilds from its fills, and one bar of
`kernels.simulate.step` over it, for one symbol or a portfolio.

The backtest (`engine.simulate.run_symbol` / `run_portfolio`) runs the same `step` over every
bar with its state kept in kernel arrays; here the state is plain records a live loop can
rebuild after every closed bar from what the exchange reports: the quote balance, the open
positions (their entry fills), the orders decided at the last close, the closed trades (for the
shifts statistics), the dust each symbol's last exit left, the last closes and, for trailing
stops, the highest high since each entry (`peak_since`). `step_bar` packs that state, runs one
bar and returns what happened (fills as positions opened and trades closed) and the new orders.
Stepping bar by bar this way gives exactly the backtest's trades (tested on real data).

The fused sweep kernels (`kernels.simulate.sweep_cross`) stay a separate, faster path for
parameter sweeps; tests tie them to `step` bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from binance_cluster.engine.simulate import Risk, SymbolRules, _trades_dict, risk_array
from binance_cluster.kernels import simulate as kern
from binance_cluster.kernels.metrics import is_win

# Orders decided at a close (kinds).
ENTRY = kern.PEND_ENTRY
EXIT_SIGNAL = kern.PEND_EXIT_SIGNAL
EXIT_MAX_HOLD = kern.PEND_EXIT_MAX_HOLD


@dataclass(frozen=True, slots=True)
class Position:
    """An open position, from its entry fill: quantity bought and held, quote paid, fee."""

    symbol: int
    paper: bool
    bar: int              # index of the entry bar
    time: int             # open time of the entry bar (ms)
    price: float
    quantity: float       # bought
    held: float           # held after a commission taken in the coin
    cost: float           # quote paid, fee included when paid in quote
    fee: float            # entry fee valued in quote
    hour: int             # UTC hour of the entry decision (shifts)


@dataclass(frozen=True, slots=True)
class Order:
    """An order decided at a close for the next open: ENTRY, EXIT_SIGNAL or EXIT_MAX_HOLD."""

    symbol: int
    kind: int
    paper: bool = False
    hour: int = 0
    score: float = math.nan


@dataclass(frozen=True, slots=True)
class DecisionState:
    """What a decision needs, as a live loop knows it after a closed bar."""

    cash: float                                   # quote balance
    positions: tuple[Position, ...] = ()
    orders: tuple[Order, ...] = ()
    hour_stats: tuple[tuple[int, int], ...] = ((0, 0),) * 24   # (closed, won) per UTC hour
    dust: tuple[float, ...] = ()                  # per symbol: left by its last real exit
    last_close: tuple[float, ...] = ()            # per symbol (NaN: none yet)
    peaks: tuple[float, ...] = ()                 # per open position: highest high since entry


@dataclass(frozen=True, slots=True)
class StepResult:
    """One bar: positions opened and still open, trades closed, new orders, cash, equity."""

    opened: tuple[Position, ...]
    trades: dict[str, np.ndarray]                 # TRADE_COLUMNS plus "hour"
    orders: tuple[Order, ...]
    cash: float
    equity: float
    held: int
    rejected: int
    refused: int


def flat_state(n_symbols: int, cash: float) -> DecisionState:
    """The state of a flat account holding `cash`."""
    return DecisionState(cash=cash, dust=(0.0,) * n_symbols,
                         last_close=(math.nan,) * n_symbols)


def hour_stats_of(closed: Sequence[tuple[int, float]]) -> tuple[tuple[int, int], ...]:
    """Per UTC hour (closed trades, winning trades) of closed (hour, pnl) pairs."""
    stats = [[0, 0] for _ in range(24)]
    for hour, pnl in closed:
        stats[hour][0] += 1
        stats[hour][1] += 1 if is_win(pnl) else 0
    return tuple((a, b) for a, b in stats)


def peak_since(entry_price: float, highs: np.ndarray) -> float:
    """Trailing peak of a position: its entry fill and the highs of its bars so far (NaN: no
    candle), each bar's high counting after its own stop check."""
    peak = entry_price
    for h in np.asarray(highs, dtype=np.float64):
        if h > peak:
            peak = float(h)
    return peak


def _pack(state: DecisionState, risk_params: np.ndarray, tick: np.ndarray, n: int):
    float_state, int_state, portfolio_state, hours, trades = kern.new_state(n, float(state.cash))
    float_state[:, kern.F_DUST] = state.dust
    float_state[:, kern.F_LAST_CLOSE] = state.last_close
    for p, peak in zip(state.positions, state.peaks):
        s = p.symbol
        stop, target = kern.protective_levels(p.price, risk_params, tick[s], kern.grid_inverse(tick[s]))
        float_state[s, [kern.F_QTY, kern.F_ENTRY_PRICE, kern.F_ENTRY_FEE, kern.F_STOP, kern.F_TARGET,
                   kern.F_TRAIL_HIGH, kern.F_HELD, kern.F_COST]] = (
            p.quantity, p.price, p.fee, stop, target, peak, p.held, p.cost)
        int_state[s, kern.I_POS] = kern.POS_PAPER if p.paper else kern.POS_REAL
        int_state[s, kern.I_ENTRY_BAR] = p.bar
        int_state[s, kern.I_ENTRY_TIME] = p.time
        int_state[s, kern.I_HOUR] = p.hour
        if not p.paper:
            portfolio_state[kern.P_OPEN] += 1
    for o in state.orders:
        int_state[o.symbol, kern.I_PENDING] = o.kind
        int_state[o.symbol, kern.I_PENDING_PAPER] = 1 if o.paper else 0
        int_state[o.symbol, kern.I_PENDING_HOUR] = o.hour
        float_state[o.symbol, kern.F_PENDING_SCORE] = o.score
    hours[:, :] = np.asarray(state.hour_stats, dtype=np.int64)
    equity = float(state.cash)          # marked at the last close, as phase F marks it
    for s in range(n):
        if int_state[s, kern.I_POS] == kern.POS_REAL:
            equity = equity + float_state[s, kern.F_HELD] * float_state[s, kern.F_LAST_CLOSE]
    portfolio_state[kern.P_EQUITY] = equity
    return float_state, int_state, portfolio_state, hours, trades


def step_bar(state: DecisionState, t: int, time_ms: int, open_, high, low, close, entry, exit_,
             score, ends, risk: Risk, rules: Sequence[SymbolRules], bar_ms: int,
             max_positions: int | None = None) -> StepResult:
    """Run bar t (arrays per symbol: prices NaN without a candle; `ends` True at a symbol's
    last candle) from `state`; the fills, trades and orders of that bar."""
    n = len(rules)
    risk_params = risk_array(risk, bar_ms, max_positions=max_positions)
    tick = np.array([r.tick_size for r in rules], float)
    lot = np.array([r.step_size for r in rules], float)
    floor = np.array([r.min_notional for r in rules], float)
    float_state, int_state, portfolio_state, hours, buf = _pack(state, risk_params, tick, n)

    def col(a, dtype):
        return np.ascontiguousarray(np.asarray(a, dtype=dtype).reshape(n))

    buf, n_trades, held, equity = kern.step(
        t, int(time_ms), col(open_, float), col(high, float), col(low, float), col(close, float),
        col(entry, bool), col(exit_, bool), col(score, float), col(ends, bool), risk_params, tick, lot,
        floor, float_state, int_state, portfolio_state, hours, buf, 0)
    rows = buf[:n_trades]
    trades = _trades_dict(rows)
    trades["hour"] = rows[:, kern.T_HOUR].astype(np.int64)
    opened = tuple(
        Position(s, bool(int_state[s, kern.I_POS] == kern.POS_PAPER), t, int(time_ms),
                 float(float_state[s, kern.F_ENTRY_PRICE]), float(float_state[s, kern.F_QTY]),
                 float(float_state[s, kern.F_HELD]), float(float_state[s, kern.F_COST]),
                 float(float_state[s, kern.F_ENTRY_FEE]), int(int_state[s, kern.I_HOUR]))
        for s in range(n)
        if int_state[s, kern.I_POS] != kern.POS_FLAT and int_state[s, kern.I_ENTRY_BAR] == t)
    orders = tuple(Order(s, int(int_state[s, kern.I_PENDING]),
                         bool(int_state[s, kern.I_PENDING_PAPER]), int(int_state[s, kern.I_PENDING_HOUR]),
                         float(float_state[s, kern.F_PENDING_SCORE]))
                   for s in range(n) if int_state[s, kern.I_PENDING] != kern.PEND_NONE)
    return StepResult(opened, trades, orders, float(portfolio_state[kern.P_CASH]), float(equity),
                      int(held), int(portfolio_state[kern.P_REJECTED]), int(portfolio_state[kern.P_SELL_REFUSED]))
