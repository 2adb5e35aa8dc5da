"""Binance JSON shapes of the order engine's orders, order lists and trades
(`engine.order_book`), as the emulator answers them.

Shapes follow binance-api.md sections 5.2, 5.3 and 11: ACK / RESULT / FULL answers to a new
order, the query shape of GET order / openOrders / allOrders, cancel reports, order-list (OCO)
reports and myTrades items. Decimals are JSON strings with 8 decimals; ids and times are
numbers. Times are replay-clock milliseconds.
"""

from __future__ import annotations

from decimal import Decimal

from binance_cluster.engine.order_book import (NewOco, NewOrder, Order,  # noqa: F401
                                               OrderList, Trade)

ZERO = Decimal(0)
ORDER_TYPES = ("LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
               "TAKE_PROFIT_LIMIT", "LIMIT_MAKER")
SIDES = ("BUY", "SELL")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
RESPONSE_TYPES = ("ACK", "RESULT", "FULL")


def d8(value: Decimal) -> str:
    """Binance's 8-decimal string of `value`."""
    return f"{value:.8f}"


def fill_json(t: Trade) -> dict:
    """An item of a FULL answer's `fills`."""
    return {"price": d8(t.price), "qty": d8(t.qty), "commission": d8(t.commission),
            "commissionAsset": t.commission_asset, "tradeId": t.trade_id}


def trade_json(t: Trade) -> dict:
    """A GET /api/v3/myTrades item."""
    return {"symbol": t.symbol, "id": t.trade_id, "orderId": t.order_id,
            "orderListId": t.list_id, "price": d8(t.price), "qty": d8(t.qty),
            "quoteQty": d8(t.quote_qty), "commission": d8(t.commission),
            "commissionAsset": t.commission_asset, "time": t.time,
            "isBuyer": t.is_buyer, "isMaker": t.is_maker, "isBestMatch": True}


def ack(o: Order, transact_time: int | None = None) -> dict:
    return {"symbol": o.symbol, "orderId": o.order_id, "orderListId": o.list_id,
            "clientOrderId": o.client_id,
            "transactTime": o.time if transact_time is None else transact_time}


def _strategy(o: Order, out: dict) -> dict:
    if o.strategy_id is not None:
        out["strategyId"] = o.strategy_id
    if o.strategy_type is not None:
        out["strategyType"] = o.strategy_type
    if o.status == "EXPIRED" and o.expiry_reason:
        out["expiryReason"] = o.expiry_reason
    return out


def result(o: Order, transact_time: int | None = None) -> dict:
    """The RESULT answer (stopPrice only for stop types, as Binance sends it)."""
    out = ack(o, transact_time)
    out.update({"price": d8(o.price), "origQty": d8(o.qty),
                "executedQty": d8(o.executed), "origQuoteOrderQty": d8(o.quote_qty),
                "cummulativeQuoteQty": d8(o.cum_quote), "status": o.status,
                "timeInForce": o.time_in_force, "type": o.type, "side": o.side})
    if o.is_stop:
        out["stopPrice"] = d8(o.stop_price)
    out["workingTime"] = o.working_time
    out["selfTradePreventionMode"] = "NONE"
    return _strategy(o, out)


def full(o: Order, transact_time: int | None = None) -> dict:
    out = result(o, transact_time)
    out["fills"] = [fill_json(t) for t in o.fills]
    return out


def answer(o: Order, response_type: str, transact_time: int | None = None) -> dict:
    """The answer to the new order in the requested shape."""
    if response_type == "ACK":
        return ack(o, transact_time)
    if response_type == "RESULT":
        return result(o, transact_time)
    return full(o, transact_time)


def query_json(o: Order) -> dict:
    """The GET /api/v3/order shape (also openOrders and allOrders items)."""
    out = {"symbol": o.symbol, "orderId": o.order_id, "orderListId": o.list_id,
           "clientOrderId": o.client_id, "price": d8(o.price),
           "origQty": d8(o.qty), "executedQty": d8(o.executed),
           "cummulativeQuoteQty": d8(o.cum_quote), "status": o.status,
           "timeInForce": o.time_in_force, "type": o.type, "side": o.side,
           "stopPrice": d8(o.stop_price), "icebergQty": d8(ZERO), "time": o.time,
           "updateTime": o.update_time, "isWorking": o.working_time != -1,
           "workingTime": o.working_time, "origQuoteOrderQty": d8(o.quote_qty),
           "selfTradePreventionMode": "NONE"}
    return _strategy(o, out)


def cancel_report(o: Order, cancel_client_id: str, now: int) -> dict:
    """The DELETE /api/v3/order answer for this (now canceled) order."""
    out = {"symbol": o.symbol, "origClientOrderId": o.client_id,
           "orderId": o.order_id, "orderListId": o.list_id,
           "clientOrderId": cancel_client_id, "transactTime": now, "price": d8(o.price),
           "origQty": d8(o.qty), "executedQty": d8(o.executed),
           "origQuoteOrderQty": d8(o.quote_qty),
           "cummulativeQuoteQty": d8(o.cum_quote), "status": o.status,
           "timeInForce": o.time_in_force, "type": o.type, "side": o.side}
    if o.is_stop:
        out["stopPrice"] = d8(o.stop_price)
    out["selfTradePreventionMode"] = "NONE"
    return _strategy(o, out)


def list_report(olist: OrderList, reports: list[dict] | None,
                transaction_time: int | None = None) -> dict:
    """An order list (OCO) object; without `reports` the query shape (no orderReports), as
    GET /api/v3/orderList and /openOrderList answer it."""
    out = {"orderListId": olist.list_id, "contingencyType": "OCO",
           "listStatusType": olist.status_type, "listOrderStatus": olist.status,
           "listClientOrderId": olist.client_id,
           "transactionTime": olist.time if transaction_time is None else transaction_time,
           "symbol": olist.symbol,
           "orders": [{"symbol": o.symbol, "orderId": o.order_id,
                       "clientOrderId": o.client_id} for o in olist.legs]}
    if reports is not None:
        out["orderReports"] = reports
    return out
