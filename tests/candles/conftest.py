"""Fixtures of the candle tests: fetch runs against the emulator on real candles."""

from support.emulator import emulator, source_store  # noqa: F401  (pytest fixtures)
