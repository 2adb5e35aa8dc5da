"""Peak memory of a worker rank that reads one symbol-year of 1m candles and resamples it.

    python bench/bench_worker_memory.py [--ranks 2] [--days 365]

Writes one synthetic symbol-year (525,600 one-minute candles with the Binance extras, made
by the demo generator, no outages) into a temporary store, then measures the RSS high-water
mark (VmHWM, see `peak_mb`) of fresh child processes, each doing one thing:

- bare imports: `numpy` (the baseline), `numpy + h5py`, `numpy + numba`, the worker's own
  modules (store + resample kernels), and those plus mpi4py;
- the worker: read the year from the store, resample it to 5m, 1h and 1d; serially, with a
  cold numba cache (compiling), reading the core columns only, and under real
  `mpirun -n RANKS` where every rank reports its own peak;
- a named peer: the same read followed by pandas' `DataFrame.resample(...).agg(...)`
  (pandas comes with the bench extra, `pip install -e '.[bench]'`; without it the peer's
  lines say so and every other figure is printed).

Goal: a worker rank under 200 MB (a Raspberry Pi Zero 2 W has 512 MB for 4 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_MB = 200.0
SYMBOL = "BTCUSDT"
INTERVALS = ("5m", "1h", "1d")
HERE = Path(__file__).resolve()


def peak_mb() -> float:
    """This process image's RSS high-water mark in MB.

    Linux: VmHWM from /proc/self/status, the same counter getrusage reads but reset by exec;
    `ru_maxrss` itself carries over the high-water mark of the parent that forked the child
    (a 300 MB benchmark driver would make every child look 300 MB).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def resident_mb() -> dict:
    """Resident memory now, split into private anonymous pages and file-backed pages (shared
    libraries, shareable between ranks on one board), plus the proportional set size."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key = line.split(":")[0]
                if key in ("RssAnon", "RssFile"):
                    out[key] = int(line.split()[1]) * 1024 / 1e6
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["Pss"] = int(line.split()[1]) * 1024 / 1e6
    except OSError:
        pass
    return out


# -- probes: run in a child process, print one JSON line --------------------------------------

def probe(kind: str, store: str | None) -> None:
    out: dict = {"kind": kind}
    if kind == "python":
        pass
    elif kind == "numpy":
        import numpy  # noqa: F401
    elif kind == "numpy+h5py":
        import h5py  # noqa: F401
        import numpy  # noqa: F401
    elif kind == "numpy+numba":
        import numba  # noqa: F401
        import numpy  # noqa: F401
    elif kind == "worker-imports":
        import binance_cluster.parallel  # noqa: F401
        import binance_cluster.candles.resample  # noqa: F401
        import binance_cluster.candles.store  # noqa: F401
    elif kind == "worker-imports+mpi4py":
        import binance_cluster.parallel  # noqa: F401
        import binance_cluster.candles.resample  # noqa: F401
        import binance_cluster.candles.store  # noqa: F401
        from mpi4py import MPI  # noqa: F401
    elif kind == "worker-imports+kernels":
        import numpy as np

        from binance_cluster.candles.resample import resample
        from binance_cluster.types import Candles

        t = np.arange(60, dtype=np.int64) * 60_000
        ones = np.ones(60)
        tiny = Candles(t, ones, ones, ones, ones, ones, {"trades": np.ones(60, np.int64)})
        for interval in INTERVALS:
            resample(tiny, interval)
    elif kind in ("worker", "worker-core"):
        out.update(worker(store, core_only=kind == "worker-core"))
    elif kind == "worker-stream":
        out.update(stream_worker(store))
    elif kind == "pandas":
        out.update(pandas_worker(store))
    else:
        raise SystemExit(f"unknown probe {kind}")
    if "rank" not in out:
        out["peak_mb"] = peak_mb()
        print(json.dumps(out), flush=True)


def worker(store_root: str, core_only: bool = False) -> dict:
    """Read the symbol-year, resample it; under mpirun rank 0 prints every rank's peak."""
    from binance_cluster.parallel import get_comm
    from binance_cluster.candles.resample import resample
    from binance_cluster.candles.store import CandleStore

    comm = get_comm()
    store = CandleStore(store_root)
    t0 = time.perf_counter()
    candles = store.read(SYMBOL, "1m", columns=() if core_only else None)
    t1 = time.perf_counter()
    rows = {}
    for interval in INTERVALS:
        rows[interval] = len(resample(candles, interval))
    t2 = time.perf_counter()  # the first calls load the cached machine code of the kernels
    for interval in INTERVALS:
        resample(candles, interval)
    t3 = time.perf_counter()
    comm.barrier()  # every rank alive and done: shared pages are split between them in Pss
    mine = {"resident": resident_mb(), "rank": comm.rank, "size": comm.size,
            "peak_mb": peak_mb(), "rows": len(candles),
            "columns": len(candles.columns()), "read_s": t1 - t0, "first_resample_s": t2 - t1,
            "resample_s": t3 - t2, "out_rows": rows}
    everyone = comm.gather(mine, root=0)
    if comm.rank == 0:
        print(json.dumps({"kind": "worker", "ranks": everyone}), flush=True)
    return {"rank": comm.rank}


def stream_worker(store_root: str) -> dict:
    """The worker as the resample command runs it: the year streamed in 28-day blocks."""
    from binance_cluster.parallel import get_comm
    from binance_cluster.candles.resample import resample_blocks
    from binance_cluster.candles.store import CandleStore

    comm = get_comm()
    store = CandleStore(store_root)
    t0 = time.perf_counter()
    rows = {}
    read = 0
    for interval in INTERVALS:
        rows[interval] = 0
        for n, block in resample_blocks(store, SYMBOL, interval):
            rows[interval] += len(block)
            read += n if interval == INTERVALS[0] else 0
    seconds = time.perf_counter() - t0
    comm.barrier()
    mine = {"resident": resident_mb(), "rank": comm.rank, "size": comm.size,
            "peak_mb": peak_mb(), "rows": read, "seconds": seconds, "out_rows": rows}
    everyone = comm.gather(mine, root=0)
    if comm.rank == 0:
        print(json.dumps({"kind": "worker", "ranks": everyone}), flush=True)
    return {"rank": comm.rank}


def pandas_worker(store_root: str) -> dict:
    """The peer: the same read, then pandas resampling to the same intervals."""
    import pandas as pd

    from binance_cluster.candles.store import CandleStore

    candles = CandleStore(store_root).read(SYMBOL, "1m")
    frame = pd.DataFrame(candles.columns())
    frame.index = pd.to_datetime(frame.pop("open_time"), unit="ms", utc=True)
    how = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum",
           "quote_volume": "sum", "trades": "sum", "taker_buy_base": "sum",
           "taker_buy_quote": "sum"}
    rule = {"5m": "5min", "1h": "1h", "1d": "1D"}
    t0 = time.perf_counter()
    rows = {iv: len(frame.resample(rule[iv]).agg(how).dropna()) for iv in INTERVALS}
    t1 = time.perf_counter()
    for iv in INTERVALS:
        frame.resample(rule[iv]).agg(how)
    return {"first_resample_s": t1 - t0, "resample_s": time.perf_counter() - t1,
            "out_rows": rows}


# -- the driver ------------------------------------------------------------------------------

def run_child(kind: str, store: Path, env: dict | None = None,
              mpirun: int = 0) -> dict:
    cmd = [sys.executable, str(HERE), "--probe", kind, "--store", str(store)]
    if mpirun:
        cmd = [str(Path(sys.executable).parent / "mpirun"), "-n", str(mpirun)] + cmd
    full_env = dict(os.environ, PYTHONWARNINGS="ignore")
    full_env.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"probe {kind} failed ({proc.returncode}):\n{proc.stderr}")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


def best(kind: str, store: Path, repeat: int, **kw) -> dict:
    """The run with the lowest peak of `repeat` runs (page-cache and allocator noise aside)."""
    runs = [run_child(kind, store, **kw) for _ in range(repeat)]
    return min(runs, key=lambda r: r["peak_mb"] if "peak_mb" in r
               else max(x["peak_mb"] for x in r["ranks"]))


def make_store(root: Path, days: int) -> int:
    from binance_cluster.candles import demo_data as demo
    from binance_cluster.candles.store import CandleStore

    spec = demo.make_spec(symbols=1, days=days, seed=1, end="2025-06-01", outages=False)
    candles = demo.generate_symbol(spec, 0)
    CandleStore(root).append(SYMBOL, "1m", candles, **demo.file_attrs(spec, 0))
    return len(candles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--ranks", type=int, default=2, help="ranks under mpirun (default 2)")
    parser.add_argument("--days", type=int, default=365, help="days of candles (default 365)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best kept)")
    args = parser.parse_args()
    if args.probe:
        probe(args.probe, args.store)
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench-worker-memory-"))
    store = tmp / "store"
    rows = make_store(store, args.days)
    size = (store / f"{SYMBOL}.h5").stat().st_size / 1e6
    print(f"store: {rows:,} one-minute candles of {SYMBOL} (synthetic, 10 columns), "
          f"file {size:.1f} MB")
    run_child("worker", store)  # warm the numba cache and the page cache
    import importlib.util

    have_pandas = importlib.util.find_spec("pandas") is not None
    r = {k: best(k, store, args.repeat) for k in (
        "python", "numpy", "numpy+h5py", "numpy+numba", "worker-imports",
        "worker-imports+mpi4py", "worker-imports+kernels", "worker", "worker-core")
        + (("pandas",) if have_pandas else ())}
    cold = run_child("worker", store, env={"NUMBA_CACHE_DIR": str(tmp / "numba-cold")})
    under = best("worker", store, args.repeat, mpirun=args.ranks)["ranks"]
    stream = best("worker-stream", store, args.repeat)["ranks"][0]
    stream_under = best("worker-stream", store, args.repeat, mpirun=args.ranks)["ranks"]

    base = r["numpy"]["peak_mb"]
    print(f"\npeak RSS of one child process per line (best of {args.repeat}); "
          f"baseline = python -c 'import numpy' = {base:.1f} MB\n")
    print(f"{'process':<52}{'peak MB':>9}{'vs numpy':>10}{'of goal':>9}")

    def line(label: str, mb: float) -> None:
        print(f"{label:<52}{mb:9.1f}{mb - base:+10.1f}{mb / GOAL_MB:9.0%}")

    line("python (no imports)", r["python"]["peak_mb"])
    line("import numpy", base)
    line("import numpy, h5py", r["numpy+h5py"]["peak_mb"])
    line("import numpy, numba", r["numpy+numba"]["peak_mb"])
    line("import worker modules (store, resample, parallel)", r["worker-imports"]["peak_mb"])
    line("worker modules + mpi4py (MPI initialised)", r["worker-imports+mpi4py"]["peak_mb"])
    line("worker modules + first kernel calls (60 rows)", r["worker-imports+kernels"]["peak_mb"])
    w = r["worker"]["ranks"][0]
    line(f"worker: read {w['rows']:,} rows x {w['columns']} cols, resample", w["peak_mb"])
    wc = r["worker-core"]["ranks"][0]
    line(f"worker, core columns only ({wc['columns']} cols)", wc["peak_mb"])
    line("worker, cold numba cache (compiles the kernels)", cold["ranks"][0]["peak_mb"])
    for rank in under:
        line(f"worker under mpirun -n {len(under)}, rank {rank['rank']}", rank["peak_mb"])
    if have_pandas:
        line("peer: same read + pandas resample", r["pandas"]["peak_mb"])
    line("streaming worker (28-day blocks, as `resample` runs)", stream["peak_mb"])
    for rank in stream_under:
        line(f"streaming worker under mpirun -n {len(stream_under)}, rank {rank['rank']}",
             rank["peak_mb"])

    print(f"\nresident at the end{'':<33}{'anon MB':>9}{'file MB':>9}{'Pss MB':>9}")
    ends = [("worker (serial)", w), ("worker, core columns only", wc)]
    ends += [(f"worker under mpirun -n {len(under)}, rank {x['rank']}", x) for x in under]
    for label, row in ends:
        res = row["resident"]
        print(f"{label:<52}{res.get('RssAnon', 0):9.1f}{res.get('RssFile', 0):9.1f}"
              f"{res.get('Pss', 0):9.1f}")

    numba_mb = r["numpy+numba"]["peak_mb"] - base
    h5py_mb = r["numpy+h5py"]["peak_mb"] - base
    imports = r["worker-imports"]["peak_mb"]
    runtime_mb = r["worker-imports+kernels"]["peak_mb"] - imports
    own_mb = imports - base - numba_mb - h5py_mb
    data_mb = w["peak_mb"] - r["worker-imports+kernels"]["peak_mb"]
    worst = max(rank["peak_mb"] for rank in under)
    worst_stream = max(rank["peak_mb"] for rank in stream_under)
    print(f"\nshare of the worker's peak ({w['peak_mb']:.1f} MB): python+numpy {base:.1f} MB, "
          f"numba import {numba_mb:.1f} MB, h5py import {h5py_mb:.1f} MB, project modules "
          f"{own_mb:.1f} MB, numba runtime at the first kernel call {runtime_mb:.1f} MB, "
          f"candles and work {data_mb:.1f} MB "
          f"(the columns alone: {w['rows'] * w['columns'] * 8 / 1e6:.1f} MB); "
          f"numba in all: {numba_mb + runtime_mb:.1f} MB = "
          f"{(numba_mb + runtime_mb) / w['peak_mb']:.0%}")
    print(f"mpirun rank overhead (mpi4py): "
          f"{r['worker-imports+mpi4py']['peak_mb'] - imports:+.1f} MB; "
          f"worst rank {worst:.1f} MB = {worst / GOAL_MB:.0%} of the {GOAL_MB:.0f} MB goal: "
          f"{'met' if worst < GOAL_MB else 'MISSED'} reading the whole year at once; "
          f"streaming worst rank {worst_stream:.1f} MB = {worst_stream / GOAL_MB:.0%}: "
          f"{'met' if worst_stream < GOAL_MB else 'MISSED'} "
          f"(same candles out: {stream['out_rows'] == w['out_rows']})")
    if not have_pandas:
        print("peer pandas: not installed in this venv (pip install -e '.[bench]'): skipped")
        return
    pd_row = r["pandas"]
    print(f"resample 5m+1h+1d of the year (second pass): numba kernels "
          f"{w['resample_s'] * 1e3:.1f} ms, pandas {pd_row['resample_s'] * 1e3:.1f} ms "
          f"(pandas {pd_row['resample_s'] / w['resample_s']:.1f}x slower); first pass "
          f"{w['first_resample_s'] * 1e3:.0f} ms (loading cached kernels) vs pandas "
          f"{pd_row['first_resample_s'] * 1e3:.0f} ms; store read {w['read_s'] * 1e3:.1f} ms")
    print(f"peak of the pandas peer: {pd_row['peak_mb']:.1f} MB = "
          f"{pd_row['peak_mb'] / w['peak_mb']:.2f}x the worker's")
    same = pd_row["out_rows"] == w["out_rows"]
    verdict = "agrees" if same else f"DIFFERS: {pd_row['out_rows']}"
    print(f"candles out {w['out_rows']} (pandas {verdict})")


if __name__ == "__main__":
    main()
