"""What the project shows a new user runs: every job file in jobs/ as shipped (from a folder
laid out like the repository: data/demo from demo-data, data/real imported from the shared
data) and the README's python-binance example against exchange-sim."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from binance_cluster.exchange.emulator import EmulatorConfig, run_emulator

ROOT = Path(__file__).resolve().parents[1]
JOBS = sorted(p.name for p in (ROOT / "jobs").glob("*.toml"))
TRAINED = {"ml.toml"}          # jobs whose backtest needs `train` first
LIVE = {"paper.toml": "paper", "live.toml": "testnet"}   # jobs that also trade (live command)


@pytest.fixture(scope="module")
def workdir(shared_data, tmp_path_factory):
    """A folder with the repository's default stores: data/demo and data/real."""
    from binance_cluster.cli import main

    root = tmp_path_factory.mktemp("user")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["demo-data", "--store", str(root / "data" / "demo")]) == 0
        assert main(["import", "--store", str(root / "data" / "real"),
                     *sorted(str(p) for p in shared_data.glob("*-1m.csv.gz"))]) == 0
    return root


def test_every_job_file_is_exercised():
    assert set(JOBS) == {"demo.toml", "demo_portfolio.toml", "ml.toml", "portfolio_real.toml",
                         "sweep_real.toml", "paper.toml", "live.toml"}, \
        "a new job file: add what it needs to this test"


@pytest.mark.slow
@pytest.mark.parametrize("name", JOBS)
def test_each_job_file_runs_as_shipped(name, workdir, cli, monkeypatch):
    monkeypatch.chdir(workdir)
    job = ROOT / "jobs" / name
    if name in TRAINED:
        code, out, err = cli("train", job, "--no-progress")
        assert code == 0, err
    code, out, err = cli("backtest", job, "--no-progress")
    assert code == 0, err
    assert "finished (exit code 0)" in out
    output = re.search(r"^results in (.+)$", out, re.M).group(1)
    summary = json.loads((Path(output) / "summary.json").read_text())
    assert Path(output).is_relative_to(workdir)          # the job's relative paths, from the folder
    assert summary, f"{name}: empty summary"


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.parametrize("name", sorted(LIVE))
def test_each_live_job_trades_as_shipped_against_exchange_sim(name, workdir, monkeypatch):
    """jobs/paper.toml on paper and jobs/live.toml on the emulator as a testnet (keys from the
    environment), under mpirun -n 2 as jobs/live.sh starts them, a few bars of replay."""
    from binance_cluster.exchange.emulator import EmulatorControl
    from binance_cluster.candles.store import CandleStore
    from binance_cluster.live.journal import Journal
    from support.live import ENV, read_heartbeat, run_stepped, write_accounts

    monkeypatch.chdir(workdir)
    store = CandleStore(workdir / "data" / "real")
    first = store.span("BTCUSDT", "1m")[0] + 3 * 86_400_000
    accounts = write_accounts(workdir / f"accounts-{name}.toml", 1000.0, 0.001)
    config = EmulatorConfig(store=store.root, speed=0.0, start_ms=first + 60_000, weight_limit=0,
                            accounts=accounts, forming_candle="synthetic")
    output = workdir / "results" / name.removesuffix(".toml")
    with run_emulator(config) as url:
        run = run_stepped(ROOT / "jobs" / name, url, EmulatorControl(url), first, 3, 60_000,
                          output / "heartbeat.json", ranks=2, mode=LIVE[name], env=ENV)
    assert run.code == 0, run.stderr[-2000:]
    assert run.bars == [first, first + 60_000, first + 120_000]
    assert run.stdout.count(" UTC  latency ") == 3
    assert read_heartbeat(output / "heartbeat.json")["bars"] == 3
    with Journal(output / "journal.sqlite", readonly=True) as journal:
        assert [b.bar_ms for b in journal.bars()] == run.bars


def readme_python_example() -> str:
    """The README's python-binance example (the first ```python block)."""
    text = (ROOT / "README.md").read_text()
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


def test_the_readme_python_binance_example_runs_against_exchange_sim(workdir, capsys):
    code = readme_python_example()
    assert 'client.API_URL = "http://127.0.0.1:8765/api"' in code
    with run_emulator(EmulatorConfig(store=workdir / "data" / "demo", speed=0.0)) as url:
        exec(compile(code.replace("http://127.0.0.1:8765", url.rstrip("/")), "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FILLED ") and float(out[0].split()[1]) > 0
    assert "'free': '0.00999000'" in out[1]      # the README: the fee is paid in BTC
