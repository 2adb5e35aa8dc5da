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

import numpy as np

from binance_cluster.kernels._jit import jit
from binance_cluster.kernels.indicators import mean_relation, rolling_max, sign_of_difference, sma
from binance_cluster.kernels.resample import closed_buckets, last_closed_index

HOUR_MS = 3_600_000


@jit
def no_signals(size):
    """(entry, exit, score) of `size` bars with no signal yet: False, False, NaN."""
    return np.zeros(size, dtype=np.bool_), np.zeros(size, dtype=np.bool_), np.full(size, np.nan)


# Signal codes, the fused sweeps' form of a combination's signals (one int8 per bar, in a
# scratch buffer reused by every combination; `kernels.simulate.codes_pass` trades them):
# CODE_ENTER when the bar has an entry signal and no exit signal (a flat symbol becomes a
# pending entry), CODE_EXIT when it has an exit signal, 0 otherwise. The `*_codes` kernels
# below fill bars first.. of `code` with the same per-bar rule as their `*_signals` twins.
CODE_ENTER = -128        # 0x80: the byte's high bit, found eight bars at a time
CODE_EXIT = 1            # the byte's low bit


@jit
def signal_code(entry, exit_):
    """The code of a bar with these entry and exit signals (without branches: the fills
    vectorise)."""
    return np.int8(np.int64(exit_) - 128 * np.int64(entry > exit_))


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
    entry, exit_, score = no_signals(size)
    start = max(fn, sn) - 1
    prev = np.int64(0)
    below = np.bool_(False)
    above = np.bool_(False)
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


@jit
def ema_cross_signals(fe, se, start):
    """Entry on a cross up, exit on a cross down of EMA arrays fe over se, from bar `start`.

    Score: fast / slow - 1 wherever both are defined.
    """
    size = fe.shape[0]
    entry, exit_, score = no_signals(size)
    prev = np.int64(0)
    below = np.bool_(False)
    above = np.bool_(False)
    for t in range(max(start, 0), size):
        rel = sign_of_difference(fe[t], se[t])
        up, down, below, above = cross_step(rel, prev, below, above)
        entry[t] = up
        exit_[t] = down
        prev = rel
        score[t] = fe[t] / se[t] - 1.0
    return entry, exit_, score


# ----------------------------------------------------------------------------------------
# levels and bands


@jit
def level_rule(v, lower, upper):
    """(entry, exit) of one bar of `level_signals` (a NaN value: neither)."""
    return v < lower, v > upper


@jit
def level_signals(value, lower, upper):
    """Entry where value < lower, exit where value > upper (NaN: neither); score lower - value."""
    size = value.shape[0]
    entry, exit_, score = no_signals(size)
    for t in range(size):
        v = value[t]
        if v == v:
            entry[t], exit_[t] = level_rule(v, lower, upper)
            score[t] = lower - v
    return entry, exit_, score


# The fused sweeps fill the codes of a group of combinations that share an indicator in one
# pass over it, BLOCK bars at a time (the block's values stay in the first-level cache while
# every combination's codes of the block are written).
BLOCK = 2048


@jit
def level_codes(value, lowers, uppers, first, codes):
    """The codes of `level_signals` of each (lowers[j], uppers[j]) at bars first.. into
    codes[j] (NaN compares false)."""
    n = value.shape[0]
    for a in range(first, n, BLOCK):
        v = value[a:min(a + BLOCK, n)]
        for j in range(lowers.shape[0]):
            lower = lowers[j]
            upper = uppers[j]
            o = codes[j, a:a + v.shape[0]]
            for t in range(v.shape[0]):
                e, x = level_rule(v[t], lower, upper)
                o[t] = signal_code(e, x)


@jit
def band_exits(prefix, n, mean, safe_mul):
    """Exit signals of `band_signals`: the close above SMA(n), compared exactly in ticks."""
    size = mean.shape[0]
    out = np.zeros(size, dtype=np.bool_)
    for t in range(size):
        if mean[t] == mean[t]:
            last = prefix[t + 1] - prefix[t]
            out[t] = mean_relation(last, np.int64(1), prefix[t + 1] - prefix[t + 1 - n], n, safe_mul) > 0
    return out


@jit
def band_signals(close, prefix, n, mean, std, k, safe_mul):
    """Entry where close < mean - k*std (the lower Bollinger band), exit where close > mean;
    score (mean - close) / std.

    `mean` and `std` are the family's SMA(n) and population std of the closes; the exit
    compares the close with SMA(n) exactly in ticks (`band_exits`: `mean_relation` of the
    one-bar and the n-bar window sums from the tick prefix sums), so a close on the mean
    never exits.
    """
    size = close.shape[0]
    entry, _, score = no_signals(size)
    exit_ = band_exits(prefix, n, mean, safe_mul)
    for t in range(size):
        m = mean[t]
        if m == m:
            c = close[t]
            s = std[t]
            entry[t] = c < m - k * s
            if s > 0.0:
                score[t] = (m - c) / s
    return entry, exit_, score


@jit
def band_codes(close, mean, std, ks, exits, first, codes):
    """The codes of `band_signals` of each band width ks[j] at bars first.. into codes[j]
    (`exits` from `band_exits`; a NaN mean compares false)."""
    n = close.shape[0]
    for a in range(first, n, BLOCK):
        b = min(a + BLOCK, n)
        c = close[a:b]
        m = mean[a:b]
        s = std[a:b]
        x = exits[a:b]
        for j in range(ks.shape[0]):
            k = ks[j]
            o = codes[j, a:b]
            for t in range(o.shape[0]):
                o[t] = signal_code(c[t] < m[t] - k * s[t], x[t])


# ----------------------------------------------------------------------------------------
# momentum burst (SEEDS.md A)


@jit
def burst_weight(open_, close, window, min_growth):
    """Weight of the last `window` candles: +2(i+1) if growth_i >= min_growth %, -2(i+1) if < 0.

    i = 0 is the oldest; growth_i = (close - open) / open * 100. Bars before window-1: -1 << 30.
    """
    size = close.shape[0]
    out = np.full(size, -(1 << 30), dtype=np.int64)
    kind = np.zeros(size, dtype=np.int64)          # +1 rising, -1 falling, 0 neither
    for j in range(size):
        g = (close[j] - open_[j]) / open_[j] * 100.0
        kind[j] = 1 if g >= min_growth else (-1 if g < 0.0 else 0)
    for t in range(window - 1, size):
        w = 0
        for i in range(window):
            w += 2 * (i + 1) * kind[t - window + 1 + i]
        out[t] = w
    return out


@jit
def closed_hours_stats(open_time, close, bar_ms, hours):
    """Max and mean close of the last `hours` hourly candles closed at each bar's close.

    Hourly candles are built causally from the bars (`kernels.resample`): the candle of hour
    h holds the bars opened in it, closes at (h + 1) * 1h, and its close is the close of its
    last bar. At bar t (decision at open_time[t] + bar_ms) only hours closed by then count.
    Max and mean are the indicator family's rolling_max and sma over the hourly closes. NaN
    until `hours` hours closed. `bar_ms` must divide one hour.
    """
    size = close.shape[0]
    max_out = np.full(size, np.nan)
    mean_out = np.full(size, np.nan)
    if size == 0:
        return max_out, mean_out
    bounds, opens = closed_buckets(open_time, bar_ms, HOUR_MS, 0, open_time[0])
    hourly = close[bounds[1:] - 1]
    hour_max = rolling_max(hourly, hours)
    hour_mean = sma(hourly, hours)
    seen = last_closed_index(open_time, bar_ms, opens, HOUR_MS)
    for t in range(size):
        j = seen[t]
        if j >= 0:
            max_out[t] = hour_max[j]
            mean_out[t] = hour_mean[j]
    return max_out, mean_out


@jit
def burst_filter(p, mx, mean, up, mb):
    """True when close p passes the hourly filter of `burst_rule` (p * up < max, p <= mean *
    mb); without branches, a NaN max or mean compares false."""
    return (p * up < mx) & (p <= mean * mb)


@jit
def burst_rule(w, p, mx, mean, min_weight, up, mb):
    """True when a bar of `burst_signals` enters (weight w, close p, hourly max and mean)."""
    return (w > min_weight) & burst_filter(p, mx, mean, up, mb)


@jit
def burst_signals(weight, close, max_close, mean_close, min_weight, room, band):
    """Entry where weight > min_weight, close*(1+room) < max_close and close <= mean_close*(1+band).

    No exit signal (exits come from take profit / stop loss); score = weight.
    """
    size = close.shape[0]
    entry, exit_, score = no_signals(size)
    up = 1.0 + room
    mb = 1.0 + band
    for t in range(size):
        if burst_rule(weight[t], close[t], max_close[t], mean_close[t], min_weight, up, mb):
            entry[t] = True
            score[t] = weight[t]
    return entry, exit_, score


# A filtered weight is the weight where the close passes `burst_filter`, else WEIGHT_NONE,
# in int16 (|weight| <= window (window + 1) <= 3660; min_weight is within +-10_000): a fused
# sweep computes it once per (window, min_growth, hours, room, band) and each min_weight's
# codes from it, two bytes a bar instead of the four arrays.
WEIGHT_NONE = -32768


@jit
def filtered_weights(weight, close, max_close, mean_close, room, band, first):
    """int16 per bar from `first` on: the weight where the close passes `burst_filter`, else
    WEIGHT_NONE (below every min_weight, as the warm-up weight -1 << 30 is)."""
    up = 1.0 + room
    mb = 1.0 + band
    out = np.full(close.shape[0], WEIGHT_NONE, dtype=np.int16)
    w = weight[first:]
    p = close[first:]
    mx = max_close[first:]
    mean = mean_close[first:]
    o = out[first:]
    for t in range(o.shape[0]):
        keep = burst_filter(p[t], mx[t], mean[t], up, mb) & (w[t] > WEIGHT_NONE)
        o[t] = np.int16(w[t] if keep else WEIGHT_NONE)
    return out


@jit
def weight_codes(filtered, min_weight, first, code):
    """The codes of `burst_signals` at bars first.. into `code`, from `filtered_weights`."""
    mw = np.int16(min_weight)
    f = filtered[first:]
    o = code[first:]
    for t in range(o.shape[0]):
        o[t] = signal_code(f[t] > mw, np.bool_(False))


# ----------------------------------------------------------------------------------------
# probability margins (ml_barrier)


@jit
def margin_codes(edge, margins, first, codes):
    """Codes of entries where edge - margins[j] >= 0 into codes[j] (edge = probability -
    threshold; NaN: none)."""
    n = edge.shape[0]
    for a in range(first, n, BLOCK):
        e = edge[a:min(a + BLOCK, n)]
        for j in range(margins.shape[0]):
            margin = margins[j]
            o = codes[j, a:a + e.shape[0]]
            for t in range(e.shape[0]):
                o[t] = signal_code(e[t] - margin >= 0.0, np.bool_(False))
