"""Checks of a rendered report's files: the PNGs in page order at their sizes and not blank,
the PDF's pages, and an HTML page embedding every image."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image


def pdf_pages(path: Path) -> int:
    """Pages of a PDF file (its /Type /Page objects)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-z])", path.read_bytes()))


def check_report(out: Path, figures: list[tuple[str, str]]) -> None:
    """OUT/figures/NN-name.png for each (name, size) in order, each of its size and not blank;
    report.pdf with one page per figure; report.html embedding every image, with no script."""
    from binance_cluster.report import style

    pngs = sorted((out / "figures").glob("*.png"))
    assert [p.name for p in pngs] == [f"{n:02d}-{f}.png" for n, (f, _) in enumerate(figures, 1)]
    assert pdf_pages(out / "report.pdf") == len(figures)
    for path, (_, size) in zip(pngs, figures):
        with Image.open(path) as image:
            assert image.size == style.pixels(size), path.name
            grey = np.asarray(image.convert("L"), dtype=np.float64)
        assert grey.std() > 8.0 and (grey < 128).mean() > 0.005, f"{path.name} looks blank"
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(figures) and "<script" not in html
