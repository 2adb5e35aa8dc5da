"""Render the report of a run's output directory: DIR/report.html (self-contained, opens from
disk), DIR/report.pdf (one page per figure) and DIR/figures/NN-name.png.

Backtests (portfolio mode): equity and drawdown against buy-and-hold, P&L per symbol, prices
with trades for the best and worst symbols, trade returns, monthly returns, exposure, metrics.
Sweeps: heatmaps of a metric over two parameters (mean over symbols and per symbol), the
robustness around the best cell, the top-N table, and the best result's equity and trades.
Prices are read from the store named in DIR/job.toml. Training runs (train.json): ROC,
calibration, thresholds, importance, champion/challenger history. Live or paper runs (a
journal file, or a folder holding journal.sqlite): equity, slippage, latency, orders per
hour, win rate by UTC hour, positions; written beside the journal.

  binance-cluster report results/demo
  binance-cluster report results/sweep_real --metric total_return --params fast,slow --top 30
  binance-cluster report results/paper/journal.sqlite
"""

from __future__ import annotations

NAME = "report"
HELP = "render a run's report (HTML, PDF and PNG figures) from its output directory"


KINDS = ("live", "model", "sweep", "backtest")   # report.render.KIND_NAMES (not imported: startup)


def add_arguments(p) -> None:
    p.add_argument("directory", metavar="PATH",
                   help="output directory of a backtest or train run, a live run folder, or a journal file")
    p.add_argument("--kind", choices=KINDS, default=None,
                   help="which report (default: live for a journal, else the folder's latest run)")
    add_report_options(p)


def add_report_options(p) -> None:
    """The options that shape a report (shared with `backtest --report`)."""
    p.add_argument("--metric", default=None,
                   help="sweep metric of the heatmaps (default: the job's rank_by)")
    p.add_argument("--params", default=None, metavar="X,Y",
                   help="the two sweep parameters of the heatmaps (default: the two with most values)")
    p.add_argument("--report-top", dest="report_top", type=int, default=20, metavar="N",
                   help="rows of the report's top-N table (default 20)")


def report_options(args):
    """ReportOptions from parsed arguments; ConfigError naming the option when bad."""
    from binance_cluster.errors import ConfigError
    from binance_cluster.report.spec import ReportOptions

    params = None
    if args.params is not None:
        names = tuple(p.strip() for p in args.params.split(","))
        if len(names) != 2 or not all(names):
            raise ConfigError(f"--params {args.params!r}: name two parameters, e.g. fast,slow")
        params = names
    if args.metric is not None:
        from binance_cluster.engine.metrics import METRIC_NAMES

        if args.metric not in METRIC_NAMES:
            raise ConfigError(f"--metric {args.metric!r}: unknown metric (known: {', '.join(METRIC_NAMES)})")
    if args.report_top < 1:
        raise ConfigError(f"--report-top {args.report_top}: must be at least 1")
    return ReportOptions(metric=args.metric, params=params, top=args.report_top)


def render(directory, args, kind: str | None = None) -> None:
    """Render the report of `directory` and print where it is (rank 0 only)."""
    from binance_cluster.report.render import render_report
    from binance_cluster.report.spec import ReportOptions

    options = report_options(args) if hasattr(args, "report_top") else ReportOptions()
    files = render_report(directory, options, kind or getattr(args, "kind", None))
    seconds = sum(s for _, s in files.seconds)
    print(f"report: {files.html} ({len(files.pngs)} figures in {seconds:.1f} s; "
          f"also {files.pdf.name} and {files.pngs[0].parent.name}/*.png)" if files.pngs else
          f"report: {files.html}")


def run(args) -> int:
    from binance_cluster.parallel import get_comm

    if get_comm().rank == 0:
        render(args.directory, args)
    return 0
