"""The backtest command in-process on a small store of real candles: sweep and portfolio results,
their files and their agreement with each other, resampled intervals, and failing units."""

from __future__ import annotations

import csv
import json
import shutil

import h5py
import numpy as np
import pytest

from support.backtest_store import RULES, SYMBOLS, build_store
from binance_cluster.backtest.driver import chunk_bounds, plan_units
from binance_cluster.engine.portfolio import align
from binance_cluster.backtest.results import iso_ms
from binance_cluster.fileio import atomic_write

INITIAL = 10_000.0

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
fast = [5, 15]
slow = {{start = 30, stop = 90, step = 30}}
[risk]
fee_rate = 0.001
""" + RULES

PORTFOLIO = """\
store = "{store}"
symbols = "all"
output = "{out}"
mode = "portfolio"
[strategy]
name = "sma_cross"
[strategy.params]
fast = 10
slow = 60
[risk]
fee_rate = 0.001
stake = 0.45
max_positions = 2
""" + RULES


@pytest.fixture(scope="module")
def store(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("backtest") / "store"
    build_store(shared_data, root)
    return root


def run_job(cli, tmp_path, template: str, store, *extra: str, name: str = "job"):
    out = tmp_path / f"out_{name}"
    path = tmp_path / f"{name}.toml"
    path.write_text(template.format(store=store, out=out))
    code, stdout, stderr = cli("backtest", path, "--no-progress", *extra)
    return code, stdout, stderr, out


def read_trades(out) -> list[dict]:
    with open(out / "trades.csv", newline="") as f:
        return list(csv.DictReader(f))


def check_trade_rows(rows: list[dict], symbols) -> None:
    for row in rows:
        assert row["symbol"] in symbols
        assert iso_ms(int(row["entry_time_ms"])) == row["entry_time"]
        assert iso_ms(int(row["exit_time_ms"])) == row["exit_time"]
        assert int(row["exit_time_ms"]) >= int(row["entry_time_ms"])
        assert float(row["entry_price"]) > 0 and float(row["exit_price"]) > 0
        assert float(row["quantity"]) > 0 and float(row["fees"]) >= 0
        assert row["exit_reason"] in ("signal", "stop_loss", "take_profit", "trailing_stop",
                                      "max_hold", "end")
        assert row["paper"] in ("0", "1")


def test_sweep_results_agree_with_each_other(cli, tmp_path, store):
    from binance_cluster.engine.metrics import METRIC_NAMES

    code, stdout, stderr, out = run_job(cli, tmp_path, SWEEP, store)
    assert code == 0, stderr
    assert "all 8 units finished (exit code 0)" in stdout
    summary = json.loads((out / "summary.json").read_text())
    units = summary["units"]
    grid = [{"fast": f, "slow": s} for f in (5, 15) for s in (30, 60, 90)]
    assert len(units) == len(SYMBOLS) * len(grid) and summary["failed"] == 0
    for k, unit in enumerate(units):
        assert unit["symbol"] == SYMBOLS[k // len(grid)]
        assert unit["params_id"] == k % len(grid)
        assert {p: unit["params"][p] for p in ("fast", "slow")} == grid[k % len(grid)]
        assert unit["error"] is None
        m = unit["metrics"]
        assert set(METRIC_NAMES) <= set(m)
        assert -1 < m["total_return"] < 10
        assert isinstance(m["trades"], int) and m["trades"] >= 0
        assert m["fees"] is None or m["fees"] >= 0
        assert m["exposure"] is None or 0 <= m["exposure"] <= 1
    # faster crossings trade more often on the same symbol
    for s in range(len(SYMBOLS)):
        mine = units[s * len(grid):(s + 1) * len(grid)]
        assert mine[0]["metrics"]["trades"] > mine[5]["metrics"]["trades"]

    best = sorted(units, key=lambda u: -u["metrics"]["total_return"])[:3]
    first_row = stdout.splitlines()[4].split()
    assert first_row[:2] == ["1", best[0]["symbol"]], stdout

    rows = read_trades(out)
    check_trade_rows(rows, SYMBOLS)
    with h5py.File(out / "results.h5", "r") as f:
        assert sorted(f["top"]) == ["001", "002", "003"]
        for position, unit in enumerate(best, start=1):
            g = f[f"top/{position:03d}"]
            assert g.attrs["symbol"] == unit["symbol"] and g.attrs["params_id"] == unit["params_id"]
            equity = g["equity"][:]
            assert g["times"].shape == equity.shape == (7 * 1440,)
            assert np.all(np.diff(g["times"][:]) == 60_000)
            # the replayed equity curve ends where the sweep's metrics say
            assert equity[-1] / INITIAL - 1 == pytest.approx(unit["metrics"]["total_return"],
                                                             rel=1e-9, abs=1e-12)
            mine = [r for r in rows if r["symbol"] == unit["symbol"]
                    and int(r["params_id"]) == unit["params_id"]]
            real = [r for r in mine if r["paper"] == "0"]
            assert len(real) == unit["metrics"]["trades"]
            assert sum(float(r["pnl"]) for r in real) == pytest.approx(equity[-1] - INITIAL,
                                                                     abs=1e-6 * INITIAL)
    assert {(r["symbol"], int(r["params_id"])) for r in rows} <= \
        {(u["symbol"], u["params_id"]) for u in best}

    again = load_again(out)
    assert again == load_again(out.parent, "job.toml")  # OUT/job.toml is the same job
    assert again.n_combinations == len(grid) and again.symbols == SYMBOLS
    run = json.loads((out / "run.json").read_text())
    assert run["complete"] and run["ranks"] == 1 and run["units"] == 8


def test_replay_curves_of_one_symbol_share_one_time_axis_and_top_0_replays_nothing(
        cli, tmp_path, store):
    from binance_cluster.backtest.results import read_curves

    one = SWEEP.replace('symbols = "all"', f'symbols = ["{SYMBOLS[0]}"]')
    code, _, stderr, out = run_job(cli, tmp_path, one, store, name="one")
    assert code == 0, stderr
    curves = read_curves(out)
    assert [c[0] for c in curves] == ["top/001", "top/002", "top/003"]
    for _, times, equity, attrs in curves:
        assert attrs["symbol"] == SYMBOLS[0]
        assert np.array_equal(times, curves[0][1]) and times.shape == equity.shape
    with h5py.File(out / "results.h5", "r") as f:  # stored once, linked from the other curves
        addresses = {h5py.h5o.get_info(f[f"top/{k:03d}/times"].id).addr for k in (1, 2, 3)}
        assert len(addresses) == 1
        assert len({h5py.h5o.get_info(f[f"top/{k:03d}/equity"].id).addr for k in (1, 2, 3)}) == 3

    code, _, stderr, out = run_job(cli, tmp_path, SWEEP, store, "--top", "0", name="none")
    assert code == 0, stderr
    assert read_curves(out) == [] and read_trades(out) == []
    assert len(json.loads((out / "summary.json").read_text())["units"]) == len(SYMBOLS) * 6


def load_again(directory, name: str = "job.toml"):
    from binance_cluster.backtest.job import load_job

    return load_job(directory / name)


def test_portfolio_results(cli, tmp_path, store):
    code, stdout, stderr, out = run_job(cli, tmp_path, PORTFOLIO, store)
    assert code == 0, stderr
    assert "portfolio:" in stdout and "all 4 units finished" in stdout
    summary = json.loads((out / "summary.json").read_text())
    portfolio = summary["portfolio"]
    assert portfolio["symbols"] == list(SYMBOLS) and portfolio["error"] is None
    assert [u["symbol"] for u in summary["units"]] == list(SYMBOLS)
    for unit in summary["units"]:
        assert unit["error"] is None and unit["candles"] == 7 * 1440
        assert unit["params"]["fast"] == 10 and unit["params"]["slow"] == 60
        assert unit["metrics"]["trades"] >= unit["portfolio_trades"] >= 0
    rows = read_trades(out)
    check_trade_rows(rows, SYMBOLS)
    real = [r for r in rows if r["paper"] == "0"]
    pm = portfolio["metrics"]
    assert len(real) == pm["trades"] == sum(u["portfolio_trades"] for u in summary["units"]) > 0
    # never more than max_positions open at once
    events = sorted([(int(r["entry_time_ms"]), 1) for r in real] +
                    [(int(r["exit_time_ms"]), -1) for r in real])
    assert max(np.cumsum([e for _, e in events])) <= 2
    with h5py.File(out / "results.h5", "r") as f:
        equity = f["portfolio/equity"][:]
        assert f["portfolio/times"].shape == equity.shape == (7 * 1440,)
    assert equity[-1] / INITIAL - 1 == pytest.approx(pm["total_return"], rel=1e-9, abs=1e-12)
    assert sum(float(r["pnl"]) for r in real) == pytest.approx(equity[-1] - INITIAL, abs=1e-6 * INITIAL)
    # the exchange fee model: dust left by the last exit of each symbol, reported
    assert portfolio["refused_sells"] == 0 and portfolio["rejected_entries"] >= 0
    for symbol in SYMBOLS:
        mine = [r for r in real if r["symbol"] == symbol]
        left = float(mine[-1]["dust"]) if mine else 0.0
        assert portfolio["dust"][symbol] == left
        for r in mine:
            assert float(r["sold_quantity"]) + float(r["dust"]) >= float(r["quantity"]) * 0.999 - 1e-9


def test_resampled_interval(cli, tmp_path, store):
    text = SWEEP.replace('symbols = "all"', 'symbols = ["ETHUSDT", "XRPUSDT"]\ninterval = "15m"')
    code, stdout, stderr, out = run_job(cli, tmp_path, text, store)
    assert code == 0, stderr
    with h5py.File(out / "results.h5", "r") as f:
        times = f["top/001/times"][:]
    assert times.shape == (7 * 96,) and np.all(np.diff(times) == 15 * 60_000)


def corrupt_close(root, symbol: str, row: int) -> None:
    """Write NaN into a stored close price: the file stays readable, the data is bad."""
    with h5py.File(root / f"{symbol}.h5", "r+") as f:
        f["1m/close"][row] = np.nan


def test_failed_units_are_reported_and_the_others_finish(cli, tmp_path, store):
    broken = tmp_path / "broken"
    shutil.copytree(store, broken)
    corrupt_close(broken, "LAYERUSDT", 1234)
    code, stdout, stderr, out = run_job(cli, tmp_path, SWEEP, broken)
    assert code == 1, stderr
    assert "FAILED: 2 of 8 units (exit code 1)" in stdout
    assert "LAYERUSDT[0:3]" in stdout and "row 1234" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == 6
    for unit in summary["units"]:
        if unit["symbol"] == "LAYERUSDT":
            assert unit["metrics"] is None and "close is not a finite number" in unit["error"]
            assert "LAYERUSDT.h5" in unit["error"]
        else:
            assert unit["error"] is None and unit["metrics"]["trades"] >= 0
    assert (out / "trades.csv").exists() and (out / "results.h5").exists()


def test_failed_symbol_is_left_out_of_the_portfolio(cli, tmp_path, store):
    broken = tmp_path / "broken"
    shutil.copytree(store, broken)
    with h5py.File(broken / "XRPUSDT.h5", "r+") as f:
        del f["1m/high"]  # a file that opens and lists its candles but cannot be read
    code, stdout, stderr, out = run_job(cli, tmp_path, PORTFOLIO, broken)
    assert code == 1, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["portfolio"]["symbols"] == ["BTCUSDT", "ETHUSDT", "LAYERUSDT"]
    assert summary["portfolio"]["metrics"]["trades"] >= 0
    xrp = summary["units"][3]
    assert xrp["symbol"] == "XRPUSDT" and xrp["error"] and xrp["metrics"] is None
    assert {r["symbol"] for r in read_trades(out)} <= {"BTCUSDT", "ETHUSDT", "LAYERUSDT"}


def test_rerun_replaces_earlier_results(cli, tmp_path, store):
    code, *_, out = run_job(cli, tmp_path, SWEEP, store)
    assert code == 0
    (out / "stale.txt").write_text("mine")
    first = (out / "summary.json").read_bytes()
    code, *_, out = run_job(cli, tmp_path, SWEEP, store, "--top", "1", "--rank-by", "sharpe")
    assert code == 0
    assert (out / "summary.json").read_bytes() != first  # rank_by is part of the summary
    with h5py.File(out / "results.h5", "r") as f:
        assert list(f["top"]) == ["001"]
    assert (out / "stale.txt").read_text() == "mine"  # only result files are replaced
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_unit_plan_depends_on_the_job_only(tmp_path, store):
    from binance_cluster.backtest.job import load_job

    path = tmp_path / "job.toml"
    path.write_text(SWEEP.format(store=store, out=tmp_path / "o"))
    job = load_job(path)
    units = plan_units(job, {s: 100 for s in SYMBOLS})
    assert [(u.symbol, u.lo, u.hi) for u in units] == \
        [(s, lo, hi) for s in SYMBOLS for lo, hi in ((0, 3), (3, 6))]
    assert [u.cost for u in units] == [300.0] * 8
    assert chunk_bounds(100, 64) == [(0, 50), (50, 100)] and chunk_bounds(100, 100) == [(0, 100)]
    assert chunk_bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert chunk_bounds(5, 64) == [(0, 5)]


def test_ranking_puts_units_without_trades_nan_and_errors_last():
    from binance_cluster.backtest.driver import rank_entries

    def e(sharpe, trades, dd=0.1, error=None):
        return {"metrics": None if error else {"sharpe": sharpe, "trades": trades,
                                               "max_drawdown": dd}, "error": error}

    entries = [e(0.0, 0), e(-1.0, 5, 0.3), e(float("nan"), 3), e(2.0, 4, 0.5), e(None, 0, error="x"),
               e(-1.0, 7, 0.2)]
    assert rank_entries(entries, "sharpe") == [3, 1, 5, 0, 2]
    assert rank_entries(entries, "max_drawdown") == [2, 5, 1, 3, 0]  # smaller is better


def test_align_fills_missing_bars():
    parts = [dict(times=np.array([0, 60_000, 120_000]), open=np.array([1.0, 2, 3]),
                  high=np.array([1.0, 2, 3]), low=np.array([1.0, 2, 3]), close=np.array([1.0, 2, 3]),
                  entry=np.array([True, False, False]), exit=np.array([False, False, True]),
                  score=np.array([0.5, 0.1, np.nan])),
             dict(times=np.array([60_000, 180_000]), open=np.array([7.0, 8]), high=np.array([7.0, 8]),
                  low=np.array([7.0, 8]), close=np.array([7.0, 8]), entry=np.array([True, True]),
                  exit=np.array([False, False]), score=np.array([1.0, 2.0]))]
    g = align(parts)
    assert g["times"].tolist() == [0, 60_000, 120_000, 180_000]
    assert np.array_equal(g["close"], np.array([[1, np.nan], [2, 7], [3, np.nan], [np.nan, 8]]),
                          equal_nan=True)
    assert g["entry"].tolist() == [[True, False], [False, True], [False, False], [False, True]]
    assert g["close"].flags.c_contiguous and g["entry"].dtype == bool


def test_atomic_write_never_leaves_a_partial_file(tmp_path, monkeypatch):
    import binance_cluster.backtest.results as results

    target = tmp_path / "summary.json"
    atomic_write(target, "old\n")

    def crash(src, dst):
        raise OSError("killed before the rename")

    monkeypatch.setattr(results.os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write(target, "new\n" * 1000)
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_warm_up_command_compiles_and_stamps_the_cache(cli):
    from binance_cluster.kernels.cache import is_warm, warm_keys

    code, out, err = cli("warm-up", "--strategies", "sma_cross")
    assert code == 0, err
    assert "warmed 1 strategy/interval pairs" in out
    assert is_warm(warm_keys(["sma_cross"], ("sweep", "portfolio"), ("1m",)))
    assert not is_warm(warm_keys(["sma_cross"], ("sweep",), ("1h",)))
    code, out, err = cli("warm-up", "--strategies", "moon_shot")
    assert code == 2 and "unknown strategy 'moon_shot'" in err
