"""Parity: `mpirun -n 2 binance-cluster live` against the emulator replaying a day of the real 1m
candles, its replay clock stepped bar by bar, makes the trades `backtest` of the same job makes
on the same candles (symbol, entry and exit time, side, quantity, prices, fees), in portfolio
mode, with the real python-binance client over HTTP (`--mode testnet --base-url`)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from binance_cluster.backtest.results import read_trades
from binance_cluster.candles.store import CandleStore
from binance_cluster.exchange.emulator import EmulatorControl
from binance_cluster.types import interval_ms
from support.live import (DAY0, build_source, exchange_rules, journal_trades, live_job_text,
                          run_stepped, same_trades, stepped_emulator)

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "LINKUSDT", "SUIUSDT", "AVAXUSDT", "LTCUSDT")
# one day of bars: 30m for the rule strategies (48 bars), 15m for ml_barrier (96 bars: its
# models, fitted on 15m bars, need the rows)
INTERVALS = {"sma_cross": "30m", "momentum_burst": "30m", "ml_barrier": "15m"}
DAYS = 5                        # stored: three days of history, the traded day, one more
HISTORY_DAYS = 3
FEE, SLIPPAGE, CASH = 0.001, 0.0002, 10_000.0

STRATEGIES = {
    "sma_cross": "[strategy.params]\nfast = 3\nslow = 8\n[risk]\nstop_loss = false\ntake_profit = false\n",
    "momentum_burst": ("[strategy.params]\nwindow = 3\nmin_growth = 0.1\nmin_weight = 2\nroom = 0.0\n"
                       "band = 0.2\n"
                       "[risk]\nstop_loss = false\ntake_profit = false\nmax_hold_bars = 4\n"),
    "ml_barrier": "[strategy.params]\nmargin = -0.3\n[risk]\nstop_loss = false\ntake_profit = false\n"
                  "max_hold_bars = 4\n",
}
# ml_barrier's models: day folds on 15m bars of short features, labelled +1 % before -2 % within
# 8 bars; with at least 50 training rows only the fold of 2025-05-07 trades, on the traded day
TRAIN = ('[strategy.params]\nmargin = 0.0\n[risk]\ntake_profit = 0.01\nstop_loss = 0.02\n'
         'max_hold_bars = 8\n')
TRAIN_TABLES = ('[train]\nfold = "day"\nmin_train_rows = 50\nmin_eval_rows = 20\n'
                '[train.features]\nlags = [0, 1, 2, 4, 8]\nmean_window = 16\nrsi = 6\n')


@pytest.fixture(scope="module")
def source(shared_data, tmp_path_factory) -> CandleStore:
    """The emulator's store: four days of eight real symbols, 1m, from 2025-05-05."""
    return build_source(shared_data, tmp_path_factory.mktemp("parity") / "source", SYMBOLS, DAYS)


@pytest.fixture(scope="module")
def models(source, tmp_path_factory) -> Path:
    """ml_barrier's models, trained as `binance-cluster train` does (tests/test_examples.py)."""
    from binance_cluster.cli import main

    root = tmp_path_factory.mktemp("models")
    job = root / "train.toml"
    job.write_text(live_job_text("ml_barrier", TRAIN, SYMBOLS, INTERVALS["ml_barrier"], source.root,
                                 root / "out",
                                 None, DAY0 + DAYS * 86_400_000, "", CASH, FEE, SLIPPAGE,
                                 extra=TRAIN_TABLES, top=f'models = "{root / "ml.h5"}"\n'))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", str(job), "--no-progress"]) == 0
    return root / "ml.h5"


def run_parity(strategy: str, source: CandleStore, tmp_path: Path, cli, models: Path | None = None,
               ranks: int = 2):
    interval = INTERVALS[strategy]
    bar_ms = interval_ms(interval)
    bars = 86_400_000 // bar_ms
    first = DAY0 + HISTORY_DAYS * 86_400_000
    out = tmp_path / "out"
    start = first    # the backtest reads each strategy's warm-up history before it
    top = f'models = "{models}"\n' if models is not None else ""
    with stepped_emulator(source, tmp_path, first, bar_ms, CASH, FEE, SLIPPAGE) as url:
        job = tmp_path / f"{strategy}.toml"
        job.write_text(live_job_text(strategy, STRATEGIES[strategy], SYMBOLS, interval,
                                     tmp_path / "live-store", out, start, first + bars * bar_ms,
                                     exchange_rules(url, SYMBOLS), CASH, FEE, SLIPPAGE, top=top))
        run = run_stepped(job, url, EmulatorControl(url), first, bars, bar_ms,
                          out / "heartbeat.json", ranks=ranks)
    print(f"{strategy}: live run of {bars} {interval} bars at -n {ranks}: {run.seconds:.1f} s")
    assert run.code == 0, run.stderr[-3000:]
    assert run.bars == [first + k * bar_ms for k in range(bars)]
    # the store is the record: every candle a bar was decided on is in it once the job ends
    # (its appends are written behind the decisions)
    live = CandleStore(tmp_path / "live-store")
    for s in SYMBOLS:
        stored = live.read(s, interval, first, None).open_time
        assert stored.tolist() == run.bars, s
    code, text, err = cli("backtest", job, "--store", source.root, "--output", tmp_path / "bt",
                          "--no-progress")
    assert code == 0, err
    return run, read_trades(tmp_path / "bt"), journal_trades(out / "journal.sqlite"), first, bars


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_live_trades_as_the_backtest_bar_by_bar(strategy, source, tmp_path, cli, request):
    models = request.getfixturevalue("models") if strategy == "ml_barrier" else None
    run, backtest, (closed, still_open), first, bars = run_parity(strategy, source, tmp_path, cli,
                                                                  models)
    assert backtest["entry_time_ms"].min() >= first            # the live day only
    trades = same_trades(backtest, closed, still_open, first + 86_400_000)
    assert trades >= 5, f"{strategy}: only {trades} closed trades in the window"
    assert len(set(backtest["symbol"])) >= 2
    lines = [line for line in run.stdout.splitlines() if " UTC  latency " in line]
    assert len(lines) == bars
    print(f"{strategy}: {trades} trades, {run.seconds:.1f} s for {bars} bars")
