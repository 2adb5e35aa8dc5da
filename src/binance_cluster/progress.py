"""A progress bar for long work, shown by rank 0 only, on a terminal or in a log file."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Counts finished items of `total`, shows rate and ETA; redraws at most 10 times a second.

    On a terminal it redraws one line; elsewhere (CI logs, files) it prints a line every
    10 % or 10 s. Disabled instances (e.g. on worker ranks) print nothing.
    """

    def __init__(self, total: int, label: str, enabled: bool = True,
                 stream: TextIO | None = None, unit: str = ""):
        self.total = max(int(total), 0)
        self.label = label
        self.unit = unit
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.done = 0
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self.note = ""

    def update(self, n: int = 1, note: str = "") -> None:
        """Mark `n` more items done."""
        self.done += n
        if note:
            self.note = note
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= 0.1 or self.done >= self.total:
                self._draw(now, end="")
        else:
            decile = int(10 * self.done / self.total) if self.total else 10
            if decile > self._last_decile or now - self._last_draw >= 10:
                self._last_decile = decile
                self._draw(now, end="\n")

    def _draw(self, now: float, end: str) -> None:
        self._last_draw = now
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        frac = self.done / self.total if self.total else 1.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        width = 24
        bar = "#" * int(width * frac) + "-" * (width - int(width * frac))
        unit = f" {self.unit}" if self.unit else ""
        text = (f"{self.label} [{bar}] {self.done}/{self.total}{unit} {100 * frac:5.1f}% "
                f"{rate:,.1f}/s eta {eta:,.0f}s {self.note}")
        prefix = "\r\033[K" if self.tty else ""
        self.stream.write(prefix + text.rstrip() + end)
        self.stream.flush()

    def close(self) -> None:
        """Finish the line (terminal) and print nothing more."""
        if self.enabled and self.tty:
            self._draw(time.monotonic(), end="\n")
        self.enabled = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
