"""`PaperBroker`: the Broker protocol with fills simulated locally, on a market feed's prices,
with the project's one set of fill rules (`kernels.fills`) and its own balances.

The matching follows the exchange emulator's engine (`emulator/matching.py`), so a live
loop gets the same fills on paper as against the emulator replaying the same candles:

- The current price is the open of the candle forming at the feed's "now" (`feeds.Quote`).
  MARKET orders fill at once at `fills.market_buy_price` / `market_sell_price` of it (taker);
  a MARKET buy by quote amount buys `fills.floor_to_step(quote / fill price, step)`.
- A LIMIT order crossing the current price fills at once (taker) at the market fill price
  capped by its limit; otherwise it rests (GTC) or expires (IOC/FOK). A stop order that
  would trigger at once is rejected (-2010), as is an OCO whose prices are on the wrong side.
- Resting orders are checked on every closed candle from the one forming when they were
  placed (`resting_from="next"`: only later candles), oldest first: limits fill (maker) at
  `sell_limit_fill` / `buy_limit_fill`; STOP_LOSS_LIMIT triggers at `sell_stop_fill` /
  `buy_stop_fill` (TAKE_PROFIT_LIMIT at the limit-fill rules of its stop price) and fills
  there (taker) when that crosses its limit, else rests as a limit (within the same candle
  only when triggered at its open). A SELL OCO is decided by `fills.long_exit_fill` (stop
  first when both legs are touched); the other leg expires. Resting fills are stamped with
  the candle's close time.
- Fees: `fills.fee` at the maker or taker rate, in the asset received (BUY: base on the
  quantity, SELL: quote on the notional), rounded half-up to 8 decimals; notionals are
  price * qty rounded half-up to 8 decimals. Open orders lock quote (BUY: qty * price rounded
  up) or base (SELL: qty); an OCO's legs share one lock. Orders fill in full.

Resting orders are matched lazily: every public call first applies the candles that closed
since the last call (`sync`). `submit` is idempotent by client id: a client id already used
returns that order, as `BinanceBroker.submit` does.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, ROUND_UP, Decimal
from typing import Mapping

from binance_cluster.exchange.broker.base import (ZERO, Balance, Fill, Order, OrderRequest,
                                         SymbolFilters, list_order, prepare, to_decimal)
from binance_cluster.exchange.broker.errors import (FilterError, InsufficientBalanceError,
                                           OrderNotFoundError, OrderRejectedError,
                                           OrderRequestError)
from binance_cluster.exchange.broker.feeds import MarketFeed, Quote
from binance_cluster.errors import ConfigError
from binance_cluster.kernels import fills

log = logging.getLogger(__name__)

Q8 = Decimal("0.00000001")
RESTING_FROM = ("placement", "next")
STOP_TYPES = ("STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
INSUFFICIENT = "Account has insufficient balance for requested action."


@dataclass(frozen=True, slots=True)
class PaperConfig:
    """Fee rates (fractions), market slippage (fraction) and when resting orders start."""

    maker_fee: float = 0.001
    taker_fee: float = 0.001
    slippage: float = 0.0
    resting_from: str = "placement"

    def __post_init__(self) -> None:
        for name in ("maker_fee", "taker_fee", "slippage"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ConfigError(f"paper broker: {name} must be a fraction in [0, 1), "
                                  f"not {value!r}")
        if self.resting_from not in RESTING_FROM:
            raise ConfigError(f"paper broker: resting_from must be one of "
                              f"{', '.join(RESTING_FROM)}, not {self.resting_from!r}")


def _dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def _quote(qty: Decimal, price: Decimal) -> Decimal:
    return (qty * price).quantize(Q8, rounding=ROUND_HALF_UP)


def _touch(side: str, rising: bool, level: float, o: float, h: float, lo: float) -> float:
    """Where a candle reaches `level` by the fill rules (NaN if it does not); `rising` for a
    sell limit / take profit or a buy stop, else a buy limit or a sell stop."""
    if rising:
        return fills.sell_limit_fill(o, h, level) if side == "SELL" else \
            fills.buy_stop_fill(o, h, level)
    return fills.sell_stop_fill(o, lo, level) if side == "SELL" else \
        fills.buy_limit_fill(o, lo, level)


@dataclass(slots=True)
class _Lock:
    asset: str
    amount: Decimal


@dataclass(eq=False, slots=True)
class _Rec:
    """One paper order and its state."""

    symbol: str
    order_id: int
    client_id: str
    side: str
    type: str
    tif: str
    qty: Decimal
    price: Decimal | None
    stop: Decimal | None
    time: int
    status: str = "NEW"
    update_time: int = 0
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    list_id: int = -1
    triggered: bool = False
    next_open: int = 0
    lock: _Lock | None = None
    fills: list[Fill] = field(default_factory=list)
    olist: "_List | None" = None

    @property
    def is_open(self) -> bool:
        return self.status == "NEW"

    def level(self) -> tuple[bool, float]:
        """(rising, level) at which the order acts now."""
        if self.type == "LIMIT" or self.type == "LIMIT_MAKER" or \
                (self.triggered and self.type in STOP_TYPES):
            return self.side == "SELL", float(self.price)  # type: ignore[arg-type]
        take_profit = self.type.startswith("TAKE_PROFIT")
        return (self.side == "SELL") == take_profit, float(self.stop)  # type: ignore[arg-type]

    def to_order(self) -> Order:
        return Order(symbol=self.symbol, client_id=self.client_id, side=self.side,
                     type=self.type, status=self.status, quantity=self.qty,
                     executed_qty=self.executed, cumulative_quote=self.cum_quote,
                     price=self.price, stop_price=self.stop, order_id=self.order_id,
                     list_id=self.list_id, time_ms=self.time, update_ms=self.update_time,
                     fills=tuple(self.fills))


@dataclass(eq=False, slots=True)
class _List:
    """A SELL OCO: take-profit leg, stop-loss leg, one lock."""

    list_id: int
    client_id: str
    symbol: str
    side: str
    target: _Rec
    stop: _Rec
    lock: _Lock
    next_open: int = 0

    @property
    def legs(self) -> tuple[_Rec, _Rec]:
        return self.target, self.stop

    def to_order(self) -> Order:
        return list_order(self.symbol, self.client_id, self.side,
                          (self.target.to_order(), self.stop.to_order()), self.list_id)


class PaperBroker:
    """The Broker protocol on paper; see the module docstring."""

    def __init__(self, feed: MarketFeed, balances: Mapping[str, Decimal | str | int],
                 config: PaperConfig = PaperConfig()):
        self.feed = feed
        self.config = config
        self._free: dict[str, Decimal] = {}
        self._locked: dict[str, Decimal] = {}
        for asset, amount in balances.items():
            value = to_decimal(amount, f"paper balance {asset}")
            if value < 0:
                raise ConfigError(f"paper broker: balance of {asset} must not be negative")
            self._free[asset] = value
            self._locked[asset] = ZERO
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self._list_ids = itertools.count(1)
        self._orders: list[_Rec] = []
        self._by_client: dict[tuple[str, str], _Rec] = {}
        self._lists: dict[tuple[str, str], _List] = {}
        self._resting: dict[str, list[_Rec | _List]] = {}
        self._fills: list[Fill] = []

    def __repr__(self) -> str:
        return f"PaperBroker({len(self._orders)} orders, {len(self._fills)} fills)"

    # -- balances --------------------------------------------------------------------------
    def _touch_asset(self, asset: str) -> None:
        self._free.setdefault(asset, ZERO)
        self._locked.setdefault(asset, ZERO)

    def _debit(self, asset: str, amount: Decimal) -> None:
        self._touch_asset(asset)
        self._free[asset] -= amount

    def _credit(self, asset: str, amount: Decimal) -> None:
        self._touch_asset(asset)
        self._free[asset] += amount

    def _lock(self, asset: str, amount: Decimal) -> _Lock:
        self._debit(asset, amount)
        self._locked[asset] += amount
        return _Lock(asset, amount)

    def _release(self, lock: _Lock | None) -> None:
        if lock is None or lock.amount == 0:
            return
        self._locked[lock.asset] -= lock.amount
        self._free[lock.asset] += lock.amount
        lock.amount = ZERO

    def balances(self) -> dict[str, Balance]:
        """Free and locked amounts by asset (after matching the candles closed since)."""
        self.sync()
        return {a: Balance(a, self._free[a], self._locked[a]) for a in self._free}

    # -- market ----------------------------------------------------------------------------
    def filters(self, symbol: str) -> SymbolFilters:
        return self.feed.filters(symbol.upper())

    def _first_check(self, quote: Quote) -> int:
        if self.config.resting_from == "next" and quote.forming:
            return quote.bar_open + self.feed.step_ms
        return quote.bar_open

    # -- orders ----------------------------------------------------------------------------
    def submit(self, request: OrderRequest) -> Order:
        """Place `request` on paper (same checks and answers as the emulator)."""
        now = self.feed.now_ms()
        self.sync(now)
        spec = self.filters(request.symbol)
        what = f"{request.symbol} {request.type} {request.side} {request.client_id}"
        if request.type == "OCO" and request.side != "SELL":
            raise OrderRequestError(f"order {request.client_id}: OCO lists are protective "
                                    "exits of long positions: SELL only")
        key = (request.symbol, request.client_id)
        existing = self._lists.get(key) if request.type == "OCO" else self._by_client.get(key)
        if existing is not None:  # idempotent by client id, as BinanceBroker.submit
            return existing.to_order()
        quote = self.feed.market(request.symbol, now) if spec.status == "TRADING" else None
        if quote is None:
            raise OrderRejectedError(f"{what}: Market is closed. (code -2010)", -2010, 400)
        if request.type == "OCO":
            return self._place_oco(prepare(request, spec), spec, quote, now, what)
        return self._place(prepare(request, spec), spec, quote, now, what)

    def _market_price(self, side: str, quote: Quote, spec: SymbolFilters) -> float:
        tick = float(spec.tick_size)
        if side == "BUY":
            return fills.market_buy_price(quote.price, self.config.slippage, tick)
        return fills.market_sell_price(quote.price, self.config.slippage, tick)

    def _new_rec(self, req: OrderRequest, type_: str, qty: Decimal, price: Decimal | None,
                 stop: Decimal | None, client_id: str, now: int, list_id: int = -1) -> _Rec:
        rec = _Rec(symbol=req.symbol, order_id=next(self._order_ids), client_id=client_id,
                   side=req.side, type=type_, tif=req.time_in_force, qty=qty, price=price,
                   stop=stop, time=now, update_time=now, list_id=list_id)
        self._orders.append(rec)
        self._by_client[(req.symbol, client_id)] = rec
        return rec

    def _place(self, req: OrderRequest, spec: SymbolFilters, quote: Quote, now: int,
               what: str) -> Order:
        fill_px = math.nan
        qty = req.quantity
        if req.type == "MARKET":
            fill_px = self._market_price(req.side, quote, spec)
            if qty is None:
                qty = _dec(fills.floor_to_step(float(req.quote_amount) / fill_px,
                                               float(spec.step_size)))
                spec.check_qty(qty, what)
            if spec.min_notional > 0 and not fills.notional_ok(float(qty), fill_px,
                                                               float(spec.min_notional)):
                raise FilterError(f"{what}: Filter failure: NOTIONAL (code -1013)", -1013, 400)
        touched = False
        if req.type != "MARKET":
            probe = _Rec(req.symbol, 0, "", req.side, req.type, req.time_in_force, qty,
                         req.price, req.stop_price, now)
            rising, level = probe.level()
            p = quote.price
            touched = not math.isnan(_touch(req.side, rising, level, p, p, p))
            if touched and req.type in STOP_TYPES:
                raise OrderRejectedError(f"{what}: Order would trigger immediately. "
                                         "(code -2010)", -2010, 400)
        asset, need = self._requirement(spec, req.side, req.type, qty, req.price,
                                        req.stop_price, fill_px)
        if need > self._free.get(asset, ZERO):
            raise InsufficientBalanceError(f"{what}: {INSUFFICIENT} (code -2010)", -2010, 400)
        rec = self._new_rec(req, req.type, qty, req.price, req.stop_price, req.client_id, now)
        if req.type == "MARKET":
            self._fill(rec, fill_px, now, maker=False)
        elif req.type == "LIMIT" and touched:
            mkt = self._market_price(req.side, quote, spec)
            px = min(float(req.price), mkt) if req.side == "BUY" else max(float(req.price), mkt)
            self._fill(rec, px, now, maker=False)
        elif req.type == "LIMIT" and req.time_in_force != "GTC":
            rec.status = "EXPIRED"
        else:
            rec.lock = self._lock(asset, need)
            rec.next_open = self._first_check(quote)
            self._resting.setdefault(req.symbol, []).append(rec)
        return rec.to_order()

    def _requirement(self, spec: SymbolFilters, side: str, type_: str, qty: Decimal,
                     price: Decimal | None, stop: Decimal | None,
                     fill_px: float) -> tuple[str, Decimal]:
        if side == "SELL":
            return spec.base_asset, qty
        if type_ == "MARKET":
            return spec.quote_asset, _quote(qty, _dec(fill_px))
        level = price if price is not None else stop
        return spec.quote_asset, (qty * level).quantize(Q8, rounding=ROUND_UP)

    def _place_oco(self, req: OrderRequest, spec: SymbolFilters, quote: Quote, now: int,
                   what: str) -> Order:
        stop_limit = req.stop_limit_price if req.stop_limit_price is not None \
            else req.stop_price
        spec.check_notional(req.quantity, stop_limit, what)
        spec.check_notional(req.quantity, req.price, what)
        p = quote.price
        target_hit = not math.isnan(_touch("SELL", True, float(req.price), p, p, p))
        stop_hit = not math.isnan(_touch("SELL", False, float(req.stop_price), p, p, p))
        if target_hit or stop_hit:
            raise OrderRejectedError(f"{what}: The relationship of the prices for the orders "
                                     "is not correct. (code -2010)", -2010, 400)
        if req.quantity > self._free.get(spec.base_asset, ZERO):
            raise InsufficientBalanceError(f"{what}: {INSUFFICIENT} (code -2010)", -2010, 400)
        list_id = next(self._list_ids)
        tp_id, sl_id = req.leg_ids
        # the emulator numbers the stop (below) leg first, as Binance does
        stop = self._new_rec(req, "STOP_LOSS_LIMIT", req.quantity, stop_limit, req.stop_price,
                             sl_id, now, list_id)
        target = self._new_rec(req, "LIMIT_MAKER", req.quantity, req.price, None, tp_id, now,
                               list_id)
        lock = self._lock(spec.base_asset, req.quantity)
        olist = _List(list_id, req.client_id, req.symbol, "SELL", target, stop, lock,
                      self._first_check(quote))
        target.olist = stop.olist = olist
        self._lists[(req.symbol, req.client_id)] = olist
        self._resting.setdefault(req.symbol, []).append(olist)
        return olist.to_order()

    # -- fills -----------------------------------------------------------------------------
    def _fill(self, rec: _Rec, px: float, when: int, maker: bool) -> None:
        spec = self.filters(rec.symbol)
        price = _dec(px)
        qty = rec.qty
        notional = _quote(qty, price)
        rate = self.config.maker_fee if maker else self.config.taker_fee
        self._release(rec.olist.lock if rec.olist is not None else rec.lock)
        if rec.side == "BUY":
            commission = _dec(fills.fee(float(qty), rate)).quantize(Q8, ROUND_HALF_UP)
            self._debit(spec.quote_asset, notional)
            self._credit(spec.base_asset, qty - commission)
            asset = spec.base_asset
        else:
            commission = _dec(fills.fee(float(notional), rate)).quantize(Q8, ROUND_HALF_UP)
            self._debit(spec.base_asset, qty)
            self._credit(spec.quote_asset, notional - commission)
            asset = spec.quote_asset
        fill = Fill(symbol=rec.symbol, order_id=rec.order_id, trade_id=next(self._trade_ids),
                    side=rec.side, price=price, qty=qty, quote_qty=notional,
                    commission=commission, commission_asset=asset, time_ms=when,
                    is_maker=maker)
        rec.fills.append(fill)
        self._fills.append(fill)
        rec.executed, rec.cum_quote, rec.status, rec.update_time = qty, notional, "FILLED", when

    def sync(self, now: int | None = None) -> None:
        """Apply every candle closed by `now` (default: the feed's now) to resting orders."""
        if not any(self._resting.values()):
            return
        now = self.feed.now_ms() if now is None else now
        for symbol, units in self._resting.items():
            if units:
                self._match(symbol, units, now)

    def _match(self, symbol: str, units: list[_Rec | _List], now: int) -> None:
        start = min(u.next_open for u in units)
        c = self.feed.closed_candles(symbol, start, now)
        times = c.open_time.tolist()
        pending = sorted(units, key=lambda u: (u.next_open, self._key(u)))
        still: list[_Rec | _List] = []
        for j, t in enumerate(times):
            o, h, lo = float(c.open[j]), float(c.high[j]), float(c.low[j])
            when = t + self.feed.step_ms - 1
            pending.sort(key=self._key)
            nxt: list[_Rec | _List] = []
            for unit in pending:
                if unit.next_open > t:
                    nxt.append(unit)
                    continue
                follow = self._event(unit, o, h, lo, t, when)
                if follow is not None:
                    nxt.append(follow)
            pending = nxt
        for unit in pending:
            if times:
                unit.next_open = max(unit.next_open, times[-1] + self.feed.step_ms)
            still.append(unit)
        units[:] = still

    @staticmethod
    def _key(unit: _Rec | _List) -> int:
        return unit.stop.order_id if isinstance(unit, _List) else unit.order_id

    def _event(self, unit: _Rec | _List, o: float, h: float, lo: float, t: int,
               when: int) -> _Rec | _List | None:
        """Apply the candle opening at `t` to `unit`; what still rests, or None."""
        if isinstance(unit, _List):
            px, kind = fills.long_exit_fill(o, h, lo, float(unit.stop.stop),
                                            float(unit.target.price))
            if kind == fills.NO_FILL or math.isnan(px):
                unit.next_open = t + self.feed.step_ms
                return unit
            leg, other = (unit.stop, unit.target) if kind == fills.STOP_FILL \
                else (unit.target, unit.stop)
            other.status, other.update_time = "EXPIRED", when
            return self._reached(leg, px, o, h, lo, t, when)
        rising, level = unit.level()
        px = _touch(unit.side, rising, level, o, h, lo)
        if math.isnan(px):
            unit.next_open = t + self.feed.step_ms
            return unit
        return self._reached(unit, px, o, h, lo, t, when)

    def _reached(self, rec: _Rec, px: float, o: float, h: float, lo: float, t: int,
                 when: int) -> _Rec | None:
        if rec.type in ("LIMIT", "LIMIT_MAKER") or rec.triggered:
            self._fill(rec, px, when, maker=True)
            return None
        rec.triggered, rec.update_time = True, when
        limit = float(rec.price)  # type: ignore[arg-type]
        if (rec.side == "SELL" and px >= limit) or (rec.side == "BUY" and px <= limit):
            self._fill(rec, px, when, maker=False)
            return None
        if px == o:
            rising, level = rec.level()
            px2 = _touch(rec.side, rising, level, o, h, lo)
            if not math.isnan(px2):
                self._fill(rec, px2, when, maker=True)
                return None
        rec.next_open = t + self.feed.step_ms
        return rec

    # -- queries ---------------------------------------------------------------------------
    def query(self, symbol: str, client_id: str) -> Order:
        """The order or OCO list with this client id; OrderNotFoundError when unknown."""
        self.sync()
        symbol = symbol.upper()
        found = self._by_client.get((symbol, client_id))
        if found is not None:
            return found.to_order()
        olist = self._lists.get((symbol, client_id))
        if olist is not None:
            return olist.to_order()
        raise OrderNotFoundError(f"{symbol} order {client_id}: the paper account has no such "
                                 "order (-2013)", -2013, 400)

    def cancel(self, symbol: str, client_id: str) -> Order:
        """Cancel an open order or OCO list; its final state (FILLED if it filled first)."""
        now = self.feed.now_ms()
        self.sync(now)
        symbol = symbol.upper()
        rec = self._by_client.get((symbol, client_id))
        olist = self._lists.get((symbol, client_id)) if rec is None else rec.olist
        if rec is None and olist is None:
            raise OrderNotFoundError(f"{symbol} cancel {client_id}: the paper account has no "
                                     "such order (-2011)", -2011, 400)
        targets = list(olist.legs) if olist is not None else [rec]
        for leg in targets:
            if leg.is_open:
                leg.status, leg.update_time = "CANCELED", now
                self._release(leg.lock)
        if olist is not None:
            self._release(olist.lock)
        units = self._resting.get(symbol, [])
        units[:] = [u for u in units if u is not olist and u is not rec]
        if rec is not None and rec.olist is None:
            return rec.to_order()
        return olist.to_order() if rec is None else rec.to_order()

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders (OCO legs one by one), oldest first."""
        self.sync()
        sym = symbol.upper() if symbol else None
        return [r.to_order() for r in self._orders
                if r.is_open and (sym is None or r.symbol == sym)]

    def fills_since(self, symbol: str, *, time_ms: int | None = None,
                    trade_id: int | None = None) -> list[Fill]:
        """Paper fills of `symbol` from `time_ms` or trade id `trade_id` (all when neither)."""
        if time_ms is not None and trade_id is not None:
            raise OrderRequestError("fills_since: give time_ms or trade_id, not both")
        self.sync()
        symbol = symbol.upper()
        return [f for f in self._fills if f.symbol == symbol
                and (time_ms is None or f.time_ms >= time_ms)
                and (trade_id is None or f.trade_id >= trade_id)]
