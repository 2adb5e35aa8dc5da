"""Helpers for the backtest tests: a small store built from the real candles, and job files."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from binance_cluster.candles.store import CandleStore
from binance_cluster.types import Candles

SYMBOLS = ("BTCUSDT", "ETHUSDT", "LAYERUSDT", "XRPUSDT")
WEEK_START = 1_746_403_200_000   # 2025-05-05 00:00 UTC (a Monday)
WEEK_MS = 7 * 86_400_000


def read_real(shared_data: Path, symbol: str, start: int, end: int) -> Candles:
    """Rows of `SYMBOL-1m.csv.gz` (header open_time,open,high,low,close,volume) in [start, end)."""
    with gzip.open(shared_data / f"{symbol}-1m.csv.gz", "rt") as f:
        header = f.readline().strip().split(",")
        assert header == ["open_time", "open", "high", "low", "close", "volume"], header
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    times = table[:, 0].astype(np.int64)
    keep = (times >= start) & (times < end)
    cols = {name: table[keep, k] for k, name in enumerate(header)}
    cols["open_time"] = times[keep]
    return Candles.from_columns(cols)


def build_store(shared_data: Path, root: Path, symbols=SYMBOLS, start: int = WEEK_START,
                end: int = WEEK_START + WEEK_MS) -> CandleStore:
    """A store of a week of real 1m candles of a few symbols."""
    store = CandleStore(root)
    for symbol in symbols:
        result = store.append(symbol, "1m", read_real(shared_data, symbol, start, end),
                              source=f"{symbol}-1m.csv.gz")
        assert result.added > 0
    return store


def write_job(path: Path, text: str) -> Path:
    """Write a job file and return its path."""
    path.write_text(text)
    return path
