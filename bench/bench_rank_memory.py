"""What a backtest rank's memory is made of: each import and each kernel loaded from the cache.

    python bench/bench_rank_memory.py [JOB] [--repeat 3]

A fresh child process takes the steps of a backtest rank one by one and prints after each its
resident memory (RSS), the private (anonymous) and file-backed parts, and the seconds the step
took: python, numpy, h5py, LLVM (`llvmlite.binding`), numba, the backtest driver and every
project module it imports (kernels included: `kernels/_jit.py` hands LLVM's code pages back),
MPI (`mpi4py.MPI`), the job's sweep kernels and its replay kernels loaded from the numba
cache, then `release_llvm_code()` as the driver calls it after loading. Side by side, the
same steps as a rank ran them before these cuts: numba's registry importing `scipy.linalg`
(what it does when SciPy is installed and nothing hides its BLAS probe) and no page handed
back before or after loading (those handed back when `kernels/_jit.py` is imported are gone in
both variants). Last, the modules a backtest rank does not import (report, exchange, ML, pandas, ...).
The job defaults to jobs/demo.toml; its kernels are warmed first (`warm-up JOB`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve()
GOAL_MB = 200.0
NOT_IN_A_RANK = ("matplotlib", "binance", "aiohttp", "scipy.linalg", "sklearn", "pandas",
                 "binance_cluster.report", "binance_cluster.exchange", "binance_cluster.live",
                 "binance_cluster.ml")


def memory() -> dict[str, float]:
    """VmRSS, RssAnon, RssFile and VmHWM of this process in MB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(line.split()[1]) * 1024 / 1e6
    return out


def probe(job_path: str, before: bool) -> None:
    """The steps of a rank, one JSON line each (run in a fresh child)."""
    steps = []

    def step(name: str, fn) -> None:
        t0 = time.perf_counter()
        fn()
        steps.append({"step": name, "seconds": time.perf_counter() - t0, **memory()})

    step("python", lambda: None)
    step("import numpy", lambda: __import__("numpy"))
    step("import h5py", lambda: __import__("h5py"))
    step("import llvmlite.binding (LLVM)", lambda: __import__("llvmlite.binding"))
    step("import numba", lambda: __import__("numba"))
    if before:
        step("numba's registry imports scipy.linalg", lambda: __import__("scipy.linalg"))
    step("import backtest.driver (and kernels)",
         lambda: __import__("binance_cluster.backtest.driver"))
    step("import mpi4py.MPI (MPI initialised)", lambda: __import__("mpi4py.MPI"))

    from binance_cluster.backtest.job import load_job
    from binance_cluster.backtest.warmup import warm_up
    from binance_cluster.kernels import _jit

    job = load_job(job_path)
    if not before:
        _jit.release_llvm_code()  # what the driver does before loading
    args = ([job.strategy], (job.mode,), (job.interval,), [job.risk])
    step("load the sweep kernels", lambda: warm_up(*args, replay=False))
    step("load the replay kernels", lambda: warm_up(*args, replay=True))
    if not before:
        step("release_llvm_code()", _jit.release_llvm_code)
    absent = [m for m in NOT_IN_A_RANK if m not in sys.modules]
    print(json.dumps({"steps": steps, "absent": absent}), flush=True)


def run_probe(job: str, before: bool) -> dict:
    cmd = [sys.executable, str(HERE), job, "--probe"] + (["--before"] if before else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    if proc.returncode != 0:
        sys.exit(f"probe failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("job", nargs="?", default=str(ROOT / "jobs" / "demo.toml"))
    ap.add_argument("--repeat", type=int, default=3, help="probes per variant (lowest peak kept)")
    ap.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--before", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        probe(args.job, args.before)
        return
    subprocess.run([sys.executable, "-m", "binance_cluster", "warm-up", args.job], cwd=ROOT,
                   check=True, capture_output=True)
    runs = {}
    for label, before in (("now", False), ("before the cuts", True)):
        probes = [run_probe(args.job, before) for _ in range(args.repeat)]
        runs[label] = min(probes, key=lambda p: p["steps"][-1]["VmHWM"])
    print(f"a backtest rank of {args.job}, step by step (one child process per variant, "
          f"lowest peak of {args.repeat}); MB after each step")
    for label, run in runs.items():
        print(f"\n{label}:")
        print(f"{'step':<42}{'RSS':>7}{'+/-':>8}{'private':>9}{'file':>7}{'seconds':>9}")
        last = 0.0
        for s in run["steps"]:
            print(f"{s['step']:<42}{s['VmRSS']:7.1f}{s['VmRSS'] - last:+8.1f}{s['RssAnon']:9.1f}"
                  f"{s['RssFile']:7.1f}{s['seconds']:9.3f}")
            last = s["VmRSS"]
        end = run["steps"][-1]
        load = sum(s["seconds"] for s in run["steps"] if s["step"].startswith("load"))
        print(f"peak RSS (VmHWM) {end['VmHWM']:.1f} MB ({end['VmHWM'] / GOAL_MB:.0%} of "
              f"{GOAL_MB:.0f} MB), resident after the last step {end['VmRSS']:.1f} MB, "
              f"kernels loaded in {load:.2f} s")
    now, old = runs["now"]["steps"][-1], runs["before the cuts"]["steps"][-1]
    print(f"\nnow vs before the cuts: resident when the kernels are loaded {now['VmRSS']:.1f} vs "
          f"{old['VmRSS']:.1f} MB ({now['VmRSS'] - old['VmRSS']:+.1f}), peak "
          f"{now['VmHWM']:.1f} vs {old['VmHWM']:.1f} MB")
    print("not imported by a backtest rank: " + ", ".join(runs["now"]["absent"]))


if __name__ == "__main__":
    main()
