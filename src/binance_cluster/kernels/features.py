"""Feature kernel of the ML models: causal rows computed from a fixed window of past candles.

The feature row of bar t depends only on the `history` candles t-history+1 .. t (a window of
fixed length, never the whole history): the live loop keeps exactly that many candles, so a
row computed on the newest bar of the live buffer equals the row of the same bar computed on
a whole history, bit for bit (the same code runs on the same numbers).

Row layout (the order `binance_cluster.ml.features.FeatureSpec.names` lists):

- lags: close[t - d] / mean(close[t - mean_window + 1 .. t]) for every d in `lags`
  (the seed's 70: d = 0..60, 120..480 step 60, 720, 1440; mean over 1441 candles);
- returns: close[t] / close[t - h] - 1 for every h in `returns`;
- rsi (n > 0): Wilder's RSI(n) / 100, run over the last SMOOTH_SPAN * n + 1 closes;
- atr (n > 0): (high[t] - low[t]) / ATR(n), ATR run over the last SMOOTH_SPAN * n + 1 bars;
- volume_z (n > 0): z-score of volume[t] against the last n volumes;
- hour: sin and cos of 2 pi (open time of bar t, in hours of the UTC day) / 24.

RSI, ATR, the mean and the z-score come from `kernels/indicators.py` (the one family). Rows
before `history - 1` are NaN.
"""

import numpy as np

from binance_cluster.kernels import indicators as ind
from binance_cluster.kernels._jit import jit

SMOOTH_SPAN = 10          # Wilder-smoothed indicators run over SMOOTH_SPAN * n + 1 bars
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


@jit
def feature_count(n_lags, n_returns, rsi_n, atr_n, volume_n, hour):
    """Columns of a feature row."""
    return (n_lags + n_returns + (1 if rsi_n > 0 else 0) + (1 if atr_n > 0 else 0)
            + (1 if volume_n > 0 else 0) + (2 if hour else 0))


@jit
def history_length(lags, mean_window, returns, rsi_n, atr_n, volume_n):
    """Candles a feature row reads: the window ending at the bar."""
    need = mean_window
    for d in lags:
        need = max(need, d + 1)
    for h in returns:
        need = max(need, h + 1)
    if rsi_n > 0:
        need = max(need, SMOOTH_SPAN * rsi_n + 1)
    if atr_n > 0:
        need = max(need, SMOOTH_SPAN * atr_n + 1)
    if volume_n > 0:
        need = max(need, volume_n)
    return need


@jit
def _row(open_time, high, low, close, volume, lags, mean_window, returns, rsi_n, atr_n,
         volume_n, hour, t, out):
    means = ind.sma(close[t - mean_window + 1:t + 1], mean_window)
    mean = means[mean_window - 1]
    j = 0
    for d in lags:
        out[j] = close[t - d] / mean
        j += 1
    for h in returns:
        out[j] = close[t] / close[t - h] - 1.0
        j += 1
    if rsi_n > 0:
        span = SMOOTH_SPAN * rsi_n + 1
        out[j] = ind.rsi(close[t - span + 1:t + 1], rsi_n)[span - 1] / 100.0
        j += 1
    if atr_n > 0:
        span = SMOOTH_SPAN * atr_n + 1
        a = ind.atr(high[t - span + 1:t + 1], low[t - span + 1:t + 1],
                    close[t - span + 1:t + 1], atr_n)[span - 1]
        out[j] = (high[t] - low[t]) / a if a > 0.0 else 0.0
        j += 1
    if volume_n > 0:
        out[j] = ind.zscore(volume[t - volume_n + 1:t + 1], volume_n)[volume_n - 1]
        j += 1
    if hour:
        angle = 2.0 * np.pi * ((open_time[t] % DAY_MS) / HOUR_MS) / 24.0
        out[j] = np.sin(angle)
        out[j + 1] = np.cos(angle)


@jit
def feature_rows(open_time, high, low, close, volume, lags, mean_window, returns, rsi_n,
                 atr_n, volume_n, hour, start, stop):
    """Feature rows of bars start..stop-1 (float64[stop - start, f]); NaN before history - 1.

    stop - start = 1 with stop = len(close) computes the newest bar only.
    """
    size = close.shape[0]
    if start < 0 or stop > size or stop < start:
        raise ValueError("feature_rows: bad row range")
    f = feature_count(lags.shape[0], returns.shape[0], rsi_n, atr_n, volume_n, hour)
    need = history_length(lags, mean_window, returns, rsi_n, atr_n, volume_n)
    out = np.full((stop - start, f), np.nan)
    for t in range(max(start, need - 1), stop):
        _row(open_time, high, low, close, volume, lags, mean_window, returns, rsi_n, atr_n,
             volume_n, hour, t, out[t - start])
    return out
