"""report.html: one self-contained page (styles inline, images as base64 data URIs)."""

from __future__ import annotations

import base64
import datetime as _dt
from html import escape

from binance_cluster.report.spec import Report

CSS = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 0 auto; max-width: 1260px;
       padding: 16px 24px 48px; color: #222; background: #fff; }
h1 { font-size: 24px; margin: 8px 0 4px; }
h2 { font-size: 18px; margin: 36px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.when { color: #666; margin: 0 0 16px; font-size: 13px; }
table.facts { border-collapse: collapse; font-size: 14px; margin-bottom: 12px; }
table.facts th { text-align: left; padding: 3px 18px 3px 0; color: #555; font-weight: normal; }
table.facts td { padding: 3px 0; }
nav ol { columns: 2; font-size: 14px; padding-left: 20px; }
figure { margin: 0; }
figure img { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 14px; color: #444; margin: 6px 0 0; line-height: 1.4; }
"""


def report_html(report: Report, images: list[bytes], files: list[str]) -> str:
    """The page of `report` with its PNG `images` embedded (and their file names shown)."""
    made = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = ["<!DOCTYPE html>", "<html lang=\"en\">", "<head>", "<meta charset=\"utf-8\">",
             f"<title>{escape(report.title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
             f"<h1>{escape(report.title)}</h1>", f"<p class=\"when\">made {made}</p>",
             "<table class=\"facts\">"]
    parts += [f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in report.facts]
    parts += ["</table>", "<nav><ol>"]
    parts += [f"<li><a href=\"#{escape(f.name)}\">{escape(f.title)}</a></li>" for f in report.figures]
    parts.append("</ol></nav>")
    for spec, png, name in zip(report.figures, images, files):
        data = base64.b64encode(png).decode("ascii")
        parts += [f"<h2 id=\"{escape(spec.name)}\">{escape(spec.title)}</h2>", "<figure>",
                  f"<img alt=\"{escape(spec.title)}\" src=\"data:image/png;base64,{data}\">",
                  f"<figcaption>{escape(spec.caption)} <small>({escape(name)})</small></figcaption>",
                  "</figure>"]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"
