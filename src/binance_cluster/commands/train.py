"""Train the models of a job walk-forward (see binance_cluster.ml.job), serially or under mpirun.

Every symbol is a unit spread across the ranks; rank 0 writes the model store (the job's
`models`) and train.json / train.csv (one row per symbol and fold) to the job's output.

  mpirun -n 2 binance-cluster train jobs/ml.toml
  binance-cluster train jobs/ml.toml --symbols BTCUSDT,ETHUSDT
"""

from __future__ import annotations

NAME = "train"
HELP = "train walk-forward models of a job (TOML) on every rank"


def add_arguments(p) -> None:
    p.add_argument("job", help="job file (TOML) with a [train] section and `models`")
    p.add_argument("--store", default=None, help="store directory (replaces the job's `store`)")
    p.add_argument("-o", "--output", "--out", dest="output", default=None,
                   help="output directory (replaces the job's `output`)")
    p.add_argument("--symbols", default=None, help="comma-separated symbols (replaces the job's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--report", action="store_true",
                   help="render the model report into the output directory (rank 0)")


def _validate(args):
    from binance_cluster.backtest.job import Overrides, count_candles
    from binance_cluster.candles.store import CandleStore
    from binance_cluster.ml.job import load_train_job

    overrides = Overrides(store=args.store, output=args.output,
                          symbols=tuple(args.symbols.split(",")) if args.symbols else None)
    tj = load_train_job(args.job, overrides)
    store = CandleStore(tj.job.store)
    counts = {s: count_candles(store, s, tj.job.interval, tj.job.start, tj.job.end)
              for s in tj.job.symbols}
    return tj, counts


def run(args) -> int:
    from binance_cluster.ml.train import run_train
    from binance_cluster.parallel import get_comm, on_root

    comm = get_comm()
    tj, counts = on_root(comm, lambda: _validate(args))
    outcome = run_train(tj, comm, counts, show_progress=not args.no_progress, debug=args.debug)
    code = comm.bcast(outcome.exit_code if outcome is not None else None, root=0)
    if outcome is not None:
        _print(tj, outcome)
        if args.report and outcome.records:
            from binance_cluster.commands.report import render

            render(tj.job.output, args, kind="model")
    return code


def _print(tj, outcome) -> None:
    from binance_cluster.table import format_table

    rows = [["symbol", "folds", "skipped", "mean auc", "traded periods", "champion kept"]]
    for symbol, recs in outcome.records.items():
        fitted = [r for r in recs if not r.skip]
        aucs = [r.metrics["challenger"]["auc"] for r in fitted]
        kept = sum(1 for r in fitted if r.decision.get("winner") == "champion")
        traded = sum(1 for r in fitted if r.threshold is not None)
        rows.append([symbol, str(len(recs)), str(len(recs) - len(fitted)),
                     f"{sum(aucs) / len(aucs):.4f}" if aucs else "-", str(traded), str(kept)])
    print(f"trained {tj.spec.kind} walk-forward ({tj.spec.fold} folds) on {len(outcome.records)} "
          f"symbols in {outcome.seconds:.2f} s on {outcome.ranks} rank(s)")
    print(format_table(rows, right={1, 2, 3, 4, 5}))
    for symbol, error in outcome.failures:
        print(f"  FAILED {symbol}: {(error or '').splitlines()[0]}")
    print(f"models in {tj.job.models}; folds in {tj.job.output}/train.csv")
