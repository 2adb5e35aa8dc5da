"""Parity: `mpirun -n 2 binance-cluster live` against the emulator replaying a day of the real 1m
candles, its replay clock stepped bar by bar, makes the trades `backtest` of the same job makes
on the same candles (symbol, entry and exit time, side, quantity, prices, fees), in portfolio
mode, with the real python-binance client over HTTP (`--mode testnet --base-url`)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from binance_cluster.backtest.results import read_trades
from binance_cluster.candles.store import CandleStore
from binance_cluster.exchange.emulator import EmulatorConfig, EmulatorControl, run_emulator
from binance_cluster.types import interval_ms
from support.live import exchange_rules, journal_trades, run_stepped, write_accounts
from support.real_data import read_real

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "LINKUSDT", "SUIUSDT", "AVAXUSDT", "LTCUSDT")
INTERVAL = "15m"
BAR_MS = interval_ms(INTERVAL)
DAY0 = 1_746_403_200_000       # 2025-05-05 00:00 UTC
DAYS = 4                        # stored: two days of history, then the traded day
HISTORY_DAYS = 2
BARS = 96                       # the live window: one day of 15m bars (1,440 real 1m candles)
FEE, SLIPPAGE, CASH = 0.001, 0.0002, 10_000.0

STRATEGIES = {
    "sma_cross": "[strategy.params]\nfast = 3\nslow = 8\n[risk]\nstop_loss = false\ntake_profit = false\n",
    "momentum_burst": ("[strategy.params]\nwindow = 3\nmin_growth = 0.1\nmin_weight = 2\nroom = 0.0\n"
                       "band = 0.2\n"
                       "[risk]\nstop_loss = false\ntake_profit = false\nmax_hold_bars = 4\n"),
}


@pytest.fixture(scope="module")
def source(shared_data, tmp_path_factory) -> CandleStore:
    """The emulator's store: four days of eight real symbols, 1m, from 2025-05-05."""
    store = CandleStore(tmp_path_factory.mktemp("parity") / "source")
    for s in SYMBOLS:
        store.append(s, "1m", read_real(shared_data, s, DAY0, DAY0 + DAYS * 86_400_000),
                     source="tests: shared_data")
    return store


def job_text(strategy: str, store: Path, output: Path, first: int, rules: str) -> str:
    risk_and_params = STRATEGIES[strategy]
    params, risk = risk_and_params.split("[risk]\n")
    return (f'store = "{store}"\nsymbols = {json.dumps(list(SYMBOLS))}\ninterval = "{INTERVAL}"\n'
            f'start = {first}\nend = {first + BARS * BAR_MS}\nmode = "portfolio"\noutput = "{output}"\n'
            f'[strategy]\nname = "{strategy}"\n{params}'
            f'[risk]\ninitial_cash = {CASH}\nstake = 0.3\nfee_rate = {FEE}\nslippage = {SLIPPAGE}\n'
            f'max_positions = 3\n{risk}\n{rules}\n[live]\npoll_seconds = 0.02\n')


def run_parity(strategy: str, source: CandleStore, tmp_path: Path, cli, ranks: int = 2):
    first = DAY0 + HISTORY_DAYS * 86_400_000
    accounts = write_accounts(tmp_path / "accounts.toml", CASH, FEE)
    config = EmulatorConfig(store=source.root, speed=0.0, start_ms=first + BAR_MS, weight_limit=0,
                            accounts=accounts, slippage_bps=SLIPPAGE * 10_000,
                            forming_candle="synthetic")
    out = tmp_path / "out"
    with run_emulator(config) as url:
        job = tmp_path / f"{strategy}.toml"
        job.write_text(job_text(strategy, tmp_path / "live-store", out, first,
                                exchange_rules(url, SYMBOLS)))
        run = run_stepped(job, url, EmulatorControl(url), first, BARS, BAR_MS,
                          out / "heartbeat.json", ranks=ranks)
    print(f"{strategy}: live run of {BARS} bars at -n {ranks}: {run.seconds:.1f} s")
    assert run.code == 0, run.stderr[-3000:]
    assert run.bars == [first + k * BAR_MS for k in range(BARS)]
    code, text, err = cli("backtest", job, "--store", source.root, "--output", tmp_path / "bt",
                          "--no-progress")
    assert code == 0, err
    return run, read_trades(tmp_path / "bt"), journal_trades(out / "journal.sqlite"), first


def same_trades(backtest: dict, closed: list[dict], still_open: list[dict], end: int) -> int:
    """Assert the live fills make the backtest's trades; returns how many."""
    n = len(backtest["pnl"])
    ended = backtest["exit_reason"] == "end"
    # the backtest decides nothing at its last close and sells there (reason "end"); the live
    # loop decided at that close and sent those orders at the next open, `end`
    live = sorted((t for t in closed if t["exit"]["time"] < end),
                  key=lambda t: (t["entry"]["time"], t["symbol"]))
    still_open = still_open + [t for t in closed if t["exit"]["time"] >= end]
    want = sorted((i for i in range(n) if not ended[i]),
                  key=lambda i: (backtest["entry_time_ms"][i], backtest["symbol"][i]))
    assert [(t["symbol"], t["entry"]["time"], t["exit"]["time"]) for t in live] == \
        [(backtest["symbol"][i], backtest["entry_time_ms"][i], backtest["exit_time_ms"][i]) for i in want]
    for t, i in zip(live, want):
        assert float(t["entry"]["price"]) == backtest["entry_price"][i]
        assert float(t["exit"]["price"]) == backtest["exit_price"][i]
        assert float(t["entry"]["qty"]) == backtest["quantity"][i]
        assert float(t["exit"]["qty"]) == float(backtest["sold_quantity"][i])   # read as text
        fees = t["entry"]["fee"] + t["exit"]["fee"]
        assert abs(float(fees) - backtest["fees"][i]) <= 1e-8, (t, backtest["fees"][i])
        pnl = t["exit"]["quote"] - t["exit"]["fee"] - t["entry"]["quote"]
        assert abs(float(pnl) - backtest["pnl"][i]) <= 1e-8
    # what the backtest sells at its end the live account held then, bought at the same fill
    held = sorted((t["symbol"], t["entry"]["time"], float(t["entry"]["qty"])) for t in still_open
                  if t["entry"]["time"] < end)
    assert held == sorted((backtest["symbol"][i], backtest["entry_time_ms"][i], backtest["quantity"][i])
                          for i in range(n) if ended[i])
    return len(want)


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_live_trades_as_the_backtest_bar_by_bar(strategy, source, tmp_path, cli):
    run, backtest, (closed, still_open), first = run_parity(strategy, source, tmp_path, cli)
    trades = same_trades(backtest, closed, still_open, first + BARS * BAR_MS)
    assert trades >= 5, f"{strategy}: only {trades} closed trades in the window"
    assert len(set(backtest["symbol"])) >= 2
    lines = [line for line in run.stdout.splitlines() if " UTC  latency " in line]
    assert len(lines) == BARS
    print(f"{strategy}: {trades} trades, {run.seconds:.1f} s for {BARS} bars")
