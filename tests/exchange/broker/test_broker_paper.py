"""PaperBroker: fills by the project's fill rules on real candles, balances, rejections, and
the same fills as the exchange emulator for the same orders on the same candles."""

from __future__ import annotations

import math
import pickle
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from binance_cluster.exchange.broker import OrderRequest, client_order_id
from binance_cluster.exchange.broker.base import Broker, SymbolFilters
from binance_cluster.exchange.broker.errors import (FilterError, InsufficientBalanceError,
                                           OrderNotFoundError, OrderRejectedError)
from binance_cluster.exchange.broker.feeds import CandleFeed, ExchangeFeed
from binance_cluster.errors import DataError
from binance_cluster.exchange.broker import paper as paper_mod
from binance_cluster.exchange.broker.paper import PaperBroker, PaperConfig
from binance_cluster.types import MINUTE_MS, Candles
from support.broker import START_MINUTE, fill_key, trading  # noqa: F401
from support.emulator import source_store  # noqa: F401

Q8 = Decimal("0.00000001")
BTC = SymbolFilters("BTCUSDT", "BTC", "USDT", tick_size=Decimal("0.01"),
                    step_size=Decimal("0.00001"), min_qty=Decimal("0.00001"),
                    max_qty=Decimal("9000"), min_price=Decimal("0.01"),
                    max_price=Decimal("1000000"), min_notional=Decimal("5"))
TOY = SymbolFilters("TOYUSDT", "TOY", "USDT", tick_size=Decimal("0.01"),
                    step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
                    max_qty=Decimal("100000"), min_price=Decimal("0.01"),
                    max_price=Decimal("100000"), min_notional=Decimal("5"))
CONFIG = PaperConfig(maker_fee=0.0008, taker_fee=0.001, slippage=0.0005)


def d(x) -> Decimal:
    return Decimal(repr(float(x)))


def on_grid(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


def btc_paper(source_store, balances=None, config=CONFIG):
    candles = source_store.read("BTCUSDT", "1m")
    t0 = int(candles.open_time[START_MINUTE])
    feed = CandleFeed({"BTCUSDT": candles}, {"BTCUSDT": BTC}, now_ms=t0)
    return PaperBroker(feed, balances or {"USDT": "10000"}, config), feed, candles


def toy_candles(rows: list[tuple[float, float, float, float]], t0: int = 0) -> Candles:
    a = np.array(rows, dtype=np.float64)
    return Candles.from_columns({"open_time": t0 + MINUTE_MS * np.arange(len(rows)),
                                 "open": a[:, 0], "high": a[:, 1], "low": a[:, 2],
                                 "close": a[:, 3], "volume": np.ones(len(rows))})


def test_market_orders_fill_at_the_forming_open_with_slippage_and_fees(source_store):
    paper, feed, c = btc_paper(source_store)
    assert isinstance(paper, Broker)
    i = START_MINUTE
    feed.set_now(int(c.open_time[i]) + 20_000)  # mid-candle: the forming candle's open
    buy = paper.submit(OrderRequest("BTCUSDT", "BUY", "MARKET", "m1", quote_amount="1000"))
    price = on_grid(d(c.open[i]) * Decimal("1.0005"), BTC.tick_size, ROUND_CEILING)
    qty = on_grid(Decimal(1000) / price, BTC.step_size, ROUND_FLOOR)
    fee = (qty * Decimal("0.001")).quantize(Q8, ROUND_HALF_UP)
    assert buy.status == "FILLED" and buy.avg_price == price and buy.executed_qty == qty
    (fill,) = buy.fills
    assert (fill.price, fill.qty, fill.commission, fill.commission_asset, fill.is_maker) == \
        (price, qty, fee, "BTC", False)
    assert fill.time_ms == int(c.open_time[i]) + 20_000
    balances = paper.balances()
    assert balances["USDT"].free == Decimal(10000) - (qty * price).quantize(Q8, ROUND_HALF_UP)
    assert balances["BTC"].free == qty - fee
    feed.set_now(int(c.open_time[i + 5]))
    held = BTC.floor_qty(qty - fee)
    sell = paper.submit(OrderRequest("BTCUSDT", "SELL", "MARKET", "m2", quantity=held))
    sell_px = on_grid(d(c.open[i + 5]) * Decimal("0.9995"), BTC.tick_size, ROUND_FLOOR)
    notional = (held * sell_px).quantize(Q8, ROUND_HALF_UP)
    assert sell.avg_price == sell_px
    assert sell.fills[0].commission == (notional * Decimal("0.001")).quantize(Q8, ROUND_HALF_UP)
    assert sell.fills[0].commission_asset == "USDT"
    assert paper.balances()["BTC"].free == qty - fee - held
    assert [f.trade_id for f in paper.fills_since("BTCUSDT")] == [1, 2]
    assert [f.trade_id for f in paper.fills_since("BTCUSDT", time_ms=fill.time_ms + 1)] == [2]


def test_a_resting_limit_fills_on_the_first_closed_candle_that_reaches_it(source_store):
    paper, feed, c = btc_paper(source_store)
    i = START_MINUTE
    window = slice(i, i + 120)
    limit = on_grid((d(c.open[i]) + d(c.low[window].min())) / 2, BTC.tick_size, ROUND_FLOOR)
    order = paper.submit(OrderRequest("BTCUSDT", "BUY", "LIMIT", "dip", quantity="0.01",
                                      price=limit))
    lock = (Decimal("0.01") * limit).quantize(Q8, ROUND_CEILING)
    assert order.status == "NEW" and paper.balances()["USDT"].locked == lock
    j = next(k for k in range(i, i + 120) if d(c.low[k]) <= limit)  # plain-Python oracle
    expected = d(c.open[j]) if d(c.open[j]) <= limit else limit
    feed.set_now(int(c.open_time[j]) + MINUTE_MS - 1)  # the candle has not closed yet
    assert paper.query("BTCUSDT", "dip").status == "NEW"
    feed.set_now(int(c.open_time[j]) + MINUTE_MS)
    done = paper.query("BTCUSDT", "dip")
    assert done.status == "FILLED" and done.avg_price == expected
    fill = done.fills[0]
    assert fill.is_maker and fill.time_ms == int(c.open_time[j]) + MINUTE_MS - 1
    assert fill.commission == (Decimal("0.01") * Decimal("0.0008")).quantize(Q8)
    balances = paper.balances()
    assert balances["USDT"].locked == 0 and balances["BTC"].free == Decimal("0.01") - \
        fill.commission
    assert balances["USDT"].free == Decimal(10000) - (Decimal("0.01") * expected).quantize(
        Q8, ROUND_HALF_UP)
    assert paper.open_orders() == []


def test_an_oco_touched_on_both_sides_fills_the_stop_and_expires_the_target():
    candles = toy_candles([(100, 100.5, 99.5, 100), (100, 103, 97, 101), (101, 102, 100, 101)])
    feed = CandleFeed({"TOYUSDT": candles}, {"TOYUSDT": TOY})
    paper = PaperBroker(feed, {"TOY": "10"}, CONFIG)
    oco = paper.submit(OrderRequest("TOYUSDT", "SELL", "OCO", "guard", quantity="10",
                                    price="102", stop_price="98"))
    assert oco.status == "NEW" and paper.balances()["TOY"].locked == 10
    assert [o.type for o in paper.open_orders()] == ["STOP_LOSS_LIMIT", "LIMIT_MAKER"]
    feed.set_now(2 * MINUTE_MS)
    done = paper.query("TOYUSDT", "guard")
    take, stop = done.legs
    assert (take.status, stop.status) == ("EXPIRED", "FILLED") and done.status == "FILLED"
    assert stop.avg_price == Decimal("98") and stop.fills[0].time_ms == 2 * MINUTE_MS - 1
    assert paper.balances()["TOY"] == type(paper.balances()["TOY"])("TOY", Decimal(0),
                                                                    Decimal(0))
    assert paper.balances()["USDT"].free == Decimal("980") - Decimal("0.98")


@pytest.mark.parametrize("stop_limit, expected", [("98", ("NEW", "98", None)),
                                                  ("95", ("FILLED", "96", False))])
def test_a_stop_limit_gapped_through_rests_or_fills_like_the_emulator(stop_limit, expected):
    candles = toy_candles([(100, 100.5, 99.5, 100), (96, 97, 95, 96), (97, 99, 96.5, 98)])
    feed = CandleFeed({"TOYUSDT": candles}, {"TOYUSDT": TOY})
    paper = PaperBroker(feed, {"TOY": "10"}, CONFIG)
    paper.submit(OrderRequest("TOYUSDT", "SELL", "STOP_LOSS_LIMIT", "sl", quantity="10",
                              price=stop_limit, stop_price="98"))
    feed.set_now(2 * MINUTE_MS)
    after_gap = paper.query("TOYUSDT", "sl")
    assert after_gap.status == expected[0]
    if expected[0] == "NEW":  # triggered at 96 < its 98 limit: rests as a limit at 98
        feed.set_now(3 * MINUTE_MS)
        after_gap = paper.query("TOYUSDT", "sl")
        assert after_gap.status == "FILLED" and after_gap.fills[0].is_maker
    else:
        assert after_gap.fills[0].is_maker is expected[2]
    assert after_gap.avg_price == Decimal(expected[1])


def test_a_triggered_ioc_stop_limit_that_cannot_fill_expires_as_on_the_emulator():
    candles = toy_candles([(100, 100.5, 99.5, 100), (96, 97, 95, 96), (97, 99, 96.5, 98)])
    feed = CandleFeed({"TOYUSDT": candles}, {"TOYUSDT": TOY})
    paper = PaperBroker(feed, {"TOY": "10"}, CONFIG)
    paper.submit(OrderRequest("TOYUSDT", "SELL", "STOP_LOSS_LIMIT", "sl", quantity="10",
                              price="98", stop_price="98", time_in_force="IOC"))
    feed.set_now(3 * MINUTE_MS)  # triggered at the 96 open, under its limit: expires
    done = paper.query("TOYUSDT", "sl")
    assert done.status == "EXPIRED" and done.fills == () and paper.open_orders() == []
    assert paper.balances()["TOY"].free == 10 and paper.balances()["TOY"].locked == 0


def test_paper_rejections_locks_and_idempotent_client_ids(source_store):
    paper, feed, c = btc_paper(source_store, {"USDT": "1000"})
    open_ = d(c.open[START_MINUTE])
    with pytest.raises(InsufficientBalanceError, match="insufficient balance"):
        paper.submit(OrderRequest("BTCUSDT", "BUY", "MARKET", "x1", quote_amount="5000"))
    with pytest.raises(OrderRejectedError, match="trigger immediately"):
        paper.submit(OrderRequest("BTCUSDT", "BUY", "STOP_LOSS_LIMIT", "x2", quantity="0.001",
                                  price=open_ * Decimal("0.99"),
                                  stop_price=open_ * Decimal("0.99")))
    with pytest.raises(FilterError, match="NOTIONAL"):
        paper.submit(OrderRequest("BTCUSDT", "BUY", "LIMIT", "x3", quantity="0.00002",
                                  price=open_ * Decimal("0.9")))
    first = paper.submit(OrderRequest("BTCUSDT", "BUY", "MARKET", "once", quote_amount="100"))
    again = paper.submit(OrderRequest("BTCUSDT", "BUY", "MARKET", "once", quote_amount="100"))
    assert again == first and len(paper.fills_since("BTCUSDT")) == 1
    with pytest.raises(OrderRejectedError, match="relationship"):
        paper.submit(OrderRequest("BTCUSDT", "SELL", "OCO", "bad-oco", quantity="0.0005",
                                  price=open_ * Decimal("0.99"),
                                  stop_price=open_ * Decimal("0.98")))
    rest = paper.submit(OrderRequest("BTCUSDT", "BUY", "LIMIT", "low", quantity="0.002",
                                     price=open_ * Decimal("0.5")))
    assert paper.balances()["USDT"].locked == (Decimal("0.002") * rest.price).quantize(
        Q8, ROUND_CEILING)
    canceled = paper.cancel("BTCUSDT", "low")
    assert canceled.status == "CANCELED" and paper.balances()["USDT"].locked == 0
    assert paper.cancel("BTCUSDT", "once").status == "FILLED"
    with pytest.raises(OrderNotFoundError):
        paper.query("BTCUSDT", "never")
    feed.set_now(int(c.open_time[-1]) + MINUTE_MS)  # after the last candle
    with pytest.raises(OrderRejectedError, match="Market is closed"):
        paper.submit(OrderRequest("BTCUSDT", "BUY", "MARKET", "late", quote_amount="100"))


def amounts(balances: dict) -> dict:
    """(free, locked) by asset, assets holding nothing left out."""
    return {a: (b.free, b.locked) for a, b in balances.items() if b.free or b.locked}


def _script(broker: Broker, t0: int) -> dict[str, str]:
    """The orders of the parity run placed at replay time t0; returns client ids by name."""
    ids = {name: client_order_id("parity", sym, t0, name)
           for name, sym in (("btc-entry", "BTCUSDT"), ("eth-entry", "ETHUSDT"),
                             ("sol-dip", "SOLUSDT"), ("btc-guard", "BTCUSDT"),
                             ("eth-take", "ETHUSDT"), ("eth-stop", "ETHUSDT"))}
    btc = broker.submit(OrderRequest("BTCUSDT", "BUY", "MARKET", ids["btc-entry"],
                                     quote_amount="2000"))
    eth = broker.submit(OrderRequest("ETHUSDT", "BUY", "MARKET", ids["eth-entry"],
                                     quantity="0.5"))
    held_btc = btc.executed_qty - btc.fills[0].commission
    px = btc.avg_price
    broker.submit(OrderRequest("BTCUSDT", "SELL", "OCO", ids["btc-guard"], quantity=held_btc,
                               price=px * Decimal("1.002"), stop_price=px * Decimal("0.998"),
                               stop_limit_price=px * Decimal("0.995")))
    ep = eth.avg_price
    broker.submit(OrderRequest("ETHUSDT", "SELL", "LIMIT", ids["eth-take"], quantity="0.2",
                               price=ep * Decimal("1.003")))
    broker.submit(OrderRequest("ETHUSDT", "SELL", "STOP_LOSS_LIMIT", ids["eth-stop"],
                               quantity="0.2", price=ep * Decimal("0.996"),
                               stop_price=ep * Decimal("0.997")))
    return ids


@pytest.mark.parametrize("resting_from", ["placement", "next"])
def test_paper_fills_equal_the_emulators_for_the_same_orders(trading, resting_from):
    balances = {"USDT": "10000", "SOL": "20"}
    with trading(balances=balances, maker="0.0008", taker="0.001", slippage_bps=5,
                 forming_candle="synthetic", resting_from=resting_from) as venue:
        live = venue.broker()
        config = PaperConfig(maker_fee=0.0008, taker_fee=0.001, slippage=0.0005,
                             resting_from=resting_from)
        paper = PaperBroker(ExchangeFeed(venue.url, timeout_s=5), balances, config)
        t0 = venue.start_ms
        brokers = (live, paper)
        scripts = [_script(b, t0) for b in brokers]
        assert scripts[0] == scripts[1]
        ids = scripts[0]
        sol_close = Decimal(venue.client().get_symbol_ticker(symbol="SOLUSDT")["price"])
        for b in brokers:
            b.submit(OrderRequest("SOLUSDT", "SELL", "LIMIT", ids["sol-dip"], quantity="10",
                                  price=sol_close * Decimal("1.004")))
        seen_open = []
        for step in range(8):
            venue.control.advance_replay(45 * MINUTE_MS)
            views = [sorted((o.client_id, o.status, o.price) for o in b.open_orders())
                     for b in brokers]
            assert views[0] == views[1], f"step {step}"
            seen_open.append(len(views[0]))
            if step == 3:
                for b in brokers:
                    b.cancel("SOLUSDT", ids["sol-dip"])
                    b.submit(OrderRequest("SOLUSDT", "SELL", "MARKET", "sol-out",
                                          quantity="5"))
            assert amounts(live.balances()) == amounts(paper.balances()), f"step {step}"
        for name, cid in ids.items():
            symbol = "BTCUSDT" if name.startswith("btc") else \
                "ETHUSDT" if name.startswith("eth") else "SOLUSDT"
            a, b = (br.query(symbol, cid) for br in brokers)
            assert (a.status, a.executed_qty, a.cumulative_quote) == \
                (b.status, b.executed_qty, b.cumulative_quote), name
            assert [leg.status for leg in a.legs] == [leg.status for leg in b.legs], name
        total = 0
        for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
            fills = [[fill_key(f) for f in br.fills_since(symbol)] for br in brokers]
            assert fills[0] == fills[1], symbol
            total += len(fills[0])
        assert total >= 5 and seen_open[0] > seen_open[-1]  # things did fill over the run
        kinds = {f.is_maker for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")
                 for f in live.fills_since(s)}
        assert kinds == {True, False}


def test_the_exchange_feed_serves_only_closed_candles(trading):
    with trading(forming_candle="synthetic") as venue:
        feed = ExchangeFeed(venue.url, timeout_s=5)
        now = feed.now_ms()
        assert now == venue.start_ms
        stored = venue.store.read("BTCUSDT", "1m")
        got = feed.closed_candles("BTCUSDT", now - 1500 * MINUTE_MS, now)
        i = int(np.searchsorted(stored.open_time, now))
        assert len(got) == 1500 and int(got.open_time[-1]) == now - MINUTE_MS
        assert np.array_equal(got.high, stored.high[i - 1500:i])
        quote = feed.market("BTCUSDT", now)
        assert quote.forming and quote.bar_open == now and math.isclose(
            quote.price, float(stored.open[i]))
        assert feed.filters("BTCUSDT").tick_size == Decimal("0.01")
    with trading(forming_candle="none") as venue:  # no forming row: the last close
        feed = ExchangeFeed(venue.url, timeout_s=5)
        quote = feed.market("BTCUSDT", feed.now_ms())
        assert not quote.forming and quote.price == float(stored.close[i - 1])


def test_the_state_file_resumes_the_account_and_a_foreign_one_is_an_error_naming_it(tmp_path):
    candles = toy_candles([(100, 100.5, 99.5, 100), (100, 101, 99, 100), (100, 101, 99, 100)])
    state = tmp_path / "paper-account.pickle"
    feed = CandleFeed({"TOYUSDT": candles}, {"TOYUSDT": TOY})
    paper = PaperBroker(feed, {"TOY": "10"}, CONFIG, state_file=state)
    paper.submit(OrderRequest("TOYUSDT", "SELL", "OCO", "guard", quantity="10", price="102",
                              stop_price="98"))
    again = PaperBroker(feed, {"TOY": "999"}, CONFIG, state_file=state)   # balances ignored
    assert again.query("TOYUSDT", "guard").status == "NEW"
    assert again.balances()["TOY"].locked == 10
    for text in (b"not a pickle", pickle.dumps((1, 2)),
                 pickle.dumps({"format": paper_mod.STATE_FORMAT, "version": 0})):
        state.write_bytes(text)
        with pytest.raises(DataError, match=f"{state}: unreadable paper account") as err:
            PaperBroker(feed, {"TOY": "10"}, CONFIG, state_file=state)
        assert "\n" not in str(err.value)
        assert state.read_bytes() == text                                  # left as it was
