"""Reports rendered from real backtest outputs (a week of real candles, sweep and portfolio mode):
the files, their pages and sizes, self-contained HTML, different inputs giving different
pictures, the figures' arithmetic, and bad input."""

from __future__ import annotations

import hashlib
import re
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from support.backtest_store import RULES, SYMBOLS, build_store
from support.report_files import pdf_pages


SWEEP = """\
store = "{store}"
symbols = "all"
output = "{out}"
top = 3
chunk_size = 4
rank_by = "total_return"
[strategy]
name = "sma_cross"
[strategy.params]
fast = [5, 10, 20]
slow = {{start = 30, stop = 120, step = 30}}
[risk]
fee_rate = 0.001
stop_loss = 0.02
take_profit = 0.03
""" + RULES

PORTFOLIO = """\
store = "{store}"
symbols = "all"
output = "{out}"
mode = "portfolio"
[strategy]
name = "sma_cross"
[strategy.params]
fast = {fast}
slow = 60
[risk]
fee_rate = 0.001
stake = 0.45
max_positions = 2
stop_loss = 0.02
take_profit = 0.03
""" + RULES

# The figures of each kind of report, in page order, with their sizes (style.SIZES).
PORTFOLIO_FIGURES = [("equity", "tall"), ("symbols", "tall"), ("price-best", "tall"),
                     ("price-worst", "tall"), ("trade-returns", "wide"),
                     ("monthly-returns", "wide"), ("exposure", "wide"), ("metrics", "tall")]
SWEEP_FIGURES = [("heatmap", "wide"), ("heatmap-symbols", "tall"), ("robustness", "wide"),
                 ("top", "tall"), ("equity", "tall"), ("top-equity", "tall"),
                 ("price-best", "tall"), ("trade-returns", "wide")]
JOBS = {"sweep": (SWEEP, {}), "portfolio": (PORTFOLIO, {"fast": 10}),
        "portfolio_fast20": (PORTFOLIO, {"fast": 20})}


@pytest.fixture(scope="module")
def store(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("report") / "store"
    build_store(shared_data, root)
    return root


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> dict:
    """Backtests already run in this module: name -> (output directory, stdout)."""
    return {"root": tmp_path_factory.mktemp("runs")}


@pytest.fixture
def run(cli, store, done):
    """`run(name)`: the backtest `name` of JOBS run once with --report through the CLI."""

    def get(name: str):
        if name not in done:
            template, values = JOBS[name]
            out = done["root"] / name
            job = done["root"] / f"{name}.toml"
            job.write_text(template.format(store=store, out=out, **values))
            code, stdout, stderr = cli("backtest", job, "--no-progress", "--report")
            assert code == 0, stderr
            done[name] = (out, stdout)
        return done[name]

    return get


def expected(name: str) -> list[tuple[str, str]]:
    return SWEEP_FIGURES if name == "sweep" else PORTFOLIO_FIGURES


def pngs(out) -> list:
    return sorted((out / "figures").glob("*.png"))


@pytest.mark.parametrize("name", ["sweep", "portfolio"])
def test_backtest_report_writes_every_file_and_prints_the_path(run, name):
    out, stdout = run(name)
    assert f"report: {out / 'report.html'}" in stdout.splitlines()[-1]
    files = pngs(out)
    assert [p.name for p in files] == [f"{n:02d}-{fig}.png" for n, (fig, _) in
                                       enumerate(expected(name), start=1)]
    assert (out / "report.html").is_file()
    assert pdf_pages(out / "report.pdf") == len(expected(name))
    # earlier results are untouched and no temporary file is left behind
    assert {"summary.json", "trades.csv", "results.h5", "job.toml", "run.json"} <= \
        {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("name", ["sweep", "portfolio"])
def test_each_png_has_its_size_and_is_not_blank(run, name):
    from binance_cluster.report import style

    out, _ = run(name)
    for path, (_, size) in zip(pngs(out), expected(name)):
        with Image.open(path) as image:
            assert image.size == style.pixels(size), path.name
            grey = np.asarray(image.convert("L"), dtype=np.float64)
        assert grey.std() > 8.0, f"{path.name} looks blank (pixel std {grey.std():.2f})"
        assert (grey < 128).mean() > 0.005, f"{path.name} has almost no dark pixels"


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("src", "href", "data", "poster", "srcset", "action"):
                self.refs.append((tag, key, value or ""))


@pytest.mark.parametrize("name", ["sweep", "portfolio"])
def test_html_embeds_every_image_and_references_nothing_outside(run, name):
    import base64

    out, _ = run(name)
    html = (out / "report.html").read_text()
    parser = _Refs()
    parser.feed(html)
    images = [v for tag, key, v in parser.refs if tag == "img"]
    assert len(images) == len(expected(name))
    for (tag, key, value) in parser.refs:
        assert value.startswith("data:image/png;base64,") or (key == "href" and value.startswith("#")), \
            (tag, key, value[:60])
    for value, path in zip(images, pngs(out)):
        assert base64.b64decode(value.split(",", 1)[1]) == path.read_bytes()
    assert "url(" not in html and "@import" not in html and "<script" not in html


def _digests(out) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in pngs(out)}


def test_different_inputs_give_different_images(run):
    a, b = _digests(run("portfolio")[0]), _digests(run("portfolio_fast20")[0])
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] == b[name]] == []
    sweep = _digests(run("sweep")[0])
    assert len(set(sweep.values())) == len(sweep) and len(set(a.values())) == len(a)


def test_report_command_rerenders_the_same_pictures(cli, run):
    out, _ = run("portfolio")
    before = _digests(out)
    code, stdout, stderr = cli("report", out)
    assert code == 0, stderr
    assert stdout.startswith(f"report: {out / 'report.html'}")
    assert _digests(out) == before


def test_sweep_options_choose_the_metric_and_the_axes(cli, run, tmp_path):
    out, _ = run("sweep")
    copy = tmp_path / "sweep"
    shutil.copytree(out, copy)
    heatmap = copy / "figures" / "01-heatmap.png"
    first = heatmap.read_bytes()
    assert cli("report", copy, "--params", "slow,fast")[0] == 0
    swapped = heatmap.read_bytes()
    assert cli("report", copy, "--metric", "sharpe")[0] == 0
    assert len({first, swapped, heatmap.read_bytes()}) == 3
    code, _, stderr = cli("report", copy, "--params", "fast,window")
    assert code == 2
    assert stderr.strip().count("\n") == 0 and "'window'" in stderr


def test_a_new_backtest_removes_the_earlier_report(cli, store, tmp_path):
    out = tmp_path / "again"
    job = tmp_path / "again.toml"
    job.write_text(PORTFOLIO.format(store=store, out=out, fast=10))
    assert cli("backtest", job, "--no-progress", "--report")[0] == 0
    assert (out / "report.html").is_file() and pngs(out)
    code, _, err = cli("backtest", job, "--no-progress")      # the same folder, no report asked
    assert code == 0, err
    left = {p.name for p in out.iterdir()}
    assert not left & {"report.html", "report.pdf", "figures"}   # no report of another run
    assert {"summary.json", "trades.csv", "results.h5", "job.toml", "run.json"} <= left


def test_missing_results_name_the_file_and_exit_2(cli, run, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, stdout, stderr = cli("report", empty)
    assert code == 2
    assert stderr.strip().count("\n") == 0
    assert str(empty / "summary.json") in stderr
    assert list(empty.iterdir()) == []

    out, _ = run("portfolio")
    partial = tmp_path / "partial"
    shutil.copytree(out, partial)
    (partial / "trades.csv").unlink()
    before = sorted(p.name for p in partial.rglob("*"))
    code, _, stderr = cli("report", partial)
    assert code == 2 and str(partial / "trades.csv") in stderr
    assert sorted(p.name for p in partial.rglob("*")) == before


def test_a_missing_store_still_renders_and_says_so(cli, run, tmp_path):
    out, _ = run("portfolio")
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    job = moved / "job.toml"
    job.write_text(re.sub(r'^store = ".*"$', f'store = "{tmp_path / "gone"}"', job.read_text(),
                          flags=re.M))
    code, _, stderr = cli("report", moved)
    assert code == 0, stderr
    assert pdf_pages(moved / "report.pdf") == len(PORTFOLIO_FIGURES)
    a, b = _digests(out), _digests(moved)
    assert a["03-price-best.png"] != b["03-price-best.png"]
    assert a["05-trade-returns.png"] == b["05-trade-returns.png"]   # drawn from trades.csv alone


# -- the figures' arithmetic, on the same real runs ------------------------------------------

def test_buy_and_hold_is_equal_parts_held_from_the_first_close(run, shared_data):
    from binance_cluster.report.backtest import buy_and_hold
    from binance_cluster.report.inputs import load_backtest
    from support.real_data import read_real

    r = load_backtest(run("portfolio")[0])
    _, times, _, _ = r.curves[0]
    hold = buy_and_hold(r, list(SYMBOLS), times, 10_000.0)
    ratios = []
    for s in SYMBOLS:
        c = read_real(shared_data, s, int(times[0]), int(times[-1]) + 60_000)
        ratios.append(c.close[-1] / c.close[0])
    assert hold[0] == pytest.approx(10_000.0, rel=1e-12)
    assert hold[-1] == pytest.approx(10_000.0 / len(SYMBOLS) * sum(ratios), rel=1e-12)


def test_monthly_returns_compound_to_the_total_return(run):
    from binance_cluster.report.backtest import monthly_returns
    from binance_cluster.report.inputs import load_backtest

    r = load_backtest(run("portfolio")[0])
    _, times, equity, _ = r.curves[0]
    # the week split at a month boundary: pretend its second half is a month later
    shifted = times.copy()
    half = len(times) // 2
    shifted[half:] += 31 * 86_400_000
    years, table, partial = monthly_returns(shifted, equity, 10_000.0)
    months = table[np.isfinite(table)]
    assert len(months) == 2 and partial[np.isfinite(table)].all()
    assert np.prod(1 + months / 100) == pytest.approx(equity[-1] / 10_000.0, rel=1e-12)
    assert months[0] == pytest.approx((equity[half - 1] / 10_000.0 - 1) * 100, rel=1e-12)


def test_exposure_never_exceeds_the_slots_or_the_equity(run):
    from binance_cluster.report.backtest import positions_over
    from binance_cluster.report.inputs import load_backtest

    r = load_backtest(run("portfolio")[0])
    _, times, equity, _ = r.curves[0]
    count, value = positions_over(r, times, r.real())
    assert count.min() == 0 and count.max() == r.job.risk.max_positions
    assert (value / equity).max() <= 1.0 + 1e-9   # spot: positions are paid from cash
    assert value[count == 0].max() == 0.0


def test_robustness_tells_a_plateau_from_a_spike(run):
    from binance_cluster.report.inputs import load_backtest
    from binance_cluster.report.sweep import PLATEAU, metric_grid, robustness

    grid = metric_grid(load_backtest(run("sweep")[0]), "total_return")
    assert grid.names == ["fast", "slow"] and grid.cube.shape == (len(SYMBOLS), 3, 4)
    assert np.isfinite(grid.cube).all()
    score, best = robustness(grid, grid.mean())
    assert np.isfinite(score)
    spike = np.full_like(grid.mean(), -0.1)
    spike[1, 2] = 0.3
    assert robustness(grid, spike) == (pytest.approx(0.0), (1, 2))
    plateau = spike.copy()
    plateau[0:3, 1:4] = 0.3
    plateau[1, 2] = 0.31
    s, b = robustness(grid, plateau)
    assert b == (1, 2) and s > PLATEAU


def test_readers_give_back_what_the_files_hold(run):
    import csv
    import json

    import h5py

    from binance_cluster.backtest import results
    from binance_cluster.backtest.job import load_job

    out, _ = run("portfolio")
    trades = results.read_trades(out)
    with open(out / "trades.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(trades) == list(rows[0])
    assert len(trades["symbol"]) == len(rows) > 0
    for k in (0, len(rows) // 2, len(rows) - 1):
        assert trades["symbol"][k] == rows[k]["symbol"]
        assert trades["entry_time_ms"][k] == int(rows[k]["entry_time_ms"])
        assert trades["pnl"][k] == float(rows[k]["pnl"])
        assert trades["paper"][k] == (rows[k]["paper"] == "1")
    summary = results.read_summary(out)
    raw = json.loads((out / "summary.json").read_text())
    assert [u["symbol"] for u in summary["units"]] == [u["symbol"] for u in raw["units"]]
    assert summary["portfolio"]["metrics"]["trades"] == raw["portfolio"]["metrics"]["trades"]
    (name, times, equity, attrs), = results.read_curves(out)
    with h5py.File(out / "results.h5", "r") as f:
        assert name == "portfolio"
        assert np.array_equal(times, f["portfolio/times"][()])
        assert np.array_equal(equity, f["portfolio/equity"][()])
    assert attrs["symbols"] == list(SYMBOLS)
    assert results.read_job(out) == load_job(out / "job.toml", check_store=False)


def test_trade_returns_are_pnl_over_entry_cost(run):
    from binance_cluster.report.backtest import trade_returns
    from binance_cluster.report.inputs import load_backtest

    r = load_backtest(run("portfolio")[0])
    t = r.trades
    mask = r.real()
    cost = t["entry_price"][mask] * t["quantity"][mask]
    assert np.array_equal(trade_returns(r, mask), t["pnl"][mask] / cost * 100.0)


def test_the_zoom_fits_three_days_of_1m_candles_into_30m_candles():
    from binance_cluster.report.backtest import ZOOM_MS, zoom_interval

    assert zoom_interval("1m", ZOOM_MS) == "30m"
    assert zoom_interval("1h", ZOOM_MS) == "1h"
    assert zoom_interval("5m", 86_400_000) == "15m"
