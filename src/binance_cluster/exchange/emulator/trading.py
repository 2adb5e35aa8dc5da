"""Signed trading and account endpoints (binance-api.md sections 5.2 and 5.3).

POST /api/v3/order, POST /api/v3/order/test, POST /api/v3/orderList/oco, GET and DELETE
/api/v3/order, GET and DELETE /api/v3/openOrders, GET /api/v3/allOrders, GET
/api/v3/orderList, GET /api/v3/openOrderList, GET /api/v3/myTrades, GET /api/v3/account,
GET /api/v3/rateLimit/order.

Every handler authenticates (`auth.authenticate`: key, timing, signature), lets the matching
engine catch up with the replay clock (`Exchange.sync`), then reads its parameters. New
orders count toward the account's ORDERS limits (per 10 seconds and per day of the server
clock; -1015 with HTTP 429 beyond them) and accepted ones carry `X-MBX-ORDER-COUNT-10S` and
`X-MBX-ORDER-COUNT-1D`. Times in answers are replay-clock milliseconds.

Where Binance leaves a choice open: cancelling one leg of an OCO cancels the list and answers
the cancel report of the leg asked for; DELETE /api/v3/openOrders with nothing open answers
-2011 "Unknown order sent." as the live exchange does; OCO answers default to RESULT reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal

from aiohttp import web

from binance_cluster.exchange.emulator.accounts import Account, OrderCounter
from binance_cluster.exchange.emulator.auth import Signed, authenticate
from binance_cluster.exchange.emulator.http import ApiError, RouteGroup, invalid_value, json_response
from binance_cluster.exchange.emulator.order_params import (default_response_type, parse_new_order,
                                                   parse_oco)
from binance_cluster.exchange.emulator.orders import (Order, OrderList, answer, cancel_report, d8,
                                                      list_report, query_json, trade_json)
from binance_cluster.exchange.emulator.state import STATE, EmulatorState

log = logging.getLogger(__name__)

routes = RouteGroup("trading")

COUNT_HEADERS = ("X-MBX-ORDER-COUNT-10S", "X-MBX-ORDER-COUNT-1D")
LIST_DEFAULT_LIMIT = 500
LIST_MAX_LIMIT = 1000
MAX_SPAN_MS = 24 * 3_600_000
MATCH_INTERVAL_S = 0.25
UNKNOWN_ORDER = "Unknown order sent."
ZERO = Decimal(0)


def _with_symbol(one: int, many: int):
    return lambda request: one if request.query.get("symbol") else many


async def _signed(request: web.Request) -> tuple[EmulatorState, Signed, int]:
    """(state, authenticated request, replay now) with matching caught up to now."""
    state = request.app[STATE]
    signed = await authenticate(request, state)
    now = state.replay_now()
    state.exchange.sync(now)
    return state, signed, now


def order_limits(state: EmulatorState) -> list[tuple[int, str, int, int, int]]:
    """(window index, interval, intervalNum, window ms, limit) of the ORDERS limits in force
    (a limit of 0 is off)."""
    cfg = state.config
    return [(i, interval, num, size, limit)
            for i, ((interval, num, size), limit) in enumerate(
                zip(OrderCounter.WINDOWS, (cfg.order_limit_10s, cfg.order_limit_1d)))
            if limit > 0]


def _admit_orders(state: EmulatorState, account: Account, n: int) -> int:
    """-1015 (HTTP 429) when `n` more orders would break an ORDERS limit; the server time."""
    now = state.server_clock.base_ms()
    counts = account.order_counter.counts(now)
    for i, interval, num, size, limit in order_limits(state):
        if counts[i] + n > limit:
            retry = max(1, -(-((now // size + 1) * size - now) // 1000))
            raise ApiError(429, -1015, f"Too many new orders; current limit is {limit} orders "
                                       f"per {num} {interval}.", {"Retry-After": str(retry)})
    return now


def _count_orders(account: Account, n: int, server_now: int) -> dict[str, str]:
    counts = account.order_counter.add(n, server_now)
    return {name: str(c) for name, c in zip(COUNT_HEADERS, counts)}


def _symbol(state: EmulatorState, symbol: str | None) -> str:
    return state.require_symbol(symbol)


def _find(account: Account, symbol: str, order_id: int | None, client_id: str | None,
          missing: ApiError) -> Order:
    """The account's order by id (client id then must match) or by client id."""
    if order_id is None and client_id is None:
        raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but "
                                   "both were empty/null!")
    if order_id is not None:
        order = account.by_id.get(order_id)
        if order is None or order.symbol != symbol:
            raise missing
        if client_id is not None and order.client_id != client_id:
            raise ApiError(400, -2039, "Client order ID is not correct for this order ID.")
        return order
    order = account.latest_by_client.get((symbol, client_id))  # type: ignore[arg-type]
    if order is None:
        raise missing
    return order


def _limit(value: int | None) -> int:
    if value is None:
        return LIST_DEFAULT_LIMIT
    if value < 1:
        raise invalid_value("limit")
    return min(value, LIST_MAX_LIMIT)


def _order_ref(p) -> tuple[str, int | None, str | None]:
    """symbol, orderId and origClientOrderId of a request naming one order."""
    return p.get("symbol", required=True), p.integer("orderId"), p.get("origClientOrderId")


def _time_window(p) -> tuple[int | None, int | None, int]:
    """startTime, endTime and limit (defaulted, capped) of a history request."""
    return p.integer("startTime"), p.integer("endTime"), _limit(p.integer("limit"))


def _span(start: int | None, end: int | None) -> None:
    if start is not None and end is not None:
        if start > end:
            raise ApiError(400, -1023, "Start time is greater than end time.")
        if end - start > MAX_SPAN_MS:
            raise ApiError(400, -1127, "More than 24 hours between startTime and endTime.")


# -- orders --------------------------------------------------------------------------------
@routes.post("/api/v3/order", weight=1)
async def new_order(request: web.Request) -> web.Response:
    """Place an order; ACK / RESULT / FULL answer (default FULL for MARKET and LIMIT)."""
    state, signed, now = await _signed(request)
    server_now = _admit_orders(state, signed.account, 1)
    new, _ = parse_new_order(signed.params, state.symbols, state.spec)
    order = state.exchange.place(signed.account, new, now)
    assert order is not None
    headers = _count_orders(signed.account, 1, server_now)
    return json_response(answer(order, default_response_type(new)), headers=headers)


@routes.post("/api/v3/order/test", weight=1)
async def test_order(request: web.Request) -> web.Response:
    """Validate an order like POST /order (balance aside) without placing it."""
    state, signed, now = await _signed(request)
    new, rates = parse_new_order(signed.params, state.symbols, state.spec, test=True)
    state.exchange.place(signed.account, new, now, test=True)
    if not rates:
        return json_response({})
    account = signed.account
    zero = {"maker": d8(ZERO), "taker": d8(ZERO)}
    return json_response({
        "standardCommissionForOrder": {"maker": d8(account.maker), "taker": d8(account.taker)},
        "specialCommissionForOrder": dict(zero), "taxCommissionForOrder": dict(zero),
        "discount": {"enabledForAccount": False, "enabledForSymbol": False,
                     "discountAsset": "BNB", "discount": d8(ZERO)}})


@routes.post("/api/v3/orderList/oco", weight=1)
async def new_oco(request: web.Request) -> web.Response:
    """Place a one-cancels-the-other pair (new-style above/below parameters)."""
    state, signed, now = await _signed(request)
    server_now = _admit_orders(state, signed.account, 2)
    new = parse_oco(signed.params, state.symbols, state.spec)
    olist = state.exchange.place_oco(signed.account, new, now)
    headers = _count_orders(signed.account, 2, server_now)
    shape = new.response_type or "RESULT"
    return json_response(list_report(olist, [answer(leg, shape) for leg in olist.legs]),
                         headers=headers)


@routes.get("/api/v3/order", weight=4)
async def get_order(request: web.Request) -> web.Response:
    """One order by orderId or origClientOrderId; -2013 when the account has no such order."""
    state, signed, _ = await _signed(request)
    p = signed.params
    symbol, order_id, client_id = _order_ref(p)
    p.finish()
    _symbol(state, symbol)
    order = _find(signed.account, symbol, order_id, client_id,  # type: ignore[arg-type]
                  ApiError(400, -2013, "Order does not exist."))
    return json_response(query_json(order))


@routes.delete("/api/v3/order", weight=1)
async def cancel_order(request: web.Request) -> web.Response:
    """Cancel an open order (a whole OCO when it is a leg); -2011 when unknown or done."""
    state, signed, now = await _signed(request)
    p = signed.params
    symbol, order_id, client_id = _order_ref(p)
    cancel_id = p.client_id("newClientOrderId")
    restriction = p.get("cancelRestrictions")
    p.finish()
    _symbol(state, symbol)
    if restriction is not None and restriction not in ("ONLY_NEW", "ONLY_PARTIALLY_FILLED"):
        raise ApiError(400, -1145, "Invalid cancelRestrictions")
    unknown = ApiError(400, -2011, UNKNOWN_ORDER)
    order = _find(signed.account, symbol, order_id, client_id, unknown)  # type: ignore
    if not order.is_open:
        raise unknown
    if restriction is not None and order.status != restriction.removeprefix("ONLY_"):
        raise ApiError(400, -2011, "Order was not canceled due to cancel restrictions.")
    state.exchange.cancel(order, now)
    return json_response(cancel_report(order, cancel_id or state.exchange.new_client_id(), now))


@routes.get("/api/v3/openOrders", weight=_with_symbol(6, 80))
async def open_orders(request: web.Request) -> web.Response:
    """Open orders of one symbol, or of all, oldest first."""
    state, signed, _ = await _signed(request)
    p = signed.params
    symbol = p.get("symbol")
    p.finish()
    if symbol is not None:
        _symbol(state, symbol)
    found = [query_json(o) for o in sorted(signed.account.open_orders.values(),
                                       key=lambda o: o.order_id)
             if symbol is None or o.symbol == symbol]
    return json_response(found)


@routes.delete("/api/v3/openOrders", weight=1)
async def cancel_open_orders(request: web.Request) -> web.Response:
    """Cancel every open order of a symbol: cancel reports, and list reports for OCOs."""
    state, signed, now = await _signed(request)
    p = signed.params
    symbol = _symbol(state, p.get("symbol", required=True))
    p.finish()
    exchange = state.exchange
    targets = sorted((o for o in signed.account.open_orders.values() if o.symbol == symbol),
                     key=lambda o: o.order_id)
    if not targets:
        raise ApiError(400, -2011, UNKNOWN_ORDER)
    out: list[dict] = []
    for order in targets:
        if not order.is_open:  # the other leg of a list already canceled
            continue
        canceled = exchange.cancel(order, now)
        reports = [cancel_report(o, exchange.new_client_id(), now) for o in canceled]
        if order.order_list is None:
            out.extend(reports)
        else:
            olist = order.order_list
            out.append(list_report(olist, reports, now))
    return json_response(out)


@routes.get("/api/v3/allOrders", weight=20)
async def all_orders(request: web.Request) -> web.Response:
    """Orders of a symbol (any status), oldest first: from orderId or startTime, else the
    newest `limit`."""
    state, signed, _ = await _signed(request)
    p = signed.params
    symbol, order_id = p.get("symbol", required=True), p.integer("orderId")
    start, end, limit = _time_window(p)
    p.finish()
    _symbol(state, symbol)
    _span(start, end)
    orders = [o for o in signed.account.orders.get(symbol, [])  # type: ignore[arg-type]
              if (order_id is None or o.order_id >= order_id)
              and (start is None or o.time >= start) and (end is None or o.time <= end)]
    orders = orders[:limit] if order_id is not None or start is not None else orders[-limit:]
    return json_response([query_json(o) for o in orders])


@routes.get("/api/v3/myTrades", weight=lambda r: 5 if r.query.get("orderId") else 20)
async def my_trades(request: web.Request) -> web.Response:
    """Trades of a symbol, oldest first (orderId, fromId, startTime/endTime, limit)."""
    state, signed, _ = await _signed(request)
    p = signed.params
    symbol, order_id = p.get("symbol", required=True), p.integer("orderId")
    start, end, limit = _time_window(p)
    from_id = p.integer("fromId")
    p.finish()
    _symbol(state, symbol)
    if (from_id is not None or order_id is not None) and (start is not None or end is not None):
        raise ApiError(400, -1128, "Combination of optional parameters invalid.")
    _span(start, end)
    trades = [t for t in signed.account.trades.get(symbol, [])  # type: ignore[arg-type]
              if (order_id is None or t.order_id == order_id)
              and (from_id is None or t.trade_id >= from_id)
              and (start is None or t.time >= start) and (end is None or t.time <= end)]
    newest = from_id is None and start is None and order_id is None
    trades = trades[-limit:] if newest else trades[:limit]
    return json_response([trade_json(t) for t in trades])


# -- order lists ---------------------------------------------------------------------------
@routes.get("/api/v3/orderList", weight=4)
async def get_order_list(request: web.Request) -> web.Response:
    """One order list (OCO) by orderListId or origClientOrderId (its listClientOrderId);
    -2013 when the account has no such list."""
    _, signed, _ = await _signed(request)
    p = signed.params
    list_id = p.integer("orderListId")
    client_id = p.get("origClientOrderId")
    p.finish()
    if list_id is None and client_id is None:
        raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderListId' must be sent, "
                                   "but both were empty/null!")
    account = signed.account
    olist: OrderList | None = account.lists.get(list_id) if list_id is not None \
        else account.lists_by_client.get(client_id)  # type: ignore[arg-type]
    if olist is None or (client_id is not None and olist.client_id != client_id):
        raise ApiError(400, -2013, "Order list does not exist.")
    return json_response(list_report(olist, None))


@routes.get("/api/v3/openOrderList", weight=6)
async def open_order_lists(request: web.Request) -> web.Response:
    """The account's open order lists (OCOs), oldest first."""
    _, signed, _ = await _signed(request)
    signed.params.finish()
    lists = sorted(signed.account.open_lists.values(), key=lambda o: o.list_id)
    return json_response([list_report(olist, None) for olist in lists])


# -- account -------------------------------------------------------------------------------
def account_json(account: Account, omit_zero: bool = False) -> dict:
    """The GET /api/v3/account answer."""
    return {"makerCommission": int(account.maker * 10_000),
            "takerCommission": int(account.taker * 10_000),
            "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": d8(account.maker), "taker": d8(account.taker),
                                "buyer": d8(ZERO), "seller": d8(ZERO)},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": account.update_time, "accountType": "SPOT",
            "balances": account.balances(omit_zero), "permissions": ["SPOT"],
            "uid": account.uid}


@routes.get("/api/v3/account", weight=20)
async def get_account(request: web.Request) -> web.Response:
    """Commissions, flags and balances (free and locked) of the key's account."""
    _, signed, _ = await _signed(request)
    p = signed.params
    omit = p.boolean("omitZeroBalances")
    p.finish()
    return json_response(account_json(signed.account, omit))


@routes.get("/api/v3/rateLimit/order", weight=40)
async def order_rate_limit(request: web.Request) -> web.Response:
    """The account's ORDERS limits and how many orders each window has counted."""
    state, signed, _ = await _signed(request)
    signed.params.finish()
    counts = signed.account.order_counter.counts(state.server_clock.base_ms())
    return json_response([{"rateLimitType": "ORDERS", "interval": interval,
                           "intervalNum": num, "limit": limit, "count": counts[i]}
                          for i, interval, num, _, limit in order_limits(state)])


# -- matching while the replay clock runs ------------------------------------------------------
async def matcher(app: web.Application):
    """Cleanup context: match resting orders every MATCH_INTERVAL_S while the replay clock
    runs (speed > 0), so fills happen without requests (requests also match first)."""
    state: EmulatorState = app[STATE]

    async def loop() -> None:
        while True:
            await asyncio.sleep(MATCH_INTERVAL_S)
            if state.replay_clock.speed > 0:
                try:
                    state.exchange.sync(state.replay_now())
                except Exception:  # keep matching alive; the failure is a bug to report
                    log.exception("emulator: matching failed")

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
