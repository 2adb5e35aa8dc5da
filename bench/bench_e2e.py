"""A sweep end to end through the command line: wall time against its own sweep phase, the
speed-up from 1 to 2 ranks, and the peak memory of every rank.

    python bench/bench_e2e.py [--symbols 16] [--days 365] [--ranks 1,2] [--repeat 3] [--top 5]

Writes `demo-data --symbols 16 --days 365` (16 synthetic symbol-years) into a temporary store,
warms the job's kernels (`warm-up JOB`), then runs `mpirun -n N binance-cluster backtest JOB`
with the sma_cross grid of 100 combinations (fast 5..50 step 5 x slow 20..200 step 20, one
unit per symbol). Each rank runs under a small wrapper that records its RSS high-water mark
(VmHWM) when the command returns. Printed side by side, median of `--repeat` runs:

- wall time of the whole command (launch to exit, all files written) and the phases of the
  same run from OUT/run.json (sweep, replay, write, kernel loading);
- whole / sweep (goal <= 1.3) and the speed-up of the whole command and of the sweep phase
  from 1 to 2 ranks (goal >= 1.7), next to this machine's ceiling measured in the same run
  (how much faster two CPU-bound processes run than one);
- the peak RSS of every rank (goal: each under 200 MB), with its private part (anonymous
  memory) and its Pss (shared pages split between the ranks) beside it.

It checks that every run wrote the same summary.json and trades.csv. `--before SRC` runs
every configuration a second time with another checkout's package (PYTHONPATH=SRC/src, e.g.
`git archive main | tar -x -C /tmp/main`), interleaved, and prints both side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench_scaling import cli, hardware_ceiling
from bench_scaling import run as run_checked

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HERE = Path(__file__).resolve()
GOAL_RATIO = 1.3
GOAL_SPEEDUP = 1.7
GOAL_MB = 200.0

JOB = """\
store = "{store}"
symbols = "all"
mode = "sweep"
output = "{out}"
top = {top}
rank_by = "sharpe"
chunk_size = 100

[strategy]
name = "sma_cross"
[strategy.params]
fast = {{start = 5, stop = 50, step = 5}}
slow = {{start = 20, stop = 200, step = 20}}
[risk]
fee_rate = 0.001
"""


def status_mb(*keys: str) -> dict[str, float]:
    """Fields of /proc/self/status (VmHWM, RssAnon, ...) in MB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in keys:
                out[key] = int(line.split()[1]) * 1024 / 1e6
    return out


def pss_mb() -> float:
    """Proportional set size: shared pages (libraries, LLVM's code) split between processes."""
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def as_rank(peak_dir: str, argv: list[str]) -> int:
    """Run the CLI in this process, then write this rank's memory peaks to peak_dir/RANK.

    VmHWM is the kernel's RSS high-water mark; the peaks of private (anonymous) memory and of
    Pss are sampled every 20 ms by a thread.
    """
    import threading

    from binance_cluster.cli import main
    from binance_cluster.parallel import get_comm

    peaks = {"anon": 0.0, "pss": 0.0}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peaks["anon"] = max(peaks["anon"], status_mb("RssAnon")["RssAnon"])
            peaks["pss"] = max(peaks["pss"], pss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        return main(argv)
    finally:
        done.set()
        sampler.join()
        rank = get_comm().rank
        peaks["rss"] = status_mb("VmHWM")["VmHWM"]
        Path(peak_dir, str(rank)).write_text(json.dumps(peaks))


def run(cmd: list[str], env: dict) -> float:
    """Wall time of a command that must succeed."""
    return run_checked(cmd, env=env)[0]


def one_run(job: Path, out: Path, ranks: int, env: dict) -> dict:
    peaks = out.parent / f"{out.name}.peaks"
    peaks.mkdir(parents=True)
    cmd = [str(BIN / "mpirun"), "-n", str(ranks), sys.executable, str(HERE), "--as-rank",
           str(peaks), "--", "backtest", str(job), "--output", str(out), "--no-progress"]
    wall = run(cmd, env)
    seconds = json.loads((out / "run.json").read_text())["seconds"]
    mb = [json.loads((peaks / str(r)).read_text()) for r in range(ranks)]
    files = tuple((out / name).read_bytes() for name in ("summary.json", "trades.csv"))
    return {"wall": wall, "seconds": seconds, "peaks": mb, "files": files}


def median_run(runs: list[dict]) -> dict:
    """Per-figure medians of several runs of one configuration."""
    keys = set().union(*(r["seconds"] for r in runs))
    return {"wall": statistics.median(r["wall"] for r in runs),
            "seconds": {k: statistics.median(r["seconds"].get(k, 0.0) for r in runs) for k in keys},
            "peaks": [{k: max(r["peaks"][i][k] for r in runs) for k in ("rss", "anon", "pss")}
                      for i in range(len(runs[0]["peaks"]))]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--as-rank", help=argparse.SUPPRESS)
    ap.add_argument("--symbols", type=int, default=16)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--ranks", default="1,2", help="mpirun rank counts (default 1,2)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per rank count (median shown)")
    ap.add_argument("--top", type=int, default=5, help="the job's `top` (replayed units)")
    ap.add_argument("--store", default=None, help="an existing demo store to reuse")
    ap.add_argument("--before", default=None, help="another checkout to compare (its src/)")
    args, rest = ap.parse_known_args()
    if args.as_rank:
        sys.exit(as_rank(args.as_rank, rest[1:] if rest[:1] == ["--"] else rest))
    ranks = [int(n) for n in args.ranks.split(",")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    variants = {"this checkout": env}
    if args.before:
        # its own numba cache: the warm-up stamp of a cache is one per host and checkout
        cache = os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache")) + "-before"
        variants["before (" + args.before + ")"] = dict(env, PYTHONPATH=str(Path(args.before) / "src"),
                                                        NUMBA_CACHE_DIR=cache)
    with tempfile.TemporaryDirectory(prefix="bench_e2e_") as tmp:
        tmp = Path(tmp)
        store = Path(args.store) if args.store else tmp / "store"
        if not args.store:
            wall = run(cli("demo-data", "--store", str(store), "--symbols", str(args.symbols),
                           "--days", str(args.days)), env)
            print(f"demo-data --symbols {args.symbols} --days {args.days}: {wall:.1f} s")
        job = tmp / "sweep.toml"
        job.write_text(JOB.format(store=store, out=tmp / "out", top=args.top))
        for label, venv in variants.items():
            wall = run(cli("warm-up", str(job)), venv)
            print(f"warm-up {job.name} ({label}): {wall:.1f} s")
        rows, files = [], set()
        for k in range(args.repeat):  # interleaved, so background load hits every run alike
            for label, venv in variants.items():
                for n in ranks:
                    r = one_run(job, tmp / f"out_{len(rows)}", n, venv)
                    files.add(r.pop("files"))
                    rows.append((label, n, r))
        ceiling = statistics.median(hardware_ceiling(2) for _ in range(3))
    print(f"\nsma_cross sweep, {args.symbols} symbols x {args.days} days x 100 combinations, "
          f"top {args.top}; median of {args.repeat} (peak: the largest of the runs)")
    for label in variants:
        report(label, {n: median_run([r for v, m, r in rows if v == label and m == n])
                       for n in ranks}, ceiling)
    print(f"\nthis machine's ceiling, measured in this run: 2 CPU-bound processes run "
          f"{ceiling:.2f}x as fast as 1")
    print(f"summary.json and trades.csv identical across all runs: {len(files) == 1}")


def report(label: str, by_n: dict[int, dict], ceiling: float) -> None:
    """One variant's table and verdicts."""
    print(f"\n{label}:")
    phases = ("load_kernels", "sweep", "replay", "write", "total")
    print(f"{'ranks':>5} {'wall s':>7} " + " ".join(f"{p + ' s':>14}" for p in phases)
          + f" {'wall/sweep':>10}  peak MB per rank: RSS (private, Pss)")
    for n, r in by_n.items():
        s = r["seconds"]
        print(f"{n:>5} {r['wall']:>7.2f} " + " ".join(f"{s.get(p, 0.0):>14.3f}" for p in phases)
              + f" {r['wall'] / s['sweep']:>10.2f}  " + "  ".join(
                  f"{p['rss']:.0f} ({p['anon']:.0f}, {p['pss']:.0f})" for p in r["peaks"]))
    for n, r in by_n.items():
        ratio = r["wall"] / r["seconds"]["sweep"]
        worst = max(p["rss"] for p in r["peaks"])
        print(f"-n {n}: whole command / sweep phase = {ratio:.2f} (goal <= {GOAL_RATIO}: "
              f"{'met' if ratio <= GOAL_RATIO else 'NOT met'}); largest rank {worst:.0f} MB "
              f"(goal < {GOAL_MB:.0f}: {'met' if worst < GOAL_MB else 'NOT met'})")
    if 1 in by_n and 2 in by_n:
        whole = by_n[1]["wall"] / by_n[2]["wall"]
        sweep = by_n[1]["seconds"]["sweep"] / by_n[2]["seconds"]["sweep"]
        print(f"speed-up 1 -> 2 ranks: whole command {whole:.2f}, sweep phase {sweep:.2f} "
              f"(goal >= {GOAL_SPEEDUP}: {'met' if whole >= GOAL_SPEEDUP else 'NOT met'}; "
              f"ceiling {ceiling:.2f})")


if __name__ == "__main__":
    main()
