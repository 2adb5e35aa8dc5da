"""`backtest --report` under real mpirun: rank 0 alone renders the report, once, after the
results are written, and the pictures are those of a serial run's report."""

from __future__ import annotations

import hashlib

import pytest

from support.backtest_store import RULES, build_store

pytestmark = pytest.mark.mpi

SYMBOLS = ("BTCUSDT", "ETHUSDT")
START = 1_746_403_200_000  # 2025-05-05
DAY = 86_400_000

JOB = """\
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
stake = 0.45
max_positions = 2
stop_loss = 0.02
""" + RULES


def _digests(out) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((out / "figures").glob("*.png"))}


def test_rank_0_renders_the_report_once(shared_data, tmp_path, mpirun, cli):
    store = tmp_path / "store"
    build_store(shared_data, store, symbols=SYMBOLS, start=START, end=START + 3 * DAY)
    outs = {}
    for name in ("serial", "mpi"):
        outs[name] = tmp_path / name
        (tmp_path / f"{name}.toml").write_text(JOB.format(store=store, out=outs[name]))
    code, stdout, stderr = cli("backtest", tmp_path / "serial.toml", "--no-progress", "--report")
    assert code == 0, stderr
    proc = mpirun(2, "-m", "binance_cluster", "backtest", tmp_path / "mpi.toml", "--no-progress",
                  "--report")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("report: ")]
    assert len(lines) == 1 and lines[0].startswith(f"report: {outs['mpi'] / 'report.html'}")
    assert _digests(outs["mpi"]) == _digests(outs["serial"])
    assert len(_digests(outs["mpi"])) == 8
