"""The backtest under real mpirun: identical result files at 1, 2 and 3 ranks in both modes, bad
input reported once with exit 2, and a fatal error on one rank aborting the job, not hanging it."""

from __future__ import annotations

import json

import pytest

from support.backtest_store import build_store

pytestmark = pytest.mark.mpi

SYMBOLS = ("BTCUSDT", "ETHUSDT", "LAYERUSDT")
DAY = 86_400_000
START = 1_746_403_200_000  # 2025-05-05

JOB = """\
store = "{store}"
symbols = "all"
mode = "{mode}"
top = {top}
chunk_size = 3
rank_by = "sharpe"
[strategy]
name = "sma_cross"
[strategy.params]
fast = {fast}
slow = {slow}
[risk]
fee_rate = 0.001
stake = {stake}
max_positions = 2
[rules]
tick_size = 0.0001
step_size = 0.1
[rules.BTCUSDT]
tick_size = 0.1
step_size = 0.001
[rules.ETHUSDT]
tick_size = 0.01
step_size = 0.001
"""


@pytest.fixture(scope="module")
def store(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("backtest_mpi") / "store"
    build_store(shared_data, root, symbols=SYMBOLS, start=START, end=START + 3 * DAY)
    return root


def job_file(tmp_path, store, mode: str):
    if mode == "sweep":   # every unit replayed: each symbol's replay group lands on some rank
        fast, slow, stake, top = "[5, 10, 20]", "{start = 30, stop = 90, step = 30}", "1.0", 27
    else:
        fast, slow, stake, top = "10", "60", "0.45", 4
    path = tmp_path / f"{mode}.toml"
    path.write_text(JOB.format(store=store, mode=mode, fast=fast, slow=slow, stake=stake, top=top))
    return path


@pytest.mark.parametrize("mode", ["sweep", "portfolio"])
def test_same_results_at_1_2_and_3_ranks(mode, tmp_path, store, mpirun):
    job = job_file(tmp_path, store, mode)
    files = {}
    for n in (1, 2, 3):
        out = tmp_path / f"out{n}"
        proc = mpirun(n, "-m", "binance_cluster", "backtest", job, "--output", out,
                      "--no-progress", timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "units finished (exit code 0)" in proc.stdout
        assert proc.stdout.count("results in") == 1  # rank 0 alone prints
        run = json.loads((out / "run.json").read_text())
        assert run["ranks"] == n
        files[n] = {name: (out / name).read_bytes() for name in ("summary.json", "trades.csv")}
    assert files[1] == files[2] == files[3]
    summary = json.loads(files[1]["summary.json"])
    expected_units = len(SYMBOLS) * (9 if mode == "sweep" else 1)
    assert len(summary["units"]) == expected_units and summary["failed"] == 0
    assert files[1]["trades.csv"].count(b"\n") > 1  # some trades, not just the header


def test_bad_input_is_reported_once_with_exit_2(tmp_path, store, mpirun):
    job = job_file(tmp_path, store, "sweep")
    job.write_text(job.read_text().replace("fast = [5, 10, 20]", "fast = [5, 100000000]"))
    proc = mpirun(2, "-m", "binance_cluster", "backtest", job, "--output", tmp_path / "out",
                  timeout=60)
    assert proc.returncode == 2, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "strategy.params.fast: 100000000 is above the maximum" in errors[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("rank", [0, 1])
def test_fatal_error_on_one_rank_aborts_the_job(rank, tmp_path, store, mpirun):
    job = job_file(tmp_path, store, "sweep")
    proc = mpirun(2, "-m", "binance_cluster", "backtest", job, "--output", tmp_path / "out",
                  "--no-progress", f"--fail-rank={rank}", timeout=60)
    assert proc.returncode != 0
    assert f"injected fault on rank {rank}" in proc.stderr
    assert not (tmp_path / "out" / "summary.json").exists()
