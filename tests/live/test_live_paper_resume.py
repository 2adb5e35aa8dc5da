"""A paper run restarted on its journal resumes its paper account (balances, the protective
orders resting, fills, order and trade ids) as a testnet run resumes the exchange's: rank 0
of a one-rank paper run in-process (`support.live.InProcessLoop`) on the emulator's public
candles (real 15m bars, replay clock stepped), stopped with a position open and its OCO
resting, then started again on the same journal; and a new journal starts a new account."""

from __future__ import annotations

from decimal import Decimal

import pytest

from binance_cluster.exchange.emulator import EmulatorControl
from binance_cluster.types import interval_ms
from support.live import (PROTECTED, REPLAY_FIRST, REPLAY_INTERVAL, REPLAY_MONEY, REPLAY_SYMBOLS,
                          InProcessLoop, replay_job, stepped_emulator)

SYMBOLS, INTERVAL, FIRST = REPLAY_SYMBOLS, REPLAY_INTERVAL, REPLAY_FIRST
BAR_MS = interval_ms(INTERVAL)
CASH, FEE, SLIPPAGE = REPLAY_MONEY


def account_matches_journal(run: InProcessLoop) -> None:
    """The paper balances are what the journal's fills make of the initial cash."""
    balances = run.loop.broker.balances()
    positions = run.journal.positions()
    cash = Decimal(repr(CASH))
    for f in run.journal.fills():
        quote_fee = f.commission if f.commission_asset == "USDT" else 0
        cash += (f.quote_qty - quote_fee) if f.side == "SELL" else -f.quote_qty - quote_fee
    assert balances["USDT"].total == cash
    for s in SYMBOLS:
        base = s.removesuffix("USDT")
        held = positions[s].quantity if s in positions else Decimal(0)
        assert (balances[base].total if base in balances else Decimal(0)) == held, s


def test_a_paper_run_restarted_on_its_journal_resumes_its_account(replay_source, tmp_path):
    with stepped_emulator(replay_source, tmp_path, FIRST, BAR_MS, CASH, FEE, SLIPPAGE) as url:
        control = EmulatorControl(url)
        job = replay_job(tmp_path, url, "paper-resume", PROTECTED, 60)
        k = 0
        with InProcessLoop(job, url, control, mode="paper") as run:
            while k < 40 and not run.loop.broker.open_orders():
                run.bar(FIRST + k * BAR_MS)
                k += 1
            resting = run.loop.broker.open_orders()
            assert resting, "no protective order resting in 40 bars"
            balances = run.loop.broker.balances()
            fills = run.journal.fills()
            account_matches_journal(run)
        with InProcessLoop(job, url, control, mode="paper") as again:
            assert again.loop.broker.balances() == balances
            assert again.loop.broker.open_orders() == resting
            assert again.reconciled.mismatches == () and again.reconciled.new_fills == 0
            assert again.reconciled.not_placed == () and again.restored == 0
            for j in range(k, k + 12):
                again.bar(FIRST + j * BAR_MS)
            account_matches_journal(again)
            later = again.journal.fills()
            bars = again.journal.bars()
        assert (tmp_path / "out" / "paper-account.pickle").is_file()
        for path in (tmp_path / "out").glob("journal.sqlite*"):
            path.unlink()
        with InProcessLoop(job, url, control, mode="paper") as fresh:   # a new journal
            assert {a: b.total for a, b in fresh.loop.broker.balances().items()} == {
                "USDT": Decimal(repr(CASH))}
            assert fresh.loop.broker.open_orders() == []
    assert USDT_spent(fills) > 0
    assert later[:len(fills)] == fills and len(later) > len(fills)     # it traded on
    ids = [(f.symbol, f.trade_id) for f in later]
    assert len(set(ids)) == len(ids)
    assert [b.bar_ms for b in bars] == [FIRST + j * BAR_MS for j in range(k + 12)]
    assert all(not b.skipped for b in bars)


def USDT_spent(fills) -> Decimal:
    return sum((f.quote_qty for f in fills if f.side == "BUY"), Decimal(0))
