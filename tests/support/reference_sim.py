"""Slow plain-Python backtest simulator: the oracle for `binance_cluster.kernels.simulate`.

Written from the rules in the docstrings of `kernels.simulate` and `kernels.fills` (it calls
the scalar fill functions, which `test_fills.py` checks by hand), one symbol at a time with
dicts and lists, no numba state arrays. `reference_run` handles a portfolio; one symbol is a
portfolio of one with max_positions = 1. The exchange fee model's 8-decimal amounts are
computed in exact decimals (as the emulator does), not with the kernels' float rounding.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from binance_cluster.kernels import fills

REASONS = ("signal", "stop_loss", "take_profit", "trailing_stop", "max_hold", "end")
WIN = 5e-9        # a win is a pnl above half a unit of the 8th decimal


def amount(x) -> float:
    """x (a float or Decimal) rounded half up to 8 decimals, as Binance amounts are."""
    d = x if isinstance(x, Decimal) else Decimal(repr(float(x)))
    return float(d.quantize(Decimal("0.00000001"), rounding=ROUND_HALF_UP))


def dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


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

    exchange = risk.fee_model == "exchange"
    rate = risk.fee_rate * (1 - risk.bnb_discount) if risk.bnb_fees else risk.fee_rate
    refused = [0]
    dust = [0.0] * m

    def sell(s: int, price: float):
        """(total, sold, proceeds, exit fee) of selling symbol s's held quantity at price."""
        p = positions[s]
        if not exchange:
            notional = p["held"] * price
            return p["held"], p["held"], notional - notional * rate, notional * rate
        total = dec(p["held"]) + (dec(dust[s]) if not p["paper"] else 0)   # earlier dust too
        sold = fills.floor_to_step(float(total), rules[s].step_size)
        notional = amount(dec(sold) * dec(price))
        exit_fee = amount(notional * rate)
        return total, sold, notional - exit_fee, exit_fee

    def close_position(s: int, price: float, reason: str, t: int, market: bool = False) -> bool:
        nonlocal cash
        total, sold, proceeds, exit_fee = sell(s, price)
        if market and exchange and not fills.notional_ok(sold, price, rules[s].min_notional):
            refused[0] += 1
            return False
        p = positions.pop(s)
        pnl = proceeds - p["cost"]
        left = amount(total - dec(sold)) if exchange else 0.0
        if not p["paper"]:
            cash = cash + proceeds
            dust[s] = left
        stats[p["hour"]][0] += 1
        stats[p["hour"]][1] += 1 if pnl > WIN else 0
        trades.append(dict(symbol_index=s, entry_time=p["time"], exit_time=int(times[t]),
                           entry_bar=p["bar"], exit_bar=t, entry_price=p["price"],
                           exit_price=price, quantity=p["qty"], sold_quantity=sold, dust=left,
                           fees=p["fee"] + exit_fee, pnl=pnl,
                           exit_reason=REASONS.index(reason), paper=p["paper"]))
        return True

    def buy_size(spend: float, price: float, s: int) -> float:
        paid_apart = not exchange or risk.bnb_fees
        return fills.buy_quantity(spend, price, rate if paid_apart else 0.0, rules[s].step_size)

    def open_position(s: int, price: float, qty: float, paper: bool, hour: int, t: int) -> None:
        nonlocal cash
        if not exchange:
            notional = qty * price
            entry_fee = notional * rate
            cost, held = notional + entry_fee, qty
        elif risk.bnb_fees:
            notional = amount(dec(qty) * dec(price))
            entry_fee = amount(notional * rate)
            cost, held = notional + entry_fee, qty
        else:
            commission = amount(qty * rate)
            cost = amount(dec(qty) * dec(price))
            held = amount(dec(qty) - dec(commission))
            entry_fee = commission * price
        if not paper:
            cash = cash - cost
        tick = rules[s].tick_size
        stop = math.nan if risk.stop_loss is None else \
            fills.floor_to_step(price * (1.0 - risk.stop_loss), tick)
        target = math.nan if risk.take_profit is None else \
            fills.ceil_to_step(price * (1.0 + risk.take_profit), tick)
        positions[s] = dict(qty=qty, held=held, cost=cost, price=price, fee=entry_fee,
                            stop=stop, target=target,
                            high=price, bar=t, time=int(times[t]), paper=paper, hour=hour)

    def stake() -> float:
        return risk.stake if risk.stake_mode == "quote" else risk.stake * marked

    present = ~np.isnan(np.asarray(opens, float))
    last_bar = [int(np.flatnonzero(present[:, s])[-1]) if present[:, s].any() else -1
                for s in range(m)]
    for t in range(n):
        # exits decided at the previous close fill at this open
        for s in sorted(pending):
            order = pending[s]
            if order["kind"] == "exit" and has(opens[t][s]):
                del pending[s]
                price = fills.market_sell_price(float(opens[t][s]), risk.slippage,
                                                rules[s].tick_size)
                close_position(s, price, order["reason"], t, market=True)
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
                qty = buy_size(stake(), price, s)
                if fills.notional_ok(qty, price, rules[s].min_notional):
                    open_position(s, price, qty, True, order["hour"], t)
            else:
                real.append((order["score"], s, order["hour"]))
        real.sort(key=lambda x: (0 if has(x[0]) else 1, -x[0] if has(x[0]) else 0.0, x[1]))
        for score, s, hour in real:
            if sum(1 for p in positions.values() if not p["paper"]) >= max_pos:
                break
            price = fills.market_buy_price(float(opens[t][s]), risk.slippage, rules[s].tick_size)
            qty = buy_size(min(stake(), cash), price, s)
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
        # decisions for the next open (none for a symbol at its last candle)
        for s in range(m):
            if not has(closes[t][s]) or s in pending or t == last_bar[s]:
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
        # a symbol at its last candle is sold at that close, after the decisions
        for s in range(m):
            if t == last_bar[s]:
                pending.pop(s, None)
                if s in positions:
                    price = fills.market_sell_price(float(closes[t][s]), risk.slippage,
                                                    rules[s].tick_size)
                    close_position(s, price, "end", t)
        # mark to the close
        for s in range(m):
            if has(closes[t][s]):
                last_close[s] = float(closes[t][s])
        value = cash
        for s in range(m):
            if s in positions and not positions[s]["paper"]:
                value = value + positions[s]["held"] * last_close[s]
        equity.append(value)
        marked = value
    return dict(trades=trades, equity=equity, held=held, refused=refused[0], dust=dust)
