"""Random order sequences for driving brokers alike (the paper/emulator property test and
bench/bench_order_engine.py).

    steps = random_script(random.Random(7), ("BTCUSDT",), price_at, start_ms, 80)
    for step in steps:
        outcome = apply(broker, step)      # Advance steps are the caller's (clocks differ)

A script mixes orders worth 8 to 1,500 quote (a few under the minimum notional, a few more
than the balance) of MARKET (by quantity or quote amount), LIMIT (GTC / IOC / FOK, some crossing
the market), STOP_LOSS_LIMIT and TAKE_PROFIT_LIMIT (buys and sells, some that would trigger
at once, limits on either side of the stop), SELL OCO lists, cancels of earlier orders (open
or not) and clock steps from seconds to tens of minutes. Prices are drawn around the current
price `price_at(symbol, now)` of the candles both sides replay, so the same script is the
same sequence of requests for every broker.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from binance_cluster.errors import BinanceClusterError
from binance_cluster.exchange.broker import OrderRequest
from binance_cluster.exchange.broker.base import Broker, Order
from binance_cluster.types import MINUTE_MS


@dataclass(frozen=True, slots=True)
class Submit:
    request: OrderRequest


@dataclass(frozen=True, slots=True)
class Cancel:
    symbol: str
    client_id: str


@dataclass(frozen=True, slots=True)
class Advance:
    ms: int


Step = Submit | Cancel | Advance


def _px(price: float, factor: float) -> Decimal:
    return Decimal(repr(round(price * factor, 8)))


def _qty(notional: float, price: float) -> Decimal:
    return Decimal(repr(round(notional / price, 8)))


def _order(rng: random.Random, symbol: str, p: float, cid: str) -> OrderRequest:
    side = rng.choice(("BUY", "SELL"))
    sign = 1 if side == "BUY" else -1          # + means towards crossing for limits
    size = rng.choices(((8, 1500), (1, 6), (5000, 40000)), (85, 7, 8))[0]
    qty = _qty(rng.uniform(*size), p)
    kind = rng.choices(("MARKET", "LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT", "OCO"),
                       (3, 4, 3, 2, 2))[0]
    if kind == "MARKET":
        if side == "BUY" and rng.random() < 0.5:
            return OrderRequest(symbol, side, kind, cid,
                                quote_amount=Decimal(repr(round(rng.uniform(8, 1500), 2))))
        return OrderRequest(symbol, side, kind, cid, quantity=qty)
    if kind == "LIMIT":
        price = _px(p, 1 + sign * rng.uniform(-0.015, 0.003))
        tif = rng.choices(("GTC", "IOC", "FOK"), (6, 2, 1))[0]
        return OrderRequest(symbol, side, kind, cid, quantity=qty, price=price,
                            time_in_force=tif)
    if kind == "OCO":
        stop = p * (1 - rng.uniform(-0.001, 0.012))
        return OrderRequest(symbol, "SELL", kind, cid, quantity=qty,
                            price=_px(p, 1 + rng.uniform(-0.001, 0.012)),
                            stop_price=_px(stop, 1),
                            stop_limit_price=_px(stop, 1 - rng.uniform(-0.001, 0.004)))
    # a stop loss acts when the price moves against the side, a take profit when it moves for it
    against = kind == "STOP_LOSS_LIMIT"
    away = 1 if (side == "BUY") == against else -1
    stop = p * (1 + away * rng.uniform(-0.002, 0.012))
    limit = _px(stop, 1 + rng.uniform(-0.004, 0.004))
    tif = rng.choices(("GTC", "IOC"), (3, 1))[0]
    return OrderRequest(symbol, side, kind, cid, quantity=qty, price=limit,
                        stop_price=_px(stop, 1), time_in_force=tif)


def random_script(rng: random.Random, symbols: tuple[str, ...],
                  price_at: Callable[[str, int], float | None], start_ms: int,
                  n: int, tag: str = "r") -> list[Step]:
    """`n` steps from replay time `start_ms` (see the module docstring)."""
    steps: list[Step] = []
    now = start_ms
    placed: list[tuple[str, str]] = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.3:
            ms = rng.choice((rng.randint(1, 59) * 1000, rng.randint(1, 8) * MINUTE_MS,
                             rng.randint(5, 30) * MINUTE_MS))
            now += ms
            steps.append(Advance(ms))
        elif roll < 0.4 and placed:
            symbol, cid = rng.choice(placed)
            steps.append(Cancel(symbol, cid))
        else:
            symbol = rng.choice(symbols)
            p = price_at(symbol, now)
            if p is None:
                continue
            cid = f"{tag}{i}"
            steps.append(Submit(_order(rng, symbol, p, cid)))
            placed.append((symbol, cid))
    return steps


def order_key(o: Order) -> tuple:
    """What must agree between two brokers' views of one order (legs included)."""
    return (o.symbol, o.client_id, o.side, o.type, o.status, o.quantity, o.executed_qty,
            o.cumulative_quote, o.price, o.stop_price, o.order_id, o.list_id,
            tuple(order_key(leg) for leg in o.legs))


def apply(broker: Broker, step: Submit | Cancel) -> tuple:
    """Run one request on `broker`: ("order", key) or ("error", kind, code)."""
    try:
        if isinstance(step, Submit):
            return ("order", order_key(broker.submit(step.request)))
        return ("order", order_key(broker.cancel(step.symbol, step.client_id)))
    except BinanceClusterError as exc:
        return ("error", type(exc).__name__, getattr(exc, "code", None))
