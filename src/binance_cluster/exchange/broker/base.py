"""The broker protocol and its value types; money is `Decimal` at this boundary.

A `Broker` is what a driver (the live loop) talks to: symbol filters, balances, submitting,
cancelling and querying orders by client id, open orders and fills. `BinanceBroker` talks to
Binance (mainnet, testnet) or the project's emulator; `PaperBroker` simulates fills locally with
the project's fill rules. Both return the same frozen values, so the driver cannot tell them
apart.

Order kinds (`OrderRequest.type`): MARKET (BUY by `quantity` or by `quote_amount` to spend,
SELL by `quantity`), LIMIT, STOP_LOSS (a market order once `stop_price` trades: it fills at
the stop, or at the open of a candle that gaps through it, as the backtest's stop does),
STOP_LOSS_LIMIT and TAKE_PROFIT_LIMIT (trigger `stop_price`, limit `price`), and OCO, a
protective exit list: a take-profit LIMIT_MAKER leg at `price` (above the market for a SELL)
and a stop leg of type `stop_type`: STOP_LOSS_LIMIT (default) triggered at `stop_price` with
limit `stop_limit_price` (default: the stop price), or STOP_LOSS (market once triggered; no
limit; only on symbols whose exchangeInfo `orderTypes` list it). Quantities are rounded down to the lot step
and prices to the nearest tick by `SymbolFilters` (the one filter type,
`engine.symbol_rules`, whose checks `prepare` applies) before they are sent, and always sent
as plain decimal strings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Protocol, runtime_checkable

from binance_cluster.engine.symbol_rules import SymbolFilters
from binance_cluster.exchange.broker.errors import FilterError, OrderRequestError
from binance_cluster.exchange.broker.ids import check_client_id, leg_ids

SIDES = ("BUY", "SELL")
ORDER_TYPES = ("MARKET", "LIMIT", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT", "OCO")
OCO_STOP_TYPES = ("STOP_LOSS_LIMIT", "STOP_LOSS")   # the stop leg of an OCO
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED", "PENDING_NEW")
DONE_STATUSES = ("FILLED", "CANCELED", "REJECTED", "EXPIRED", "EXPIRED_IN_MATCH")
ZERO = Decimal(0)


def to_decimal(value, what: str = "value") -> Decimal:
    """`value` (Decimal, int, decimal string, or float via its shortest repr) as a finite
    Decimal; OrderRequestError naming `what` otherwise."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise OrderRequestError(f"{what} must be a number, not {value!r}")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise OrderRequestError(f"{what} must be finite, not {value!r}")
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise OrderRequestError(f"{what} {value!r} is not a decimal number") from None
    else:
        raise OrderRequestError(f"{what} must be a decimal number, not {type(value).__name__}")
    if not result.is_finite():
        raise OrderRequestError(f"{what} must be finite, not {value!r}")
    return result


def decimal_text(value: Decimal) -> str:
    """A plain decimal string Binance accepts (`0.00001`, never `1E-5`), trailing zeros cut."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def parse_decimal(text, default: Decimal | None = ZERO) -> Decimal | None:
    """A decimal field of an exchange answer (`"0.00100000"`); `default` when absent."""
    if text is None or text == "":
        return default
    try:
        return Decimal(str(text))
    except InvalidOperation:
        return default


def check_qty(filters: SymbolFilters, qty: Decimal, what: str) -> None:
    """FilterError (-1013 LOT_SIZE) for a rounded quantity outside the lot bounds."""
    if filters.lot_problem(qty) is not None:
        raise FilterError(f"{filters.symbol} {what}: quantity {decimal_text(qty)} is outside "
                          f"LOT_SIZE [{decimal_text(filters.min_qty)}, "
                          f"{decimal_text(filters.max_qty)}] after rounding to step "
                          f"{decimal_text(filters.step_size)}", -1013, 400)


def check_price(filters: SymbolFilters, price: Decimal, what: str) -> None:
    """FilterError (-1013 PRICE_FILTER) for a rounded price outside the price bounds."""
    if filters.price_problem(price) is not None:
        raise FilterError(f"{filters.symbol} {what}: price {decimal_text(price)} is outside "
                          f"PRICE_FILTER [{decimal_text(filters.min_price)}, "
                          f"{decimal_text(filters.max_price)}]", -1013, 400)


def check_notional(filters: SymbolFilters, qty: Decimal, price: Decimal, what: str) -> None:
    """FilterError (-1013 NOTIONAL) when `qty * price` is outside the notional bounds."""
    notional = qty * price
    if filters.notional_problem(notional) is not None:
        over = filters.max_notional > 0 and notional > filters.max_notional
        where = f"over the maximum {decimal_text(filters.max_notional)}" if over \
            else f"under the minimum {decimal_text(filters.min_notional)}"
        raise FilterError(f"{filters.symbol} {what}: notional {decimal_text(notional)} is "
                          f"{where} (NOTIONAL)", -1013, 400)


@dataclass(frozen=True, slots=True)
class Balance:
    """Free and locked amounts of one asset."""

    asset: str
    free: Decimal
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What to send; see the module docstring for the fields each `type` needs."""

    symbol: str
    side: str
    type: str
    client_id: str
    quantity: Decimal | None = None
    quote_amount: Decimal | None = None
    price: Decimal | None = None
    stop_price: Decimal | None = None
    stop_limit_price: Decimal | None = None
    time_in_force: str = "GTC"
    stop_type: str = "STOP_LOSS_LIMIT"    # OCO only: the stop leg's type (OCO_STOP_TYPES)

    def __post_init__(self) -> None:
        what = f"order {self.client_id!r}"
        if not isinstance(self.symbol, str) or not self.symbol.isalnum():
            raise OrderRequestError(f"{what}: symbol {self.symbol!r} is not a symbol name")
        object.__setattr__(self, "symbol", self.symbol.upper())
        if self.side not in SIDES:
            raise OrderRequestError(f"{what}: side must be BUY or SELL, not {self.side!r}")
        if self.type not in ORDER_TYPES:
            raise OrderRequestError(f"{what}: type must be one of {', '.join(ORDER_TYPES)}, "
                                    f"not {self.type!r}")
        if self.time_in_force not in TIME_IN_FORCE:
            raise OrderRequestError(f"{what}: time_in_force must be one of "
                                    f"{', '.join(TIME_IN_FORCE)}")
        if self.stop_type not in OCO_STOP_TYPES or \
                (self.type != "OCO" and self.stop_type != OCO_STOP_TYPES[0]):
            raise OrderRequestError(f"{what}: stop_type is the stop leg of an OCO: one of "
                                    f"{', '.join(OCO_STOP_TYPES)}")
        if self.type == "OCO":
            leg_ids(self.client_id)
        else:
            check_client_id(self.client_id)
        for name in ("quantity", "quote_amount", "price", "stop_price", "stop_limit_price"):
            value = getattr(self, name)
            if value is not None:
                value = to_decimal(value, f"{what} {name}")
                if value <= 0:
                    raise OrderRequestError(f"{what}: {name} must be above zero")
                object.__setattr__(self, name, value)
        self._check_fields(what)

    def _check_fields(self, what: str) -> None:
        given = {n for n in ("quantity", "quote_amount", "price", "stop_price",
                             "stop_limit_price") if getattr(self, n) is not None}
        if self.type == "MARKET":
            need, allowed = set(), {"quantity", "quote_amount"}
            if len(given & allowed) != 1:
                raise OrderRequestError(f"{what}: a MARKET order needs exactly one of "
                                        "quantity or quote_amount")
        elif self.type == "LIMIT":
            need = allowed = {"quantity", "price"}
        elif self.type == "OCO":
            need = {"quantity", "price", "stop_price"}
            allowed = need | ({"stop_limit_price"} if self.stop_type == "STOP_LOSS_LIMIT"
                              else set())
        elif self.type == "STOP_LOSS":
            need = allowed = {"quantity", "stop_price"}
        else:
            need = allowed = {"quantity", "price", "stop_price"}
        missing = sorted(need - given)
        extra = sorted(given - allowed)
        if missing:
            raise OrderRequestError(f"{what}: a {self.type} order needs {', '.join(missing)}")
        if extra:
            raise OrderRequestError(f"{what}: a {self.type} order takes no {', '.join(extra)}")

    @property
    def leg_ids(self) -> tuple[str, str]:
        """(take-profit leg id, stop-loss leg id) of an OCO request."""
        return leg_ids(self.client_id)


@dataclass(frozen=True, slots=True)
class OcoLeg:
    """One leg of an OCO list as sent: type, client id, price, stop price, time in force."""

    type: str
    client_id: str
    price: Decimal | None
    stop_price: Decimal | None
    time_in_force: str | None


def oco_legs(req: OrderRequest) -> tuple[OcoLeg, OcoLeg]:
    """(take-profit leg above, stop leg below) of a SELL OCO request: LIMIT_MAKER at `price`;
    STOP_LOSS_LIMIT at `stop_price` limited at `stop_limit_price` (default: the stop price),
    or STOP_LOSS (market once triggered) when `stop_type` says so."""
    tp_id, sl_id = req.leg_ids
    above = OcoLeg("LIMIT_MAKER", tp_id, req.price, None, None)
    if req.stop_type == "STOP_LOSS":
        return above, OcoLeg("STOP_LOSS", sl_id, None, req.stop_price, None)
    limit = req.stop_limit_price if req.stop_limit_price is not None else req.stop_price
    return above, OcoLeg("STOP_LOSS_LIMIT", sl_id, limit, req.stop_price, "GTC")


def prepare(request: OrderRequest, filters: SymbolFilters,
            reference_price: Decimal | None = None) -> OrderRequest:
    """`request` with quantity and prices rounded to `filters`, checked as the exchange would
    (LOT_SIZE, PRICE_FILTER, NOTIONAL; a MARKET order's notional at `reference_price`)."""
    what = f"{request.type} {request.side} {request.client_id}"
    changes: dict = {}
    if request.quantity is not None:
        qty = filters.floor_qty(request.quantity)
        check_qty(filters, qty, what)
        changes["quantity"] = qty
    for name in ("price", "stop_price", "stop_limit_price"):
        value = getattr(request, name)
        if value is not None:
            value = filters.round_price(value)
            check_price(filters, value, what)
            changes[name] = value
    qty = changes.get("quantity")
    if request.type == "MARKET":
        if request.quote_amount is not None:
            if filters.apply_min_to_market and request.quote_amount < filters.min_notional:
                raise FilterError(f"{filters.symbol} {what}: quote amount "
                                  f"{decimal_text(request.quote_amount)} is under the minimum "
                                  f"notional {decimal_text(filters.min_notional)} (NOTIONAL)",
                                  -1013, 400)
        elif reference_price is not None and filters.apply_min_to_market:
            check_notional(filters, qty, reference_price, what)
    elif request.type in ("OCO", "STOP_LOSS"):
        check_notional(filters, qty, changes["stop_price"], what)
    else:
        check_notional(filters, qty, changes["price"], what)
    return replace(request, **changes)


@dataclass(frozen=True, slots=True)
class Fill:
    """One trade of one order."""

    symbol: str
    order_id: int
    trade_id: int
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_maker: bool = False


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the exchange knows it (for OCO: the list, with its two legs)."""

    symbol: str
    client_id: str
    side: str
    type: str
    status: str
    quantity: Decimal
    executed_qty: Decimal = ZERO
    cumulative_quote: Decimal = ZERO
    price: Decimal | None = None
    stop_price: Decimal | None = None
    order_id: int = -1
    list_id: int = -1
    time_ms: int = 0
    update_ms: int = 0
    fills: tuple[Fill, ...] = ()
    legs: tuple["Order", ...] = field(default=())

    @property
    def avg_price(self) -> Decimal | None:
        """Average fill price (cumulative quote / executed quantity); None before any fill."""
        if self.executed_qty <= 0:
            return None
        return self.cumulative_quote / self.executed_qty

    @property
    def is_open(self) -> bool:
        """Whether the order (or any leg of a list) may still trade."""
        if self.legs:
            return any(leg.is_open for leg in self.legs)
        return self.status in OPEN_STATUSES


def list_order(symbol: str, client_id: str, side: str, legs: tuple[Order, ...],
               list_id: int = -1) -> Order:
    """The Order of an OCO list from its legs: status of the leg that traded, else NEW while
    a leg is open, else the (shared) final status."""
    traded = [leg for leg in legs if leg.executed_qty > 0]
    if traded:
        status = traded[0].status
    elif any(leg.is_open for leg in legs):
        status = "NEW"
    else:
        status = legs[0].status if legs else "CANCELED"
    quantity = legs[0].quantity if legs else ZERO
    return Order(symbol=symbol, client_id=client_id, side=side, type="OCO", status=status,
                 quantity=quantity, executed_qty=sum((leg.executed_qty for leg in legs), ZERO),
                 cumulative_quote=sum((leg.cumulative_quote for leg in legs), ZERO),
                 price=legs[0].price if legs else None,
                 stop_price=legs[1].stop_price if len(legs) > 1 else None, list_id=list_id,
                 time_ms=min((leg.time_ms for leg in legs), default=0),
                 update_ms=max((leg.update_ms for leg in legs), default=0),
                 fills=tuple(f for leg in legs for f in leg.fills), legs=legs)


@runtime_checkable
class Broker(Protocol):
    """What the live loop needs from an account (Binance, testnet, emulator or paper)."""

    def filters(self, symbol: str) -> SymbolFilters:
        """The symbol's trading rules (UnknownSymbolError when not listed)."""

    def balances(self) -> dict[str, Balance]:
        """Free and locked amounts by asset."""

    def submit(self, request: OrderRequest) -> Order:
        """Place an order once (idempotent by client id) and return the exchange's view."""

    def cancel(self, symbol: str, client_id: str) -> Order:
        """Cancel an open order (an OCO list by its list id) and return its final state."""

    def query(self, symbol: str, client_id: str) -> Order:
        """The order with this client id (OrderNotFoundError when the exchange has none)."""

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders (OCO legs one by one), oldest first."""

    def fills_since(self, symbol: str, *, time_ms: int | None = None,
                    trade_id: int | None = None) -> list[Fill]:
        """Fills of `symbol` at or after `time_ms`, or with trade id >= `trade_id`, oldest
        first."""
