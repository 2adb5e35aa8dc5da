"""Figures of a backtest: equity and drawdown against buy-and-hold, per-symbol P&L, prices with
trades, trade returns, monthly returns, exposure and the metrics table.

`build` makes the report of a portfolio run; the drawing functions are shared with `sweep`,
which draws its best units with them.
"""

from __future__ import annotations

import math
import textwrap
from functools import partial

import matplotlib.dates as mdates
import numpy as np

from binance_cluster.report import style
from binance_cluster.report.inputs import BacktestRun, closes_at, load_backtest, run_mode
from binance_cluster.report.spec import FigureSpec, Report, ReportOptions
from binance_cluster.types import format_time_ms, interval_ms

KIND = "backtest"
DAY_MS = 86_400_000
ZOOM_MS = 3 * DAY_MS                 # the zoomed price panel shows three days ...
ZOOM_CANDLES = 150                   # ... in at most this many candles
ZOOM_INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def applies(directory) -> bool:
    """A portfolio backtest's output directory."""
    return run_mode(directory) == "portfolio"


# -- the portfolio report --------------------------------------------------------------------

def build(directory, options: ReportOptions) -> Report:
    """The report of a portfolio run in `directory`."""
    run = load_backtest(directory)
    name, times, equity, _ = next((c for c in run.curves if c[0] == "portfolio"),
                                  (None, np.zeros(0, np.int64), np.zeros(0), {}))
    symbols = list(run.summary.get("portfolio", {}).get("symbols") or run.job.symbols)
    units = [u for u in run.summary["units"] if u.get("metrics")]
    traded = [u for u in units if u.get("portfolio_trades")]
    ranked = sorted(traded, key=lambda u: (-(u.get("portfolio_pnl") or 0.0), symbols.index(u["symbol"])
                                           if u["symbol"] in symbols else 0))
    period = run.period()
    initial = run.job.risk.initial_cash
    figures = [
        FigureSpec("equity", "Portfolio equity and drawdown",
                   "The portfolio's value at every bar close (cash plus open positions at the "
                   "close) against buying the same symbols in equal parts at the first bar and "
                   "holding them (no fees). Below: how far the portfolio is under its previous "
                   "high.", "tall",
                   partial(draw_equity, run=run, times_ms=times, equity=equity, symbols=symbols,
                           title=f"Portfolio equity: {run.job.strategy} on {len(symbols)} symbols, "
                                 f"{period}")),
        FigureSpec("symbols", "Profit and loss per symbol",
                   "Each traded symbol's realised profit or loss inside the portfolio, after "
                   "fees, added up trade by trade at the exit times; symbols without trades are "
                   "named in the title.", "tall",
                   partial(draw_symbol_pnl, run=run, symbols=symbols, period=period)),
    ]
    picks = []
    if ranked:
        picks.append(("best", ranked[0]["symbol"]))
        if len(ranked) > 1:
            picks.append(("worst", ranked[-1]["symbol"]))
    for which, symbol in picks:
        figures.append(FigureSpec(
            f"price-{which}", f"Price and trades of the {which} symbol ({symbol})",
            price_caption(run), "tall",
            partial(draw_price, run=run, symbol=symbol, mask=run.real(symbol),
                    label=f"{which} P&L in the portfolio")))
    figures += [
        FigureSpec("trade-returns", "Distribution of trade returns",
                   "Each trade's profit or loss after both fees, as a percentage of what the "
                   "entry cost; wins green, losses red; on the right, how trades ended.", "wide",
                   partial(draw_trade_returns, run=run, mask=run.real(),
                           title=f"Trade returns of the portfolio, {period}")),
        FigureSpec("monthly-returns", "Monthly returns",
                   "The portfolio's return in each calendar month (UTC), from the last close of "
                   "the month before (or the start) to the last close of the month; the first "
                   "and last months may be partial.", "wide",
                   partial(draw_monthly, run=run, times_ms=times, equity=equity, initial=initial)),
        FigureSpec("exposure", "Exposure over time",
                   "Top: the share of the portfolio's value held in positions at each close. "
                   "Bottom: how many positions are open, against the job's max_positions.",
                   "wide", partial(draw_exposure, run=run, times_ms=times, equity=equity)),
        FigureSpec("metrics", "Metrics per symbol",
                   "The portfolio's metrics, then each symbol traded alone with the same "
                   "parameters, and its trades and realised profit inside the portfolio.", "tall",
                   partial(draw_portfolio_table, run=run, symbols=symbols)),
    ]
    params = " ".join(f"{k}={v}" for k, v in (run.summary["units"][0]["params"] if run.summary["units"] else {}).items())
    metrics = (run.summary.get("portfolio") or {}).get("metrics") or {}
    facts = [("strategy", f"{run.job.strategy} ({params})"), ("mode", "portfolio"),
             ("symbols", ", ".join(symbols)), ("interval", run.job.interval), ("period", period),
             ("initial cash", f"{initial:,.2f} {run.quote}"),
             ("total return", style.signed_percent(metrics.get("total_return"), 2)),
             ("max drawdown", style.signed_percent(-metrics.get("max_drawdown", math.nan), 2)),
             ("Sharpe", style.number(metrics.get("sharpe"))),
             ("trades", style.number(metrics.get("trades")))]
    return Report(f"Backtest report: {run.job.strategy} portfolio", facts, figures)


def price_caption(run: BacktestRun) -> str:
    """What the price figures show, with the stop and target of this job."""
    risk = run.job.risk
    levels = []
    if risk.stop_loss is not None:
        levels.append(f"the stop loss {risk.stop_loss * 100:g} % under the entry (red dashes)")
    if risk.take_profit is not None:
        levels.append(f"the take profit {risk.take_profit * 100:g} % above it (green dashes)")
    text = ("Top: close prices over the whole period, buys (green triangles up) and sells (red "
            "triangles down); the yellow band is the zoomed window. Bottom: candlesticks of the "
            "three days around the largest trade, each trade joined from entry to exit")
    text += (", with " + " and ".join(levels) + "." if levels else ".")
    if risk.trailing_stop is not None:
        text += " The trailing stop follows the highs and is not drawn."
    return text


# -- drawing ---------------------------------------------------------------------------------

def buy_and_hold(run: BacktestRun, symbols: list[str], times_ms: np.ndarray,
                 initial: float) -> np.ndarray | None:
    """Equal parts of `initial` bought at each symbol's first close in `times_ms`, held (no fees)."""
    parts = []
    for s in symbols:
        candles = run.prices(s)
        if candles is None or len(candles) == 0:
            return None
        c = closes_at(candles, times_ms)
        valid = np.flatnonzero(np.isfinite(c))
        if not len(valid):
            return None
        ratio = np.ones(len(times_ms))
        ratio[valid[0]:] = c[valid[0]:] / c[valid[0]]
        parts.append(ratio)
    return initial / len(parts) * np.sum(parts, axis=0) if parts else None


def draw_equity(fig, run: BacktestRun, times_ms: np.ndarray, equity: np.ndarray,
                symbols: list[str], title: str) -> None:
    """Equity (and buy-and-hold of `symbols`) above, drawdown below."""
    if len(times_ms) == 0:
        style.no_data(fig.add_subplot(), "no equity curve in results.h5")
        return
    initial = run.job.risk.initial_cash
    grid = fig.add_gridspec(2, 1, height_ratios=[3, 1])
    ax = fig.add_subplot(grid[0])
    low = fig.add_subplot(grid[1], sharex=ax)
    t = style.times(times_ms)
    ax.plot(*style.envelope(t, equity), color=style.COLOURS["equity"], lw=1.4,
            label=f"strategy: {style.signed_percent(equity[-1] / initial - 1)}")
    hold = buy_and_hold(run, symbols, times_ms, initial)
    if hold is not None:
        what = symbols[0] if len(symbols) == 1 else f"{len(symbols)} symbols in equal parts"
        ax.plot(*style.envelope(t, hold), color=style.COLOURS["buy_hold"], lw=1.0,
                label=f"buy and hold {what}: {style.signed_percent(hold[-1] / initial - 1)}")
    ax.axhline(initial, color="#555555", lw=0.8, ls=":", label=f"initial cash {initial:,.0f}")
    ax.set_ylabel(f"equity ({run.quote})")
    style.money_axis(ax)
    ax.set_title(title)
    ax.legend(loc="best")
    style.date_axis(ax, show_labels=False)
    dd = (equity / np.maximum.accumulate(equity) - 1.0) * 100.0
    td, ddd = style.envelope(t, dd)
    low.fill_between(td, ddd, 0.0, color=style.COLOURS["drawdown"], alpha=0.3, lw=0)
    low.plot(td, ddd, color=style.COLOURS["drawdown"], lw=0.8)
    k = int(np.argmin(dd))
    low.plot(t[k], dd[k], "o", color=style.COLOURS["drawdown"], ms=4)
    low.text(0.01, 0.06, f"max drawdown {dd[k]:.1f} % at {format_time_ms(int(times_ms[k]))} UTC",
             transform=low.transAxes, fontsize=9, va="bottom", ha="left",
             bbox=dict(boxstyle="round", facecolor="white", edgecolor="#cccccc", alpha=0.9))
    low.set_ylabel("drawdown (%)")
    low.set_ylim(min(dd.min() * 1.15, -0.5), 0.5)
    style.percent_axis(low)
    low.set_xlabel("time (UTC)")
    style.date_axis(low)


def draw_symbol_pnl(fig, run: BacktestRun, symbols: list[str], period: str) -> None:
    """Small multiples: each traded symbol's realised P&L in the portfolio over time."""
    first, last = run.span()
    t = run.trades
    traded = [s for s in symbols if run.real(s).any()]
    idle = [s for s in symbols if s not in traded]
    title = f"Realised profit and loss per symbol in the portfolio ({run.quote}, after fees), {period}"
    if idle:
        title += "\n" + "\n".join(textwrap.wrap(f"no trades: {', '.join(idle)}", 100))
    fig.suptitle(title)
    if not traded:
        style.no_data(fig.add_subplot(), "no symbol traded")
        return
    axes, cols, bottom = style.panel_grid(fig, len(traded))
    for k, symbol in enumerate(traded):
        ax = axes.ravel()[k]
        mask = run.real(symbol)
        order = np.argsort(t["exit_time_ms"][mask], kind="stable")
        exits = t["exit_time_ms"][mask][order]
        cum = np.cumsum(t["pnl"][mask][order])
        xs = np.concatenate([[first], exits, [last]]).astype(np.int64)
        ys = np.concatenate([[0.0], cum, [cum[-1]]])
        colour = style.COLOURS["up"] if ys[-1] >= 0 else style.COLOURS["down"]
        ax.step(style.times(xs), ys, where="post", color=colour, lw=1.2)
        ax.fill_between(style.times(xs), ys, 0.0, step="post", color=colour, alpha=0.15, lw=0)
        ax.axhline(0.0, color="#555555", lw=0.6)
        ax.set_title(f"{symbol}: {ys[-1]:+,.2f} {run.quote}, {style.count(int(mask.sum()), 'trade')}",
                     fontsize=9.5)
        if k % cols == 0:
            ax.set_ylabel(f"P&L ({run.quote})")
        style.panel_date_axis(ax, first, last)
    for ax in bottom:
        ax.set_xlabel("time (UTC)")


def draw_curves(fig, run: BacktestRun, curves: list[tuple], title: str) -> None:
    """Small multiples of equity curves (sweep: the best units), as returns in percent."""
    if not curves:
        style.no_data(fig.add_subplot(), "no equity curves in results.h5")
        return
    axes, cols, bottom = style.panel_grid(fig, len(curves))
    fig.suptitle(title)
    initial = run.job.risk.initial_cash
    for k, (name, times_ms, equity, attrs) in enumerate(curves):
        ax = axes.ravel()[k]
        r = (equity / initial - 1.0) * 100.0
        colour = style.COLOURS["up"] if r[-1] >= 0 else style.COLOURS["down"]
        ax.plot(*style.envelope(style.times(times_ms), r), color=colour, lw=1.0)
        ax.axhline(0.0, color="#555555", lw=0.6)
        params = " ".join(f"{p}={v}" for p, v in (attrs.get("params") or {}).items())
        ax.set_title(f"#{attrs.get('rank', k + 1)} {attrs.get('symbol', name)} {params}: "
                     f"{r[-1]:+.1f} %", fontsize=9.5)
        if k % cols == 0:
            ax.set_ylabel("return (%)")
        style.percent_axis(ax)
        style.panel_date_axis(ax, int(times_ms[0]), int(times_ms[-1]))
    for ax in bottom:
        ax.set_xlabel("time (UTC)")


def zoom_interval(job_interval: str, window_ms: int) -> str:
    """The shortest interval (a multiple of the job's) that shows `window_ms` in few candles."""
    base = interval_ms(job_interval)
    for iv in ZOOM_INTERVALS:
        step = interval_ms(iv)
        if step >= base and step % base == 0 and window_ms / step <= ZOOM_CANDLES:
            return iv
    return job_interval


def _candlesticks(ax, candles, step_ms: int) -> None:
    """Wicks as one line collection and bodies as one polygon collection per colour."""
    from matplotlib.collections import PolyCollection

    left = mdates.date2num(style.times(candles.open_time + int(step_ms * 0.15)))
    right = mdates.date2num(style.times(candles.open_time + int(step_ms * 0.85)))
    centre = (left + right) / 2
    up = candles.close >= candles.open
    for sel, colour in ((up, style.COLOURS["up"]), (~up, style.COLOURS["down"])):
        ax.vlines(centre[sel], candles.low[sel], candles.high[sel], color=colour, lw=0.7)
        bottom = np.minimum(candles.open[sel], candles.close[sel])
        top = np.maximum(candles.open[sel], candles.close[sel])
        l, r = left[sel], right[sel]
        boxes = np.stack([np.column_stack([l, bottom]), np.column_stack([r, bottom]),
                          np.column_stack([r, top]), np.column_stack([l, top])], axis=1)
        ax.add_collection(PolyCollection(boxes, facecolors=colour, edgecolors=colour, linewidths=0.5))
    ax.autoscale_view()


def draw_price(fig, run: BacktestRun, symbol: str, mask: np.ndarray, label: str) -> None:
    """Close prices with the trades, then a candlestick zoom on the largest trade."""
    candles = run.prices(symbol)
    if candles is None:
        style.no_data(fig.add_subplot(), f"prices of {symbol} unavailable: "
                                    f"{run.price_problems.get(symbol, 'not in the store')}")
        return
    t = run.trades
    entry_t, exit_t = t["entry_time_ms"][mask], t["exit_time_ms"][mask]
    entry_p, exit_p, pnl = t["entry_price"][mask], t["exit_price"][mask], t["pnl"][mask]
    grid = fig.add_gridspec(2, 1, height_ratios=[1, 1.3])
    ax = fig.add_subplot(grid[0])
    zoom = fig.add_subplot(grid[1])
    first, last = int(candles.open_time[0]), int(candles.open_time[-1])
    ax.plot(*style.envelope(style.times(candles.open_time), candles.close),
            color=style.COLOURS["price"], lw=0.7, label="close")
    ax.scatter(style.times(entry_t), entry_p, marker="^", s=18, color=style.COLOURS["entry"],
               label=f"buy ({len(entry_t)})", zorder=3)
    ax.scatter(style.times(exit_t), exit_p, marker="v", s=18, color=style.COLOURS["exit"],
               label="sell", zorder=3)
    ax.set_title(f"{symbol} ({label}): close price and {style.count(len(entry_t), 'trade')}, "
                 f"{format_time_ms(first)} to {format_time_ms(last)} UTC, "
                 f"P&L {pnl.sum():+,.2f} {run.quote}")
    ax.set_ylabel(f"price ({run.quote})")
    ax.legend(loc="best")
    style.date_axis(ax)

    if len(pnl):
        k = int(np.argmax(np.abs(pnl)))
        centre = (int(entry_t[k]) + int(exit_t[k])) // 2
    else:
        centre = (first + last) // 2
    iv = zoom_interval(run.job.interval, min(ZOOM_MS, last - first + interval_ms(run.job.interval)))
    step = interval_ms(iv)
    lo = max(first - first % step, centre - ZOOM_MS // 2)
    lo -= lo % step                      # the window starts on a candle of the zoom interval
    hi = min(last + interval_ms(run.job.interval), lo + ZOOM_MS)
    ax.axvspan(style.times(np.array([lo]))[0], style.times(np.array([hi]))[0],
               color=style.COLOURS["zoom"], alpha=0.25, lw=0)
    i, j = np.searchsorted(candles.open_time, [lo, hi])
    window = candles.slice(int(i), int(j))
    if iv != run.job.interval:
        from binance_cluster.candles.resample import resample

        window = resample(window, iv, run.job.interval, closed_until=int(window.open_time[-1]) + step)
    _candlesticks(zoom, window, step)
    inside = (exit_t >= lo) & (entry_t < hi)
    risk = run.job.risk
    for n in np.flatnonzero(inside):
        xs = style.times(np.array([entry_t[n], exit_t[n]]))
        colour = style.COLOURS["up"] if pnl[n] > 0 else style.COLOURS["down"]
        zoom.plot(xs, [entry_p[n], exit_p[n]], color=colour, lw=1.2, ls="-", alpha=0.8)
        if risk.stop_loss is not None:
            zoom.hlines(entry_p[n] * (1 - risk.stop_loss), xs[0], xs[1], colors=style.COLOURS["stop"],
                        linestyles="--", lw=1.0)
        if risk.take_profit is not None:
            zoom.hlines(entry_p[n] * (1 + risk.take_profit), xs[0], xs[1],
                        colors=style.COLOURS["target"], linestyles="--", lw=1.0)
    zoom.scatter(style.times(entry_t[inside]), entry_p[inside], marker="^", s=40,
                 color=style.COLOURS["entry"], edgecolor="black", lw=0.5, zorder=4, label="buy")
    zoom.scatter(style.times(exit_t[inside]), exit_p[inside], marker="v", s=40,
                 color=style.COLOURS["exit"], edgecolor="black", lw=0.5, zorder=4, label="sell")
    handles, labels = zoom.get_legend_handles_labels()
    from matplotlib.lines import Line2D

    if risk.stop_loss is not None:
        handles.append(Line2D([], [], color=style.COLOURS["stop"], ls="--"))
        labels.append(f"stop loss ({risk.stop_loss * 100:g} % under entry)")
    if risk.take_profit is not None:
        handles.append(Line2D([], [], color=style.COLOURS["target"], ls="--"))
        labels.append(f"take profit ({risk.take_profit * 100:g} % above entry)")
    zoom.legend(handles, labels, loc="upper left", ncols=2)
    what = (f"largest trade {pnl[k]:+,.2f} {run.quote} ({format_time_ms(int(entry_t[k]))[5:]} to "
            f"{format_time_ms(int(exit_t[k]))[5:]})") if len(pnl) else "no trades"
    zoom.set_title(f"Zoom, {iv} candles, {format_time_ms(lo)} to {format_time_ms(hi)[5:]} UTC: {what}")
    zoom.set_xlim(style.times(np.array([lo]))[0], style.times(np.array([hi]))[0])
    zoom.set_ylabel(f"price ({run.quote})")
    zoom.set_xlabel("time (UTC)")
    style.date_axis(zoom)


def trade_returns(run: BacktestRun, mask: np.ndarray) -> np.ndarray:
    """Each trade's P&L after fees as a percentage of its entry cost."""
    t = run.trades
    cost = t["entry_price"][mask] * t["quantity"][mask]
    return np.where(cost > 0, t["pnl"][mask] / np.where(cost > 0, cost, 1.0) * 100.0, np.nan)


def draw_trade_returns(fig, run: BacktestRun, mask: np.ndarray, title: str) -> None:
    """Histogram of trade returns (wins green, losses red) and the exits by reason."""
    r = trade_returns(run, mask)
    r = r[np.isfinite(r)]
    if not len(r):
        style.no_data(fig.add_subplot(), "no trades")
        return
    grid = fig.add_gridspec(1, 2, width_ratios=[3, 1])
    ax = fig.add_subplot(grid[0])
    bars = fig.add_subplot(grid[1])
    edges = np.histogram_bin_edges(r, bins=min(60, max(10, int(np.sqrt(len(r)) * 2))))
    ax.hist(r[r > 0], bins=edges, color=style.COLOURS["up"], alpha=0.85, label=f"wins ({int((r > 0).sum())})")
    ax.hist(r[r <= 0], bins=edges, color=style.COLOURS["down"], alpha=0.85,
            label=f"losses and break-even ({int((r <= 0).sum())})")
    ax.axvline(float(np.mean(r)), color="black", lw=1.0, ls="--", label=f"mean {np.mean(r):+.2f} %")
    ax.axvline(float(np.median(r)), color="black", lw=1.0, ls=":", label=f"median {np.median(r):+.2f} %")
    ax.set_xlabel("trade return after fees (% of the entry cost)")
    ax.set_ylabel("trades (count)")
    ax.set_title(title)
    pnl = run.trades["pnl"][mask]
    gains, losses = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    stats = (f"{style.count(len(r), 'trade')}, win rate {(r > 0).mean() * 100:.1f} %\n"
             f"best {r.max():+.2f} %, worst {r.min():+.2f} %\n"
             f"profit factor {gains / losses if losses > 0 else math.inf:.2f}")
    ax.legend(loc="best", title=stats, alignment="left")
    reasons = run.trades["exit_reason"][mask] if "exit_reason" in run.trades else np.array([])
    names, counts = np.unique(reasons, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    drawn = bars.barh([str(n).replace("_", " ") for n in names[order]][::-1], counts[order][::-1],
                      color=style.COLOURS["exposure"])
    bars.bar_label(drawn, padding=3, fontsize=9)
    bars.set_xlim(0, counts.max() * 1.2 if len(counts) else 1)
    bars.set_xlabel("trades (count)")
    bars.set_ylabel("exit (reason)")
    bars.set_title("exits by reason")
    bars.grid(axis="y", visible=False)


def monthly_returns(times_ms: np.ndarray, equity: np.ndarray, initial: float
                    ) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Years, a (years x 12) array of monthly returns in percent (NaN: no bar that month) and
    a mask of the months the bars do not cover completely."""
    stamps = times_ms.astype("datetime64[ms]")
    months = stamps.astype("datetime64[M]").astype(np.int64)  # months since 1970-01
    years = sorted({int(m // 12 + 1970) for m in np.unique(months)})
    table = np.full((len(years), 12), np.nan)
    partial = np.zeros((len(years), 12), bool)
    step = int(np.median(np.diff(times_ms))) if len(times_ms) > 1 else 0
    before = initial
    for m in np.unique(months):
        rows = np.flatnonzero(months == m)
        y, c = years.index(int(m // 12 + 1970)), int(m % 12)
        table[y, c] = (equity[rows[-1]] / before - 1.0) * 100.0
        begin = np.datetime64(int(m), "M").astype("datetime64[ms]").astype(np.int64)
        end = np.datetime64(int(m) + 1, "M").astype("datetime64[ms]").astype(np.int64)
        partial[y, c] = times_ms[rows[0]] > begin or times_ms[rows[-1]] + step < end
        before = equity[rows[-1]]
    return years, table, partial


def draw_monthly(fig, run: BacktestRun, times_ms: np.ndarray, equity: np.ndarray,
                 initial: float) -> None:
    """Heatmap of monthly returns: years down, months across, the year's return on the right."""
    if len(times_ms) == 0:
        style.no_data(fig.add_subplot(), "no equity curve in results.h5")
        return
    years, table, partial = monthly_returns(times_ms, equity, initial)
    yearly = np.array([np.nanprod(1 + row / 100.0) * 100.0 - 100.0 for row in table])
    columns = list(range(12))
    if len(years) == 1:  # one calendar year: only the months the run covers
        filled = np.flatnonzero(np.isfinite(table[0]))
        columns = list(range(int(filled[0]), int(filled[-1]) + 1))
    values = np.column_stack([table[:, columns], yearly])
    partial = np.column_stack([partial[:, columns], partial.any(axis=1)])
    ax = fig.add_subplot()
    bound = max(float(np.nanmax(np.abs(values))), 0.1)
    im = ax.imshow(values, cmap=style.DIVERGING, vmin=-bound, vmax=bound, aspect="auto")
    for (y, m), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(m, y, f"{v:+.1f} %" + ("\n(partial)" if partial[y, m] else ""), ha="center",
                    va="center", fontsize=11, color="black" if abs(v) < 0.6 * bound else "white")
    ax.set_xticks(range(len(columns) + 1), [*(MONTHS[c] for c in columns), "year"])
    ax.set_yticks(range(len(years)), [str(y) for y in years])
    ax.axvline(len(columns) - 0.5, color="white", lw=4)
    ax.grid(False)
    ax.set_xlabel("month (UTC)")
    ax.set_ylabel("year (UTC)")
    ax.set_title(f"Monthly returns of the portfolio (%), {run.period()}")
    fig.colorbar(im, ax=ax, label="return (%)", shrink=0.9)


def positions_over(run: BacktestRun, times_ms: np.ndarray, mask: np.ndarray,
                   prices: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Open positions at each bar's close, and their value at the close (None without prices).

    A position bought at the open of bar i and sold at the open of bar j is held at the closes
    of bars i .. j-1.
    """
    t = run.trades
    count = np.zeros(len(times_ms) + 1, np.int64)
    value = np.zeros(len(times_ms)) if prices else None
    for n in np.flatnonzero(mask):
        i, j = np.searchsorted(times_ms, [t["entry_time_ms"][n], t["exit_time_ms"][n]])
        count[i] += 1
        count[j] -= 1
        if value is not None:
            candles = run.prices(str(t["symbol"][n]))
            if candles is None:
                value = None
                continue
            value[i:j] += t["quantity"][n] * closes_at(candles, times_ms[i:j])
    return np.cumsum(count)[:-1], value


def _buckets(times_ms: np.ndarray) -> tuple[np.ndarray, int, str]:
    """Bucket index of each bar: UTC days for runs of 3 days or more, else hours."""
    span = int(times_ms[-1] - times_ms[0]) if len(times_ms) else 0
    size, name = (DAY_MS, "UTC day") if span >= 3 * DAY_MS else (3_600_000, "UTC hour")
    return times_ms // size, size, name


def draw_exposure(fig, run: BacktestRun, times_ms: np.ndarray, equity: np.ndarray) -> None:
    """Share of equity in positions (top) and the number of open positions (bottom)."""
    if len(times_ms) == 0:
        style.no_data(fig.add_subplot(), "no equity curve in results.h5")
        return
    count, value = positions_over(run, times_ms, run.real())
    grid = fig.add_gridspec(2, 1, height_ratios=[1.4, 1])
    ax = fig.add_subplot(grid[0])
    low = fig.add_subplot(grid[1], sharex=ax)
    t = style.times(times_ms)
    bucket, size, name = _buckets(times_ms)
    keys, first = np.unique(bucket, return_index=True)
    starts = style.times(keys * size)
    width = np.timedelta64(int(size * 0.8), "ms")
    centres = starts + np.timedelta64(size // 2, "ms")
    if value is not None:
        share = value / equity * 100.0
        ax.fill_between(*style.envelope(t, share), 0.0, color=style.COLOURS["exposure"], alpha=0.18,
                        lw=0, step="post", label="at each close")
        means = np.add.reduceat(share, first) / np.diff(np.append(first, len(share)))
        ax.step(np.append(starts, starts[-1] + np.timedelta64(size, "ms")), np.append(means, means[-1]),
                where="post", color=style.COLOURS["exposure"], lw=1.6, label=f"mean per {name}")
        ax.set_title(f"Exposure: share of equity in positions (mean {share.mean():.1f} %), "
                     f"{run.period()}")
        ax.set_ylim(0, min(100.0, max(5.0, float(share.max()) * 1.15)) if share.max() <= 100.0
                    else float(share.max()) * 1.05)
        ax.legend(loc="upper right", ncols=2)
    else:
        style.no_data(ax, "prices unavailable: share of equity in positions not drawn")
    ax.set_ylabel("in positions (% of equity)")
    style.percent_axis(ax)
    style.date_axis(ax, show_labels=False)
    held = np.add.reduceat(count.astype(float), first) / np.diff(np.append(first, len(count)))
    low.bar(centres, held, width=width, color=style.COLOURS["exposure"], alpha=0.8,
            label=f"mean open positions per {name}")
    cap = run.job.risk.max_positions
    low.axhline(cap, color="#555555", ls="--", lw=0.8, label=f"max_positions = {cap}")
    low.set_ylim(0, cap * 1.3)
    low.set_ylabel("open positions (count)")
    low.set_xlabel("time (UTC)")
    low.legend(loc="upper right", ncols=2)
    style.date_axis(low)


PORTFOLIO_COLUMNS = ("total_return", "sharpe", "max_drawdown", "trades", "win_rate", "profit_factor")


def metric_cells(metrics: dict | None, names=PORTFOLIO_COLUMNS) -> list[str]:
    """Table cells of the named metrics: fractions as percentages, ratios to 2 decimals."""
    cells = []
    idle = (metrics or {}).get("trades") == 0
    for m in names:
        v = (metrics or {}).get(m)
        if idle and m in ("win_rate", "profit_factor"):
            cells.append("–")          # no trades: no win rate, no profit factor
            continue
        if m in ("total_return", "cagr", "win_rate", "exposure"):
            cells.append(style.signed_percent(v, 2) if m in ("total_return", "cagr")
                         else "n/a" if v is None or not np.isfinite(v) else f"{v * 100:.1f} %")
        elif m == "max_drawdown":
            cells.append("n/a" if v is None or not np.isfinite(v) else f"{v * 100:.2f} %")
        elif m == "trades":
            cells.append(style.number(int(v)) if v is not None and np.isfinite(v) else "n/a")
        else:
            cells.append(style.number(v))
    return cells


def draw_portfolio_table(fig, run: BacktestRun, symbols: list[str]) -> None:
    """The portfolio's metrics, then each symbol alone, with its trades and P&L in the portfolio."""
    ax = fig.add_subplot()
    header = ["", "return", "Sharpe", "max drawdown", "trades", "win rate", "profit factor",
              "trades in portfolio", f"P&L in portfolio ({run.quote})"]
    portfolio = run.summary.get("portfolio") or {}
    rows = [["portfolio"] + metric_cells(portfolio.get("metrics"))
            + [style.number(int(run.real().sum())), style.number(float(run.trades["pnl"][run.real()].sum()))]]
    for u in run.summary["units"]:
        if u.get("error"):
            rows.append([u["symbol"], f"failed: {u['error'].splitlines()[0][:60]}"] + [""] * 7)
            continue
        rows.append([f"{u['symbol']} alone"] + metric_cells(u.get("metrics"))
                    + [style.number(u.get("portfolio_trades")), style.number(u.get("portfolio_pnl"))])
    style.table(ax, header, rows[:40], f"Metrics: the portfolio, and each symbol traded alone "
                f"with the same parameters, {run.period()}", highlight=0)
