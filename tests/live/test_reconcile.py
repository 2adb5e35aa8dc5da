"""Start-up reconciliation against the emulator through the real python-binance client: what
a crash left unknown is queried (never re-sent), what filled while down is journaled, what the
job did not place is reported and left alone."""

from __future__ import annotations

from decimal import Decimal

import pytest

from binance_cluster.exchange.broker import OrderRequest, client_order_id
from binance_cluster.exchange.broker.ids import leg_ids, list_id_of
from binance_cluster.live.journal import Journal
from binance_cluster.exchange.broker.errors import OrderStatusUnknownError
from binance_cluster.live.reconcile import NOT_PLACED, reconcile, resolve_unknown
from binance_cluster.types import MINUTE_MS

from support.live import fake_fill


def open_journal(path, broker) -> Journal:
    journal = Journal(path, job="recon")
    f = broker.filters("BTCUSDT")
    journal.record_symbol("BTCUSDT", f.base_asset, f.quote_asset)
    return journal


def test_an_order_sent_before_a_crash_is_found_not_sent_again(trading, tmp_path):
    with trading(balances={"USDT": "10000"}) as venue:
        broker = venue.broker()
        buy = OrderRequest("BTCUSDT", "BUY", "MARKET", client_order_id("recon", "BTCUSDT", venue.start_ms,
                                                                       "entry"), quote_amount="1000")
        never = OrderRequest("BTCUSDT", "BUY", "MARKET", client_order_id("recon", "BTCUSDT", venue.start_ms,
                                                                         "entry2"), quote_amount="500")
        with open_journal(tmp_path / "j.sqlite", broker) as journal:
            journal.record_intent(buy, "entry", venue.start_ms)
            broker.submit(buy)                      # the answer is lost: the process "dies" here
            journal.record_intent(never, "entry", venue.start_ms)   # journaled, never sent
        with open_journal(tmp_path / "j.sqlite", broker) as journal:
            result = reconcile(journal, broker, ["BTCUSDT"])
            assert result.resolved == ((buy.client_id, "FILLED"),)
            assert result.not_placed == (never.client_id,) and result.new_fills == 1
            assert journal.unknown_intents() == []
            assert [i.error for i in journal.intents() if i.client_id == never.client_id] == [NOT_PLACED]
            position = journal.positions()["BTCUSDT"]
            assert position.quantity == broker.balances()["BTC"].total > 0
            assert result.mismatches == () and result.foreign_orders == ()
            assert result.summary() == ("reconciled with the exchange: 1 unanswered order(s) found, "
                                        "1 never placed, 0 open order(s) changed, 1 fill(s) "
                                        "journaled, 0 foreign order(s), 0 mismatch(es)")
            again = reconcile(journal, broker, ["BTCUSDT"])       # a second start finds nothing new
            assert again.resolved == () and again.not_placed == () and again.new_fills == 0
        orders = venue.client().get_all_orders(symbol="BTCUSDT")
        assert [o["clientOrderId"] for o in orders] == [buy.client_id]   # nothing was re-sent


def test_an_order_sent_again_after_a_restart_and_lost_in_a_second_crash_is_found(trading, tmp_path):
    """Not placed before the first crash, sent again (same client id) by the restarted job,
    which dies before the answer: the next start still queries it."""
    with trading(balances={"USDT": "10000"}) as venue:
        broker = venue.broker()
        buy = OrderRequest("BTCUSDT", "BUY", "MARKET", client_order_id("recon", "BTCUSDT", venue.start_ms,
                                                                       "entry"), quote_amount="1000")
        with open_journal(tmp_path / "j.sqlite", broker) as journal:
            journal.record_intent(buy, "entry", venue.start_ms)          # first crash: not sent
        with open_journal(tmp_path / "j.sqlite", broker) as journal:
            assert reconcile(journal, broker, ["BTCUSDT"]).not_placed == (buy.client_id,)
            assert not journal.record_intent(buy, "entry", venue.start_ms)
            journal.record_resend(buy.client_id)
            broker.submit(buy)                       # second crash: the answer is lost
        with open_journal(tmp_path / "j.sqlite", broker) as journal:
            result = reconcile(journal, broker, ["BTCUSDT"])
            assert result.resolved == ((buy.client_id, "FILLED"),) and result.new_fills == 1
            assert result.mismatches == ()
            assert journal.positions()["BTCUSDT"].quantity == broker.balances()["BTC"].total > 0


def test_a_protective_exit_that_filled_while_down_is_journaled(trading, tmp_path):
    with trading(balances={"USDT": "10000"}) as venue:
        broker = venue.broker()
        t0 = venue.start_ms
        with open_journal(tmp_path / "j.sqlite", broker) as journal:
            buy = OrderRequest("BTCUSDT", "BUY", "MARKET", client_order_id("recon", "BTCUSDT", t0, "entry"),
                               quote_amount="1000")
            journal.record_intent(buy, "entry", t0)
            filled = broker.submit(buy)
            journal.record_answer(filled)
            held = journal.positions()["BTCUSDT"].quantity
            price = filled.avg_price
            oco = OrderRequest("BTCUSDT", "SELL", "OCO", client_order_id("recon", "BTCUSDT", t0, "protect"),
                               quantity=broker.filters("BTCUSDT").floor_qty(held),
                               price=price * Decimal("1.003"), stop_price=price * Decimal("0.997"))
            journal.record_intent(oco, "protect", t0)
            journal.record_answer(broker.submit(oco))
            assert [i.client_id for i in journal.open_intents()] == [oco.client_id]
        venue.control.advance_replay(600 * MINUTE_MS)   # the bot is down; one leg fills
        with open_journal(tmp_path / "j.sqlite", broker) as journal:
            result = reconcile(journal, broker, ["BTCUSDT"])
            assert result.refreshed == ((oco.client_id, "FILLED"),) and result.new_fills == 1
            assert journal.open_intents() == []
            position = journal.positions()["BTCUSDT"]
            assert position.quantity == broker.balances()["BTC"].total   # the dust under a lot step
            assert position.realised != 0


def test_orders_the_job_did_not_place_are_reported_and_left_alone(trading, tmp_path):
    with trading(balances={"USDT": "10000", "BTC": "0.5"}) as venue:
        broker = venue.broker()
        manual = venue.client().create_order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                                             quantity="0.01", price="1000", newClientOrderId="by-hand-1")
        with open_journal(tmp_path / "j.sqlite", broker) as journal:
            result = reconcile(journal, broker, ["BTCUSDT"])
            assert [o.client_id for o in result.foreign_orders] == [manual["clientOrderId"]]
            assert "by-hand-1: open order not placed by this job (left alone)" in result.lines()[0]
        assert [o.client_id for o in broker.open_orders("BTCUSDT")] == ["by-hand-1"]


def test_a_journal_holding_more_than_the_account_is_a_mismatch(trading, tmp_path):
    with trading(balances={"USDT": "10000"}) as venue:
        broker = venue.broker()
        with open_journal(tmp_path / "j.sqlite", broker) as journal:
            journal.record_fills([fake_fill("BTCUSDT", 1, "BUY", "60000", "0.01", "0", "BTC")])
            result = reconcile(journal, broker, ["BTCUSDT"])
            assert result.mismatches == ("BTCUSDT: the journal holds 0.01 BTC, the account 0",)


def test_leg_ids_map_back_to_their_list():
    tp, sl = leg_ids("bcprotect-abc")
    assert list_id_of(tp) == list_id_of(sl) == "bcprotect-abc"
    assert list_id_of("bcentry-abc") is None and list_id_of("-tp") is None


def test_an_order_whose_outcome_is_unknown_stays_unknown_and_its_fill_is_found(trading, tmp_path):
    """The submit was executed but its answer dropped, and every query about it failed: the
    loop leaves the intent unanswered (never "refused"), and the query before the next bar
    (`resolve_unknown`, as `LiveLoop._sync_fills` runs it) journals the order and its fill."""
    with trading(balances={"USDT": "10000"}, weight_limit=0) as venue:
        broker = venue.broker(recv_window_ms=350, timeout_s=2.0)
        buy = OrderRequest("BTCUSDT", "BUY", "MARKET", client_order_id("recon", "BTCUSDT", venue.start_ms,
                                                                       "entry"), quote_amount="1000")
        with open_journal(tmp_path / "j.sqlite", broker) as journal:
            journal.record_intent(buy, "entry", venue.start_ms)
            venue.control.set_faults(queue=["ok", "drop"], rates={"5xx": 1.0},
                                     paths=["/api/v3/order"])
            with pytest.raises(OrderStatusUnknownError):
                broker.submit(buy)
            venue.control.set_faults()
            assert [i.client_id for i in journal.unknown_intents()] == [buy.client_id]
            resolved, not_placed, fills = resolve_unknown(journal, broker)
            assert resolved == [(buy.client_id, "FILLED")] and not_placed == [] and fills == 1
            assert journal.unknown_intents() == []
            assert journal.positions()["BTCUSDT"].quantity == broker.balances()["BTC"].total > 0
            assert resolve_unknown(journal, broker) == ([], [], 0)     # nothing new the next bar
        orders = venue.client().get_all_orders(symbol="BTCUSDT")
        assert [o["clientOrderId"] for o in orders] == [buy.client_id]   # sent once
