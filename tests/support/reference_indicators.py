"""Slow plain-Python indicator definitions: the oracles for the numba kernels.

Written from the textbook / TA-Lib definitions, one bar at a time, with exactly rounded
sums (math.fsum), two-pass variances and no running state except where the definition
is recursive (EMA, Wilder smoothing). Inputs are sequences of floats; outputs are lists
of floats with NaN during warm-up.

Bad bars (NaN or infinite in any input) follow the kernels' documented rule, implemented
here independently: the series is cut at every bad bar, each piece is computed as a whole
series, and bad bars are NaN.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

NAN = float("nan")


def split_at_bad(fn, *series):
    """Apply fn to every stretch of bars whose inputs are all finite; NaN at bad bars.

    fn returns one list or a tuple of lists; the result has the same shape.
    """
    size = len(series[0])
    good = [all(math.isfinite(s[i]) for s in series) for i in range(size)]
    outputs = None
    i = 0
    pieces = []
    while i < size:
        if not good[i]:
            i += 1
            continue
        j = i
        while j < size and good[j]:
            j += 1
        result = fn(*[list(s[i:j]) for s in series])
        pieces.append((i, j, result if isinstance(result, tuple) else (result,)))
        i = j
    count = len(pieces[0][2]) if pieces else _output_count(fn, series)
    outputs = [[NAN] * size for _ in range(count)]
    for i, j, result in pieces:
        for out, values in zip(outputs, result):
            out[i:j] = values
    return tuple(outputs) if count > 1 else outputs[0]


def _output_count(fn, series) -> int:
    result = fn(*[[] for _ in series])
    return len(result) if isinstance(result, tuple) else 1


def _mean(values) -> float:
    return math.fsum(values) / len(values)


def _pvariance(values, ddof: int = 0) -> float:
    if min(values) == max(values):
        return 0.0  # exactly; fsum(n * [c]) / n may miss c by an ulp
    mean = _mean(values)
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - ddof)


# --- single stretches (all inputs finite) ----------------------------------------------


def _sma(x, n):
    return [NAN if t < n - 1 else _mean(x[t - n + 1:t + 1]) for t in range(len(x))]


def _ema_from(x, n, seed_at, seed_from):
    """EMA with alpha 2/(n+1) seeded at `seed_at` by the mean of x[seed_from:seed_at+1]."""
    out = [NAN] * len(x)
    if seed_at >= len(x):
        return out
    alpha = 2.0 / (n + 1)
    e = _mean(x[seed_from:seed_at + 1])
    out[seed_at] = e
    for t in range(seed_at + 1, len(x)):
        e = e + alpha * (x[t] - e)
        out[t] = e
    return out


def _ema(x, n):
    return _ema_from(x, n, n - 1, 0)


def _wma(x, n):
    weight = n * (n + 1) / 2
    return [NAN if t < n - 1 else
            math.fsum((i + 1) * x[t - n + 1 + i] for i in range(n)) / weight
            for t in range(len(x))]


def _wilder(values, n, first):
    """Wilder average of values[first - n + 1 .. ]: seed = plain mean at `first`."""
    out = [NAN] * len(values)
    if first >= len(values):
        return out
    avg = _mean(values[first - n + 1:first + 1])
    out[first] = avg
    for t in range(first + 1, len(values)):
        avg = (avg * (n - 1) + values[t]) / n
        out[t] = avg
    return out


def _rsi(x, n):
    gains = [NAN] + [max(x[t] - x[t - 1], 0.0) for t in range(1, len(x))]
    losses = [NAN] + [max(x[t - 1] - x[t], 0.0) for t in range(1, len(x))]
    g = _wilder(gains, n, n)
    s = _wilder(losses, n, n)
    out = []
    for gt, st in zip(g, s):
        if math.isnan(gt):
            out.append(NAN)
        else:
            out.append(0.0 if gt + st == 0 else 100.0 * gt / (gt + st))
    return out


def _macd(x, fast, slow, signal):
    size = len(x)
    line = [NAN] * size
    sig = [NAN] * size
    hist = [NAN] * size
    first = slow + signal - 2
    if size <= first:
        return line, sig, hist
    # TA-Lib: both EMAs start at bar slow-1; the fast one is seeded there by its last
    # `fast` values, not by the first `fast` values of the series.
    ef = _ema_from(x, fast, slow - 1, slow - fast)
    es = _ema_from(x, slow, slow - 1, 0)
    raw = [NAN] * (slow - 1) + [ef[t] - es[t] for t in range(slow - 1, size)]
    sg = _ema_from(raw, signal, first, slow - 1)
    for t in range(first, size):
        line[t] = raw[t]
        sig[t] = sg[t]
        hist[t] = raw[t] - sg[t]
    return line, sig, hist


def _bollinger(x, n, k):
    mid = _sma(x, n)
    std = _rolling_std(x, n, 0)
    upper = [m + k * s for m, s in zip(mid, std)]
    lower = [m - k * s for m, s in zip(mid, std)]
    return mid, upper, lower


def _true_range(h, l, c):
    return [NAN] + [max(h[t] - l[t], abs(h[t] - c[t - 1]), abs(l[t] - c[t - 1]))
                    for t in range(1, len(c))]


def _atr(h, l, c, n):
    return _wilder(_true_range(h, l, c), n, n)


def _stoch(h, l, c, k, d):
    size = len(c)
    pk = [NAN] * size
    for t in range(k - 1, size):
        hh = max(h[t - k + 1:t + 1])
        ll = min(l[t - k + 1:t + 1])
        pk[t] = 0.0 if hh == ll else 100.0 * (c[t] - ll) / (hh - ll)
    pd = [NAN] * size
    for t in range(k + d - 2, size):
        pd[t] = _mean(pk[t - d + 1:t + 1])
    return pk, pd


def _vwap(h, l, c, v, n):
    out = [NAN] * len(c)
    for t in range(n - 1, len(c)):
        window = range(t - n + 1, t + 1)
        volume = math.fsum(v[i] for i in window)
        if volume != 0:
            out[t] = math.fsum((h[i] + l[i] + c[i]) / 3 * v[i] for i in window) / volume
    return out


def _rolling_max(x, n):
    return [NAN if t < n - 1 else max(x[t - n + 1:t + 1]) for t in range(len(x))]


def _rolling_min(x, n):
    return [NAN if t < n - 1 else min(x[t - n + 1:t + 1]) for t in range(len(x))]


def _rolling_std(x, n, ddof):
    return [NAN if t < n - 1 else math.sqrt(_pvariance(x[t - n + 1:t + 1], ddof))
            for t in range(len(x))]


def _zscore(x, n):
    out = [NAN] * len(x)
    for t in range(n - 1, len(x)):
        window = x[t - n + 1:t + 1]
        std = math.sqrt(_pvariance(window))
        out[t] = 0.0 if std == 0 else (x[t] - _mean(window)) / std
    return out


def _log_returns(x):
    out = [NAN] * len(x)
    with localcontext() as ctx:
        ctx.prec = 40
        for t in range(1, len(x)):
            out[t] = float((Decimal(x[t]) / Decimal(x[t - 1])).ln())
    return out


# --- public references: same names and arguments as the kernels ------------------------


def sma(x, n):
    return split_at_bad(lambda a: _sma(a, n), x)


def ema(x, n):
    return split_at_bad(lambda a: _ema(a, n), x)


def wma(x, n):
    return split_at_bad(lambda a: _wma(a, n), x)


def rsi(close, n):
    return split_at_bad(lambda a: _rsi(a, n), close)


def macd(close, fast=12, slow=26, signal=9):
    return split_at_bad(lambda a: _macd(a, fast, slow, signal), close)


def bollinger(close, n=20, k=2.0):
    return split_at_bad(lambda a: _bollinger(a, n, k), close)


def atr(high, low, close, n=14):
    return split_at_bad(lambda h, l, c: _atr(h, l, c, n), high, low, close)


def stoch(high, low, close, k=14, d=3):
    return split_at_bad(lambda h, l, c: _stoch(h, l, c, k, d), high, low, close)


def vwap(high, low, close, volume, n):
    return split_at_bad(lambda h, l, c, v: _vwap(h, l, c, v, n), high, low, close, volume)


def rolling_max(x, n):
    return split_at_bad(lambda a: _rolling_max(a, n), x)


def rolling_min(x, n):
    return split_at_bad(lambda a: _rolling_min(a, n), x)


def rolling_std(x, n, ddof=0):
    return split_at_bad(lambda a: _rolling_std(a, n, ddof), x)


def zscore(x, n):
    return split_at_bad(lambda a: _zscore(a, n), x)


def log_returns(x):
    return split_at_bad(_log_returns, x)
