"""Start-up cost of a backtest: `jobs/demo.toml` with a cold numba cache (NUMBA_CACHE_DIR an
empty temporary directory) and again with the cache warm.

    python bench/bench_startup.py [--ranks 2] [--repeat 3]

Prints, side by side in one run, the wall time from launching the command to its exit (all
results written), for the first run with a cold cache, the cold `warm-up` command, and the
second run with a warm cache (goal: under 3 s), serially and under `mpirun -n N`; and, for
reference, the bare interpreter start-up (`python -c "import binance_cluster.backtest.driver"`)
that every rank pays. Creates the demo store `data/demo` with `binance-cluster demo-data`
when it is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
JOB = ROOT / "jobs" / "demo.toml"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "binance_cluster", *args]


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, default=2, help="mpirun rank count (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="warm runs per configuration (median)")
    args = ap.parse_args()
    if not (ROOT / "data" / "demo").is_dir():
        print("creating the demo store data/demo ...")
        timed(cli("demo-data", "--store", "data/demo"), dict(os.environ))
    mpirun = [str(BIN / "mpirun"), "-n", str(args.ranks)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
        out = str(Path(tmp) / "out")
        backtest = cli("backtest", str(JOB), "--output", out, "--no-progress")
        for label, launcher in (("serial", []), (f"mpirun -n {args.ranks}", mpirun)):
            cache = Path(tmp) / f"numba_{len(launcher)}"
            cache.mkdir()
            env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
            cold = timed(launcher + backtest, env)
            meta = json.loads((Path(out) / "run.json").read_text())
            warm = [timed(launcher + backtest, env) for _ in range(args.repeat)]
            cache2 = Path(tmp) / f"numba_w{len(launcher)}"
            cache2.mkdir()
            env2 = dict(os.environ, NUMBA_CACHE_DIR=str(cache2))
            warm_up = timed(cli("warm-up"), env2)
            after = timed(launcher + backtest, env2)
            rows.append((label, cold, statistics.median(warm), min(warm), warm_up, after,
                         meta["seconds"]))
        bare = statistics.median(timed([sys.executable, "-c", "import binance_cluster.backtest.driver"],
                                       dict(os.environ)) for _ in range(3))
    print(f"jobs/demo.toml (sweep on data/demo); wall time from launch to exit, all results written")
    print(f"{'configuration':<14} {'cold cache':>11} {'warm (median)':>14} {'warm (best)':>12} "
          f"{'warm-up cmd (cold)':>19} {'run after warm-up':>18}")
    for label, cold, warm, best, warm_up, after, _ in rows:
        print(f"{label:<14} {cold:>10.2f}s {warm:>13.2f}s {best:>11.2f}s {warm_up:>18.2f}s "
              f"{after:>17.2f}s")
    for label, cold, warm, *_ in rows:
        print(f"{label}: warm run {warm:.2f} s (goal < 3 s: {'met' if warm < 3 else 'NOT met'}), "
              f"cold/warm = {cold / warm:.1f}x")
    print(f"interpreter + imports alone (python -c 'import binance_cluster.backtest.driver'): {bare:.2f} s")
    print("phases of the cold run (run.json): " + ", ".join(
        f"{k} {v:.2f}s" for k, v in rows[-1][6].items()))


if __name__ == "__main__":
    main()
