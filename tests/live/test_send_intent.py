"""The one path of every live order (`live.orders.send_intent`, used by the loop's entries and
by `exits.carry_out`) against the emulator through the real python-binance client: a journaled
intent is asked for by its client id before anything is sent again."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import numpy as np

from binance_cluster.engine.simulate import Risk
from binance_cluster.exchange.broker.errors import OrderStatusUnknownError
from binance_cluster.live import exits as ex
from binance_cluster.live.journal import Journal
from binance_cluster.live.orders import send_intent
from binance_cluster.live.reconcile import resolve_unknown

JOB = "orders-test"
RISK = Risk(stop_loss=0.01, take_profit=0.02)


def open_journal(path, broker) -> Journal:
    journal = Journal(path, job=JOB)
    f = broker.filters("SOLUSDT")
    journal.record_symbol("SOLUSDT", f.base_asset, f.quote_asset)
    return journal


def sol_price(venue) -> float:
    c = venue.store.read("SOLUSDT", "1m")
    return float(c.open[int(np.searchsorted(c.open_time, venue.start_ms))])


def test_a_protective_order_planned_again_is_asked_for_not_placed_twice(trading, tmp_path):
    """The loop's broker does not look an id up before a submit (`venue.broker_config`), and
    the exchange accepts a used client id again once its order is done: a protective order
    carried out a second time (the plan made again after a restart) must be found by its id."""
    with trading(balances={"USDT": "1000", "SOL": "5"}) as venue:
        broker = venue.broker(check_before_submit=False)
        price = sol_price(venue)
        h = ex.holding("SOLUSDT", price, Decimal("5"), price)
        plan = ex.after_entry(JOB, h, venue.start_ms, RISK, broker.filters("SOLUSDT"))
        cid = plan[0].request.client_id
        with open_journal(tmp_path / "j.sqlite", broker) as journal:
            ex.carry_out(plan, broker, journal)
            broker.cancel("SOLUSDT", cid)                  # done: its id is free on the exchange
            answers = ex.carry_out(plan, broker, journal)  # the same plan again
            assert [a.status for a in answers] == ["CANCELED"]
            assert journal.unknown_intents() == []
        lists = venue.client().get_all_orders(symbol="SOLUSDT")
        placed = Counter(o["clientOrderId"] for o in lists)
        assert placed == {cid + "-tp": 1, cid + "-sl": 1}, placed


def test_an_intent_lost_in_flight_stays_unknown_and_is_resolved_not_resent(trading, tmp_path):
    """A send whose answer is dropped and whose look-up fails too raises OrderStatusUnknownError
    with the intent unknown in the journal; sending the same intent later asks first."""
    with trading(balances={"USDT": "1000", "SOL": "5"}) as venue:
        broker = venue.broker(check_before_submit=False, recv_window_ms=300)
        price = sol_price(venue)
        h = ex.holding("SOLUSDT", price, Decimal("5"), price)
        request = ex.market_exit(JOB, "SOLUSDT", venue.start_ms, h.account, "signal",
                                 broker.filters("SOLUSDT"))
        with open_journal(tmp_path / "j.sqlite", broker) as journal:
            venue.control.set_faults(queue=["drop"] + ["5xx"] * 6,
                                     paths=["/api/v3/order"])
            try:
                send_intent(request, "signal", venue.start_ms, broker, journal)
            except OrderStatusUnknownError:
                pass
            else:
                raise AssertionError("the dropped answer was not reported as unknown")
            venue.control.set_faults()
            assert [i.client_id for i in journal.unknown_intents()] == [request.client_id]
            order = send_intent(request, "signal", venue.start_ms, broker, journal)
            assert order.status == "FILLED" and journal.unknown_intents() == []
            assert resolve_unknown(journal, broker) == ([], [], 0)
            assert len(journal.fills("SOLUSDT")) == len(order.fills) > 0
        sent = [o["clientOrderId"] for o in venue.client().get_all_orders(symbol="SOLUSDT")]
        assert sent == [request.client_id]
