"""Public market-data endpoints: ping, time, exchangeInfo, klines, ticker price, book ticker,
average price (binance-api.md section 5.1), answered from the replayed store."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from aiohttp import web

from binance_cluster.exchange.emulator.http import (ApiError, Params, RouteGroup, invalid_value,
                                           json_response)
from binance_cluster.exchange.emulator.replay import BINANCE_INTERVALS, IntervalNotServed, format_decimals
from binance_cluster.exchange.emulator.state import STATE, EmulatorState
from binance_cluster.errors import BinanceClusterError

routes = RouteGroup("market")

KLINES_DEFAULT_LIMIT = 500
KLINES_MAX_LIMIT = 1000
UTC_ZONES = {"0", "+0", "-0", "00:00", "+00:00", "-00:00", "0:00", "+0:00"}


def _one_or_many(one: int, many: int):
    """Weight `one` when a single `symbol` is asked for, `many` otherwise."""
    return lambda request: one if request.query.get("symbol") else many


def _combination() -> ApiError:
    return ApiError(400, -1128, "Combination of optional parameters invalid.")


def _selection(p: Params, state: EmulatorState) -> tuple[list[str], bool]:
    """Symbols asked for by `symbol` or `symbols` (all when neither), and whether one was."""
    symbol = p.get("symbol")
    symbols = p.json_list("symbols")
    if symbol is not None and symbols is not None:
        raise _combination()
    if symbol is not None:
        return [state.require_symbol(symbol)], True
    if symbols is not None:
        return [state.require_symbol(s) for s in symbols], False
    return list(state.symbols), False


def _price_text(value: float) -> str:
    return format_decimals(np.array([value], dtype=np.float64))[0]


@routes.get("/api/v3/ping", weight=1)
async def ping(request: web.Request) -> web.Response:
    """`{}`."""
    Params.of(request).finish()
    return json_response({})


@routes.get("/api/v3/time", weight=1)
async def server_time(request: web.Request) -> web.Response:
    """`{"serverTime": ms}` from the server clock (wall time, plus any injected skew)."""
    Params.of(request).finish()
    state = request.app[STATE]
    if state.server_clock.skew_ms:
        state.faults.record("skew", request.method, request.path,
                            f"{state.server_clock.skew_ms:+d} ms")
    return json_response({"serverTime": state.server_clock.now_ms()})


@routes.get("/api/v3/exchangeInfo", weight=20)
async def exchange_info(request: web.Request) -> web.Response:
    """Symbols with their filters; `symbol` / `symbols` narrow it, -1121 for an unknown one."""
    state = request.app[STATE]
    p = Params.of(request)
    p.get("permissions")
    p.get("showPermissionSets")
    status = p.get("symbolStatus")
    names, _ = _selection(p, state)
    p.finish()
    if status is not None and (p.has("symbol") or p.has("symbols")):
        raise _combination()
    infos = [state.spec(name).to_exchange_info() for name in names]
    if status is not None:
        infos = [info for info in infos if info["status"] == status]
    limits = []
    if state.limiter.limit > 0:
        limits.append({"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                       "intervalNum": 1, "limit": state.limiter.limit})
    for limit, interval, num in ((state.config.order_limit_10s, "SECOND", 10),
                                 (state.config.order_limit_1d, "DAY", 1)):
        if limit > 0:
            limits.append({"rateLimitType": "ORDERS", "interval": interval,
                           "intervalNum": num, "limit": limit})
    return json_response({"timezone": "UTC", "serverTime": state.server_clock.now_ms(),
                          "rateLimits": limits, "exchangeFilters": [], "symbols": infos})


async def _klines(request: web.Request) -> web.Response:
    state = request.app[STATE]
    p = Params.of(request)
    symbol = p.get("symbol", required=True)
    interval = p.get("interval", required=True)
    start = p.integer("startTime")
    end = p.integer("endTime")
    limit = p.integer("limit", default=KLINES_DEFAULT_LIMIT)
    zone = p.get("timeZone")
    p.finish()
    state.require_symbol(symbol)
    if interval not in BINANCE_INTERVALS:
        raise ApiError(400, -1120, "Invalid interval.")
    if zone is not None and zone not in UTC_ZONES:
        raise invalid_value("timeZone")  # the emulator serves UTC buckets only
    if limit < 1:
        raise invalid_value("limit")
    limit = min(limit, KLINES_MAX_LIMIT)
    if start is not None and end is not None and start > end:
        raise ApiError(400, -1023, "Start time is greater than end time.")
    try:
        text = state.data.klines_json(symbol, interval, state.replay_now(), start, end, limit,
                                      state.config.forming_candle == "synthetic")
    except (IntervalNotServed, BinanceClusterError) as exc:
        raise ApiError(400, -1120, f"Invalid interval. (emulator: {exc})") from None
    return json_response(text=text)


routes.get("/api/v3/klines", weight=2)(_klines)
routes.get("/api/v3/uiKlines", weight=2)(_klines)


@routes.get("/api/v3/ticker/price", weight=_one_or_many(2, 4))
async def ticker_price(request: web.Request) -> web.Response:
    """Last price: the close of the last closed candle at the replay clock."""
    state = request.app[STATE]
    p = Params.of(request)
    names, single = _selection(p, state)
    p.finish()
    now = state.replay_now()
    items = [{"symbol": s, "price": _price_text(state.data.last_closed(s, now)[0])}
             for s in names]
    return json_response(items[0] if single else items)


def _book(state: EmulatorState, symbol: str, now: int) -> dict:
    spec = state.spec(symbol)
    price, _ = state.data.last_closed(symbol, now)
    half = state.config.half_spread_bps / 10_000
    bid = spec.round_price_down(price * (1 - half))
    ask = spec.round_price_up(price * (1 + half))
    if bid <= 0:
        bid = spec.tick_size
    if ask <= bid:
        ask = bid + spec.tick_size
    qty = max(spec.round_qty_down(state.config.book_depth_quote / price), spec.step_size)
    return {"symbol": symbol, "bidPrice": f"{bid:.8f}", "bidQty": f"{qty:.8f}",
            "askPrice": f"{ask:.8f}", "askQty": f"{Decimal(qty):.8f}"}


@routes.get("/api/v3/ticker/bookTicker", weight=_one_or_many(2, 4))
async def book_ticker(request: web.Request) -> web.Response:
    """Best bid/ask: last close -/+ the configured half-spread, rounded out to the tick."""
    state = request.app[STATE]
    p = Params.of(request)
    names, single = _selection(p, state)
    p.finish()
    now = state.replay_now()
    items = [_book(state, s, now) for s in names]
    return json_response(items[0] if single else items)


@routes.get("/api/v3/avgPrice", weight=2)
async def avg_price(request: web.Request) -> web.Response:
    """Volume-weighted average price of the last 5 minutes of closed candles."""
    state = request.app[STATE]
    p = Params.of(request)
    symbol = state.require_symbol(p.get("symbol", required=True))
    p.finish()
    price, close_time = state.data.average_price(symbol, state.replay_now(), 5)
    return json_response({"mins": 5, "price": f"{price:.8f}", "closeTime": close_time})
