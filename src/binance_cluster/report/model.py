"""Figures of a training run: ROC and AUC per walk-forward fold, calibration, the threshold
curves with the chosen thresholds, feature importance, the champion/challenger history and
the folds table.

Read from what `train` writes: `OUT/train.json` (`ml.train_results.read_train_summary`) and the model
store it names (`ml.model_store.ModelStore`: every fold's figures, decision and diagnostics).
The diagnostics of a fold are those of the model that trades after it (the champion), on the
fold's evaluation window.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from binance_cluster.report import style
from binance_cluster.report.spec import FigureSpec, Report, ReportOptions
from binance_cluster.types import format_time_ms

KIND = "model"
TOP_FEATURES = 20
LEGEND_FOLDS = 6          # ROC panels name each fold's AUC up to this many folds
PERCENT_TICKS = (0, 25, 50, 75, 100)
THRESHOLD_TICKS = (50, 60, 70, 80, 90, 100)


def applies(directory) -> bool:
    """A training output directory (train.json), unless a backtest wrote its results there later."""
    from binance_cluster.ml.train_results import TRAIN_JSON

    path = Path(directory)
    train = path / TRAIN_JSON
    if not train.is_file():
        return False
    summary = path / "summary.json"
    return not summary.is_file() or os.path.getmtime(train) >= os.path.getmtime(summary)


@dataclass
class TrainRun:
    """A training output directory read once: train.json and the folds of its symbols."""

    directory: Path
    summary: dict
    records: dict          # symbol -> [FoldRecord] (diagnostics loaded), in time order

    @property
    def metric(self) -> str:
        return self.summary.get("metric", "auc")

    def fitted(self, symbol: str) -> list:
        """Folds of `symbol` with a model that trades after them (diagnostics present)."""
        return [r for r in self.records[symbol] if r.diagnostics]

    def span(self) -> tuple[int, int]:
        recs = [r for rs in self.records.values() for r in rs]
        return min(r.eval_start for r in recs), max(r.eval_end for r in recs)

    def period(self) -> str:
        """The evaluation windows the folds cover, in UTC."""
        first, last = self.span()
        return f"{format_time_ms(first)} to {format_time_ms(last - 60_000)} UTC"


def load_train(directory) -> TrainRun:
    """Read train.json and, from the model store it names, the folds of its symbols."""
    from binance_cluster.errors import DataError
    from binance_cluster.ml.model_store import ModelStore
    from binance_cluster.ml.train_results import read_train_summary

    summary = read_train_summary(directory)
    store = ModelStore(summary["models"])
    folds: dict[str, set] = {}
    for row in summary["folds"]:
        folds.setdefault(row["symbol"], set()).add(row["fold"])
    records = {}
    for symbol, names in folds.items():
        recs = [r for r in store.records(symbol, with_arrays=True) if r.fold in names]
        if len(recs) != len(names):
            raise DataError(f"{store.path}: {symbol} lacks folds train.json lists (trained again since?)")
        records[symbol] = recs
    if not records:
        raise DataError(f"{Path(directory) / 'train.json'}: no folds (every symbol failed?)")
    return TrainRun(Path(directory), summary, records)


def traded_figures(rec) -> dict:
    """The figures of the model that trades after `rec`'s fold, on the fold (challenger or champion)."""
    m = rec.metrics
    return (m.get("challenger") if rec.trades_with == rec.fold else m.get("champion")) or {}


# -- drawing ---------------------------------------------------------------------------------

def _fold_colours(n: int):
    from matplotlib import colormaps

    cmap = colormaps[style.SEQUENTIAL]
    return [cmap(0.15 + 0.7 * k / max(n - 1, 1)) for k in range(n)]


def _symbol_panels(fig, run: TrainRun, title: str):
    """The figure's title and one panel per symbol with fitted folds: (symbols, axes, columns,
    lowest panels), or None (and a note) when no fold has a model."""
    symbols = [s for s in run.records if run.fitted(s)]
    fig.suptitle(style.wrapped(title))
    if not symbols:
        style.no_data(fig.add_subplot(), "no fold has a model")
        return None
    return (symbols, *style.panel_grid(fig, len(symbols)))


def draw_roc(fig, run: TrainRun) -> None:
    """Per symbol: each fold's ROC curve (oldest dark, newest light) with its AUC."""
    panels = _symbol_panels(fig, run, f"ROC of the trading model on each walk-forward fold, {run.period()}")
    if panels is None:
        return
    symbols, axes, cols, bottom = panels
    for k, symbol in enumerate(symbols):
        ax = axes.ravel()[k]
        recs = run.fitted(symbol)
        aucs = [traded_figures(r).get("auc") for r in recs]
        for rec, colour, auc in zip(recs, _fold_colours(len(recs)), aucs):
            d = rec.diagnostics
            label = f"{rec.fold[:10]}: AUC {auc:.3f}" if auc is not None else rec.fold[:10]
            ax.plot(d["roc_fpr"] * 100, d["roc_tpr"] * 100, color=colour, lw=1.1, label=label)
        ax.plot([0, 100], [0, 100], color="#888888", lw=0.8, ls=":")
        finite = [a for a in aucs if a is not None and np.isfinite(a)]
        mean = f"mean AUC {np.mean(finite):.3f}" if finite else "no AUC"
        ax.set_title(f"{symbol}: {style.count(len(recs), 'fold')}, {mean}", fontsize=9.5)
        if len(recs) <= LEGEND_FOLDS and len(symbols) <= 4:
            ax.legend(loc="lower right", fontsize=8)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_xticks(PERCENT_TICKS)          # fixed ticks: far cheaper than locators on 16 panels
        ax.set_yticks(PERCENT_TICKS)
        if k % cols == 0:
            ax.set_ylabel("true positive rate (%)")
    for ax in bottom:
        ax.set_xlabel("false positive rate (%)")


def draw_calibration(fig, run: TrainRun) -> None:
    """Observed rate against mean predicted probability per bin, pooled over folds, per symbol."""
    grid = fig.add_gridspec(2, 1, height_ratios=[3, 1])
    ax = fig.add_subplot(grid[0])
    low = fig.add_subplot(grid[1], sharex=ax)
    total = None
    for symbol in run.records:
        recs = run.fitted(symbol)
        if not recs:
            continue
        rows = np.sum([r.diagnostics["calibration_rows"] for r in recs], axis=0).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            pred = np.nansum([r.diagnostics["calibration_predicted"] * r.diagnostics["calibration_rows"]
                              for r in recs], axis=0) / rows
            seen = np.nansum([r.diagnostics["calibration_observed"] * r.diagnostics["calibration_rows"]
                              for r in recs], axis=0) / rows
        ok = rows > 0
        ax.plot(pred[ok] * 100, seen[ok] * 100, "o-", ms=4, lw=1.0, label=symbol)
        total = rows if total is None else total + rows
    ax.plot([0, 100], [0, 100], color="#555555", lw=0.8, ls=":", label="perfectly calibrated")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_ylabel("observed share of rises (%)")
    ax.set_title(f"Calibration of the trading models, all folds pooled, {run.period()}")
    ax.legend(loc="upper left", ncols=2 if len(run.records) > 6 else 1, fontsize=8)
    ax.tick_params(labelbottom=False)
    if total is not None:
        bins = len(total)
        low.bar((np.arange(bins) + 0.5) * 100 / bins, total, width=80 / bins,
                color=style.COLOURS["symbol"])
    low.set_yscale("log")
    low.set_ylabel("rows (count)")
    low.set_xlabel("predicted probability of a rise (%), 10 equal bins")


def _score_label(rule: str) -> tuple[str, float]:
    if rule == "profit":
        return "summed trade returns after fees (%)", 100.0
    return "true minus false positives (rows)", 1.0


def draw_thresholds(fig, run: TrainRun) -> None:
    """Per symbol: the threshold rule's score of each fold, the chosen threshold marked."""
    rule = run.summary.get("threshold_rule", "tp_fp")
    ylabel, scale = _score_label(rule)
    panels = _symbol_panels(fig, run, f"Threshold rule {rule!r} on each fold (oldest dark, newest light): "
                            f"score by threshold, the chosen one marked (black dot), {run.period()}")
    if panels is None:
        return
    symbols, axes, cols, bottom = panels
    for k, symbol in enumerate(symbols):
        ax = axes.ravel()[k]
        recs = run.fitted(symbol)
        for rec, colour in zip(recs, _fold_colours(len(recs))):
            grid = rec.diagnostics["threshold_grid"] * 100
            score = rec.diagnostics["threshold_score"] * scale
            ax.plot(grid, score, color=colour, lw=1.0, ls="-" if rec.threshold is not None else "--")
            if rec.threshold is not None:
                j = int(np.argmin(np.abs(rec.diagnostics["threshold_grid"] - rec.threshold)))
                ax.plot(grid[j], score[j], "o", color="black", ms=4, zorder=3)
        ax.axhline(0.0, color="#555555", lw=0.6)
        ax.set_xticks(THRESHOLD_TICKS)
        chosen = [r.threshold for r in recs if r.threshold is not None]
        ax.set_title(f"{symbol}: {len(chosen)}/{style.count(len(recs), 'fold')} traded"
                     + (f" at {chosen[0]:.2f}" if len(set(chosen)) == 1 else
                        f" at {min(chosen):.2f}-{max(chosen):.2f}" if chosen else ""),
                     fontsize=9.5)
    fig.supylabel(ylabel, fontsize=10.0)      # one label: the rows of 16 panels are too short for one each
    for ax in bottom:
        ax.set_xlabel("threshold (probability, %)")


def importance_table(run: TrainRun) -> tuple[list[str], np.ndarray]:
    """Feature names and their importance per fitted fold (rows: folds of every symbol)."""
    names = list(run.summary.get("features") or [])
    rows = [r.diagnostics["importance"] for s in run.records for r in run.fitted(s)]
    if not rows:
        return names, np.zeros((0, len(names)))
    table = np.vstack(rows)
    if len(names) != table.shape[1]:
        names = [f"feature {k}" for k in range(table.shape[1])]
    return names, table


def draw_importance(fig, run: TrainRun) -> None:
    """The most important features: mean over folds and symbols, the range of the folds as a bar."""
    ax = fig.add_subplot()
    names, table = importance_table(run)
    kind = run.summary.get("kind", "logistic")
    if not len(table):
        style.no_data(ax, "no fold has a model")
        return
    scale = 100.0 if kind == "trees" else 1.0
    values = table * scale
    mean = values.mean(axis=0)
    order = np.argsort(-np.abs(mean), kind="stable")[:TOP_FEATURES][::-1]
    y = np.arange(len(order))
    colours = [style.COLOURS["up"] if mean[j] >= 0 else style.COLOURS["down"] for j in order]
    ax.barh(y, mean[order], color=colours, alpha=0.85)
    ax.hlines(y, values.min(axis=0)[order], values.max(axis=0)[order], color="black", lw=1.0)
    ax.set_yticks(y, [names[j] for j in order])
    ax.axvline(0.0, color="#555555", lw=0.6)
    ax.grid(axis="y", visible=False)
    if kind == "trees":
        ax.set_xlabel("share of the split gain (%)")
        what = "share of the trees' split gain"
    else:
        ax.set_xlabel("standardised coefficient (log-odds per standard deviation)")
        what = "standardised coefficients (green: raises the probability, red: lowers it)"
    ax.set_ylabel("feature (input column)")
    ax.set_title(style.wrapped(f"Feature importance, {kind}: {what}; top {len(order)} of {len(names)}, "
                               f"mean over {style.count(len(table), 'fold')} with the range of the "
                               f"folds, {run.period()}"))


def draw_champion(fig, run: TrainRun) -> None:
    """Per symbol and fold: the challenger's and the champion's figure, who won, skipped folds."""
    metric = run.metric
    label = {"auc": "AUC on the fold", "log_loss": "log-loss on the fold"}.get(metric, metric)
    unit = " (ratio)" if metric == "auc" else " (nats)"
    fig.suptitle(style.wrapped(f"Champion and challenger on each fold by {metric} (filled: the challenger "
                 f"replaced the champion; x: skipped fold), {run.period()}"))
    symbols = list(run.records)
    axes, cols, bottom = style.panel_grid(fig, len(symbols))
    first, last = run.span()
    for k, symbol in enumerate(symbols):
        ax = axes.ravel()[k]
        recs = run.records[symbol]
        t = style.times(np.array([r.eval_start for r in recs], np.int64))
        challenger = np.array([((r.metrics.get("challenger") or {}).get(metric) or np.nan) for r in recs])
        champion = np.array([((r.metrics.get("champion") or {}).get(metric) or np.nan) for r in recs])
        won = np.array([r.decision.get("winner") == "challenger" for r in recs])
        skipped = np.array([bool(r.skip) for r in recs])
        ax.plot(t, challenger, color=style.COLOURS["equity"], lw=0.8)
        ax.scatter(t[won], challenger[won], color=style.COLOURS["equity"], s=28, zorder=3,
                   label="challenger (won)")
        ax.scatter(t[~won & ~skipped], challenger[~won & ~skipped], facecolor="white",
                   edgecolor=style.COLOURS["equity"], s=28, zorder=3, label="challenger (lost)")
        ax.scatter(t, champion, marker="_", color="black", s=80, zorder=3, label="champion held")
        if skipped.any():
            low = np.nanmin(np.concatenate([challenger, champion, [0.5]]))
            ax.scatter(t[skipped], np.full(int(skipped.sum()), low), marker="x", color="#888888",
                       s=28, label="skipped")
        if metric == "auc":
            ax.axhline(0.5, color="#888888", lw=0.6, ls=":")
        kept = int((~won & ~skipped).sum())
        ax.set_title(f"{symbol}: replaced {int(won.sum())}, kept {kept}, skipped {int(skipped.sum())}",
                     fontsize=9.5)
        if k == 0:
            ax.legend(loc="best", fontsize=8)
        if k % cols == 0:
            ax.set_ylabel(label + unit)
        style.panel_date_axis(ax, first, last)
    for ax in bottom:
        ax.set_xlabel("fold start (UTC)")


def symbol_rows(run: TrainRun) -> list[list[str]]:
    """Per symbol: folds, skipped, mean AUC of the trading model, replacements, traded periods."""
    rows = []
    for symbol, recs in run.records.items():
        fitted = [r for r in recs if not r.skip]
        aucs = [a for a in (traded_figures(r).get("auc") for r in run.fitted(symbol)) if a is not None]
        won = sum(1 for r in fitted if r.decision.get("winner") == "challenger")
        chosen = [r.threshold for r in recs if r.threshold is not None]
        signals = sum((r.metrics.get("at_threshold") or {}).get("signals") or 0 for r in recs)
        precision = [p for p in ((r.metrics.get("at_threshold") or {}).get("precision") for r in recs)
                     if p is not None]
        rows.append([symbol, style.number(len(recs)), style.number(len(recs) - len(fitted)),
                     f"{np.mean(aucs):.3f}" if aucs else "–", style.number(won),
                     style.number(len(fitted) - won), style.number(len(chosen)),
                     f"{np.mean(chosen):.2f}" if chosen else "–",
                     f"{np.mean(precision) * 100:.1f} %" if precision else "–", style.number(signals)])
    return rows


def draw_folds(fig, run: TrainRun) -> None:
    """One row per symbol: its folds, skips, AUC, champion changes, traded periods, thresholds."""
    ax = fig.add_subplot()
    header = ["symbol", "folds", "skipped", "mean AUC", "replaced", "kept", "traded periods",
              "mean threshold", "mean precision", "signals"]
    style.table(ax, header, symbol_rows(run), f"Walk-forward per symbol ({run.summary.get('fold')} "
                f"folds; every fold in train.csv), {run.period()}")


def build(directory, options: ReportOptions) -> Report:
    """The report of the training run in `directory`."""
    run = load_train(directory)
    s = run.summary
    kind, period = s.get("kind", "?"), run.period()
    recs = [r for rs in run.records.values() for r in rs]
    fitted = [r for r in recs if r.diagnostics]
    traded = [r for r in recs if r.threshold is not None]
    figures = [
        FigureSpec("roc", "ROC per walk-forward fold",
                   "For each symbol and fold, how many of the rises (true positives) the trading "
                   "model catches against how many non-rises it lets through (false positives) as "
                   "its threshold goes from 1 down to 0. The dotted diagonal is guessing; AUC is "
                   "the area under the curve (0.5 guessing, 1 perfect).", "tall",
                   partial(draw_roc, run=run)),
        FigureSpec("calibration", "Calibration",
                   "Bars grouped by the predicted probability of a rise (10 bins); how often the "
                   "price really rose in each group. On the diagonal a 30 % prediction comes "
                   "true 30 % of the time. Below: how many bars each group holds.", "tall",
                   partial(draw_calibration, run=run)),
        FigureSpec("thresholds", "Threshold curves",
                   "The score of the threshold rule at every threshold from 0.50 to 1.00 on each "
                   "fold; the black dot is the threshold chosen for the next period. A dashed "
                   "curve never scores above zero: that fold's next period is not traded.", "tall",
                   partial(draw_thresholds, run=run)),
        FigureSpec("importance", "Feature importance",
                   "Which inputs the models lean on, averaged over every fold and symbol; the "
                   "black line spans the smallest to the largest fold.", "tall",
                   partial(draw_importance, run=run)),
        FigureSpec("champion", "Champion and challenger history",
                   "On every fold a new model (the challenger) is fitted and scored beside the "
                   "model trading so far (the champion); it replaces it only when it scores "
                   "better. Skipped folds had too few rows or one class only.", "tall",
                   partial(draw_champion, run=run)),
        FigureSpec("folds", "Walk-forward per symbol",
                   "One row per symbol: its folds and those skipped, the trading model's mean AUC, "
                   "how often a new model replaced the old one or the old one was kept, how many "
                   "periods had a threshold to trade with, and the thresholds' mean precision and "
                   "signals on their folds (train.csv has every fold).", "tall",
                   partial(draw_folds, run=run)),
    ]
    facts = [("models", s["models"]), ("model kind", kind), ("folds", f"{s.get('fold')} "
             f"({len(recs)}, {len(recs) - len(fitted)} skipped, {len(traded)} with a threshold)"),
             ("threshold rule", str(s.get("threshold_rule"))), ("champion metric", run.metric),
             ("symbols", ", ".join(run.records)), ("evaluated", period),
             ("features", str(len(s.get("features") or [])))]
    if s.get("failures"):
        facts.append(("failed", ", ".join(f["symbol"] for f in s["failures"])))
    return Report(f"Model report: {kind} walk-forward, {s.get('fold')} folds", facts, figures)
