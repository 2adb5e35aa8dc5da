"""Slow plain-Python backtest simulator: the oracle for `binance_cluster.kernels.simulate`.

Written from the rules in the docstrings of `kernels.simulate` and `kernels.fills` (it calls
the scalar fill functions, which `test_fills.py` checks by hand), one symbol at a time with
dicts and lists, no numba state arrays. `reference_run` handles a portfolio; one symbol is a
portfolio of one with max_positions = 1.
"""

from __future__ import annotations

import math

import numpy as np

from binance_cluster.kernels import fills

REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "max_hold", "end")


def reference_run(times, opens, highs, lows, closes, entries, exits, scores, risk, rules,
                  bar_ms: int, max_positions: int | None = None) -> dict:
    """Trades (list of dicts), equity (list) and held (list) of a run under the documented rules."""
    o = np.asarray(opens, float)
    if o.ndim == 1:
        shape = (o.shape[0], 1)
        opens, highs, lows, closes = (np.asarray(a, float).reshape(shape)
                                      for a in (opens, highs, lows, closes))
        entries, exits = (np.asarray(a, bool).reshape(shape) for a in (entries, exits))
        scores = np.asarray(scores, float).reshape(shape)
        rules = [rules]
        max_positions = 1
    n, m = np.asarray(opens).shape
    max_pos = risk.max_positions if max_positions is None else max_positions
    cash = float(risk.initial_cash)
    marked = cash                      # equity at the previous close
    positions: dict[int, dict] = {}
    pending: dict[int, dict] = {}
    last_close = [math.nan] * m
    stats = [[0, 0] for _ in range(24)]
    trades: list[dict] = []
    equity: list[float] = []
    held: list[int] = []

    def has(x) -> bool:
        return not math.isnan(x)

    def close_position(s: int, price: float, reason: str, t: int) -> None:
        nonlocal cash
        p = positions.pop(s)
        notional = p["qty"] * price
        exit_fee = notional * risk.fee_rate
        pnl = (notional - exit_fee) - (p["qty"] * p["price"] + p["fee"])
        if not p["paper"]:
            cash = cash + (notional - exit_fee)
        stats[p["hour"]][0] += 1
        stats[p["hour"]][1] += 1 if pnl > 0 else 0
        trades.append(dict(symbol_index=s, entry_time=p["time"], exit_time=int(times[t]),
                           entry_bar=p["bar"], exit_bar=t, entry_price=p["price"],
                           exit_price=price, quantity=p["qty"], fees=p["fee"] + exit_fee,
                           pnl=pnl, exit_reason=REASONS.index(reason), paper=p["paper"]))

    def open_position(s: int, price: float, qty: float, paper: bool, hour: int, t: int) -> None:
        nonlocal cash
        notional = qty * price
        entry_fee = notional * risk.fee_rate
        if not paper:
            cash = cash - (notional + entry_fee)
        tick = rules[s].tick_size
        stop = math.nan if risk.stop_loss is None else \
            fills.floor_to_step(price * (1.0 - risk.stop_loss), tick)
        target = math.nan if risk.take_profit is None else \
            fills.ceil_to_step(price * (1.0 + risk.take_profit), tick)
        positions[s] = dict(qty=qty, price=price, fee=entry_fee, stop=stop, target=target,
                            high=price, bar=t, time=int(times[t]), paper=paper, hour=hour)

    def stake() -> float:
        return risk.stake if risk.stake_mode == "quote" else risk.stake * marked

    for t in range(n):
        # exits decided at the previous close fill at this open
        for s in sorted(pending):
            order = pending[s]
            if order["kind"] == "exit" and has(opens[t][s]):
                del pending[s]
                price = fills.market_sell_price(float(opens[t][s]), risk.slippage,
                                                rules[s].tick_size)
                close_position(s, price, order["reason"], t)
        # entries: paper ones always, real ones by score while slots and cash allow
        real = []
        for s in sorted(pending):
            order = pending[s]
            if order["kind"] != "entry":
                continue
            del pending[s]
            if not has(opens[t][s]):
                continue
            if order["paper"]:
                price = fills.market_buy_price(float(opens[t][s]), risk.slippage,
                                               rules[s].tick_size)
                qty = fills.buy_quantity(stake(), price, risk.fee_rate, rules[s].step_size)
                if fills.notional_ok(qty, price, rules[s].min_notional):
                    open_position(s, price, qty, True, order["hour"], t)
            else:
                real.append((order["score"], s, order["hour"]))
        real.sort(key=lambda x: (0 if has(x[0]) else 1, -x[0] if has(x[0]) else 0.0, x[1]))
        for score, s, hour in real:
            if sum(1 for p in positions.values() if not p["paper"]) >= max_pos:
                break
            price = fills.market_buy_price(float(opens[t][s]), risk.slippage, rules[s].tick_size)
            qty = fills.buy_quantity(min(stake(), cash), price, risk.fee_rate,
                                     rules[s].step_size)
            if fills.notional_ok(qty, price, rules[s].min_notional):
                open_position(s, price, qty, False, hour, t)
        held.append(sum(1 for p in positions.values() if not p["paper"]))
        # stops, trailing stops and targets inside the bar
        for s in sorted(positions):
            if not has(opens[t][s]):
                continue
            p = positions[s]
            level, trailing = p["stop"], False
            if risk.trailing_stop is not None:
                trail = fills.floor_to_step(p["high"] * (1.0 - risk.trailing_stop),
                                            rules[s].tick_size)
                if not has(level) or trail > level:
                    level, trailing = trail, True
            price, kind = fills.long_exit_fill(float(opens[t][s]), float(highs[t][s]),
                                               float(lows[t][s]), level, p["target"])
            if kind == fills.TARGET_FILL:
                close_position(s, price, "take_profit", t)
            elif kind == fills.STOP_FILL:
                close_position(s, price, "trailing_stop" if trailing else "stop_loss", t)
            else:
                p["high"] = max(p["high"], float(highs[t][s]))
        # mark to the close
        for s in range(m):
            if has(closes[t][s]):
                last_close[s] = float(closes[t][s])
        value = cash
        for s in range(m):
            if s in positions and not positions[s]["paper"]:
                value = value + positions[s]["qty"] * last_close[s]
        equity.append(value)
        marked = value
        # decisions for the next open
        for s in range(m):
            if not has(closes[t][s]) or s in pending:
                continue
            if s in positions:
                if exits[t][s]:
                    pending[s] = dict(kind="exit", reason="signal")
                elif risk.max_hold_bars is not None and \
                        t + 1 - positions[s]["bar"] >= risk.max_hold_bars:
                    pending[s] = dict(kind="exit", reason="max_hold")
            elif entries[t][s] and not exits[t][s]:
                hour = ((int(times[t]) + bar_ms) // 3_600_000) % 24 if risk.shifts else 0
                paper = False
                if risk.shifts:
                    closed, won = stats[hour]
                    paper = not (closed >= risk.shifts_min_trades and closed > 0
                                 and won / closed >= risk.shifts_min_win_rate)
                pending[s] = dict(kind="entry", score=float(scores[t][s]), paper=paper,
                                  hour=hour)
    if n:
        for s in sorted(positions):
            price = fills.market_sell_price(last_close[s], risk.slippage, rules[s].tick_size)
            close_position(s, price, "end", n - 1)
        equity[-1] = cash
    return dict(trades=trades, equity=equity, held=held)
