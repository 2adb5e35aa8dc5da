"""A test hook: the live job kills itself (SIGKILL) at a named point of its order path.

`BINANCE_CLUSTER_CRASH_AT=POINT:N` (read once, on first use) makes the process SIGKILL itself
the N-th time it passes POINT; unset (always, outside the crash-and-restart test,
tests/live/test_live_crash.py) it does nothing. The points:

- `before-send`: an order's intent is journaled, the order is not sent yet;
- `after-send`: the exchange accepted the order, its answer is not journaled yet;
- `after-fill`: an entry filled and its answer is journaled, its protective order is not
  placed yet.
"""

from __future__ import annotations

import os
import signal

VARIABLE = "BINANCE_CLUSTER_CRASH_AT"
POINTS = ("before-send", "after-send", "after-fill")

_plan: tuple[str, int] | None = None
_read = False
_passed = 0


def crash_point(point: str) -> None:
    """SIGKILL this process if `point` is the planned one and this is its N-th pass."""
    global _plan, _read, _passed
    if not _read:
        _read = True
        value = os.environ.get(VARIABLE)
        if value:
            name, _, count = value.partition(":")
            if name not in POINTS or not count.isdigit() or int(count) < 1:
                raise ValueError(f"{VARIABLE}={value!r}: want POINT:N, POINT one of "
                                 f"{', '.join(POINTS)}")
            _plan = (name, int(count))
    if _plan is None or point != _plan[0]:
        return
    _passed += 1
    if _passed == _plan[1]:
        os.kill(os.getpid(), signal.SIGKILL)
