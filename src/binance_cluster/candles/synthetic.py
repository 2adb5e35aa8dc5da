"""Small synthetic candles (a seeded random walk) for loading kernels; never used for results.

The backtest's warm-up and the training ranks run their kernels once on these before any real
data, so numba compiles or loads them from the cache up front.
"""

from __future__ import annotations

import numpy as np

from binance_cluster.types import Candles


def synthetic_candles(n: int = 3000, seed: int = 7, start_ms: int = 1_735_689_600_000) -> Candles:
    """Plausible 1m candles (a random walk) to compile kernels with; never used for results."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    wiggle = np.abs(rng.normal(0, 0.001, n))
    high = np.maximum(open_, close) * (1 + wiggle)
    low = np.minimum(open_, close) * (1 - wiggle)
    times = start_ms + 60_000 * np.arange(n, dtype=np.int64)
    return Candles.from_columns(dict(open_time=times, open=np.round(open_, 2), high=np.round(high, 2) + 0.01,
                                     low=np.round(low, 2) - 0.01, close=np.round(close, 2),
                                     volume=rng.uniform(1, 100, n)))
