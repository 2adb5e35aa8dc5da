"""The daily-loss rule's PnL counts each real fill once, also when a bar is decided again after
a restart: rank 0 of a one-rank testnet run in-process (`support.live.InProcessLoop`) against
the emulator replaying real 15m candles, its journal reopened by a second loop as a restarted
job would.

A bar whose decision sold a position at the next open: the restarted job deciding that bar
again takes the sale back (`state.split_at_close`) and still holds the position, valued at the
close; the sale's realised PnL must not be counted on top (it was, before), so the PnL equals
the one the bar was first decided on."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from binance_cluster.candles.store import CandleStore
from binance_cluster.exchange.emulator import EmulatorControl
from binance_cluster.types import MINUTE_MS, interval_ms
from support.live import (REPLAY_FIRST, REPLAY_INTERVAL, REPLAY_MONEY, REPLAY_SYMBOLS,
                          SIGNALS_ONLY, InProcessLoop, replay_job, stepped_emulator)

pytestmark = pytest.mark.usefixtures("test_keys")
SYMBOLS, INTERVAL, FIRST = REPLAY_SYMBOLS, REPLAY_INTERVAL, REPLAY_FIRST
BAR_MS = interval_ms(INTERVAL)
CASH, FEE, SLIPPAGE = REPLAY_MONEY
SIGNALS = SIGNALS_ONLY


def closes_at(source: CandleStore, bar: int) -> np.ndarray:
    """Each symbol's close of the bar opening at `bar` (its last minute's close)."""
    last = bar + BAR_MS - MINUTE_MS
    return np.array([float(source.read(s, "1m", last, last + MINUTE_MS).close[0])
                     for s in SYMBOLS])


def pnl_at(loop, bar: int, closes) -> Decimal:
    holdings, _ = loop._account(bar, close_exits=True)
    return loop._day_pnl(bar, holdings, closes)


def test_a_bar_decided_again_after_a_restart_counts_its_sale_once(replay_source, tmp_path):
    with stepped_emulator(replay_source, tmp_path, FIRST, BAR_MS, CASH, FEE, SLIPPAGE) as url:
        control = EmulatorControl(url)
        job = replay_job(tmp_path, url, "day-pnl", SIGNALS, 60)
        sold_at, first_pnl = None, None
        with InProcessLoop(job, url, control) as run:
            for k in range(40):
                bar = FIRST + k * BAR_MS
                control.set_replay(bar + BAR_MS)
                before = pnl_at(run.loop, bar, closes_at(replay_source, bar))
                run.bar(bar)
                if any(i.purpose == "signal" and i.bar_ms == bar and i.status == "FILLED"
                       for i in run.journal.intents()):
                    sold_at, first_pnl = bar, before
                    break
            assert sold_at is not None, "no signal exit in 40 bars"
            sale = [f for f in run.journal.fills() if f.side == "SELL"]
            realised = run.journal.realised_since(sold_at - sold_at % 86_400_000)
        with InProcessLoop(job, url, control) as restarted:      # the same journal, a new job
            again = pnl_at(restarted.loop, sold_at, closes_at(replay_source, sold_at))
    assert sale and all(f.time_ms >= sold_at + BAR_MS for f in sale)   # sold after the close
    assert realised != 0
    assert again == first_pnl
