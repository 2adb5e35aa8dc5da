"""The live loop when the exchange cannot be reached for a bar, and an order whose outcome was
unknown: rank 0 of a one-rank run built in-process as `binance-cluster live --mode testnet`
builds it (`support.live.InProcessLoop`), the real python-binance client over HTTP against the
emulator replaying real 15m candles bar by bar, with the emulator's own faults (queued on one
endpoint) failing requests past the transport's six tries.

- A read that still fails after its retries (the account's balances, exchangeInfo) skips the
  bar with the reason printed and journaled; the loop decides the next bar as usual. A clock
  read that fails is tried again after `poll_seconds`, and the bar is handled then. A key the
  exchange refuses is not a passing fault: it ends the run.
- A protective order whose answer is lost and whose look-up fails too skips the rest of the
  bar; the next bar finds it by its client id (never placed twice).
- An entry whose outcome was unknown, found filled at the next bar, is protected in that bar;
  a protection the exchange never took is placed before the bar after the skipped one.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from binance_cluster.exchange.broker.errors import AuthenticationError
from binance_cluster.exchange.broker.ids import client_order_id, list_id_of
from binance_cluster.exchange.emulator import EmulatorControl
from binance_cluster.types import interval_ms
from support.broker import keyed_client
from support.live import (KEY, PROTECTED, REPLAY_FIRST, REPLAY_INTERVAL, REPLAY_MONEY,
                          REPLAY_SYMBOLS, SECRET, SIGNALS_ONLY, InProcessLoop, replay_job,
                          stepped_emulator)

pytestmark = pytest.mark.usefixtures("test_keys")
SYMBOLS, INTERVAL, FIRST = REPLAY_SYMBOLS, REPLAY_INTERVAL, REPLAY_FIRST
BAR_MS = interval_ms(INTERVAL)
CASH, FEE, SLIPPAGE = REPLAY_MONEY
SIGNALS = SIGNALS_ONLY
# short timeouts and recvWindow: an ambiguous order is looked up within a second
REQUESTS = 'timeout_seconds = 2\nrecv_window_ms = 300\nexits = "exchange"\n'
FIVE_XX = ["5xx"] * 6            # six failures in a row: the transport gives up


def write_job(root: Path, url: str, params_and_risk: str) -> Path:
    return replay_job(root, url, "unreachable", params_and_risk, 40, extra=REQUESTS)


def first_entry_bar(journal) -> int | None:
    bars = [i.bar_ms for i in journal.intents() if i.purpose == "entry"]
    return min(bars) if bars else None


def run_to_first_entry(run) -> tuple[int, int]:
    """Bars from FIRST on until the first entry is sent (at most 30): (its bar, the index of
    the next bar)."""
    k = 0
    while first_entry_bar(run.journal) is None and k < 30:
        run.bar(FIRST + k * BAR_MS)
        k += 1
    entered = first_entry_bar(run.journal)
    assert entered is not None, "no entry in 30 bars"
    return entered, k


def test_a_bar_the_exchange_cannot_serve_is_skipped_and_the_loop_goes_on(replay_source, tmp_path):
    with stepped_emulator(replay_source, tmp_path, FIRST, BAR_MS, CASH, FEE, SLIPPAGE) as url:
        control = EmulatorControl(url)
        with InProcessLoop(write_job(tmp_path, url, SIGNALS), url, control) as run:
            run.bar(FIRST)
            control.set_faults(queue=FIVE_XX, paths=["/api/v3/account"])
            run.bar(FIRST + BAR_MS)                  # the balances cannot be read
            control.set_faults(queue=FIVE_XX, paths=["/api/v3/exchangeInfo"])
            run.bar(FIRST + 2 * BAR_MS)              # nor the symbols' statuses
            control.set_faults(queue=FIVE_XX, paths=["/api/v3/time"])
            run.bar(FIRST + 3 * BAR_MS)              # the clock: read again, then the bar
            counts = control.faults()["counts"]
            control.set_faults()
            for k in range(4, 8):
                run.bar(FIRST + k * BAR_MS)
            bars = run.journal.bars()
            # a key the exchange stops accepting (here: signed with another secret) is no
            # passing fault: the run ends (the command prints one line, exits non-zero)
            run.loop.broker._client.API_SECRET = "bcNotTheSecret"
            with pytest.raises(AuthenticationError):
                run.bar(FIRST + 8 * BAR_MS)
            assert len(run.journal.bars()) == 8
        assert counts["5xx"] == 6
    assert [b.bar_ms for b in bars] == [FIRST + k * BAR_MS for k in range(8)]
    skipped = {b.bar_ms: b.skipped for b in bars if b.skipped}
    assert list(skipped) == [FIRST + BAR_MS, FIRST + 2 * BAR_MS]
    for bar_ms, why in skipped.items():
        assert list(why) == ["*"]
        assert why["*"].startswith("the exchange could not be reached: ")
        assert "giving up after 6 attempts" in why["*"] and "HTTP 503" in why["*"]
    assert skipped[FIRST + BAR_MS]["*"].startswith("the exchange could not be reached: account: "
                                                   "giving up after 6 attempts at ")
    assert "exchangeInfo" in skipped[FIRST + 2 * BAR_MS]["*"]
    assert all(b.equity is not None for b in bars if not b.skipped)
    skip_lines = [line for line in run.lines if " UTC  skipped: " in line]
    assert len(skip_lines) == 2 and skip_lines[0].startswith("2025-05-06 00:15 UTC  skipped: "
                                                             "the exchange could not be reached: ")
    assert sum(" UTC  latency " in line for line in run.lines) == 6


def test_a_protection_whose_answer_is_lost_is_found_next_bar_not_placed_twice(replay_source, tmp_path):
    """The OCO placed right after an entry fill: its answer dropped, its look-up failing six
    times (`OrderStatusUnknownError`): the rest of the bar is skipped; the next bar queries it
    (`resolve_unknown`) and finds it resting."""
    with stepped_emulator(replay_source, tmp_path, FIRST, BAR_MS, CASH, FEE, SLIPPAGE) as url:
        control = EmulatorControl(url)
        with InProcessLoop(write_job(tmp_path, url, PROTECTED), url, control) as run:
            # the entry goes through ("ok"); its OCO's answer is dropped, and the look-up of
            # its legs (GET /api/v3/order) fails six times
            control.set_faults(queue=["ok", "drop"] + FIVE_XX,
                               paths=["/api/v3/orderList/oco", "/api/v3/order"])
            entered, k = run_to_first_entry(run)
            counts = control.faults()["counts"]
            bar = run.journal.bars()[-1]
            unknown = [i.client_id for i in run.journal.unknown_intents()]
            control.set_faults()
            run.bar(FIRST + k * BAR_MS)
            after = {i.client_id: i for i in run.journal.intents()}
        truth = keyed_client(url, KEY, SECRET)
        lists = Counter(o["clientOrderId"] for s in SYMBOLS
                        for o in truth.get_all_orders(symbol=s))
    assert counts["drop"] == 1 and counts["5xx"] == 6
    assert bar.bar_ms == entered and bar.skipped["*"].startswith(
        "the exchange could not be reached: ")
    assert len(unknown) == 1 and after[unknown[0]].purpose == "protect"
    assert after[unknown[0]].status is not None and after[unknown[0]].error is None
    assert all(n == 1 for n in lists.values()), lists
    assert lists[unknown[0] + "-tp"] == 1 and lists[unknown[0] + "-sl"] == 1


def test_an_entry_found_filled_next_bar_is_protected_in_that_bar(replay_source, tmp_path):
    """An entry's answer dropped and its look-up failing six times: the send's outcome is
    unknown and the loop goes on; the next bar finds it filled and places its protection at
    once, under the id it would have had right after the fill."""
    with stepped_emulator(replay_source, tmp_path, FIRST, BAR_MS, CASH, FEE, SLIPPAGE) as url:
        control = EmulatorControl(url)
        with InProcessLoop(write_job(tmp_path, url, PROTECTED), url, control) as run:
            control.set_faults(queue=["drop"] + FIVE_XX, paths=["/api/v3/order"])
            entered, k = run_to_first_entry(run)
            unknown = run.journal.unknown_intents()
            counts = control.faults()["counts"]
            control.set_faults()
            run.bar(FIRST + k * BAR_MS)
            symbol = unknown[0].symbol
            protect = client_order_id(run.loop.lj.name, symbol, entered + BAR_MS, "protect")
            intents = {i.client_id: i for i in run.journal.intents()}
            bar = run.journal.bars()[-1]
        placed = [o for o in keyed_client(url, KEY, SECRET).get_all_orders(symbol=symbol)
                  if list_id_of(o["clientOrderId"]) == protect]
    assert counts["drop"] == 1 and counts["5xx"] == 6
    assert [i.purpose for i in unknown] == ["entry"] and intents[unknown[0].client_id].status == "FILLED"
    assert intents[protect].purpose == "protect" and intents[protect].error is None
    assert intents[protect].bar_ms == entered + BAR_MS
    # both legs of one OCO, placed in the bar after the entry (its close on the replay clock)
    assert sorted(o["clientOrderId"] for o in placed) == [protect + "-sl", protect + "-tp"]
    assert {o["time"] for o in placed} == {entered + 2 * BAR_MS}
    assert bar.bar_ms == entered + BAR_MS and bar.skipped == {} and bar.orders >= 1


def test_an_entry_the_exchange_never_takes_skips_the_rest_of_the_bar(replay_source, tmp_path):
    """An entry answered 5xx six times, the exchange not having it after each (the broker
    looks it up before sending it again): journaled as not placed, the rest of the bar
    skipped; the next bars are decided as usual and nothing was placed for it."""
    with stepped_emulator(replay_source, tmp_path, FIRST, BAR_MS, CASH, FEE, SLIPPAGE) as url:
        control = EmulatorControl(url)
        with InProcessLoop(write_job(tmp_path, url, SIGNALS), url, control) as run:
            control.set_faults(queue=["5xx", "ok"] * 6, paths=["/api/v3/order"])
            entered, k = run_to_first_entry(run)
            control.set_faults()
            for j in range(k, k + 2):
                run.bar(FIRST + j * BAR_MS)
            first = next(i for i in run.journal.intents() if i.purpose == "entry")
            bars = {b.bar_ms: b for b in run.journal.bars()}
        placed = {o["clientOrderId"] for s in SYMBOLS
                  for o in keyed_client(url, KEY, SECRET).get_all_orders(symbol=s)}
    assert first.bar_ms == entered and "not placed after 6 attempts" in first.error
    assert first.client_id not in placed
    why = bars[entered].skipped["*"]
    assert why.startswith("the exchange could not be reached: ") and "not placed after 6" in why
    assert [bars[FIRST + j * BAR_MS].skipped for j in range(k, k + 2)] == [{}, {}]


def test_a_protection_the_exchange_never_took_is_placed_after_the_skipped_bar(replay_source, tmp_path):
    """The OCO after an entry fill answered 5xx six times, the exchange not having it after
    each: the bar is skipped; before the next bar the start-up pass of the exits runs and
    the position gets its protection (placed in that bar)."""
    with stepped_emulator(replay_source, tmp_path, FIRST, BAR_MS, CASH, FEE, SLIPPAGE) as url:
        control = EmulatorControl(url)
        with InProcessLoop(write_job(tmp_path, url, PROTECTED), url, control) as run:
            # the entry goes through; each OCO send is a 5xx, each look-up of its legs finds
            # nothing
            control.set_faults(queue=["ok"] + ["5xx", "ok"] * 6,
                               paths=["/api/v3/orderList/oco", "/api/v3/order"])
            entered, k = run_to_first_entry(run)
            control.set_faults()
            skipped = run.journal.bars()[-1]
            symbol = next(i.symbol for i in run.journal.intents() if i.purpose == "entry")
            refused = [i for i in run.journal.intents() if i.purpose == "protect"]
            run.bar(FIRST + k * BAR_MS)
            protect = client_order_id(run.loop.lj.name, symbol, entered + 2 * BAR_MS, "protect")
            bar = run.journal.bars()[-1]
        placed = [o for o in keyed_client(url, KEY, SECRET).get_all_orders(symbol=symbol)
                  if list_id_of(o["clientOrderId"]) == protect]
    assert skipped.bar_ms == entered and "not placed after 6 attempts" in skipped.skipped["*"]
    assert len(refused) == 1 and "not placed after 6 attempts" in refused[0].error
    assert sorted(o["clientOrderId"] for o in placed) == [protect + "-sl", protect + "-tp"]
    assert {o["time"] for o in placed} == {entered + 2 * BAR_MS}
    assert bar.bar_ms == entered + BAR_MS and bar.skipped == {}
