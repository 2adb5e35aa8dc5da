"""Technical indicators for Python callers: validate the inputs, then run the numba kernel.

The one indicator family's public face: the strategies (`registry.SignalContext`) and the
model features compute their indicators through these functions.

Each function checks its arrays (1-D, numbers, equal lengths; where it matters low <= high,
volume >= 0, prices > 0) and its parameters (integer windows within range), raising
DataError for bad arrays and ConfigError for bad parameters, each naming the argument.
It then calls the kernel of the same name in `binance_cluster.kernels.indicators` on
contiguous float64 copies (no copy when the input already is one). The kernels define
the numbers, the NaN warm-up and the rule for NaN or infinite inputs (a bad bar is NaN
and restarts every indicator after it); numba code should call them directly.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from binance_cluster.errors import ConfigError, DataError
from binance_cluster.kernels.indicators import atr as _atr
from binance_cluster.kernels.indicators import bollinger as _bollinger
from binance_cluster.kernels.indicators import ema as _ema
from binance_cluster.kernels.indicators import log_returns as _log_returns
from binance_cluster.kernels.indicators import macd as _macd
from binance_cluster.kernels.indicators import rolling_max as _rolling_max
from binance_cluster.kernels.indicators import rolling_min as _rolling_min
from binance_cluster.kernels.indicators import rolling_std as _rolling_std
from binance_cluster.kernels.indicators import rsi as _rsi
from binance_cluster.kernels.indicators import sma as _sma
from binance_cluster.kernels.indicators import stoch as _stoch
from binance_cluster.kernels.indicators import vwap as _vwap
from binance_cluster.kernels.indicators import wma as _wma
from binance_cluster.kernels.indicators import zscore as _zscore

__all__ = ["sma", "ema", "wma", "rsi", "macd", "bollinger", "atr", "stoch", "vwap",
           "rolling_max", "rolling_min", "rolling_std", "zscore", "log_returns"]

# Windows beyond this are refused: they cannot fit in memory and would overflow the
# kernels' int64 index arithmetic long before.
MAX_WINDOW = 2**40


def _series(name: str, values) -> np.ndarray:
    """`values` as a contiguous float64 1-D array; DataError naming `name` otherwise."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    kind = arr.dtype.kind
    if kind not in "iuf":
        raise DataError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.float64)


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: arr.shape[0] for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={length}" for name, length in lengths.items())
        raise DataError(f"input lengths differ: {listed}")


def _window(name: str, value, minimum: int = 1) -> int:
    """An integer parameter >= minimum; ConfigError naming `name` otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    value = int(value)
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if value > MAX_WINDOW:
        raise ConfigError(f"{name} must be <= {MAX_WINDOW}, got {value}")
    return value


def _low_not_above_high(low: np.ndarray, high: np.ndarray) -> None:
    bad = np.flatnonzero(low > high)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"low > high at index {i} ({low[i]!r} > {high[i]!r}); "
                        f"{bad.size} such bar(s)")


def sma(x, n: int) -> np.ndarray:
    """Simple moving average of the last n values (NaN for the first n-1)."""
    return _sma(_series("x", x), _window("n", n))


def ema(x, n: int) -> np.ndarray:
    """Exponential moving average, alpha 2/(n+1), seeded by the SMA of the first n values."""
    return _ema(_series("x", x), _window("n", n))


def wma(x, n: int) -> np.ndarray:
    """Linearly weighted moving average (weights 1..n, newest heaviest)."""
    return _wma(_series("x", x), _window("n", n))


def rsi(close, n: int = 14) -> np.ndarray:
    """Wilder's relative strength index (TA-Lib RSI); 0.0 over flat stretches."""
    return _rsi(_series("close", close), _window("n", n))


def macd(close, fast: int = 12, slow: int = 26,
         signal: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(line, signal, histogram) of MACD with TA-Lib's seeding and alignment."""
    fast = _window("fast", fast)
    slow = _window("slow", slow, 2)
    if fast >= slow:
        raise ConfigError(f"fast ({fast}) must be below slow ({slow})")
    return _macd(_series("close", close), fast, slow, _window("signal", signal))


def bollinger(close, n: int = 20,
              k: float = 2.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mid, upper, lower) Bollinger bands: SMA(n) -/+ k population standard deviations."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Real) \
            or not math.isfinite(k) or k < 0:
        raise ConfigError(f"k must be a finite number >= 0, got {k!r}")
    return _bollinger(_series("close", close), _window("n", n), float(k))


def atr(high, low, close, n: int = 14) -> np.ndarray:
    """Average true range with Wilder smoothing (TA-Lib ATR)."""
    h, lo, c = _series("high", high), _series("low", low), _series("close", close)
    _same_length(high=h, low=lo, close=c)
    _low_not_above_high(lo, h)
    return _atr(h, lo, c, _window("n", n))


def stoch(high, low, close, k: int = 14, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(%K, %D) fast stochastic: %K over k bars and its d-bar SMA (TA-Lib STOCHF)."""
    h, lo, c = _series("high", high), _series("low", low), _series("close", close)
    _same_length(high=h, low=lo, close=c)
    _low_not_above_high(lo, h)
    return _stoch(h, lo, c, _window("k", k), _window("d", d))


def vwap(high, low, close, volume, n: int) -> np.ndarray:
    """Rolling n-bar VWAP of the typical price (h+l+c)/3; NaN where the window has no volume."""
    h, lo, c = _series("high", high), _series("low", low), _series("close", close)
    v = _series("volume", volume)
    _same_length(high=h, low=lo, close=c, volume=v)
    negative = np.flatnonzero(v < 0)
    if negative.size:
        i = int(negative[0])
        raise DataError(f"volume: negative value {v[i]!r} at index {i}")
    return _vwap(h, lo, c, v, _window("n", n))


def rolling_max(x, n: int) -> np.ndarray:
    """Maximum of the last n values."""
    return _rolling_max(_series("x", x), _window("n", n))


def rolling_min(x, n: int) -> np.ndarray:
    """Minimum of the last n values."""
    return _rolling_min(_series("x", x), _window("n", n))


def rolling_std(x, n: int, ddof: int = 0) -> np.ndarray:
    """Standard deviation of the last n values with divisor n - ddof (0: population)."""
    n = _window("n", n)
    ddof = _window("ddof", ddof, 0)
    if ddof >= n:
        raise ConfigError(f"ddof ({ddof}) must be below n ({n})")
    return _rolling_std(_series("x", x), n, ddof)


def zscore(x, n: int) -> np.ndarray:
    """(x - SMA(n)) / population std of the last n values; 0.0 where that std is 0."""
    return _zscore(_series("x", x), _window("n", n, 2))


def log_returns(x) -> np.ndarray:
    """log(x[t] / x[t-1]); NaN at bar 0. Values must be positive (NaN allowed)."""
    arr = _series("x", x)
    bad = np.flatnonzero(arr <= 0)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"x: log returns need positive values, got {arr[i]!r} at index {i}")
    return _log_returns(arr)
