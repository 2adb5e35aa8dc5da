"""Request-weight accounting per minute, as Binance does it for one IP (binance-api.md section 4).

Weight is counted in fixed windows aligned to the minute of the server clock. A request that
takes the window over the limit is refused with 429 and `Retry-After` (seconds to the end of
the window); a client that keeps sending after `ban_after` refusals in one window is banned
with 418 for `ban_seconds`, with `Retry-After` counting down the ban. Refused requests count
toward the weight as they do on Binance, so hammering never helps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WINDOW_MS = 60_000


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the limiter decided for one request: HTTP status 200, 429 or 418."""

    status: int
    used: int
    retry_after: int = 0
    banned_until: int = 0


class WeightLimiter:
    """Counts request weight per minute window; `limit` 0 disables the limit."""

    def __init__(self, limit: int = 6000, ban_after: int = 3, ban_seconds: int = 120):
        self.limit = int(limit)
        self.ban_after = int(ban_after)
        self.ban_seconds = int(ban_seconds)
        self._window = -1
        self._used = 0
        self._refused_in_window = 0
        self._banned_until = 0
        self.refused = {429: 0, 418: 0}

    def used(self, now_ms: int) -> int:
        """Weight used in the window containing `now_ms`."""
        return self._used if now_ms // WINDOW_MS == self._window else 0

    def admit(self, weight: int, now_ms: int) -> Verdict:
        """Count `weight` at server time `now_ms` and decide whether the request may run."""
        window = now_ms // WINDOW_MS
        if window != self._window:
            self._window, self._used, self._refused_in_window = window, 0, 0
        self._used += int(weight)
        if now_ms < self._banned_until:
            self.refused[418] += 1
            return Verdict(418, self._used, _seconds(self._banned_until - now_ms),
                           self._banned_until)
        if self.limit <= 0 or self._used <= self.limit:
            return Verdict(200, self._used)
        self._refused_in_window += 1
        if self._refused_in_window > self.ban_after:
            self._banned_until = now_ms + self.ban_seconds * 1000
            self.refused[418] += 1
            return Verdict(418, self._used, self.ban_seconds, self._banned_until)
        self.refused[429] += 1
        return Verdict(429, self._used, _seconds((window + 1) * WINDOW_MS - now_ms))

    def reset(self) -> None:
        """Forget the current window, any ban and the refusal counters."""
        self._window, self._used, self._refused_in_window, self._banned_until = -1, 0, 0, 0
        self.refused = {429: 0, 418: 0}

    def snapshot(self, now_ms: int) -> dict:
        """State for the admin endpoint."""
        return {"limit": self.limit, "used": self.used(now_ms),
                "banned_until": self._banned_until if now_ms < self._banned_until else None,
                "refused_429": self.refused[429], "refused_418": self.refused[418]}


def _seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))
