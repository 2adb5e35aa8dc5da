"""Stored candles as the emulator serves them: klines rows up to the replay clock, prices.

A symbol's series are read from the store on first use and kept in memory, with every row
pre-encoded as Binance's 12-element JSON kline, so a `/klines` answer is one slice and one
join. Intervals the store lacks are resampled from the symbol's shortest stored interval
(complete buckets only, `candles.resample.aggregate`), and so are grids a `timeZone` shifts.

Bucket grids (binance-api.md section 5.1): every interval of Binance's table, `3d` and `1M`
included. Fixed-length intervals repeat from their origin (weekly candles open on Mondays;
`3d` candles repeat every three days from 1970-01-01, an emulator choice: Binance does not
document its 3d origin); `1M` candles open on the first day of each calendar month. A
`timeZone` of +H:MM moves every boundary to local time (a 1d candle at +08:00 opens at 16:00
UTC); startTime and endTime stay UTC, as on Binance.

Look-ahead rule (binance-api.md section 13.2): a candle is served only once closed, i.e. when
its close time is before `replay_now`. In "synthetic" mode the in-progress candle is added as
the last row with O=H=L=C=its open and zero volume, which is known at its open; in "none"
mode it is left out.

Numbers: Decimal strings with 8 decimals as Binance sends them; a stored value that 8
decimals cannot carry exactly is written in full, so replayed values parse back to the
stored float. Resampled values are rounded to the decimals the symbol's stored column uses,
so a 1h volume made of 1m volumes reads "230.80800000", not "230.80800000000002". Extras the
store does not know (quote volume, trades, taker volumes) are sent as zeros, "0.00000000"
and 0, never "NaN" or -1 (which Binance never sends); every klines answer names the
extras unknown in all of its closed rows in the `X-Replay-Unknown-Fields` header (not a
Binance header), so `fetch` can leave them to the store's own "unknown" marking.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from binance_cluster.exchange.emulator.symbols import price_decimals
from binance_cluster.candles.store import CandleStore
from binance_cluster.types import (EXTRA_COLUMNS, Candles, DAY_MS, INTERVAL_MS,
                                   interval_origin_ms)

log = logging.getLogger(__name__)

BINANCE_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
                     "1d", "3d", "1w", "1M")
GRID_MS = {**INTERVAL_MS, "3d": 3 * DAY_MS}  # fixed-length intervals; 1M follows the calendar
ROW_TEMPLATE = '[%d,"%s","%s","%s","%s","%s",%d,"%s",%d,"%s","%s","0"]'
FLOAT_COLUMNS = ("open", "high", "low", "close", "volume")
FLOAT_EXTRAS = ("quote_volume", "taker_buy_base", "taker_buy_quote")
ZERO = "0.00000000"


class IntervalNotServed(Exception):
    """The interval is valid for Binance but this symbol's data cannot provide it."""


def format_decimals(values: np.ndarray) -> list[str]:
    """Binance decimal strings ("%.8f"), exact: values 8 decimals cannot carry are written
    in full; NaN (unknown) is written as zero."""
    text = [f"{v:.8f}" for v in values.tolist()]
    if not text:
        return text
    back = np.array(text, dtype=np.float64)
    nan = np.isnan(values)
    bad = np.flatnonzero((back != values) & ~nan)
    for i in bad.tolist():
        text[i] = np.format_float_positional(values[i], unique=True, trim="-")
    for i in np.flatnonzero(nan).tolist():
        text[i] = ZERO
    return text


# -- bucket grids ----------------------------------------------------------------------------
def _origin(interval: str) -> int:
    return 0 if interval == "3d" else interval_origin_ms(interval)


def bucket_open(times: np.ndarray, interval: str, zone_ms: int = 0) -> np.ndarray:
    """Open time (UTC ms) of the `interval` bucket holding each time, in time zone `zone_ms`."""
    t = np.asarray(times, dtype=np.int64)
    if interval == "1M":
        month = (t + zone_ms).astype("datetime64[ms]").astype("datetime64[M]")
        return month.astype("datetime64[ms]").astype(np.int64) - zone_ms
    step = GRID_MS[interval]
    origin = _origin(interval) - zone_ms
    return origin + (t - origin) // step * step


def bucket_end(opens: np.ndarray, interval: str, zone_ms: int = 0) -> np.ndarray:
    """Open time of the bucket after each bucket opening at `opens`."""
    t = np.asarray(opens, dtype=np.int64)
    if interval == "1M":
        month = (t + zone_ms).astype("datetime64[ms]").astype("datetime64[M]") + 1
        return month.astype("datetime64[ms]").astype(np.int64) - zone_ms
    return t + GRID_MS[interval]


def same_grid(interval: str, zone_ms: int) -> bool:
    """Whether `interval` buckets in time zone `zone_ms` are the UTC ones."""
    return zone_ms == 0 or (interval != "1M" and zone_ms % GRID_MS[interval] == 0)


def _fits(interval: str, zone_ms: int, base: str) -> bool:
    """Whether `interval` buckets (in `zone_ms`) are made of whole `base` candles."""
    base_ms = GRID_MS[base]
    if interval == "1M":
        return DAY_MS % base_ms == 0 and zone_ms % base_ms == 0
    step = GRID_MS[interval]
    return step > base_ms and step % base_ms == 0 and \
        (_origin(interval) - zone_ms - _origin(base)) % base_ms == 0


@dataclass(slots=True)
class Series:
    """One symbol, interval and time zone in memory: the candles and their kline rows."""

    symbol: str
    interval: str
    step: int  # the nominal length; 0 for 1M (its candles' lengths follow the calendar)
    close_time: np.ndarray
    candles: Candles
    resampled: bool
    _rows: list[str] | None = None
    _unknown: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in EXTRA_COLUMNS:
            col = self.candles.extras.get(name)
            if col is None:
                continue
            mask = col < 0 if name == "trades" else np.isnan(col)
            if mask.any():
                self._unknown[name] = mask

    @property
    def open_time(self) -> np.ndarray:
        return self.candles.open_time

    def rows(self) -> list[str]:
        """Every candle as a JSON kline row (built on first use)."""
        if self._rows is None:
            self._rows = encode_rows(self.candles, self.close_time)
        return self._rows

    def closed_count(self, now_ms: int) -> int:
        """Number of leading candles closed at `now_ms` (close time before now)."""
        return int(np.searchsorted(self.close_time, now_ms - 1, side="right"))

    def unknown(self, i0: int, i1: int) -> list[str]:
        """The extras unknown in every row of [i0, i1) (all of the absent ones)."""
        out = []
        for name in EXTRA_COLUMNS:
            if name not in self.candles.extras:
                out.append(name)
            elif name in self._unknown and i1 > i0 and self._unknown[name][i0:i1].all():
                out.append(name)
        return out


def encode_rows(candles: Candles, close_time: np.ndarray) -> list[str]:
    """The Binance kline rows of `candles` as JSON text, one string per candle; unknown
    extras as zeros."""
    n = len(candles)
    cols = [format_decimals(getattr(candles, name)) for name in FLOAT_COLUMNS]
    extras = []
    for name in FLOAT_EXTRAS:
        col = candles.extras.get(name)
        extras.append(format_decimals(col) if col is not None else [ZERO] * n)
    trades = candles.extras.get("trades")
    trades = np.maximum(trades, 0).tolist() if trades is not None else [0] * n
    opens = candles.open_time.tolist()
    closes = close_time.tolist()
    o, h, lo, c, v = cols
    qv, tb, tq = extras
    return [ROW_TEMPLATE % (t, o[i], h[i], lo[i], c[i], v[i], closes[i], qv[i], trades[i],
                            tb[i], tq[i]) for i, t in enumerate(opens)]


def quote_volume(c: Candles, i0: int, i1: int) -> tuple[float, bool]:
    """The quote volume of rows [i0, i1) and whether it is stored (else close x volume, when
    any row lacks it)."""
    quote = c.extras.get("quote_volume")
    if quote is not None and np.all(np.isfinite(quote[i0:i1])):
        return float(quote[i0:i1].sum()), True
    return float((c.close[i0:i1] * c.volume[i0:i1]).sum()), False


@dataclass(frozen=True, slots=True)
class Rolling:
    """A rolling window's prices and volumes (ticker/24hr), from closed base candles."""

    open: float
    high: float
    low: float
    last: float
    previous_close: float
    volume: float
    quote_volume: float
    trades: int
    open_time: int
    close_time: int


@dataclass(frozen=True, slots=True)
class Klines:
    """A `/klines` answer: the JSON text and the extras unknown in all of its closed rows."""

    text: str
    unknown: tuple[str, ...]


class ReplayData:
    """Candles of the store's symbols, served relative to a replay time."""

    def __init__(self, store: CandleStore, symbols: tuple[str, ...] | None = None):
        self.store = store
        listed = store.symbols()
        self.symbols: list[str] = list(symbols) if symbols is not None else listed
        self._intervals: dict[str, list[str]] = {}
        self._series: dict[tuple[str, str, int], Series] = {}
        self._decimals: dict[tuple[str, str], int] = {}

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

    def series(self, symbol: str, interval: str, zone_ms: int = 0) -> Series:
        """The series of `symbol` at `interval` in time zone `zone_ms`, loaded or resampled
        on first use."""
        if interval not in BINANCE_INTERVALS:
            raise ValueError(f"invalid interval {interval!r}")
        if same_grid(interval, zone_ms):
            zone_ms = 0
        key = (symbol, interval, zone_ms)
        found = self._series.get(key)
        if found is not None:
            return found
        if zone_ms == 0 and interval in self.stored_intervals(symbol):
            candles = self.store.read(symbol, interval)
            found = Series(symbol, interval, GRID_MS[interval],
                           candles.open_time + GRID_MS[interval] - 1, candles, False)
        else:
            candles, ends = self._resample(symbol, interval, zone_ms)
            found = Series(symbol, interval, GRID_MS.get(interval, 0), ends - 1, candles, True)
        self._series[key] = found
        return found

    def decimals(self, symbol: str, name: str) -> int:
        """The fewest decimals (at most 8) holding every stored base value of column `name`."""
        key = (symbol, name)
        if key not in self._decimals:
            base = self.series(symbol, self.base_interval(symbol))
            self._decimals[key] = price_decimals(base.candles.column(name))
        return self._decimals[key]

    def _resample(self, symbol: str, interval: str, zone_ms: int) -> tuple[Candles, np.ndarray]:
        """Closed `interval` candles (and their ends) made of the base interval's candles,
        rounded to the decimals of the stored columns."""
        from binance_cluster.candles.resample import aggregate  # numba: on first use only

        base = self.base_interval(symbol)
        if not _fits(interval, zone_ms, base):
            stored = ", ".join(self.stored_intervals(symbol))
            where = f" at timeZone offset {zone_ms // 60_000:+d} min" if zone_ms else ""
            raise IntervalNotServed(f"{symbol} has only {stored} candles; {interval}{where} "
                                    f"cannot be made from {base}")
        log.info("resampling %s %s candles to %s", symbol, base, interval)
        source = self.series(symbol, base).candles
        t = source.open_time
        if not len(t):
            return source, np.empty(0, np.int64)
        keys = bucket_open(t, interval, zone_ms)
        starts = np.flatnonzero(np.diff(keys)) + 1
        bounds = np.concatenate([[0], starts, [len(t)]]).astype(np.int64)
        opens = keys[bounds[:-1]]
        ends = bucket_end(opens, interval, zone_ms)
        if ends[-1] > int(t[-1]) + GRID_MS[base]:  # the last bucket is not complete
            bounds, opens, ends = bounds[:-1], opens[:-1], ends[:-1]
        out = aggregate(source, bounds, opens)
        cols = out.columns()
        for name, col in cols.items():
            if name in ("open_time", "trades"):
                continue
            cols[name] = np.round(col, self.decimals(symbol, name))
        return Candles.from_columns(cols), ends

    # -- what a client may see at replay time `now` --------------------------------------
    def forming_open(self, symbol: str, interval: str, now_ms: int,
                     zone_ms: int = 0) -> tuple[int, int, float] | None:
        """(open time, close time, open price) of the candle in progress at `now_ms`, if it
        has begun."""
        bucket = int(bucket_open(np.array([now_ms]), interval, zone_ms)[0])
        base = self.series(symbol, self.base_interval(symbol))
        i = int(np.searchsorted(base.open_time, bucket, side="left"))
        if i < len(base.candles) and int(base.open_time[i]) <= now_ms:
            end = int(bucket_end(np.array([bucket]), interval, zone_ms)[0])
            return bucket, end - 1, float(base.candles.open[i])
        return None

    def klines_json(self, symbol: str, interval: str, now_ms: int, start: int | None,
                    end: int | None, limit: int, forming: bool, zone_ms: int = 0) -> Klines:
        """The `/api/v3/klines` answer at replay time `now_ms`.

        Binance's range rules: neither bound gives the newest `limit` candles; `startTime`
        the oldest from it; `endTime` the newest up to it; both, from start but never past
        end. Bounds match open times, both inclusive.
        """
        series = self.series(symbol, interval, zone_ms)
        times = series.open_time
        closed = series.closed_count(now_ms)
        lo = 0 if start is None else int(np.searchsorted(times[:closed], start, side="left"))
        hi = closed if end is None else int(np.searchsorted(times[:closed], end, side="right"))
        hi = max(lo, hi)
        extra = None
        if forming:
            current = self.forming_open(symbol, interval, now_ms, zone_ms)
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
            t, close_time, price = extra
            p = format_decimals(np.array([price]))[0]
            rows = rows + [ROW_TEMPLATE % (t, p, p, p, p, ZERO, close_time, ZERO, 0, ZERO,
                                           ZERO)]
        return Klines("[" + ",".join(rows) + "]", tuple(series.unknown(i0, i1)))

    def data_end(self, symbol: str) -> int:
        """When the last stored base candle closes: the market's end (ms)."""
        base = self.series(symbol, self.base_interval(symbol))
        return int(base.close_time[-1]) + 1 if len(base.close_time) else 0

    def ended(self, symbol: str, now_ms: int) -> bool:
        """Whether the symbol's data has ended at `now_ms` (no candle forms any more)."""
        return now_ms >= self.data_end(symbol)

    def rolling(self, symbol: str, now_ms: int, window_ms: int) -> "Rolling":
        """Statistics of the closed base candles that opened in [now - window, now)."""
        base = self.series(symbol, self.base_interval(symbol))
        n = base.closed_count(now_ms)
        i0 = int(np.searchsorted(base.open_time[:n], now_ms - window_ms, side="left"))
        c = base.candles
        last, _ = self.last_closed(symbol, now_ms)
        prev = float(c.close[i0 - 1]) if i0 > 0 else float(c.open[0])
        if i0 >= n:
            return Rolling(last, last, last, last, prev, 0.0, 0.0, 0, now_ms - window_ms,
                           now_ms - 1)
        trades = c.extras.get("trades")
        count = int(trades[i0:n].sum()) if trades is not None and np.all(trades[i0:n] >= 0) \
            else 0
        quote, stored = quote_volume(c, i0, n)
        digits = self.decimals(symbol, "quote_volume") if stored else 8
        return Rolling(float(c.open[i0]), float(c.high[i0:n].max()), float(c.low[i0:n].min()),
                       last, prev, round(float(c.volume[i0:n].sum()),
                                         self.decimals(symbol, "volume")),
                       round(quote, digits), count,
                       int(base.open_time[i0]), int(base.close_time[n - 1]))

    def last_closed(self, symbol: str, now_ms: int) -> tuple[float, int]:
        """(price, time) of the latest trade known at `now_ms`: the close of the last closed
        base candle (and its close time); before the first candle, the first open."""
        base = self.series(symbol, self.base_interval(symbol))
        n = base.closed_count(now_ms)
        if n == 0:
            return float(base.candles.open[0]), int(base.open_time[0])
        return float(base.candles.close[n - 1]), int(base.close_time[n - 1])

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
        total = float(c.volume[i0:n].sum())
        price = quote_volume(c, i0, n)[0] / total if total > 0 else float(c.close[n - 1])
        return price, int(base.close_time[n - 1])

    def price_level(self, symbol: str, at_ms: int) -> tuple[float, int]:
        """(price at `at_ms`, decimals the stored prices use) for deriving filters."""
        base = self.series(symbol, self.base_interval(symbol))
        c = base.candles
        decimals = price_decimals(np.concatenate([c.open, c.high, c.low, c.close]))
        price, _ = self.last_closed(symbol, at_ms)
        return price, decimals
