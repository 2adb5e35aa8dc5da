"""Real candles for the tests, read from ../shared/data (never copied into the repository)."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np

from binance_cluster.types import Candles

# The one definition of where the real candles are: ../shared/data beside the repository.
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "binance-usdm-1m"


@functools.lru_cache(maxsize=None)
def load_real(symbol: str, folder: str | None = None) -> Candles:
    """The 1m candles of `symbol` (e.g. "BTCUSDT") from the shared gzip CSV files."""
    path = Path(folder or SHARED_DATA) / f"{symbol}-1m.csv.gz"
    with gzip.open(path, "rt") as fh:
        header = fh.readline().strip().split(",")
        table = np.loadtxt(fh, delimiter=",", dtype=np.float64, ndmin=2)
    cols = {name: table[:, i] for i, name in enumerate(header)}
    cols["open_time"] = table[:, header.index("open_time")].astype(np.int64)
    return Candles.from_columns(cols)


def real_symbols(folder: str | None = None) -> list[str]:
    """Symbols with a file in the shared data folder."""
    return sorted(p.name.split("-")[0] for p in Path(folder or SHARED_DATA).glob("*-1m.csv.gz"))


def read_real(shared_data: Path, symbol: str, start: int, end: int) -> Candles:
    """The real 1m candles of `symbol` with open times in [start, end)."""
    c = load_real(symbol, str(shared_data))
    i, j = np.searchsorted(c.open_time, [start, end])
    return c.slice(int(i), int(j))


def first_rows(shared_data: Path, symbol: str, rows: int) -> Candles:
    """The first `rows` real 1m candles of `symbol`."""
    return load_real(symbol, str(shared_data)).slice(0, rows)
