"""Model training data from real candles, in plain numpy: causal features, barrier labels.

Independent of the project's own feature and label code, so model tests and the model
benchmark train on real market data without depending on what they might check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from binance_cluster.types import Candles
from support.real_data import load_real

RETURN_HORIZONS = (1, 5, 15, 60, 240)
RANGE_WINDOW = 60
WARMUP = 240


def _trailing_mean(x: np.ndarray, window: int) -> np.ndarray:
    """Mean of x over the `window` values ending at each index (NaN before that)."""
    c = np.concatenate([[0.0], np.cumsum(x)])
    out = np.full(x.shape[0], np.nan)
    out[window - 1:] = (c[window:] - c[:-window]) / window
    return out


def simple_features(c: Candles) -> np.ndarray:
    """[n, 8] causal features: log returns over RETURN_HORIZONS, normalised range, volume ratio,
    close over its trailing mean; NaN during the warm-up."""
    close = c.close
    logc = np.log(close)
    cols = []
    for h in RETURN_HORIZONS:
        r = np.full(close.shape[0], np.nan)
        r[h:] = logc[h:] - logc[:-h]
        cols.append(r)
    rng = (c.high - c.low) / close
    cols.append(rng / _trailing_mean(rng, RANGE_WINDOW))
    cols.append(c.volume / _trailing_mean(c.volume, RANGE_WINDOW))
    cols.append(close / _trailing_mean(close, WARMUP))
    return np.column_stack(cols)


def barrier_labels(c: Candles, take_profit: float = 0.01, stop_loss: float = 0.02,
                   horizon: int = 60) -> np.ndarray:
    """1 when +take_profit is reached (on highs) before -stop_loss (on lows) within the next
    `horizon` bars after each close, stop first when both fall in one bar; -1 where the
    window runs past the data."""
    n = c.close.shape[0]
    up = c.close * (1.0 + take_profit)
    down = c.close * (1.0 - stop_loss)
    first_up = np.full(n, horizon + 1)
    first_down = np.full(n, horizon + 1)
    for k in range(horizon, 0, -1):
        hi = np.full(n, -np.inf)
        lo = np.full(n, np.inf)
        hi[:-k] = c.high[k:]
        lo[:-k] = c.low[k:]
        first_up[hi >= up] = k
        first_down[lo <= down] = k
    y = (first_up < first_down).astype(np.int8)
    y[n - horizon:] = -1
    return y


def time_split(shared_data: Path, symbols: tuple[str, ...], train_fraction: float = 0.7,
               horizon: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test) pooled over symbols: per symbol the first
    train_fraction of the usable bars train, the rest test; the last `horizon` training rows
    are purged (their labels look into the test bars)."""
    parts: list[list[np.ndarray]] = [[], [], [], []]
    for symbol in symbols:
        c = load_real(symbol, str(shared_data))
        X = simple_features(c)
        y = barrier_labels(c, horizon=horizon)
        keep = np.isfinite(X).all(axis=1) & (y >= 0)
        X, y = X[keep], y[keep]
        cut = int(train_fraction * X.shape[0])
        parts[0].append(X[:cut - horizon])
        parts[1].append(y[:cut - horizon])
        parts[2].append(X[cut:])
        parts[3].append(y[cut:])
    X_train, y_train, X_test, y_test = (np.concatenate(p) for p in parts)
    return X_train, y_train, X_test, y_test
