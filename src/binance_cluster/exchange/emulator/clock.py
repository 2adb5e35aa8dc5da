"""The emulator's two clocks (binance-api.md section 13.1).

- The server clock answers `/api/v3/time` (and, in the trading half, the recvWindow check):
  wall-clock time plus an adjustable offset, so real clients that sign with their own clock
  pass. Tests move it forward (`advance`) to let rate-limit windows roll over without waiting.
  A clock-skew fault adds `skew_ms` to what clients are told.
- The replay clock decides which stored candle is "now": it starts at the configured time and
  runs at `speed` times real time (0 freezes it), or is set and stepped by the admin endpoint
  for deterministic tests.
"""

from __future__ import annotations

import time
from typing import Callable


class ServerClock:
    """Wall-clock milliseconds plus an offset (admin) and a skew (fault injection)."""

    def __init__(self, offset_ms: int = 0, wall: Callable[[], float] = time.time):
        self._wall = wall
        self.offset_ms = int(offset_ms)
        self.skew_ms = 0

    def base_ms(self) -> int:
        """Server time without the injected skew (used for rate-limit windows)."""
        return int(self._wall() * 1000) + self.offset_ms

    def now_ms(self) -> int:
        """Server time as clients are told it, skew included."""
        return self.base_ms() + self.skew_ms

    def advance(self, ms: int) -> None:
        """Move the server clock forward by `ms` (negative moves it back)."""
        self.offset_ms += int(ms)


class ReplayClock:
    """Replay time in ms: `start` at creation, then `speed` times real time; settable."""

    def __init__(self, start_ms: int, speed: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic):
        if speed < 0:
            raise ValueError("replay speed must not be negative")
        self._mono = monotonic
        self._anchor_ms = int(start_ms)
        self._anchor_mono = monotonic()
        self._speed = float(speed)

    @property
    def speed(self) -> float:
        return self._speed

    def now_ms(self) -> int:
        """Current replay time."""
        elapsed = self._mono() - self._anchor_mono
        return self._anchor_ms + int(elapsed * 1000 * self._speed)

    def set(self, ms: int) -> None:
        """Jump to `ms`; the clock then runs on from there at its speed."""
        self._anchor_ms = int(ms)
        self._anchor_mono = self._mono()

    def advance(self, ms: int) -> None:
        """Step forward by `ms` (must not be negative: replay time never runs backwards)."""
        if ms < 0:
            raise ValueError("the replay clock only moves forward")
        self.set(self.now_ms() + int(ms))

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on (0 freezes the clock)."""
        if speed < 0:
            raise ValueError("replay speed must not be negative")
        self.set(self.now_ms())
        self._speed = float(speed)
