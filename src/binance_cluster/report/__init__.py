"""Reports: figures of a run rendered to PNG files, one multipage PDF and a self-contained HTML page.

Owns every use of matplotlib in the project (Agg backend only, set in `style`): the style
(`style`), one figure module per kind of run (`backtest` for portfolio runs, `sweep` for
parameter sweeps, `model` for training runs, `live` for live and paper journals), the run's
inputs (`inputs`), the writers (`html`, `render`). It reads results through the readers kept
beside their writers (`backtest.results`, `ml.train_results.read_train_summary`, `ml.model_store`,
`live.journal`) and candles through `candles.store`; it may import the ground floor,
`backtest`, `candles`, `engine`, `kernels`, `ml` and `live`, and nothing imports it but `commands`.

A kind of report is a module with `KIND`, `applies(directory) -> bool` and
`build(directory, ReportOptions) -> Report` (a title, facts and `FigureSpec`s, see `spec`),
listed in `render.KINDS`; the writers turn any `Report` into PNG, PDF and HTML.

  from binance_cluster.report.render import render_report
  files = render_report("results/demo")      # DIR/report.html, DIR/report.pdf, DIR/figures/*.png
  render_report("results/paper/journal.sqlite", kind="live")   # written beside the journal
"""
