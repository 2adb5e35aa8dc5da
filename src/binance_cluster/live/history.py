"""A rank's recent candles in memory: what the live loop decides on, without reading the store.

Each symbol's window is read from the store once (the first bar a rank handles it, after that
bar's fetch was appended) and from then on extended with the candles the rank appends to the
store itself: it is the only writer of its symbols' files while it runs (`StoreWriter` holds
their locks), so the store cannot change under it. `window(symbol, start, end)` equals
`CandleStore.read(symbol, interval, start, end)` for every window that does not reach back
before the first one asked for (an earlier start reads the store again): same rows, same
columns (extras the store file lacks are dropped, those it keeps but a fetch did not bring
are filled as the store fills them).

The store stays the record (a restart reloads from it); memory only serves the hot path.
"""

from __future__ import annotations

import numpy as np

from binance_cluster.candles.store import CandleStore, conform_columns
from binance_cluster.types import Candles


class RecentCandles:
    """The recent candles of one rank's symbols of one interval (see the module docstring)."""

    def __init__(self, store: CandleStore, interval: str):
        self.store = store
        self.interval = interval
        self._rows: dict[str, Candles] = {}
        self._since: dict[str, int | None] = {}

    def window(self, symbol: str, start: int, end: int) -> Candles:
        """Candles with `start <= open_time < end`; the oldest ones no window needs any more
        are let go (windows only move forward)."""
        held = self._rows.get(symbol)
        since = self._since.get(symbol)
        if held is None or (since is not None and start < since):
            held = self.store.read(symbol, self.interval, start, None)
            self._since[symbol] = start
        times = held.open_time
        lo = int(np.searchsorted(times, start, side="left"))
        if lo:
            held = held.slice(lo, len(held))
            self._since[symbol] = start
        self._rows[symbol] = held
        hi = int(np.searchsorted(held.open_time, end, side="left"))
        return held.slice(0, hi)

    def holds(self, symbol: str) -> bool:
        """Whether `symbol`'s window is in memory (else the next `window` reads the store)."""
        return symbol in self._rows

    def appended(self, symbol: str, candles: Candles) -> None:
        """`candles` were appended to the store: the rows newer than those held join them
        (nothing is held yet: the next `window` reads the store)."""
        held = self._rows.get(symbol)
        if held is None or not len(candles):
            return
        if len(held):
            k = int(np.searchsorted(candles.open_time, held.open_time[-1], side="right"))
            candles = candles.slice(k, len(candles))
            if not len(candles):
                return
        names = list(held.columns())
        fresh = conform_columns(names, candles)
        self._rows[symbol] = Candles.from_columns(
            {name: np.concatenate([held.column(name), fresh[name]]) for name in names})

    def forget(self, symbol: str) -> None:
        """Drop what is held of `symbol` (the next `window` reads the store)."""
        self._rows.pop(symbol, None)
        self._since.pop(symbol, None)
