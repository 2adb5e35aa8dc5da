"""The live report, rendered from journals of paper runs on a day of real candles (real market
orders through the PaperBroker, journaled by live.journal): files and pages, the arithmetic of
slippage, latency, hourly counts, round trips and active hours against the journal, a journal
file or its folder, a journal that is still being written, and bad input."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from support.report_files import check_report

LIVE_FIGURES = [("equity", "tall"), ("slippage", "wide"), ("latency", "wide"), ("activity", "wide"),
                ("hours", "wide"), ("positions", "wide")]


def test_live_report_of_a_journal_file_is_written_beside_it(cli, paper_run):
    folder = paper_run()
    code, stdout, stderr = cli("report", folder / "journal.sqlite")
    assert code == 0, stderr
    assert stdout.startswith(f"report: {folder / 'report.html'}")
    check_report(folder, LIVE_FIGURES)
    # the folder gives the same pictures as the file
    before = {p.name: p.read_bytes() for p in sorted((folder / "figures").glob("*.png"))}
    assert cli("report", folder)[0] == 0
    assert {p.name: p.read_bytes() for p in sorted((folder / "figures").glob("*.png"))} == before


def test_different_journals_give_different_pictures(cli, paper_run):
    a, b = paper_run(), paper_run("longer", every=30, hold=12)
    pictures = []
    for folder in (a, b):
        assert cli("report", folder)[0] == 0
        pictures.append({p.name: p.read_bytes() for p in (folder / "figures").glob("*.png")})
    assert [n for n in pictures[0] if pictures[0][n] == pictures[1][n]] == []


def test_slippage_is_the_fill_against_the_decision_close(paper_run, shared_data):
    from binance_cluster.report.live import load_live, slippage_bps
    from support.live import T0
    from support.real_data import read_real

    run = load_live(paper_run())
    points = slippage_bps(run)
    market = [f for f in run.fills]
    assert len(points) == len(market) > 20
    closes = {s: read_real(shared_data, s, T0, T0 + 86_400_000) for s in ("BTCUSDT", "ETHUSDT")}
    for (t, symbol, side, bps), fill in zip(points, market):
        c = closes[symbol]
        i = int(np.searchsorted(c.open_time, t, side="right")) - 2   # the bar the decision closed
        ratio = float(fill.price) / c.close[i]
        assert bps == pytest.approx((ratio - 1 if side == "BUY" else 1 - ratio) * 1e4, abs=1e-9)
        # the paper broker fills at the next open with 5 bps slippage, rounded to the tick
        expected = c.open[i + 1] * (1.0005 if side == "BUY" else 0.9995)
        assert float(fill.price) == pytest.approx(expected, rel=2e-4)


def test_round_trips_realise_the_journals_pnl_and_hours_follow_the_shifts_rule(paper_run):
    from binance_cluster.report.live import hourly_wins, load_live, round_trips

    run = load_live(paper_run())
    trips = round_trips(run)
    realised = sum(p.realised for p in run.positions.values())
    assert len(trips) > 20
    assert sum(pnl for *_, pnl in trips) == pytest.approx(float(realised), abs=1e-6)
    closed, won, active = hourly_wins(run)
    assert closed.sum() == len(trips)
    assert won.sum() == sum(1 for *_, pnl in trips if pnl > 5e-9)
    on, rate, minimum = run.shifts
    assert (on, rate, minimum) == (True, 0.5, 2)         # from the job.toml beside the journal
    expect = (closed >= minimum) & (won >= rate * np.maximum(closed, 1)) & (closed > 0)
    assert np.array_equal(active, expect)
    for symbol, decided, exit_ms, _ in trips:
        hour = ((decided + run.interval_ms) // 3_600_000) % 24
        assert 0 <= hour < 24 and exit_ms > decided


def test_latency_and_hourly_counts_come_from_the_journal(paper_run):
    from binance_cluster.report.live import load_live, per_hour

    run = load_live(paper_run())
    assert len(run.bars) == 1439
    assert all(b.latency_ms >= b.decided_ms - b.close_ms >= 0 for b in run.bars)
    first, last = run.span()
    orders = per_hour([i.created_ms for i in run.intents], first, last)
    assert orders.sum() == len(run.intents) and len(orders) == 24
    errors = [i for i in run.intents if i.error is not None]
    assert errors and all("notional" in i.error.lower() for i in errors)
    assert run.refusals and {r[2] for r in run.refusals} == {"max_open_positions"}
    assert per_hour([r[0] for r in run.refusals], first, last).sum() == len(run.refusals)


def test_a_journal_being_written_renders_and_is_left_as_it_was(cli, paper_run, tmp_path):
    import shutil

    folder = tmp_path / "running"
    shutil.copytree(paper_run(), folder)
    journal = folder / "journal.sqlite"
    writer = sqlite3.connect(journal)           # the loop holds the journal open, mid-write
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO refusals (bar_ms, symbol, rule, detail, time_ms) VALUES (1, 'X', 'r', 'd', 1)")
    before = journal.read_bytes()
    code, _, stderr = cli("report", folder)
    assert code == 0, stderr
    writer.rollback()
    writer.close()
    assert journal.read_bytes() == before


def test_not_a_journal_names_the_path_and_exits_2(cli, tmp_path):
    bad = tmp_path / "journal.sqlite"
    bad.write_text("not sqlite")
    code, _, stderr = cli("report", tmp_path, "--kind", "live")
    assert code == 2 and stderr.strip().count("\n") == 0 and str(tmp_path) in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal.sqlite"]
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    code, _, stderr = cli("report", other)
    assert code == 2 and str(other) in stderr


def test_render_report_is_the_live_commands_entry_point(paper_run, tmp_path):
    from binance_cluster.report.render import render_report

    files = render_report(paper_run() / "journal.sqlite", kind="live", out=tmp_path / "r")
    assert files.html == tmp_path / "r" / "report.html" and len(files.pngs) == len(LIVE_FIGURES)
