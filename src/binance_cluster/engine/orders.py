"""The order engine: the one matching of orders against candles, shared by the exchange
emulator (`exchange/emulator/matching.Exchange`) and the paper broker
(`exchange/broker/paper.PaperBroker`), which only map its reason codes (`engine.reject`) to
Binance errors or broker errors.

Prices come only from the project's one set of fill rules, `binance_cluster.kernels.fills`
(the backtest simulator uses the same functions), applied to a `MarketSource`'s candles (the
emulator: the symbol's stored base-interval candles; paper: its market feed):

- "Now" is the source's clock. The CURRENT PRICE is the open of the candle forming at now (the
  candle whose span holds now); when now falls in a gap of the data (or before the first
  candle) it is the open of the next candle, the market's next traded price, as the backtest
  would fill; after the last candle the market is closed (MARKET_CLOSED).
- MARKET orders fill at once, in full, at `fills.market_buy_price` / `market_sell_price` of
  the current price with the configured slippage (rounded to the tick against the trader).
  `quoteOrderQty` buys/sells `fills.floor_to_step(quote / fill price, LOT_SIZE step)`.
- A LIMIT order that crosses the current price (BUY price >= it, SELL price <= it) fills at
  once as taker at the market fill price capped by its own price (BUY: the lower, SELL: the
  higher); otherwise GTC rests, IOC/FOK expire. LIMIT_MAKER that would cross is rejected, so
  is a stop or take profit that would trigger at once.
- Resting orders are checked against every candle from the one forming when they were placed
  (an order placed during a candle is treated as placed at its open, the same assumption as
  the market fill and the backtest, which checks a position's exits in its entry bar); with
  `resting_from_next` only candles opening after the placement count. A candle is used
  once it has closed on the clock, in time order (orders of one candle by order id), and
  fills are stamped with its close time. A resting limit fills (maker) at
  `fills.sell_limit_fill` / `buy_limit_fill`: its price, or the open when the candle gaps
  through it. STOP_LOSS(_LIMIT) triggers at `sell_stop_fill` / `buy_stop_fill`,
  TAKE_PROFIT(_LIMIT) at `sell_limit_fill` / `buy_limit_fill` of the stop price
  (`fills.touch_fill`). A triggered STOP_LOSS / TAKE_PROFIT fills there (taker); a triggered
  *_LIMIT order becomes a limit at its price: it fills there at the trigger price (taker) if
  that crosses its limit, else IOC/FOK expire and GTC rests, within the same candle only when
  it was triggered at the candle's open (the rest of the candle came after the trigger).
- OCO: both legs share one lock. For a SELL list `fills.long_exit_fill` decides the candle
  (stop first when both are touched); a BUY list mirrors it (buy stop first, then the buy
  limit). The first leg touched triggers; the other expires with reason OCO_TRIGGER.
- Fees (commissions) are charged in the asset received (BUY: base, SELL: quote) with
  `fills.fee` at the account's taker rate (immediate fills) or maker rate (resting fills),
  rounded half-up to 8 decimals. Quote amounts are price * qty rounded half-up to 8 decimals.
  Balances move by exactly these Decimals; open orders lock quote (BUY: qty * limit or stop
  price, rounded up to 8 decimals) or base (SELL: qty). A triggered BUY whose gapping fill
  costs more than the free quote expires (INSUFFICIENT_BALANCE).
- Orders always fill in full (no volume cap), so PARTIALLY_FILLED never occurs.

Matching of resting orders runs (`sync`) when the adapter asks: before every request, after
a clock change. Checks of a new order, in Binance's order: order type allowed and market
open, PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE and the market notional at the fill price
(`fills.notional_ok`), or NOTIONAL and MAX_NUM_ORDERS for priced orders, duplicate client
id, would trigger / would take, then the balance.
"""

from __future__ import annotations

import heapq
import itertools
import math
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Callable, Protocol

import numpy as np

from binance_cluster.engine.order_book import (Account, NewOco, NewOrder, Order, OrderList,
                                               Quote, Trade)
from binance_cluster.engine.reject import OrderRejected, Reject
from binance_cluster.engine.symbol_rules import SymbolFilters
from binance_cluster.kernels import fills

Q8 = Decimal("0.00000001")
STOP_ORDER_TYPES = ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")


class CandleRows(Protocol):
    """Closed candles, oldest first (a `types.Candles` or a view of arrays)."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray


class MarketSource(Protocol):
    """What the engine reads from a market."""

    def filters(self, symbol: str) -> SymbolFilters:
        """The symbol's trading rules."""

    def market(self, symbol: str, now_ms: int) -> Quote | None:
        """The current price at `now_ms`; None when the market is closed."""

    def closed_candles(self, symbol: str, start_ms: int, now_ms: int) -> CandleRows:
        """Candles with open time >= `start_ms` that have closed at `now_ms`, oldest first."""

    def step_of(self, symbol: str) -> int:
        """The length of the symbol's candles in milliseconds."""


def to_decimal(x: float) -> Decimal:
    """The shortest decimal that reads back as the float `x` (fill results are grid values)."""
    return Decimal(repr(float(x)))


def quote_amount(qty: Decimal, price: Decimal) -> Decimal:
    """price * qty rounded half-up to 8 decimals."""
    return (qty * price).quantize(Q8, rounding=ROUND_HALF_UP)


def lock_amount(qty: Decimal, price: Decimal) -> Decimal:
    """What a BUY at `price` locks: price * qty rounded up to 8 decimals."""
    return (qty * price).quantize(Q8, rounding=ROUND_UP)


def touch_price(side: str, rising: bool, level: float, o: float, h: float, lo: float) -> float:
    """Where a candle reaches `level` by the fill rules (`fills.touch_fill`), NaN if not."""
    return fills.touch_fill(side == "SELL", rising, level, o, h, lo)


def order_level(side: str, type_: str, price: Decimal | None, stop: Decimal | None,
                triggered: bool = False) -> tuple[bool, float]:
    """(rising, level) at which an order acts: its price when it rests as a limit, else its
    stop price (take profits act on a rise when selling, stops on a fall when selling)."""
    if type_ in ("LIMIT", "LIMIT_MAKER") or (triggered and type_.endswith("_LIMIT")):
        return side == "SELL", float(price)  # type: ignore[arg-type]
    take_profit = type_.startswith("TAKE_PROFIT")
    return (side == "SELL") == take_profit, float(stop)  # type: ignore[arg-type]


def _level_of(order: Order) -> tuple[bool, float]:
    return order_level(order.side, order.type, order.price, order.stop_price, order.triggered)


def touched_now(side: str, type_: str, price: Decimal | None, stop: Decimal | None,
                current: float) -> bool:
    """Whether an order would act at once at the current price (cross, or trigger)."""
    rising, level = order_level(side, type_, price, stop)
    return not math.isnan(touch_price(side, rising, level, current, current, current))


def _check(problem: Reject | None) -> None:
    if problem is not None:
        raise OrderRejected(problem)


def _key(unit: Order | OrderList) -> int:
    return unit.order_id if isinstance(unit, Order) else unit.legs[0].order_id


class OrderEngine:
    """Accounts, open orders and their matching against one market source."""

    def __init__(self, source: MarketSource, slippage: float = 0.0,
                 resting_from_next: bool = False,
                 new_client_id: Callable[[], str] | None = None):
        self.source = source
        self.slippage = slippage
        self.next_candle_only = resting_from_next
        self._new_client_id = new_client_id
        self.accounts: dict[int, Account] = {}
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._list_ids = itertools.count(1)
        self.book: dict[str, dict[int, Order | OrderList]] = {}
        self._synced: int | None = None

    def add_account(self, account: Account) -> Account:
        self.accounts[account.uid] = account
        return account

    def new_client_id(self) -> str:
        if self._new_client_id is None:
            raise ValueError("the order engine needs a client id for every order")
        return self._new_client_id()

    def _first_check(self, quote: Quote, symbol: str) -> int:
        if self.next_candle_only and quote.forming:
            return quote.bar_open + self.source.step_of(symbol)
        return quote.bar_open

    def _market_fill_price(self, side: str, quote: Quote, spec: SymbolFilters) -> float:
        tick = float(spec.tick_size)
        if side == "BUY":
            return fills.market_buy_price(quote.price, self.slippage, tick)
        return fills.market_sell_price(quote.price, self.slippage, tick)

    # -- validation shared by orders and lists ------------------------------------------------
    def _tradable(self, spec: SymbolFilters, types: tuple[str, ...], now: int) -> Quote:
        for type_ in types:
            if type_ not in spec.order_types:
                raise OrderRejected(Reject.UNSUPPORTED_TYPE, type_)
        quote = self.source.market(spec.symbol, now) if spec.status == "TRADING" else None
        if quote is None:
            raise OrderRejected(Reject.MARKET_CLOSED)
        return quote

    # -- new orders ------------------------------------------------------------------------
    def place(self, account: Account, new: NewOrder, now: int, test: bool = False) -> Order | None:
        """Check `new` in Binance's order and execute it (or only check it, `test`)."""
        spec = self.source.filters(new.symbol)
        quote = self._tradable(spec, (new.type,), now)
        _check(spec.price_problem(new.price))
        _check(spec.price_problem(new.stop_price))
        qty = new.quantity
        fill_px = math.nan
        if new.type == "MARKET":
            fill_px = self._market_fill_price(new.side, quote, spec)
            if qty is None:
                qty = to_decimal(fills.floor_to_step(float(new.quote_qty) / fill_px,
                                                     float(spec.step_size)))
        assert qty is not None
        _check(spec.lot_problem(qty))
        if new.type == "MARKET":
            if new.quantity is not None:
                _check(spec.market_lot_problem(qty))
            if spec.apply_min_to_market and spec.min_notional > 0 and \
                    not fills.notional_ok(float(qty), fill_px, float(spec.min_notional)):
                raise OrderRejected(Reject.NOTIONAL)
        else:
            _check(spec.notional_problem(qty * (new.price if new.price is not None
                                                else new.stop_price)))
            _check(spec.open_orders_problem(account.open_count(spec.symbol), 1))
        client_id = new.client_id or self.new_client_id()
        if (new.symbol, client_id) in account.open_by_client:
            raise OrderRejected(Reject.DUPLICATE)
        touched = new.type != "MARKET" and touched_now(new.side, new.type, new.price,
                                                       new.stop_price, quote.price)
        if touched and new.type in STOP_ORDER_TYPES:
            raise OrderRejected(Reject.WOULD_TRIGGER)
        if touched and new.type == "LIMIT_MAKER":
            raise OrderRejected(Reject.WOULD_TAKE)
        if test:
            return None
        asset, need = self._requirement(spec, new, qty, fill_px)
        if need > account.available(asset):
            raise OrderRejected(Reject.INSUFFICIENT_BALANCE)
        return self._execute(account, spec, new, qty, client_id, quote, fill_px, touched, now)

    def _requirement(self, spec: SymbolFilters, new: NewOrder, qty: Decimal,
                     fill_px: float) -> tuple[str, Decimal]:
        """(asset, amount) the order needs free: what it spends at once or locks."""
        if new.side == "SELL":
            return spec.base_asset, qty
        if new.type == "MARKET":
            return spec.quote_asset, quote_amount(qty, to_decimal(fill_px))
        price = new.price if new.price is not None else new.stop_price
        return spec.quote_asset, lock_amount(qty, price)  # type: ignore[arg-type]

    def _new_record(self, account: Account, new: NewOrder, qty: Decimal, client_id: str,
                    now: int, list_id: int = -1) -> Order:
        limit_like = new.type in ("LIMIT", "LIMIT_MAKER", "MARKET")
        return Order(
            account_uid=account.uid, symbol=new.symbol, order_id=next(self._order_ids),
            client_id=client_id, side=new.side, type=new.type,
            time_in_force=new.time_in_force or "GTC", qty=qty,
            price=new.price if new.price is not None else Decimal(0),
            stop_price=new.stop_price if new.stop_price is not None else Decimal(0),
            quote_qty=new.quote_qty if new.quote_qty is not None else Decimal(0), time=now,
            update_time=now, working_time=now if limit_like else -1, list_id=list_id,
            strategy_id=new.strategy_id, strategy_type=new.strategy_type)

    def _execute(self, account: Account, spec: SymbolFilters, new: NewOrder, qty: Decimal,
                 client_id: str, quote: Quote, fill_px: float, touched: bool,
                 now: int) -> Order:
        order = self._new_record(account, new, qty, client_id, now)
        account.add_order(order)
        if new.type == "MARKET":
            self._fill(order, fill_px, now, maker=False)
            return order
        if new.type == "LIMIT" and touched:
            market_px = self._market_fill_price(new.side, quote, spec)
            px = min(float(order.price), market_px) if new.side == "BUY" \
                else max(float(order.price), market_px)
            self._fill(order, px, now, maker=False)
            return order
        if new.type == "LIMIT" and order.time_in_force != "GTC":
            order.status = "EXPIRED"
            order.expiry_reason = "UNFILLED_IOC_QUANTITY_EXPIRED" \
                if order.time_in_force == "IOC" else "UNFILLED_FOK_ORDER_EXPIRED"
            return order
        asset, need = self._requirement(spec, new, qty, fill_px)
        order.lock = account.lock(asset, need, now)
        order.next_open = self._first_check(quote, new.symbol)
        self._rest(order, account)
        return order

    def _rest(self, order: Order, account: Account) -> None:
        account.open(order)
        self.book.setdefault(order.symbol, {})[order.order_id] = order
        self._synced = None

    def place_oco(self, account: Account, new: NewOco, now: int) -> OrderList:
        """Check and place an OCO (two legs, one lock)."""
        spec = self.source.filters(new.symbol)
        below, above = new.below, new.above
        quote = self._tradable(spec, (below.type, above.type), now)
        for leg in (below, above):
            _check(spec.price_problem(leg.price))
            _check(spec.price_problem(leg.stop_price))
        _check(spec.lot_problem(new.quantity))
        for leg in (below, above):
            _check(spec.notional_problem(new.quantity * (leg.price if leg.price is not None
                                                         else leg.stop_price)))
        _check(spec.open_orders_problem(account.open_count(new.symbol), 2))
        list_id_text = new.list_client_id or self.new_client_id()
        ids = [leg.client_id or self.new_client_id() for leg in (below, above)]
        if (new.symbol, list_id_text) in account.open_lists_by_client or ids[0] == ids[1] or \
                any((new.symbol, cid) in account.open_by_client for cid in ids):
            raise OrderRejected(Reject.DUPLICATE)
        for leg in (below, above):
            bad = touched_now(leg.side, leg.type, leg.price, leg.stop_price, quote.price)
            if leg.type == "TAKE_PROFIT_LIMIT":  # its limit price must be on the same side
                bad = bad or touched_now(leg.side, "LIMIT_MAKER", leg.price, None, quote.price)
            if bad:
                raise OrderRejected(Reject.PRICE_RELATIONSHIP)
        if new.side == "SELL":
            asset, need = spec.base_asset, new.quantity
        else:
            top = max(leg.price if leg.price is not None else leg.stop_price  # type: ignore
                      for leg in (below, above))
            asset, need = spec.quote_asset, lock_amount(new.quantity, top)
        if need > account.available(asset):
            raise OrderRejected(Reject.INSUFFICIENT_BALANCE)
        list_id = next(self._list_ids)
        legs = tuple(self._new_record(account, leg, new.quantity, cid, now, list_id)
                     for leg, cid in zip((below, above), ids))
        lock = account.lock(asset, need, now)
        olist = OrderList(list_id, list_id_text, new.symbol, new.side, now,
                          legs, lock, next_open=self._first_check(quote, new.symbol),  # type: ignore
                          update_time=now)
        for leg in legs:
            leg.lock = lock
            leg.order_list = olist
            account.add_order(leg)
            account.open(leg)
        account.open_lists[list_id] = olist
        account.open_lists_by_client[(new.symbol, list_id_text)] = olist
        account.lists[list_id] = olist
        account.lists_by_client[list_id_text] = olist
        self.book.setdefault(new.symbol, {})[legs[0].order_id] = olist
        self._synced = None
        return olist

    # -- fills -----------------------------------------------------------------------------
    def _fill(self, order: Order, px: float, when: int, maker: bool) -> None:
        """Fill `order` in full at `px`: balances, commission, trade record, status."""
        account = self.accounts[order.account_uid]
        spec = self.source.filters(order.symbol)
        price = to_decimal(px)
        qty = order.qty
        quote = quote_amount(qty, price)
        rate = float(account.maker if maker else account.taker)
        account.release(order.lock, when)
        if order.side == "BUY":
            if quote > account.available(spec.quote_asset):  # only a gapping stop-market buy
                self._expire(order, "INSUFFICIENT_BALANCE", when)
                self._finish_list(order, when)
                return
            commission = to_decimal(fills.fee(float(qty), rate)).quantize(Q8, ROUND_HALF_UP)
            account.debit(spec.quote_asset, quote, when)
            account.credit(spec.base_asset, qty - commission, when)
            commission_asset = spec.base_asset
        else:
            commission = to_decimal(fills.fee(float(quote), rate)).quantize(Q8, ROUND_HALF_UP)
            account.debit(spec.base_asset, qty, when)
            account.credit(spec.quote_asset, quote - commission, when)
            commission_asset = spec.quote_asset
        trade = Trade(order.symbol, next(self._trade_ids), order.order_id, order.list_id, price,
                      qty, quote, commission, commission_asset, when, order.side == "BUY", maker)
        order.fills.append(trade)
        account.trades.setdefault(order.symbol, []).append(trade)
        order.executed, order.cum_quote, order.status = qty, quote, "FILLED"
        order.update_time = when
        if order.working_time == -1:
            order.working_time = when
        account.close(order)
        self._finish_list(order, when)

    def _expire(self, order: Order, reason: str, when: int) -> None:
        order.status, order.expiry_reason, order.update_time = "EXPIRED", reason, when
        self.accounts[order.account_uid].close(order)

    def _finish_list(self, order: Order, when: int) -> None:
        olist = order.order_list
        if olist is None or any(leg.is_open for leg in olist.legs):
            return
        olist.status = olist.status_type = "ALL_DONE"
        olist.update_time = when
        account = self.accounts[order.account_uid]
        account.release(olist.lock, when)
        account.open_lists.pop(olist.list_id, None)
        key = (olist.symbol, olist.client_id)
        if account.open_lists_by_client.get(key) is olist:
            del account.open_lists_by_client[key]

    # -- cancels ---------------------------------------------------------------------------
    def cancel(self, order: Order, now: int) -> list[Order]:
        """Cancel an open order (and, for an OCO leg, its whole list); the canceled orders."""
        account = self.accounts[order.account_uid]
        book = self.book.get(order.symbol, {})
        olist = order.order_list
        targets = [o for o in olist.legs if o.is_open] if olist is not None else [order]
        for o in targets:
            o.status, o.update_time = "CANCELED", now
            account.release(o.lock, now)
            account.close(o)
            book.pop(o.order_id, None)
        if olist is not None:
            book.pop(olist.legs[0].order_id, None)
            self._finish_list(order, now)
        return targets

    # -- matching resting orders -------------------------------------------------------------
    def sync(self, now: int) -> None:
        """Fill and trigger resting orders on every candle closed at `now`."""
        if now == self._synced:
            return
        self._synced = now
        for symbol, units in self.book.items():
            if units:
                self._match(symbol, units, now)

    def _match(self, symbol: str, units: dict[int, Order | OrderList], now: int) -> None:
        start = min(unit.next_open for unit in units.values())
        c = self.source.closed_candles(symbol, start, now)
        n = len(c.open_time)
        if n == 0:
            return
        step = self.source.step_of(symbol)
        after = int(c.open_time[-1]) + step
        seq = itertools.count()
        heap: list[tuple[int, int, int, Order | OrderList]] = []
        for key, unit in list(units.items()):
            j = self._next_event(unit, c, n)
            if j is None:
                unit.next_open = max(unit.next_open, after)
            else:
                heap.append((j, key, next(seq), unit))
        heapq.heapify(heap)
        while heap:
            j, _, _, unit = heapq.heappop(heap)
            follow = self._event(units, unit, j, c, step)
            if follow is None:
                continue
            j2 = self._next_event(follow, c, n)
            if j2 is None:
                follow.next_open = max(follow.next_open, after)
            else:
                heapq.heappush(heap, (j2, _key(follow), next(seq), follow))

    @staticmethod
    def _reach(order: Order, c: CandleRows, lo: int, hi: int) -> np.ndarray:
        rising, level = _level_of(order)
        return c.high[lo:hi] >= level if rising else c.low[lo:hi] <= level

    def _next_event(self, unit: Order | OrderList, c: CandleRows, n: int) -> int | None:
        """Index of the first candle of `c` from `unit.next_open` on that reaches it."""
        lo = int(np.searchsorted(c.open_time, unit.next_open, side="left"))
        if lo >= n:
            return None
        if isinstance(unit, OrderList):
            hit = self._reach(unit.legs[0], c, lo, n) | self._reach(unit.legs[1], c, lo, n)
        else:
            hit = self._reach(unit, c, lo, n)
        k = int(np.argmax(hit))
        return lo + k if hit[k] else None

    def _event(self, units: dict, unit: Order | OrderList, j: int, c: CandleRows,
               step: int) -> Order | OrderList | None:
        """Apply candle `j` to `unit`; returns what still rests (to look at again) or None."""
        o, h, lo = float(c.open[j]), float(c.high[j]), float(c.low[j])
        start = int(c.open_time[j])
        when = start + step - 1
        if isinstance(unit, OrderList):
            stop, target = unit.stop_leg, unit.target_leg
            _, stop_level = _level_of(stop)
            t_rising, target_level = _level_of(target)
            if unit.side == "SELL":
                px, kind = fills.long_exit_fill(o, h, lo, stop_level, target_level)
            else:
                px, kind = touch_price("BUY", True, stop_level, o, h, lo), fills.STOP_FILL
                if math.isnan(px):
                    px, kind = touch_price("BUY", t_rising, target_level, o, h, lo), \
                        fills.TARGET_FILL
            if math.isnan(px) or kind == fills.NO_FILL:
                unit.next_open = start + step
                return unit
            units.pop(unit.legs[0].order_id, None)
            unit.triggered = True
            leg, other = (stop, target) if kind == fills.STOP_FILL else (target, stop)
            self._expire(other, "OCO_TRIGGER", when)
            return self._reached(units, leg, start + step, px, o, h, lo, when)
        rising, level = _level_of(unit)
        px = touch_price(unit.side, rising, level, o, h, lo)
        if math.isnan(px):
            unit.next_open = start + step
            return unit
        units.pop(unit.order_id, None)
        return self._reached(units, unit, start + step, px, o, h, lo, when)

    def _reached(self, units: dict, order: Order, next_open: int, px: float, o: float,
                 h: float, lo: float, when: int) -> Order | None:
        """`order` was reached at `px` in a candle: fill it, or trigger it (and maybe fill)."""
        if order.type in ("LIMIT", "LIMIT_MAKER") or order.triggered:
            self._fill(order, px, when, maker=True)
            return None
        order.triggered, order.working_time, order.update_time = True, when, when
        if order.type in ("STOP_LOSS", "TAKE_PROFIT"):
            self._fill(order, px, when, maker=False)
            return None
        limit = float(order.price)
        if (order.side == "SELL" and px >= limit) or (order.side == "BUY" and px <= limit):
            self._fill(order, px, when, maker=False)
            return None
        if order.time_in_force != "GTC":  # IOC / FOK: what does not fill at once expires
            self.accounts[order.account_uid].release(order.lock, when)
            self._expire(order, "UNFILLED_IOC_QUANTITY_EXPIRED" if order.time_in_force == "IOC"
                         else "UNFILLED_FOK_ORDER_EXPIRED", when)
            self._finish_list(order, when)
            return None
        if px == o:  # triggered at the open: the whole candle came after the trigger
            rising, level = _level_of(order)
            px2 = touch_price(order.side, rising, level, o, h, lo)
            if not math.isnan(px2):
                self._fill(order, px2, when, maker=True)
                return None
        order.next_open = next_open
        units[order.order_id] = order
        return order
