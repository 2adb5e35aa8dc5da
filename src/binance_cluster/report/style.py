"""The look of every figure: sizes, colours, fonts, date and number formatting (Agg backend)."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg", force=True)

import matplotlib.dates as mdates  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import Formatter, FuncFormatter  # noqa: E402

DPI = 100
# Figure sizes in inches (pixels = inches x DPI): every PNG of a report has one of these sizes.
SIZES = {"wide": (12.0, 6.0), "tall": (12.0, 9.0)}

FONT = {"font.family": "DejaVu Sans", "font.size": 10.0, "axes.titlesize": 11.0,
        "axes.labelsize": 10.0, "xtick.labelsize": 9.0, "ytick.labelsize": 9.0,
        "legend.fontsize": 9.0, "figure.titlesize": 13.0}
RC = {**FONT, "timezone": "UTC", "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
      "axes.spines.right": False, "legend.frameon": True,
      "legend.framealpha": 0.85, "legend.edgecolor": "#cccccc", "savefig.dpi": DPI,
      "figure.dpi": DPI, "image.cmap": "viridis"}

COLOURS = {
    "equity": "#1f4e9c", "buy_hold": "#8c8c8c", "drawdown": "#c0392b", "up": "#2e8b57",
    "down": "#c0392b", "entry": "#2e8b57", "exit": "#c0392b", "stop": "#c0392b",
    "target": "#2e8b57", "price": "#333333", "zoom": "#f0c419", "exposure": "#6a3d9a",
    "best": "#000000", "mean": "#1f4e9c", "symbol": "#9db4d8",
}
DIVERGING = "RdYlGn"          # heatmaps of returns: red losses, green gains
SEQUENTIAL = "viridis"        # heatmaps of metrics without a natural zero


def pixels(size: str) -> tuple[int, int]:
    """(width, height) in pixels of the named figure size."""
    w, h = SIZES[size]
    return int(round(w * DPI)), int(round(h * DPI))


def new_figure(size: str = "wide") -> Figure:
    """A figure of the named size with the report's fonts, laid out without overlaps."""
    matplotlib.rcParams.update(RC)
    return Figure(figsize=SIZES[size], dpi=DPI, layout="constrained")


def no_data(ax, text: str) -> None:
    """Axes without a picture: the reason, centred."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True)


def panel_grid(fig, n: int):
    """A grid of `n` panels sharing the x axis; returns (axes, columns, the lowest panel of each column)."""
    cols = 1 if n == 1 else 2 if n <= 4 else 3 if n <= 9 else 4
    rows = math.ceil(n / cols)
    axes = fig.subplots(rows, cols, sharex=True, squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= n:
            ax.set_axis_off()
    bottom = [axes[max(r for r in range(rows) if r * cols + c < n), c] for c in range(min(cols, n))]
    for ax in bottom:
        ax.xaxis.set_tick_params(labelbottom=True)
    return axes, cols, bottom


def wrapped(title: str, width: int = 110) -> str:
    """A title broken into lines of at most `width` characters (a figure is ~120 wide)."""
    import textwrap

    return "\n".join(textwrap.wrap(title, width))


def times(ms: np.ndarray) -> np.ndarray:
    """Millisecond UTC times as datetime64 (what the date axes plot)."""
    return np.asarray(ms, dtype=np.int64).astype("datetime64[ms]")


ENVELOPE = 1500   # a series longer than twice this is drawn as its min/max per bucket


def envelope(x: np.ndarray, y: np.ndarray, buckets: int = ENVELOPE) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) thinned to the lowest and highest point of each of `buckets` runs of points.

    A figure is ~1200 pixels wide: drawing 40,000 points per line looks the same as drawing
    each run's extremes in order, and costs many times more (PNG and PDF alike).
    """
    n = len(y)
    if n <= 2 * buckets:
        return x, y
    k = -(-n // buckets)
    rows = -(-n // k)
    padded = np.concatenate([y, np.full(rows * k - n, y[-1])]).reshape(rows, k)
    base = np.arange(rows) * k
    lo = base + np.nanargmin(np.where(np.isnan(padded), np.inf, padded), axis=1)
    hi = base + np.nanargmax(np.where(np.isnan(padded), -np.inf, padded), axis=1)
    keep = np.unique(np.concatenate([[0, n - 1], np.minimum(lo, n - 1), np.minimum(hi, n - 1)]))
    return x[keep], y[keep]


def date_axis(ax, show_labels: bool = True) -> None:
    """UTC dates on the x axis, concise (day, month and year only where they change)."""
    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=show_labels))
    if not show_labels:
        ax.tick_params(labelbottom=False)


TICK_STEPS_MS = tuple(h * 3_600_000 for h in (1, 2, 3, 6, 12, 24, 48, 96, 168, 336, 672))


def panel_date_axis(ax, first_ms: int, last_ms: int, ticks: int = 5) -> None:
    """UTC date ticks at fixed, evenly spaced times (cheaper than `date_axis` on many panels)."""
    from matplotlib.ticker import FixedLocator

    span = max(int(last_ms) - int(first_ms), 1)
    step = next((s for s in TICK_STEPS_MS if span / s <= ticks), TICK_STEPS_MS[-1])
    at = np.arange(-(-int(first_ms) // step) * step, int(last_ms) + 1, step, dtype=np.int64)
    ax.xaxis.set_major_locator(FixedLocator(mdates.date2num(times(at))))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%d %b" if step >= 86_400_000 else "%d %b %H:%M"))


class _Percent(Formatter):
    """`-2.5 %`: values already in percent, with as many decimals as the tick spacing needs."""

    def format_ticks(self, values):
        locs = np.sort(np.asarray(values, dtype=float))
        step = float(np.min(np.diff(locs))) if len(locs) > 1 else 1.0
        decimals = max(0, int(np.ceil(-np.log10(step) - 1e-9))) if 0 < step < 1 else 0
        if decimals == 0 and any(abs(v - round(v)) > 1e-9 for v in locs):
            decimals = 1
        return [f"{v:.{decimals}f} %" for v in values]

    def __call__(self, x, pos=None):
        return self.format_ticks([x])[0]


def percent_axis(ax, axis: str = "y") -> None:
    """Tick labels as percentages of values already in percent (as many decimals as the ticks need)."""
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(_Percent())


def money_axis(ax, axis: str = "y") -> None:
    """Tick labels with thousands separators."""
    fmt = FuncFormatter(lambda v, _: f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.2f}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def count(n: int, noun: str) -> str:
    """`1 trade`, `3 trades`."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def signed_percent(value: float, decimals: int = 1) -> str:
    """`+12.3 %` for a fraction 0.123; `n/a` for NaN or None."""
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value * 100:+.{decimals}f} %"


def number(value, decimals: int = 2) -> str:
    """A metric value for a table cell: `n/a`, `inf`, integers as such, else rounded."""
    if value is None:
        return "n/a"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f"{int(value):,}"
    v = float(value)
    if np.isnan(v):
        return "n/a"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return f"{v:,.{decimals}f}"


def _numeric(text: str) -> bool:
    return text[:1] in "+-0123456789" or text in ("n/a", "inf", "–")


def table(ax, header: list[str], rows: list[list[str]], title: str, highlight: int | None = None) -> None:
    """A table filling the axes from the top: bold header, shaded rows, numbers (and their
    headers) right-aligned.

    Drawn as one text per cell over one collection of cell backgrounds (matplotlib's `Table`
    measures every cell again on each draw, which made it the slowest figure of a report).
    """
    from matplotlib.collections import PolyCollection

    ax.set_axis_off()
    ax.set_title(title, loc="left")
    if not rows:
        ax.text(0.5, 0.5, "no rows", ha="center", va="center", transform=ax.transAxes)
        return
    n = len(rows) + 1
    height = min(1.0 / n, 0.06)
    # bold headers and capitals run wider than the average character
    widths = [max(len(header[c]) * 1.2, *(len(r[c]) * (1.15 if r[c].isupper() else 1.0) for r in rows)) + 2
              for c in range(len(header))]
    edges = np.concatenate([[0.0], np.cumsum(widths) / float(sum(widths))])
    cells, colours = [], []
    for r, line in enumerate([header, *rows]):
        top, bottom = 1.0 - r * height, 1.0 - (r + 1) * height
        shade = ("#e8edf5" if r == 0 else "#fff4c2" if highlight is not None and r - 1 == highlight
                 else "#f7f7f7" if r % 2 == 0 else "white")
        for c, text in enumerate(line):
            left, right = edges[c], edges[c + 1]
            pad = 0.1 * (right - left)
            cells.append([(left, bottom), (right, bottom), (right, top), (left, top)])
            colours.append(shade)
            numeric = c > 0 and _numeric(rows[0][c] if r == 0 else text)   # headers follow their column
            ax.text(right - pad if numeric else left + pad, (top + bottom) / 2, text,
                    ha="right" if numeric else "left", va="center", fontsize=9.0,
                    fontweight="bold" if r == 0 else "normal", transform=ax.transAxes,
                    in_layout=False)
    ax.add_collection(PolyCollection(cells, facecolors=colours, edgecolors="#dddddd",
                                     linewidths=0.8, transform=ax.transAxes, zorder=0))


# Metric names of summary.json -> (short name, what it is, unit, scale applied before display)
METRICS = {
    "total_return": ("total return", "total return", "%", 100.0),
    "cagr": ("CAGR", "CAGR, annualised return", "%", 100.0),
    "sharpe": ("Sharpe", "Sharpe ratio, annualised", "ratio", 1.0),
    "sortino": ("Sortino", "Sortino ratio, annualised", "ratio", 1.0),
    "max_drawdown": ("max drawdown", "max drawdown", "%", 100.0),
    "trades": ("trades", "trades", "count", 1.0),
    "win_rate": ("win rate", "win rate", "%", 100.0),
    "profit_factor": ("profit factor", "profit factor, gross profit / gross loss", "ratio", 1.0),
    "exposure": ("exposure", "exposure, share of bars in a position", "%", 100.0),
    "fees": ("fees", "fees", "quote", 1.0),
}


def metric_label(name: str, quote: str = "quote") -> tuple[str, float]:
    """(`label (unit)`, scale) of a summary metric for axes and colour bars."""
    _, label, unit, scale = METRICS.get(name, (name, name, "", 1.0))
    unit = quote if unit == "quote" else unit
    return (f"{label} ({unit})" if unit else label), scale
