"""Market data for the paper broker: the time, a symbol's filters, its current price and its
closed candles. Two feeds: `CandleFeed` (candles in memory, a settable clock: tests and
replays of the store) and `ExchangeFeed` (the public endpoints of Binance or the emulator
through python-binance without keys, via `exchange.transport.Transport`).

The current price follows the emulator's matching engine (`emulator/matching.py`): the open
of the candle forming at "now"; in a gap of the data, the open of the next candle; after the
last candle the market is closed (None). A live feed cannot see the next candle in a gap, so
`ExchangeFeed` answers the forming candle's open when the exchange serves it (Binance does;
the emulator with `forming_candle="synthetic"`), else the last closed candle's close, unless
the exchange's book is empty (a symbol in BREAK: the market is closed).
"""

from __future__ import annotations

from typing import Callable, Mapping, Protocol

import numpy as np

from binance_cluster.engine.order_book import Quote  # noqa: F401  (the engine's; re-exported)
from binance_cluster.exchange.broker.base import SymbolFilters
from binance_cluster.errors import UnknownSymbolError
from binance_cluster.types import Candles, interval_ms


class MarketFeed(Protocol):
    """What the paper broker reads from a market."""

    step_ms: int

    def now_ms(self) -> int:
        """The market's current time (the replay clock for the emulator)."""

    def filters(self, symbol: str) -> SymbolFilters:
        """The symbol's trading rules (UnknownSymbolError when not listed)."""

    def market(self, symbol: str, now_ms: int) -> Quote | None:
        """The current price at `now_ms`; None when the market is closed."""

    def closed_candles(self, symbol: str, start_ms: int, now_ms: int) -> Candles:
        """Candles with open time >= `start_ms` that have closed at `now_ms`, oldest first."""


def _empty() -> Candles:
    return Candles.from_columns({"open_time": np.empty(0, np.int64),
                                 **{k: np.empty(0) for k in ("open", "high", "low", "close",
                                                             "volume")}})


class CandleFeed:
    """Candles in memory and a clock the caller sets (`set_now`) or supplies (`clock`)."""

    def __init__(self, candles: Mapping[str, Candles], filters: Mapping[str, SymbolFilters],
                 interval: str = "1m", now_ms: int = 0,
                 clock: Callable[[], int] | None = None):
        self._candles = dict(candles)
        self._filters = dict(filters)
        self.step_ms = interval_ms(interval)
        self._now = int(now_ms)
        self._clock = clock

    def set_now(self, ms: int) -> None:
        """Move the feed's clock (ignored when a `clock` function was given)."""
        self._now = int(ms)

    def now_ms(self) -> int:
        return self._clock() if self._clock is not None else self._now

    def filters(self, symbol: str) -> SymbolFilters:
        found = self._filters.get(symbol)
        if found is None:
            raise UnknownSymbolError(f"{symbol}: the paper feed has no filters for it")
        return found

    def _series(self, symbol: str) -> Candles:
        found = self._candles.get(symbol)
        if found is None:
            raise UnknownSymbolError(f"{symbol}: the paper feed has no candles for it")
        return found

    def market(self, symbol: str, now_ms: int) -> Quote | None:
        c = self._series(symbol)
        i = int(np.searchsorted(c.open_time, now_ms, side="right")) - 1
        if i >= 0 and int(c.open_time[i]) + self.step_ms > now_ms:
            return Quote(float(c.open[i]), int(c.open_time[i]), True)
        if i + 1 < len(c):
            return Quote(float(c.open[i + 1]), int(c.open_time[i + 1]), False)
        return None

    def closed_candles(self, symbol: str, start_ms: int, now_ms: int) -> Candles:
        c = self._series(symbol)
        lo = int(np.searchsorted(c.open_time, start_ms, side="left"))
        hi = int(np.searchsorted(c.open_time, now_ms - self.step_ms, side="right"))
        return c.slice(lo, max(lo, hi))


class ExchangeFeed:
    """The public endpoints of Binance or the emulator (no keys), through the transport."""

    def __init__(self, base_url: str, interval: str = "1m", timeout_s: float = 10.0,
                 client=None):
        from binance_cluster.exchange.transport import Transport

        self.client = client or Transport.public(base_url, timeout_s, name="feed")
        self.interval = interval
        self.step_ms = interval_ms(interval)
        self._filters: dict[str, SymbolFilters] | None = None

    def now_ms(self) -> int:
        return self.client.now()

    def filters(self, symbol: str) -> SymbolFilters:
        if self._filters is None or symbol not in self._filters:
            info = self.client.exchange_info()
            self._filters = {s["symbol"]: SymbolFilters.from_symbol_info(s)
                             for s in info.get("symbols", [])}
        found = self._filters.get(symbol)
        if found is None:
            raise UnknownSymbolError(f"{symbol}: not listed by the exchange's exchangeInfo "
                                     "(-1121)")
        return found

    def market(self, symbol: str, now_ms: int) -> Quote | None:
        bucket = now_ms - now_ms % self.step_ms
        rows = self.client.klines(symbol, self.interval, bucket, bucket, 1)
        if rows and int(rows[0][0]) == bucket:
            return Quote(float(rows[0][1]), bucket, True)
        rows = self.client.klines(symbol, self.interval, None, now_ms - 1, 2)
        rows = [r for r in rows if int(r[6]) < now_ms] if rows else []
        if not rows or self._book_empty(symbol):
            return None
        return Quote(float(rows[-1][4]), bucket, False)

    def _book_empty(self, symbol: str) -> bool:
        """Whether the exchange's book is empty (zero bid and ask: a symbol in BREAK, e.g. the
        emulator after its data has ended)."""
        book = self.client.call(f"{symbol} bookTicker", self.client.client.get_orderbook_ticker,
                                weight=2, symbol=symbol)
        return float(book.get("bidPrice") or 0) <= 0 and float(book.get("askPrice") or 0) <= 0

    def closed_candles(self, symbol: str, start_ms: int, now_ms: int) -> Candles:
        from binance_cluster.exchange.transport import PAGE_LIMIT, parse_klines

        parts = []
        cursor = start_ms
        while cursor < now_ms:
            rows = self.client.klines(symbol, self.interval, cursor, now_ms, PAGE_LIMIT)
            candles, dropped = parse_klines(rows, self.step_ms, now_ms, now_ms,
                                            f"{symbol} {self.interval}",
                                            self.client.unknown_fields())
            if len(candles):
                parts.append(candles)
                cursor = int(candles.open_time[-1]) + self.step_ms
            if len(rows) < PAGE_LIMIT or dropped or not len(candles):
                break
        if not parts:
            return _empty()
        if len(parts) == 1:
            return parts[0]
        cols = {k: np.concatenate([p.columns()[k] for p in parts]) for k in parts[0].columns()}
        return Candles.from_columns(cols)
