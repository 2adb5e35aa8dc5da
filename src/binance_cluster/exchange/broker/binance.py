"""`BinanceBroker`: the account on Binance mainnet, the spot testnet or any base URL (the
project's emulator), through python-binance 1.0.37 and the one transport
(`exchange.transport`: client construction, retries, Retry-After, weight, server time, error
translation). Rank 0 only (keys: see `broker.keys`).

What it adds (binance-api.md sections 2, 8, 13.9; SEEDS.md weak points):

- Server time: `/api/v3/time` is measured at start and every `time_sync_s` (the transport
  signs with the offset); a -1021 answer triggers a resync and one more try (the exchange
  rejected the request before matching, so resending is safe); a second -1021 raises
  ClockSkewError.
- Exchange info is downloaded once and cached (`exchange_info_ttl_s`); a symbol missing from
  the cache triggers one refresh, then UnknownSymbolError.
- Request weight: every call carries its endpoint's weight and the transport reads
  `X-MBX-USED-WEIGHT-1M` from every answer; a call that would take the minute's used weight
  past (1 - `weight_headroom`) of the limit (exchangeInfo's REQUEST_WEIGHT, 6000 before it is
  read, none when exchangeInfo lists none) waits for the next minute instead of drawing a 429.
- Orders go out with quantities and prices rounded to the symbol's filters and written as
  plain decimal strings (`0.00001`, never `1e-05`), with `newOrderRespType=FULL` and the
  caller's deterministic client id (`broker.ids`).
- Idempotent submits: with `check_before_submit` (default) the client id is looked up
  first, so a restarted process that re-derives the same decision (and id) gets the order it
  already placed instead of a second one (Binance accepts a used client id again once the
  earlier order is done).
- Retries: queries (order, openOrders, account, myTrades, exchangeInfo, time) are retried
  after timeouts, dropped connections and 5xx answers with capped backoff. A submit or cancel
  is never blindly re-sent: after such an ambiguous failure the broker first waits until the
  request's `recvWindow` has run out (an in-flight copy can then no longer execute: the
  exchange re-checks the timestamp before matching), then queries the order by client id:
  if it exists that is the result; if the exchange says -2013 (does not exist) it is sent
  again with the SAME client id. "-2010 Duplicate order sent." is resolved by a query too.
  429 and 418 are waited out for their `Retry-After` (the exchange refused the request; it
  did not run) for every kind of call.
- Errors become the project's exceptions (`errors.py`, `broker.errors`), with one line that
  names the call and never carries a key, secret or signature.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from binance_cluster.exchange.broker.base import (Balance, Fill, Order, OrderRequest,
                                         SymbolFilters, decimal_text, list_order, oco_legs,
                                         parse_decimal, prepare)
from binance_cluster.exchange.broker.errors import (OrderNotFoundError, OrderRejectedError,
                                                    OrderRequestError, OrderStatusUnknownError)
from binance_cluster.exchange.broker.ids import MAX_LIST_ID, leg_ids
from binance_cluster.exchange.broker.keys import ApiKeys, read_keys
from binance_cluster.errors import ConfigError, RetryableExchangeError, UnknownSymbolError
from binance_cluster.exchange.transport import (DEFAULT_WEIGHT_LIMIT, EXCHANGE_INFO_WEIGHT,
                                                Ambiguous, RetryPolicy, TimeDeps, Transport,
                                                make_client, weight_limit_of)

log = logging.getLogger(__name__)

NETWORKS = ("mainnet", "testnet")
QUOTE_QUANTUM = Decimal("0.00000001")
SETTLE_MARGIN_MS = 100
DUPLICATE_MSG = "duplicate order"
# Request weights of the signed endpoints (binance-api.md section 4); placing and cancelling
# weigh 1, the transport's default.
ACCOUNT_WEIGHT = 20
OPEN_ORDERS_WEIGHT = 6
OPEN_ORDERS_ALL_WEIGHT = 80
MY_TRADES_WEIGHT = 20
MY_TRADES_BY_ORDER_WEIGHT = 5
GET_ORDER_WEIGHT = 4


@dataclass(frozen=True, slots=True)
class BinanceBrokerConfig:
    """Where and how to trade. `base_url` (e.g. the emulator's) overrides `network`."""

    network: str = "testnet"
    base_url: str | None = None
    allow_live: bool = False
    timeout_s: float = 10.0
    recv_window_ms: int = 5000
    time_sync_s: float = 300.0
    exchange_info_ttl_s: float = 3600.0
    weight_headroom: float = 0.1      # keep this share of the per-minute weight limit unused
    check_before_submit: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.base_url is None and self.network not in NETWORKS:
            raise ConfigError(f"broker network must be one of {', '.join(NETWORKS)} (or give "
                              f"a base URL), not {self.network!r}")
        if self.base_url is not None and not str(self.base_url).startswith(("http://",
                                                                              "https://")):
            raise ConfigError(f"broker base URL {self.base_url!r} must start with http:// or "
                              "https://")
        host = urlsplit(str(self.base_url or "")).hostname or ""
        if host == "binance.com" or host.endswith(".binance.com"):
            raise ConfigError(f"broker base URL {self.base_url!r} is Binance's real exchange: "
                              "use network='mainnet' (the live opt-in and live keys apply)")
        if not self.timeout_s > 0:
            raise ConfigError("broker timeout must be above zero")
        if not 0 < self.recv_window_ms <= 60_000:
            raise ConfigError("broker recv_window_ms must be in 1..60000")
        if not 0 <= self.weight_headroom < 1:
            raise ConfigError("broker weight_headroom must be in [0, 1)")

    @property
    def venue(self) -> str:
        """mainnet, testnet or custom (an explicit base URL)."""
        return "custom" if self.base_url is not None else self.network


class BinanceBroker:
    """The Broker protocol over python-binance; see the module docstring."""

    def __init__(self, config: BinanceBrokerConfig = BinanceBrokerConfig(), *,
                 env: Mapping[str, str] = os.environ, rank: int | None = None,
                 deps: TimeDeps = TimeDeps()):
        self.config = config
        self.deps = deps
        self._keys: ApiKeys = read_keys(config.venue, env, rank, config.allow_live)
        client = make_client(config.base_url, key=self._keys.key, secret=self._keys.secret,
                             testnet=config.venue == "testnet", timeout_s=config.timeout_s,
                             recv_window_ms=config.recv_window_ms)
        self._transport = Transport(client, name="broker", retry=config.retry, deps=deps,
                                    time_sync_s=config.time_sync_s,
                                    weight_limit=DEFAULT_WEIGHT_LIMIT,
                                    headroom=config.weight_headroom)
        self._client = client
        self._info: dict[str, SymbolFilters] = {}
        self._info_at: float | None = None
        self._lists: dict[str, bool] = {}  # client id -> is an OCO list id
        self.stats = self._transport.stats
        self.stats.update({"ambiguous": 0, "resubmits": 0, "recovered": 0})
        self.sync_time()

    def __repr__(self) -> str:
        where = self.config.base_url or self.config.network
        return f"BinanceBroker({self.config.venue} at {where}, keys {self._keys!r})"

    def close(self) -> None:
        """Close the HTTP session."""
        self._transport.close()

    # -- transport -------------------------------------------------------------------------
    @property
    def offset_ms(self) -> int:
        """The server clock minus ours, as last measured."""
        return self._transport.offset_ms

    def sync_time(self) -> int:
        """Measure the server clock's offset from ours and sign with it from now on."""
        self._transport.sync_time()
        return self._transport.offset_ms

    def _call(self, what: str, fn: Callable[..., Any], *, safe: bool, signed: bool = True,
              weight: int = 1, **params) -> Any:
        """`fn(**params)` through the transport (signed by default; `weight` is the endpoint's
        request weight, binance-api.md section 4); see `Transport.call`."""
        return self._transport.call(what, fn, safe=safe, signed=signed, weight=weight, **params)

    # -- market rules ----------------------------------------------------------------------
    def _load_info(self) -> None:
        info = self._call("exchangeInfo", self._client.get_exchange_info, safe=True,
                          signed=False, weight=EXCHANGE_INFO_WEIGHT)
        self._transport.weight_limit = weight_limit_of(info, default=0)
        self._info = {s["symbol"]: SymbolFilters.from_symbol_info(s)
                      for s in info.get("symbols", [])}
        self._info_at = self.deps.clock()

    def filters(self, symbol: str) -> SymbolFilters:
        """The symbol's filters from the cached exchange info (UnknownSymbolError if absent)."""
        symbol = symbol.upper()
        now = self.deps.clock()
        stale = self._info_at is None or now - self._info_at > self.config.exchange_info_ttl_s
        if stale or (symbol not in self._info and now - self._info_at > 1.0):
            self._load_info()
        found = self._info.get(symbol)
        if found is None:
            raise UnknownSymbolError(f"{symbol}: not listed by the exchange's exchangeInfo "
                                     "(-1121)")
        return found

    # -- account ---------------------------------------------------------------------------
    def balances(self) -> dict[str, Balance]:
        """Free and locked amounts by asset (`GET /api/v3/account`)."""
        answer = self._call("account", self._client.get_account, safe=True,
                            weight=ACCOUNT_WEIGHT)
        out = {}
        for item in answer.get("balances", []):
            out[item["asset"]] = Balance(item["asset"], parse_decimal(item.get("free")),
                                         parse_decimal(item.get("locked")))
        return out

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        """Open orders (OCO legs one by one), oldest first."""
        params = {"symbol": symbol.upper()} if symbol else {}
        answer = self._call("openOrders", self._client.get_open_orders, safe=True,
                            weight=OPEN_ORDERS_WEIGHT if symbol else OPEN_ORDERS_ALL_WEIGHT,
                            **params)
        orders = [order_from(item) for item in answer]
        return sorted(orders, key=lambda o: (o.time_ms, o.order_id))

    def fills_since(self, symbol: str, *, time_ms: int | None = None,
                    trade_id: int | None = None) -> list[Fill]:
        """Trades of `symbol` from `time_ms` or from trade id `trade_id` (all when neither)."""
        if time_ms is not None and trade_id is not None:
            raise OrderRequestError("fills_since: give time_ms or trade_id, not both")
        symbol = symbol.upper()
        params: dict = {"symbol": symbol, "limit": 1000}
        if time_ms is not None:
            params["startTime"] = int(time_ms)
        else:
            params["fromId"] = int(trade_id or 0)
        fills: list[Fill] = []
        while True:
            page = self._call(f"{symbol} myTrades", self._client.get_my_trades, safe=True,
                              weight=MY_TRADES_WEIGHT, **params)
            fills.extend(fill_from_trade(item) for item in page)
            if len(page) < params["limit"]:
                break
            params.pop("startTime", None)
            params["fromId"] = int(page[-1]["id"]) + 1
        return sorted(fills, key=lambda f: f.trade_id)

    # -- orders ----------------------------------------------------------------------------
    def _get_order(self, symbol: str, client_id: str) -> Order | None:
        try:
            answer = self._call(f"{symbol} order {client_id}", self._client.get_order,
                                safe=True, weight=GET_ORDER_WEIGHT, symbol=symbol,
                                origClientOrderId=client_id)
        except OrderNotFoundError:
            return None
        return self._with_fills(order_from(answer))

    def _with_fills(self, order: Order) -> Order:
        """`order` with its fills (myTrades by orderId) when it traded: a query answer,
        unlike a FULL submit answer, carries none."""
        if order.executed_qty <= 0 or order.fills:
            return order
        trades = self._call(f"{order.symbol} myTrades of {order.client_id}",
                            self._client.get_my_trades, safe=True,
                            weight=MY_TRADES_BY_ORDER_WEIGHT, symbol=order.symbol,
                            orderId=order.order_id)
        found = tuple(sorted((fill_from_trade(t) for t in trades), key=lambda f: f.trade_id))
        return replace(order, fills=found)

    def _get_list(self, symbol: str, list_id: str) -> Order | None:
        tp_id, sl_id = leg_ids(list_id)
        take = self._get_order(symbol, tp_id)
        if take is None:
            return None
        stop = self._get_order(symbol, sl_id)
        legs = (take,) if stop is None else (take, stop)
        self._lists[list_id] = True
        return list_order(symbol, list_id, take.side, legs, take.list_id)

    def _lookup(self, symbol: str, client_id: str) -> Order | None:
        is_list = self._lists.get(client_id)
        if is_list is not True:
            found = self._get_order(symbol, client_id)
            if found is not None:
                self._lists[client_id] = False
                return found
        if is_list is not False and len(client_id) <= MAX_LIST_ID:
            return self._get_list(symbol, client_id)
        return None

    def query(self, symbol: str, client_id: str) -> Order:
        """The order (or OCO list) with this client id; OrderNotFoundError when unknown."""
        symbol = symbol.upper()
        found = self._lookup(symbol, client_id)
        if found is None:
            raise OrderNotFoundError(f"{symbol} order {client_id}: the exchange has no such "
                                     "order (-2013)", -2013, 400)
        return found

    def _settle(self, sent_ms: int) -> None:
        """Wait until a request signed at `sent_ms` can no longer pass the recvWindow check."""
        deadline = sent_ms + self.config.recv_window_ms + SETTLE_MARGIN_MS
        wait = (deadline - self._transport.server_ms()) / 1000
        if wait > 0:
            self.deps.sleep(wait)

    def submit(self, request: OrderRequest) -> Order:
        """Place `request` exactly once (see the module docstring) and return the order."""
        filters = self.filters(request.symbol)
        if request.type == "OCO" and request.side != "SELL":
            raise OrderRequestError(f"order {request.client_id}: OCO lists are protective "
                                    "exits of long positions: SELL only")
        req = prepare(request, filters)
        if req.type == "OCO":
            fn, params = self._client.create_oco_order, oco_params(req)
        else:
            fn, params = self._client.create_order, order_params(req)
        self._lists[req.client_id] = req.type == "OCO"
        what = f"{req.symbol} {req.type} {req.side} {req.client_id}"
        if self.config.check_before_submit:
            found = self._lookup(req.symbol, req.client_id)
            if found is not None:
                log.info("broker: %s: already placed (%s): not sent again", what, found.status)
                self.stats["recovered"] += 1
                return found
        policy = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = self._call(what, fn, safe=False, **params)
            except OrderRejectedError as exc:
                if DUPLICATE_MSG not in str(exc).lower():
                    raise
                found = self._lookup(req.symbol, req.client_id)
                if found is None:
                    raise
                log.info("broker: %s: duplicate: the order already exists (%s)", what,
                         found.status)
                self.stats["recovered"] += 1
                return found
            except Ambiguous as amb:
                self.stats["ambiguous"] += 1
                log.warning("broker: %s: %s: outcome unknown; checking by client id", what,
                            amb.problem)
                self._settle(self._transport.last_sent_ms)
                try:
                    found = self._lookup(req.symbol, req.client_id)
                except RetryableExchangeError as exc:
                    raise OrderStatusUnknownError(
                        f"{what}: sent, but its outcome is unknown ({amb.problem}; the query "
                        f"failed too: {exc}); query client id {req.client_id}",
                        req.client_id, amb.code, amb.status) from None
                if found is not None:
                    log.info("broker: %s: the exchange has it (%s)", what, found.status)
                    self.stats["recovered"] += 1
                    return found
                if attempt >= policy.attempts:
                    raise RetryableExchangeError(f"{what}: not placed after {attempt} attempts "
                                                 f"({amb.problem})", amb.code,
                                                 amb.status) from None
                log.warning("broker: %s: the exchange does not have it: sending it again "
                            "with the same client id", what)
                self.stats["resubmits"] += 1
                self.deps.sleep(policy.backoff(attempt))
                continue
            if req.type == "OCO":
                return oco_from(req, answer)
            return order_from(answer)

    def _cancel_one(self, symbol: str, client_id: str) -> Order | None:
        """Cancel one plain order; its final state, or None when the exchange has no order."""
        what = f"{symbol} cancel {client_id}"
        policy = self.config.retry
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = self._call(what, self._client.cancel_order, safe=False,
                                    symbol=symbol, origClientOrderId=client_id)
            except OrderNotFoundError:
                return self._get_order(symbol, client_id)  # already done, or never existed
            except Ambiguous as amb:
                self.stats["ambiguous"] += 1
                log.warning("broker: %s: %s: outcome unknown; checking the order", what,
                            amb.problem)
                self._settle(self._transport.last_sent_ms)
                try:
                    found = self._get_order(symbol, client_id)
                except RetryableExchangeError as exc:
                    raise OrderStatusUnknownError(f"{what}: outcome unknown ({amb.problem}; "
                                                  f"the query failed too: {exc})", client_id,
                                                  amb.code, amb.status) from None
                if found is None or not found.is_open:
                    self.stats["recovered"] += 1
                    return found
                if attempt >= policy.attempts:
                    raise RetryableExchangeError(f"{what}: still open after {attempt} "
                                                 f"attempts ({amb.problem})", amb.code,
                                                 amb.status) from None
                self.deps.sleep(policy.backoff(attempt))
                continue
            found = order_from(answer)
            if found.status != "CANCELED":
                return found
            # a cancel answer carries no fills or times: the order itself has them
            return self._get_order(symbol, client_id) or found

    def cancel(self, symbol: str, client_id: str) -> Order:
        """Cancel an order or OCO list; its final state (FILLED if it filled first)."""
        symbol = symbol.upper()
        current = self._lookup(symbol, client_id)
        if current is None:
            raise OrderNotFoundError(f"{symbol} cancel {client_id}: the exchange has no such "
                                     "order (-2011)", -2011, 400)
        if not current.legs:
            if not current.is_open:
                return current
            return self._cancel_one(symbol, client_id) or current
        for leg in current.legs:
            if leg.is_open:
                self._cancel_one(symbol, leg.client_id)
        return self._get_list(symbol, client_id) or current


# -- wire format -----------------------------------------------------------------------------
def order_params(req: OrderRequest) -> dict[str, str]:
    """`POST /api/v3/order` parameters of a prepared request, every number a decimal string."""
    params = {"symbol": req.symbol, "side": req.side, "type": req.type,
              "newClientOrderId": req.client_id, "newOrderRespType": "FULL"}
    if req.quantity is not None:
        params["quantity"] = decimal_text(req.quantity)
    if req.quote_amount is not None:
        params["quoteOrderQty"] = decimal_text(req.quote_amount.quantize(QUOTE_QUANTUM,
                                                                         ROUND_DOWN))
    if req.type not in ("MARKET", "STOP_LOSS"):
        params["timeInForce"] = req.time_in_force
        params["price"] = decimal_text(req.price)
    if req.stop_price is not None:
        params["stopPrice"] = decimal_text(req.stop_price)
    return params


def oco_params(req: OrderRequest) -> dict[str, str]:
    """`POST /api/v3/orderList/oco` parameters of a prepared SELL OCO: take profit
    (LIMIT_MAKER above) and the stop leg below (`base.oco_legs`)."""
    params = {"symbol": req.symbol, "side": req.side, "quantity": decimal_text(req.quantity),
              "listClientOrderId": req.client_id, "newOrderRespType": "FULL"}
    for pos, leg in zip(("above", "below"), oco_legs(req)):
        params[f"{pos}Type"] = leg.type
        params[f"{pos}ClientOrderId"] = leg.client_id
        if leg.price is not None:
            params[f"{pos}Price"] = decimal_text(leg.price)
        if leg.stop_price is not None:
            params[f"{pos}StopPrice"] = decimal_text(leg.stop_price)
        if leg.time_in_force is not None:
            params[f"{pos}TimeInForce"] = leg.time_in_force
    return params


def _price_or_none(text) -> Decimal | None:
    value = parse_decimal(text, None)
    return value if value is not None and value > 0 else None


def order_from(d: dict) -> Order:
    """An Order from an order answer (POST FULL/RESULT/ACK, GET order, openOrders, cancel)."""
    symbol = d.get("symbol", "")
    order_id = int(d.get("orderId", -1))
    side = d.get("side", "")
    t = int(d.get("transactTime", d.get("time", 0)) or 0)
    fills = tuple(Fill(symbol=symbol, order_id=order_id, trade_id=int(f.get("tradeId", -1)),
                       side=side, price=parse_decimal(f.get("price")),
                       qty=parse_decimal(f.get("qty")),
                       quote_qty=(parse_decimal(f.get("price")) * parse_decimal(f.get("qty"))
                                  ).quantize(QUOTE_QUANTUM, ROUND_HALF_UP),
                       commission=parse_decimal(f.get("commission")),
                       commission_asset=f.get("commissionAsset", ""), time_ms=t)
                  for f in d.get("fills", []) or [])
    return Order(symbol=symbol, client_id=d.get("clientOrderId", ""), side=side,
                 type=d.get("type", ""), status=d.get("status", "NEW"),
                 quantity=parse_decimal(d.get("origQty")),
                 executed_qty=parse_decimal(d.get("executedQty")),
                 cumulative_quote=parse_decimal(d.get("cummulativeQuoteQty")),
                 price=_price_or_none(d.get("price")),
                 stop_price=_price_or_none(d.get("stopPrice")), order_id=order_id,
                 list_id=int(d.get("orderListId", -1)), time_ms=t,
                 update_ms=int(d.get("updateTime", t) or t), fills=fills)


def oco_from(req: OrderRequest, d: dict) -> Order:
    """The Order of an OCO list answer (legs from `orderReports`, take profit first)."""
    reports = {r.get("clientOrderId"): order_from(r) for r in d.get("orderReports", [])}
    legs = tuple(reports[i] for i in req.leg_ids if i in reports)
    return list_order(req.symbol, req.client_id, req.side, legs, int(d.get("orderListId", -1)))


def fill_from_trade(d: dict) -> Fill:
    """A Fill from a `GET /api/v3/myTrades` item."""
    price, qty = parse_decimal(d.get("price")), parse_decimal(d.get("qty"))
    return Fill(symbol=d.get("symbol", ""), order_id=int(d.get("orderId", -1)),
                trade_id=int(d.get("id", -1)), side="BUY" if d.get("isBuyer") else "SELL",
                price=price, qty=qty, quote_qty=parse_decimal(d.get("quoteQty"), price * qty),
                commission=parse_decimal(d.get("commission")),
                commission_asset=d.get("commissionAsset", ""), time_ms=int(d.get("time", 0)),
                is_maker=bool(d.get("isMaker", False)))

