"""Helpers for the backtest tests: a small store built from the real candles, and job files."""

from __future__ import annotations

from pathlib import Path

from binance_cluster.candles.store import CandleStore
from support.real_data import read_real

SYMBOLS = ("BTCUSDT", "ETHUSDT", "LAYERUSDT", "XRPUSDT")
WEEK_START = 1_746_403_200_000   # 2025-05-05 00:00 UTC (a Monday)
WEEK_MS = 7 * 86_400_000

# Exchange rules for jobs over the real symbols (a job file's [rules] tables)
RULES = """
[rules]
tick_size = 0.0001
step_size = 0.1
min_notional = 5.0
[rules.BTCUSDT]
tick_size = 0.1
step_size = 0.001
[rules.ETHUSDT]
tick_size = 0.01
step_size = 0.001
"""


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
