"""Signal rules: entry, exit and score per bar from the indicator family's arrays.

The indicators themselves (EMA, RSI, Bollinger mean and deviation, rolling max and mean,
and the integer-tick SMAs) come from `kernels.indicators`; the kernels here only apply each
strategy's rule to them, bar by bar. Every value at bar t depends on bars 0..t only, bit for
bit, so signals computed on the first k candles equal the first k signals computed on all.

Cross rule (shared by every crossover strategy and the fused sweep kernels, the same rule as
vectorbt's `crossed_above`): with rel_t the sign of fast - slow, a cross up happens on bar t
when rel_t > 0, rel_{t-1} <= 0 and rel was < 0 on some earlier bar since both averages became
defined; a cross down mirrors it. So the first relation seen is never a cross, and a tie
followed by fast > slow is one once fast < slow has been seen. SMAs are compared exactly in
integer ticks (`kernels.indicators.mean_relation`), so an SMA cross never depends on float
rounding.
"""

from __future__ import annotations

import math

import numpy as np

from binance_cluster.kernels._jit import jit
# The integer-tick SMAs are the indicator family's (kernels.indicators); the names stay
# importable from here for the fused sweep and the engine, which import them from signals.
from binance_cluster.kernels.indicators import (MAX_DECIMALS, mean_relation,  # noqa: F401
                                                price_decimals, sign_of_difference, tick_prefix)

HOUR_MS = 3_600_000


# ----------------------------------------------------------------------------------------
# crossovers


@jit
def cross_step(rel, prev_rel, seen_below, seen_above):
    """(up, down, seen_below, seen_above) for one bar of the cross rule in the module docstring."""
    up = rel > 0 and prev_rel <= 0 and seen_below
    down = rel < 0 and prev_rel >= 0 and seen_above
    if rel < 0:
        seen_below = True
    elif rel > 0:
        seen_above = True
    return up, down, seen_below, seen_above


@jit
def sma_cross_signals(prefix, fn, sn, safe_mul):
    """Entry on a cross up, exit on a cross down of SMA(fn) over SMA(sn), compared exactly
    from the int64 tick prefix sums (`kernels.indicators.tick_prefix`).

    Score: fast / slow - 1 wherever both averages are defined.
    """
    size = prefix.shape[0] - 1
    entry = np.zeros(size, dtype=np.bool_)
    exit_ = np.zeros(size, dtype=np.bool_)
    score = np.full(size, np.nan)
    start = max(fn, sn) - 1
    prev = 0
    below = False
    above = False
    for t in range(max(start, 0), size):
        fs = prefix[t + 1] - prefix[t + 1 - fn]
        ss = prefix[t + 1] - prefix[t + 1 - sn]
        rel = mean_relation(fs, fn, ss, sn, safe_mul)
        up, down, below, above = cross_step(rel, prev, below, above)
        entry[t] = up
        exit_[t] = down
        prev = rel
        score[t] = (float(fs) * sn) / (float(ss) * fn) - 1.0
    return entry, exit_, score


# ----------------------------------------------------------------------------------------
# exponential moving averages


@jit
def ema_seeded(x, n):
    """EMA, alpha 2/(n+1), seeded at bar n-1 by the mean of the first n; NaN before (TA-Lib EMA)."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    if size < n:
        return out
    s = 0.0
    for t in range(n):
        s += x[t]
    e = s / n
    out[n - 1] = e
    alpha = 2.0 / (n + 1.0)
    for t in range(n, size):
        e = e + alpha * (x[t] - e)
        out[t] = e
    return out


@jit
def ema_cross_signals(fe, se, start):
    """Entry on a cross up, exit on a cross down of EMA arrays fe over se, from bar `start`.

    Score: fast / slow - 1 wherever both are defined.
    """
    size = fe.shape[0]
    entry = np.zeros(size, dtype=np.bool_)
    exit_ = np.zeros(size, dtype=np.bool_)
    score = np.full(size, np.nan)
    prev = 0
    below = False
    above = False
    for t in range(max(start, 0), size):
        rel = sign_of_difference(fe[t], se[t])
        up, down, below, above = cross_step(rel, prev, below, above)
        entry[t] = up
        exit_[t] = down
        prev = rel
        score[t] = fe[t] / se[t] - 1.0
    return entry, exit_, score


# ----------------------------------------------------------------------------------------
# RSI


@jit
def rsi_wilder(x, n):
    """Wilder's RSI over n bars (TA-Lib RSI): first value at bar n; 50 when prices did not move."""
    size = x.shape[0]
    out = np.full(size, np.nan)
    if size <= n:
        return out
    up = 0.0
    dn = 0.0
    for t in range(1, n + 1):
        d = x[t] - x[t - 1]
        if d > 0.0:
            up += d
        else:
            dn -= d
    up /= n
    dn /= n
    out[n] = 100.0 * up / (up + dn) if up + dn > 0.0 else 50.0
    for t in range(n + 1, size):
        d = x[t] - x[t - 1]
        g = d if d > 0.0 else 0.0
        lo = -d if d < 0.0 else 0.0
        up = (up * (n - 1) + g) / n
        dn = (dn * (n - 1) + lo) / n
        out[t] = 100.0 * up / (up + dn) if up + dn > 0.0 else 50.0
    return out


@jit
def level_signals(value, lower, upper):
    """Entry where value < lower, exit where value > upper (NaN: neither); score lower - value."""
    size = value.shape[0]
    entry = np.zeros(size, dtype=np.bool_)
    exit_ = np.zeros(size, dtype=np.bool_)
    score = np.full(size, np.nan)
    for t in range(size):
        v = value[t]
        if v == v:
            entry[t] = v < lower
            exit_[t] = v > upper
            score[t] = lower - v
    return entry, exit_, score


# ----------------------------------------------------------------------------------------
# Bollinger bands


@jit
def tick_mean_std(ticks, prefix, n):
    """Mean and population standard deviation of the last n ticks (NaN before bar n-1).

    The mean comes from the exact int64 window sum; the deviations are summed over the window
    in time order, so the result depends on the window's values alone.
    """
    size = ticks.shape[0]
    mean = np.full(size, np.nan)
    std = np.full(size, np.nan)
    for t in range(n - 1, size):
        m = (prefix[t + 1] - prefix[t + 1 - n]) / n
        acc = 0.0
        for j in range(t - n + 1, t + 1):
            d = ticks[j] - m
            acc += d * d
        mean[t] = m
        std[t] = math.sqrt(acc / n)
    return mean, std


@jit
def band_signals(ticks, mean, std, k):
    """Entry where close < mean - k*std, exit where close > mean; score (mean - close) / std."""
    size = ticks.shape[0]
    entry = np.zeros(size, dtype=np.bool_)
    exit_ = np.zeros(size, dtype=np.bool_)
    score = np.full(size, np.nan)
    for t in range(size):
        m = mean[t]
        if m == m:
            c = float(ticks[t])
            s = std[t]
            entry[t] = c < m - k * s
            exit_[t] = c > m
            if s > 0.0:
                score[t] = (m - c) / s
    return entry, exit_, score


# ----------------------------------------------------------------------------------------
# momentum burst (SEEDS.md A)


@jit
def burst_weight(open_, close, window, min_growth):
    """Weight of the last `window` candles: +2(i+1) if growth_i >= min_growth %, -2(i+1) if < 0.

    i = 0 is the oldest; growth_i = (close - open) / open * 100. Bars before window-1: -1 << 30.
    """
    size = close.shape[0]
    out = np.full(size, -(1 << 30), dtype=np.int64)
    for t in range(window - 1, size):
        w = 0
        for i in range(window):
            j = t - window + 1 + i
            g = (close[j] - open_[j]) / open_[j] * 100.0
            if g >= min_growth:
                w += 2 * (i + 1)
            elif g < 0.0:
                w -= 2 * (i + 1)
        out[t] = w
    return out


@jit
def closed_hours_stats(open_time, close, bar_ms, hours):
    """Max and mean close of the last `hours` hourly candles closed at each bar's close.

    Hourly candles are built causally from the bars: the candle of hour h closes at
    (h + 1) * 1h, and its close is the close of its last bar. At bar t (decision at
    open_time[t] + bar_ms) only hours closed by then count. NaN until `hours` hours closed.
    `bar_ms` must divide one hour.
    """
    size = close.shape[0]
    max_out = np.full(size, np.nan)
    mean_out = np.full(size, np.nan)
    ring = np.empty(hours)
    count = 0
    cur_max = np.nan
    cur_mean = np.nan
    pending = False          # the previous bar's hour has not been appended yet
    for t in range(size):
        b = open_time[t] // HOUR_MS
        if t > 0 and pending and open_time[t - 1] // HOUR_MS != b:
            ring[count % hours] = close[t - 1]
            count += 1
            if count >= hours:
                cur_max, cur_mean = _ring_stats(ring, count, hours)
            pending = False
        if (b + 1) * HOUR_MS <= open_time[t] + bar_ms:
            ring[count % hours] = close[t]
            count += 1
            if count >= hours:
                cur_max, cur_mean = _ring_stats(ring, count, hours)
            pending = False
        else:
            pending = True
        max_out[t] = cur_max
        mean_out[t] = cur_mean
    return max_out, mean_out


@jit
def _ring_stats(ring, count, hours):
    """Max and mean of the last `hours` values of a ring buffer, summed oldest first."""
    mx = -np.inf
    s = 0.0
    for i in range(count - hours, count):
        v = ring[i % hours]
        if v > mx:
            mx = v
        s += v
    return mx, s / hours


@jit
def burst_signals(weight, close, max_close, mean_close, min_weight, room, band):
    """Entry where weight > min_weight, close*(1+room) < max_close and close <= mean_close*(1+band).

    No exit signal (exits come from take profit / stop loss); score = weight.
    """
    size = close.shape[0]
    entry = np.zeros(size, dtype=np.bool_)
    exit_ = np.zeros(size, dtype=np.bool_)
    score = np.full(size, np.nan)
    up = 1.0 + room
    mb = 1.0 + band
    for t in range(size):
        mx = max_close[t]
        if weight[t] > min_weight and mx == mx:
            p = close[t]
            if p * up < mx and p <= mean_close[t] * mb:
                entry[t] = True
                score[t] = weight[t]
    return entry, exit_, score
