"""Run a backtest job (a TOML file, see jobs/demo.toml) serially or on every rank of mpirun.

Modes: `sweep` (every symbol x every parameter combination of the strategy's grid; units are
symbol x grid chunk, split by cost across ranks) and `portfolio` (one parameter set, signals
of every symbol computed on the ranks, one portfolio simulated at rank 0). Results go to the
job's output directory: summary.json, trades.csv, results.h5, job.toml (the resolved job) and
run.json (timings). The job is checked at rank 0 before any rank computes: bad input exits
with code 2 and one line naming the key. A unit that fails is reported and the others finish;
the exit code is then 1.

  binance-cluster warm-up && mpirun -n 4 binance-cluster backtest jobs/demo.toml
  binance-cluster backtest jobs/demo.toml --output /tmp/demo --rank-by total_return
  jobs/run.sh jobs/sweep_real.toml 2
"""

from __future__ import annotations

from binance_cluster.table import format_table

import argparse
import math

NAME = "backtest"
HELP = "run a backtest or parameter-sweep job (TOML) on every rank"


def add_arguments(p) -> None:
    p.add_argument("job", help="job file (TOML)")
    p.add_argument("--store", default=None, help="store directory (replaces the job's `store`)")
    p.add_argument("-o", "--output", "--out", dest="output", default=None,
                   help="output directory (replaces the job's `output`)")
    p.add_argument("--symbols", default=None, help="comma-separated symbols (replaces the job's)")
    p.add_argument("--top", type=int, default=None, help="best units that get trades and equity curves")
    p.add_argument("--rank-by", default=None, help="metric that orders the results (e.g. sharpe)")
    p.add_argument("--show", type=int, default=10, help="rows of the printed results table (default 10)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--report", action="store_true",
                   help="render the report (report.html, report.pdf, figures/) after the run")
    from binance_cluster.commands.report import add_report_options

    add_report_options(p)
    p.add_argument("--fail-rank", type=int, default=None, help=argparse.SUPPRESS)  # fault injection


def _validate(args):
    from binance_cluster.backtest.job import Overrides, count_candles, load_job
    from binance_cluster.candles.store import CandleStore

    overrides = Overrides(store=args.store, output=args.output,
                          symbols=tuple(args.symbols.split(",")) if args.symbols else None,
                          top=args.top, rank_by=args.rank_by)
    job = load_job(args.job, overrides)
    if args.report:
        from binance_cluster.commands.report import report_options

        report_options(args)  # a bad report option fails before any rank computes
    store = CandleStore(job.store)
    counts = {s: count_candles(store, s, job.interval, job.start, job.end) for s in job.symbols}
    return job, counts


def run(args) -> int:
    from binance_cluster.backtest.driver import run_backtest
    from binance_cluster.parallel import get_comm, on_root

    comm = get_comm()
    job, counts = on_root(comm, lambda: _validate(args))
    outcome = run_backtest(job, comm, counts, show_progress=not args.no_progress,
                           debug=args.debug, fail_rank=args.fail_rank)
    code = comm.bcast(outcome.exit_code if outcome is not None else None, root=0)
    if outcome is not None:
        print_outcome(outcome, args.show)
        if args.report:
            from binance_cluster.commands.report import render

            render(job.output, args)
    return code


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    return str(value)


def print_outcome(outcome, show: int) -> None:
    """The ranked results table, failures and where the files are."""
    job = outcome.job
    secs = outcome.seconds
    if job.mode == "sweep":
        print(f"sweep {job.strategy} on {len(job.symbols)} symbols x {job.n_combinations} "
              f"parameter sets = {len(outcome.entries)} results ({outcome.units} units) "
              f"in {secs.get('total', 0):.2f} s on {outcome.ranks} rank(s)")
    else:
        print(f"portfolio {job.strategy} on {len(job.symbols)} symbols in "
              f"{secs.get('total', 0):.2f} s on {outcome.ranks} rank(s)")
        pm = (outcome.portfolio or {}).get("metrics")
        if pm:
            print("portfolio: " + "  ".join(f"{k}={_cell(v)}" for k, v in pm.items()))
    metrics = [job.rank_by] + [m for m in ("total_return", "sharpe", "max_drawdown", "trades",
                                           "win_rate") if m != job.rank_by]
    sweep = job.mode == "sweep"
    header = ["#", "symbol"] + (["params"] if sweep else []) + metrics \
        + ([] if sweep else ["in portfolio"])
    rows = [header]
    for pos, i in enumerate(outcome.ranked[:show], start=1):
        e = outcome.entries[i]
        params = " ".join(f"{k}={_cell(v)}" for k, v in e["params"].items())
        rows.append([str(pos), e["symbol"]] + ([params] if sweep else [])
                    + [_cell(e["metrics"].get(m)) for m in metrics]
                    + ([] if sweep else [_cell(e.get("portfolio_trades"))]))
    if len(rows) > 1:
        if sweep:
            print(f"best by {job.rank_by}:")
        else:
            params = " ".join(f"{k}={_cell(v)}" for k, v in job.grid()[0].items())
            print(f"each symbol alone, best by {job.rank_by} ({params}; last column: its trades "
                  "in the portfolio):")
        first_number = 3 if sweep else 2
        print(format_table(rows, right={0, *range(first_number, len(header))}))
    if outcome.failures:
        print(f"FAILED: {len(outcome.failures)} of {outcome.units} units (exit code 1):")
        for name, error in outcome.failures:
            print(f"  {name}: {(error or '').splitlines()[0] if error else ''}")
    else:
        print(f"all {outcome.units} units finished (exit code 0)")
    print(f"results in {job.output}")
