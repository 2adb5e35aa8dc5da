"""Render a run's report: each figure as PNG, all of them in report.pdf, and report.html."""

from __future__ import annotations

import io
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from binance_cluster.backtest.results import FIGURES_DIR, REPORT_FILES
from binance_cluster.fileio import atomic_write
from binance_cluster.errors import ConfigError
from binance_cluster.report import backtest, live, model, style, sweep
from binance_cluster.report.html import report_html
from binance_cluster.report.spec import Report, ReportOptions

log = logging.getLogger(__name__)

# Kinds of run, tried in order; the first whose `applies(path)` is true builds the report.
# The last one builds when none applies, so its readers name the file that is missing.
KINDS = (live, model, sweep, backtest)
KIND_NAMES = tuple(k.KIND for k in KINDS)
REPORT_HTML, REPORT_PDF = REPORT_FILES


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """Where a report was written and how long each figure took (seconds)."""

    html: Path
    pdf: Path
    pngs: tuple[Path, ...]
    seconds: tuple[tuple[str, float], ...]


def build_report(path: str | Path, options: ReportOptions | None = None,
                 kind: str | None = None) -> Report:
    """The report of the run at `path` (a kind of KIND_NAMES, or the first that applies)."""
    options = options or ReportOptions()
    if kind is None:
        module = next((k for k in KINDS if k.applies(path)), KINDS[-1])
    elif kind in KIND_NAMES:
        module = KINDS[KIND_NAMES.index(kind)]
    else:
        raise ConfigError(f"report kind {kind!r}: unknown (known: {', '.join(KIND_NAMES)})")
    return module.build(path, options)


def render_report(path: str | Path, options: ReportOptions | None = None, kind: str | None = None,
                  out: str | Path | None = None) -> ReportFiles:
    """Write OUT/figures/NN-name.png, OUT/report.pdf and OUT/report.html; returns their paths.

    `path` is a run's output directory, or a live journal file; OUT is `out`, else `path`'s
    directory (a journal's: the folder holding it). The live loop calls
    `render_report(journal_or_run_folder, kind="live")` for `live --report`.
    """
    from matplotlib.backends.backend_pdf import PdfPages

    path = Path(path)
    report = build_report(path, options, kind)
    directory = Path(out) if out is not None else path if path.is_dir() else path.parent
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / FIGURES_DIR
    figures = directory / f".{FIGURES_DIR}.tmp"
    shutil.rmtree(figures, ignore_errors=True)
    figures.mkdir()
    pdf_path = directory / REPORT_PDF
    tmp_pdf = pdf_path.with_name(f".{pdf_path.name}.tmp")
    images, names, seconds = [], [], []
    try:
        with PdfPages(tmp_pdf, metadata={"Title": report.title, "Creator": "binance-cluster report"}) as pdf:
            for n, spec in enumerate(report.figures, start=1):
                t0 = time.perf_counter()
                fig = style.new_figure(spec.size)
                spec.draw(fig)
                buffer = io.BytesIO()
                fig.savefig(buffer, format="png", dpi=style.DPI)
                fig.set_layout_engine("none")  # laid out once, for the PNG; the PDF page reuses it
                pdf.savefig(fig)
                fig.clear()
                name = f"{n:02d}-{spec.name}.png"
                (figures / name).write_bytes(buffer.getvalue())
                images.append(buffer.getvalue())
                names.append(f"{FIGURES_DIR}/{name}")
                seconds.append((spec.name, time.perf_counter() - t0))
                log.debug("figure %s in %.2f s", spec.name, seconds[-1][1])
        # the new figures replace the old ones only once every figure is drawn
        shutil.rmtree(final, ignore_errors=True)
        figures.rename(final)
        tmp_pdf.replace(pdf_path)
    finally:
        shutil.rmtree(figures, ignore_errors=True)
        tmp_pdf.unlink(missing_ok=True)
    pngs = [directory / n for n in names]
    html_path = directory / REPORT_HTML
    atomic_write(html_path, report_html(report, images, names))
    return ReportFiles(html_path, pdf_path, tuple(pngs), tuple(seconds))
