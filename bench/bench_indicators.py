"""Indicator kernels against TA-Lib's C implementation: ns per candle, side by side.

    python bench/bench_indicators.py [--symbol BTCUSDT] [--repeat 15]

A year of 1m candles (525,600) is made by tiling one real symbol of ../shared/data.
Every kernel and its TA-Lib peer run on the same float64 arrays, warm (compiled, caches
hot), alternately, and the best of --repeat runs counts. Where TA-Lib has no such
function the peer is the shortest TA-Lib composition that computes it (marked *).

Two tables: as called (default glibc malloc, where a freed 4 MB output may go back to
the OS and the next call pays page faults for it) and compute only (glibc told via
mallopt to keep freed memory, so neither side pays page faults). Goal: ours no slower
than TA-Lib, i.e. ratio <= 1.
"""

from __future__ import annotations

import argparse
import ctypes
import gzip
import os
import platform
import time
from pathlib import Path

import numba
import numpy as np
import talib

from binance_cluster.kernels import indicators as K

YEAR = 525_600
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-usdm-1m"


def load_year(symbol: str) -> dict[str, np.ndarray]:
    """High, low, close, volume of `symbol`, tiled to a year of 1m bars."""
    path = DATA / f"{symbol}-1m.csv.gz"
    with gzip.open(path, "rt") as f:
        header = f.readline().strip().split(",")
        rows = np.loadtxt(f, delimiter=",")
    reps = -(-YEAR // rows.shape[0])
    return {name: np.ascontiguousarray(np.tile(rows[:, header.index(name)], reps)[:YEAR])
            for name in ("high", "low", "close", "volume")}


def talib_vwap(h, lo, c, v, n):
    tp = talib.TYPPRICE(h, lo, c)
    return talib.SMA(tp * v, n) / talib.SMA(v, n)


def talib_zscore(c, n):
    return (c - talib.SMA(c, n)) / talib.STDDEV(c, n, 1.0)


def cases(d: dict[str, np.ndarray]):
    h, lo, c, v = d["high"], d["low"], d["close"], d["volume"]
    return [
        ("sma 20", lambda: K.sma(c, 20), lambda: talib.SMA(c, 20), "SMA"),
        ("ema 20", lambda: K.ema(c, 20), lambda: talib.EMA(c, 20), "EMA"),
        ("wma 20", lambda: K.wma(c, 20), lambda: talib.WMA(c, 20), "WMA"),
        ("rsi 14", lambda: K.rsi(c, 14), lambda: talib.RSI(c, 14), "RSI"),
        ("macd 12/26/9", lambda: K.macd(c, 12, 26, 9), lambda: talib.MACD(c, 12, 26, 9), "MACD"),
        ("bollinger 20/2", lambda: K.bollinger(c, 20, 2.0),
         lambda: talib.BBANDS(c, 20, 2.0, 2.0, 0), "BBANDS"),
        ("atr 14", lambda: K.atr(h, lo, c, 14), lambda: talib.ATR(h, lo, c, 14), "ATR"),
        ("stoch 14/3", lambda: K.stoch(h, lo, c, 14, 3),
         lambda: talib.STOCHF(h, lo, c, 14, 3, 0), "STOCHF"),
        ("vwap 20", lambda: K.vwap(h, lo, c, v, 20), lambda: talib_vwap(h, lo, c, v, 20),
         "TYPPRICE,SMA*"),
        ("rolling_max 20", lambda: K.rolling_max(c, 20), lambda: talib.MAX(c, 20), "MAX"),
        ("rolling_min 20", lambda: K.rolling_min(c, 20), lambda: talib.MIN(c, 20), "MIN"),
        ("rolling_max 3", lambda: K.rolling_max(h, 3), lambda: talib.MAX(h, 3), "MAX"),
        ("rolling_min 200", lambda: K.rolling_min(lo, 200), lambda: talib.MIN(lo, 200), "MIN"),
        ("rolling_std 20", lambda: K.rolling_std(c, 20, 0), lambda: talib.STDDEV(c, 20, 1.0),
         "STDDEV"),
        ("zscore 20", lambda: K.zscore(c, 20), lambda: talib_zscore(c, 20), "SMA,STDDEV*"),
        ("log_returns", lambda: K.log_returns(c), lambda: talib.LN(talib.ROCR(c, 1)),
         "LN,ROCR*"),
    ]


def best_pair(ours, theirs, repeat: int) -> tuple[float, float]:
    """Best seconds of each, the two run alternately so that load hits both alike."""
    ours()
    theirs()
    best_ours = best_theirs = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        ours()
        t1 = time.perf_counter()
        theirs()
        t2 = time.perf_counter()
        best_ours = min(best_ours, t1 - t0)
        best_theirs = min(best_theirs, t2 - t1)
    return best_ours, best_theirs


def table(title: str, rows, repeat: int) -> int:
    print(f"\n{title}")
    print(f"{'indicator':<17}{'ours ns/candle':>15}{'talib ns/candle':>16}{'ratio':>7}"
          f"  {'goal met':<9}talib function")
    missed = 0
    for name, ours, theirs, peer in rows:
        a, b = best_pair(ours, theirs, repeat)
        a, b = a / YEAR * 1e9, b / YEAR * 1e9
        met = a <= b
        missed += not met
        print(f"{name:<17}{a:>15.3f}{b:>16.3f}{a / b:>7.2f}  {'yes' if met else 'NO':<9}{peer}")
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    data = load_year(args.symbol)
    rows = cases(data)
    print(f"{YEAR:,} 1m candles ({args.symbol} tiled); best of {args.repeat}; "
          f"numba {numba.__version__}, TA-Lib C {talib.__ta_version__.decode().split()[0]}, "
          f"python TA-Lib {talib.__version__}")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")
    missed = table("as called (default malloc)", rows, args.repeat)
    libc = ctypes.CDLL("libc.so.6")
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_trim_threshold, 1 << 30)
    libc.mallopt(m_mmap_threshold, 1 << 28)
    missed += table("compute only (freed memory kept by malloc: no page faults)", rows,
                    args.repeat)
    print(f"\n{missed} row(s) slower than TA-Lib" if missed else "\nevery row meets the goal")


if __name__ == "__main__":
    main()
