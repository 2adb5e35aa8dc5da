"""Fixtures of the exchange tests: the emulator on real candles and a funded trading venue."""

from support.broker import trading  # noqa: F401  (pytest fixture)
from support.emulator import emulator, source_store  # noqa: F401  (pytest fixtures)
