"""Store benchmarks: read one symbol-year, append latency, and the compression choice.

    python bench/bench_store.py

Prints, side by side in one run:
- the time to read 525,600 one-minute candles (a symbol-year) and its GB/s, against this
  machine's memory bandwidth (a large numpy copy) measured in the same run;
- the same read from files with other layouts (gzip, lzf, Blosc-lz4 when hdf5plugin is
  installed), the reason the store is uncompressed;
- the latency of appending one closed candle to a store of a year (goal: median under 2 ms),
  with a writer kept open (the live loop) and with open-append-close per candle.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.synthetic import make_candles  # noqa: E402

from binance_cluster.candles.store import CHUNK_ROWS, CandleStore  # noqa: E402
from binance_cluster.types import Candles  # noqa: E402

YEAR = 525_600


def best_of(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def memory_bandwidth() -> float:
    """GB/s of a 256 MB numpy copy (read + write counted once, as a read benchmark would)."""
    src = np.ones(32 * 1024 * 1024)
    dst = np.empty_like(src)
    seconds = best_of(lambda: np.copyto(dst, src), 5)
    return src.nbytes / seconds / 1e9


def other_layout(path: Path, candles: Candles, **filters) -> None:
    with h5py.File(path, "w") as f:
        g = f.create_group("1m")
        for name, col in candles.columns().items():
            g.create_dataset(name, data=col, chunks=(CHUNK_ROWS,), **filters)


def read_other(path: Path) -> int:
    total = 0
    with h5py.File(path, "r", locking=False) as f:
        for ds in f["1m"].values():
            total += ds[:].nbytes
    return total


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    candles = make_candles(YEAR, seed=3)
    store = CandleStore(tmp / "store")
    store.append("BTCUSDT", "1m", candles)
    nbytes = sum(col.nbytes for col in candles.columns().values())
    bandwidth = memory_bandwidth()
    print(f"memory bandwidth (numpy copy of 256 MB): {bandwidth:.2f} GB/s")
    print(f"one symbol-year: {YEAR:,} rows x 6 columns = {nbytes / 1e6:.1f} MB\n")

    seconds = best_of(lambda: store.read("BTCUSDT", "1m"))
    rate = nbytes / seconds / 1e9
    print(f"{'layout':<28}{'read ms':>9}{'GB/s':>8}{'vs memory':>11}{'file MB':>9}")
    size = store.path("BTCUSDT").stat().st_size / 1e6
    print(f"{'store (uncompressed chunks)':<28}{seconds * 1e3:9.2f}{rate:8.2f}"
          f"{rate / bandwidth:10.0%}{size:9.1f}")
    layouts = {"gzip level 4": dict(compression="gzip", compression_opts=4),
               "lzf": dict(compression="lzf")}
    try:
        import hdf5plugin

        layouts["blosc lz4 + shuffle"] = dict(**hdf5plugin.Blosc(cname="lz4",
                                                                  shuffle=hdf5plugin.Blosc.SHUFFLE))
    except ImportError:
        print("  (hdf5plugin not installed: Blosc-lz4 not measured)")
    for name, filters in layouts.items():
        path = tmp / f"{name.split()[0]}.h5"
        other_layout(path, candles, **filters)
        s = best_of(lambda: read_other(path))
        r = nbytes / s / 1e9
        print(f"{name:<28}{s * 1e3:9.2f}{r:8.2f}{r / bandwidth:10.0%}{path.stat().st_size / 1e6:9.1f}"
              f"   store is {s / seconds:.1f}x faster")

    print("\nappend one closed candle to a store of a year")
    last = int(candles.open_time[-1])
    price = float(candles.close[-1])

    def one(i: int) -> Candles:
        t = np.array([last + (i + 1) * 60_000], dtype=np.int64)
        x = np.array([price])
        return Candles(t, x, x + 0.5, x - 0.5, x, np.array([1.0]))

    kept = []
    with store.writer("BTCUSDT") as w:
        for i in range(2000):
            c = one(i)
            t0 = time.perf_counter()
            w.append("1m", c)
            kept.append(time.perf_counter() - t0)
    reopened = []
    for i in range(2000, 2300):
        c = one(i)
        t0 = time.perf_counter()
        store.append("BTCUSDT", "1m", c)
        reopened.append(time.perf_counter() - t0)
    for label, lat in (("writer kept open (live loop)", kept), ("open, append, close", reopened)):
        med = statistics.median(lat) * 1e3
        p99 = float(np.percentile(lat, 99)) * 1e3
        print(f"  {label:<30} median {med:6.3f} ms  p99 {p99:7.3f} ms  max {max(lat) * 1e3:7.2f} ms"
              f"  goal < 2 ms: {'met' if med < 2 else 'NOT met'}")
    assert store.count("BTCUSDT", "1m") == YEAR + 2300


if __name__ == "__main__":
    main()
