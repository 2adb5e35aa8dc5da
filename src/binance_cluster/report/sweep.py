"""Figures of a parameter sweep: heatmaps of a metric over two parameters (mean over symbols
and per symbol), the robustness around the best cell, the top-N table, and the best units'
equity, prices and trades (drawn by `backtest`)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import partial

import numpy as np
from matplotlib.patches import Rectangle

from binance_cluster.errors import ConfigError
from binance_cluster.report import backtest, style
from binance_cluster.report.inputs import BacktestRun, load_backtest, run_mode
from binance_cluster.report.spec import FigureSpec, Report, ReportOptions

KIND = "sweep"
PLATEAU = 0.7        # robustness at or above this: a plateau; below: a spike
MAX_ANNOTATED = 400  # heatmap cells written with their value when there are at most this many


def applies(directory) -> bool:
    """A sweep's output directory."""
    return run_mode(directory) == "sweep"


def smaller_is_better(metric: str) -> bool:
    """True for metrics ranked smallest first (the backtest's own ranking rule)."""
    from binance_cluster.backtest.driver import SMALLER_IS_BETTER

    return metric in SMALLER_IS_BETTER


@dataclass(frozen=True, slots=True)
class Grid:
    """A metric over the sweep's grid: values[symbol, i_1, ..., i_k] for the varying parameters."""

    metric: str
    symbols: list[str]
    names: list[str]             # varying parameters, in the job's order
    values: list[tuple]          # each varying parameter's values
    fixed: dict                  # parameters with one value
    cube: np.ndarray             # (symbols, len(values[0]), ...), NaN where a unit failed

    def better(self, a: np.ndarray) -> np.ndarray:
        """`a` turned so that larger is better."""
        return -a if smaller_is_better(self.metric) else a

    def mean(self) -> np.ndarray:
        """The metric averaged over symbols (NaN where no symbol has a value)."""
        with np.errstate(all="ignore"):
            counts = np.isfinite(self.cube).sum(axis=0)
            total = np.nansum(np.where(np.isfinite(self.cube), self.cube, 0.0), axis=0)
            return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)

    def best_index(self, values: np.ndarray) -> tuple[int, ...]:
        """Index of the best finite cell of `values` (first in grid order on ties)."""
        turned = np.where(np.isfinite(values), self.better(values), -np.inf)
        return tuple(int(i) for i in np.unravel_index(int(np.argmax(turned)), values.shape))


def metric_grid(run: BacktestRun, metric: str) -> Grid:
    """The sweep's metric per symbol and parameter set, shaped by the job's grid."""
    job = run.job
    varying = [(n, v) for n, v in job.params if len(v) > 1]
    names, values = [n for n, _ in varying], [v for _, v in varying]
    fixed = {n: v[0] for n, v in job.params if len(v) == 1}
    symbols = list(dict.fromkeys(u["symbol"] for u in run.summary["units"]))
    cube = np.full((len(symbols), *(len(v) for v in values)), np.nan)
    for u in run.summary["units"]:
        m = (u.get("metrics") or {}).get(metric)
        if m is None or not isinstance(m, (int, float)):
            continue
        where = tuple(values[k].index(u["params"][n]) for k, n in enumerate(names))
        cube[(symbols.index(u["symbol"]), *where)] = float(m)
    return Grid(metric, symbols, names, values, fixed, cube)


def robustness(grid: Grid, values: np.ndarray) -> tuple[float, tuple[int, ...]]:
    """Where the best cell's neighbours stand between the worst cell (0) and the best (1).

    Neighbours are the cells one step away in any direction over the varying parameters.
    Near 1: a plateau of about equally good parameters; near 0: a spike. A flat grid is 1.
    NaN when fewer than two cells or no neighbour have a value.
    """
    best = grid.best_index(values)
    turned = grid.better(values)
    finite = turned[np.isfinite(turned)]
    ranges = [range(max(0, b - 1), min(n, b + 2)) for b, n in zip(best, values.shape)]
    near = [float(turned[ix]) for ix in itertools.product(*ranges) if ix != best]
    near = [v for v in near if math.isfinite(v)]
    if finite.size < 2 or not near:
        return math.nan, best
    top, worst = float(turned[best]), float(finite.min())
    if top == worst:
        return 1.0, best
    return (float(np.mean(near)) - worst) / (top - worst), best


def _axes_pair(grid: Grid, options: ReportOptions) -> tuple[int, int] | None:
    """Indices (x, y) into grid.names of the heatmap's parameters; None with fewer than two."""
    if options.params is not None:
        for p in options.params:
            if p not in grid.names:
                raise ConfigError(f"--params: {p!r} is not a varying parameter of this sweep "
                                  f"(varying: {', '.join(grid.names) or 'none'})")
        if options.params[0] == options.params[1]:
            raise ConfigError("--params: name two different parameters")
        return grid.names.index(options.params[0]), grid.names.index(options.params[1])
    if len(grid.names) < 2:
        return None
    by_size = sorted(range(len(grid.names)), key=lambda k: (-len(grid.values[k]), k))[:2]
    return tuple(sorted(by_size))  # type: ignore[return-value]


def project(grid: Grid, values: np.ndarray, x: int, y: int) -> np.ndarray:
    """`values` over (y, x), the other parameters at their best for each cell."""
    others = tuple(k for k in range(values.ndim) if k not in (x, y))
    turned = np.where(np.isfinite(values), grid.better(values), -np.inf)
    if others:
        turned = turned.max(axis=others)
    kept = [k for k in range(values.ndim) if k in (x, y)]
    if kept.index(x) < kept.index(y):
        turned = turned.T            # rows are y
    out = grid.better(turned)
    return np.where(np.isfinite(out), out, np.nan)


def _format_value(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _heatmap(ax, grid: Grid, table: np.ndarray, x: int, y: int, scale: float, norm, title: str,
             annotate: bool):
    im = ax.imshow(table * scale, origin="lower", aspect="auto", cmap=norm[0], vmin=norm[1],
                   vmax=norm[2])
    ax.set_xticks(range(len(grid.values[x])), [_format_value(v) for v in grid.values[x]])
    ax.set_yticks(range(len(grid.values[y])), [_format_value(v) for v in grid.values[y]])
    ax.set_xlabel(f"{grid.names[x]} (parameter value)")
    ax.set_ylabel(f"{grid.names[y]} (parameter value)")
    ax.grid(False)
    ax.set_title(title, fontsize=10)
    if np.isfinite(table).any():
        by, bx = np.unravel_index(int(np.argmax(np.where(np.isfinite(table), grid.better(table), -np.inf))),
                                  table.shape)
        ax.add_patch(Rectangle((bx - 0.5, by - 0.5), 1, 1, fill=False,
                               edgecolor=style.COLOURS["best"], lw=2.2))
    if annotate:
        mid = (norm[1] + norm[2]) / 2
        span = (norm[2] - norm[1]) or 1.0
        for (r, c), v in np.ndenumerate(table * scale):
            if np.isfinite(v):
                dark = abs(v - mid) > 0.35 * span
                ax.text(c, r, f"{v:.3g}", ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
    return im


def _colour_norm(grid: Grid, data: np.ndarray, scale: float) -> tuple[str, float, float]:
    finite = data[np.isfinite(data)] * scale
    if not finite.size:
        return style.SEQUENTIAL, 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    if grid.metric in ("total_return", "cagr", "sharpe", "sortino") and lo < 0 < hi:
        bound = max(-lo, hi)
        return style.DIVERGING, -bound, bound
    cmap = style.SEQUENTIAL + ("_r" if smaller_is_better(grid.metric) else "")
    return cmap, lo, hi if hi > lo else lo + 1.0


def draw_mean_heatmap(fig, run: BacktestRun, grid: Grid, x: int, y: int) -> None:
    """The metric averaged over symbols, over parameters x and y."""
    label, scale = style.metric_label(grid.metric, run.quote)
    table = project(grid, grid.mean(), x, y)
    norm = _colour_norm(grid, table, scale)
    ax = fig.add_subplot()
    others = [n for k, n in enumerate(grid.names) if k not in (x, y)]
    note = f"; {', '.join(others)} at their best per cell" if others else ""
    im = _heatmap(ax, grid, table, x, y, scale, norm,
                  f"{label}: mean over {len(grid.symbols)} symbols, {run.job.strategy}, "
                  f"{run.period()}{note}; black box: best cell", table.size <= MAX_ANNOTATED)
    fig.colorbar(im, ax=ax, label=label)


def draw_symbol_heatmaps(fig, run: BacktestRun, grid: Grid, x: int, y: int) -> None:
    """One heatmap per symbol on one colour scale."""
    label, scale = style.metric_label(grid.metric, run.quote)
    tables = [project(grid, grid.cube[s], x, y) for s in range(len(grid.symbols))]
    norm = _colour_norm(grid, np.array(tables), scale)
    axes, cols, bottom = style.panel_grid(fig, len(tables))
    fig.suptitle(f"{label} per symbol over {grid.names[x]} and {grid.names[y]}, "
                 f"{run.job.strategy}, {run.period()}\none colour scale for all symbols; "
                 "black box: each symbol's best cell")
    im = None
    cells = tables[0].size * len(tables)
    for k, (symbol, table) in enumerate(zip(grid.symbols, tables)):
        ax = axes.ravel()[k]
        im = _heatmap(ax, grid, table, x, y, scale, norm, symbol, cells <= MAX_ANNOTATED)
        if k % cols:
            ax.set_ylabel("")
        if ax not in bottom:
            ax.set_xlabel("")
    fig.colorbar(im, ax=axes.ravel().tolist(), label=label, shrink=0.8)


def draw_line(fig, run: BacktestRun, grid: Grid) -> None:
    """One varying parameter: the metric over it, per symbol and the mean."""
    label, scale = style.metric_label(grid.metric, run.quote)
    ax = fig.add_subplot()
    xs = list(grid.values[0])
    for s, symbol in enumerate(grid.symbols):
        ax.plot(xs, grid.cube[s] * scale, marker="o", lw=1.0, ms=3, label=symbol)
    ax.plot(xs, grid.mean() * scale, color="black", lw=2.4, label="mean over symbols")
    ax.set_xlabel(f"{grid.names[0]} (parameter value)")
    ax.set_ylabel(label)
    ax.set_title(f"{label} over {grid.names[0]}, {run.job.strategy}, {run.period()}")
    ax.legend(loc="best", ncols=2)


def draw_robustness(fig, run: BacktestRun, grid: Grid) -> None:
    """The metric along each varying parameter through the best mean cell."""
    label, scale = style.metric_label(grid.metric, run.quote)
    mean = grid.mean()
    score, best = robustness(grid, mean)
    shown = sorted(range(len(grid.names)), key=lambda k: (-len(grid.values[k]), k))[:4]
    shown.sort()
    axes = fig.subplots(1, len(shown), squeeze=False, sharey=True)[0]
    where = ", ".join(f"{n}={_format_value(grid.values[k][best[k]])}" for k, n in enumerate(grid.names))
    verdict = ("n/a (no cell stands out)" if not math.isfinite(score) else
               f"{'a plateau' if score >= PLATEAU else 'a spike'}: the cells around it score "
               f"{score * 100:.0f} % of the way from the worst cell to it")
    fig.suptitle(f"Robustness of the best mean cell ({where}): {verdict}\n"
                 f"{label} when one parameter moves and the others stay, {run.period()}")
    for ax, k in zip(axes, shown):
        xs = np.arange(len(grid.values[k]))
        index = list(best)
        index[k] = slice(None)
        for s in range(len(grid.symbols)):
            ax.plot(xs, grid.cube[(s, *index)] * scale, color=style.COLOURS["symbol"], lw=0.9,
                    marker="o", ms=2.5, label="each symbol" if s == 0 else None)
        ax.plot(xs, mean[tuple(index)] * scale, color=style.COLOURS["mean"], lw=2.4, marker="o",
                ms=4, label="mean over symbols")
        ax.axvline(best[k], color=style.COLOURS["best"], ls="--", lw=1.0, label="best mean cell")
        ax.set_xticks(xs, [_format_value(v) for v in grid.values[k]])
        ax.set_xlabel(f"{grid.names[k]} (parameter value)")
        ax.set_title(f"{grid.names[k]} moves")
    axes[0].set_ylabel(label)
    axes[0].legend(loc="best")


def draw_top_table(fig, run: BacktestRun, top: int) -> None:
    """The best units by the job's ranking metric."""
    from binance_cluster.backtest.driver import rank_entries

    metric = run.job.rank_by
    units = run.summary["units"]
    ranked = rank_entries(units, metric)[:top]
    names = [metric] + [m for m in backtest.PORTFOLIO_COLUMNS if m != metric]
    label = {m: style.METRICS.get(m, (m,))[0] for m in names}
    header = ["#", "symbol", "parameters"] + [label[m] for m in names]
    rows = []
    for pos, i in enumerate(ranked, start=1):
        u = units[i]
        params = " ".join(f"{k}={_format_value(v)}" for k, v in u["params"].items())
        rows.append([str(pos), u["symbol"], params] + backtest.metric_cells(u["metrics"], names))
    failed = sum(1 for u in units if u.get("error"))
    style.table(fig.add_subplot(), header, rows,
                f"Top {len(rows)} of {len(units)} results by {label[metric]}, {run.job.strategy}, "
                f"{run.period()}" + (f" ({failed} failed)" if failed else ""), highlight=0)


def build(directory, options: ReportOptions) -> Report:
    """The report of a sweep in `directory`."""
    run = load_backtest(directory)
    metric = options.metric or run.job.rank_by
    grid = metric_grid(run, metric)
    label = style.metric_label(metric, run.quote)[0]
    heading = label[:1].upper() + label[1:]
    pair = _axes_pair(grid, options)
    figures = []
    if pair is not None:
        x, y = pair
        figures += [
            FigureSpec("heatmap", f"{heading}: mean over symbols",
                       f"The sweep's {label} for each pair of {grid.names[x]} and {grid.names[y]} "
                       "values, averaged over the symbols; the black box marks the best cell. "
                       "With more varying parameters, each cell shows the best over the others.",
                       "wide", partial(draw_mean_heatmap, run=run, grid=grid, x=x, y=y)),
            FigureSpec("heatmap-symbols", f"{heading} per symbol",
                       "The same heatmap for each symbol on one colour scale: good parameters "
                       "that hold on several symbols are more trustworthy than one symbol's best.",
                       "tall", partial(draw_symbol_heatmaps, run=run, grid=grid, x=x, y=y)),
        ]
    elif grid.names:
        figures.append(FigureSpec("heatmap", f"{heading} over {grid.names[0]}",
                                  f"The sweep's {label} for each value of {grid.names[0]}, per "
                                  "symbol and averaged over them.", "wide",
                                  partial(draw_line, run=run, grid=grid)))
    if grid.names:
        figures.append(FigureSpec(
            "robustness", "Robustness around the best parameters",
            "Through the best cell of the mean over symbols, the metric as one parameter moves "
            "while the others stay. Flat lines around the best value mean a plateau (nearby "
            "parameters do about as well); a lone peak means a spike that is likely luck. The "
            "score: where the mean of the cells one step around the best stands between the "
            f"worst cell (0 %) and the best (100 %); {PLATEAU * 100:.0f} % or more is called a "
            "plateau.", "wide",
            partial(draw_robustness, run=run, grid=grid)))
    figures.append(FigureSpec("top", "Best results",
                              f"The {options.top} best symbol and parameter combinations by the "
                              f"job's rank_by ({run.job.rank_by}), with their other metrics.",
                              "tall", partial(draw_top_table, run=run, top=options.top)))
    curves = [c for c in run.curves if c[0].startswith("top/")]
    if curves:
        name, times, equity, attrs = curves[0]
        symbol, pid = attrs.get("symbol"), attrs.get("params_id")
        params = " ".join(f"{k}={_format_value(v)}" for k, v in (attrs.get("params") or {}).items())
        figures += [
            FigureSpec("equity", f"Equity of the best result ({symbol} {params})",
                       "The best result's value at every bar close against buying the symbol at "
                       "the first bar and holding it (no fees); below, its drawdown.", "tall",
                       partial(backtest.draw_equity, run=run, times_ms=times, equity=equity,
                               symbols=[symbol], title=f"Equity of the best result: {symbol} "
                               f"{run.job.strategy} {params}, {run.period()}")),
            FigureSpec("top-equity", f"Equity of the {len(curves)} best results",
                       "The return over time of each of the best results (the job's `top`).",
                       "tall", partial(backtest.draw_curves, run=run, curves=curves,
                                       title=f"Return of the {len(curves)} best results by "
                                             f"{run.job.rank_by}, {run.period()}")),
            FigureSpec("price-best", f"Price and trades of the best result ({symbol})",
                       backtest.price_caption(run), "tall",
                       partial(backtest.draw_price, run=run, symbol=symbol,
                               mask=run.real(symbol, pid), label=f"best result, {params}")),
            FigureSpec("trade-returns", "Distribution of the best result's trade returns",
                       "Each trade's profit or loss after both fees, as a percentage of what the "
                       "entry cost; wins green, losses red; on the right, how trades ended.",
                       "wide", partial(backtest.draw_trade_returns, run=run, mask=run.real(symbol, pid),
                                       title=f"Trade returns of the best result ({symbol} {params}), "
                                             f"{run.period()}")),
        ]
    score, best = robustness(grid, grid.mean()) if grid.names else (math.nan, ())
    best_text = ", ".join(f"{n}={_format_value(grid.values[k][best[k]])}" for k, n in enumerate(grid.names))
    facts = [("strategy", run.job.strategy), ("mode", "sweep"),
             ("symbols", ", ".join(grid.symbols)), ("interval", run.job.interval),
             ("period", run.period()),
             ("grid", " x ".join(f"{n} ({len(v)})" for n, v in zip(grid.names, grid.values))
              + f" = {run.job.n_combinations} parameter sets" if grid.names else "one parameter set"),
             ("metric", label)]
    if best_text:
        facts.append(("best mean cell", f"{best_text} (robustness {score * 100:.0f} %)"
                      if math.isfinite(score) else best_text))
    return Report(f"Sweep report: {run.job.strategy}", facts, figures)
