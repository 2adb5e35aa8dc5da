"""Public market-data endpoints: ping, time, exchangeInfo, klines, ticker price, book ticker,
depth, 24hr ticker, average price (binance-api.md section 5.1), answered from the replay.

Where candles cannot tell what Binance would send, the answer is synthetic and says so here:
- the order book (`bookTicker`, `depth`) is the last close -/+ the configured half-spread,
  rounded out to the tick, each level one tick further out, every level holding
  `book_depth_quote` worth of the base asset; `lastUpdateId` counts the closed candles;
- `ticker/24hr` is computed from the closed base candles of the last 24 hours (quote volume
  from the stored quote volumes, else close x volume; trade count from the stored counts,
  else 0); `firstId` / `lastId` are -1 (the emulator's trades are not the market's) and
  `lastQty` is 0.
- Once a symbol's data has ended (its last candle has closed) it is in `BREAK`:
  exchangeInfo reports that status, the book is empty (zero prices and quantities, no depth
  levels) and orders are refused; `ticker/price` keeps the last close, as Binance keeps the
  last trade's price.
"""

from __future__ import annotations

import re

import numpy as np
from aiohttp import web

from binance_cluster.exchange.emulator.http import (ApiError, Params, RouteGroup, invalid_value,
                                                    json_response)
from binance_cluster.exchange.emulator.replay import (BINANCE_INTERVALS, ZERO, IntervalNotServed,
                                                      format_decimals)
from binance_cluster.exchange.emulator.state import STATE, EmulatorState
from binance_cluster.exchange.transport import UNKNOWN_FIELDS_HEADER
from binance_cluster.errors import BinanceClusterError
from binance_cluster.types import DAY_MS, MINUTE_MS

routes = RouteGroup("market")

KLINES_DEFAULT_LIMIT = 500
KLINES_MAX_LIMIT = 1000
DEPTH_DEFAULT_LIMIT = 100
DEPTH_MAX_LIMIT = 5000
ZONE_RE = re.compile(r"^([+-]?)([0-9]{1,2})(?::([0-9]{2}))?$")
ZONE_RANGE_MIN = (-12 * 60, 14 * 60)  # binance-api.md 5.1: -12:00 to +14:00
TICKER_FIELDS_MINI = ("symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume",
                      "quoteVolume", "openTime", "closeTime", "firstId", "lastId", "count")


def parse_zone(text: str | None) -> int:
    """The `timeZone` parameter ("-1:00", "05:45", "8"...) as an offset in ms; -1130 when it
    is malformed or outside -12:00..+14:00. python-binance sends a "+" unencoded, so it
    arrives as a space and is read as "+"."""
    if text is None:
        return 0
    if text.startswith(" "):
        text = "+" + text[1:]
    found = ZONE_RE.match(text)
    if not found or int(found.group(3) or 0) >= 60:
        raise invalid_value("timeZone")
    minutes = int(found.group(2)) * 60 + int(found.group(3) or 0)
    if found.group(1) == "-":
        minutes = -minutes
    if not ZONE_RANGE_MIN[0] <= minutes <= ZONE_RANGE_MIN[1]:
        raise invalid_value("timeZone")
    return minutes * MINUTE_MS


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
    now = state.replay_now()
    infos = []
    for name in names:
        info = state.spec(name).to_exchange_info()
        info["status"] = state.status(name, now)
        infos.append(info)
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
    zone_ms = parse_zone(zone)
    if limit < 1:
        raise invalid_value("limit")
    limit = min(limit, KLINES_MAX_LIMIT)
    if start is not None and end is not None and start > end:
        raise ApiError(400, -1023, "Start time is greater than end time.")
    try:
        answer = state.data.klines_json(symbol, interval, state.replay_now(), start, end, limit,
                                        state.config.forming_candle == "synthetic", zone_ms)
    except (IntervalNotServed, BinanceClusterError) as exc:
        raise ApiError(400, -1120, f"Invalid interval. (emulator: {exc})") from None
    headers = {UNKNOWN_FIELDS_HEADER: ",".join(answer.unknown)} if answer.unknown else None
    return json_response(text=answer.text, headers=headers)


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


def _levels(state: EmulatorState, symbol: str, now: int, count: int) -> tuple[list, list]:
    """`count` synthetic (price, qty) levels a side, best first; none once the data ended."""
    if state.data.ended(symbol, now):
        return [], []
    spec = state.spec(symbol)
    price, _ = state.data.last_closed(symbol, now)
    half = state.config.half_spread_bps / 10_000
    bid = spec.round_price_down(price * (1 - half))
    ask = spec.round_price_up(price * (1 + half))
    if bid <= 0:
        bid = spec.tick_size
    if ask <= bid:
        ask = bid + spec.tick_size
    qty = f"{max(spec.round_qty_down(state.config.book_depth_quote / price), spec.step_size):.8f}"
    tick = spec.tick_size
    bids = [(f"{bid - k * tick:.8f}", qty) for k in range(count) if bid - k * tick > 0]
    asks = [(f"{ask + k * tick:.8f}", qty) for k in range(count)]
    return bids, asks


def _book(state: EmulatorState, symbol: str, now: int) -> dict:
    bids, asks = _levels(state, symbol, now, 1)
    bid = bids[0] if bids else (ZERO, ZERO)
    ask = asks[0] if asks else (ZERO, ZERO)
    return {"symbol": symbol, "bidPrice": bid[0], "bidQty": bid[1], "askPrice": ask[0],
            "askQty": ask[1]}


@routes.get("/api/v3/ticker/bookTicker", weight=_one_or_many(2, 4))
async def book_ticker(request: web.Request) -> web.Response:
    """Best bid/ask: last close -/+ the configured half-spread, rounded out to the tick
    (zeros once the data has ended)."""
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


def _depth_weight(request: web.Request) -> int:
    try:
        limit = int(request.query.get("limit", DEPTH_DEFAULT_LIMIT))
    except ValueError:
        return 5
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


@routes.get("/api/v3/depth", weight=_depth_weight)
async def depth(request: web.Request) -> web.Response:
    """A synthetic order book around the last close (see the module docstring)."""
    state = request.app[STATE]
    p = Params.of(request)
    symbol = state.require_symbol(p.get("symbol", required=True))
    limit = p.integer("limit", default=DEPTH_DEFAULT_LIMIT)
    p.finish()
    if limit < 1:
        raise invalid_value("limit")
    now = state.replay_now()
    bids, asks = _levels(state, symbol, now, min(limit, DEPTH_MAX_LIMIT))
    base = state.data.series(symbol, state.data.base_interval(symbol))
    return json_response({"lastUpdateId": base.closed_count(now),
                          "bids": [list(b) for b in bids], "asks": [list(a) for a in asks]})


def _ticker_weight(request: web.Request) -> int:
    if request.query.get("symbol"):
        return 2
    symbols = request.query.get("symbols")
    if not symbols:
        return 80
    n = symbols.count(",") + 1
    return 2 if n <= 20 else 40 if n <= 100 else 80


def _ticker_24hr(state: EmulatorState, symbol: str, now: int, full: bool) -> dict:
    r = state.data.rolling(symbol, now, DAY_MS)
    price = _price_text
    out = {"symbol": symbol}
    if full:
        change = round(r.last - r.open, state.data.decimals(symbol, "close"))
        book = _book(state, symbol, now)
        out.update({
            "priceChange": price(change), "priceChangePercent":
                f"{(100 * change / r.open if r.open else 0.0):.3f}",
            "weightedAvgPrice": price(r.quote_volume / r.volume if r.volume > 0 else r.last),
            "prevClosePrice": price(r.previous_close), "lastPrice": price(r.last),
            "lastQty": ZERO, "bidPrice": book["bidPrice"], "bidQty": book["bidQty"],
            "askPrice": book["askPrice"], "askQty": book["askQty"]})
    out.update({"openPrice": price(r.open), "highPrice": price(r.high),
                "lowPrice": price(r.low), "lastPrice": price(r.last),
                "volume": price(r.volume), "quoteVolume": price(r.quote_volume),
                "openTime": r.open_time, "closeTime": r.close_time, "firstId": -1,
                "lastId": -1, "count": r.trades})
    if not full:
        out = {k: out[k] for k in TICKER_FIELDS_MINI}
    return out


@routes.get("/api/v3/ticker/24hr", weight=_ticker_weight)
async def ticker_24hr(request: web.Request) -> web.Response:
    """Rolling 24-hour statistics from the closed candles (see the module docstring)."""
    state = request.app[STATE]
    p = Params.of(request)
    names, single = _selection(p, state)
    kind = p.get("type", default="FULL")
    p.finish()
    if kind not in ("FULL", "MINI"):
        raise invalid_value("type")
    now = state.replay_now()
    items = [_ticker_24hr(state, s, now, kind == "FULL") for s in names]
    return json_response(items[0] if single else items)
