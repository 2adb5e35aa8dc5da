"""Resample candles to a longer Binance interval, and align long candles causally to short bars.

`resample` validates its inputs and calls the kernels in `kernels/resample.py`:
open = first open, high = max, low = min, close = last close; volume, quote_volume,
taker_buy_base and taker_buy_quote summed (NaN propagates); trades summed, -1 when any row
of the bucket is unknown. Buckets sit on the interval's grid (weekly ones open on Mondays,
00:00 UTC). A bucket is built from the source rows present, and a trailing bucket is emitted
only once closed, so resampling a prefix never yields a candle that later data would change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from binance_cluster.errors import ConfigError, DataError
from binance_cluster.kernels import resample as _k
from binance_cluster.types import Candles, interval_ms, interval_origin_ms, parse_time_ms


@dataclass(frozen=True, slots=True)
class ResamplePlan:
    """A validated pair of intervals: source length, target length and target grid origin (ms)."""

    source_interval: str
    interval: str
    source_ms: int
    step_ms: int
    origin_ms: int
    source_origin_ms: int


def plan_resample(interval: str, source_interval: str = "1m") -> ResamplePlan:
    """Check that `source_interval` candles can be aggregated into `interval` candles."""
    try:
        source_ms = interval_ms(source_interval)
    except ConfigError as exc:
        raise ConfigError(f"source interval: {exc}") from None
    try:
        step_ms = interval_ms(interval)
    except ConfigError as exc:
        raise ConfigError(f"target interval: {exc}") from None
    if step_ms <= source_ms:
        raise ConfigError(f"cannot resample {source_interval} candles to {interval}: the target "
                          f"interval must be longer than the source interval")
    if step_ms % source_ms:
        raise ConfigError(f"cannot resample {source_interval} candles to {interval}: {interval} "
                          f"is not a whole multiple of {source_interval}")
    origin_ms = interval_origin_ms(interval)
    source_origin_ms = interval_origin_ms(source_interval)
    if (origin_ms - source_origin_ms) % source_ms:
        raise ConfigError(f"cannot resample {source_interval} candles to {interval}: the "
                          f"{interval} grid does not start on a {source_interval} boundary")
    return ResamplePlan(source_interval, interval, source_ms, step_ms, origin_ms,
                        source_origin_ms)


def _check_times(open_time: np.ndarray, plan: ResamplePlan) -> None:
    bad = int(_k.first_bad_open_time(open_time, plan.source_ms, plan.source_origin_ms))
    if bad < 0:
        return
    t = int(open_time[bad])
    if (t - plan.source_origin_ms) % plan.source_ms:
        raise DataError(f"row {bad}: open_time {t} is not on the {plan.source_interval} grid "
                        f"(are these {plan.source_interval} candles?)")
    raise DataError(f"row {bad}: open_time {t} is not after the previous row "
                    f"({int(open_time[bad - 1])}); times must be strictly increasing")


def resample(candles: Candles, interval: str, source_interval: str = "1m",
             closed_until: int | str | None = None) -> Candles:
    """The closed `interval` candles made of `source_interval` candles.

    The last bucket is emitted only when its last source candle is present or when
    `closed_until` (ms or a UTC time: data is known complete up to then) is at or after
    its end. ConfigError for intervals that do not fit, DataError for unordered times.
    """
    plan = plan_resample(interval, source_interval)
    until = _k.NO_TIME if closed_until is None else parse_time_ms(closed_until, "closed_until")
    open_time = np.ascontiguousarray(candles.open_time, dtype=np.int64)
    _check_times(open_time, plan)
    bounds, opens = _k.closed_buckets(open_time, plan.source_ms, plan.step_ms, plan.origin_ms,
                                      int(until))
    return aggregate(candles, bounds, opens)


def aggregate(candles: Candles, bounds: np.ndarray, opens: np.ndarray) -> Candles:
    """Candles of buckets given by row bounds (bucket k holds rows bounds[k]..bounds[k+1]-1)
    and open times, aggregated by the rules of the module docstring."""
    bounds = np.ascontiguousarray(bounds, dtype=np.int64)
    opens = np.ascontiguousarray(opens, dtype=np.int64)
    o, h, lo, c, v = _k.aggregate_ohlcv(_f64(candles.open), _f64(candles.high),
                                        _f64(candles.low), _f64(candles.close),
                                        _f64(candles.volume), bounds)
    extras = {}
    for name, col in candles.extras.items():
        if name == "trades":
            extras[name] = _k.sum_count(np.ascontiguousarray(col, dtype=np.int64), bounds)
        else:
            extras[name] = _k.sum_float(_f64(col), bounds)
    return Candles(open_time=opens, open=o, high=h, low=lo, close=c, volume=v, extras=extras)


def last_closed(source: Candles | np.ndarray, target: Candles | np.ndarray, interval: str,
                source_interval: str = "1m") -> np.ndarray:
    """For each source bar, the index in `target` of the last candle closed by the bar's close.

    `target` holds `interval` candles (e.g. from `resample`); -1 where none had closed. A
    strategy at source bar i may use target rows 0..result[i] only: no look-ahead.
    """
    plan = plan_resample(interval, source_interval)
    src = source.open_time if isinstance(source, Candles) else source
    dst = target.open_time if isinstance(target, Candles) else target
    src = np.ascontiguousarray(src, dtype=np.int64)
    dst = np.ascontiguousarray(dst, dtype=np.int64)
    _check_times(src, plan)
    target_plan = ResamplePlan(interval, interval, plan.step_ms, plan.step_ms, plan.origin_ms,
                               plan.origin_ms)
    _check_times(dst, target_plan)
    return _k.last_closed_index(src, plan.source_ms, dst, plan.step_ms)


def _f64(col: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(col, dtype=np.float64)


BLOCK_DAYS = 28


def resample_blocks(store, symbol: str, interval: str, source_interval: str = "1m",
                    start: int | None = None, block_days: int = BLOCK_DAYS):
    """Yield (source rows read, closed `interval` candles) block by block from a CandleStore.

    Reads `source_interval` candles from `start` (the first stored one when None) in blocks of
    about `block_days` whose edges sit on the target grid, so no bucket spans two blocks and
    memory stays at one block however long the series (a Pi Zero worker reads a year this way).
    Every block but the last is known complete up to its end; the last holds back a partial
    trailing bucket as `resample` does.
    """
    plan = plan_resample(interval, source_interval)
    span = store.span(symbol, source_interval)
    if span is None:
        return
    first, last = span
    begin = first if start is None else max(int(start), first)
    begin -= (begin - plan.origin_ms) % plan.step_ms
    block = max(1, (block_days * 86_400_000) // plan.step_ms) * plan.step_ms
    while begin <= last:
        end = begin + block
        candles = store.read(symbol, source_interval, start=begin, end=end)
        final = end > last
        yield len(candles), resample(candles, interval, source_interval,
                                     closed_until=None if final else end)
        begin = end
