"""Render time and peak memory of the full backtest report for the 16 real symbols, and of the
model and live reports.

    python bench/bench_report.py [--ranks 2] [--repeat 3]

Imports ../shared/data/binance-usdm-1m (16 symbols, about a month of 1m candles each) into a
temporary store with `binance-cluster import`, runs `jobs/portfolio_real.toml` (portfolio
mode, all 16 symbols) and a 16-symbol sma_cross sweep under `mpirun -n N`, then renders each
report with `binance-cluster report` in a fresh process, `--repeat` times. Prints, side by
side: the report's wall time (process start to exit, median; goal: under 10 s), its CPU time
(about the wall time on an idle machine), the drawing time of its figures (as the command
reports it), the peak resident memory of the report process, and for reference the backtest
that made the results and a bare interpreter that imports matplotlib and saves one empty
figure (the floor every report pays). The model report renders a walk-forward training of
the 16 symbols (logistic, weekly folds, as jobs/ml.toml); the live report a journal of a paper
run on a day of real BTCUSDT and ETHUSDT candles (real market orders through the PaperBroker,
journaled by live.journal: the test helper support.live.paper_journal).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATA = ROOT.parent / "shared" / "data" / "binance-usdm-1m"

SWEEP = """\
store = "{store}"
symbols = "all"
interval = "1m"
mode = "sweep"
output = "{out}"
top = 5
rank_by = "sharpe"
chunk_size = 9
[strategy]
name = "sma_cross"
[strategy.params]
fast = [10, 20, 40]
slow = [60, 120, 240]
[risk]
fee_rate = 0.001
stop_loss = 0.03
take_profit = 0.05
[rules]
tick_size = 0.00001
step_size = 0.001
min_notional = 5.0
"""

TRAIN = """\
store = "{store}"
symbols = "all"
interval = "1m"
mode = "portfolio"
output = "{out}"
models = "{models}"
[strategy]
name = "ml_barrier"
[train]
kind = "logistic"
fold = "week"
min_train_rows = 2000
min_eval_rows = 500
row_step = 5
"""

PAPER = """\
import sys
sys.path.insert(0, {tests!r})
from support.live import T0, paper_journal
from support.real_data import read_real, SHARED_DATA
candles = {{s: read_real(SHARED_DATA, s, T0, T0 + 86_400_000) for s in ("BTCUSDT", "ETHUSDT")}}
paper_journal({journal!r}, candles)
"""

FLOOR = ("import io, matplotlib; matplotlib.use('Agg'); from matplotlib.figure import Figure; "
         "Figure(figsize=(12, 9)).savefig(io.BytesIO(), format='png')")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "binance_cluster", *args]


def measured(cmd: list[str], env: dict) -> tuple[float, float, str, float]:
    """(wall seconds, peak resident memory in MB, output, CPU seconds) of one command's process."""
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{text}")
    return wall, usage.ru_maxrss / 1024.0, text, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ranks", type=int, default=2, help="mpirun ranks of the backtests (default 2)")
    ap.add_argument("--repeat", type=int, default=3, help="report renders per run (median)")
    args = ap.parse_args()
    files = sorted(DATA.glob("*-1m.csv.gz"))
    if len(files) != 16:
        sys.exit(f"{DATA}: expected the 16 real symbols, found {len(files)} files")
    env = dict(os.environ, NUMBA_CACHE_DIR=os.environ.get("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache")))
    mpirun = [str(BIN / "mpirun"), "-n", str(args.ranks)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_report_") as tmp:
        store = Path(tmp) / "store"
        wall, _, _, _ = measured(cli("import", "--store", str(store), *map(str, files)), env)
        print(f"imported 16 symbols into {store} in {wall:.1f} s")
        measured(cli("warm-up"), env)
        sweep_job = Path(tmp) / "sweep.toml"
        sweep_job.write_text(SWEEP.format(store=store, out=Path(tmp) / "sweep"))
        runs = [("portfolio, 16 symbols", ROOT / "jobs" / "portfolio_real.toml", Path(tmp) / "portfolio"),
                ("sweep, 16 symbols x 9 sets", sweep_job, Path(tmp) / "sweep")]
        train_job = Path(tmp) / "train.toml"
        train_job.write_text(TRAIN.format(store=store, out=Path(tmp) / "train",
                                          models=Path(tmp) / "models.h5"))
        live = Path(tmp) / "live"
        live.mkdir()
        runs += [("model, 16 symbols (train)", train_job, Path(tmp) / "train"),
                 ("live, 1 day paper journal", None, live)]
        for label, job, out in runs:
            if out == live:
                wall, _, _, _ = measured([sys.executable, "-c", PAPER.format(
                    tests=str(ROOT / "tests"), journal=str(live / "journal.sqlite"))], env)
            else:
                command = "train" if job == train_job else "backtest"
                wall, _, _, _ = measured(mpirun + cli(command, str(job), "--store", str(store),
                                                      "--output", str(out), "--no-progress"), env)
            renders = [measured(cli("report", str(out)), env) for _ in range(args.repeat)]
            figures = [float(re.search(r"figures in ([0-9.]+) s", r[2]).group(1)) for r in renders]
            count = int(re.search(r"\((\d+) figures", renders[0][2]).group(1))
            rows.append((label, wall, statistics.median(r[0] for r in renders),
                         statistics.median(r[3] for r in renders), statistics.median(figures),
                         max(r[1] for r in renders), count))
        floor = [measured([sys.executable, "-c", FLOOR], env) for _ in range(args.repeat)]
    floor_wall = statistics.median(f[0] for f in floor)
    floor_cpu = statistics.median(f[3] for f in floor)
    floor_rss = max(f[1] for f in floor)
    load = os.getloadavg()[0]
    print(f"\nreport of each run, median of {args.repeat} renders (goal: under 10 s; load average "
          f"{load:.1f} on {os.cpu_count()} cores: wall times include waiting for the CPU)")
    head = f"{'run':28s} {'run s':>10s} {'report s':>9s} {'CPU s':>6s} {'figures s':>9s} " \
           f"{'pages':>5s} {'peak MB':>8s} {'report/run':>15s} {'MB over floor':>13s}"
    print(head)
    print("-" * len(head))
    for label, backtest, report, cpu, figs, rss, count in rows:
        print(f"{label:28s} {backtest:10.2f} {report:9.2f} {cpu:6.2f} {figs:9.2f} {count:5d} "
              f"{rss:8.0f} {report / backtest:15.2f} {rss - floor_rss:13.0f}")
    print(f"{'floor: import + 1 empty fig':28s} {'':>10s} {floor_wall:9.2f} {floor_cpu:6.2f} "
          f"{'':>9s} {'':>5s} {floor_rss:8.0f}")
    for label, _, report, cpu, *_ in rows:
        print(f"goal under 10 s, {label}: wall {report:.2f} s {'met' if report < 10 else 'NOT met'}, "
              f"CPU {cpu:.2f} s {'met' if cpu < 10 else 'NOT met'}")

if __name__ == "__main__":
    main()
