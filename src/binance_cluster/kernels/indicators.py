"""The indicator family: causal kernels, float64 arrays in and out, NaN during warm-up.

Every strategy (`strategies/registry.py`) and every model feature computes its indicators
here, and nowhere else; `kernels/signals.py` only turns them into entries and exits. One
documented variant: the integer-tick SMAs at the end of this module, which decide which of
two moving averages is higher exactly (`sma_cross` and the fused sweeps use them).

Call them from numba code with positional arguments (contiguous float64 arrays, integer
windows); Python callers use the validating wrappers in `binance_cluster.strategies.indicators`.

Causal, bit for bit: the value at bar t depends only on inputs 0..t, and a kernel run on
the first k bars returns exactly the first k values of a run on all bars. Definitions,
seeding and warm-up lengths follow TA-Lib (named in each docstring); where a kernel
differs, its docstring says how.

Bad bars: a NaN or an infinity in any input a kernel reads makes that bar bad. A bad bar
outputs NaN and splits the series: each stretch between bad bars is computed exactly as
if it were a whole series of its own. So a window indicator is NaN for every window
holding a bad bar, and a recursive one (EMA, RSI, ATR, MACD) starts its warm-up again
after it. Kernels first compute the whole input as one stretch; a non-finite input
poisons the running state (NaN and inf never turn finite again), and a poisoned state
sends the kernel down the split-and-restart path. The extremes (rolling_max/min, stoch),
whose max/min selects would drop a NaN, and log_returns scan for bad bars first.

Flat windows are exact: a window whose values are all equal has that value as its mean
and 0.0 as its standard deviation, whatever rounding the running sums carried.

Numerics: running window sums are sums of x - k, with k a value of the series taken at
the last rebuild, so they carry small numbers (x - k is exact for prices within a factor
2); they are rebuilt from the window every `refresh_period(n)` bars, and the moment sums
also as soon as the window drifted far from k, so nothing drifts over long series.

Speed: loop-carried chains are one add per bar (running sums) or one multiply-add per
four bars (exponential and Wilder smoothing, stepped four bars at a time so that
beta**4 * e[t-1] + c, with c built from the inputs alone, carries the chain). Hot loops
index 0-based views with `range` counters, or unsigned indices, so that no index pays
numba's negative-index wraparound check (which also blocks vectorisation). Kernels with
several outputs return the rows of one block (glibc keeps reusing one big block, where
three separate 4 MB outputs go back to the OS and page-fault on every call); a row
kept alive keeps the whole block. Helpers get np.int64 indices rather than a literal 0,
for which numba would compile a second variant.

Kernels assume valid windows, equal lengths and low <= high; they raise ValueError (a
programming error) for bad windows or unequal lengths. One runner (`_compute`) applies the
bad-bar rule for all of them; each indicator is a stretch kernel (`_*_run`) and a kind.
"""

from __future__ import annotations

import math

import numpy as np

from binance_cluster.kernels._jit import jit

NAN = np.nan
INF = np.inf

# A running window sum is rebuilt from its window every max(REFRESH_MIN, REFRESH_WINDOWS * n)
# bars: drift stays far below 1e-12 relative and a rebuild costs under 1/8 add per bar.
REFRESH_MIN = 1024
REFRESH_WINDOWS = 8

# What _moments_run writes besides M2.
M2_ONLY = 0
MEAN_M2 = 1
ZSCORE = 2

# Shifted moment sums are rebuilt early once sum((x-k)**2) / M2 exceeds max(RECENTER, 2n)
# (right after a rebuild the ratio is at most n, so a rebuild never re-triggers itself).
RECENTER = 64.0

# Rolling extremes over windows up to this length take the elementwise max of shifted
# views (vectorised); longer windows use the van Herk / Gil-Werman block algorithm.
SMALL_WINDOW = 4


# ----------------------------------------------------------------------------------------
# helpers


@jit
def refresh_period(n):
    """Bars between two exact rebuilds of a running sum over windows of n values."""
    return max(REFRESH_MIN, REFRESH_WINDOWS * n)


@jit
def finite_end(x, start, stop):
    """First index in [start, stop) where x is NaN or infinite; `stop` if there is none."""
    i = start
    while i < stop:
        hi = min(i + 512, stop)
        chunk = x[i:hi]
        bad = 0
        for j in range(chunk.shape[0]):
            bad |= (chunk[j] - chunk[j]) != 0.0
        if bad:
            for j in range(chunk.shape[0]):
                if (chunk[j] - chunk[j]) != 0.0:
                    return i + j
        i = hi
    return stop


@jit
def _finite(v):
    return (v - v) == 0.0


@jit
def _fill_nan(out, start, stop):
    for t in range(start, stop):
        out[t] = NAN


@jit
def _shifted_sums(x, lo, hi, k):
    """(sum of x[i] - k, sum of (x[i] - k)**2) over x[lo:hi], four interleaved accumulators
    in a fixed order (deterministic)."""
    w = x[lo:hi]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    q0 = 0.0
    q1 = 0.0
    q2 = 0.0
    q3 = 0.0
    m = w.shape[0]
    q = m // 4
    for i in range(q):
        j = 4 * i
        d0 = w[j] - k
        d1 = w[j + 1] - k
        d2 = w[j + 2] - k
        d3 = w[j + 3] - k
        s0 += d0
        s1 += d1
        s2 += d2
        s3 += d3
        q0 += d0 * d0
        q1 += d1 * d1
        q2 += d2 * d2
        q3 += d3 * d3
    for j in range(4 * q, m):
        d0 = w[j] - k
        s0 += d0
        q0 += d0 * d0
    return (s0 + s1) + (s2 + s3), (q0 + q1) + (q2 + q3)


@jit
def _last_change(x, lo, t):
    """Largest i in (lo, t] with x[i] != x[i-1], or lo if x[lo..t] are all equal."""
    i = t
    while i > lo and x[i] == x[i - 1]:
        i -= 1
    return i


# ----------------------------------------------------------------------------------------
# window sums over one stretch [a, b); each returns False if a running sum went non-finite


@jit
def _mean_run(x, a, b, n, out):
    """out[a:b] = mean of each full window of n values inside [a, b), NaN before.

    Sums are shifted by k, the value at the last rebuild: x - k is exact for prices
    within a factor 2 of k, so the running sum carries small numbers and the mean
    k + sum / n is good to about an ulp.
    """
    if b - a < n:
        _fill_nan(out, a, b)
        return True
    _fill_nan(out, a, a + n - 1)
    inv_n = 1.0 / n
    period = refresh_period(n)
    lim = 1 - n
    clean = True
    t0 = a + n - 1
    while t0 < b:
        # exact rebuild at t0, then running sums on t0+1 .. hi-1 (views indexed from 0)
        k = x[t0]
        s, _ = _shifted_sums(x, t0 - n + 1, t0 + 1, k)
        change = _last_change(x, t0 - n + 1, t0)
        out[t0] = k if change <= t0 - n + 1 else k + s * inv_n
        hi = min(t0 + period, b)
        lo = t0 + 1
        new = x[lo:hi]
        old = x[lo - n:hi - n]
        prev = x[lo - 1:hi - 1]
        dst = out[lo:hi]
        ch = change - lo
        for j in range(hi - lo):
            v = new[j]
            s += v - old[j]
            ch = ch if v == prev[j] else j
            dst[j] = v if ch <= j + lim else k + s * inv_n
        clean &= _finite(s)
        t0 = hi
    return clean


@jit
def _moments_run(x, a, b, n, mode, mean_out, m2_out):
    """Window moments over [a, b), NaN before: M2 (sum of squared deviations) into m2_out,
    and into mean_out the mean (mode MEAN_M2) or the z-score (mode ZSCORE; M2_ONLY: none).

    Running sums of x - k and (x - k)**2 with k the value at the last rebuild. M2 =
    sum2 - sum**2 / n cancels sum2 / M2 to one; the sums are rebuilt around the current
    value whenever that ratio passes max(RECENTER, 2n) (the window mean drifted ~8
    standard deviations from k), besides every refresh_period(n) bars, which keeps M2
    good to ~1e-13 relative. A constant window has M2 = 0.0 and mean = its value exactly.
    The mean has its own shifted sum, rebuilt on _mean_run's schedule, so that it is
    bit-identical to sma.
    """
    if b - a < n:
        _fill_nan(m2_out, a, b)
        if mode != M2_ONLY:
            _fill_nan(mean_out, a, b)
        return True
    _fill_nan(m2_out, a, a + n - 1)
    if mode != M2_ONLY:
        _fill_nan(mean_out, a, a + n - 1)
    inv_n = 1.0 / n
    recenter = max(RECENTER, 2.0 * n)
    # unsigned indices: no wraparound checks; rebuilds happen inside the one loop
    un = np.uint64(n)
    one = np.uint64(1)
    period = np.uint64(refresh_period(n))
    ub = np.uint64(b)
    t = np.uint64(a + n - 1)
    due = t
    due_mean = t
    k = 0.0
    s = 0.0
    q = 0.0
    km = 0.0
    sm = 0.0
    change = t
    clean = True
    while t < ub:
        v = x[t]
        if t >= due:
            clean &= _finite(s) & _finite(q)
            k = v
            ts = np.int64(t)
            s, q = _shifted_sums(x, ts + 1 - n, ts + 1, k)
            change = np.uint64(_last_change(x, ts + 1 - n, ts))
            due = t + period
        else:
            u = x[t - un]
            d = v - u
            s += d
            q += d * ((v - k) + (u - k))
            change = change if v == x[t - one] else t
        if mode != M2_ONLY:
            if t >= due_mean:
                km = v
                ts = np.int64(t)
                sm, _ = _shifted_sums(x, ts + 1 - n, ts + 1, km)
                due_mean = t + period
            else:
                sm += v - x[t - un]
        m2 = q - s * s * inv_n
        flat = change + un <= t + one
        if mode != ZSCORE:
            m2_out[t] = 0.0 if flat else m2
        if mode == MEAN_M2:
            mean_out[t] = v if flat else km + sm * inv_n
        elif mode == ZSCORE:
            var = m2 * inv_n
            sd = np.sqrt(0.0 if var < 0.0 else var)
            mean_out[t] = 0.0 if flat or sd == 0.0 else (v - (km + sm * inv_n)) / sd
        if q > recenter * m2:
            due = t + one
        t += one
    return clean & _finite(s) & _finite(q)


@jit
def _wma_run(x, a, b, n, out):
    """Linearly weighted window mean (weights 1..n, newest heaviest) over [a, b).

    Running plain and weighted sums of x - k (k: value at the last rebuild), so the
    weighted sum, which integrates the plain one, carries small numbers.
    """
    if b - a < n:
        _fill_nan(out, a, b)
        return True
    _fill_nan(out, a, a + n - 1)
    inv_div = 2.0 / (n * (n + 1.0))
    fn = float(n)
    period = refresh_period(n)
    lim = 1 - n
    clean = True
    t0 = a + n - 1
    while t0 < b:
        k = x[t0]
        win = x[t0 - n + 1:t0 + 1]
        s, _ = _shifted_sums(x, t0 - n + 1, t0 + 1, k)
        w = 0.0
        for i in range(n):
            w += (i + 1.0) * (win[i] - k)
        change = _last_change(x, t0 - n + 1, t0)
        out[t0] = k if change <= t0 - n + 1 else k + w * inv_div
        hi = min(t0 + period, b)
        lo = t0 + 1
        new = x[lo:hi]
        old = x[lo - n:hi - n]
        prev = x[lo - 1:hi - 1]
        dst = out[lo:hi]
        ch = change - lo
        for j in range(hi - lo):
            v = new[j]
            w += fn * (v - k) - s
            s += v - old[j]
            ch = ch if v == prev[j] else j
            dst[j] = v if ch <= j + lim else k + w * inv_div
        clean &= _finite(s) & _finite(w)
        t0 = hi
    return clean


@jit
def _vwap_run(high, low, close, volume, a, b, n, out):
    """out[t] = sum((h+l+c) * v) / (3 * sum(v)) over each window of [a, b); NaN where
    the window's volume is all zero (tracked exactly, not from the running sum)."""
    if b - a < n:
        _fill_nan(out, a, b)
        return True
    _fill_nan(out, a, a + n - 1)
    period = refresh_period(n)
    lim = 1 - n
    clean = True
    t0 = a + n - 1
    while t0 < b:
        pv = 0.0
        sv = 0.0
        nonzero = t0 - n
        for i in range(t0 - n + 1, t0 + 1):
            pv += ((high[i] + low[i]) + close[i]) * volume[i]
            sv += volume[i]
            if volume[i] != 0.0:
                nonzero = i
        out[t0] = NAN if nonzero < t0 - n + 1 else pv / (3.0 * sv)
        hi = min(t0 + period, b)
        lo = t0 + 1
        h1 = high[lo:hi]
        l1 = low[lo:hi]
        c1 = close[lo:hi]
        v1 = volume[lo:hi]
        h0 = high[lo - n:hi - n]
        l0 = low[lo - n:hi - n]
        c0 = close[lo - n:hi - n]
        v0 = volume[lo - n:hi - n]
        dst = out[lo:hi]
        nz = nonzero - lo
        for j in range(hi - lo):
            vn = v1[j]
            vo = v0[j]
            pv += ((h1[j] + l1[j]) + c1[j]) * vn - ((h0[j] + l0[j]) + c0[j]) * vo
            sv += vn - vo
            nz = j if vn != 0.0 else nz
            dst[j] = NAN if nz < j + lim else pv / (3.0 * sv)
        clean &= _finite(pv) & _finite(sv)
        t0 = hi
    return clean


# ----------------------------------------------------------------------------------------
# exponential smoothing: e[t] = beta * e[t-1] + alpha * u[t], four bars per step
#
# Steps of four bars are aligned on the first smoothed bar; inside a step every output is
# computed from the value before the step (beta**k * e + c_k, c_k built from the inputs
# alone), so the carried chain is one multiply-add per four bars, and a partial last step
# gives the same values as a full one.


@jit
def _smooth_run(u, lo, hi, e, alpha, beta, out):
    """out[lo:hi] = exponential smoothing of u[lo:hi] from e (the value at lo-1)."""
    b2 = beta * beta
    b3 = b2 * beta
    b4 = b2 * b2
    src = u[lo:hi]
    dst = out[lo:hi]
    m = hi - lo
    q = m // 4
    for k in range(q):
        j = 4 * k
        c1 = alpha * src[j]
        c2 = beta * c1 + alpha * src[j + 1]
        c3 = beta * c2 + alpha * src[j + 2]
        c4 = beta * c3 + alpha * src[j + 3]
        dst[j] = beta * e + c1
        dst[j + 1] = b2 * e + c2
        dst[j + 2] = b3 * e + c3
        e = b4 * e + c4
        dst[j + 3] = e
    j = 4 * q
    if j < m:
        c = alpha * src[j]
        dst[j] = beta * e + c
        if j + 1 < m:
            c = beta * c + alpha * src[j + 1]
            dst[j + 1] = b2 * e + c
            if j + 2 < m:
                c = beta * c + alpha * src[j + 2]
                dst[j + 2] = b3 * e + c


@jit
def _ema_run(x, a, b, n, out):
    """EMA over the stretch [a, b): seeded at a+n-1 with the mean of its first n values."""
    if b - a < n:
        _fill_nan(out, a, b)
        return True
    _fill_nan(out, a, a + n - 1)
    s = 0.0
    for t in range(a, a + n):
        s += x[t]
    e = s / n
    out[a + n - 1] = e
    _smooth_run(x, a + n, b, e, 2.0 / (n + 1.0), (n - 1.0) / (n + 1.0), out)
    return _finite(out[b - 1])


@jit
def _rsi_of(g, s):
    """100 * g / (g + s), and 0.0 when both are 0 (TA-Lib's RSI of a flat stretch)."""
    total = g + s
    return 0.0 if total == 0.0 else 100.0 * g / total


@jit
def _rsi_run(x, a, b, n, out):
    """RSI over [a, b) from Wilder-smoothed average gains and losses.

    Seed at a+n: plain means of the first n gains and losses (TA-Lib's seeding). Gains
    and losses are (d + |d|) / 2 and (|d| - d) / 2: exact, and NaN-propagating. The two
    smoothings run side by side, four bars per step as in _smooth_run.
    """
    if b - a <= n:
        _fill_nan(out, a, b)
        return True
    _fill_nan(out, a, a + n)
    g = 0.0
    s = 0.0
    for t in range(a + 1, a + n + 1):
        d = x[t] - x[t - 1]
        g += (d + abs(d)) * 0.5
        s += (abs(d) - d) * 0.5
    g /= n
    s /= n
    out[a + n] = _rsi_of(g, s)
    # alpha * (d + |d|) with alpha = 0.5 / n equals (1 / n) * gain exactly
    alpha = 0.5 / n
    beta = (n - 1.0) / n
    b2 = beta * beta
    b3 = b2 * beta
    b4 = b2 * b2
    lo = a + n + 1
    new = x[lo:b]
    prev = x[lo - 1:b - 1]
    dst = out[lo:b]
    m = b - lo
    q = m // 4
    for k in range(q):
        j = 4 * k
        d0 = new[j] - prev[j]
        d1 = new[j + 1] - prev[j + 1]
        d2 = new[j + 2] - prev[j + 2]
        d3 = new[j + 3] - prev[j + 3]
        a0 = abs(d0)
        a1 = abs(d1)
        a2 = abs(d2)
        a3 = abs(d3)
        g1 = alpha * (d0 + a0)
        g2 = beta * g1 + alpha * (d1 + a1)
        g3 = beta * g2 + alpha * (d2 + a2)
        g4 = beta * g3 + alpha * (d3 + a3)
        s1 = alpha * (a0 - d0)
        s2 = beta * s1 + alpha * (a1 - d1)
        s3 = beta * s2 + alpha * (a2 - d2)
        s4 = beta * s3 + alpha * (a3 - d3)
        dst[j] = _rsi_of(beta * g + g1, beta * s + s1)
        dst[j + 1] = _rsi_of(b2 * g + g2, b2 * s + s2)
        dst[j + 2] = _rsi_of(b3 * g + g3, b3 * s + s3)
        g = b4 * g + g4
        s = b4 * s + s4
        dst[j + 3] = _rsi_of(g, s)
    j = 4 * q
    bk = beta
    cg = 0.0
    cs = 0.0
    last_g = g
    last_s = s
    while j < m:
        d0 = new[j] - prev[j]
        a0 = abs(d0)
        ug = alpha * (d0 + a0)
        us = alpha * (a0 - d0)
        cg = ug if j == 4 * q else beta * cg + ug
        cs = us if j == 4 * q else beta * cs + us
        last_g = bk * g + cg
        last_s = bk * s + cs
        dst[j] = _rsi_of(last_g, last_s)
        bk *= beta
        j += 1
    return _finite(last_g) & _finite(last_s)


@jit
def _true_range(hv, lv, cp):
    """max(h - l, |h - c_prev|, |l - c_prev|), computed as max(h, c_prev) - min(l, c_prev)
    (the same number when low <= high); + (c_prev - c_prev) lets a non-finite previous
    close poison the result, which the selects alone would drop."""
    return ((cp if cp > hv else hv) - (cp if cp < lv else lv)) + (cp - cp)


@jit
def _atr_run(high, low, close, a, b, n, out):
    """Wilder-smoothed true range over [a, b), seeded at a+n with the mean of n true ranges,
    four bars per step as in _smooth_run with the true ranges computed on the fly."""
    if b - a <= n:
        _fill_nan(out, a, b)
        return True
    _fill_nan(out, a, a + n)
    e = 0.0
    for t in range(a + 1, a + n + 1):
        e += _true_range(high[t], low[t], close[t - 1])
    e /= n
    out[a + n] = e
    alpha = 1.0 / n
    beta = (n - 1.0) / n
    b2 = beta * beta
    b3 = b2 * beta
    b4 = b2 * b2
    lo = a + n + 1
    hh = high[lo:b]
    ll = low[lo:b]
    cc = close[lo - 1:b - 1]
    dst = out[lo:b]
    m = b - lo
    q = m // 4
    for k in range(q):
        j = 4 * k
        c1 = alpha * _true_range(hh[j], ll[j], cc[j])
        c2 = beta * c1 + alpha * _true_range(hh[j + 1], ll[j + 1], cc[j + 1])
        c3 = beta * c2 + alpha * _true_range(hh[j + 2], ll[j + 2], cc[j + 2])
        c4 = beta * c3 + alpha * _true_range(hh[j + 3], ll[j + 3], cc[j + 3])
        dst[j] = beta * e + c1
        dst[j + 1] = b2 * e + c2
        dst[j + 2] = b3 * e + c3
        e = b4 * e + c4
        dst[j + 3] = e
    j = 4 * q
    if j < m:
        c = alpha * _true_range(hh[j], ll[j], cc[j])
        dst[j] = beta * e + c
        if j + 1 < m:
            c = beta * c + alpha * _true_range(hh[j + 1], ll[j + 1], cc[j + 1])
            dst[j + 1] = b2 * e + c
            if j + 2 < m:
                c = beta * c + alpha * _true_range(hh[j + 2], ll[j + 2], cc[j + 2])
                dst[j + 2] = b3 * e + c
    # bars whose inputs the true range does not read: high/low of a, close of b-1
    edges = (high[a] - high[a]) + (low[a] - low[a]) + (close[b - 1] - close[b - 1])
    return _finite(out[b - 1]) & _finite(edges)


@jit
def _macd_run(x, a, b, fast, slow, signal, line, sig, hist):
    """MACD over [a, b) with TA-Lib's alignment (see `macd`).

    The fast and slow EMAs run side by side, four bars per step as in _smooth_run.
    """
    first = a + slow + signal - 2
    if b <= first:
        _fill_nan(line, a, b)
        _fill_nan(sig, a, b)
        _fill_nan(hist, a, b)
        return True
    ts = a + slow - 1
    s_slow = 0.0
    for t in range(a, ts + 1):
        s_slow += x[t]
    s_fast = 0.0
    for t in range(ts - fast + 1, ts + 1):
        s_fast += x[t]
    ef = s_fast / fast
    es = s_slow / slow
    line[ts] = ef - es
    af = 2.0 / (fast + 1.0)
    bf = (fast - 1.0) / (fast + 1.0)
    as_ = 2.0 / (slow + 1.0)
    bs = (slow - 1.0) / (slow + 1.0)
    bf2 = bf * bf
    bf3 = bf2 * bf
    bf4 = bf2 * bf2
    bs2 = bs * bs
    bs3 = bs2 * bs
    bs4 = bs2 * bs2
    lo = ts + 1
    src = x[lo:b]
    dst = line[lo:b]
    m = b - lo
    q = m // 4
    for k in range(q):
        j = 4 * k
        v0 = src[j]
        v1 = src[j + 1]
        v2 = src[j + 2]
        v3 = src[j + 3]
        f1 = af * v0
        f2 = bf * f1 + af * v1
        f3 = bf * f2 + af * v2
        f4 = bf * f3 + af * v3
        g1 = as_ * v0
        g2 = bs * g1 + as_ * v1
        g3 = bs * g2 + as_ * v2
        g4 = bs * g3 + as_ * v3
        dst[j] = (bf * ef + f1) - (bs * es + g1)
        dst[j + 1] = (bf2 * ef + f2) - (bs2 * es + g2)
        dst[j + 2] = (bf3 * ef + f3) - (bs3 * es + g3)
        ef = bf4 * ef + f4
        es = bs4 * es + g4
        dst[j + 3] = ef - es
    j = 4 * q
    kf = bf
    ks = bs
    cf = 0.0
    cs = 0.0
    while j < m:
        uf = af * src[j]
        us = as_ * src[j]
        cf = uf if j == 4 * q else bf * cf + uf
        cs = us if j == 4 * q else bs * cs + us
        dst[j] = (kf * ef + cf) - (ks * es + cs)
        kf *= bf
        ks *= bs
        j += 1
    s = 0.0
    for t in range(ts, first + 1):
        s += line[t]
    e = s / signal
    sig[first] = e
    _smooth_run(line, first + 1, b, e, 2.0 / (signal + 1.0), (signal - 1.0) / (signal + 1.0), sig)
    clean = _finite(line[b - 1]) & _finite(sig[b - 1])
    _fill_nan(line, a, first)
    _fill_nan(sig, a, first)
    _fill_nan(hist, a, first)
    hl = line[first:b]
    hs = sig[first:b]
    hd = hist[first:b]
    for i in range(b - first):
        hd[i] = hl[i] - hs[i]
    return clean


# ----------------------------------------------------------------------------------------
# rolling extremes


@jit
def _suffix_max(x, start, n, sign, buf):
    """buf[i] = max(sign * x[start + i .. start + n - 1]) for i < n (buf[n] stays -inf)."""
    s = -INF
    for i in range(n - 1, -1, -1):
        v = sign * x[start + i]
        s = v if v > s else s
        buf[i] = s
    return s


@jit
def _extreme_run(x, a, b, n, sign, out):
    """out[t] = sign * max(sign * x[t-n+1 .. t]) over the stretch [a, b); sign is +1 or -1.

    Windows up to SMALL_WINDOW: elementwise max of n shifted views. Longer windows: van
    Herk / Gil-Werman with blocks of n aligned on a: a window ending in block k is the max
    of the suffix maxima of block k-1 and the prefix maxima of block k; the suffix maxima
    of block k are built backwards while block k is walked forwards, O(1) per bar. The
    full blocks are walked as two interleaved streams (first and second half of the
    stretch) so that four independent max chains keep the core busy.
    """
    m = b - a
    if m < n:
        _fill_nan(out, a, b)
        return
    _fill_nan(out, a, a + n - 1)
    xs = x[a:b]
    os = out[a:b]
    if n <= SMALL_WINDOW:
        lo = n - 1
        dst = os[lo:m]
        src = xs[lo:m]
        for j in range(m - lo):
            dst[j] = sign * src[j]
        for k in range(1, n):
            src = xs[lo - k:m - k]
            for j in range(m - lo):
                v = sign * src[j]
                w = dst[j]
                dst[j] = v if v > w else w
        for j in range(m - lo):
            dst[j] = sign * dst[j]
        return
    # unsigned indices from here: no wraparound checks in the hot loops
    un = np.uint64(n)
    one = np.uint64(1)
    top = un - one
    um = np.uint64(m)
    pa = np.empty(n + 1)
    ca = np.empty(n + 1)
    pb = np.empty(n + 1)
    cb = np.empty(n + 1)
    pa[n] = -INF
    ca[n] = -INF
    pb[n] = -INF
    cb[n] = -INF
    os[n - 1] = sign * _suffix_max(xs, np.int64(0), n, sign, pa)
    blocks = m // n
    half = (blocks + 1) // 2
    # stream A walks blocks 1 .. half-1, stream B blocks half .. 2*half-2, side by side
    pairs = half - 1
    if pairs > 0:
        _suffix_max(xs, (half - 1) * n, n, sign, pb)
    sa = un
    sb = np.uint64(half) * un
    for _ in range(pairs):
        p = -INF
        s = -INF
        q = -INF
        r = -INF
        ea = sa + top
        eb = sb + top
        for j in range(un):
            v = sign * xs[sa + j]
            p = v if v > p else p
            w = pa[j + one]
            os[sa + j] = sign * (w if w > p else p)
            v = sign * xs[ea - j]
            s = v if v > s else s
            ca[top - j] = s
            v = sign * xs[sb + j]
            q = v if v > q else q
            w = pb[j + one]
            os[sb + j] = sign * (w if w > q else q)
            v = sign * xs[eb - j]
            r = v if v > r else r
            cb[top - j] = r
        pa, ca = ca, pa
        pb, cb = cb, pb
        sa += un
        sb += un
    # the rest (stream B's tail, or everything after block 0 when there are no pairs)
    if pairs > 0:
        start = sb
        prev = pb
        cur = cb
    else:
        start = sa
        prev = pa
        cur = ca
    while start + un <= um:
        p = -INF
        s = -INF
        e = start + top
        for j in range(un):
            v = sign * xs[start + j]
            p = v if v > p else p
            w = prev[j + one]
            os[start + j] = sign * (w if w > p else p)
            v = sign * xs[e - j]
            s = v if v > s else s
            cur[top - j] = s
        prev, cur = cur, prev
        start += un
    p = -INF
    for j in range(um - start):
        v = sign * xs[start + j]
        p = v if v > p else p
        w = prev[j + one]
        os[start + j] = sign * (w if w > p else p)


# ----------------------------------------------------------------------------------------
# one stretch of any indicator, and the split at bad bars


@jit
def _stoch_run(high, low, close, a, b, k, d, pk, pd):
    """%K and %D over the stretch [a, b) (see `stoch`); pd holds the lowest lows meanwhile."""
    _extreme_run(high, a, b, k, 1.0, pk)
    _extreme_run(low, a, b, k, -1.0, pd)
    if b - a >= k:
        lo = a + k - 1
        hh = pk[lo:b]
        ll = pd[lo:b]
        cc = close[lo:b]
        for j in range(b - lo):
            rng = hh[j] - ll[j]
            hh[j] = 0.0 if rng == 0.0 else 100.0 * (cc[j] - ll[j]) / rng
        _mean_run(pk, lo, b, d, pd)


@jit
def _log_returns_run(x, a, b, out):
    """log1p((x[t] - x[t-1]) / x[t-1]) over the stretch [a, b), NaN at its first bar."""
    if b > a:
        out[a] = NAN
        new = x[a + 1:b]
        prev = x[a:b - 1]
        dst = out[a + 1:b]
        for j in range(b - a - 1):
            p = prev[j]
            dst[j] = np.log1p((new[j] - p) / p)


# What `_stretch` computes. Kinds from KIND_SCAN_FIRST on look for bad bars before computing
# (their max/min selects would drop a NaN); the others try the whole series first.
KIND_SMA = 0
KIND_EMA = 1
KIND_WMA = 2
KIND_RSI = 3
KIND_MACD = 4
KIND_M2 = 5                  # M2 of the window into row 0 (the callers take the root)
KIND_MEAN_M2 = 6             # mean into row 0, M2 into row 1
KIND_ZSCORE = 7
KIND_ATR = 8
KIND_VWAP = 9
KIND_SCAN_FIRST = 10
KIND_STOCH = 10
KIND_MAX = 11
KIND_MIN = 12
KIND_LOG_RETURNS = 13


@jit
def _stretch(kind, high, low, close, volume, a, b, p, rows):
    """Indicator `kind` with parameters p of the stretch [a, b) into the rows of `rows`.

    Single-input kinds read `close`. False if a running state went non-finite (the caller
    then splits the series at its bad bars).
    """
    if kind == KIND_SMA:
        return _mean_run(close, a, b, p[0], rows[0])
    if kind == KIND_EMA:
        return _ema_run(close, a, b, p[0], rows[0])
    if kind == KIND_WMA:
        return _wma_run(close, a, b, p[0], rows[0])
    if kind == KIND_RSI:
        return _rsi_run(close, a, b, p[0], rows[0])
    if kind == KIND_MACD:
        return _macd_run(close, a, b, p[0], p[1], p[2], rows[0], rows[1], rows[2])
    if kind == KIND_M2:
        return _moments_run(close, a, b, p[0], np.int64(M2_ONLY), rows[0], rows[0])
    if kind == KIND_MEAN_M2:
        return _moments_run(close, a, b, p[0], np.int64(MEAN_M2), rows[0], rows[1])
    if kind == KIND_ZSCORE:
        return _moments_run(close, a, b, p[0], np.int64(ZSCORE), rows[0], rows[0])
    if kind == KIND_ATR:
        return _atr_run(high, low, close, a, b, p[0], rows[0])
    if kind == KIND_VWAP:
        return _vwap_run(high, low, close, volume, a, b, p[0], rows[0])
    if kind == KIND_STOCH:
        _stoch_run(high, low, close, a, b, p[0], p[1], rows[0], rows[1])
    elif kind == KIND_MAX:
        _extreme_run(close, a, b, p[0], 1.0, rows[0])
    elif kind == KIND_MIN:
        _extreme_run(close, a, b, p[0], -1.0, rows[0])
    elif kind == KIND_LOG_RETURNS:
        _log_returns_run(close, a, b, rows[0])
    return True


@jit
def _good_end(kind, high, low, close, volume, a, stop):
    """First bar in [a, stop) where an input `kind` reads is NaN or infinite; `stop` if none."""
    b = finite_end(close, a, stop)
    if kind == KIND_ATR or kind == KIND_VWAP or kind == KIND_STOCH:
        b = finite_end(high, a, b)
        b = finite_end(low, a, b)
    if kind == KIND_VWAP:
        b = finite_end(volume, a, b)
    return b


@jit
def _compute(kind, high, low, close, volume, p, count):
    """A block of `count` output rows of indicator `kind`, by the bad-bar rule of the module
    docstring: the whole series as one stretch when its running state stays finite, else
    every stretch between bad bars on its own, NaN at the bad bars."""
    size = close.shape[0]
    rows = np.empty((count, size))  # one allocation, whose pages malloc keeps reusing
    a = np.int64(0)
    if kind == KIND_VWAP:
        # its own variant for a literal 0 start, as before the fold (measured a few % faster)
        whole = _vwap_run(high, low, close, volume, 0, size, p[0], rows[0])
    else:
        whole = kind < KIND_SCAN_FIRST and _stretch(kind, high, low, close, volume, a, size, p, rows)
    if whole:
        return rows
    while a < size:
        b = _good_end(kind, high, low, close, volume, a, size)
        _stretch(kind, high, low, close, volume, a, b, p, rows)
        if b < size:
            for r in range(count):
                rows[r, b] = NAN
        a = b + 1
    return rows


@jit
def _root_in_place(m2, scale):
    """m2[t] <- sqrt(max(m2[t] * scale, 0)): window M2 to a standard deviation."""
    for t in range(m2.shape[0]):
        v = m2[t] * scale
        m2[t] = np.sqrt(0.0 if v < 0.0 else v)


@jit
def _same_lengths(name, size, a, b, c):
    if a.shape[0] != size or b.shape[0] != size or c.shape[0] != size:
        raise ValueError(name)


# ----------------------------------------------------------------------------------------
# public kernels


@jit
def sma(x, n):
    """Simple moving average of the last n values (reference: TA-Lib SMA)."""
    if n < 1:
        raise ValueError("sma: n must be >= 1")
    return _compute(KIND_SMA, x, x, x, x, (n, 0, 0), 1)[0]


@jit
def ema(x, n):
    """EMA, alpha 2/(n+1), seeded at bar n-1 by the mean of n values (reference: TA-Lib EMA)."""
    if n < 1:
        raise ValueError("ema: n must be >= 1")
    return _compute(KIND_EMA, x, x, x, x, (n, 0, 0), 1)[0]


@jit
def wma(x, n):
    """Weighted moving average, weights 1..n, the newest heaviest (reference: TA-Lib WMA)."""
    if n < 1:
        raise ValueError("wma: n must be >= 1")
    return _compute(KIND_WMA, x, x, x, x, (n, 0, 0), 1)[0]


@jit
def rsi(close, n):
    """Wilder's RSI, seeded at bar n by means of n gains/losses (reference: TA-Lib RSI).

    100 * avg_gain / (avg_gain + avg_loss), and 0.0 where both averages are 0 (a flat
    stretch), which is what TA-Lib returns there.
    """
    if n < 1:
        raise ValueError("rsi: n must be >= 1")
    return _compute(KIND_RSI, close, close, close, close, (n, 0, 0), 1)[0]


@jit
def macd(close, fast=12, slow=26, signal=9):
    """MACD line, signal and histogram with TA-Lib's alignment (reference: TA-Lib MACD).

    line = EMA_fast - EMA_slow (alpha = 2/(p+1)); both EMAs are seeded at bar slow-1, the
    fast one with the mean of bars slow-fast..slow-1 as TA-Lib does; signal = EMA of the
    line seeded at bar slow+signal-2 with the mean of its first `signal` values; hist =
    line - signal. All three are NaN before bar slow+signal-2, as in TA-Lib.
    """
    if fast < 1 or slow <= fast or signal < 1:
        raise ValueError("macd: need 1 <= fast < slow and signal >= 1")
    block = _compute(KIND_MACD, close, close, close, close, (fast, slow, signal), 3)
    return block[0], block[1], block[2]


@jit
def bollinger(close, n=20, k=2.0):
    """Bollinger bands: SMA(n) -/+ k population std devs (reference: TA-Lib BBANDS, SMA).

    Returns (mid, upper, lower) (TA-Lib returns upper, middle, lower); mid is
    bit-identical to sma(close, n) and upper - mid is k * rolling_std(close, n, 0) before
    rounding: mid - k * rolling_std(close, n, 0) is `lower`, bit for bit.
    """
    if n < 1:
        raise ValueError("bollinger: n must be >= 1")
    bands = _compute(KIND_MEAN_M2, close, close, close, close, (n, 0, 0), 3)
    mid = bands[0]
    upper = bands[1]
    lower = bands[2]
    inv_n = 1.0 / n
    for t in range(close.shape[0]):
        v = upper[t] * inv_n
        w = k * np.sqrt(0.0 if v < 0.0 else v)
        c = mid[t]
        upper[t] = c + w
        lower[t] = c - w
    return mid, upper, lower


@jit
def atr(high, low, close, n=14):
    """Average true range, Wilder-smoothed, seeded at bar n (reference: TA-Lib ATR)."""
    if n < 1:
        raise ValueError("atr: n must be >= 1")
    _same_lengths("atr: high, low and close differ in length", close.shape[0], high, low, low)
    return _compute(KIND_ATR, high, low, close, close, (n, 0, 0), 1)[0]


@jit
def stoch(high, low, close, k=14, d=3):
    """Fast stochastic %K over k bars and %D = SMA(%K, d) (reference: TA-Lib STOCHF, SMA).

    %K = 100 * (close - lowest low) / (highest high - lowest low), and 0.0 when that range
    is 0 (as TA-Lib). %K starts at bar k-1 and %D at bar k+d-2. TA-Lib's STOCHF(k, d)
    returns the same fastk and fastd but blanks fastk up to bar k+d-2; TA-Lib's
    STOCH(fastk_period=k, slowk_period=d, slowk_matype=SMA) returns our %D as its slowk.
    """
    if k < 1 or d < 1:
        raise ValueError("stoch: k and d must be >= 1")
    _same_lengths("stoch: high, low and close differ in length", close.shape[0], high, low, low)
    block = _compute(KIND_STOCH, high, low, close, close, (k, d, 0), 2)
    return block[0], block[1]


@jit
def vwap(high, low, close, volume, n):
    """Rolling VWAP of (h+l+c)/3 over n bars, NaN if no volume (reference: sum(tp*v)/sum(v))."""
    if n < 1:
        raise ValueError("vwap: n must be >= 1")
    _same_lengths("vwap: high, low, close and volume differ in length", close.shape[0], high,
                  low, volume)
    return _compute(KIND_VWAP, high, low, close, volume, (n, 0, 0), 1)[0]


@jit
def rolling_max(x, n):
    """Maximum of the last n values, O(1) per bar (reference: TA-Lib MAX)."""
    if n < 1:
        raise ValueError("rolling_max: n must be >= 1")
    return _compute(KIND_MAX, x, x, x, x, (n, 0, 0), 1)[0]


@jit
def rolling_min(x, n):
    """Minimum of the last n values, O(1) per bar (reference: TA-Lib MIN)."""
    if n < 1:
        raise ValueError("rolling_min: n must be >= 1")
    return _compute(KIND_MIN, x, x, x, x, (n, 0, 0), 1)[0]


@jit
def rolling_std(x, n, ddof=0):
    """Std of the last n values, divisor n - ddof (reference: TA-Lib STDDEV for ddof=0)."""
    if n < 1 or ddof < 0 or n <= ddof:
        raise ValueError("rolling_std: need n >= 1 and 0 <= ddof < n")
    out = _compute(KIND_M2, x, x, x, x, (n, 0, 0), 1)[0]
    _root_in_place(out, 1.0 / (n - ddof))
    return out


@jit
def zscore(x, n):
    """(x - SMA(n)) / population std of n values; 0 if std is 0 (reference: (x-mean)/pstdev)."""
    if n < 2:
        raise ValueError("zscore: n must be >= 2")
    return _compute(KIND_ZSCORE, x, x, x, x, (n, 0, 0), 1)[0]


@jit
def log_returns(x):
    """log1p((x[t] - x[t-1]) / x[t-1]), NaN at bar 0 (reference: math.log(x[t] / x[t-1]))."""
    return _compute(KIND_LOG_RETURNS, x, x, x, x, (1, 0, 0), 1)[0]


# ----------------------------------------------------------------------------------------
# the integer-tick variant: simple moving averages compared exactly
#
# Prices on a tick grid make two moving averages exactly equal surprisingly often; a float
# window sum then decides which is higher by its rounding, which depends on the order of
# additions. The crossover sweeps and `sma_cross` therefore never compare float SMAs: prices
# become int64 ticks once (`price_decimals`, `to_ticks`), window sums are differences of the
# int64 prefix sums (`tick_prefix`: exact whatever the order of additions), and the sign of
# SMA(fn) - SMA(sn) is `mean_relation` of two window sums, exact in integers. These are the
# same averages as `sma` (sum / n of the same window), decided without rounding.

MAX_DECIMALS = 8


@jit
def price_decimals(x):
    """Fewest decimals d <= 8 with every x[i] * 10**d an integer (to rounding error); -1 if none."""
    for d in range(MAX_DECIMALS + 1):
        scale = 10.0 ** d
        ok = True
        for i in range(x.shape[0]):
            y = x[i] * scale
            if abs(y - math.floor(y + 0.5)) > 1e-12 * max(abs(y), 1.0):
                ok = False
                break
        if ok:
            return d
    return -1


@jit
def to_ticks(x, scale):
    """round(x * scale) as int64."""
    out = np.empty(x.shape[0], dtype=np.int64)
    for i in range(x.shape[0]):
        out[i] = np.int64(math.floor(x[i] * scale + 0.5))
    return out


@jit
def tick_prefix(ticks):
    """prefix[t] = sum of ticks[:t] (int64[n + 1]); the window sum of n bars ending at t is
    prefix[t + 1] - prefix[t + 1 - n].

    On a huge series the prefix may wrap around int64; the differences stay exact.
    """
    size = ticks.shape[0]
    prefix = np.empty(size + 1, dtype=np.int64)
    prefix[0] = 0
    acc = np.int64(0)
    for t in range(size):
        acc += ticks[t]
        prefix[t + 1] = acc
    return prefix


@jit
def sign_of_difference(a, b):
    """Sign of a - b (0 when equal), for ints or floats."""
    if a > b:
        return 1
    if a < b:
        return -1
    return 0


@jit
def mean_relation(fs, fn, ss, sn, safe_mul):
    """Sign of fs/fn - ss/sn, exactly, for non-negative int64 window sums.

    `fs * sn` against `ss * fn` when safe_mul (the products cannot overflow), else through
    quotient and remainder; both give the same answer.
    """
    if safe_mul:
        a = fs * sn
        b = ss * fn
    else:
        qa = fs // fn
        qb = ss // sn
        if qa != qb:
            a = qa
            b = qb
        else:
            a = (fs - qa * fn) * sn
            b = (ss - qb * sn) * fn
    return sign_of_difference(a, b)
