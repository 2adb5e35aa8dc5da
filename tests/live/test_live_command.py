"""The `live` command: keys stay on rank 0 and out of every file and output, a dead worker rank
ends the job within seconds, and what it refuses to start with (one line, exit code 2)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from binance_cluster.candles.store import CandleStore
from binance_cluster.exchange.emulator import EmulatorControl
from binance_cluster.types import interval_ms
from support.live import (DAY0, ENV, KEY, SECRET, build_source, exchange_rules, live_job_text,
                          memory_holds, rank_pid, run_stepped, stepped_emulator)

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")
INTERVAL = "15m"
BAR_MS = interval_ms(INTERVAL)
FIRST = DAY0 + 86_400_000
CASH, FEE, SLIPPAGE = 10_000.0, 0.001, 0.0002
SMA = "[strategy.params]\nfast = 3\nslow = 8\n[risk]\nstop_loss = false\n"


@pytest.fixture(scope="module")
def source(shared_data, tmp_path_factory) -> CandleStore:
    """Two days of four real symbols (1m) for the emulator."""
    return build_source(shared_data, tmp_path_factory.mktemp("command") / "source", SYMBOLS, 2)


def write_job(tmp_path: Path, url: str, extra: str = "", bars: int = 20) -> Path:
    job = tmp_path / "keys_job.toml"
    job.write_text(live_job_text("sma_cross", SMA, SYMBOLS, INTERVAL, tmp_path / "live-store",
                                 tmp_path / "out", FIRST, FIRST + bars * BAR_MS,
                                 exchange_rules(url, SYMBOLS), CASH, FEE, SLIPPAGE, extra))
    return job


@pytest.mark.slow
@pytest.mark.mpi
def test_keys_stay_on_rank_0_and_out_of_every_file_and_output(source, tmp_path):
    bars = 20
    memory = {}

    def look(k, proc):
        if k == 10:          # mid-run: the worker's memory never held the key or the secret
            worker, root = rank_pid(1, "keys_job.toml"), rank_pid(0, "keys_job.toml")
            memory["root"] = memory_holds(root, KEY.encode())
            memory["worker"] = memory_holds(worker, KEY.encode()) or memory_holds(worker, SECRET.encode())

    with stepped_emulator(source, tmp_path, FIRST, BAR_MS, CASH, FEE, SLIPPAGE) as url:
        job = write_job(tmp_path, url, bars=bars)
        run = run_stepped(job, url, EmulatorControl(url), FIRST, bars, BAR_MS,
                          tmp_path / "out" / "heartbeat.json", ranks=2, on_bar=look,
                          extra=("--report",))
    assert run.code == 0, run.stderr[-2000:]
    assert memory == {"root": True, "worker": False}     # the scan finds it where it is
    out = tmp_path / "out"
    assert (out / "journal.sqlite").is_file() and (tmp_path / "live-store" / "BTCUSDT.h5").is_file()
    # --report: the live report beside the journal, its path printed; scanned for the key below
    assert f"report: {out / 'report.html'}" in run.stdout
    assert (out / "report.pdf").is_file() and len(list((out / "figures").glob("*.png"))) == 6
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "accounts.toml"]
    assert len(written) >= 8
    for path in written:
        data = path.read_bytes()
        assert KEY.encode() not in data and SECRET.encode() not in data, path
    for text in (run.stdout, run.stderr):
        assert KEY not in text and SECRET not in text
    assert run.stdout.count(" UTC  latency ") == bars


@pytest.mark.slow
@pytest.mark.mpi
def test_a_worker_rank_killed_mid_run_ends_the_job_non_zero_within_seconds(source, tmp_path):
    killed = {}

    def kill(k, proc):
        if k == 4:
            os.kill(rank_pid(1, "keys_job.toml"), signal.SIGKILL)
            killed["at"] = time.monotonic()

    with stepped_emulator(source, tmp_path, FIRST, BAR_MS, CASH, FEE, SLIPPAGE) as url:
        job = write_job(tmp_path, url)
        run = run_stepped(job, url, EmulatorControl(url), FIRST, 20, BAR_MS,
                          tmp_path / "out" / "heartbeat.json", ranks=2, on_bar=kill,
                          bar_timeout=30)
        ended = time.monotonic()
    assert run.code not in (0, None)
    assert ended - killed["at"] < 10, f"the job took {ended - killed['at']:.1f} s to end"
    assert len(run.bars) == 5


def test_live_mode_refuses_a_job_without_every_risk_limit(source, tmp_path, cli):
    job = tmp_path / "live.toml"
    job.write_text(live_job_text("sma_cross", SMA, SYMBOLS, INTERVAL, tmp_path / "s", tmp_path / "o",
                                 FIRST, FIRST + BAR_MS, "", CASH, FEE, SLIPPAGE,
                                 "[live.risk]\nmax_order_notional = 100\nmax_open_positions = 2\n"))
    code, out, err = cli("live", job, "--mode", "live", "--confirm-live")
    assert code == 2
    assert err.strip().endswith("live.risk.max_exposure: missing: --mode live trades real money and "
                                "needs every risk limit (max_order_notional, max_open_positions, "
                                "max_exposure, max_daily_loss)")
    assert len(err.strip().splitlines()) == 1


def test_live_mode_needs_the_confirmation_flag_and_the_environment(source, tmp_path, cli, monkeypatch):
    job = tmp_path / "live.toml"
    job.write_text(live_job_text("sma_cross", SMA, SYMBOLS, INTERVAL, tmp_path / "s", tmp_path / "o",
                                 FIRST, FIRST + BAR_MS, "", CASH, FEE, SLIPPAGE,
                                 "[live.risk]\nmax_order_notional = 100\nmax_open_positions = 2\n"
                                 "max_exposure = 500\nmax_daily_loss = 50\n"))
    monkeypatch.delenv("BINANCE_CLUSTER_LIVE", raising=False)
    code, out, err = cli("live", job, "--mode", "live")
    assert code == 2 and "needs the --live flag" in err
    code, out, err = cli("live", job, "--mode", "live", "--confirm-live")
    assert code == 2 and "set BINANCE_CLUSTER_LIVE=yes" in err
    code, out, err = cli("live", job, "--mode", "paper", "--confirm-live")
    assert code == 2 and "--confirm-live: only with --mode live" in err


def test_testnet_refuses_missing_keys_and_keys_the_exchange_does_not_accept(source, tmp_path, cli,
                                                                           monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    with stepped_emulator(source, tmp_path, FIRST, BAR_MS, CASH, FEE, SLIPPAGE) as url:
        job = write_job(tmp_path, url)
        code, out, err = cli("live", job, "--mode", "testnet", "--base-url", url, "--max-bars", "1")
        assert code == 2
        assert "TEST_BINANCE_API_KEY and TEST_BINANCE_API_SEC not set in the environment" in err
        monkeypatch.setenv("TEST_BINANCE_API_KEY", "bcNotAnAccountKey")
        monkeypatch.setenv("TEST_BINANCE_API_SEC", "bcNotItsSecret")
        code, out, err = cli("live", job, "--mode", "testnet", "--base-url", url, "--max-bars", "1")
    assert code == 2
    assert "TEST_BINANCE_API_KEY: the testnet exchange at" in err and "does not accept this key" in err
    assert "bcNotAnAccountKey" not in err + out and "bcNotItsSecret" not in err + out
    assert not (tmp_path / "out" / "journal.sqlite").exists()       # refused before the journal
