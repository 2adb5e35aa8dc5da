"""Made-up one-minute candles for store and import tests (valid, deterministic per seed)."""

from __future__ import annotations

import numpy as np

from binance_cluster.types import MINUTE_MS as M, Candles


def make_candles(n: int, start: int = 0, seed: int = 1, extras: bool = False) -> Candles:
    """n valid one-minute candles starting at minute `start`."""
    rng = np.random.default_rng(seed)
    t = (np.arange(n, dtype=np.int64) + start) * M
    close = np.round(100 + np.cumsum(rng.normal(0, 0.1, n)), 2)
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) + np.round(rng.uniform(0, 0.05, n), 2)
    low = np.minimum(open_, close) - np.round(rng.uniform(0, 0.05, n), 2)
    vol = np.round(rng.uniform(0, 10, n), 3)
    ex = {}
    if extras:
        ex = {"quote_volume": vol * close, "trades": rng.integers(0, 100, n),
              "taker_buy_base": vol / 2, "taker_buy_quote": vol * close / 2}
    return Candles.from_columns(dict(open_time=t, open=open_, high=high, low=low, close=close,
                                     volume=vol, **ex))
