"""The emulator's matching engine: accounts, orders and fills against replayed candles.

Prices come only from the project's one set of fill rules, `binance_cluster.kernels.fills`
(the backtest simulator uses the same functions), applied to the symbol's base-interval
candles (the shortest stored interval):

- "Now" is the replay clock. The CURRENT PRICE is the open of the candle forming at now (the
  candle whose span holds now); when now falls in a gap of the data (or before the first
  candle) it is the open of the next stored candle, the market's next traded price, as the
  backtest would fill; after the last candle the market is closed (-2010 "Market is closed.").
- MARKET orders fill at once, in full, at `fills.market_buy_price` / `market_sell_price` of
  the current price with the configured slippage (rounded to the tick against the trader).
  `quoteOrderQty` buys/sells `fills.floor_to_step(quote / fill price, LOT_SIZE step)`.
- A LIMIT order that crosses the current price (BUY price >= it, SELL price <= it) fills at
  once as taker at the market fill price capped by its own price (BUY: the lower, SELL: the
  higher); otherwise GTC rests, IOC/FOK expire. LIMIT_MAKER that would cross is rejected.
- Resting orders are checked against every candle from the one forming when they were placed
  (an order placed during a candle is treated as placed at its open, the same assumption as
  the market fill and the backtest, which checks a position's exits in its entry bar); with
  `resting_from="next"` only candles opening after the placement count. A candle is used
  once it has closed on the replay clock, in time order, and fills are stamped with its close
  time. A resting limit fills (maker) at `fills.sell_limit_fill` / `buy_limit_fill`: its
  price, or the open when the candle gaps through it. STOP_LOSS(_LIMIT) triggers at
  `sell_stop_fill` / `buy_stop_fill`, TAKE_PROFIT(_LIMIT) at `sell_limit_fill` /
  `buy_limit_fill` of the stop price. A triggered STOP_LOSS / TAKE_PROFIT fills there (taker);
  a triggered *_LIMIT order becomes a limit at its price: it fills there at the trigger price
  (taker) if that crosses its limit, else it rests, within the same candle only when it was
  triggered at the candle's open (the rest of the candle came after the trigger).
- OCO: both legs share one lock. For a SELL list `fills.long_exit_fill` decides the candle
  (stop first when both are touched); a BUY list mirrors it (buy stop first, then the buy
  limit). The first leg touched triggers; the other expires with reason OCO_TRIGGER.
- Fees are charged in the asset received (BUY: base, SELL: quote) with `fills.fee` at the
  account's taker rate (immediate fills) or maker rate (resting fills), rounded to 8 decimals.
  Quote amounts are price * qty rounded to 8 decimals. Balances move by exactly these
  Decimals; open orders lock quote (BUY: qty * limit or stop price) or base (SELL: qty).
- Orders always fill in full (no volume cap), so PARTIALLY_FILLED never occurs.

Matching of resting orders runs (`sync`) before every trading request, after every admin
clock change and periodically while the replay clock runs, so answers are deterministic under
an admin-stepped clock.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal
from typing import TYPE_CHECKING

import numpy as np

from binance_cluster.exchange.emulator import rules
from binance_cluster.exchange.emulator.accounts import Account, demo_accounts, load_accounts
from binance_cluster.exchange.emulator.keys import KeyEntry, verifier_for
from binance_cluster.exchange.emulator.http import ApiError
from binance_cluster.exchange.emulator.orders import (TYPE_NAMES, NewOco, NewOrder, Order, OrderList,
                                             Trade)
from binance_cluster.exchange.emulator.symbols import SymbolSpec, split_assets
from binance_cluster.kernels import fills

if TYPE_CHECKING:
    from binance_cluster.exchange.emulator.state import EmulatorState

log = logging.getLogger(__name__)

Q8 = Decimal("0.00000001")
UID_BASE = 1_000_000
ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def rejected(msg: str) -> ApiError:
    """-2010 NEW_ORDER_REJECTED with Binance's message."""
    return ApiError(400, -2010, msg)


INSUFFICIENT = "Account has insufficient balance for requested action."


def to_decimal(x: float) -> Decimal:
    """The shortest decimal that reads back as the float `x` (fill results are grid values)."""
    return Decimal(repr(float(x)))


def quote_amount(qty: Decimal, price: Decimal) -> Decimal:
    return (qty * price).quantize(Q8, rounding=ROUND_HALF_UP)


def lock_amount(qty: Decimal, price: Decimal) -> Decimal:
    return (qty * price).quantize(Q8, rounding=ROUND_UP)


def touch_price(side: str, rising: bool, level: float, o: float, h: float, lo: float) -> float:
    """Where a candle reaches `level` by the shared fill rules, NaN if it does not.

    `rising`: reached when the price rises to it (a SELL limit or take profit, a BUY stop);
    else when it falls to it (a BUY limit or take profit, a SELL stop).
    """
    if rising:
        if side == "SELL":
            return fills.sell_limit_fill(o, h, level)
        return fills.buy_stop_fill(o, h, level)
    if side == "SELL":
        return fills.sell_stop_fill(o, lo, level)
    return fills.buy_limit_fill(o, lo, level)


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


@dataclass(frozen=True, slots=True)
class Market:
    """The current price of a symbol: the open of candle `index`; `forming` when that candle
    holds now (else now is in a gap before it)."""

    index: int
    price: float
    forming: bool


class PriceArrays:
    """A symbol's base-interval candles as the engine reads them."""

    __slots__ = ("open_time", "open", "high", "low", "step")

    def __init__(self, open_time: np.ndarray, open_: np.ndarray, high: np.ndarray,
                 low: np.ndarray, step: int):
        self.open_time, self.open, self.high, self.low, self.step = (open_time, open_, high,
                                                                     low, step)

    def closed(self, now: int) -> int:
        """Number of leading candles closed at `now`."""
        return int(np.searchsorted(self.open_time, now - self.step, side="right"))

    def close_time(self, j: int) -> int:
        return int(self.open_time[j]) + self.step - 1


class Exchange:
    """Accounts, open orders and the matching of one emulator (used from its event loop)."""

    def __init__(self, state: "EmulatorState"):
        self._state = state
        config = state.config
        specs = load_accounts(config.accounts) if config.accounts is not None \
            else demo_accounts()
        where = str(config.accounts) if config.accounts is not None else "demo account"
        assets = sorted({a for s in state.symbols for a in self._assets(s)})
        self.keys: dict[str, KeyEntry] = {}
        self.accounts: dict[int, Account] = {}
        for n, spec in enumerate(specs, start=1):
            account = Account(UID_BASE + n, spec, assets)
            self.accounts[account.uid] = account
            self.keys[spec.api_key] = KeyEntry(verifier_for(spec, f"{where}: account {n}"),
                                               account)
        self.slippage = config.slippage_bps / 10_000
        self.next_candle_only = config.resting_from == "next"
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._list_ids = itertools.count(1)
        self._ids = random.Random(0x5EED)
        self._arrays: dict[str, PriceArrays] = {}
        self.book: dict[str, dict[int, Order | OrderList]] = {}
        self._synced: int | None = None

    def _assets(self, symbol: str) -> tuple[str, str]:
        base, quote = split_assets(symbol)
        table = self._state.overrides.get(symbol, {})
        return str(table.get("base_asset", base)), str(table.get("quote_asset", quote))

    def new_client_id(self) -> str:
        """A 22-character id like the ones Binance generates (deterministic per emulator)."""
        return "".join(self._ids.choice(ID_CHARS) for _ in range(22))

    # -- market ----------------------------------------------------------------------------
    def arrays(self, symbol: str) -> PriceArrays:
        found = self._arrays.get(symbol)
        if found is None:
            data = self._state.data
            series = data.series(symbol, data.base_interval(symbol))
            c = series.candles
            found = PriceArrays(series.open_time, c.open, c.high, c.low, series.step)
            self._arrays[symbol] = found
        return found

    def market(self, symbol: str, now: int) -> Market | None:
        """The current price of `symbol` at replay time `now` (None after the last candle)."""
        c = self.arrays(symbol)
        i = int(np.searchsorted(c.open_time, now, side="right")) - 1
        if i >= 0 and int(c.open_time[i]) + c.step > now:
            return Market(i, float(c.open[i]), True)
        if i + 1 < len(c.open_time):
            return Market(i + 1, float(c.open[i + 1]), False)
        return None

    def _first_check(self, market: Market) -> int:
        return market.index + 1 if self.next_candle_only and market.forming else market.index

    # -- validation shared by orders and lists ------------------------------------------------
    def _tradable(self, spec: SymbolSpec, types: tuple[str, ...], now: int) -> Market:
        for type_ in types:
            if type_ not in spec.order_types:
                raise rejected(f"{TYPE_NAMES[type_]} orders are not supported for this symbol.")
        market = self.market(spec.symbol, now) if spec.status == "TRADING" else None
        if market is None:
            raise rejected("Market is closed.")
        return market

    # -- new orders ------------------------------------------------------------------------
    def place(self, account: Account, new: NewOrder, now: int, test: bool = False) -> Order | None:
        """Validate `new` in Binance's order and execute it (or only validate, `test`)."""
        spec = self._state.spec(new.symbol)
        market = self._tradable(spec, (new.type,), now)
        rules.check_price(spec, new.price)
        rules.check_price(spec, new.stop_price)
        qty = new.quantity
        fill_px = math.nan
        if new.type == "MARKET":
            tick = float(spec.tick_size)
            fill_px = fills.market_buy_price(market.price, self.slippage, tick) \
                if new.side == "BUY" else fills.market_sell_price(market.price, self.slippage,
                                                                  tick)
            if qty is None:
                qty = to_decimal(fills.floor_to_step(float(new.quote_qty) / fill_px,
                                                     float(spec.step_size)))
        assert qty is not None
        rules.check_lot(spec, qty)
        if new.type == "MARKET":
            if new.quantity is not None:
                rules.check_market_lot(spec, qty)
            if spec.min_notional > 0 and not fills.notional_ok(float(qty), fill_px,
                                                               float(spec.min_notional)):
                raise rules.filter_failure("NOTIONAL")
        else:
            rules.check_notional(spec, qty * (new.price if new.price is not None
                                              else new.stop_price))
            rules.check_open_orders(spec, account.open_count(spec.symbol), 1)
        client_id = new.client_id or self.new_client_id()
        if (new.symbol, client_id) in account.open_by_client:
            raise rejected("Duplicate order sent.")
        touched = new.type != "MARKET" and touched_now(new.side, new.type, new.price,
                                                       new.stop_price, market.price)
        if touched and new.type in ("STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                                    "TAKE_PROFIT_LIMIT"):
            raise rejected("Order would trigger immediately.")
        if touched and new.type == "LIMIT_MAKER":
            raise rejected("Order would immediately match and take.")
        if test:
            return None
        asset, need = self._requirement(spec, new, qty, fill_px)
        if need > account.available(asset):
            raise rejected(INSUFFICIENT)
        return self._execute(account, spec, new, qty, client_id, market, fill_px, touched, now)

    def _requirement(self, spec: SymbolSpec, new: NewOrder, qty: Decimal,
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

    def _execute(self, account: Account, spec: SymbolSpec, new: NewOrder, qty: Decimal,
                 client_id: str, market: Market, fill_px: float, touched: bool,
                 now: int) -> Order:
        order = self._new_record(account, new, qty, client_id, now)
        account.add_order(order)
        if new.type == "MARKET":
            self._fill(order, fill_px, now, maker=False)
            return order
        if new.type == "LIMIT" and touched:
            tick = float(spec.tick_size)
            if new.side == "BUY":
                px = min(float(order.price), fills.market_buy_price(market.price, self.slippage,
                                                                    tick))
            else:
                px = max(float(order.price), fills.market_sell_price(market.price,
                                                                     self.slippage, tick))
            self._fill(order, px, now, maker=False)
            return order
        if new.type == "LIMIT" and order.time_in_force != "GTC":
            order.status = "EXPIRED"
            order.expiry_reason = "UNFILLED_IOC_QUANTITY_EXPIRED" \
                if order.time_in_force == "IOC" else "UNFILLED_FOK_ORDER_EXPIRED"
            return order
        asset, need = self._requirement(spec, new, qty, fill_px)
        order.lock = account.lock(asset, need, now)
        order.next_index = self._first_check(market)
        self._rest(order, account)
        return order

    def _rest(self, order: Order, account: Account) -> None:
        account.open(order)
        self.book.setdefault(order.symbol, {})[order.order_id] = order
        self._synced = None

    def place_oco(self, account: Account, new: NewOco, now: int) -> OrderList:
        """Validate and place an OCO (two legs, one lock)."""
        spec = self._state.spec(new.symbol)
        below, above = new.below, new.above
        market = self._tradable(spec, (below.type, above.type), now)
        for leg in (below, above):
            rules.check_price(spec, leg.price)
            rules.check_price(spec, leg.stop_price)
        rules.check_lot(spec, new.quantity)
        for leg in (below, above):
            rules.check_notional(spec, new.quantity * (leg.price if leg.price is not None
                                                       else leg.stop_price))
        rules.check_open_orders(spec, account.open_count(new.symbol), 2)
        list_id_text = new.list_client_id or self.new_client_id()
        ids = [leg.client_id or self.new_client_id() for leg in (below, above)]
        if (new.symbol, list_id_text) in account.open_lists_by_client or ids[0] == ids[1] or \
                any((new.symbol, cid) in account.open_by_client for cid in ids):
            raise rejected("Duplicate order sent.")
        for leg in (below, above):
            bad = touched_now(leg.side, leg.type, leg.price, leg.stop_price, market.price)
            if leg.type == "TAKE_PROFIT_LIMIT":  # its limit price must be on the same side
                bad = bad or touched_now(leg.side, "LIMIT_MAKER", leg.price, None, market.price)
            if bad:
                raise rejected("The relationship of the prices for the orders is not correct.")
        if new.side == "SELL":
            asset, need = spec.base_asset, new.quantity
        else:
            top = max(leg.price if leg.price is not None else leg.stop_price  # type: ignore
                      for leg in (below, above))
            asset, need = spec.quote_asset, lock_amount(new.quantity, top)
        if need > account.available(asset):
            raise rejected(INSUFFICIENT)
        list_id = next(self._list_ids)
        legs = tuple(self._new_record(account, leg, new.quantity, cid, now, list_id)
                     for leg, cid in zip((below, above), ids))
        lock = account.lock(asset, need, now)
        olist = OrderList(list_id, list_id_text, new.symbol, new.side, now,
                          legs, lock, next_index=self._first_check(market),  # type: ignore
                          update_time=now)
        for leg in legs:
            leg.lock = lock
            leg.order_list = olist
            account.add_order(leg)
            account.open(leg)
        account.open_lists[list_id] = olist
        account.open_lists_by_client[(new.symbol, list_id_text)] = olist
        self.book.setdefault(new.symbol, {})[legs[0].order_id] = olist
        self._synced = None
        return olist

    # -- fills -----------------------------------------------------------------------------
    def _fill(self, order: Order, px: float, when: int, maker: bool) -> None:
        """Fill `order` in full at `px`: balances, fee, trade record, status."""
        account = self.accounts[order.account_uid]
        spec = self._state.spec(order.symbol)
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
        """Fill and trigger resting orders on every candle closed at replay time `now`."""
        if now == self._synced:
            return
        self._synced = now
        for symbol, units in self.book.items():
            if units:
                self._match(symbol, units, now)

    def _match(self, symbol: str, units: dict[int, Order | OrderList], now: int) -> None:
        c = self.arrays(symbol)
        closed = c.closed(now)
        seq = itertools.count()
        heap: list[tuple[int, int, int, Order | OrderList]] = []
        for key, unit in list(units.items()):
            j = self._next_event(unit, c, closed)
            if j is None:
                unit.next_index = max(unit.next_index, closed)
            else:
                heap.append((j, key, next(seq), unit))
        heapq.heapify(heap)
        while heap:
            j, _, _, unit = heapq.heappop(heap)
            follow = self._event(symbol, units, unit, j, c)
            if follow is None:
                continue
            j2 = self._next_event(follow, c, closed)
            if j2 is None:
                follow.next_index = max(follow.next_index, closed)
            else:
                key = follow.order_id if isinstance(follow, Order) else follow.legs[0].order_id
                heapq.heappush(heap, (j2, key, next(seq), follow))

    def _reach(self, order: Order, c: PriceArrays, lo: int, hi: int) -> np.ndarray:
        rising, level = _level_of(order)
        return c.high[lo:hi] >= level if rising else c.low[lo:hi] <= level

    def _next_event(self, unit: Order | OrderList, c: PriceArrays, closed: int) -> int | None:
        """Index of the first closed candle from `unit.next_index` that reaches it."""
        lo = unit.next_index
        if lo >= closed:
            return None
        if isinstance(unit, OrderList):
            hit = self._reach(unit.legs[0], c, lo, closed) | self._reach(unit.legs[1], c, lo,
                                                                         closed)
        else:
            hit = self._reach(unit, c, lo, closed)
        k = int(np.argmax(hit))
        return lo + k if hit[k] else None

    def _event(self, symbol: str, units: dict, unit: Order | OrderList, j: int,
               c: PriceArrays) -> Order | OrderList | None:
        """Apply candle `j` to `unit`; returns what still rests (to look at again) or None."""
        o, h, lo = float(c.open[j]), float(c.high[j]), float(c.low[j])
        when = c.close_time(j)
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
                unit.next_index = j + 1
                return unit
            units.pop(unit.legs[0].order_id, None)
            unit.triggered = True
            leg, other = (stop, target) if kind == fills.STOP_FILL else (target, stop)
            self._expire(other, "OCO_TRIGGER", when)
            return self._reached(units, leg, j, px, o, h, lo, when)
        rising, level = _level_of(unit)
        px = touch_price(unit.side, rising, level, o, h, lo)
        if math.isnan(px):
            unit.next_index = j + 1
            return unit
        units.pop(unit.order_id, None)
        return self._reached(units, unit, j, px, o, h, lo, when)

    def _reached(self, units: dict, order: Order, j: int, px: float, o: float, h: float,
                 lo: float, when: int) -> Order | None:
        """`order` was reached at `px` in candle j: fill it, or trigger it (and maybe fill)."""
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
        order.next_index = j + 1
        units[order.order_id] = order
        return order
