"""What the order engine keeps: requests, orders, order lists (OCO), trades, locks, and the
accounts holding them (balances free and locked, exact decimals). Times are milliseconds of
the clock the engine runs on (the emulator's replay clock, the paper feed's now)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable

ZERO = Decimal(0)
STOP_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


@dataclass(frozen=True, slots=True)
class Quote:
    """The current price: the open of the candle opening at `bar_open` (`forming` when that
    candle holds now; otherwise it is the next candle after a gap, or a fallback price)."""

    price: float
    bar_open: int
    forming: bool


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


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A syntactically valid new order (Binance's fields), or one leg of an OCO."""

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
    """A syntactically valid OCO: the leg above and the leg below the market."""

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
    next_open: int = 0
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
    next_open: int = 0
    update_time: int = 0

    @property
    def stop_leg(self) -> Order:
        """The STOP_LOSS(_LIMIT) leg."""
        return next(o for o in self.legs if o.type.startswith("STOP_LOSS"))

    @property
    def target_leg(self) -> Order:
        """The LIMIT_MAKER / TAKE_PROFIT(_LIMIT) leg."""
        return next(o for o in self.legs if not o.type.startswith("STOP_LOSS"))


class Account:
    """Balances, commission rates and orders of one account; every amount an exact Decimal."""

    def __init__(self, uid: int, balances: Iterable[tuple[str, Decimal]], maker: Decimal,
                 taker: Decimal, assets: Iterable[str] = ()):
        self.uid = uid
        self.maker = maker
        self.taker = taker
        self.free: dict[str, Decimal] = {}
        self.locked: dict[str, Decimal] = {}
        for asset, amount in balances:
            self.free[asset] = amount
        for asset in assets:
            self.free.setdefault(asset, Decimal(0))
        for asset in self.free:
            self.locked[asset] = Decimal(0)
        self.update_time = 0
        self.open_orders: dict[int, Order] = {}
        self.open_by_client: dict[tuple[str, str], Order] = {}
        self.open_lists: dict[int, OrderList] = {}
        self.open_lists_by_client: dict[tuple[str, str], OrderList] = {}
        self.lists: dict[int, OrderList] = {}
        self.lists_by_client: dict[str, OrderList] = {}
        self.orders: dict[str, list[Order]] = {}
        self.by_id: dict[int, Order] = {}
        self.latest_by_client: dict[tuple[str, str], Order] = {}
        self.trades: dict[str, list[Trade]] = {}

    # -- balances --------------------------------------------------------------------------
    def available(self, asset: str) -> Decimal:
        return self.free.get(asset, Decimal(0))

    def _touch(self, asset: str) -> None:
        if asset not in self.free:
            self.free[asset] = Decimal(0)
            self.locked[asset] = Decimal(0)

    def credit(self, asset: str, amount: Decimal, when: int) -> None:
        self._touch(asset)
        self.free[asset] += amount
        self.update_time = when

    def debit(self, asset: str, amount: Decimal, when: int) -> None:
        self._touch(asset)
        if amount > self.free[asset]:
            raise ValueError(f"debit of {amount} {asset} exceeds the free balance")
        self.free[asset] -= amount
        self.update_time = when

    def lock(self, asset: str, amount: Decimal, when: int) -> Lock:
        """Move `amount` from free to locked; the returned Lock releases it later."""
        self.debit(asset, amount, when)
        self.locked[asset] += amount
        return Lock(asset, amount)

    def release(self, lock: Lock | None, when: int) -> None:
        """Return what `lock` still holds to the free balance (at most once)."""
        if lock is None or lock.amount == 0:
            return
        self.locked[lock.asset] -= lock.amount
        self.free[lock.asset] += lock.amount
        lock.amount = Decimal(0)
        self.update_time = when

    # -- orders ----------------------------------------------------------------------------
    def add_order(self, order: Order) -> None:
        self.orders.setdefault(order.symbol, []).append(order)
        self.by_id[order.order_id] = order
        self.latest_by_client[(order.symbol, order.client_id)] = order

    def open(self, order: Order) -> None:
        self.open_orders[order.order_id] = order
        self.open_by_client[(order.symbol, order.client_id)] = order

    def close(self, order: Order) -> None:
        self.open_orders.pop(order.order_id, None)
        key = (order.symbol, order.client_id)
        if self.open_by_client.get(key) is order:
            del self.open_by_client[key]

    def open_count(self, symbol: str) -> int:
        return sum(1 for o in self.open_orders.values() if o.symbol == symbol)
