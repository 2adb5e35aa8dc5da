"""Real candles for the engine tests (read from ../shared/data, never copied)."""

from __future__ import annotations

import functools
import gzip
from pathlib import Path

import numpy as np

from binance_cluster.types import Candles

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance-usdm-1m"


@functools.lru_cache(maxsize=None)
def load_real(symbol: str, folder: str | None = None) -> Candles:
    """The 1m candles of `symbol` (e.g. "BTCUSDT") from the shared gzip CSV files."""
    path = Path(folder or DATA) / f"{symbol}-1m.csv.gz"
    with gzip.open(path, "rt") as fh:
        header = fh.readline().strip().split(",")
        table = np.loadtxt(fh, delimiter=",", dtype=np.float64, ndmin=2)
    cols = {name: table[:, i] for i, name in enumerate(header)}
    cols["open_time"] = table[:, header.index("open_time")].astype(np.int64)
    return Candles.from_columns(cols)


def real_symbols(folder: str | None = None) -> list[str]:
    """Symbols with a file in the shared data folder."""
    return sorted(p.name.split("-")[0] for p in Path(folder or DATA).glob("*-1m.csv.gz"))
