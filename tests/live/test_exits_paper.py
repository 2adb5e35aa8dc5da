"""live/exits carried out on the paper broker over real candles: a protective order that
filled before an exit's cancel ends the exit, and orders under the minimum notional are
refused without harm (the position stays, every refusal journaled)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from binance_cluster.engine.simulate import Risk
from binance_cluster.engine.symbol_rules import SymbolFilters
from binance_cluster.exchange.broker.base import OrderRequest
from binance_cluster.exchange.broker.feeds import CandleFeed
from binance_cluster.exchange.broker.paper import PaperBroker, PaperConfig
from binance_cluster.live import exits as ex
from binance_cluster.live.journal import Journal
from binance_cluster.types import MINUTE_MS
from support.real_data import first_rows

RISK = Risk(stop_loss=0.001, take_profit=0.0015)
FILTERS = SymbolFilters("ETHUSDT", "ETH", "USDT", tick_size=Decimal("0.01"),
                        step_size=Decimal("0.0001"), min_notional=Decimal("5"))


@pytest.fixture
def venue(shared_data, tmp_path):
    candles = first_rows(shared_data, "ETHUSDT", 600)
    feed = CandleFeed({"ETHUSDT": candles}, {"ETHUSDT": FILTERS}, "1m",
                      int(candles.open_time[100]))
    paper = PaperBroker(feed, {"USDT": "1000"}, PaperConfig())
    with Journal(tmp_path / "journal.sqlite", job="paper-exits") as journal:
        journal.record_symbol("ETHUSDT", "ETH", "USDT")
        yield candles, feed, paper, journal


def test_an_exit_after_the_protective_order_filled_sells_nothing(venue):
    candles, feed, paper, journal = venue
    t = int(candles.open_time[100])
    buy = paper.submit(OrderRequest("ETHUSDT", "BUY", "MARKET", "entry", quantity="0.5"))
    price = float(buy.fills[0].price)
    h = ex.holding("ETHUSDT", price, paper.balances()["ETH"].total, price)
    ex.carry_out(ex.after_entry("paper-exits", h, t, RISK, FILTERS), paper, journal)
    k, reason, level = ex.first_crossing(h, candles.open[100:], candles.high[100:],
                                         candles.low[100:], RISK, FILTERS)
    bar = int(candles.open_time[100 + k])
    feed.set_now(bar + MINUTE_MS)            # the bar that reached a level has closed
    resting = ex.Resting("ETHUSDT", ex.protective_order("paper-exits", "ETHUSDT", t, h.account,
                                                        ex.levels(price, price, RISK, FILTERS),
                                                        FILTERS).client_id, None)
    actions = ex.exit_now("paper-exits", h, resting, bar, "signal", RISK, FILTERS)
    answers = ex.carry_out(actions, paper, journal)
    assert [(o.type, o.status) for o in answers] == [("OCO", "FILLED")]   # no sale
    assert [f.price for f in paper.fills_since("ETHUSDT")][1:] == [Decimal(repr(level))]
    exit_id = actions[1].request.client_id
    assert exit_id not in {i.client_id for i in journal.intents()}     # never sent
    assert reason in ("stop_loss", "take_profit")


def test_orders_under_the_minimum_notional_are_refused_and_the_position_stays(venue):
    candles, feed, paper, journal = venue
    t = int(candles.open_time[100])
    paper.submit(OrderRequest("ETHUSDT", "BUY", "MARKET", "entry", quantity="0.0028"))
    held = paper.balances()["ETH"].total                 # about 5 USDT, under it at the stop
    price = float(candles.open[100])
    h = ex.holding("ETHUSDT", price, held, price)
    assert ex.carry_out(ex.after_entry("paper-exits", h, t, Risk(stop_loss=0.2), FILTERS),
                        paper, journal) == []
    # refused for the minimum notional at the stop: not a level passed, so nothing is sold
    errors = [(i.type, i.purpose, i.error is not None) for i in journal.intents()]
    assert errors == [("STOP_LOSS_LIMIT", ex.PROTECT, True)]
    assert paper.open_orders() == [] and paper.balances()["ETH"].total == held
    # an exit then: the sale is refused too (under the minimum at market): the position stays
    resting = None
    bar = int(candles.open_time[101])
    feed.set_now(bar + MINUTE_MS)
    (sell,) = ex.exit_now("paper-exits", h, resting, bar, "max_hold", Risk(stop_loss=0.2),
                          FILTERS)
    assert ex.carry_out((sell,), paper, journal) == []
    assert journal.intents()[-1].error is not None and "NOTIONAL" in journal.intents()[-1].error
    assert paper.balances()["ETH"].total == held



def test_a_symbol_that_stopped_trading_keeps_its_coins_when_both_are_refused(venue):
    """Leaving TRADING: the protection is cancelled for the sale, the closed market refuses
    the sale and the protection placed again; the coins stay, every refusal journaled."""
    candles, feed, paper, journal = venue
    t = int(candles.open_time[100])
    paper.submit(OrderRequest("ETHUSDT", "BUY", "MARKET", "entry", quantity="0.5"))
    held = paper.balances()["ETH"].total
    price = float(candles.open[100])
    h = ex.holding("ETHUSDT", price, held, price)
    wide = Risk(stop_loss=0.2, take_profit=0.5)
    (protect,) = ex.after_entry("paper-exits", h, t, wide, FILTERS)
    ex.carry_out((protect,), paper, journal)
    end = int(candles.open_time[-1]) + 2 * MINUTE_MS       # after the last candle: closed
    feed.set_now(end)
    resting = ex.Resting("ETHUSDT", protect.request.client_id, protect.request.stop_price)
    answers = ex.carry_out(ex.exit_now("paper-exits", h, resting, end, "end", wide, FILTERS),
                           paper, journal)
    assert [(o.type, o.status) for o in answers] == [("OCO", "CANCELED")]
    refused = [(i.type, i.purpose) for i in journal.intents() if i.error is not None]
    assert refused == [("MARKET", "end"), ("OCO", ex.PROTECT)]    # closed is not "past"
    assert all("closed" in i.error.lower() for i in journal.intents() if i.error)
    assert paper.balances()["ETH"].total == held and paper.open_orders() == []
