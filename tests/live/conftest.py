"""Fixtures of the live tests: a funded trading venue on the emulator with real candles."""

from support.broker import trading  # noqa: F401  (pytest fixture)
from support.emulator import source_store  # noqa: F401  (pytest fixture)
