"""`PaperBroker`: the Broker protocol with fills simulated locally, on a market feed's prices,
by the project's one order engine (`engine.orders.OrderEngine`), the engine the exchange
emulator runs, so a live loop gets the same orders, fills and balances on paper as against
the emulator replaying the same candles. The matching rules are written in `engine.orders`;
in short:

- The current price is the open of the candle forming at the feed's "now" (`feeds.Quote`).
  MARKET orders fill at once at `fills.market_buy_price` / `market_sell_price` of it (taker);
  a MARKET buy by quote amount buys `fills.floor_to_step(quote / fill price, step)`.
- A LIMIT order crossing the current price fills at once (taker) at the market fill price
  capped by its limit; otherwise it rests (GTC) or expires (IOC/FOK). A stop order that
  would trigger at once is rejected (-2010), as is an OCO whose prices are on the wrong side.
- Resting orders are checked on every closed candle from the one forming when they were
  placed (`resting_from="next"`: only later candles), oldest first: limits fill (maker) at
  their price or the open on a gap; stop limits trigger and fill (taker) or rest as limits,
  IOC/FOK ones expire when they cannot fill at the trigger; a SELL OCO is decided by
  `fills.long_exit_fill` (stop first when both legs are touched) and the other leg expires.
- Commissions in the asset received (BUY: base on the quantity, SELL: quote on the notional),
  rounded half-up to 8 decimals; open orders lock quote or base; orders fill in full.

Resting orders are matched lazily: every public call first applies the candles that closed
since the last call (`sync`).

With a `state_file`, the account (balances, orders resting or done, fills, the next order and
trade ids) is written there, atomically, after every call that changed it, before the answer
is returned, and read back when the broker is made again on the same file: a paper run
restarted on its journal resumes its account as a testnet run resumes the exchange's (an
order the file does not hold never reached the paper exchange). Resting orders meet the
candles that closed meanwhile at the first call. The file is a pickle this class writes for
itself, marked with its format version and read only from the path it is given: a file of
another version, or one that does not read, is an error naming it (nothing is overwritten).

`submit` is idempotent by client id: a client id already used returns that order, as
`BinanceBroker.submit` does. The engine's refusals become broker
errors: filter failures FilterError (-1013), a short balance InsufficientBalanceError, the
rest OrderRejectedError (-2010), with Binance's messages.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Mapping

from binance_cluster.engine.order_book import Account, NewOco, NewOrder, Order as Record
from binance_cluster.engine.order_book import OrderList, Trade
from binance_cluster.engine.orders import OrderEngine
from binance_cluster.engine.reject import OrderRejected, Reject
from binance_cluster.errors import ConfigError, DataError
from binance_cluster.exchange.broker.base import (Balance, Fill, Order, OrderRequest,
                                                  SymbolFilters, list_order, oco_legs, prepare,
                                                  to_decimal)
from binance_cluster.exchange.broker.errors import (FilterError, InsufficientBalanceError,
                                                    OrderNotFoundError, OrderRejectedError,
                                                    OrderRequestError)
from binance_cluster.exchange.broker.feeds import MarketFeed
from binance_cluster.fileio import atomic_write

log = logging.getLogger(__name__)

STATE_FORMAT = "binance-cluster paper account"
STATE_VERSION = 1          # raise when the engine's or the lists' classes change shape

RESTING_FROM = ("placement", "next")
PAPER_UID = 1


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


class _FeedMarket:
    """A market feed as the order engine's market source."""

    def __init__(self, feed: MarketFeed):
        self.feed = feed
        self.market = feed.market
        self.closed_candles = feed.closed_candles

    def filters(self, symbol: str) -> SymbolFilters:
        return self.feed.filters(symbol)

    def step_of(self, symbol: str) -> int:
        return self.feed.step_ms


def _fill(t: Trade) -> Fill:
    return Fill(symbol=t.symbol, order_id=t.order_id, trade_id=t.trade_id,
                side="BUY" if t.is_buyer else "SELL", price=t.price, qty=t.qty,
                quote_qty=t.quote_qty, commission=t.commission,
                commission_asset=t.commission_asset, time_ms=t.time, is_maker=t.is_maker)


def _order(o: Record) -> Order:
    """The broker's view of an engine order (as `BinanceBroker` reads the emulator's)."""
    return Order(symbol=o.symbol, client_id=o.client_id, side=o.side, type=o.type,
                 status=o.status, quantity=o.qty, executed_qty=o.executed,
                 cumulative_quote=o.cum_quote, price=o.price or None,
                 stop_price=o.stop_price or None, order_id=o.order_id, list_id=o.list_id,
                 time_ms=o.time, update_ms=o.update_time,
                 fills=tuple(_fill(t) for t in o.fills))


def _list_order(olist: OrderList) -> Order:
    legs = (_order(olist.target_leg), _order(olist.stop_leg))  # take profit first
    return list_order(olist.symbol, olist.client_id, olist.side, legs, olist.list_id)


def _broker_error(refusal: OrderRejected, what: str) -> Exception:
    if refusal.reason.is_filter:
        return FilterError(f"{what}: {refusal.message} (code -1013)", -1013, 400)
    kind = InsufficientBalanceError if refusal.reason is Reject.INSUFFICIENT_BALANCE \
        else OrderRejectedError
    return kind(f"{what}: {refusal.message} (code -2010)", -2010, 400)


class PaperBroker:
    """The Broker protocol on paper; see the module docstring."""

    def __init__(self, feed: MarketFeed, balances: Mapping[str, Decimal | str | int],
                 config: PaperConfig = PaperConfig(), state_file: str | Path | None = None):
        self.feed = feed
        self.config = config
        self.state_file = None if state_file is None else Path(state_file)
        if self.state_file is not None and self.state_file.is_file():
            self._load()
            return
        amounts = []
        for asset, amount in balances.items():
            value = to_decimal(amount, f"paper balance {asset}")
            if value < 0:
                raise ConfigError(f"paper broker: balance of {asset} must not be negative")
            amounts.append((asset, value))
        self.engine = OrderEngine(_FeedMarket(feed), config.slippage,
                                  config.resting_from == "next")
        self.account = self.engine.add_account(Account(
            PAPER_UID, amounts, Decimal(repr(config.maker_fee)),
            Decimal(repr(config.taker_fee))))
        self._lists: dict[tuple[str, str], OrderList] = {}
        self._saved = self._version()

    # -- the state file ------------------------------------------------------------------------
    def _version(self) -> tuple:
        """Changes whenever the account does (an order placed, filled, cancelled, expired)."""
        a = self.account
        return (len(a.by_id), a.update_time, sum(len(t) for t in a.trades.values()),
                len(a.open_orders))

    def _load(self) -> None:
        try:
            with open(self.state_file, "rb") as f:             # type: ignore[arg-type]
                state = pickle.load(f)
            if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
                raise ValueError("not a paper account of this program")
            if state.get("version") != STATE_VERSION:
                raise ValueError(f"format version {state.get('version')}, this program reads "
                                 f"version {STATE_VERSION}")
            self.engine, self._lists = state["engine"], state["lists"]
        except Exception as exc:  # unpickling raises anything
            raise DataError(f"{self.state_file}: unreadable paper account ({exc}); move it "
                            "away to start a new paper account") from None
        self.engine.source = _FeedMarket(self.feed)
        self.account = self.engine.accounts[PAPER_UID]
        self._saved = self._version()
        log.info("paper broker: account resumed from %s (%d orders)", self.state_file,
                 len(self.account.by_id))

    def _save(self) -> None:
        """Write the account to `state_file` when it changed since the last write."""
        if self.state_file is None or self._version() == self._saved:
            return
        source, self.engine.source = self.engine.source, None
        try:
            data = pickle.dumps({"format": STATE_FORMAT, "version": STATE_VERSION,
                                 "engine": self.engine, "lists": self._lists},
                                protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            self.engine.source = source
        atomic_write(self.state_file, data)
        self._saved = self._version()

    def __repr__(self) -> str:
        fills = sum(len(t) for t in self.account.trades.values())
        return f"PaperBroker({len(self.account.by_id)} orders, {fills} fills)"

    # -- balances and market -------------------------------------------------------------------
    def balances(self) -> dict[str, Balance]:
        """Free and locked amounts by asset (after matching the candles closed since)."""
        self.sync()
        a = self.account
        return {asset: Balance(asset, a.free[asset], a.locked[asset]) for asset in a.free}

    def filters(self, symbol: str) -> SymbolFilters:
        return self.feed.filters(symbol.upper())

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
        if request.type == "OCO":
            olist = self._lists.get(key)
            if olist is not None:  # idempotent by client id, as BinanceBroker.submit
                return _list_order(olist)
        else:
            found = self.account.latest_by_client.get(key)
            if found is not None:
                return _order(found)
        req = prepare(request, spec)
        try:
            if req.type == "OCO":
                olist = self.engine.place_oco(self.account, _oco(req), now)
                self._lists[key] = olist
                self._save()
                return _list_order(olist)
            no_tif = req.type in ("MARKET", "STOP_LOSS")   # types without a time in force
            new = NewOrder(symbol=req.symbol, side=req.side, type=req.type,
                           quantity=req.quantity, quote_qty=req.quote_amount, price=req.price,
                           stop_price=req.stop_price,
                           time_in_force=None if no_tif else req.time_in_force,
                           client_id=req.client_id)
            order = self.engine.place(self.account, new, now)
        except OrderRejected as refusal:
            raise _broker_error(refusal, what) from None
        assert order is not None
        self._save()
        return _order(order)

    def sync(self, now: int | None = None) -> None:
        """Apply every candle closed by `now` (default: the feed's now) to resting orders."""
        if not any(self.engine.book.values()):
            return
        self.engine.sync(self.feed.now_ms() if now is None else now)
        self._save()

    # -- queries ---------------------------------------------------------------------------
    def query(self, symbol: str, client_id: str) -> Order:
        """The order or OCO list with this client id; OrderNotFoundError when unknown."""
        self.sync()
        symbol = symbol.upper()
        found = self.account.latest_by_client.get((symbol, client_id))
        if found is not None:
            return _order(found)
        olist = self._lists.get((symbol, client_id))
        if olist is not None:
            return _list_order(olist)
        raise OrderNotFoundError(f"{symbol} order {client_id}: the paper account has no such "
                                 "order (-2013)", -2013, 400)

    def cancel(self, symbol: str, client_id: str) -> Order:
        """Cancel an open order or OCO list; its final state (FILLED if it filled first)."""
        now = self.feed.now_ms()
        self.sync(now)
        symbol = symbol.upper()
        rec = self.account.latest_by_client.get((symbol, client_id))
        olist = self._lists.get((symbol, client_id)) if rec is None else rec.order_list
        if rec is None and olist is None:
            raise OrderNotFoundError(f"{symbol} cancel {client_id}: the paper account has no "
                                     "such order (-2011)", -2011, 400)
        targets = olist.legs if olist is not None else (rec,)
        still = next((o for o in targets if o.is_open), None)  # type: ignore[union-attr]
        if still is not None:
            self.engine.cancel(still, now)
            self._save()
        return _order(rec) if rec is not None else _list_order(olist)  # type: ignore[arg-type]

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders (OCO legs one by one), oldest first."""
        self.sync()
        sym = symbol.upper() if symbol else None
        return [_order(o) for o in sorted(self.account.open_orders.values(),
                                          key=lambda o: o.order_id)
                if sym is None or o.symbol == sym]

    def fills_since(self, symbol: str, *, time_ms: int | None = None,
                    trade_id: int | None = None) -> list[Fill]:
        """Paper fills of `symbol` from `time_ms` or trade id `trade_id` (all when neither)."""
        if time_ms is not None and trade_id is not None:
            raise OrderRequestError("fills_since: give time_ms or trade_id, not both")
        self.sync()
        return [_fill(t) for t in self.account.trades.get(symbol.upper(), [])
                if (time_ms is None or t.time >= time_ms)
                and (trade_id is None or t.trade_id >= trade_id)]


def _oco(req: OrderRequest) -> NewOco:
    """The engine's OCO of a prepared SELL OCO request, legs as `BinanceBroker` sends them
    (`base.oco_legs`: take profit LIMIT_MAKER above, the stop leg below)."""
    above, below = (NewOrder(symbol=req.symbol, side=req.side, type=leg.type,
                             quantity=req.quantity, price=leg.price, stop_price=leg.stop_price,
                             time_in_force=leg.time_in_force or "GTC", client_id=leg.client_id)
                    for leg in oco_legs(req))
    return NewOco(symbol=req.symbol, side=req.side, quantity=req.quantity, above=above,
                  below=below, list_client_id=req.client_id)
