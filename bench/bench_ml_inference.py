"""ML benchmarks: the live loop's per-bar cost, and walk-forward training under mpirun.

    python bench/bench_ml_inference.py [--symbols 100] [--repeat 200] [--ranks 1,2] [--pool] [--trees]

1. Features plus inference for the newest bar of N symbols (default 100): each symbol keeps
   the last `history` candles (1441 for the seed's features plus the job's RSI, ATR, volume
   z-score and hour, as jobs/ml.toml), and one bar costs `compute_features` on the newest
   row and `predict_proba` of its logistic model. Printed: ms per bar for all symbols
   (median of --repeat), against the goal (< 5 ms on one core), side by side with the same
   features fed to scikit-learn's LogisticRegression.predict_proba (a named peer, if installed).
2. Walk-forward training of the 16 real symbols (jobs/ml.toml, weekly folds, logistic) at
   `mpirun -n 1` and `-n 2`: wall time of the training phase, speed-up, and every rank's peak
   resident memory (VmHWM; goal: a worker under 200 MB), beside the floor: the peak after
   importing the program and loading the training kernels as `train` does (no data). `--pool`
   adds the same job pooled (`[train] pool = true`: rank 0 fits on every symbol's rows),
   `--trees` the same job with `kind = "trees"` (boosted trees). The store is imported from
   ../shared/data/binance-usdm-1m into a temporary directory.
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "binance-usdm-1m"
BIN = Path(sys.executable).parent
GOAL_MS = 5.0
GOAL_MB = 200.0


def peak_mb() -> float:
    """This process's RSS high-water mark (VmHWM) in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    return float("nan")


def _real(symbol: str):
    import gzip

    from binance_cluster.types import Candles

    with gzip.open(DATA / f"{symbol}-1m.csv.gz", "rt") as fh:
        header = fh.readline().strip().split(",")
        table = np.loadtxt(fh, delimiter=",", ndmin=2)
    cols = {name: table[:, i] for i, name in enumerate(header)}
    cols["open_time"] = cols["open_time"].astype(np.int64)
    return Candles.from_columns(cols)


def inference(n_symbols: int, repeat: int) -> None:
    from binance_cluster.ml.features import FeatureSpec, compute_features
    from binance_cluster.ml.labels import LabelSpec, barrier_labels
    from binance_cluster.ml.logistic import LogisticParams, fit_logistic

    spec = FeatureSpec(rsi=14, atr=14, volume_z=60, hour=True)
    h = spec.history
    names = sorted(p.name.split("-")[0] for p in DATA.glob("*-1m.csv.gz"))
    buffers, models = [], []
    for k in range(n_symbols):
        c = _real(names[k % len(names)]) if k < len(names) else None
        if c is None:
            c = buffers[k % len(names)][2]
        if k < len(names):
            x = compute_features(c.slice(0, 12_000), spec)
            y, _ = barrier_labels(c.slice(0, 12_000), LabelSpec())
            keep = np.isfinite(x).all(axis=1) & (y >= 0)
            model = fit_logistic(x[keep], y[keep], LogisticParams())
        else:
            model = models[k % len(names)]
        end = 20_000 + 37 * k            # every symbol at its own bar
        buffers.append((end, c.slice(end - h, end), c))
        models.append(model)

    def one_bar():
        out = np.empty(n_symbols)
        for j in range(n_symbols):
            window = buffers[j][1]
            x = compute_features(window, spec, h - 1, h)
            out[j] = models[j].predict_proba(x)[0]
        return out

    one_bar()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ours = one_bar()
        times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    rows = np.vstack([compute_features(b[1], spec, h - 1, h) for b in buffers])
    feat_times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for b in buffers:
            compute_features(b[1], spec, h - 1, h)
        feat_times.append((time.perf_counter() - t0) * 1e3)
    print(f"newest bar of {n_symbols} symbols ({len(spec.names)} features, history {h} candles):")
    print(f"  binance-cluster features + logistic   {ms:8.3f} ms per bar   (goal < {GOAL_MS} ms: "
          f"{'met' if ms < GOAL_MS else 'NOT met'})")
    print(f"    of which features                   {statistics.median(feat_times):8.3f} ms")
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        print("  scikit-learn not installed: no peer")
        return
    peers = []
    for m in models[:len(names)]:
        ref = LogisticRegression()
        ref.classes_ = np.array([0, 1])
        ref.coef_ = (m.coef / m.scale)[None, :]
        ref.intercept_ = np.array([m.intercept - float(np.sum(m.coef * m.mean / m.scale))])
        peers.append(ref)
    sk_times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        ref_p = np.array([peers[j % len(names)].predict_proba(rows[j:j + 1])[0, 1]
                          for j in range(n_symbols)])
        sk_times.append((time.perf_counter() - t0) * 1e3)
    sk_ms = statistics.median(sk_times)
    print(f"  scikit-learn predict_proba alone      {sk_ms:8.3f} ms per bar   "
          f"(ours with features: {sk_ms / ms:.2f}x faster)")
    print(f"  largest probability difference        {np.max(np.abs(ref_p - ours)):.2e}")


def worker(job: str, store: str, models: str, out: str) -> None:
    """Under mpirun: train the job, then rank 0 prints the time and every rank's peak memory."""
    from binance_cluster.backtest.job import Overrides, count_candles
    from binance_cluster.candles.store import CandleStore
    from binance_cluster.ml.job import load_train_job
    from binance_cluster.ml.train import run_train
    from binance_cluster.parallel import get_comm, on_root

    comm = get_comm()

    def validate():
        tj = load_train_job(job, Overrides(store=store, output=out))
        tj = type(tj)(type(tj.job)(**{**{f: getattr(tj.job, f) for f in tj.job.__slots__},
                                      "models": models}), tj.spec)
        s = CandleStore(tj.job.store)
        return tj, {x: count_candles(s, x, "1m", None, None) for x in tj.job.symbols}

    tj, counts = on_root(comm, validate)
    floor = _floor(tj) if comm.rank == 0 or not tj.spec.pool else peak_mb()
    comm.barrier()
    t0 = time.perf_counter()
    outcome = run_train(tj, comm, counts, show_progress=False)
    seconds = time.perf_counter() - t0
    peaks = comm.allgather(peak_mb())
    floors = comm.allgather(floor)
    if outcome is not None:
        print(json.dumps({"seconds": seconds, "peaks": peaks, "floors": floors,
                          "failures": len(outcome.failures)}))


def _floor(tj) -> float:
    """Peak memory after importing the program and loading the job's training kernels as
    `train` does (`load_kernels`), before any real data (a pool's waiting ranks load none)."""
    from binance_cluster.ml.train import load_kernels
    from binance_cluster.parallel import SerialComm

    load_kernels(tj, SerialComm())
    return peak_mb()


def training(ranks: list[int], pool: bool, kind: str = "logistic") -> None:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "real"
        subprocess.run([str(BIN / "binance-cluster"), "import", "--store", str(store),
                        *map(str, sorted(DATA.glob("*-1m.csv.gz")))], check=True,
                       capture_output=True)
        subprocess.run([str(BIN / "binance-cluster"), "warm-up"], check=True, capture_output=True)
        job = ROOT / "jobs" / "ml.toml"
        if pool or kind != "logistic":
            job = Path(tmp) / "ml-variant.toml"
            job.write_text((ROOT / "jobs" / "ml.toml").read_text().replace(
                "pool = false", f"pool = {'true' if pool else 'false'}").replace(
                'kind = "logistic"', f'kind = "{kind}"'))
        results = {}
        for n in ranks:
            cmd = [str(BIN / "mpirun"), "-n", str(n), sys.executable, __file__, "--worker",
                   str(job), str(store), str(Path(tmp) / f"m{n}.h5"),
                   str(Path(tmp) / f"out{n}")]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if proc.returncode:
                raise SystemExit(proc.stderr)
            results[n] = json.loads(proc.stdout.strip().splitlines()[-1])
        same = len({(Path(tmp) / f"out{n}" / "train.csv").read_text() for n in ranks}) == 1
        summary = json.loads((Path(tmp) / f"out{ranks[0]}" / "train.json").read_text())
    widest = max((f["train_rows"] or 0) for f in summary["folds"])
    matrix_mb = widest * len(summary["features"]) * 8 / 1e6
    base = results[ranks[0]]["seconds"]
    print(f"walk-forward training of the 16 real symbols (jobs/ml.toml, weekly folds, {kind}"
          f"{', pooled' if pool else ''}):")
    for n in ranks:
        r = results[n]
        print(f"  mpirun -n {n}: {r['seconds']:7.2f} s  speed-up {base / r['seconds']:5.2f}x  "
              f"peak memory per rank {', '.join(f'{p:.0f}' for p in r['peaks'])} MB "
              f"(goal < {GOAL_MB:.0f} MB); floor (program + kernels) "
              f"{', '.join(f'{p:.0f}' for p in r['floors'])} MB")
        training_ranks = r["peaks"][:1] if pool else r["peaks"]
        worst = max(training_ranks)
        print(f"    {'the fitting rank 0' if pool else 'worst training rank'}: {worst:.0f} MB, "
              f"goal < {GOAL_MB:.0f} MB {'met' if worst < GOAL_MB else 'MISSED'}"
              + (f"; waiting ranks {', '.join(f'{p:.0f}' for p in r['peaks'][1:])} MB"
                 if pool and n > 1 else ""))
    print(f"  largest fold's training matrix: {widest:,} rows x {len(summary['features'])} "
          f"features x 8 bytes = {matrix_mb:.0f} MB"
          + (" (all symbols' rows at once: the floor of a pooled fit in memory)" if pool else
             " (a view of the symbol's feature matrix, no copy)"))
    print(f"  train.csv identical at every rank count: {same}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:6])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=200)
    ap.add_argument("--ranks", default="1,2")
    ap.add_argument("--skip-training", action="store_true")
    ap.add_argument("--skip-inference", action="store_true")
    ap.add_argument("--pool", action="store_true", help="also train the job pooled")
    ap.add_argument("--trees", action="store_true", help="also train it with boosted trees")
    args = ap.parse_args()
    if not args.skip_inference:
        inference(args.symbols, args.repeat)
    if not args.skip_training:
        ranks = [int(r) for r in args.ranks.split(",")]
        training(ranks, pool=False)
        if args.pool:
            training(ranks, pool=True)
        if args.trees:
            training(ranks, pool=False, kind="trees")


if __name__ == "__main__":
    main()
