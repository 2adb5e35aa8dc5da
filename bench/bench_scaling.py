"""Scaling of the MPI sweep over the 16 real symbols (about a month of 1m candles each), run
serially (no mpirun), at `mpirun -n 1` and at `mpirun -n 2`:

- the sma_cross grid (fast 5..50 step 5 x slow 20..200 step 20 = 100 combinations), which
  the engine runs in its fused single-pass kernel (milliseconds per symbol);
- for reference, an rsi_reversion grid of 100 combinations (n 5..50 step 5 x lower 20..40
  step 5 x upper 60, 70), which runs signals + simulation per combination (about 100 times
  the work), so that compute dominates the fixed costs of a run.

    python bench/bench_scaling.py [--repeat 3] [--ranks 1,2] [--only sma_cross]

Prints, side by side in one run, the wall time of the compute phase (from OUT/run.json:
reading candles, the sweep units, the replay of the best units, gathering; numba kernels are
loaded before it), of the sweep units alone, of the whole command, backtests per second, and
the speed-up of each rank count against `mpirun -n 1` (goal at 2 ranks: >= 1.8), and the
ceiling of this machine: how much faster two CPU-bound processes run than one. It checks
that every run of a workload wrote a byte-identical summary.json. The store is imported from
../shared/data/binance-usdm-1m into a temporary directory with `binance-cluster import`.
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
DATA = ROOT.parent / "shared" / "data" / "binance-usdm-1m"
BIN = Path(sys.executable).parent

JOB = """\
store = "{store}"
symbols = "all"
mode = "sweep"
output = "{out}"
top = 5
rank_by = "sharpe"
chunk_size = {chunk}

[strategy]
name = "{strategy}"
[strategy.params]
{params}
[risk]
fee_rate = 0.001
"""

WORKLOADS = {
    "sma_cross": ("fast = {start = 5, stop = 50, step = 5}\nslow = {start = 20, stop = 200, step = 20}",
                  100),
    "rsi_reversion": ("n = {start = 5, stop = 50, step = 5}\nlower = {start = 20, stop = 40, step = 5}\n"
                      "upper = [60, 70]", 25),
}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "binance_cluster", *args]


def run(cmd: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
    return wall, proc


SPIN = ("import time\nt = time.perf_counter()\nx = 0\nfor i in range(12_000_000):\n"
        "    x += i * i\nprint(time.perf_counter() - t)")


def hardware_ceiling(n: int) -> float:
    """Speed-up n identical CPU-bound processes get over one on this machine (n = perfect)."""
    one = float(subprocess.run([sys.executable, "-c", SPIN], capture_output=True, text=True).stdout)
    procs = [subprocess.Popen([sys.executable, "-c", SPIN], stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    many = max(float(p.communicate()[0]) for p in procs)
    return n * one / many


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per configuration (median shown)")
    ap.add_argument("--ranks", default="1,2", help="mpirun rank counts (default 1,2)")
    ap.add_argument("--only", default=None, help="one workload: " + ", ".join(WORKLOADS))
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} is missing")
    ranks = [int(n) for n in args.ranks.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        store = Path(tmp) / "store"
        wall, _ = run(cli("import", "--store", str(store), str(DATA)))
        print(f"imported 16 symbols into a temporary store in {wall:.1f} s")
        names = [args.only] if args.only else list(WORKLOADS)
        wall, _ = run(cli("warm-up", "--strategies", ",".join(names)))
        print(f"warm-up (numba cache) {wall:.1f} s")
        for name in names:
            bench_workload(name, Path(tmp), store, ranks, args.repeat)
        ceiling = statistics.median(hardware_ceiling(2) for _ in range(3))
        print(f"\ncores: {os.cpu_count()}; this machine's ceiling: 2 CPU-bound processes run "
              f"{ceiling:.2f}x as fast as 1 (the best any 2-rank run can do)")


def bench_workload(name: str, tmp: Path, store: Path, ranks: list[int], repeat: int) -> None:
    params, chunk = WORKLOADS[name]
    job = tmp / f"{name}.toml"
    job.write_text(JOB.format(store=store, out=tmp / "out", strategy=name, params=params,
                              chunk=chunk))
    configs = [("serial (no mpirun)", None)] + [(f"mpirun -n {n}", n) for n in ranks]
    rows = []
    summaries = set()
    combos = 0
    for label, n in configs:
        compute, sweep, walls = [], [], []
        for k in range(repeat):
            out = tmp / f"out_{name}_{n}_{k}"
            base = cli("backtest", str(job), "--output", str(out), "--no-progress")
            cmd = base if n is None else [str(BIN / "mpirun"), "-n", str(n), *base]
            wall, _ = run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"))
            meta = json.loads((out / "run.json").read_text())
            compute.append(meta["seconds"]["compute"])
            sweep.append(meta["seconds"]["sweep"])
            walls.append(wall)
            summary = (out / "summary.json").read_bytes()
            summaries.add(summary)
            combos = len(json.loads(summary)["units"])
        rows.append((label, n, statistics.median(compute), statistics.median(sweep),
                     statistics.median(walls)))
    ref = next((r for r in rows if r[1] == 1), rows[0])
    print(f"\n{name} sweep, 16 symbols, {combos} backtests (median of {repeat})")
    print(f"{'configuration':<20} {'compute s':>10} {'sweep s':>8} {'wall s':>8} "
          f"{'backtests/s':>12} {'speed-up vs -n 1':>17} {'(sweep only)':>13}")
    for label, n, comp, sw, wall in rows:
        print(f"{label:<20} {comp:>10.3f} {sw:>8.3f} {wall:>8.2f} {combos / comp:>12.0f} "
              f"{ref[2] / comp:>17.2f} {ref[3] / sw:>13.2f}")
    two = next((r for r in rows if r[1] == 2), None)
    if two is not None:
        speedup = ref[2] / two[2]
        print(f"speed-up of the compute phase at 2 ranks: {speedup:.2f} "
              f"(goal >= 1.8: {'met' if speedup >= 1.8 else 'NOT met'})")
    print(f"summary.json identical across all runs: {len(summaries) == 1}")


if __name__ == "__main__":
    main()
