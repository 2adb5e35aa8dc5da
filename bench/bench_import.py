"""Benchmark `binance-cluster import` on the real data against the 1 M rows/s goal, and its
CSV parser against numpy.loadtxt and pandas.read_csv on the same text.

    /tmp/venv/bin/python bench/bench_import.py [DATA_DIR] [--repeat N]

Figures:
- the whole import (read, decompress, parse, validate, check, write HDF5) of every file into
  a new temporary store, in this process after a warm-up (numba cache loaded), best of N;
- the same as a fresh `binance-cluster import` process (numba cache load included);
- parse only, on the already decompressed text: ours, numpy.loadtxt, pandas.read_csv (default
  and float_precision="round_trip"), with each peer's time ratio to ours and the number of
  values that differ from Python's float() of the text (ours is exact by construction).
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from binance_cluster.candles.importer import import_files, parse_csv, read_bytes
from binance_cluster.candles.store import CandleStore

GOAL = 1_000_000
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-usdm-1m"
NAMES = ("open_time", "open", "high", "low", "close", "volume")


def best_of(repeat: int, fn) -> tuple[float, object]:
    """Best wall time of `repeat` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def whole_import(files: list[Path], threads: int | None, repeat: int) -> tuple[float, int]:
    """Best time of importing every file into a new store."""
    times = []
    rows = 0
    for _ in range(repeat):
        root = Path(tempfile.mkdtemp(prefix="bench-import-"))
        try:
            started = time.perf_counter()
            summary = import_files(CandleStore(root), files, threads=threads)
            times.append(time.perf_counter() - started)
            rows = summary.added
        finally:
            shutil.rmtree(root)
    return min(times), rows


def cli_import(data: Path) -> tuple[float, float, str]:
    """A fresh process importing the folder: (process wall seconds, reported rows/s, line)."""
    root = Path(tempfile.mkdtemp(prefix="bench-import-cli-"))
    try:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-W", "ignore", "-m", "binance_cluster", "import",
                               "--store", str(root / "store"), str(data)],
                              capture_output=True, text=True, check=True)
        wall = time.perf_counter() - started
    finally:
        shutil.rmtree(root)
    last = proc.stdout.strip().splitlines()[-1]
    rate = float(re.search(r"\(([\d,]+) rows/s\)", last)[1].replace(",", ""))
    return wall, rate, last


def stack(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts, axis=0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", default=str(DEFAULT_DATA))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data = Path(args.data)
    files = sorted(p for p in data.iterdir() if p.name.endswith((".csv", ".csv.gz", ".zip")))
    if not files:
        print(f"{data}: no candle files", file=sys.stderr)
        return 2

    started = time.perf_counter()
    warm_root = Path(tempfile.mkdtemp(prefix="bench-import-warm-"))
    import_files(CandleStore(warm_root), files[:1])
    shutil.rmtree(warm_root)
    warm = time.perf_counter() - started

    t_threads, rows = whole_import(files, None, args.repeat)
    t_serial, _ = whole_import(files, 1, args.repeat)
    cli_wall, cli_rate, cli_line = cli_import(data)

    texts = [read_bytes(str(f)) for f in files]
    t_decompress, _ = best_of(args.repeat, lambda: [read_bytes(str(f)) for f in files])

    # each parser is timed to its own natural output; the matrices compared are built after
    t_ours, parsed = best_of(args.repeat, lambda: [parse_csv(str(f), t)[0]
                                                   for f, t in zip(files, texts)])
    ref = stack([np.column_stack([p[n].astype(np.float64) for n in NAMES]) for p in parsed])
    n = ref.shape[0]
    peers: list[tuple[str, float, np.ndarray]] = []
    t, got = best_of(1, lambda: [np.loadtxt(io.BytesIO(t), delimiter=",", skiprows=1,
                                            dtype=np.float64) for t in texts])
    peers.append(("numpy.loadtxt", t, stack(got)))
    try:
        import pandas as pd
    except ImportError:
        pd = None
    if pd is not None:
        for label, precision in (("pandas.read_csv", None), ("pandas.read_csv round_trip", "round_trip")):
            t, got = best_of(args.repeat, lambda: [pd.read_csv(io.BytesIO(t), float_precision=precision)
                                                   for t in texts])
            peers.append((label, t, stack([frame.to_numpy(np.float64) for frame in got])))

    print(f"data: {data} ({len(files)} files, {rows:,} rows)")
    print(f"numba warm-up (cache load or compile, one file): {warm:.2f} s")
    print()
    print("whole import (read + decompress + parse + validate + write HDF5), best of "
          f"{args.repeat}:")
    for label, t in (("threads (default)", t_threads), ("one thread", t_serial)):
        rate = rows / t
        verdict = "meets" if rate >= GOAL else "MISSES"
        print(f"  {label:<28} {t:6.3f} s  {rate / 1e6:5.2f} M rows/s  "
              f"{rate / GOAL:4.2f}x the 1 M rows/s goal ({verdict})")
    print(f"  {'fresh CLI process':<28} {cli_wall:6.3f} s wall (interpreter, imports, numba cache "
          f"load); it reports {cli_rate / 1e6:.2f} M rows/s "
          f"({cli_rate / GOAL:4.2f}x goal)")
    print(f"    {cli_line}")
    print()
    print(f"parse only, decompressed text in memory ({n:,} rows x 6 columns; decompression "
          f"alone {t_decompress:.3f} s):")
    print(f"  {'ours (numba, exact)':<28} {t_ours:6.3f} s  {n / t_ours / 1e6:6.2f} M rows/s  "
          f"{'1.00x':>7}")
    for label, t, got in peers:
        if got.shape != ref.shape:
            wrong = f"shape {got.shape} != {ref.shape}"
        else:
            differ = int(np.count_nonzero(got.view(np.int64) != ref.view(np.int64)))
            wrong = f"{differ:,} values differ from float()"
        print(f"  {label:<28} {t:6.3f} s  {n / t / 1e6:6.2f} M rows/s  {t / t_ours:6.1f}x slower  "
              f"{wrong}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
