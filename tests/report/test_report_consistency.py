"""Every kind of report at its default sizes: no two text labels overlap, and every axis that
shows ticks carries a label with a unit (its own, or its row's / column's in small multiples)."""

from __future__ import annotations

import re

import pytest

from test_report import done, run, store  # noqa: F401  (pytest fixtures: the backtests of test_report)

UNIT = re.compile(r"\([^)]+\)")


def _figures(report):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from binance_cluster.report import style

    for spec in report.figures:
        fig = style.new_figure(spec.size)
        FigureCanvasAgg(fig)
        spec.draw(fig)
        fig.canvas.draw()
        yield spec.name, fig


def _drawn_ticks(axis) -> list:
    """The tick labels an axis draws (those inside its view; the others exist but are not drawn)."""
    return [label for tick in axis._update_ticks() for label in (tick.label1, tick.label2)
            if label.get_visible() and label.get_text().strip()]


def _texts(fig):
    """Every text drawn: the tick labels inside the views, and every other visible text."""
    from matplotlib.text import Text

    drawn, ticks = [], set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            ticks |= {id(label) for tick in axis.get_major_ticks() + axis.get_minor_ticks()
                      for label in (tick.label1, tick.label2)}
            if ax.axison:
                drawn += _drawn_ticks(axis)
    for t in fig.findobj(Text):
        if id(t) in ticks or not t.get_visible() or not t.get_text().strip():
            continue
        ax = t.axes
        if ax is not None and not ax.axison and t not in ax.texts and t is not ax.title:
            continue
        drawn.append(t)
    return list(dict.fromkeys(drawn))


def overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of visible texts whose drawn boxes overlap (by more than a pixel each way)."""
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer).expanded(1.0, 1.0).padded(-1.0))
             for t in _texts(fig)]
    found = []
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1:]:
            if box_a.width > 0 and box_b.width > 0 and box_a.overlaps(box_b):
                found.append((a[:40], b[:40]))
    return found


def unlabelled_axes(fig) -> list[str]:
    """Axes showing tick labels on an axis with no label carrying a unit for it (its own, its
    row's or column's in small multiples, or the figure's `supxlabel` / `supylabel`)."""
    missing = []
    axes = [ax for ax in fig.axes if ax.axison]
    for ax in axes:
        spec = ax.get_subplotspec()
        for which in ("x", "y"):
            axis = ax.xaxis if which == "x" else ax.yaxis
            if not _drawn_ticks(axis):
                continue
            label = axis.get_label().get_text()
            if not label and spec is not None:        # small multiples: the row's or column's label
                mates = [o for o in axes if o.get_subplotspec() is not None and o is not ax and
                         (o.get_subplotspec().rowspan == spec.rowspan if which == "y"
                          else o.get_subplotspec().colspan == spec.colspan)]
                label = next((getattr(o, f"{which}axis").get_label().get_text() for o in mates
                              if getattr(o, f"{which}axis").get_label().get_text()), "")
            if not label:                              # the figure's label for all its panels
                whole = getattr(fig, f"_sup{which}label", None)
                label = whole.get_text() if whole is not None else ""
            if not UNIT.search(label):
                missing.append(f"{ax.get_title()[:40]!r} {which}: {label!r}")
    return missing


@pytest.fixture
def reports(run, trained, paper_run):  # noqa: F811
    from binance_cluster.report.render import build_report

    return {"portfolio": build_report(run("portfolio")[0]), "sweep": build_report(run("sweep")[0]),
            "model (logistic)": build_report(trained("logistic")),
            "model (trees)": build_report(trained("trees")),
            "live": build_report(paper_run())}


def test_no_text_overlaps_and_every_axis_has_a_unit(reports):
    problems = []
    for kind, report in reports.items():
        for name, fig in _figures(report):
            problems += [f"{kind}/{name}: {a!r} overlaps {b!r}" for a, b in overlaps(fig)]
            problems += [f"{kind}/{name}: no unit on {m}" for m in unlabelled_axes(fig)]
    assert problems == []


def test_the_overlap_check_sees_an_overlap():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from binance_cluster.report import style

    fig = style.new_figure("wide")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("price (USDT)")
    ax.text(0.5, 0.5, "first label", transform=ax.transAxes)
    ax.text(0.52, 0.5, "second label", transform=ax.transAxes)
    fig.canvas.draw()
    assert overlaps(fig) == [("first label", "second label")]
    assert unlabelled_axes(fig) == []
    ax.set_ylabel("price")
    assert unlabelled_axes(fig) == ["'' y: 'price'"]
