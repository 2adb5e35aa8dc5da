"""Orders, order lists and trades of the emulator, and their Binance JSON shapes.

Shapes follow binance-api.md sections 5.2, 5.3 and 11: ACK / RESULT / FULL answers to a new
order, the query shape of GET order / openOrders / allOrders, cancel reports, order-list (OCO)
reports and myTrades items. Decimals are JSON strings with 8 decimals; ids and times are
numbers. Times are replay-clock milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)
STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
LIMIT_TYPES = ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
ORDER_TYPES = ("LIMIT", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
               "TAKE_PROFIT_LIMIT", "LIMIT_MAKER")
TYPE_NAMES = {"LIMIT": "Limit", "MARKET": "Market", "STOP_LOSS": "Stop loss",
              "STOP_LOSS_LIMIT": "Stop loss limit", "TAKE_PROFIT": "Take profit",
              "TAKE_PROFIT_LIMIT": "Take profit limit", "LIMIT_MAKER": "Limit maker"}
SIDES = ("BUY", "SELL")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
RESPONSE_TYPES = ("ACK", "RESULT", "FULL")
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


def d8(value: Decimal) -> str:
    """Binance's 8-decimal string of `value`."""
    return f"{value:.8f}"


@dataclass(slots=True)
class Lock:
    """Funds an open order (or both legs of an OCO) keep locked until filled or canceled."""

    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Trade:
    """One fill of one order."""

    symbol: str
    trade_id: int
    order_id: int
    list_id: int
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_buyer: bool
    is_maker: bool

    def fill_json(self) -> dict:
        """An item of a FULL answer's `fills`."""
        return {"price": d8(self.price), "qty": d8(self.qty), "commission": d8(self.commission),
                "commissionAsset": self.commission_asset, "tradeId": self.trade_id}

    def to_json(self) -> dict:
        """A GET /api/v3/myTrades item."""
        return {"symbol": self.symbol, "id": self.trade_id, "orderId": self.order_id,
                "orderListId": self.list_id, "price": d8(self.price), "qty": d8(self.qty),
                "quoteQty": d8(self.quote_qty), "commission": d8(self.commission),
                "commissionAsset": self.commission_asset, "time": self.time,
                "isBuyer": self.is_buyer, "isMaker": self.is_maker, "isBestMatch": True}


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A validated-syntax new order request (POST /api/v3/order, or one leg of an OCO)."""

    symbol: str
    side: str
    type: str
    quantity: Decimal | None = None
    quote_qty: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    time_in_force: str | None = None
    client_id: str | None = None
    response_type: str | None = None
    strategy_id: int | None = None
    strategy_type: int | None = None


@dataclass(frozen=True, slots=True)
class NewOco:
    """A validated-syntax OCO request (POST /api/v3/orderList/oco, new-style above/below)."""

    symbol: str
    side: str
    quantity: Decimal
    above: NewOrder
    below: NewOrder
    list_client_id: str | None = None
    response_type: str | None = None


@dataclass(eq=False, slots=True)
class Order:
    """One order and its state; matching mutates it."""

    account_uid: int
    symbol: str
    order_id: int
    client_id: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    price: Decimal
    stop_price: Decimal
    quote_qty: Decimal
    time: int
    status: str = "NEW"
    update_time: int = 0
    working_time: int = -1
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    list_id: int = -1
    strategy_id: int | None = None
    strategy_type: int | None = None
    expiry_reason: str | None = None
    triggered: bool = False
    next_index: int = 0
    lock: Lock | None = None
    order_list: "OrderList | None" = None
    fills: list[Trade] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_stop(self) -> bool:
        return self.type in STOP_TYPES

    @property
    def rests_as_limit(self) -> bool:
        """On the book at its own price: LIMIT, LIMIT_MAKER, or a triggered stop/take-profit
        limit."""
        return self.type in ("LIMIT", "LIMIT_MAKER") or (self.triggered and self.type in
                                                        ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"))

    # -- JSON shapes -----------------------------------------------------------------------
    def ack(self, transact_time: int | None = None) -> dict:
        return {"symbol": self.symbol, "orderId": self.order_id, "orderListId": self.list_id,
                "clientOrderId": self.client_id,
                "transactTime": self.time if transact_time is None else transact_time}

    def _strategy(self, out: dict) -> dict:
        if self.strategy_id is not None:
            out["strategyId"] = self.strategy_id
        if self.strategy_type is not None:
            out["strategyType"] = self.strategy_type
        if self.status == "EXPIRED" and self.expiry_reason:
            out["expiryReason"] = self.expiry_reason
        return out

    def result(self, transact_time: int | None = None) -> dict:
        """The RESULT answer (stopPrice only for stop types, as Binance sends it)."""
        out = self.ack(transact_time)
        out.update({"price": d8(self.price), "origQty": d8(self.qty),
                    "executedQty": d8(self.executed), "origQuoteOrderQty": d8(self.quote_qty),
                    "cummulativeQuoteQty": d8(self.cum_quote), "status": self.status,
                    "timeInForce": self.time_in_force, "type": self.type, "side": self.side})
        if self.is_stop:
            out["stopPrice"] = d8(self.stop_price)
        out["workingTime"] = self.working_time
        out["selfTradePreventionMode"] = "NONE"
        return self._strategy(out)

    def full(self, transact_time: int | None = None) -> dict:
        out = self.result(transact_time)
        out["fills"] = [t.fill_json() for t in self.fills]
        return out

    def answer(self, response_type: str, transact_time: int | None = None) -> dict:
        """The answer to the new order in the requested shape."""
        if response_type == "ACK":
            return self.ack(transact_time)
        if response_type == "RESULT":
            return self.result(transact_time)
        return self.full(transact_time)

    def query(self) -> dict:
        """The GET /api/v3/order shape (also openOrders and allOrders items)."""
        out = {"symbol": self.symbol, "orderId": self.order_id, "orderListId": self.list_id,
               "clientOrderId": self.client_id, "price": d8(self.price),
               "origQty": d8(self.qty), "executedQty": d8(self.executed),
               "cummulativeQuoteQty": d8(self.cum_quote), "status": self.status,
               "timeInForce": self.time_in_force, "type": self.type, "side": self.side,
               "stopPrice": d8(self.stop_price), "icebergQty": d8(ZERO), "time": self.time,
               "updateTime": self.update_time, "isWorking": self.working_time != -1,
               "workingTime": self.working_time, "origQuoteOrderQty": d8(self.quote_qty),
               "selfTradePreventionMode": "NONE"}
        return self._strategy(out)

    def cancel_report(self, cancel_client_id: str, now: int) -> dict:
        """The DELETE /api/v3/order answer for this (now canceled) order."""
        out = {"symbol": self.symbol, "origClientOrderId": self.client_id,
               "orderId": self.order_id, "orderListId": self.list_id,
               "clientOrderId": cancel_client_id, "transactTime": now, "price": d8(self.price),
               "origQty": d8(self.qty), "executedQty": d8(self.executed),
               "origQuoteOrderQty": d8(self.quote_qty),
               "cummulativeQuoteQty": d8(self.cum_quote), "status": self.status,
               "timeInForce": self.time_in_force, "type": self.type, "side": self.side}
        if self.is_stop:
            out["stopPrice"] = d8(self.stop_price)
        out["selfTradePreventionMode"] = "NONE"
        return self._strategy(out)


@dataclass(eq=False, slots=True)
class OrderList:
    """An OCO: two legs (below first, then above, as Binance numbers them) and one lock."""

    list_id: int
    client_id: str
    symbol: str
    side: str
    time: int
    legs: tuple[Order, Order]
    lock: Lock | None = None
    status: str = "EXECUTING"          # listOrderStatus: EXECUTING -> ALL_DONE
    status_type: str = "EXEC_STARTED"  # listStatusType: EXEC_STARTED -> ALL_DONE
    triggered: bool = False
    next_index: int = 0
    update_time: int = 0

    @property
    def stop_leg(self) -> Order:
        """The STOP_LOSS(_LIMIT) leg."""
        return next(o for o in self.legs if o.type.startswith("STOP_LOSS"))

    @property
    def target_leg(self) -> Order:
        """The LIMIT_MAKER / TAKE_PROFIT(_LIMIT) leg."""
        return next(o for o in self.legs if not o.type.startswith("STOP_LOSS"))

    def report(self, reports: list[dict], transaction_time: int | None = None) -> dict:
        return {"orderListId": self.list_id, "contingencyType": "OCO",
                "listStatusType": self.status_type, "listOrderStatus": self.status,
                "listClientOrderId": self.client_id,
                "transactionTime": self.time if transaction_time is None else transaction_time,
                "symbol": self.symbol,
                "orders": [{"symbol": o.symbol, "orderId": o.order_id,
                            "clientOrderId": o.client_id} for o in self.legs],
                "orderReports": reports}
