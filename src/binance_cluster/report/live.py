"""Figures of a live or paper run from its journal (opened read-only, safe while the loop runs):
equity and positions over time, market fills against the decision price, per-bar latency,
orders, errors and refusals per hour, the win rate by UTC hour with the shifts filter's active
hours, and the positions table.

Everything comes from `live.journal.Journal`'s readers. What the figures assume of the loop:
a decision's `detail["price"]` is the price it was taken at (the close of its bar; decisions
without one have no slippage point); an intent's `bar_ms` is the open time of the bar it was
decided on; fills, bars and intents carry exchange times (the replay clock against the
emulator). A fill belongs to the newest intent of its symbol and side decided at or before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path

import numpy as np

from binance_cluster.report import style
from binance_cluster.report.spec import FigureSpec, Report, ReportOptions
from binance_cluster.types import format_time_ms

KIND = "live"
JOURNAL_NAME = "journal.sqlite"
HOUR_MS = 3_600_000
SQLITE_MAGIC = b"SQLite format 3\x00"


def journal_path(path) -> Path | None:
    """The journal at `path`: the file itself, or a run folder's journal.sqlite (or its one
    *.sqlite file); None when there is none."""
    p = Path(path)
    if p.is_dir():
        found = [p / JOURNAL_NAME] if (p / JOURNAL_NAME).is_file() else sorted(p.glob("*.sqlite"))
        if len(found) != 1:
            return None
        p = found[0]
    if not p.is_file():
        return None
    with open(p, "rb") as fh:
        return p if fh.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC else None


def applies(path) -> bool:
    """A journal file, or a folder holding one."""
    return journal_path(path) is not None


@dataclass
class LiveRun:
    """A journal read once (read-only), with the job beside it when there is one."""

    path: Path
    meta: dict
    bars: list
    fills: list
    intents: list
    decisions: list
    refusals: list
    assets: dict
    positions: dict
    interval_ms: int
    shifts: tuple[bool, float, int]           # (on, minimum win rate, minimum closed trades)
    shifts_source: str
    quote: str = "quote"
    _links: dict = field(default_factory=dict, repr=False)

    def span(self) -> tuple[int, int]:
        """First bar open to last bar close (ms UTC), else the fills' times."""
        if self.bars:
            return self.bars[0].bar_ms, self.bars[-1].close_ms
        times = [f.time_ms for f in self.fills] or [0]
        return min(times), max(times)

    def period(self) -> str:
        first, last = self.span()
        return f"{format_time_ms(first)} to {format_time_ms(last)} UTC"


def _job_beside(path: Path):
    """The job.toml in the journal's folder (None when absent or unreadable)."""
    from binance_cluster.backtest import results
    from binance_cluster.errors import BinanceClusterError

    if not (path.parent / "job.toml").is_file():
        return None
    try:
        return results.read_job(path.parent)
    except BinanceClusterError:
        return None


def load_live(path) -> LiveRun:
    """Read the journal at `path` (file or run folder); NotAJournalError naming it when none."""
    from binance_cluster.engine.simulate import Risk
    from binance_cluster.live.journal import Journal, NotAJournalError
    from binance_cluster.types import interval_ms

    found = journal_path(path)
    if found is None:
        raise NotAJournalError(f"{path}: no journal (a live run folder holds {JOURNAL_NAME})")
    with Journal(found, readonly=True) as j:
        run = dict(meta=j.meta(), bars=j.bars(), fills=j.fills(), intents=j.intents(),
                   decisions=j.decisions(), refusals=j.refusals(), assets=j.assets(),
                   positions=j.positions())
    job = _job_beside(found)
    if job is not None:
        risk, source, step = job.risk, f"{found.parent / 'job.toml'}", interval_ms(job.interval)
    else:
        risk, source = Risk(), "the defaults (no job.toml beside the journal)"
        opens = np.array([b.bar_ms for b in run["bars"]], np.int64)
        step = int(np.min(np.diff(opens))) if len(opens) > 1 else 60_000
    quotes = {q for _, q in run["assets"].values()}
    return LiveRun(path=found, interval_ms=step, shifts_source=source,
                   shifts=(bool(risk.shifts) or job is None, float(risk.shifts_min_win_rate),
                           int(risk.shifts_min_trades)),
                   quote=quotes.pop() if len(quotes) == 1 else "quote", **run)


# -- what the figures compute ------------------------------------------------------------------

def intent_of(run: LiveRun, fill):
    """The intent a fill belongs to: the newest of its symbol and side decided at or before it."""
    if not run._links:
        for i in run.intents:
            run._links.setdefault((i.symbol, i.side), []).append(i)
        for v in run._links.values():
            v.sort(key=lambda i: i.bar_ms)
    found = None
    for i in run._links.get((fill.symbol, fill.side), []):
        if i.bar_ms > fill.time_ms:
            break
        found = i
    return found


def slippage_bps(run: LiveRun) -> list[tuple[int, str, str, float]]:
    """(time ms, symbol, side, bps) of every market fill whose decision recorded a price.

    Positive is a cost: a buy above the decision price, a sell below it, in basis points
    (1 bp = 0.01 %) of the decision price.
    """
    prices = {(d["bar_ms"], d["symbol"]): d["detail"].get("price") for d in run.decisions}
    out = []
    for f in run.fills:
        intent = intent_of(run, f)
        if intent is None or intent.type != "MARKET":
            continue
        price = prices.get((intent.bar_ms, f.symbol))
        if price is None or Decimal(str(price)) <= 0:
            continue
        ratio = float(f.price / Decimal(str(price)))
        out.append((f.time_ms, f.symbol, f.side, (ratio - 1.0 if f.side == "BUY" else 1.0 - ratio) * 1e4))
    return out


def round_trips(run: LiveRun) -> list[tuple[str, int, int, float]]:
    """(symbol, entry decision bar ms, exit time ms, PnL in quote after fees) of closed trades.

    A trade runs from a buy while flat to the sells that follow it, up to the next buy; its
    PnL is what those sells realised (average cost, fees included: `live.journal`'s rule).
    """
    from binance_cluster.live.journal import position_from_fills

    out = []
    for symbol, (base, quote) in sorted(run.assets.items()):
        fills = [f for f in run.fills if f.symbol == symbol]
        k = 0
        while k < len(fills):
            if fills[k].side != "BUY":
                k += 1
                continue
            start = k
            while k < len(fills) and fills[k].side == "BUY":
                k += 1
            end = k
            while end < len(fills) and fills[end].side == "SELL":
                end += 1
            if end == k:
                break                          # still open
            before = position_from_fills(symbol, base, quote, fills[:start]).realised
            after = position_from_fills(symbol, base, quote, fills[:end]).realised
            intent = intent_of(run, fills[start])
            decided = intent.bar_ms if intent is not None else fills[start].time_ms - run.interval_ms
            out.append((symbol, decided, fills[end - 1].time_ms, float(after - before)))
            k = end
    return out


def hourly_wins(run: LiveRun) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per UTC hour of the entry decision: closed trades, winning trades, and whether the
    shifts rule lets the hour trade (its trades and win rate reach the job's minimums)."""
    from binance_cluster.engine.step import hour_stats_of
    from binance_cluster.kernels.simulate import decision_hour, hour_qualified

    closed = [(int(decision_hour(bar, run.interval_ms)), pnl) for _, bar, _, pnl in round_trips(run)]
    stats = np.asarray(hour_stats_of(closed), dtype=np.int64)
    on, rate, minimum = run.shifts
    active = np.array([hour_qualified(stats, h, rate, minimum) if on else True for h in range(24)])
    return stats[:, 0], stats[:, 1], active


def per_hour(times_ms, first: int, last: int) -> np.ndarray:
    """Counts of `times_ms` per UTC hour from `first`'s hour to `last`'s."""
    lo, hi = first // HOUR_MS, last // HOUR_MS
    counts = np.zeros(hi - lo + 1, np.int64)
    for t in times_ms:
        h = int(t) // HOUR_MS
        if lo <= h <= hi:
            counts[h - lo] += 1
    return counts


def held_cost(run: LiveRun) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per symbol: fill times and the quote paid for what is held after each fill."""
    from binance_cluster.live.journal import position_from_fills

    out = {}
    for symbol, (base, quote) in sorted(run.assets.items()):
        fills = [f for f in run.fills if f.symbol == symbol]
        if fills:
            cost = [float(position_from_fills(symbol, base, quote, fills[:k + 1]).cost)
                    for k in range(len(fills))]
            out[symbol] = (np.array([f.time_ms for f in fills], np.int64), np.array(cost))
    return out


# -- drawing ---------------------------------------------------------------------------------

def draw_equity(fig, run: LiveRun) -> None:
    """Equity at every bar (top) and the quote held in positions per symbol (bottom)."""
    first, last = run.span()
    grid = fig.add_gridspec(2, 1, height_ratios=[3, 2])
    ax = fig.add_subplot(grid[0])
    low = fig.add_subplot(grid[1], sharex=ax)
    bars = [b for b in run.bars if b.equity is not None]
    if bars:
        t = np.array([b.close_ms for b in bars], np.int64)
        e = np.array([float(b.equity) for b in bars])
        ax.plot(*style.envelope(style.times(t), e), color=style.COLOURS["equity"], lw=1.3,
                label=f"equity: {e[0]:,.2f} to {e[-1]:,.2f} {run.quote} "
                      f"({style.signed_percent(e[-1] / e[0] - 1 if e[0] else math.nan, 2)})")
        ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, "no bar with an equity in the journal", ha="center", transform=ax.transAxes)
    ax.set_ylabel(f"equity ({run.quote})")
    style.money_axis(ax)
    ax.set_title(f"Equity at each bar close and money in positions, {run.period()}")
    style.date_axis(ax, show_labels=False)
    held = held_cost(run)
    if held:
        grid_t = np.unique(np.concatenate([[first, last], *(t for t, _ in held.values())]))
        stack = []
        for symbol, (t, cost) in held.items():
            idx = np.searchsorted(t, grid_t, side="right") - 1
            stack.append(np.where(idx >= 0, cost[np.maximum(idx, 0)], 0.0))
        low.stackplot(style.times(grid_t), *stack, labels=list(held), step="post", alpha=0.75)
        low.legend(loc="upper left", ncols=min(len(held), 6), fontsize=8)
    low.set_ylabel(f"held at cost ({run.quote})")
    low.set_xlabel("time (UTC)")
    style.money_axis(low)
    style.date_axis(low)


def _series_and_histogram(fig, title: str, ylabel: str, xlabel: str, counted: str, hist_title: str,
                          empty: str | None):
    """A time series (left) and the histogram of its values (right, same y axis); when `empty`
    is given, the reason there is nothing to draw instead. Returns (series axes, histogram axes)."""
    grid = fig.add_gridspec(1, 2, width_ratios=[3, 1])
    ax = fig.add_subplot(grid[0])
    hist = fig.add_subplot(grid[1], sharey=ax)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    hist.set_xlabel(f"{counted} (count)")
    hist.set_title(hist_title)
    if empty is not None:
        style.no_data(ax, empty)
        hist.set_axis_off()
    return ax, hist


def draw_slippage(fig, run: LiveRun) -> None:
    """Each market fill's price against its decision price, over time and as a histogram."""
    points = slippage_bps(run)
    ax, hist = _series_and_histogram(
        fig, f"Market fills against the decision price ({len(points)} fills), {run.period()}",
        "slippage (bps of the decision price, + costs)", "fill time (UTC)", "fills", "distribution",
        None if points else "no market fill with a decision price in the journal")
    if not points:
        return
    t = np.array([p[0] for p in points], np.int64)
    side = np.array([p[2] for p in points])
    bps = np.array([p[3] for p in points])
    for s, marker, colour in (("BUY", "^", style.COLOURS["entry"]), ("SELL", "v", style.COLOURS["exit"])):
        sel = side == s
        if sel.any():
            ax.scatter(style.times(t[sel]), bps[sel], marker=marker, s=18, color=colour,
                       label=f"{s.lower()}s ({int(sel.sum())}): mean {bps[sel].mean():+.1f} bps")
    ax.axhline(0.0, color="#555555", lw=0.6)
    ax.legend(loc="best")
    style.date_axis(ax)
    hist.hist(bps, bins=min(40, max(5, len(bps) // 3)), orientation="horizontal",
              color=style.COLOURS["exposure"], alpha=0.8)
    hist.axhline(float(np.median(bps)), color="black", ls=":", lw=1.0)
    hist.text(0.97, 0.03, f"median {np.median(bps):+.1f} bps", transform=hist.transAxes,
              ha="right", va="bottom", fontsize=9)
    hist.tick_params(labelleft=False)


def draw_latency(fig, run: LiveRun) -> None:
    """Per bar: milliseconds from the candle's close to the decision and to the last order."""
    ax, hist = _series_and_histogram(
        fig, f"Decision latency per bar ({len(run.bars)} bars), {run.period()}",
        "latency after the candle close (ms)", "bar close (UTC)", "bars", "to the last order or decision",
        None if run.bars else "no bar in the journal")
    if not run.bars:
        return
    t = style.times(np.array([b.close_ms for b in run.bars], np.int64))
    decided = np.array([b.decided_ms - b.close_ms for b in run.bars], float)
    total = np.array([b.latency_ms for b in run.bars], float)
    sent = np.array([b.last_order_ms is not None for b in run.bars])
    ax.plot(*style.envelope(t, decided), color="#888888", lw=0.8,
            label=f"to the decision: median {np.median(decided):,.0f} ms")
    if sent.any():
        ax.scatter(t[sent], total[sent], s=12, color=style.COLOURS["equity"], zorder=3,
                   label=f"to the last order sent ({int(sent.sum())} bars): median "
                         f"{np.median(total[sent]):,.0f} ms, 95 % under {np.percentile(total[sent], 95):,.0f} ms")
    ax.legend(loc="upper left")
    ax.set_ylim(bottom=0)
    style.date_axis(ax)
    hist.hist(total, bins=30, orientation="horizontal", color=style.COLOURS["equity"], alpha=0.8)
    hist.tick_params(labelleft=False)


def draw_activity(fig, run: LiveRun) -> None:
    """Per UTC hour: orders sent, exchange errors and risk refusals."""
    first, last = run.span()
    ax = fig.add_subplot()
    lo = first // HOUR_MS
    orders = per_hour([i.created_ms for i in run.intents], first, last)
    errors = per_hour([i.created_ms for i in run.intents if i.error is not None], first, last)
    refused = per_hour([r[0] for r in run.refusals], first, last)
    starts = style.times((lo + np.arange(len(orders))) * HOUR_MS)
    width = np.timedelta64(HOUR_MS // 4, "ms")
    ax.bar(starts + np.timedelta64(HOUR_MS // 8, "ms"), orders, width=width, align="edge",
           color=style.COLOURS["equity"], label=f"orders sent ({int(orders.sum())})")
    ax.bar(starts + np.timedelta64(3 * HOUR_MS // 8, "ms"), errors, width=width, align="edge",
           color=style.COLOURS["down"], label=f"answered with an error ({int(errors.sum())})")
    ax.bar(starts + np.timedelta64(5 * HOUR_MS // 8, "ms"), refused, width=width, align="edge",
           color=style.COLOURS["zoom"], label=f"refused by a risk rule ({int(refused.sum())})")
    ax.set_ylabel("orders per hour (count)")
    ax.set_xlabel("hour (UTC)")
    ax.set_title(f"Orders, errors and risk refusals per UTC hour, {run.period()}")
    ax.legend(loc="upper left", ncols=3)
    ax.set_ylim(0, max(1, int(max(orders.max(), refused.max(), errors.max()))) * 1.25)
    style.date_axis(ax)


def draw_hours(fig, run: LiveRun) -> None:
    """Win rate of closed trades by the UTC hour of their entry, the active hours shaded."""
    closed, won, active = hourly_wins(run)
    on, rate, minimum = run.shifts
    ax = fig.add_subplot()
    hours = np.arange(24)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(closed > 0, won / np.maximum(closed, 1) * 100.0, np.nan)
    for h in hours[active]:
        ax.axvspan(h - 0.5, h + 0.5, color=style.COLOURS["zoom"], alpha=0.3, lw=0)
    colours = [style.COLOURS["up"] if (closed[h] and share[h] >= rate * 100) else style.COLOURS["down"]
               for h in hours]
    ax.bar(hours, np.nan_to_num(share), color=colours, alpha=0.85, width=0.7)
    for h in hours:
        if closed[h]:
            ax.text(h, min(np.nan_to_num(share[h]) + 2, 104), f"{won[h]}/{closed[h]}", ha="center",
                    va="bottom", fontsize=7.5)
    if on:
        ax.axhline(rate * 100, color="#555555", ls="--", lw=0.8)
    ax.set_xticks(hours, [f"{h:02d}" for h in hours])
    ax.set_xlim(-0.6, 23.6)
    ax.set_ylim(0, 112)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel("UTC hour of the entry decision (h)")
    ax.set_ylabel("win rate of closed trades (%)")
    style.percent_axis(ax)
    rule = (f"shaded: the {int(active.sum())} hours the shifts filter trades (win rate at least "
            f"{rate * 100:g} % over at least {minimum} closed trades, from {run.shifts_source})"
            if on else "the shifts filter is off: every hour trades")
    ax.set_title(style.wrapped(f"Win rate by UTC hour ({int(closed.sum())} closed trades, wins/trades "
                               f"above each bar), {run.period()}") + "\n" + style.wrapped(rule))


def draw_positions(fig, run: LiveRun) -> None:
    """The positions derived from the journal's fills, with realised PnL and fees."""
    ax = fig.add_subplot()
    header = ["symbol", "held", "average cost", f"cost ({run.quote})", f"realised ({run.quote})",
              "fees in other assets", "fills"]
    rows = []
    for symbol, p in sorted(run.positions.items()):
        fees = ", ".join(f"{v:f} {k}" for k, v in p.other_fees.items()) or "–"
        rows.append([symbol, f"{p.quantity:f}", "–" if p.avg_cost is None else f"{p.avg_cost:.8f}",
                     f"{p.cost:,.2f}", f"{p.realised:+,.2f}", fees,
                     style.number(sum(1 for f in run.fills if f.symbol == symbol))])
    style.table(ax, header, rows, f"Positions from the journal's fills at {format_time_ms(run.span()[1])} "
                f"UTC (from {run.period()})")


def build(path, options: ReportOptions) -> Report:
    """The report of the live or paper run whose journal is at `path`."""
    run = load_live(path)
    period = run.period()
    closed = round_trips(run)
    errors = [i for i in run.intents if i.error is not None]
    realised = sum((p.realised for p in run.positions.values()), Decimal(0))
    last_equity = next((b.equity for b in reversed(run.bars) if b.equity is not None), None)
    figures = [
        FigureSpec("equity", "Equity and positions",
                   "Top: the account's value at each bar close as the loop journaled it. "
                   "Bottom: the money in each open position at what it cost (fees in quote "
                   "included), from the journaled fills.", "tall", partial(draw_equity, run=run)),
        FigureSpec("slippage", "Fills against the decision price",
                   "Each market fill's price against the price the decision was taken at, in basis "
                   "points (1 bp = 0.01 %); above zero it cost: a buy above, a sell below that "
                   "price.", "wide", partial(draw_slippage, run=run)),
        FigureSpec("latency", "Decision latency per bar",
                   "How long after each candle's close the loop decided (grey) and sent its last "
                   "order (blue dots: bars that sent orders).", "wide", partial(draw_latency, run=run)),
        FigureSpec("activity", "Orders and errors per hour",
                   "Orders sent in each UTC hour, those the exchange answered with an error, and "
                   "entries a risk rule refused before sending.", "wide", partial(draw_activity, run=run)),
        FigureSpec("hours", "Win rate by UTC hour",
                   "Closed trades grouped by the UTC hour their entry was decided in: the share "
                   "that made money after fees. Shaded hours are those the shifts filter lets "
                   "trade; the dashed line is its minimum win rate.", "wide",
                   partial(draw_hours, run=run)),
        FigureSpec("positions", "Positions", "What the account holds by the journal's fills.",
                   "wide", partial(draw_positions, run=run)),
    ]
    facts = [("journal", str(run.path)), ("job", run.meta.get("job", "?")), ("period", period),
             ("bars handled", style.number(len(run.bars))),
             ("orders", f"{len(run.intents)} ({len(errors)} with an error), "
                        f"{len(run.refusals)} refused by a risk rule"),
             ("fills", style.number(len(run.fills))), ("closed trades", style.number(len(closed))),
             ("realised", f"{realised:+,.2f} {run.quote}")]
    if last_equity is not None:
        facts.append(("last equity", f"{last_equity:,.2f} {run.quote}"))
    return Report(f"Live report: {run.meta.get('job', run.path.stem)}", facts, figures)
