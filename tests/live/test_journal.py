"""The live journal: intents survive a crash, fills are kept once, positions come from fills
and equal the exchange's balances, `status` reads it without altering it."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

from binance_cluster.exchange.broker import OrderRequest, client_order_id
from binance_cluster.exchange.broker.base import Fill, Order
from binance_cluster.live.journal import (BarRecord, Journal, JournalConflictError, NotAJournalError,
                                          position_from_fills)

from support.live import T0, fake_fill


DAY = 86_400_000


def fill(trade_id: int, side: str, price: str, qty: str, commission: str, asset: str,
         time_ms: int = T0, symbol: str = "BTCUSDT") -> Fill:
    return fake_fill(symbol, trade_id, side, price, qty, commission, asset, time_ms)


def file_hash(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_intent_written_before_a_crash_is_found_unanswered(tmp_path):
    path = tmp_path / "journal.sqlite"
    script = textwrap.dedent(f"""
        import os, signal
        from binance_cluster.exchange.broker import OrderRequest
        from binance_cluster.live.journal import Journal
        j = Journal({str(path)!r}, job="crash")
        j.record_intent(OrderRequest("BTCUSDT", "BUY", "MARKET", "bcentry-1", quote_amount="100"),
                        "entry", {T0})
        os.kill(os.getpid(), signal.SIGKILL)   # dies "during the send": no answer recorded
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    with Journal(path, job="crash") as j:
        unknown = j.unknown_intents()
        assert [i.client_id for i in unknown] == ["bcentry-1"]
        assert unknown[0].fields == {"quote_amount": Decimal("100")} and unknown[0].bar_ms == T0
        j.record_answer(Order("BTCUSDT", "bcentry-1", "BUY", "MARKET", "FILLED", Decimal("0.001"),
                              executed_qty=Decimal("0.001"), order_id=7))
        assert j.unknown_intents() == [] and j.open_intents() == []
        assert j.intents()[0].status == "FILLED"


def test_the_same_intent_is_recorded_once_and_a_changed_one_is_refused(tmp_path):
    with Journal(tmp_path / "j.sqlite", job="demo") as j:
        request = OrderRequest("BTCUSDT", "BUY", "LIMIT", "bcentry-2", quantity="0.01", price="90000")
        assert j.record_intent(request, "entry", T0) is True
        assert j.record_intent(request, "entry", T0) is False   # re-derived after a restart
        changed = OrderRequest("BTCUSDT", "BUY", "LIMIT", "bcentry-2", quantity="0.02", price="90000")
        with pytest.raises(JournalConflictError, match="bcentry-2"):
            j.record_intent(changed, "entry", T0)
        j.record_answer(Order("BTCUSDT", "bcentry-2", "BUY", "LIMIT", "NEW", Decimal("0.01")))
        assert [i.client_id for i in j.open_intents()] == ["bcentry-2"]
        j.record_error("bcentry-3", "Account has insufficient balance", -2010)
        assert len(j.intents()) == 1


def test_order_ids_are_those_the_exchange_gave_the_placed_intents(tmp_path):
    with Journal(tmp_path / "journal.sqlite", job="t") as j:
        for cid in ("bcentry-1", "bcentry-2", "bcentry-3"):
            j.record_intent(OrderRequest("BTCUSDT", "BUY", "MARKET", cid, quantity="0.001"),
                            "entry", T0)
        j.record_answer(Order("BTCUSDT", "bcentry-1", "BUY", "MARKET", "FILLED", Decimal("0.001"),
                              order_id=41))
        j.record_error("bcentry-2", "refused", -2010)
        assert j.order_ids(["bcentry-1", "bcentry-2", "bcentry-3"]) == {("BTCUSDT", 41)}
        assert j.order_ids([]) == set()


def test_a_journal_of_another_job_or_version_is_refused(tmp_path):
    path = tmp_path / "j.sqlite"
    Journal(path, job="a").close()
    with pytest.raises(NotAJournalError, match="job 'a', not 'b'"):
        Journal(path, job="b")
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(NotAJournalError, match="schema version 99"):
        Journal(path, readonly=True)
    (tmp_path / "text.sqlite").write_text("not a database\n" * 100)
    with pytest.raises(NotAJournalError, match="text.sqlite: not a journal"):
        Journal(tmp_path / "text.sqlite")


def test_positions_come_from_fills_with_commissions_in_the_asset_taken(tmp_path):
    with Journal(tmp_path / "j.sqlite", job="demo") as j:
        j.record_symbol("BTCUSDT", "BTC", "USDT")
        buy = fill(1, "BUY", "100000", "0.01", "0.00001", "BTC")
        assert j.record_fills([buy]) == 1
        assert j.record_fills([buy]) == 0          # the same trade seen again: kept once
        p = j.positions()["BTCUSDT"]
        assert p.quantity == Decimal("0.00999")    # Binance keeps the buy's commission in BTC
        assert p.cost == Decimal("1000") and p.avg_cost == Decimal("1000") / Decimal("0.00999")
        sell = fill(2, "SELL", "101000", "0.00999", "1.00899", "USDT", time_ms=T0 + DAY)
        j.record_fills([sell])
        p = j.positions()["BTCUSDT"]
        assert p.quantity == 0 and p.cost == 0
        assert p.realised == Decimal("1008.99") - Decimal("1.00899") - Decimal("1000")
        assert j.realised_since(T0 + DAY) == p.realised   # realised on the sell's day
        assert j.realised_since(T0 + 2 * DAY) == 0
        assert j.positions(until_ms=T0)["BTCUSDT"].quantity == Decimal("0.00999")
        assert j.last_trade_id("BTCUSDT") == 2 and j.last_trade_id("ETHUSDT") is None


def test_commissions_paid_in_bnb_are_kept_apart_and_a_partial_sell_keeps_the_average_cost():
    fills = [fill(1, "BUY", "100", "2", "0.0005", "BNB"), fill(2, "BUY", "130", "1", "0.0004", "BNB"),
             fill(3, "SELL", "120", "1.5", "0.0003", "BNB")]
    p = position_from_fills("SOLUSDT", "SOL", "USDT", fills)
    assert p.quantity == Decimal("1.5") and p.other_fees == {"BNB": Decimal("0.0012")}
    assert p.cost == Decimal("330") * Decimal("1.5") / Decimal("3")
    assert p.realised == Decimal("180") - Decimal("330") * Decimal("1.5") / Decimal("3")


def test_journal_positions_equal_the_exchange_balances_after_real_orders(trading, tmp_path):
    with trading(balances={"USDT": "10000"}) as venue, Journal(tmp_path / "j.sqlite", job="flow") as j:
        broker = venue.broker()
        f = broker.filters("BTCUSDT")
        j.record_symbol("BTCUSDT", f.base_asset, f.quote_asset)
        t0 = venue.start_ms
        buy_id = client_order_id("flow", "BTCUSDT", t0, "entry")
        request = OrderRequest("BTCUSDT", "BUY", "MARKET", buy_id, quote_amount="1000")
        j.record_intent(request, "entry", t0)
        j.record_answer(broker.submit(request))
        held = j.positions()["BTCUSDT"].quantity
        assert held == broker.balances()["BTC"].free      # 0.001 commission stayed in BTC
        sell_qty = f.floor_qty(held)
        sell_id = client_order_id("flow", "BTCUSDT", t0 + 60_000, "exit")
        sell = OrderRequest("BTCUSDT", "SELL", "MARKET", sell_id, quantity=sell_qty)
        j.record_intent(sell, "exit", t0 + 60_000)
        venue.control.advance_replay(60_000)
        assert j.record_answer(broker.submit(sell)) == 1           # the answer carries its fill
        assert j.record_fills(broker.fills_since("BTCUSDT")) == 0   # both fills are there already
        balances = broker.balances()
        p = j.positions()["BTCUSDT"]
        assert p.quantity == balances["BTC"].free == held - sell_qty   # the dust under a lot step
        spent = sum(fl.quote_qty for fl in j.fills("BTCUSDT") if fl.side == "BUY")
        got = sum(fl.quote_qty - fl.commission for fl in j.fills("BTCUSDT") if fl.side == "SELL")
        assert balances["USDT"].free == Decimal("10000") - spent + got
        assert j.unknown_intents() == [] and [i.status for i in j.intents()] == ["FILLED", "FILLED"]


def test_status_shows_the_journal_without_altering_it(tmp_path, cli):
    path = tmp_path / "journal.sqlite"
    with Journal(path, job="paper-demo") as j:
        j.record_symbol("BTCUSDT", "BTC", "USDT")
        j.record_fills([fill(1, "BUY", "100000", "0.01", "0.00001", "BTC", time_ms=T0 + 5 * 60_000),
                        fill(2, "SELL", "101000", "0.004", "0.404", "USDT", time_ms=T0 + 9 * 60_000)])
        j.record_intent(OrderRequest("BTCUSDT", "SELL", "LIMIT", "bctp-1", quantity="0.005",
                                     price="105000"), "take_profit", T0 + 9 * 60_000)
        j.record_answer(Order("BTCUSDT", "bctp-1", "SELL", "LIMIT", "NEW", Decimal("0.005")))
        j.record_intent(OrderRequest("BTCUSDT", "SELL", "MARKET", "bcexit-2", quantity="0.001"),
                        "exit", T0 + 10 * 60_000)
        for k in range(3):
            j.record_bar(BarRecord(bar_ms=T0 + k * 60_000, close_ms=T0 + (k + 1) * 60_000,
                                   decided_ms=T0 + (k + 1) * 60_000 + 40 + k,
                                   last_order_ms=T0 + (k + 1) * 60_000 + 90 if k == 2 else None,
                                   orders=1 if k == 2 else 0, equity=Decimal("10000.5"), skipped={}))
    before = file_hash(path)
    code, out, err = cli("status", "--journal", path)
    assert code == 0, err
    assert "job paper-demo" in out and "realised PnL on 2025-05-05 (UTC): " in out
    realised = Decimal("404") - Decimal("0.404") - Decimal("1000") * Decimal("0.004") / Decimal("0.00999")
    assert f"(UTC): {realised:.8f}".rstrip("0") + "\n" in out  # 8 decimals at most, as Binance
    assert "BTCUSDT" in out and "0.00599" in out           # 0.00999 bought net, 0.004 sold
    assert "bctp-1" in out and "NEW" in out
    assert "1 order(s) sent without an answer yet" in out and "bcexit-2" in out
    assert "90 ms" in out and "40 ms" in out and "41 ms" in out
    code, out, _ = cli("status", "--journal", path, "--json", "--bars", "2")
    data = json.loads(out)
    assert data["positions"][0]["quantity"] == "0.00599" and data["unanswered"] == ["bcexit-2"]
    assert [b["latency_ms"] for b in data["bars"]] == [41, 90]
    assert file_hash(path) == before


def test_status_names_a_missing_or_foreign_file(tmp_path, cli):
    code, _, err = cli("status", "--journal", tmp_path / "nope.sqlite")
    assert code == 2 and "nope.sqlite: journal not found" in err and len(err.strip().splitlines()) == 1
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    code, _, err = cli("status", "--journal", other)
    assert code == 2 and "not a binance-cluster journal" in err
    assert os.path.getsize(other) > 0


def test_a_bars_decisions_are_one_commit_and_survive_a_crash(tmp_path):
    path = tmp_path / "journal.sqlite"
    script = textwrap.dedent(f"""
        import os, signal
        from binance_cluster.live.journal import Journal
        j = Journal({str(path)!r}, job="crash")
        statements = []
        j._db.set_trace_callback(statements.append)
        j.record_decisions([({T0}, f"S{{k:02d}}USDT", "entry", {T0}, 0.5 + k, None) for k in range(40)]
                           + [({T0}, "BTCUSDT", "end", {T0}, None, {{"status": "BREAK"}})])
        assert sum(s.startswith("COMMIT") for s in statements) == 1, statements
        os.kill(os.getpid(), signal.SIGKILL)   # right after the bar's decisions, before any send
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    with Journal(path, readonly=True) as j:
        rows = j.decisions()
    assert len(rows) == 41 and [r["symbol"] for r in rows[:2]] == ["S00USDT", "S01USDT"]
    assert rows[0] == dict(bar_ms=T0, symbol="S00USDT", action="entry", inputs_bar_ms=T0, score=0.5,
                           detail={})
    assert rows[-1]["detail"] == {"status": "BREAK"} and rows[-1]["score"] is None
