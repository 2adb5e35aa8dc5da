"""Which bars the live loop handles next, on the exchange's clock.

A bar that opened at `o` is closed once the exchange's clock reaches `o + bar_ms`; the loop
then polls the public klines for it. After a pause (the process was down, the network
failed) several bars may be due at once. The job's `missed_bars` policy says what happens:

- `catch_up`: every missed bar is handled in order, oldest first, each with the candles that
  existed at its close, so decisions are the ones the loop would have taken (at most
  `max_catch_up` bars; older ones are skipped and logged);
- `skip`: only the newest closed bar is handled; every older one is skipped and logged.

Nothing is skipped silently: every skipped bar is returned with the reason, for the journal.
"""

from __future__ import annotations

from dataclasses import dataclass

POLICIES = ("catch_up", "skip")


@dataclass(frozen=True, slots=True)
class BarPlan:
    """The open times of the bars to handle now (oldest first) and of those skipped, with why."""

    handle: tuple[int, ...]
    skipped: tuple[tuple[int, str], ...] = ()


def last_closed_open(now_ms: int, bar_ms: int) -> int:
    """Open time of the newest bar closed at `now_ms` (exchange clock)."""
    return (now_ms // bar_ms) * bar_ms - bar_ms


def next_close(now_ms: int, bar_ms: int) -> int:
    """When the bar forming at `now_ms` closes: the loop's next wake-up."""
    return (now_ms // bar_ms + 1) * bar_ms


def plan_bars(last_handled_open: int | None, now_ms: int, bar_ms: int, policy: str = "catch_up",
              max_catch_up: int = 60) -> BarPlan:
    """The bars due at `now_ms` after the bar that opened at `last_handled_open` (None: the first
    start, which handles the newest closed bar only)."""
    if policy not in POLICIES:
        raise ValueError(f"missed_bars policy {policy!r} (known: {', '.join(POLICIES)})")
    newest = last_closed_open(now_ms, bar_ms)
    if last_handled_open is None:
        return BarPlan((newest,))
    due = list(range(last_handled_open + bar_ms, newest + 1, bar_ms))
    if not due:
        return BarPlan(())
    if policy == "skip":
        keep, reason = due[-1:], "missed while the loop was not running (missed_bars = \"skip\")"
    else:
        keep, reason = due[-max_catch_up:], f"older than the {max_catch_up} bars catch_up replays"
    skipped = tuple((o, reason) for o in due[:len(due) - len(keep)])
    return BarPlan(tuple(keep), skipped)
