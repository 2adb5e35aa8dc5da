"""BinanceBroker under the emulator's injected faults: 5xx, 429, 418, delays past the client
timeout, dropped answers (order accepted, response lost), and seeded random mixes of all of
them. After every run, checked with a fault-free client: no client id twice in allOrders,
every intended order exactly once, and the broker's open orders, balances and fills equal
the exchange's."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal
from typing import Callable

import pytest

from binance_cluster.exchange.broker import OrderRequest, client_order_id
from binance_cluster.exchange.broker.binance import BinanceBroker
from binance_cluster.exchange.broker.errors import OrderNotFoundError, OrderStatusUnknownError
from binance_cluster.exchange.broker.ids import leg_ids
from binance_cluster.exchange.transport import RetryPolicy
from binance_cluster.types import MINUTE_MS
from support.broker import Sleeps, Venue, fill_key, order_key, trading  # noqa: F401
from support.emulator import source_store  # noqa: F401

SYMBOLS = ("BTCUSDT", "ETHUSDT")
TRADING_PATHS = ["/api/v3/order", "/api/v3/orderList/oco", "/api/v3/openOrders",
                 "/api/v3/account", "/api/v3/myTrades"]
RETRY = RetryPolicy(attempts=10, base_s=0.01, cap_s=0.05, rate_limit_waits=40)
TIMEOUT_S = 0.12       # the client gives up after this...
DELAY_S = 0.25         # ...an injected delay outlasts it...
RECV_WINDOW_MS = 350   # ...and still ends inside the request's recvWindow
LONG_DELAY_S = 0.6     # this one ends after it: the exchange would reject it (-1021)


def fault_broker(venue: Venue, sleep: Sleeps) -> BinanceBroker:
    return venue.broker(sleep=sleep, timeout_s=TIMEOUT_S, recv_window_ms=RECV_WINDOW_MS,
                        retry=RETRY)


def script(venue: Venue, broker: BinanceBroker, tag: str,
           arm: Callable[[int], None] = lambda lookups: None) -> dict[str, tuple[str, str, str]]:
    """Entries, a protective OCO, resting limits, a cancel, a clock step, an exit. Returns
    name -> (symbol, client id, kind) of every order it placed. `arm(n)` runs before each
    submit and cancel, whose first n requests are the broker's lookups (then the POST or
    DELETE itself)."""
    t0 = venue.start_ms
    placed: dict[str, tuple[str, str, str]] = {}

    def submit(name: str, **fields):
        symbol = fields["symbol"]
        cid = client_order_id(tag, symbol, t0, name)
        arm(1)
        order = broker.submit(OrderRequest(client_id=cid, **fields))
        assert order.client_id == cid, name
        placed[f"{symbol} {name}"] = (symbol, cid, fields["type"])
        return order

    btc = submit("entry", symbol="BTCUSDT", side="BUY", type="MARKET", quote_amount="1500")
    eth = submit("entry", symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.3")
    assert btc.status == eth.status == "FILLED" and btc.fills and eth.fills
    px, epx = btc.avg_price, eth.avg_price
    dip = submit("dip", symbol="BTCUSDT", side="BUY", type="LIMIT", quantity="0.001",
                 price=px * Decimal("0.9"))
    assert dip.status == "NEW"
    held = btc.executed_qty - btc.fills[0].commission
    guard = submit("guard", symbol="BTCUSDT", side="SELL", type="OCO", quantity=held,
                   price=px * Decimal("1.004"), stop_price=px * Decimal("0.996"))
    assert guard.status == "NEW" and len(guard.legs) == 2
    take = submit("take", symbol="ETHUSDT", side="SELL", type="LIMIT", quantity="0.1",
                  price=epx * Decimal("1.002"))
    assert take.status == "NEW"
    arm(1)
    assert broker.cancel("BTCUSDT", dip.client_id).status == "CANCELED"
    assert {o.client_id for o in broker.open_orders("BTCUSDT")} == set(leg_ids(guard.client_id))
    venue.control.advance_replay(90 * MINUTE_MS)
    if broker.query("BTCUSDT", guard.client_id).is_open:
        arm(2)
        assert broker.cancel("BTCUSDT", guard.client_id).status == "CANCELED"
    filters = broker.filters("BTCUSDT")
    free = filters.floor_qty(broker.balances()["BTC"].free)
    if free >= filters.min_qty and free * px >= filters.min_notional * 2:
        out = submit("exit", symbol="BTCUSDT", side="SELL", type="MARKET", quantity=free)
        assert out.status == "FILLED"
    return placed


def check_against_exchange(venue: Venue, broker: BinanceBroker,
                           placed: dict[str, tuple[str, str, str]]) -> None:
    """The account holds each intended order once and nothing else, and the broker's view
    (taken while faults may still be on) equals a fault-free client's."""
    views = {"open": broker.open_orders(), "balances": broker.balances(),
             "fills": {s: broker.fills_since(s) for s in SYMBOLS},
             "orders": {cid: broker.query(sym, cid) for sym, cid, _ in placed.values()}}
    venue.control.set_faults()
    truth = venue.truth(SYMBOLS)
    for symbol in SYMBOLS:
        counts = Counter(o.client_id for o in truth["orders"][symbol])
        assert all(n == 1 for n in counts.values()), counts.most_common(3)
        intended = set()
        for sym, cid, kind in placed.values():
            if sym == symbol:
                intended.update(leg_ids(cid) if kind == "OCO" else (cid,))
        assert set(counts) == intended, symbol
        assert [fill_key(f) for f in views["fills"][symbol]] == \
            [fill_key(f) for f in truth["fills"][symbol]]
    assert [order_key(o) for o in views["open"]] == [order_key(o) for o in truth["open"]]
    assert views["balances"] == truth["balances"]
    exchange = {o.client_id: o for s in SYMBOLS for o in truth["orders"][s]}
    for sym, cid, kind in placed.values():
        mine = views["orders"][cid]
        legs = mine.legs if kind == "OCO" else (mine,)
        assert [order_key(leg) for leg in legs] == \
            [order_key(exchange[leg.client_id]) for leg in legs]
        trades = [f for f in truth["fills"][sym] if f.order_id in {leg.order_id for leg in legs}]
        assert [fill_key(f) for leg in legs for f in leg.fills] == [fill_key(f) for f in trades]


def faulted(venue: Venue) -> Counter:
    """(kind, method, path) of every fault the emulator injected (its log holds 500)."""
    return Counter((e["kind"], e["method"], e["path"]) for e in venue.control.faults()["log"])


@pytest.mark.parametrize("kind", ["5xx", "429", "418", "delay", "drop"])
def test_every_fault_kind_leaves_each_order_placed_exactly_once(trading, kind):
    with trading(weight_limit=0) as venue:
        rate_limited = kind in ("429", "418")
        sleep = Sleeps(cap=0.0 if rate_limited else None)
        broker = fault_broker(venue, sleep)
        seeds = iter(range(100))

        def arm(lookups: int) -> None:  # the submit/cancel itself faulted, plus random noise
            venue.control.set_faults(reset_counts=False, seed=next(seeds),
                                     queue=["ok"] * lookups + [kind], rates={kind: 0.15},
                                     paths=TRADING_PATHS, retry_after=2, delay_s=DELAY_S)

        placed = script(venue, broker, f"faults-{kind}", arm)
        hits = faulted(venue)
        assert hits[(kind, "POST", "/api/v3/order")] >= 4
        assert hits[(kind, "POST", "/api/v3/orderList/oco")] >= 1
        assert hits[(kind, "DELETE", "/api/v3/order")] >= 1
        if rate_limited:  # every refusal waited its Retry-After, nothing else slept 2 s
            assert sleep.calls.count(2.0) == venue.control.faults()["counts"][kind]
            assert broker.stats["ambiguous"] == 0
        else:
            assert broker.stats["ambiguous"] >= 2
        if kind in ("drop", "delay"):  # carried out, answer lost or late: found, not re-sent
            assert broker.stats["recovered"] >= 4
        check_against_exchange(venue, broker, placed)


def test_a_delayed_submit_that_misses_its_recv_window_is_sent_again_once(trading):
    with trading(weight_limit=0) as venue:
        broker = fault_broker(venue, Sleeps())
        venue.control.set_faults(queue=["ok", "delay"], paths=["/api/v3/order"],
                                 delay_s=LONG_DELAY_S)
        order = broker.submit(OrderRequest("BTCUSDT", "BUY", "MARKET", "late-1",
                                           quote_amount="200"))
        assert order.status == "FILLED"
        assert broker.stats["ambiguous"] == 1 and broker.stats["resubmits"] == 1
        time.sleep(LONG_DELAY_S)  # the delayed copy reaches the exchange: -1021, not placed
        orders = venue.client().get_all_orders(symbol="BTCUSDT")
        assert [o["clientOrderId"] for o in orders] == ["late-1"]
        check_against_exchange(venue, broker, {"late": ("BTCUSDT", "late-1", "MARKET")})


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_random_fault_mixes_leave_the_account_consistent(trading, seed):
    with trading(weight_limit=0) as venue:
        sleep = Sleeps()
        broker = fault_broker(venue, sleep)
        venue.control.set_faults(seed=seed, rates={"5xx": 0.06, "429": 0.04, "418": 0.03,
                                                   "delay": 0.05, "drop": 0.07},
                                 retry_after=0, delay_s=DELAY_S)
        placed = script(venue, broker, f"mix-{seed}")
        counts = venue.control.faults()["counts"]
        assert sum(counts[k] for k in ("5xx", "429", "418", "delay", "drop")) >= 5
        assert sleep.calls.count(0.0) == counts["429"] + counts["418"]
        check_against_exchange(venue, broker, placed)


def test_an_outcome_that_cannot_be_established_is_reported_with_its_client_id(trading):
    with trading(weight_limit=0) as venue:
        broker = venue.broker(sleep=Sleeps(), timeout_s=TIMEOUT_S,
                              recv_window_ms=RECV_WINDOW_MS,
                              retry=RetryPolicy(attempts=3, base_s=0.01, cap_s=0.01))
        # the submit is answered 503, and every query about it afterwards too
        venue.control.set_faults(queue=["ok", "5xx"], rates={"5xx": 1.0},
                                 paths=["/api/v3/order"])
        with pytest.raises(OrderStatusUnknownError, match="query client id lost-1") as caught:
            broker.submit(OrderRequest("BTCUSDT", "BUY", "MARKET", "lost-1",
                                       quote_amount="100"))
        assert caught.value.client_id == "lost-1" and caught.value.status == 503
        venue.control.set_faults()
        with pytest.raises(OrderNotFoundError):  # the 503 came before matching: never placed
            broker.query("BTCUSDT", "lost-1")
