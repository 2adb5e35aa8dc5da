"""Portfolio inputs: each symbol's part (prices, signals, score) and their alignment on one time grid.

Worker ranks compute a part per symbol; rank 0 aligns the parts on the union of their candle
times and hands the grid to `simulate.run_portfolio` (backtest) or the per-bar step (live).
"""

from __future__ import annotations

import numpy as np

from binance_cluster.engine.metrics import compute_metrics
from binance_cluster.engine.simulate import run_symbol
from binance_cluster.strategies.registry import compute_signals
from binance_cluster.types import Candles, interval_ms


def plain_metrics(m: dict) -> dict:
    """Metrics with numpy scalars turned into Python numbers."""
    return {str(k): (float(v) if isinstance(v, (float, np.floating)) else
                     int(v) if isinstance(v, (int, np.integer)) else v) for k, v in m.items()}


def portfolio_part(strategy, candles: Candles, params: dict, interval: str, risk, rules,
                   model=None, first: int = 0) -> dict:
    """One symbol's share of a portfolio run: prices, signals, score and its standalone metrics.

    Candles before `first` are warm-up history: they feed the signals, the part starts after.
    """
    signals = compute_signals(strategy, candles, params, interval, model=model)
    alone = run_symbol(candles, signals, risk, rules, bar_ms=interval_ms(interval), first=first)
    c = candles.slice(first, len(candles))
    return dict(times=np.asarray(c.open_time, np.int64), open=c.open, high=c.high, low=c.low,
                close=c.close, entry=np.asarray(signals.entry[first:], bool),
                exit=np.asarray(signals.exit[first:], bool),
                score=np.asarray(signals.score[first:], np.float64), candles=len(c),
                metrics=plain_metrics(compute_metrics(alone, interval_ms(interval), risk.initial_cash)))


def align(parts: list[dict]) -> dict[str, np.ndarray]:
    """Symbols' columns on the union of their times: 2-D [bar, symbol], NaN / False where absent."""
    times = np.unique(np.concatenate([p["times"] for p in parts])) if parts else np.zeros(0, np.int64)
    n, m = times.size, len(parts)
    out: dict[str, np.ndarray] = {"times": times}
    for name in ("open", "high", "low", "close", "score"):
        out[name] = np.full((n, m), np.nan)
    for name in ("entry", "exit"):
        out[name] = np.zeros((n, m), dtype=bool)
    for j, p in enumerate(parts):
        rows = np.searchsorted(times, p["times"])
        for name in ("open", "high", "low", "close", "score", "entry", "exit"):
            out[name][rows, j] = p[name]
    return out
