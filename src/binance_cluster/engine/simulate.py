"""Backtest simulator: validating wrappers over `kernels.simulate` (decision step, fills).

- `run_symbol`: one symbol, its signals, one position at a time.
- `run_portfolio`: several symbols on one time axis with one shared cash balance, at most
  `risk.max_positions` real positions, simultaneous entries ranked by score.
- `sweep_symbol`: every combination of a parameter grid on one symbol, one metrics dict each;
  indicator windows shared by combinations are computed once, and `sma_cross` / `ema_cross`
  run in the fused single-pass kernel.

The rules (timing, fills, sizing, stops, shifts) are documented in `kernels.simulate` and
`kernels.fills`. In short: a signal on the close of bar t fills at the open of bar t+1 plus
slippage; stops and targets fill inside later bars at their price (or the open on a gap),
stop first; fees on every fill; quantities to the lot step, prices to the tick, entries under
the minimum notional rejected; open positions are sold at the last close at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np

from binance_cluster.errors import ConfigError, DataError
from binance_cluster.engine.metrics import accumulators, finish_many
from binance_cluster.engine.symbol_rules import SymbolRules  # noqa: F401  (re-exported)
from binance_cluster.kernels import simulate as kern
from binance_cluster.types import Candles, interval_ms

EXIT_REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "max_hold", "end")
STAKE_MODES = ("fraction", "quote")
FEE_MODELS = ("exchange", "quote")
TRADE_COLUMNS = ("symbol_index", "entry_time", "exit_time", "entry_bar", "exit_bar",
                 "entry_price", "exit_price", "quantity", "sold_quantity", "dust", "fees", "pnl",
                 "exit_reason", "paper")


@dataclass(frozen=True, slots=True)
class Risk:
    """Sizing, costs and exits of a run (checked on construction: ConfigError naming the field)."""

    initial_cash: float = 10_000.0
    stake: float = 1.0            # "fraction": of equity (1.0 = all in); "quote": fixed amount
    stake_mode: str = "fraction"
    fee_rate: float = 0.001       # on every fill
    slippage: float = 0.0         # fraction added to buys / subtracted from sells at market fills
    stop_loss: float | None = None       # fraction below the entry price
    take_profit: float | None = None     # fraction above the entry price
    trailing_stop: float | None = None   # fraction below the highest high since entry
    max_hold_bars: int | None = None
    shifts: bool = False                 # SEEDS A trading hours: paper trades in weak hours
    shifts_min_win_rate: float = 0.66
    shifts_min_trades: int = 3           # hours with fewer closed trades are not yet qualified
    max_positions: int = 1               # portfolio mode only
    fee_model: str = "exchange"          # "exchange": as Binance accounts; "quote": all in quote
    bnb_fees: bool = False               # exchange model: fees paid in BNB at a discount
    bnb_discount: float = 0.25           # Binance's discount for paying fees in BNB

    def __post_init__(self) -> None:
        def bad(name: str, problem: str) -> ConfigError:
            return ConfigError(f"risk.{name} = {getattr(self, name)!r}: {problem}")

        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("stake_mode", "fee_model") or v is None or isinstance(v, bool):
                continue
            if not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                raise bad(f.name, "must be a finite number")
        for name in ("shifts", "bnb_fees"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise bad(name, "must be true or false")
        if self.fee_model not in FEE_MODELS:
            raise bad("fee_model", f"must be one of {', '.join(FEE_MODELS)}")
        if self.bnb_fees and self.fee_model != "exchange":
            raise bad("bnb_fees", "BNB fees are a choice of the exchange fee model")
        if not 0 <= self.bnb_discount < 1:
            raise bad("bnb_discount", "must be at least 0 and below 1")
        if self.stake_mode not in STAKE_MODES:
            raise bad("stake_mode", f"must be one of {', '.join(STAKE_MODES)}")
        if self.initial_cash <= 0:
            raise bad("initial_cash", "must be above zero")
        if self.stake <= 0:
            raise bad("stake", "must be above zero")
        if self.stake_mode == "fraction" and self.stake > 1:
            raise bad("stake", "a fraction of equity must be at most 1 (spot, no leverage)")
        if not 0 <= self.fee_rate < 1:
            raise bad("fee_rate", "must be at least 0 and below 1")
        if not 0 <= self.slippage < 1:
            raise bad("slippage", "must be at least 0 and below 1")
        for name in ("stop_loss", "trailing_stop"):
            v = getattr(self, name)
            if v is not None and not 0 < v < 1:
                raise bad(name, "must be above 0 and below 1 (a fraction of the price)")
        if self.take_profit is not None and not self.take_profit > 0:
            raise bad("take_profit", "must be above 0 (a fraction of the entry price)")
        if self.max_hold_bars is not None and (self.max_hold_bars < 1
                                               or int(self.max_hold_bars) != self.max_hold_bars):
            raise bad("max_hold_bars", "must be a whole number of bars, at least 1")
        if not 0 <= self.shifts_min_win_rate <= 1:
            raise bad("shifts_min_win_rate", "must be between 0 and 1")
        if self.shifts_min_trades < 1 or int(self.shifts_min_trades) != self.shifts_min_trades:
            raise bad("shifts_min_trades", "must be a whole number, at least 1")
        if self.max_positions < 1 or int(self.max_positions) != self.max_positions:
            raise bad("max_positions", "must be a whole number, at least 1")


@dataclass(frozen=True, slots=True)
class SimResult:
    """Trades (columns TRADE_COLUMNS), equity marked at every close, bar times.

    `held[t]` counts the real positions open during bar t (after the open's fills);
    `rejected` counts entries rejected under the minimum notional, `sell_refused` market
    sells refused under it (exchange model); `dust[s]` is the quantity of symbol s left
    unsold below one lot step by its real exits. Trade times are the open times of the bars
    in which the fills happened; entry_bar / exit_bar index `times`.
    """

    trades: dict[str, np.ndarray]
    equity: np.ndarray
    times: np.ndarray
    held: np.ndarray | None = None
    rejected: int = 0

    sell_refused: int = 0
    dust: np.ndarray | None = None

    @property
    def n_trades(self) -> int:
        return int(self.trades["pnl"].shape[0])


def stake_after_fees(risk: Risk) -> float:
    """Quote value the initial stake buys after its commission (the stake x (1 - fee) in the
    exchange model, stake / (1 + fee) when the fee is paid on top)."""
    amount = risk.stake if risk.stake_mode == "quote" else risk.stake * risk.initial_cash
    if risk.fee_model == "exchange" and not risk.bnb_fees:
        return amount * (1.0 - risk.fee_rate)
    rate = risk.fee_rate * (1.0 - risk.bnb_discount) if risk.bnb_fees else risk.fee_rate
    return amount / (1.0 + rate)


def rules_for_prices(prices: np.ndarray, min_notional: float = 5.0,
                     step_size: float = 0.00001) -> SymbolRules:
    """SymbolRules with the tick of the prices' decimals (when exchange info is missing)."""
    from binance_cluster.strategies.registry import price_scale

    return SymbolRules(tick_size=float(f"{1.0 / price_scale(prices):.12g}"), step_size=step_size,
                       min_notional=min_notional)


def risk_array(risk: Risk, bar_ms: int, max_positions: int | None = None) -> np.ndarray:
    """The kernels' packed risk parameters (see `kernels.simulate.R_*`)."""
    risk_params = np.full(kern.R_SIZE, np.nan)
    risk_params[kern.R_INITIAL_CASH] = risk.initial_cash
    risk_params[kern.R_STAKE] = risk.stake
    risk_params[kern.R_STAKE_QUOTE] = 1.0 if risk.stake_mode == "quote" else 0.0
    risk_params[kern.R_FEE] = risk.fee_rate * (1.0 - risk.bnb_discount) if risk.bnb_fees \
        else risk.fee_rate
    risk_params[kern.R_FEE_MODEL] = (kern.FEE_QUOTE if risk.fee_model == "quote" else
                            kern.FEE_BNB if risk.bnb_fees else kern.FEE_EXCHANGE)
    risk_params[kern.R_SLIPPAGE] = risk.slippage
    if risk.stop_loss is not None:
        risk_params[kern.R_STOP_LOSS] = risk.stop_loss
    if risk.take_profit is not None:
        risk_params[kern.R_TAKE_PROFIT] = risk.take_profit
    if risk.trailing_stop is not None:
        risk_params[kern.R_TRAILING] = risk.trailing_stop
    risk_params[kern.R_MAX_HOLD] = 0.0 if risk.max_hold_bars is None else float(risk.max_hold_bars)
    risk_params[kern.R_SHIFTS] = 1.0 if risk.shifts else 0.0
    risk_params[kern.R_SHIFTS_RATE] = risk.shifts_min_win_rate
    risk_params[kern.R_SHIFTS_MIN] = risk.shifts_min_trades
    risk_params[kern.R_MAX_POSITIONS] = risk.max_positions if max_positions is None else max_positions
    risk_params[kern.R_BAR_MS] = bar_ms
    return risk_params


def _trades_dict(buf: np.ndarray) -> dict[str, np.ndarray]:
    t = buf
    return {
        "symbol_index": t[:, kern.T_SYMBOL].astype(np.int64),
        "entry_time": t[:, kern.T_ENTRY_TIME].astype(np.int64),
        "exit_time": t[:, kern.T_EXIT_TIME].astype(np.int64),
        "entry_bar": t[:, kern.T_ENTRY_BAR].astype(np.int64),
        "exit_bar": t[:, kern.T_EXIT_BAR].astype(np.int64),
        "entry_price": t[:, kern.T_ENTRY_PRICE].copy(),
        "exit_price": t[:, kern.T_EXIT_PRICE].copy(),
        "quantity": t[:, kern.T_QTY].copy(),
        "sold_quantity": t[:, kern.T_SOLD].copy(),
        "dust": t[:, kern.T_DUST].copy(),
        "fees": t[:, kern.T_FEES].copy(),
        "pnl": t[:, kern.T_PNL].copy(),
        "exit_reason": t[:, kern.T_REASON].astype(np.int8),
        "paper": t[:, kern.T_PAPER] != 0.0,
    }


def _bar_ms(times: np.ndarray) -> int:
    """Bar length from the smallest step between times (1 when there are fewer than 2 bars)."""
    if times.shape[0] < 2:
        return 60_000
    return int(np.min(np.diff(times)))


def _check_signals(name: str, arr: Any, n: int, dtype) -> np.ndarray:
    a = np.asarray(arr)
    if a.shape != (n,):
        raise DataError(f"signals.{name} has shape {a.shape}, expected ({n},) like the candles")
    return np.ascontiguousarray(a, dtype=dtype)


def run_symbol(candles: Candles, signals, risk: Risk, rules: SymbolRules,
               bar_ms: int | None = None, first: int = 0) -> SimResult:
    """Simulate one symbol trading its signals (one position at a time).

    Candles before index `first` are warm-up history: their signals are ignored and the run
    (trades, equity, bars) covers candles first.. only. `bar_ms` (used only for the shifts
    hour of a decision) defaults to the smallest step between the candles' open times.
    """
    entry = _check_signals("entry", signals.entry, len(candles), np.bool_)
    exit_ = _check_signals("exit", signals.exit, len(candles), np.bool_)
    score = _check_signals("score", signals.score, len(candles), np.float64)
    if first:
        if not 0 <= first <= len(candles):
            raise DataError(f"run_symbol: first = {first} is outside the {len(candles)} candles")
        candles = candles.slice(first, len(candles))
        entry, exit_, score = entry[first:], exit_[first:], score[first:]
    n = len(candles)
    times = np.ascontiguousarray(candles.open_time, dtype=np.int64)
    if bar_ms is None:
        bar_ms = _bar_ms(times)
    cols = [np.ascontiguousarray(getattr(candles, k), dtype=np.float64).reshape(n, 1)
            for k in ("open", "high", "low", "close")]
    risk_params = risk_array(risk, bar_ms, max_positions=1)
    out = kern.simulate(
        times, *cols, entry.reshape(n, 1), exit_.reshape(n, 1), score.reshape(n, 1), risk_params,
        np.array([rules.tick_size], float), np.array([rules.step_size], float),
        np.array([rules.min_notional], float))
    return _result(out, times)


def _result(out, times: np.ndarray) -> SimResult:
    buf, equity, held, rejected, refused, dust = out
    return SimResult(_trades_dict(buf), equity, times, held, int(rejected), int(refused), dust)


def run_portfolio(times: np.ndarray, opens: np.ndarray, highs: np.ndarray, lows: np.ndarray,
                  closes: np.ndarray, entries: np.ndarray, exits: np.ndarray,
                  scores: np.ndarray, risk: Risk, rules: Sequence[SymbolRules],
                  bar_ms: int | None = None) -> SimResult:
    """Simulate several symbols with one cash balance: 2-D [bar, symbol] arrays, NaN = no candle."""
    times = np.ascontiguousarray(times, dtype=np.int64)
    if times.ndim != 1:
        raise DataError(f"portfolio times must be 1-D, not shape {times.shape}")
    n = times.shape[0]
    if n > 1 and np.any(np.diff(times) <= 0):
        raise DataError("portfolio times must be strictly increasing")
    arrays = {}
    shape = None
    for name, arr, dtype in (("opens", opens, np.float64), ("highs", highs, np.float64),
                             ("lows", lows, np.float64), ("closes", closes, np.float64),
                             ("entries", entries, np.bool_), ("exits", exits, np.bool_),
                             ("scores", scores, np.float64)):
        a = np.asarray(arr)
        if a.ndim != 2 or a.shape[0] != n:
            raise DataError(f"portfolio {name} has shape {a.shape}, expected ({n}, symbols)")
        if shape is None:
            shape = a.shape
        elif a.shape != shape:
            raise DataError(f"portfolio {name} has shape {a.shape}, expected {shape}")
        arrays[name] = np.ascontiguousarray(a, dtype=dtype)
    if len(rules) != shape[1]:
        raise ConfigError(f"run_portfolio got {len(rules)} symbol rules for {shape[1]} symbols")
    present = np.isfinite(arrays["opens"])
    for name in ("highs", "lows", "closes"):
        if not np.array_equal(present, np.isfinite(arrays[name])):
            raise DataError(f"portfolio {name}: NaN must mark the same missing candles as opens")
    if bar_ms is None:
        bar_ms = _bar_ms(times)
    risk_params = risk_array(risk, bar_ms)
    out = kern.simulate(
        times, arrays["opens"], arrays["highs"], arrays["lows"], arrays["closes"],
        arrays["entries"], arrays["exits"], arrays["scores"], risk_params,
        np.array([r.tick_size for r in rules], float),
        np.array([r.step_size for r in rules], float),
        np.array([r.min_notional for r in rules], float))
    return _result(out, times)


def sweep_symbol(strategy, candles: Candles, grid: Sequence[Mapping[str, Any]], risk: Risk,
                 rules: SymbolRules, interval: str, first: int = 0, model: Any = None) -> list[dict]:
    """Metrics of every grid combination on one symbol, in grid order.

    Indicator arrays are computed once per symbol and shared by the combinations, which run
    in the strategy's fused sweep kernel (`Strategy.sweep_fn`; a strategy without one runs
    `run_symbol` per combination). Candles before `first` are warm-up history (see
    `run_symbol`); `model` is what a strategy that `needs_model` reads. Results equal
    `compute_metrics(run_symbol(...))` of each combination, bit for bit.
    """
    from binance_cluster.strategies.registry import (SignalContext, SweepArgs, check_candles,
                                                     compute_signals)

    bar_ms = interval_ms(interval)
    params = [strategy.resolve(p) for p in grid]
    check_candles(candles)
    if not params:
        return []
    ctx = SignalContext(candles, interval, model)
    if not 0 <= first <= len(candles):
        raise DataError(f"sweep_symbol: first = {first} is outside the {len(candles)} candles")
    if strategy.sweep_fn is not None and len(candles) > first:
        accs = strategy.sweep_fn(ctx, params, SweepArgs(
            risk_array(risk, bar_ms, max_positions=1), rules.tick_size, rules.step_size,
            rules.min_notional, first))
    else:
        accs = []
        for p in params:
            sim = run_symbol(candles, compute_signals(strategy, candles, p, interval, ctx),
                             risk, rules, bar_ms=bar_ms, first=first)
            accs.append(accumulators(sim, risk.initial_cash))
    return finish_many(np.array(accs, dtype=np.float64).reshape(len(accs), -1), bar_ms,
                       risk.initial_cash)
