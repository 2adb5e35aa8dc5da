"""The emulator's trading half, exercised with the real python-binance client over HTTP.

Fill prices are checked against `binance_cluster.kernels.fills` applied to the candle the fill
must come from, found here by a plain scan of the stored candles.
"""

from __future__ import annotations

import json
import math
import time
from decimal import Decimal

import pytest
import requests
from binance import Client
from binance.exceptions import BinanceAPIException

from binance_cluster.exchange.emulator import EmulatorConfig
from binance_cluster.exchange.emulator.server import run_emulator_server
from binance_cluster.kernels import fills
from binance_cluster.types import MINUTE_MS
from support.emulator import build_store, emulator, source_store  # noqa: F401

KEY, SECRET = "traderKey1", "traderSecret1"
MAKER, TAKER = Decimal("0.0002"), Decimal("0.0007")
START = 1000          # trading starts 5 s into this candle of each symbol
TICK = 0.01           # BTCUSDT's derived tick
STEP = Decimal("0.00001")

ACK_KEYS = ["symbol", "orderId", "orderListId", "clientOrderId", "transactTime"]
RESULT_KEYS = ACK_KEYS + ["price", "origQty", "executedQty", "origQuoteOrderQty",
                          "cummulativeQuoteQty", "status", "timeInForce", "type", "side",
                          "workingTime", "selfTradePreventionMode"]
FULL_KEYS = RESULT_KEYS + ["fills"]                                       # section 11.2
FILL_KEYS = ["price", "qty", "commission", "commissionAsset", "tradeId"]
QUERY_KEYS = ["symbol", "orderId", "orderListId", "clientOrderId", "price", "origQty",
              "executedQty", "cummulativeQuoteQty", "status", "timeInForce", "type", "side",
              "stopPrice", "icebergQty", "time", "updateTime", "isWorking", "workingTime",
              "origQuoteOrderQty", "selfTradePreventionMode"]             # section 11.5
CANCEL_KEYS = ["symbol", "origClientOrderId", "orderId", "orderListId", "clientOrderId",
               "transactTime", "price", "origQty", "executedQty", "origQuoteOrderQty",
               "cummulativeQuoteQty", "status", "timeInForce", "type", "side",
               "selfTradePreventionMode"]                                 # section 11.7
ACCOUNT_KEYS = ["makerCommission", "takerCommission", "buyerCommission", "sellerCommission",
                "commissionRates", "canTrade", "canWithdraw", "canDeposit", "brokered",
                "requireSelfTradePrevention", "preventSor", "updateTime", "accountType",
                "balances", "permissions", "uid"]                         # section 11.4
LIST_KEYS = ["orderListId", "contingencyType", "listStatusType", "listOrderStatus",
             "listClientOrderId", "transactionTime", "symbol", "orders", "orderReports"]
TRADE_KEYS = ["symbol", "id", "orderId", "orderListId", "price", "qty", "quoteQty",
              "commission", "commissionAsset", "time", "isBuyer", "isMaker", "isBestMatch"]


def D(x) -> Decimal:
    return Decimal(repr(float(x))) if isinstance(x, float) else Decimal(str(x))


def price_text(x: float) -> str:
    return f"{D(x):.2f}"


def api_error(fn, *args, **kwargs) -> BinanceAPIException:
    with pytest.raises(BinanceAPIException) as info:
        fn(*args, **kwargs)
    return info.value


@pytest.fixture(scope="module")
def accounts_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("accounts") / "accounts.json"
    path.write_text(json.dumps({
        KEY: {"secret": SECRET, "balances": {"USDT": "10000", "BTC": "0.5"},
              "maker_commission": str(MAKER), "taker_commission": str(TAKER)},
        "otherKey2": {"secret": "otherSecret2", "balances": {"USDT": "50"}}}))
    return path


@pytest.fixture(scope="module")
def btc(source_store):
    return source_store.read("BTCUSDT", "1m")


def at(candles, k: int, seconds: int = 5) -> int:
    """Replay time `seconds` into candle k."""
    return int(candles.open_time[k]) + seconds * 1000


def after(candles, k: int) -> int:
    """Replay time just after candle k has closed."""
    return int(candles.open_time[k]) + MINUTE_MS + 1


@pytest.fixture
def exchange(emulator, accounts_file, btc):
    """Factory: `with exchange(**config) as (client, control)` trading BTCUSDT from candle
    START with the test accounts (maker 0.02 %, taker 0.07 %)."""
    from contextlib import contextmanager

    @contextmanager
    def start(key=KEY, secret=SECRET, **overrides):
        settings = {"start_ms": at(btc, START), "accounts": accounts_file}
        settings.update(overrides)
        with emulator(**settings) as (url, control):
            client = Client(key, secret, ping=False)
            client.API_URL = url + "/api"
            yield client, control

    return start


def balances(client) -> dict[str, tuple[Decimal, Decimal]]:
    return {b["asset"]: (Decimal(b["free"]), Decimal(b["locked"]))
            for b in client.get_account()["balances"]}


def oco_sell(client, qty: str, target: str, stop: str, limit: str, **extra):
    return client.create_oco_order(symbol="BTCUSDT", side="SELL", quantity=qty,
                                   aboveType="LIMIT_MAKER", abovePrice=target,
                                   belowType="STOP_LOSS_LIMIT", belowStopPrice=stop,
                                   belowPrice=limit, belowTimeInForce="GTC", **extra)


# -- market orders -----------------------------------------------------------------------------
def test_market_orders_fill_at_the_forming_open_with_slippage(exchange, btc):
    open_ = float(btc.open[START])
    with exchange(slippage_bps=5.0) as (client, _):
        before = balances(client)
        buy = client.create_order(symbol="BTCUSDT", side="BUY", type="MARKET",
                                  quantity="0.01000")
        counts = [client.response.headers[h] for h in ("X-MBX-ORDER-COUNT-10S",
                                                        "X-MBX-ORDER-COUNT-1D")]
        sell = client.order_market_sell(symbol="BTCUSDT", quantity="0.004")
        after_ = balances(client)
    assert list(buy) == FULL_KEYS and list(buy["fills"][0]) == FILL_KEYS
    buy_px = D(fills.market_buy_price(open_, 0.0005, TICK))
    sell_px = D(fills.market_sell_price(open_, 0.0005, TICK))
    assert buy_px > D(open_) > sell_px  # slippage against the trader, on the tick
    assert Decimal(buy["fills"][0]["price"]) == buy_px
    assert Decimal(sell["fills"][0]["price"]) == sell_px
    assert (buy["status"], buy["type"], buy["side"], buy["price"]) == \
        ("FILLED", "MARKET", "BUY", "0.00000000")
    assert buy["transactTime"] == at(btc, START) and buy["orderListId"] == -1
    assert buy["clientOrderId"].startswith("x-HNA2TXFJ")  # python-binance's own id
    assert counts == ["1", "1"]
    buy_quote = (Decimal("0.01") * buy_px).quantize(Decimal("1e-8"))
    sell_quote = (Decimal("0.004") * sell_px).quantize(Decimal("1e-8"))
    assert Decimal(buy["cummulativeQuoteQty"]) == buy_quote
    buy_fee = Decimal("0.01") * TAKER                     # in the asset received: BTC
    sell_fee = (sell_quote * TAKER).quantize(Decimal("1e-8"))   # USDT
    assert (Decimal(buy["fills"][0]["commission"]), buy["fills"][0]["commissionAsset"]) == \
        (buy_fee, "BTC")
    assert (Decimal(sell["fills"][0]["commission"]), sell["fills"][0]["commissionAsset"]) == \
        (sell_fee, "USDT")
    assert after_["USDT"][0] == before["USDT"][0] - buy_quote + sell_quote - sell_fee
    assert after_["BTC"][0] == before["BTC"][0] + Decimal("0.01") - buy_fee - Decimal("0.004")


def test_quote_order_qty_buys_what_the_quote_pays_for_rounded_to_the_lot(exchange, btc):
    with exchange() as (client, _):
        order = client.order_market_buy(symbol="BTCUSDT", quoteOrderQty="100")
    px = float(btc.open[START])
    qty = D(fills.floor_to_step(100 / px, float(STEP)))
    assert Decimal(order["executedQty"]) == Decimal(order["origQty"]) == qty
    assert Decimal(order["origQuoteOrderQty"]) == 100
    assert Decimal(order["cummulativeQuoteQty"]) == (qty * D(px)).quantize(Decimal("1e-8"))
    assert Decimal(order["cummulativeQuoteQty"]) <= 100 < (qty + STEP) * D(px)


def test_market_order_in_a_data_gap_fills_at_the_next_stored_open(exchange, btc, shared_data,
                                                                   tmp_path):
    gapped = build_store(tmp_path / "gapped", shared_data, symbols=("BTCUSDT",), rows=1100,
                         drop={"BTCUSDT": [1001, 1002, 1003]})
    with exchange(store=gapped, start_ms=at(btc, 1002)) as (client, _):
        order = client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
    assert Decimal(order["fills"][0]["price"]) == D(btc.open[1004])
    assert order["transactTime"] == at(btc, 1002)


def test_market_closed_after_the_last_candle(exchange, btc):
    with exchange(start_ms=int(btc.open_time[-1]) + 2 * MINUTE_MS) as (client, _):
        err = api_error(client.order_market_buy, symbol="BTCUSDT", quantity="0.001")
    assert (err.status_code, err.code, err.message) == (400, -2010, "Market is closed.")


# -- limit orders ------------------------------------------------------------------------------
def test_crossing_limit_fills_at_once_as_taker_at_the_current_price(exchange, btc):
    open_ = float(btc.open[START])
    with exchange() as (client, _):
        order = client.order_limit_buy(symbol="BTCUSDT", quantity="0.002",
                                       price=price_text(open_ + 50))
        ioc = client.create_order(symbol="BTCUSDT", side="BUY", type="LIMIT",
                                  timeInForce="IOC", quantity="0.002",
                                  price=price_text(open_ - 50))
    assert list(order) == FULL_KEYS
    assert order["status"] == "FILLED"
    assert Decimal(order["fills"][0]["price"]) == D(open_)
    assert Decimal(order["fills"][0]["commission"]) == Decimal("0.002") * TAKER
    assert (ioc["status"], ioc["executedQty"], ioc["fills"]) == ("EXPIRED", "0.00000000", [])


def test_resting_limit_fills_when_a_later_candle_reaches_it(exchange, btc):
    k = START
    price = float(btc.low[k]) - 20  # below the placement candle's low
    j = next(i for i in range(k + 1, len(btc)) if btc.low[i] <= price)
    expected = D(fills.buy_limit_fill(float(btc.open[j]), float(btc.low[j]), price))
    with exchange() as (client, control):
        order = client.order_limit_buy(symbol="BTCUSDT", quantity="0.01",
                                       price=price_text(price))
        locked = balances(client)["USDT"][1]
        control.set_replay(at(btc, j, 59))  # candle j still forming
        waiting = client.get_order(symbol="BTCUSDT", orderId=order["orderId"])
        control.set_replay(after(btc, j))
        done = client.get_order(symbol="BTCUSDT", orderId=order["orderId"])
        trades = client.get_my_trades(symbol="BTCUSDT")
        final = balances(client)
    assert order["status"] == "NEW" and order["fills"] == []
    assert locked == (Decimal("0.01") * D(price)).quantize(Decimal("1e-8"))
    assert waiting["status"] == "NEW" and list(waiting) == QUERY_KEYS
    assert done["status"] == "FILLED" and list(done) == QUERY_KEYS
    assert done["updateTime"] == int(btc.open_time[j]) + MINUTE_MS - 1  # the candle's close
    assert Decimal(trades[0]["price"]) == expected == D(price)
    assert list(trades[0]) == TRADE_KEYS
    assert trades[0]["isMaker"] is True and Decimal(trades[0]["commission"]) == \
        Decimal("0.01") * MAKER
    assert final["USDT"] == (Decimal("10000") - (Decimal("0.01") * expected), Decimal(0))


def test_resting_limit_fills_at_the_open_when_a_candle_gaps_through_it(exchange, btc):
    j = next(i for i in range(START + 1, len(btc) - 1)
             if float(btc.open[i]) + 0.02 < float(btc.low[i - 1]))
    k = j - 1  # place in the candle before the gap
    price = fills.floor_to_step(float(btc.low[k]) - 0.01, TICK)
    assert float(btc.open[j]) < price < float(btc.low[k])
    with exchange(start_ms=at(btc, k)) as (client, control):
        order = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001",
                                       price=price_text(price))
        control.set_replay(after(btc, j))
        trade = client.get_my_trades(symbol="BTCUSDT")[0]
    assert order["status"] == "NEW"
    expected = fills.buy_limit_fill(float(btc.open[j]), float(btc.low[j]), price)
    assert expected == float(btc.open[j])  # the gap rule: the open, better than the limit
    assert Decimal(trade["price"]) == D(expected)


def test_resting_from_next_ignores_the_placement_candle(exchange, btc):
    k = START
    price = fills.ceil_to_step(float(btc.low[k]), TICK)  # touched in the placement candle
    assert float(btc.open[k]) > price
    j = next(i for i in range(k + 1, len(btc)) if btc.low[i] <= price)
    with exchange(resting_from="next") as (client, control):
        order = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001",
                                       price=price_text(price))
        control.set_replay(after(btc, k))
        waiting = client.get_order(symbol="BTCUSDT", orderId=order["orderId"])["status"]
        control.set_replay(after(btc, j))
        trade = client.get_my_trades(symbol="BTCUSDT")[0]
    assert waiting == "NEW"
    assert trade["time"] == int(btc.open_time[j]) + MINUTE_MS - 1
    with exchange() as (client, control):  # default: the placement candle counts
        client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price=price_text(price))
        control.set_replay(after(btc, k))
        assert client.get_my_trades(symbol="BTCUSDT")[0]["time"] == \
            int(btc.open_time[k]) + MINUTE_MS - 1


def test_limit_maker_rests_or_is_rejected_when_it_would_take(exchange, btc):
    open_ = float(btc.open[START])
    with exchange() as (client, _):
        maker = client.create_order(symbol="BTCUSDT", side="SELL", type="LIMIT_MAKER",
                                    quantity="0.01", price=price_text(open_ + 100))
        err = api_error(client.create_order, symbol="BTCUSDT", side="SELL",
                        type="LIMIT_MAKER", quantity="0.01", price=price_text(open_))
        locked = balances(client)["BTC"][1]
        query = client.get_order(symbol="BTCUSDT", orderId=maker["orderId"])
    assert list(maker) == ACK_KEYS  # ACK is the default for non-MARKET/LIMIT types
    assert (query["status"], query["timeInForce"], query["type"]) == \
        ("NEW", "GTC", "LIMIT_MAKER")
    assert locked == Decimal("0.01")
    assert (err.status_code, err.code, err.message) == \
        (400, -2010, "Order would immediately match and take.")


# -- stop orders -------------------------------------------------------------------------------
def test_stop_loss_limit_triggers_on_a_later_candle_and_fills_at_the_stop(exchange, btc):
    k = START
    stop = fills.floor_to_step(float(btc.low[k]) - 30, TICK)
    limit = stop - 10
    j = next(i for i in range(k + 1, len(btc)) if btc.low[i] <= stop)
    trigger = fills.sell_stop_fill(float(btc.open[j]), float(btc.low[j]), stop)
    with exchange() as (client, control):
        placed = client.create_order(symbol="BTCUSDT", side="SELL", type="STOP_LOSS_LIMIT",
                                     timeInForce="GTC", quantity="0.01",
                                     price=price_text(limit), stopPrice=price_text(stop),
                                     newOrderRespType="RESULT")
        before = client.get_order(symbol="BTCUSDT", orderId=placed["orderId"])
        control.set_replay(after(btc, j))
        done = client.get_order(symbol="BTCUSDT", orderId=placed["orderId"])
        trade = client.get_my_trades(symbol="BTCUSDT")[0]
        err = api_error(client.create_order, symbol="BTCUSDT", side="SELL",
                        type="STOP_LOSS_LIMIT", timeInForce="GTC", quantity="0.01",
                        price=price_text(float(btc.high[j]) + 10),
                        stopPrice=price_text(float(btc.high[j]) + 20))
    assert list(placed) == RESULT_KEYS[:-2] + ["stopPrice", "workingTime",
                                               "selfTradePreventionMode"]
    assert placed["workingTime"] == -1 and before["isWorking"] is False
    assert done["status"] == "FILLED" and done["workingTime"] > 0
    assert Decimal(trade["price"]) == D(trigger) and trade["isMaker"] is False
    assert (err.code, err.message) == (-2010, "Order would trigger immediately.")


def test_take_profit_limit_sell_triggers_on_a_rise(exchange, btc):
    k = START
    level = fills.ceil_to_step(float(btc.high[k]) + 20, TICK)
    j = next(i for i in range(k + 1, len(btc)) if btc.high[i] >= level)
    trigger = fills.sell_limit_fill(float(btc.open[j]), float(btc.high[j]), level)
    with exchange() as (client, control):
        client.create_order(symbol="BTCUSDT", side="SELL", type="TAKE_PROFIT_LIMIT",
                            timeInForce="GTC", quantity="0.01", price=price_text(level),
                            stopPrice=price_text(level))
        control.set_replay(after(btc, j - 1))
        assert client.get_my_trades(symbol="BTCUSDT") == []
        control.set_replay(after(btc, j))
        trade = client.get_my_trades(symbol="BTCUSDT")[0]
    assert Decimal(trade["price"]) == D(trigger)


# -- OCO ---------------------------------------------------------------------------------------
def _inside_candle(btc, start: int) -> int:
    """A candle from `start` whose open has at least 2 ticks of room above and below."""
    return next(i for i in range(start, len(btc))
                if btc.high[i] - btc.open[i] > 0.05 and btc.open[i] - btc.low[i] > 0.05)


def test_oco_stop_first_when_both_legs_are_touched_in_one_candle(exchange, btc):
    k = _inside_candle(btc, START)
    o, h, lo = float(btc.open[k]), float(btc.high[k]), float(btc.low[k])
    target = fills.floor_to_step(h, TICK)
    stop = fills.ceil_to_step(lo, TICK)
    px, kind = fills.long_exit_fill(o, h, lo, stop, target)
    assert kind == fills.STOP_FILL  # both inside the candle: the stop wins
    with exchange(start_ms=at(btc, k)) as (client, control):
        oco = oco_sell(client, "0.2", price_text(target), price_text(stop),
                       price_text(stop - 5), listClientOrderId="myList1",
                       belowClientOrderId="myStop1", aboveClientOrderId="myTarget1")
        count = client.response.headers["X-MBX-ORDER-COUNT-10S"]
        locked = balances(client)["BTC"]
        control.set_replay(after(btc, k))
        stop_leg = client.get_order(symbol="BTCUSDT", origClientOrderId="myStop1")
        target_leg = client.get_order(symbol="BTCUSDT", origClientOrderId="myTarget1")
        trades = client.get_my_trades(symbol="BTCUSDT")
        final = balances(client)
    assert list(oco) == LIST_KEYS
    assert (oco["contingencyType"], oco["listStatusType"], oco["listOrderStatus"],
            oco["listClientOrderId"]) == ("OCO", "EXEC_STARTED", "EXECUTING", "myList1")
    assert [o_["clientOrderId"] for o_ in oco["orders"]] == ["myStop1", "myTarget1"]
    assert [r["type"] for r in oco["orderReports"]] == ["STOP_LOSS_LIMIT", "LIMIT_MAKER"]
    assert oco["orderReports"][0]["workingTime"] == -1
    assert oco["orderReports"][1]["workingTime"] == at(btc, k)
    assert count == "2"  # an OCO counts two orders
    assert locked == (Decimal("0.3"), Decimal("0.2"))  # one lock for both legs
    assert stop_leg["status"] == "FILLED"
    assert target_leg["status"] == "EXPIRED" and target_leg["expiryReason"] == "OCO_TRIGGER"
    assert len(trades) == 1 and Decimal(trades[0]["price"]) == D(px) == D(stop)
    assert trades[0]["orderListId"] == oco["orderListId"]
    proceeds = (Decimal("0.2") * D(px)).quantize(Decimal("1e-8"))
    fee = (proceeds * TAKER).quantize(Decimal("1e-8"))
    assert final["BTC"] == (Decimal("0.3"), Decimal(0))
    assert final["USDT"] == (Decimal("10000") + proceeds - fee, Decimal(0))


def test_oco_target_leg_fills_at_its_price_and_expires_the_stop(exchange, btc):
    k = START
    stop = fills.floor_to_step(float(btc.low[k:k + 400].min()) - 1, TICK)  # never reached
    target = fills.ceil_to_step(float(btc.high[k]) + 15, TICK)
    j = next(i for i in range(k + 1, k + 400) if btc.high[i] >= target)
    px, kind = fills.long_exit_fill(float(btc.open[j]), float(btc.high[j]), float(btc.low[j]),
                                    stop, target)
    with exchange() as (client, control):
        oco = oco_sell(client, "0.1", price_text(target), price_text(stop),
                       price_text(stop - 5))
        control.set_replay(after(btc, j))
        legs = [client.get_order(symbol="BTCUSDT", orderId=o_["orderId"])
                for o_ in oco["orders"]]
        trade = client.get_my_trades(symbol="BTCUSDT")[0]
    assert kind == fills.TARGET_FILL
    assert [leg["status"] for leg in legs] == ["EXPIRED", "FILLED"]
    assert Decimal(trade["price"]) == D(px) and trade["isMaker"] is True


def test_buy_oco_mirrors_the_sell_rules(exchange, btc):
    k = START
    stop = fills.ceil_to_step(float(btc.high[k]) + 10, TICK)          # buy stop above
    target = fills.floor_to_step(float(btc.low[k]) - 10, TICK)        # buy take profit below
    j = next(i for i in range(k + 1, len(btc)) if btc.high[i] >= stop or btc.low[i] <= target)
    o, h, lo = float(btc.open[j]), float(btc.high[j]), float(btc.low[j])
    stop_px = fills.buy_stop_fill(o, h, stop)
    expected = stop_px if not math.isnan(stop_px) else fills.buy_limit_fill(o, lo, target)
    with exchange() as (client, control):
        oco = client.create_oco_order(
            symbol="BTCUSDT", side="BUY", quantity="0.01", aboveType="STOP_LOSS_LIMIT",
            aboveStopPrice=price_text(stop), abovePrice=price_text(stop + 50),
            aboveTimeInForce="GTC", belowType="TAKE_PROFIT_LIMIT",
            belowStopPrice=price_text(target), belowPrice=price_text(target),
            belowTimeInForce="GTC")
        locked = balances(client)["USDT"][1]
        control.set_replay(after(btc, j))
        trade = client.get_my_trades(symbol="BTCUSDT")[0]
        open_after = client.get_open_orders(symbol="BTCUSDT")
    assert [r["type"] for r in oco["orderReports"]] == ["TAKE_PROFIT_LIMIT", "STOP_LOSS_LIMIT"]
    assert locked == (Decimal("0.01") * D(stop + 50)).quantize(Decimal("1e-8"))
    assert Decimal(trade["price"]) == D(expected)
    assert open_after == []


# -- queries, cancels, account -----------------------------------------------------------------
def test_get_cancel_open_orders_and_cancel_all(exchange, btc):
    open_ = float(btc.open[START])
    with exchange() as (client, _):
        a = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001",
                                   price=price_text(open_ - 500), newClientOrderId="buyLow")
        b = client.order_limit_sell(symbol="BTCUSDT", quantity="0.001",
                                    price=price_text(open_ + 500))
        oco = oco_sell(client, "0.01", price_text(open_ + 800), price_text(open_ - 800),
                       price_text(open_ - 810))
        by_client = client.get_order(symbol="BTCUSDT", origClientOrderId="buyLow")
        listed = client.get_open_orders(symbol="BTCUSDT")
        everywhere = client.get_open_orders()
        canceled = client.cancel_order(symbol="BTCUSDT", orderId=a["orderId"],
                                       newClientOrderId="cancelBuyLow")
        again = api_error(client.cancel_order, symbol="BTCUSDT", orderId=a["orderId"])
        rest = client.cancel_all_open_orders(symbol="BTCUSDT")
        nothing = api_error(client.cancel_all_open_orders, symbol="BTCUSDT")
        final = balances(client)
        states = [client.get_order(symbol="BTCUSDT", orderId=o_["orderId"])["status"]
                  for o_ in [a, b] + oco["orders"]]
    assert by_client["orderId"] == a["orderId"]
    assert [o_["orderId"] for o_ in listed] == [a["orderId"], b["orderId"]] + \
        [o_["orderId"] for o_ in oco["orders"]]
    assert everywhere == listed and all(list(o_) == QUERY_KEYS for o_ in listed)
    assert list(canceled) == CANCEL_KEYS
    assert (canceled["status"], canceled["origClientOrderId"], canceled["clientOrderId"]) == \
        ("CANCELED", "buyLow", "cancelBuyLow")
    assert (again.status_code, again.code, again.message) == (400, -2011, "Unknown order sent.")
    assert len(rest) == 2 and list(rest[0]) == CANCEL_KEYS and list(rest[1]) == LIST_KEYS
    assert (rest[1]["listStatusType"], rest[1]["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert [r["status"] for r in rest[1]["orderReports"]] == ["CANCELED", "CANCELED"]
    assert (nothing.code, nothing.message) == (-2011, "Unknown order sent.")
    assert states == ["CANCELED"] * 4
    assert final["USDT"] == (Decimal("10000"), Decimal(0))
    assert final["BTC"] == (Decimal("0.5"), Decimal(0))


def test_cancelling_one_oco_leg_cancels_the_list(exchange, btc):
    open_ = float(btc.open[START])
    with exchange() as (client, _):
        oco = oco_sell(client, "0.01", price_text(open_ + 800), price_text(open_ - 800),
                       price_text(open_ - 810))
        report = client.cancel_order(symbol="BTCUSDT", orderId=oco["orders"][1]["orderId"])
        states = [client.get_order(symbol="BTCUSDT", orderId=o_["orderId"])["status"]
                  for o_ in oco["orders"]]
        locked = balances(client)["BTC"][1]
    assert report["orderListId"] == oco["orderListId"] and report["status"] == "CANCELED"
    assert states == ["CANCELED", "CANCELED"] and locked == 0


ORDER_LIST_KEYS = ["orderListId", "contingencyType", "listStatusType", "listOrderStatus",
                   "listClientOrderId", "transactionTime", "symbol", "orders"]


def test_open_order_lists_and_one_order_list_by_id_or_client_id(exchange, btc):
    """GET /api/v3/openOrderList (python-binance's get_open_oco_orders) and GET
    /api/v3/orderList answer the list shape, without orderReports, from the list's state."""
    open_ = float(btc.open[START])
    k = START
    target = fills.ceil_to_step(float(btc.high[k]) + 15, TICK)
    j = next(i for i in range(k + 1, k + 400) if btc.high[i] >= target)
    stop = fills.floor_to_step(float(btc.low[k:j + 1].min()) - 1, TICK)  # not reached by j
    with exchange() as (client, control):
        assert client.get_open_oco_orders() == []
        first = oco_sell(client, "0.01", price_text(target), price_text(stop),
                         price_text(stop - 5), listClientOrderId="guardOne")
        second = oco_sell(client, "0.02", price_text(open_ + 900), price_text(open_ - 900),
                          price_text(open_ - 910), listClientOrderId="guardTwo")
        both = client.get_open_oco_orders()
        by_id = client._get("orderList", True, data={"orderListId": first["orderListId"]})
        by_client = client._get("orderList", True, data={"origClientOrderId": "guardTwo"})
        client.cancel_order(symbol="BTCUSDT", orderId=second["orders"][0]["orderId"])
        control.set_replay(after(btc, j))  # the first list's take profit fills
        left = client.get_open_oco_orders()
        done = client._get("orderList", True, data={"orderListId": first["orderListId"]})
        canceled = client._get("orderList", True, data={"origClientOrderId": "guardTwo"})
        unknown = api_error(client._get, "orderList", True, data={"orderListId": 999})
        wrong = api_error(client._get, "orderList", True,
                          data={"orderListId": first["orderListId"],
                                "origClientOrderId": "guardTwo"})
        neither = api_error(client._get, "orderList", True, data={})
    assert [o_["orderListId"] for o_ in both] == [first["orderListId"], second["orderListId"]]
    assert all(list(o_) == ORDER_LIST_KEYS for o_ in both + [by_id, by_client, done])
    assert both[0] == by_id and both[1] == by_client
    assert (by_id["listStatusType"], by_id["listOrderStatus"]) == ("EXEC_STARTED", "EXECUTING")
    assert by_id["orders"] == first["orders"] and by_id["listClientOrderId"] == "guardOne"
    assert by_id["transactionTime"] == first["transactionTime"]
    assert left == []
    assert (done["listStatusType"], done["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert (canceled["listStatusType"], canceled["listOrderStatus"]) == ("ALL_DONE", "ALL_DONE")
    assert (unknown.status_code, unknown.code, unknown.message) == \
        (400, -2013, "Order list does not exist.")
    assert wrong.code == -2013 and neither.code == -1102


def test_all_orders_and_my_trades_lists(exchange, btc):
    open_ = float(btc.open[START])
    with exchange() as (client, control):
        ids = [client.order_market_buy(symbol="BTCUSDT", quantity="0.001")["orderId"]
               for _ in range(3)]
        resting = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001",
                                         price=price_text(open_ - 900))
        ids.append(resting["orderId"])
        everything = client.get_all_orders(symbol="BTCUSDT")
        newest = client.get_all_orders(symbol="BTCUSDT", limit=2)
        from_id = client.get_all_orders(symbol="BTCUSDT", orderId=ids[1], limit=2)
        trades = client.get_my_trades(symbol="BTCUSDT")
        from_trade = client.get_my_trades(symbol="BTCUSDT", fromId=trades[1]["id"])
        of_order = client.get_my_trades(symbol="BTCUSDT", orderId=ids[2])
        combo = api_error(client.get_my_trades, symbol="BTCUSDT", fromId=1, startTime=1)
        other = client.get_all_orders(symbol="ETHUSDT")
    assert [o["orderId"] for o in everything] == ids
    assert [o["status"] for o in everything] == ["FILLED"] * 3 + ["NEW"]
    assert [o["orderId"] for o in newest] == ids[2:]
    assert [o["orderId"] for o in from_id] == ids[1:3]
    assert [t["orderId"] for t in trades] == ids[:3]
    assert [t["id"] for t in from_trade] == [t["id"] for t in trades[1:]]
    assert [t["orderId"] for t in of_order] == [ids[2]]
    assert combo.code == -1128 and other == []


def test_account_fields_commissions_and_asset_balance(exchange):
    with exchange() as (client, _):
        account = client.get_account()
        usdt = client.get_asset_balance(asset="usdt")
        eth = client.get_asset_balance(asset="ETH")
        compact = client.get_account(omitZeroBalances="true")
    assert list(account) == ACCOUNT_KEYS
    assert (account["makerCommission"], account["takerCommission"]) == (2, 7)
    assert account["commissionRates"] == {"maker": "0.00020000", "taker": "0.00070000",
                                          "buyer": "0.00000000", "seller": "0.00000000"}
    assert account["accountType"] == "SPOT" and account["permissions"] == ["SPOT"]
    assert usdt == {"asset": "USDT", "free": "10000.00000000", "locked": "0.00000000"}
    assert eth == {"asset": "ETH", "free": "0.00000000", "locked": "0.00000000"}
    assert [b["asset"] for b in compact["balances"]] == ["USDT", "BTC"]


def test_accounts_are_separate(exchange):
    with exchange() as (client, _):
        other = Client("otherKey2", "otherSecret2", ping=False)
        other.API_URL = client.API_URL
        placed = client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
        poor = api_error(other.order_market_buy, symbol="BTCUSDT", quantity="0.001")
        hidden = api_error(other.get_order, symbol="BTCUSDT", orderId=placed["orderId"])
        assert other.get_asset_balance(asset="USDT")["free"] == "50.00000000"
    assert (poor.code, poor.message) == \
        (-2010, "Account has insufficient balance for requested action.")
    assert (hidden.code, hidden.message) == (-2013, "Order does not exist.")


def test_test_order_validates_without_placing(exchange):
    with exchange() as (client, _):
        plain = client.create_test_order(symbol="BTCUSDT", side="BUY", type="MARKET",
                                         quantity="0.001")
        rates = client.create_test_order(symbol="BTCUSDT", side="BUY", type="MARKET",
                                         quantity="0.001", computeCommissionRates="true")
        bad = api_error(client.create_test_order, symbol="BTCUSDT", side="BUY", type="MARKET",
                        quantity="0.0000123")
        orders = client.get_all_orders(symbol="BTCUSDT")
        usdt = client.get_asset_balance(asset="USDT")["free"]
    assert plain == {}
    assert rates["standardCommissionForOrder"] == {"maker": "0.00020000",
                                                   "taker": "0.00070000"}
    assert set(rates) == {"standardCommissionForOrder", "specialCommissionForOrder",
                          "taxCommissionForOrder", "discount"}
    assert (bad.code, bad.message) == (-1013, "Filter failure: LOT_SIZE")
    assert orders == [] and usdt == "10000.00000000"


# -- errors ------------------------------------------------------------------------------------
def test_order_errors_codes_and_messages(exchange, btc, source_store, tmp_path):
    open_ = float(btc.open[START])
    limits = tmp_path / "symbols.json"
    limits.write_text(json.dumps({"BTCUSDT": {"max_num_orders": 2}}))
    with exchange(symbol_config=limits) as (client, _):
        def err(**params):
            e = api_error(client.create_order, **params)
            return e.status_code, e.code, e.message

        base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                "quantity": "0.001", "price": price_text(open_ - 100)}
        assert err(**dict(base, symbol="FOOUSDT")) == (400, -1121, "Invalid symbol.")
        assert err(**dict(base, side="HOLD")) == (400, -1117, "Invalid side.")
        assert err(**dict(base, type="ICEBERG")) == (400, -1116, "Invalid orderType.")
        assert err(**dict(base, timeInForce="GTX")) == (400, -1115, "Invalid timeInForce.")
        assert err(**dict(base, quantity=0.00001)) == (
            400, -1100, "Illegal characters found in parameter 'quantity'; legal range is "
            "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")
        assert err(**{k: v for k, v in base.items() if k != "price"}) == (
            400, -1102, "Mandatory parameter 'price' was not sent, was empty/null, or "
            "malformed.")
        assert err(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001",
                   price="1.00")[:2] == (400, -1106)
        assert err(**dict(base, quantity="0.000000001")) == (
            400, -1111, "Precision is over the maximum defined for this asset.")
        assert err(**dict(base, price=f"{open_ - 100:.2f}5")) == \
            (400, -1013, "Filter failure: PRICE_FILTER")
        assert err(**dict(base, quantity="0.000015")) == (400, -1013, "Filter failure: LOT_SIZE")
        assert err(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="5000") == \
            (400, -1013, "Filter failure: MARKET_LOT_SIZE")
        assert err(**dict(base, quantity="0.00001")) == (400, -1013, "Filter failure: NOTIONAL")
        assert err(**dict(base, quantity="1")) == \
            (400, -2010, "Account has insufficient balance for requested action.")
        client.create_order(**dict(base, newClientOrderId="same-id_1"))
        assert err(**dict(base, newClientOrderId="same-id_1")) == \
            (400, -2010, "Duplicate order sent.")
        client.create_order(**base)
        assert err(**base) == (400, -1013, "Filter failure: MAX_NUM_ORDERS")
        assert err(**dict(base, foo="bar"))[:2] == (400, -1104)
        client.cancel_all_open_orders(symbol="BTCUSDT")
        # a client id may be used again once its order is done
        again = client.create_order(**dict(base, newClientOrderId="same-id_1"))
        assert again["status"] == "NEW"
        client.cancel_order(symbol="BTCUSDT", orderId=again["orderId"])
        oco = api_error(oco_sell, client, "0.001", price_text(open_ - 10),
                        price_text(open_ - 20), price_text(open_ - 30))
        assert (oco.code, oco.message) == \
            (-2010, "The relationship of the prices for the orders is not correct.")
        family = api_error(client.create_oco_order, symbol="BTCUSDT", side="SELL",
                           quantity="0.001", aboveType="STOP_LOSS", aboveStopPrice="1.00",
                           belowType="STOP_LOSS", belowStopPrice="1.00")
        assert family.code == -1197
        missing = api_error(client.get_order, symbol="BTCUSDT", orderId=999)
        neither = api_error(client.get_order, symbol="BTCUSDT")
        unknown_cancel = api_error(client.cancel_order, symbol="BTCUSDT",
                                   origClientOrderId="nope")
    assert (missing.status_code, missing.code, missing.message) == \
        (400, -2013, "Order does not exist.")
    assert neither.code == -1102 and "'origClientOrderId' or 'orderId'" in neither.message
    assert (unknown_cancel.code, unknown_cancel.message) == (-2011, "Unknown order sent.")


def test_order_rate_limit_gives_1015_with_retry_after(exchange):
    with exchange(order_limit_10s=3, timestamp_check=False) as (client, control):
        server = control.clock()["server"]
        control.advance_server(10_000 - server % 10_000 + 200)  # the start of a fresh window
        counts = []
        for _ in range(3):
            client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
            counts.append(client.response.headers["X-MBX-ORDER-COUNT-10S"])
        over = api_error(client.order_market_buy, symbol="BTCUSDT", quantity="0.001")
        current = client.get_current_order_count()
        info_limits = client.get_exchange_info()["rateLimits"]
        control.advance_server(10_000)
        client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
        after_window = client.response.headers["X-MBX-ORDER-COUNT-10S"]
        day = client.response.headers["X-MBX-ORDER-COUNT-1D"]
    assert counts == ["1", "2", "3"]
    assert (over.status_code, over.code) == (429, -1015)
    assert over.message == "Too many new orders; current limit is 3 orders per 10 SECOND."
    assert 1 <= int(over.response.headers["Retry-After"]) <= 10
    assert current[0] == {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                          "limit": 3, "count": 3}
    assert {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
            "limit": 3} in info_limits
    assert (after_window, day) == ("1", "4")


# -- faults ------------------------------------------------------------------------------------
def test_dropped_answer_after_the_order_was_accepted(exchange):
    with exchange() as (client, control):
        control.set_faults(queue=["drop"], paths=["/api/v3/order"])
        with pytest.raises(requests.exceptions.ConnectionError):
            client.order_market_buy(symbol="BTCUSDT", quantity="0.001",
                                    newClientOrderId="lostAnswer1")
        found = client.get_order(symbol="BTCUSDT", origClientOrderId="lostAnswer1")
        dropped = control.faults()["counts"]["drop"]
        control.set_faults(queue=["5xx"], paths=["/api/v3/order"], status_5xx=503)
        unavailable = api_error(client.order_market_buy, symbol="BTCUSDT", quantity="0.001",
                                newClientOrderId="neverPlaced1")
        not_there = api_error(client.get_order, symbol="BTCUSDT",
                              origClientOrderId="neverPlaced1")
        control.set_faults(queue=["delay"], paths=["/api/v3/account"], delay_s=1.5,
                           reset_counts=False)
        slow = Client(KEY, SECRET, ping=False, requests_params={"timeout": 0.5})
        slow.API_URL = client.API_URL
        with pytest.raises(requests.exceptions.ReadTimeout):
            slow.get_account()
        counts = control.faults()["counts"]
    assert found["status"] == "FILLED"  # the order exists although the client saw an error
    assert dropped == 1
    assert unavailable.status_code == 503 and not_there.code == -2013  # never executed
    assert counts["5xx"] == 1 and counts["delay"] == 1  # counted since the reset


def test_a_delayed_order_is_carried_out_after_the_client_gave_up(exchange):
    with exchange() as (client, control):
        control.set_faults(queue=["delay"], paths=["/api/v3/order"], delay_s=0.6)
        slow = Client(KEY, SECRET, ping=False, requests_params={"timeout": 0.2})
        slow.API_URL = client.API_URL
        with pytest.raises(requests.exceptions.ReadTimeout):
            slow.order_market_buy(symbol="BTCUSDT", quantity="0.001",
                                  newClientOrderId="lateAnswer1")
        time.sleep(0.8)
        found = client.get_order(symbol="BTCUSDT", origClientOrderId="lateAnswer1")
    assert found["status"] == "FILLED"  # executed although its answer came too late


# -- balances ----------------------------------------------------------------------------------
def test_balances_move_exactly_by_fills_and_fees(exchange, btc):
    k = START
    price = fills.floor_to_step(float(btc.low[k]) - 40, TICK)
    j = next(i for i in range(k + 1, len(btc)) if btc.low[i] <= price)
    steps = [
        lambda c, _: c.order_market_buy(symbol="BTCUSDT", quantity="0.0321"),
        lambda c, _: c.order_market_sell(symbol="BTCUSDT", quantity="0.25"),
        lambda c, _: c.order_limit_buy(symbol="BTCUSDT", quantity="0.0123",
                                       price=price_text(price)),
        lambda c, control: control.set_replay(after(btc, j)),   # the limit fills (maker)
        lambda c, _: c.order_market_buy(symbol="BTCUSDT", quoteOrderQty="777.77"),
        lambda c, _: c.order_market_sell(symbol="BTCUSDT", quantity="0.0400"),
    ]
    with exchange(slippage_bps=3.0) as (client, control):
        snapshots = [balances(client)]
        seen: list[int] = []
        moves = []
        for step in steps:
            step(client, control)
            snapshots.append(balances(client))
            trades = [t for t in client.get_my_trades(symbol="BTCUSDT") if t["id"] not in seen]
            seen += [t["id"] for t in trades]
            moves.append(trades)
    assert [len(m) for m in moves] == [1, 1, 0, 1, 1, 1]
    for before, after_, trades in zip(snapshots, snapshots[1:], moves):
        total = {a: before[a][0] + before[a][1] for a in ("USDT", "BTC")}
        total_after = {a: after_[a][0] + after_[a][1] for a in ("USDT", "BTC")}
        d_quote = total_after["USDT"] - total["USDT"]
        d_base = total_after["BTC"] - total["BTC"]
        if not trades:  # placing the limit only locks funds
            assert (d_quote, d_base) == (0, 0)
            assert after_["USDT"][1] == Decimal("0.0123") * D(price)
            continue
        t = trades[0]
        p, qty, fee = D(t["price"]), D(t["qty"]), D(t["commission"])
        assert D(t["quoteQty"]) == p * qty  # exact: BTCUSDT prices x lots fit in 8 decimals
        fee_in_quote = fee if t["commissionAsset"] == "USDT" else fee * p
        # in quote terms at the fill price, the account lost exactly the fee
        assert d_quote + d_base * p == -fee_in_quote
        sign = 1 if t["isBuyer"] else -1
        assert d_base == sign * qty - (fee if t["commissionAsset"] == "BTC" else 0)
        assert t["isMaker"] is (t is moves[3][0])
        rate = MAKER if t["isMaker"] else TAKER
        assert fee == ((qty if t["isBuyer"] else p * qty) * rate).quantize(Decimal("1e-8"))
    assert snapshots[-1]["USDT"][1] == snapshots[-1]["BTC"][1] == 0


# -- the speed-driven replay clock -------------------------------------------------------------
def test_resting_orders_fill_while_the_replay_clock_runs_without_requests(source_store, btc,
                                                                         accounts_file):
    k = START
    price = fills.floor_to_step(float(btc.low[k]) - 20, TICK)
    j = next(i for i in range(k + 1, len(btc)) if btc.low[i] <= price)
    config = EmulatorConfig(store=source_store.root, speed=0.0, start_ms=at(btc, k),
                            accounts=accounts_file)
    with run_emulator_server(config) as server:
        client = Client(KEY, SECRET, ping=False)
        client.API_URL = server.base_url + "/api"
        order = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001",
                                       price=price_text(price))
        record = next(iter(server.state.exchange.accounts.values())).by_id[order["orderId"]]
        span_s = (after(btc, j) - at(btc, k)) / 1000
        requests.post(server.base_url + "/admin/clock", json={"speed": span_s / 0.5},
                      timeout=5)
        deadline = time.monotonic() + 10
        while record.status == "NEW" and time.monotonic() < deadline:
            time.sleep(0.05)
        status = record.status
    assert status == "FILLED"
    assert record.fills[0].price == D(fills.buy_limit_fill(float(btc.open[j]),
                                                           float(btc.low[j]), price))
