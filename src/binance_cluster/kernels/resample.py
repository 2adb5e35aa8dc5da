"""Resampling kernels: aggregate short candles into a longer Binance interval, and map each
short bar to the last longer candle that had closed by the bar's close.

A bucket of the long interval holds the source rows with
`origin + k * step <= open_time < origin + (k + 1) * step`; it is built from the rows
present (gaps allowed) and emitted only once it is closed: its end is at or before the
close of the last source row, or at or before `closed_until`.
"""

from __future__ import annotations

import numpy as np

from binance_cluster.kernels._jit import jit

NO_TIME = np.iinfo(np.int64).min


@jit
def first_bad_open_time(open_time, step_ms, origin_ms):
    """Index of the first open time off the grid or not after the previous one; -1 if none."""
    for i in range(open_time.shape[0]):
        t = open_time[i]
        if (t - origin_ms) % step_ms != 0:
            return i
        if i > 0 and t <= open_time[i - 1]:
            return i
    return -1


@jit
def closed_buckets(open_time, source_ms, step_ms, origin_ms, closed_until):
    """Row bounds and open times of the closed buckets (reference: Binance kline grid).

    Bucket k holds rows bounds[k] .. bounds[k+1]-1 and opens at opens[k]. A bucket is closed
    when its end <= max(close of the last row, closed_until). Open times must be strictly
    increasing (the callers check it): a row opens a new bucket when it reaches the current
    bucket's end, so there is one division per bucket, not per row.
    """
    n = open_time.shape[0]
    if n == 0:
        return np.zeros(1, np.int64), np.zeros(0, np.int64)
    bounds = np.empty(n + 1, np.int64)
    opens = np.empty(n, np.int64)
    begin = origin_ms + ((open_time[0] - origin_ms) // step_ms) * step_ms
    end = begin + step_ms
    bounds[0] = 0
    opens[0] = begin
    count = 1
    for i in range(1, n):
        t = open_time[i]
        if t >= end:
            begin = origin_ms + ((t - origin_ms) // step_ms) * step_ms
            end = begin + step_ms
            bounds[count] = i
            opens[count] = begin
            count += 1
    bounds[count] = n
    horizon = max(open_time[n - 1] + source_ms, closed_until)
    # Only the last bucket can be open: every other one ends at or before a later row.
    if opens[count - 1] + step_ms > horizon:
        count -= 1
    return bounds[:count + 1].copy(), opens[:count].copy()


@jit
def aggregate_ohlcv(open_, high, low, close, volume, bounds):
    """OHLCV of each bucket: first open, max high, min low, last close, summed volume."""
    m = bounds.shape[0] - 1
    o = np.empty(m)
    h = np.empty(m)
    lo = np.empty(m)
    c = np.empty(m)
    v = np.empty(m)
    for k in range(m):
        a = bounds[k]
        b = bounds[k + 1]
        hi = high[a]
        low_ = low[a]
        vol = 0.0
        for i in range(a, b):
            if high[i] > hi:
                hi = high[i]
            if low[i] < low_:
                low_ = low[i]
            vol += volume[i]
        o[k] = open_[a]
        h[k] = hi
        lo[k] = low_
        c[k] = close[b - 1]
        v[k] = vol
    return o, h, lo, c, v


@jit
def sum_float(values, bounds):
    """Sum of a float column per bucket, in row order (a NaN makes the bucket NaN)."""
    m = bounds.shape[0] - 1
    out = np.empty(m)
    for k in range(m):
        total = 0.0
        for i in range(bounds[k], bounds[k + 1]):
            total += values[i]
        out[k] = total
    return out


@jit
def sum_count(values, bounds):
    """Sum of a count column per bucket; -1 (unknown) when any row of the bucket is -1."""
    m = bounds.shape[0] - 1
    out = np.empty(m, np.int64)
    for k in range(m):
        total = 0
        for i in range(bounds[k], bounds[k + 1]):
            if values[i] < 0:
                total = -1
                break
            total += values[i]
        out[k] = total
    return out


@jit
def last_closed_index(source_open_time, source_ms, target_open_time, target_ms):
    """For each source bar, the index of the last target candle closed by the bar's close.

    Target candle j is closed at time T when target_open_time[j] + target_ms <= T; -1 when
    no target candle had closed yet. Causal: the value at bar i depends on no later bar.
    """
    n = source_open_time.shape[0]
    m = target_open_time.shape[0]
    out = np.empty(n, np.int64)
    j = -1
    for i in range(n):
        t = source_open_time[i] + source_ms
        while j + 1 < m and target_open_time[j + 1] + target_ms <= t:
            j += 1
        out[i] = j
    return out
