"""BinanceBroker: keys, client ids, decimal strings, error translation, clock offset,
Retry-After, idempotent submits, secrets, against the real python-binance client and the
project's emulator on real candles."""

from __future__ import annotations

import logging
import pickle
import re
import traceback
from decimal import Decimal

import pytest
from binance.exceptions import BinanceAPIException

from binance_cluster.exchange.broker import OrderRequest, client_order_id
from binance_cluster.exchange.broker.base import Broker, SymbolFilters, decimal_text, prepare
from binance_cluster.exchange.broker.binance import BinanceBroker, BinanceBrokerConfig, order_params
from binance_cluster.exchange.broker.errors import (AuthenticationError, ClockSkewError, FilterError,
                                           InsufficientBalanceError, OrderNotFoundError,
                                           OrderRejectedError, OrderRequestError)
from binance_cluster.exchange.broker.ids import CLIENT_ID_RE, leg_ids
from binance_cluster.exchange.broker.keys import ApiKeys, read_keys
from binance_cluster.errors import (ConfigError, ExchangeError, RateLimitError,
                                    RetryableExchangeError, UnknownSymbolError)
from binance_cluster.exchange.transport import (DEFAULT_BASE_URL, RetryPolicy, Transport,
                                                make_client, translate)
from binance_cluster.types import MINUTE_MS
from support.broker import ENV, KEY, SECRET, Sleeps, fill_key, order_key, trading  # noqa: F401
from support.emulator import FakeTime, fresh_weight_window, source_store  # noqa: F401

BTC_FILTERS = SymbolFilters("BTCUSDT", "BTC", "USDT", tick_size=Decimal("0.01"),
                            step_size=Decimal("0.00001"), min_qty=Decimal("0.00001"),
                            max_qty=Decimal("9000"), min_price=Decimal("0.01"),
                            max_price=Decimal("1000000"), min_notional=Decimal("5"))


# -- client order ids ------------------------------------------------------------------------
def test_client_order_ids_are_deterministic_short_and_distinct():
    a = client_order_id("demo-job", "BTCUSDT", 1_746_000_000_000, "entry")
    assert a == client_order_id("demo-job", "btcusdt", 1_746_000_000_000, "entry")
    assert CLIENT_ID_RE.match(a) and len(a) <= 36 and a.startswith("bcentry-")
    others = {client_order_id("demo-job2", "BTCUSDT", 1_746_000_000_000, "entry"),
              client_order_id("demo-job", "ETHUSDT", 1_746_000_000_000, "entry"),
              client_order_id("demo-job", "BTCUSDT", 1_746_000_060_000, "entry"),
              client_order_id("demo-job", "BTCUSDT", 1_746_000_000_000, "exit")}
    assert len(others) == 4 and a not in others
    long_intent = client_order_id("j" * 200, "BTCUSDT", 0, "take:profit/very-long-intent")
    assert CLIENT_ID_RE.match(long_intent) and len(long_intent) <= 36
    tp, sl = leg_ids(a)
    assert tp == a + "-tp" and sl == a + "-sl" and len(sl) <= 36 and CLIENT_ID_RE.match(sl)
    with pytest.raises(OrderRequestError, match="longer than 33"):
        leg_ids("x" * 34)
    with pytest.raises(OrderRequestError, match="client_id"):
        OrderRequest("BTCUSDT", "BUY", "MARKET", "my:id/1", quantity="0.001")


# -- keys ------------------------------------------------------------------------------------
def test_keys_come_from_the_environment_by_network():
    env = {"TEST_BINANCE_API_KEY": "tk", "TEST_BINANCE_API_SEC": "ts",
           "BINANCE_API_KEY": "lk", "BINANCE_API_SEC": "ls"}
    for network in ("testnet", "custom"):
        keys = read_keys(network, env, rank=0)
        assert (keys.key, keys.secret) == ("tk", "ts")
    with pytest.raises(ConfigError, match="--live flag"):
        read_keys("mainnet", env, rank=0)
    with pytest.raises(ConfigError, match="BINANCE_CLUSTER_LIVE=yes"):
        read_keys("mainnet", env, rank=0, allow_live=True)
    live = read_keys("mainnet", {**env, "BINANCE_CLUSTER_LIVE": "yes"}, rank=0, allow_live=True)
    assert (live.key, live.secret) == ("lk", "ls")
    with pytest.raises(ConfigError, match="TEST_BINANCE_API_SEC not set"):
        read_keys("testnet", {"TEST_BINANCE_API_KEY": "tk"}, rank=0)
    with pytest.raises(ConfigError, match="rank 0 only .this is rank 1"):
        read_keys("testnet", env, rank=1)
    with pytest.raises(ConfigError, match="this is rank 2"):
        read_keys("testnet", {**env, "PMI_RANK": "2"})


def test_keys_are_never_shown_or_pickled():
    keys = ApiKeys("visible-key-123", "visible-secret-456", "TEST_BINANCE_API_KEY/SEC")
    for text in (repr(keys), str(keys), f"{keys}"):
        assert "visible" not in text and "hidden" in text
    with pytest.raises(TypeError, match="rank 0"):
        pickle.dumps(keys)


def test_mainnet_broker_needs_the_explicit_opt_in():
    env = {"BINANCE_API_KEY": "lk", "BINANCE_API_SEC": "ls"}
    with pytest.raises(ConfigError, match="real money"):
        BinanceBroker(BinanceBrokerConfig(network="mainnet"), env=env)
    with pytest.raises(ConfigError, match="BINANCE_CLUSTER_LIVE"):
        BinanceBroker(BinanceBrokerConfig(network="mainnet", allow_live=True), env=env)
    with pytest.raises(ConfigError, match="must be one of"):
        BinanceBrokerConfig(network="moon")
    with pytest.raises(ConfigError, match="network='mainnet'"):
        BinanceBrokerConfig(base_url="https://api.binance.com")
    assert BinanceBrokerConfig(base_url="http://127.0.0.1:9").venue == "custom"


# -- order values ----------------------------------------------------------------------------
def test_orders_go_out_as_rounded_decimal_strings():
    tiny = prepare(OrderRequest("BTCUSDT", "BUY", "LIMIT", "t1", quantity=1e-05,
                                price=600000.0), BTC_FILTERS)
    params = order_params(tiny)
    assert params["quantity"] == "0.00001" and params["price"] == "600000"
    rounded = prepare(OrderRequest("BTCUSDT", "SELL", "STOP_LOSS_LIMIT", "t2",
                                   quantity="0.0123456", price="95000.126",
                                   stop_price=Decimal("95010.004")), BTC_FILTERS)
    params = order_params(rounded)
    assert params["quantity"] == "0.01234"
    assert params["price"] == "95000.13" and params["stopPrice"] == "95010"
    assert params["newClientOrderId"] == "t2" and params["newOrderRespType"] == "FULL"
    assert all(re.fullmatch(r"[0-9]+(\.[0-9]+)?", params[k])
               for k in ("quantity", "price", "stopPrice"))
    assert decimal_text(Decimal("1E-8")) == "0.00000001"
    with pytest.raises(FilterError, match="LOT_SIZE"):
        prepare(OrderRequest("BTCUSDT", "BUY", "LIMIT", "t3", quantity="0.000009",
                             price="90000"), BTC_FILTERS)
    with pytest.raises(FilterError, match="NOTIONAL"):
        prepare(OrderRequest("BTCUSDT", "BUY", "LIMIT", "t4", quantity="0.00001",
                             price="90000"), BTC_FILTERS)
    with pytest.raises(OrderRequestError, match="exactly one of quantity or quote_amount"):
        OrderRequest("BTCUSDT", "BUY", "MARKET", "t5", quantity="1", quote_amount="10")
    with pytest.raises(OrderRequestError, match="needs stop_price"):
        OrderRequest("BTCUSDT", "SELL", "OCO", "t6", quantity="1", price="10")
    with pytest.raises(OrderRequestError, match="finite"):
        OrderRequest("BTCUSDT", "SELL", "LIMIT", "t7", quantity=float("nan"), price="10")


def test_exchange_errors_map_to_the_project_tree():
    cases = [((400, -1121, "Invalid symbol."), UnknownSymbolError),
             ((400, -1013, "Filter failure: LOT_SIZE"), FilterError),
             ((400, -2010, "Account has insufficient balance for requested action."),
              InsufficientBalanceError),
             ((400, -2010, "Order would trigger immediately."), OrderRejectedError),
             ((400, -2013, "Order does not exist."), OrderNotFoundError),
             ((400, -2011, "Unknown order sent."), OrderNotFoundError),
             ((401, -2015, "Invalid API-key, IP, or permissions for action."),
              AuthenticationError),
             ((400, -1022, "Signature for this request is not valid."), AuthenticationError),
             ((400, -1021, "Timestamp for this request is outside of the recvWindow."),
              ClockSkewError),
             ((429, -1003, "Too much request weight used"), RateLimitError),
             ((503, -1008, "Server is currently overloaded"), RetryableExchangeError),
             ((400, -1100, "Illegal characters found in parameter 'quantity'"), ExchangeError)]
    for (status, code, msg), kind in cases:
        err = translate("BTCUSDT order", status, code, msg, 7.0)
        assert type(err) is kind, (code, type(err))
        assert "BTCUSDT order" in str(err) and msg in str(err)
        if isinstance(err, ExchangeError):
            assert (err.code, err.status) == (code, status)
    assert translate("x", 418, -1003, "banned", 9.0).retry_after == 9.0


def test_one_transport_builds_the_client_for_every_venue():
    mainnet = Transport.public()
    testnet = Transport(make_client(testnet=True, timeout_s=3, recv_window_ms=7000))
    custom = Transport(make_client("http://127.0.0.1:9/", testnet=True, key="k", secret="s"))
    assert mainnet.base_url == DEFAULT_BASE_URL and mainnet.weight_limit == 6000
    assert testnet.base_url == "https://testnet.binance.vision"  # python-binance's own
    assert testnet.client.REQUEST_RECVWINDOW == 7000 and testnet.weight_limit == 0
    assert custom.base_url == "http://127.0.0.1:9"  # an explicit URL wins over testnet
    for t in (mainnet, testnet, custom):
        t.close()


def test_the_environments_proxy_is_read_once_when_the_client_is_made(monkeypatch):
    """HTTP_PROXY / NO_PROXY are honoured as requests honours them, but read when the client
    is made (requests would read the environment again on every request)."""
    import http.server
    import threading

    seen = []

    class Proxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            body = b'{"serverTime": 1}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    proxy = http.server.HTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_port}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.3")
        through = Transport(make_client("http://127.0.0.2:9", timeout_s=5),
                            retry=RetryPolicy(attempts=1))
        direct = Transport(make_client("http://127.0.0.3:9", timeout_s=5),
                           retry=RetryPolicy(attempts=1))
        monkeypatch.delenv("HTTP_PROXY")         # read already: the client keeps its proxy
        assert through.sync_time() == 1
        assert seen == ["http://127.0.0.2:9/api/v3/time"]
        assert through.client.session.trust_env is False
        with pytest.raises(RetryableExchangeError):   # NO_PROXY: straight to the closed port
            direct.sync_time()
        assert len(seen) == 1
        through.close()
        direct.close()
    finally:
        proxy.shutdown()


# -- against the emulator --------------------------------------------------------------------
def test_a_tiny_quantity_reaches_the_exchange_as_a_decimal_string(trading, tmp_path):
    overrides = tmp_path / "symbols.json"
    overrides.write_text('{"BTCUSDT": {"min_notional": "0"}}')
    with trading(symbol_config=overrides) as venue:
        broker = venue.broker()
        order = broker.submit(OrderRequest("BTCUSDT", "BUY", "LIMIT", "tiny-1",
                                           quantity=0.00001, price=50000.0))
        assert order.status == "NEW" and order.quantity == Decimal("0.00001")
        raw = venue.client().get_order(symbol="BTCUSDT", origClientOrderId="tiny-1")
        assert raw["origQty"] == "0.00001000" and raw["price"] == "50000.00000000"
        # what python-binance does with the float itself: Binance's -1100
        with pytest.raises(BinanceAPIException) as caught:
            venue.client().create_order(symbol="BTCUSDT", side="BUY", type="LIMIT",
                                        timeInForce="GTC", quantity=0.00001, price="50000")
        assert caught.value.code == -1100 and "'quantity'" in caught.value.message


def test_trading_flow_agrees_with_the_exchange(trading):
    with trading(balances={"USDT": "10000"}) as venue:
        broker = venue.broker()
        assert isinstance(broker, Broker)
        t0 = venue.start_ms
        buy = broker.submit(OrderRequest("BTCUSDT", "BUY", "MARKET",
                                         client_order_id("flow", "BTCUSDT", t0, "entry"),
                                         quote_amount="1000"))
        assert buy.status == "FILLED" and buy.type == "MARKET" and len(buy.fills) == 1
        fill = buy.fills[0]
        candles = venue.store.read("BTCUSDT", "1m", t0, t0 + MINUTE_MS)
        assert fill.price == Decimal(repr(float(candles.open[0])))  # the forming candle's open
        assert buy.executed_qty == fill.qty and buy.avg_price == fill.price
        assert fill.commission_asset == "BTC" and fill.commission == (
            fill.qty * Decimal("0.001")).quantize(Decimal("1E-8"))
        held = buy.executed_qty - fill.commission
        price = buy.avg_price
        oco_id = client_order_id("flow", "BTCUSDT", t0, "protect")
        oco = broker.submit(OrderRequest("BTCUSDT", "SELL", "OCO", oco_id, quantity=held,
                                         price=price * Decimal("1.003"),
                                         stop_price=price * Decimal("0.997")))
        assert oco.type == "OCO" and oco.status == "NEW" and len(oco.legs) == 2
        assert [leg.type for leg in oco.legs] == ["LIMIT_MAKER", "STOP_LOSS_LIMIT"]
        assert {o.client_id for o in broker.open_orders("BTCUSDT")} == set(leg_ids(oco_id))
        limit = broker.submit(OrderRequest("BTCUSDT", "BUY", "LIMIT", "flow-dip",
                                           quantity="0.001", price=price * Decimal("0.8")))
        assert limit.status == "NEW"
        balances = broker.balances()
        assert balances["BTC"].locked == oco.quantity == broker.filters("BTCUSDT").floor_qty(held)
        assert balances["USDT"].locked == (Decimal("0.001") * limit.price).quantize(
            Decimal("1E-8"))
        canceled = broker.cancel("BTCUSDT", "flow-dip")
        assert canceled.status == "CANCELED" and broker.cancel("BTCUSDT", "flow-dip") == \
            canceled
        assert broker.balances()["USDT"].locked == 0
        venue.control.advance_replay(600 * MINUTE_MS)  # one leg of the OCO fills
        done = broker.query("BTCUSDT", oco_id)
        assert not done.is_open and done.status == "FILLED"
        assert sorted(leg.status for leg in done.legs) == ["EXPIRED", "FILLED"]
        truth = venue.truth(("BTCUSDT",))
        assert broker.open_orders() == [] == truth["open"]
        assert [fill_key(f) for f in broker.fills_since("BTCUSDT")] == \
            [fill_key(f) for f in truth["fills"]["BTCUSDT"]]
        assert [fill_key(f) for f in broker.fills_since("BTCUSDT", trade_id=2)] == \
            [fill_key(f) for f in truth["fills"]["BTCUSDT"][1:]]
        later = broker.fills_since("BTCUSDT", time_ms=t0 + 1)
        assert [f.trade_id for f in later] == [2]
        assert broker.balances() == truth["balances"]
        by_id = {o.client_id: o for o in truth["orders"]["BTCUSDT"]}
        assert sorted(by_id) == sorted([buy.client_id, "flow-dip", *leg_ids(oco_id)])
        assert order_key(broker.query("BTCUSDT", buy.client_id)) == order_key(
            by_id[buy.client_id])


def test_a_duplicate_of_an_open_order_is_resolved_by_a_query(trading):
    with trading() as venue:
        broker = venue.broker(check_before_submit=False)
        request = OrderRequest("BTCUSDT", "BUY", "LIMIT", "dup-1", quantity="0.001",
                               price="50000")
        first = broker.submit(request)
        again = broker.submit(request)  # the exchange answers -2010 "Duplicate order sent."
        assert first.status == again.status == "NEW" and again.order_id == first.order_id
        assert broker.stats["recovered"] == 1
        assert len(venue.client().get_all_orders(symbol="BTCUSDT")) == 1


def test_the_broker_layer_keeps_python_binance_off_worker_ranks():
    import subprocess
    import sys

    code = ("import sys, binance_cluster.exchange.broker as b; "
            "from binance_cluster.exchange.broker import base, ids, keys, errors; "
            "from binance_cluster.exchange import transport; "
            "assert not any(m == 'binance' or m.startswith(('binance.', "
            "'requests', 'numba', 'h5py')) for m in sys.modules), sorted(sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]


def test_a_restarted_process_does_not_place_the_same_decision_twice(trading):
    with trading() as venue:
        request = OrderRequest("ETHUSDT", "BUY", "MARKET",
                               client_order_id("restart", "ETHUSDT", venue.start_ms, "entry"),
                               quote_amount="500")
        first = venue.broker().submit(request)
        again = venue.broker().submit(request)  # a new process re-deriving the same decision
        assert again.order_id == first.order_id and again.status == "FILLED"
        assert [fill_key(f) for f in again.fills] == [fill_key(f) for f in first.fills]
        orders = venue.client().get_all_orders(symbol="ETHUSDT")
        assert [o["clientOrderId"] for o in orders] == [request.client_id]


def test_exchange_errors_are_translated(trading):
    with trading(balances={"USDT": "100"}) as venue:
        broker = venue.broker()
        with pytest.raises(InsufficientBalanceError) as caught:
            broker.submit(OrderRequest("BTCUSDT", "BUY", "MARKET", "big", quote_amount="5000"))
        assert caught.value.code == -2010 and caught.value.status == 400
        price = Decimal(venue.client().get_symbol_ticker(symbol="BTCUSDT")["price"])
        with pytest.raises(OrderRejectedError, match="trigger immediately"):
            broker.submit(OrderRequest("BTCUSDT", "BUY", "STOP_LOSS_LIMIT", "stop-now",
                                       quantity="0.0001", price=price * Decimal("0.9"),
                                       stop_price=price * Decimal("0.9")))
        with pytest.raises(OrderNotFoundError):
            broker.query("BTCUSDT", "never-sent")
        with pytest.raises(OrderNotFoundError):
            broker.cancel("BTCUSDT", "never-sent")
        with pytest.raises(UnknownSymbolError, match="XRPUSDT"):
            broker.submit(OrderRequest("XRPUSDT", "BUY", "MARKET", "x", quote_amount="10"))
        with pytest.raises(AuthenticationError, match="-2015"):
            BinanceBroker(BinanceBrokerConfig(base_url=venue.url),
                          env={**ENV, "TEST_BINANCE_API_KEY": "someoneElse"}).balances()
        assert venue.client().get_all_orders(symbol="BTCUSDT") == []


def test_exchange_info_is_downloaded_once(trading):
    with trading() as venue:
        broker = venue.broker()
        broker.filters("BTCUSDT")
        before = broker.stats["requests"]
        for _ in range(5):
            assert broker.filters("ETHUSDT").step_size > 0 and broker.filters("BTCUSDT")
        assert broker.stats["requests"] == before


def test_the_server_time_offset_is_measured_and_resynced(trading):
    with trading() as venue:
        venue.control.advance_server(30_000)  # the exchange's clock runs 30 s ahead of ours
        with pytest.raises(BinanceAPIException) as caught:
            venue.client().get_account()  # the bare sync client signs with our clock
        assert caught.value.code == -1021
        broker = venue.broker()
        assert abs(broker.offset_ms - 30_000) < 1_000
        assert broker.balances()["USDT"].free == Decimal("10000")
        resyncs = broker.stats["resyncs"]
        venue.control.advance_server(-60_000)  # now 30 s behind: the next call gets -1021
        assert broker.balances()["USDT"].free == Decimal("10000")
        assert broker.stats["resyncs"] == resyncs + 1 and abs(broker.offset_ms + 30_000) < 1_000


def test_a_lying_time_endpoint_ends_in_one_clear_clock_error(trading):
    with trading() as venue:
        broker = venue.broker()
        venue.control.set_faults(skew_ms=-20_000)  # /time lies; the exchange signs truthfully
        broker.sync_time()
        with pytest.raises(ClockSkewError, match="-1021"):
            broker.balances()
        venue.control.set_faults()  # the lie stops: the next -1021 resyncs and succeeds
        assert broker.balances()["USDT"].free == Decimal("10000")
        assert abs(broker.offset_ms) < 1_000


def test_the_broker_waits_for_the_next_weight_window_instead_of_drawing_a_429(trading):
    # exchangeInfo says 100 per minute: 90 usable. time (1) + exchangeInfo (20) + 3 account
    # (20 each) = 81 fit in one window; the 4th account call (101) waits for the next minute.
    with trading(weight_limit=100) as venue:
        fresh_weight_window(venue.control)
        fake = FakeTime(venue.control, signed=True)
        broker = BinanceBroker(BinanceBrokerConfig(base_url=venue.url, timeout_s=2.0),
                               env=ENV, deps=fake.deps)
        assert broker.filters("BTCUSDT").step_size > 0
        for _ in range(3):
            assert broker.balances()["USDT"].free == Decimal("10000")
        assert fake.slept == [] and broker.stats["throttle_waits"] == 0
        assert broker.balances()["USDT"].free == Decimal("10000")
        limiter = venue.control.faults()["limiter"]
    assert broker.stats["throttle_waits"] == 1 and len(fake.slept) == 1
    assert 0.5 <= fake.slept[0] <= 60.5
    assert limiter["refused_429"] == 0 and limiter["refused_418"] == 0


def test_retry_after_is_honoured_for_queries_and_submits(trading):
    with trading() as venue:
        sleeps = Sleeps(cap=0.0)
        broker = venue.broker(sleep=sleeps)
        venue.control.set_faults(queue=["429", "418"], paths=["/api/v3/account"],
                                 retry_after=3)
        assert broker.balances()["USDT"].free == Decimal("10000")
        assert sleeps.calls == [3.0, 3.0] and broker.stats["rate_limit_waits"] == 2
        venue.control.set_faults(queue=["ok", "429"], paths=["/api/v3/order"], retry_after=5)
        order = broker.submit(OrderRequest("BTCUSDT", "BUY", "MARKET", "after-429",
                                           quote_amount="100"))
        assert order.status == "FILLED" and sleeps.calls == [3.0, 3.0, 5.0]
        assert venue.control.faults()["counts"]["429"] == 1
        assert len(venue.client().get_all_orders(symbol="BTCUSDT")) == 1
        venue.control.set_faults(rates={"429": 1.0}, paths=["/api/v3/account"], retry_after=1)
        with pytest.raises(RateLimitError, match="still rate limited") as caught:
            venue.broker(sleep=Sleeps(cap=0.0)).balances()
        assert caught.value.retry_after == 1.0 and caught.value.status == 429


def test_keys_never_appear_in_logs_reprs_or_errors(trading, caplog):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    def keep(exc: BaseException) -> None:
        texts.append(str(exc))
        texts.append("".join(traceback.format_exception(exc)))

    wrong_secret = "wrongSecretZ9Y8X7W6V5U4T3S2R1Q0"
    with trading(balances={"USDT": "50"}) as venue:
        broker = venue.broker(timeout_s=0.3, recv_window_ms=300,
                              retry=RetryPolicy(attempts=2, base_s=0.01, cap_s=0.01))
        texts.append(repr(broker))
        for request in (OrderRequest("BTCUSDT", "BUY", "MARKET", "k1", quote_amount="5000"),
                        OrderRequest("BTCUSDT", "BUY", "LIMIT", "k2", quantity="0.000001",
                                     price="1")):
            with pytest.raises(ExchangeError) as caught:
                broker.submit(request)
            keep(caught.value)
        venue.control.set_faults(rates={"5xx": 1.0}, paths=["/api/v3/account"])
        with pytest.raises(RetryableExchangeError) as caught:
            broker.balances()
        keep(caught.value)
        venue.control.set_faults(rates={"delay": 1.0}, delay_s=0.5, paths=["/api/v3/account"])
        with pytest.raises(RetryableExchangeError) as caught:
            broker.balances()
        keep(caught.value)
        venue.control.set_faults()
        bad = BinanceBroker(BinanceBrokerConfig(base_url=venue.url),
                            env={**ENV, "TEST_BINANCE_API_SEC": wrong_secret})
        texts.append(repr(bad))
        with pytest.raises(AuthenticationError, match="-1022") as caught:
            bad.balances()
        keep(caught.value)
        with pytest.raises(ConfigError) as caught:
            read_keys("testnet", {"TEST_BINANCE_API_KEY": KEY}, rank=0)
        keep(caught.value)
    records = [r.getMessage() for r in caplog.records] + \
        [r.exc_text or "" for r in caplog.records]
    assert any("outcome" in t or "giving up" in t for t in texts + records)
    for secret in (KEY, SECRET, wrong_secret):
        assert not any(secret in t for t in texts), secret[:6]
        assert not any(secret in t for t in records), secret[:6]
