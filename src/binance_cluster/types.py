"""Value types shared by every layer: candle arrays, intervals and UTC times."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

import numpy as np

from binance_cluster.errors import ConfigError

MINUTE_MS = 60_000
DAY_MS = 86_400_000

# Binance kline intervals with a fixed length, and the open time of one bucket of each
# (weekly candles open on Mondays; 1970-01-05 was the first Monday after the epoch).
INTERVAL_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": 60 * MINUTE_MS,
    "2h": 120 * MINUTE_MS,
    "4h": 240 * MINUTE_MS,
    "6h": 360 * MINUTE_MS,
    "8h": 480 * MINUTE_MS,
    "12h": 720 * MINUTE_MS,
    "1d": DAY_MS,
    "1w": 7 * DAY_MS,
}
INTERVAL_ORIGIN_MS: dict[str, int] = {"1w": 4 * DAY_MS}

PRICE_COLUMNS = ("open", "high", "low", "close")
COLUMNS = ("open_time", "open", "high", "low", "close", "volume")
EXTRA_COLUMNS = ("quote_volume", "trades", "taker_buy_base", "taker_buy_quote")
# trades is a count; -1 marks "unknown" where a source has no trade count.
COLUMN_DTYPES = {name: np.dtype("float64") for name in COLUMNS + EXTRA_COLUMNS}
COLUMN_DTYPES["open_time"] = np.dtype("int64")
COLUMN_DTYPES["trades"] = np.dtype("int64")


def interval_ms(interval: str) -> int:
    """Length of a Binance interval in milliseconds; ConfigError for an unknown one."""
    try:
        return INTERVAL_MS[interval]
    except (KeyError, TypeError):
        known = ", ".join(INTERVAL_MS)
        raise ConfigError(f"unknown interval {interval!r} (known: {known})") from None


def interval_origin_ms(interval: str) -> int:
    """Open time (ms) of one bucket of `interval`; buckets repeat every interval_ms from it."""
    interval_ms(interval)
    return INTERVAL_ORIGIN_MS.get(interval, 0)


def parse_time_ms(text: str | int | float, what: str = "time") -> int:
    """Parse a UTC time: integer milliseconds, `YYYY-MM-DD`, or ISO `YYYY-MM-DD[ T]HH:MM[:SS]`."""
    if isinstance(text, (int, np.integer)):
        return int(text)
    if isinstance(text, _dt.datetime):
        stamp = text if text.tzinfo else text.replace(tzinfo=_dt.timezone.utc)
        return int(round(stamp.timestamp() * 1000))
    if isinstance(text, _dt.date):
        return parse_time_ms(text.isoformat(), what)
    value = str(text).strip()
    if value.isdigit():
        return int(value)
    try:
        stamp = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{what}: cannot read {value!r} as a UTC time (use YYYY-MM-DD, "
                          "YYYY-MM-DDTHH:MM or milliseconds)") from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.timezone.utc)
    return int(round(stamp.timestamp() * 1000))


def format_time_ms(ms: int | None) -> str:
    """`YYYY-MM-DD HH:MM` (UTC) for a millisecond time, or `-` for None."""
    if ms is None:
        return "-"
    stamp = _dt.datetime.fromtimestamp(int(ms) / 1000, tz=_dt.timezone.utc)
    return stamp.strftime("%Y-%m-%d %H:%M" if stamp.second == 0 else "%Y-%m-%d %H:%M:%S")


def format_duration_ms(ms: int) -> str:
    """A short human duration: `45m`, `3h 5m`, `2d 4h`."""
    minutes = int(ms) // MINUTE_MS
    if minutes < 60:
        return f"{minutes}m" if ms % MINUTE_MS == 0 else f"{ms / 1000:g}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


@dataclass(frozen=True, slots=True)
class Candles:
    """Columns of consecutive candles of one symbol and interval (open_time ascending)."""

    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.open_time.shape[0])

    def column(self, name: str) -> np.ndarray:
        """The named column (core or extra)."""
        if name in COLUMNS:
            return getattr(self, name)
        return self.extras[name]

    def columns(self) -> dict[str, np.ndarray]:
        """Every column by name, core columns first."""
        out = {name: getattr(self, name) for name in COLUMNS}
        out.update(self.extras)
        return out

    def slice(self, start: int, stop: int) -> "Candles":
        """Rows start..stop-1 as views."""
        return Candles(**{name: getattr(self, name)[start:stop] for name in COLUMNS},
                       extras={k: v[start:stop] for k, v in self.extras.items()})

    @staticmethod
    def from_columns(columns: dict[str, np.ndarray]) -> "Candles":
        """Build from a name->array mapping holding at least the core columns."""
        core = {name: np.ascontiguousarray(columns[name], dtype=COLUMN_DTYPES[name])
                for name in COLUMNS}
        extras = {name: np.ascontiguousarray(columns[name], dtype=COLUMN_DTYPES[name])
                  for name in EXTRA_COLUMNS if name in columns}
        return Candles(**core, extras=extras)
