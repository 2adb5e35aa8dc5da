"""Walk-forward periods: calendar months (the seed's), ISO weeks (Monday 00:00 UTC) or days."""

from __future__ import annotations

import datetime as _dt

from binance_cluster.errors import ConfigError
from binance_cluster.types import DAY_MS

PERIODS = ("month", "week", "day")


def period_start(ms: int, period: str) -> int:
    """Start (ms UTC) of the period holding the time `ms`."""
    if period == "day":
        return ms - ms % DAY_MS
    if period == "week":
        day = ms - ms % DAY_MS
        weekday = _dt.datetime.fromtimestamp(day / 1000, tz=_dt.timezone.utc).weekday()
        return day - weekday * DAY_MS
    if period == "month":
        d = _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc)
        return int(_dt.datetime(d.year, d.month, 1, tzinfo=_dt.timezone.utc).timestamp() * 1000)
    raise ConfigError(f"unknown fold period {period!r} (known: {', '.join(PERIODS)})")


def next_period(ms: int, period: str) -> int:
    """Start of the period after the one starting at `ms`."""
    if period == "day":
        return ms + DAY_MS
    if period == "week":
        return ms + 7 * DAY_MS
    d = _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc)
    year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    return int(_dt.datetime(year, month, 1, tzinfo=_dt.timezone.utc).timestamp() * 1000)


def boundaries(first_ms: int, last_ms: int, period: str) -> list[int]:
    """Period starts covering [first_ms, last_ms], plus the start after the last one."""
    out = [period_start(first_ms, period)]
    while out[-1] <= last_ms:
        out.append(next_period(out[-1], period))
    return out


def fold_name(ms: int) -> str:
    """A fold's name: its evaluation start as YYYY-MM-DDTHHMM (sorts in time order)."""
    return _dt.datetime.fromtimestamp(ms / 1000, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H%M")
