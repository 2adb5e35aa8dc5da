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
                         "sweep_real.toml"}, "a new job file: add what it needs to this test"


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
