"""Warm-up history: a backtest reads each strategy's warm-up bars before `start`, so its first
decision at `start` is the one a live loop started then would take; it reads nothing else
outside [start, end) (no look-ahead, no dependence on older history)."""

from __future__ import annotations

import csv

import numpy as np

from binance_cluster.candles.store import CandleStore
from binance_cluster.engine.simulate import EXIT_REASONS, Risk, SymbolRules
from binance_cluster.strategies.registry import compute_signals, get_strategy
from binance_cluster.types import Candles
from support.backtest_store import WEEK_MS, WEEK_START
from support.real_data import read_real
from support.reference_sim import reference_run

MIN = 60_000
START = WEEK_START + 2 * 86_400_000
END = WEEK_START + 4 * 86_400_000
SLOW = 60
JOB = """\
store = "{store}"
symbols = ["LAYERUSDT", "XRPUSDT"]
start = 2025-05-07T00:00:00Z
end = 2025-05-09T00:00:00Z
output = "{out}"
top = 8
[strategy]
name = "sma_cross"
[strategy.params]
fast = [5, 10]
slow = [30, {slow}]
[risk]
fee_rate = 0.001
[rules]
tick_size = 0.0001
step_size = 0.1
min_notional = 5.0
"""


def make_store(root, shared_data, change=None) -> CandleStore:
    store = CandleStore(root)
    for symbol in ("LAYERUSDT", "XRPUSDT"):
        c = read_real(shared_data, symbol, WEEK_START, WEEK_START + WEEK_MS)
        if change is not None:
            c = change(c)
        store.append(symbol, "1m", c, source="tests")
    return store


def run(cli, tmp_path, store, name):
    out = tmp_path / name
    path = tmp_path / f"{name}.toml"
    path.write_text(JOB.format(store=store.root, out=out, slow=SLOW))
    code, _, err = cli("backtest", path, "--no-progress")
    assert code == 0, err
    return out


def test_first_decisions_at_start_see_the_warm_up_history(cli, tmp_path, shared_data):
    store = make_store(tmp_path / "store", shared_data)
    out = run(cli, tmp_path, store, "full")
    with open(out / "trades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and min(int(r["entry_time_ms"]) for r in rows) >= START
    # without history an SMA of 60 bars decides nothing before start + 59 bars
    assert any(int(r["entry_time_ms"]) < START + (SLOW - 1) * MIN for r in rows)
    import json

    summary = json.loads((out / "summary.json").read_text())
    top = [u for u in summary["units"] if u["params"] == {"fast": 5, "slow": SLOW}]
    assert len(top) == 2
    # the reference simulator on [start, end) with the signals of the whole history
    rules = SymbolRules(0.0001, 0.1, 5.0)
    for unit in top:
        symbol = unit["symbol"]
        week = read_real(shared_data, symbol, WEEK_START, END)
        sig = compute_signals(get_strategy("sma_cross"), week, {"fast": 5, "slow": SLOW}, "1m")
        i = int(np.searchsorted(week.open_time, START))
        c = week.slice(i, len(week))
        ref = reference_run(c.open_time, c.open, c.high, c.low, c.close, sig.entry[i:],
                            sig.exit[i:], sig.score[i:], Risk(fee_rate=0.001), rules, MIN)
        mine = [r for r in rows if r["symbol"] == symbol and int(r["params_id"]) ==
                unit["params_id"]]
        assert len(mine) == len(ref["trades"]) > 0
        for r, t in zip(mine, ref["trades"]):
            assert int(r["entry_time_ms"]) == t["entry_time"]
            assert int(r["exit_time_ms"]) == t["exit_time"]
            assert float(r["pnl"]) == t["pnl"] or abs(float(r["pnl"]) - t["pnl"]) < 1e-9
            assert r["exit_reason"] == EXIT_REASONS[t["exit_reason"]]


def test_nothing_outside_the_warm_up_and_the_range_is_read(cli, tmp_path, shared_data):
    """Older history dropped and the candles after `end` changed: the same files."""
    full = make_store(tmp_path / "a", shared_data)

    def trim(c: Candles) -> Candles:
        i = int(np.searchsorted(c.open_time, START)) - SLOW
        j = int(np.searchsorted(c.open_time, END))
        cols = {k: v[i:].copy() for k, v in c.columns().items()}
        for name in ("open", "high", "low", "close"):
            cols[name][j - i:] = np.round(cols[name][j - i:] * 1.5, 4)
        return Candles.from_columns(cols)

    trimmed = make_store(tmp_path / "b", shared_data, trim)
    a = run(cli, tmp_path, full, "a_out")
    b = run(cli, tmp_path, trimmed, "b_out")
    for name in ("summary.json", "trades.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
