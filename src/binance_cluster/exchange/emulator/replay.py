"""Stored candles as the emulator serves them: klines rows up to the replay clock, prices.

A symbol's series are read from the store on first use and kept in memory, with every row
pre-encoded as Binance's 12-element JSON kline, so a `/klines` answer is one slice and one
join. Intervals the store lacks are resampled from the symbol's shortest stored interval
with `binance_cluster.candles.resample.resample` (complete buckets only; 3d and 1M, which the
project's interval table lacks, are not served).

Look-ahead rule (binance-api.md section 13.2): a candle is served only once closed, i.e. when
`open_time + interval <= replay_now`. In "synthetic" mode the in-progress candle is added as
the last row with O=H=L=C=its open and zero volume, which is known at its open; in "none"
mode it is left out.

Decimal strings use 8 decimals as Binance does; a value that 8 decimals cannot carry exactly
is written in full, so replayed values always parse back to the stored float. Extras the
store does not know (NaN, trades -1) are sent as "NaN" and -1, the store's own convention.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from binance_cluster.exchange.emulator.symbols import price_decimals
from binance_cluster.candles.store import CandleStore
from binance_cluster.types import Candles, interval_ms, interval_origin_ms

log = logging.getLogger(__name__)

BINANCE_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
                     "1d", "3d", "1w", "1M")
ROW_TEMPLATE = '[%d,"%s","%s","%s","%s","%s",%d,"%s",%d,"%s","%s","0"]'
FLOAT_COLUMNS = ("open", "high", "low", "close", "volume")
FLOAT_EXTRAS = ("quote_volume", "taker_buy_base", "taker_buy_quote")


class IntervalNotServed(Exception):
    """The interval is valid for Binance but this symbol's data cannot provide it."""


def format_decimals(values: np.ndarray) -> list[str]:
    """Binance decimal strings ("%.8f"), exact: values 8 decimals cannot carry are written
    in full."""
    text = [f"{v:.8f}" for v in values.tolist()]
    if not text:
        return text
    back = np.array(text, dtype=np.float64)
    nan = np.isnan(values)
    bad = np.flatnonzero((back != values) & ~nan)
    for i in bad.tolist():
        text[i] = np.format_float_positional(values[i], unique=True, trim="-")
    for i in np.flatnonzero(nan).tolist():
        text[i] = "NaN"
    return text


@dataclass(slots=True)
class Series:
    """One symbol and interval in memory: the candles and their encoded kline rows."""

    symbol: str
    interval: str
    step: int
    origin: int
    candles: Candles
    resampled: bool
    _rows: list[str] | None = None

    @property
    def open_time(self) -> np.ndarray:
        return self.candles.open_time

    def rows(self) -> list[str]:
        """Every candle as a JSON kline row (built on first use)."""
        if self._rows is None:
            self._rows = encode_rows(self.candles, self.step)
        return self._rows

    def closed_count(self, now_ms: int) -> int:
        """Number of leading candles closed at `now_ms` (open_time + step <= now)."""
        return int(np.searchsorted(self.open_time, now_ms - self.step, side="right"))


def encode_rows(candles: Candles, step: int) -> list[str]:
    """The Binance kline rows of `candles` as JSON text, one string per candle."""
    n = len(candles)
    cols = [format_decimals(getattr(candles, name)) for name in FLOAT_COLUMNS]
    extras = []
    for name in FLOAT_EXTRAS:
        col = candles.extras.get(name)
        extras.append(format_decimals(col) if col is not None else ["NaN"] * n)
    trades = candles.extras.get("trades")
    trades = trades.tolist() if trades is not None else [-1] * n
    opens = candles.open_time.tolist()
    o, h, lo, c, v = cols
    qv, tb, tq = extras
    return [ROW_TEMPLATE % (t, o[i], h[i], lo[i], c[i], v[i], t + step - 1, qv[i], trades[i],
                            tb[i], tq[i]) for i, t in enumerate(opens)]


class ReplayData:
    """Candles of the store's symbols, served relative to a replay time."""

    def __init__(self, store: CandleStore, symbols: tuple[str, ...] | None = None):
        self.store = store
        listed = store.symbols()
        self.symbols: list[str] = list(symbols) if symbols is not None else listed
        self._intervals: dict[str, list[str]] = {}
        self._series: dict[tuple[str, str], Series] = {}

    def stored_intervals(self, symbol: str) -> list[str]:
        """Intervals stored for `symbol`, shortest first."""
        if symbol not in self._intervals:
            self._intervals[symbol] = self.store.intervals(symbol)
        return self._intervals[symbol]

    def base_interval(self, symbol: str) -> str:
        """The shortest stored interval: the source of prices and of resampled intervals."""
        intervals = self.stored_intervals(symbol)
        if not intervals:
            raise IntervalNotServed(f"{symbol} has no stored candles")
        return intervals[0]

    def first_open(self, symbol: str) -> int | None:
        """Open time of the first stored candle of the base interval."""
        span = self.store.span(symbol, self.base_interval(symbol))
        return None if span is None else span[0]

    def series(self, symbol: str, interval: str) -> Series:
        """The series of `symbol` at `interval`, loaded or resampled on first use."""
        key = (symbol, interval)
        found = self._series.get(key)
        if found is not None:
            return found
        if interval not in BINANCE_INTERVALS:
            raise ValueError(f"invalid interval {interval!r}")
        stored = self.stored_intervals(symbol)
        if interval in stored:
            candles = self.store.read(symbol, interval)
            resampled = False
        else:
            candles = self._resample(symbol, interval)
            resampled = True
        found = Series(symbol, interval, interval_ms(interval), interval_origin_ms(interval),
                       candles, resampled)
        self._series[key] = found
        return found

    def _resample(self, symbol: str, interval: str) -> Candles:
        from binance_cluster.candles.resample import resample  # numba: imported on first use only

        base = self.base_interval(symbol)
        stored = ", ".join(self.stored_intervals(symbol))
        if interval not in ("3d", "1M"):
            step, base_step = interval_ms(interval), interval_ms(base)
            if step > base_step and step % base_step == 0:
                log.info("resampling %s %s candles to %s", symbol, base, interval)
                return resample(self.series(symbol, base).candles, interval, source_interval=base)
        raise IntervalNotServed(f"{symbol} has only {stored} candles; {interval} cannot be "
                                f"made from {base}")

    # -- what a client may see at replay time `now` --------------------------------------
    def forming_open(self, symbol: str, interval: str, now_ms: int) -> tuple[int, float] | None:
        """(open time, open price) of the candle in progress at `now_ms`, if it has begun."""
        step, origin = interval_ms(interval), interval_origin_ms(interval)
        bucket = origin + (now_ms - origin) // step * step
        base = self.series(symbol, self.base_interval(symbol))
        i = int(np.searchsorted(base.open_time, bucket, side="left"))
        if i < len(base.candles) and int(base.open_time[i]) <= now_ms:
            return bucket, float(base.candles.open[i])
        return None

    def klines_json(self, symbol: str, interval: str, now_ms: int, start: int | None,
                    end: int | None, limit: int, forming: bool) -> str:
        """The `/api/v3/klines` answer (JSON text) at replay time `now_ms`.

        Binance's range rules: neither bound gives the newest `limit` candles; `startTime`
        the oldest from it; `endTime` the newest up to it; both, from start but never past
        end. Bounds match open times, both inclusive.
        """
        series = self.series(symbol, interval)
        times = series.open_time
        closed = series.closed_count(now_ms)
        lo = 0 if start is None else int(np.searchsorted(times[:closed], start, side="left"))
        hi = closed if end is None else int(np.searchsorted(times[:closed], end, side="right"))
        hi = max(lo, hi)
        extra = None
        if forming:
            current = self.forming_open(symbol, interval, now_ms)
            if current is not None and (start is None or current[0] >= start) \
                    and (end is None or current[0] <= end):
                extra = current
        if start is not None:
            i0, i1 = lo, min(hi, lo + limit)
            if extra is not None and i1 - i0 >= limit:
                extra = None
        else:
            room = limit - (1 if extra is not None else 0)
            i0, i1 = max(lo, hi - room), hi
        rows = series.rows()[i0:i1]
        if extra is not None:
            t, price = extra
            p = format_decimals(np.array([price]))[0]
            rows = rows + [ROW_TEMPLATE % (t, p, p, p, p, "0.00000000", t + series.step - 1,
                                           "0.00000000", 0, "0.00000000", "0.00000000")]
        return "[" + ",".join(rows) + "]"

    def last_closed(self, symbol: str, now_ms: int) -> tuple[float, int]:
        """(price, time) of the latest trade known at `now_ms`: the close of the last closed
        base candle (and its close time); before the first candle, the first open."""
        base = self.series(symbol, self.base_interval(symbol))
        n = base.closed_count(now_ms)
        if n == 0:
            return float(base.candles.open[0]), int(base.open_time[0])
        return float(base.candles.close[n - 1]), int(base.open_time[n - 1]) + base.step - 1

    def average_price(self, symbol: str, now_ms: int, minutes: int = 5) -> tuple[float, int]:
        """(volume-weighted average price, last close time) over the closed base candles of
        the last `minutes` minutes; the last close when they traded nothing."""
        base = self.series(symbol, self.base_interval(symbol))
        n = base.closed_count(now_ms)
        if n == 0:
            return self.last_closed(symbol, now_ms)
        i0 = int(np.searchsorted(base.open_time[:n], now_ms - minutes * 60_000 - base.step + 1,
                                 side="left"))
        i0 = min(i0, n - 1)
        c = base.candles
        vol = c.volume[i0:n]
        quote = c.extras.get("quote_volume")
        total = float(vol.sum())
        if total > 0:
            if quote is not None and np.all(np.isfinite(quote[i0:n])):
                price = float(quote[i0:n].sum()) / total
            else:
                price = float((c.close[i0:n] * vol).sum()) / total
        else:
            price = float(c.close[n - 1])
        return price, int(base.open_time[n - 1]) + base.step - 1

    def price_level(self, symbol: str, at_ms: int) -> tuple[float, int]:
        """(price at `at_ms`, decimals the stored prices use) for deriving filters."""
        base = self.series(symbol, self.base_interval(symbol))
        c = base.candles
        decimals = price_decimals(np.concatenate([c.open, c.high, c.low, c.close]))
        price, _ = self.last_closed(symbol, at_ms)
        return price, decimals
