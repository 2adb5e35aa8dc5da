"""Real outputs the model and live reports are drawn from (built once per test session): a
walk-forward training run on five days of three real symbols, and paper-run journals on a
day of two real symbols."""

from __future__ import annotations

import pytest

from binance_cluster.types import DAY_MS, parse_time_ms
from support.backtest_store import build_store, write_job
from support.model_data import ml_job_text

TRAIN_START = parse_time_ms("2025-05-05")
TRAIN_SYMBOLS = ("BTCUSDT", "ETHUSDT", "LAYERUSDT")
LIVE_SYMBOLS = ("BTCUSDT", "ETHUSDT")

TRAIN_FEATURES = "[train.features]\nrsi = 14\nhour = true"
TREES_MODEL = "[train.model]\nn_rounds = 20"

# beside a journal: the job whose shifts thresholds the win-rate figure applies
LIVE_JOB = """
store = "{store}"
symbols = ["BTCUSDT", "ETHUSDT"]
mode = "portfolio"
output = "{out}"
[strategy]
name = "sma_cross"
[strategy.params]
fast = 10
slow = 60
[risk]
shifts = true
shifts_min_win_rate = 0.5
shifts_min_trades = 2
"""


@pytest.fixture(scope="session")
def train_store(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("train-store")
    build_store(shared_data, root, TRAIN_SYMBOLS, TRAIN_START, TRAIN_START + 5 * DAY_MS)
    return root


@pytest.fixture(scope="session")
def trained(train_store, tmp_path_factory):
    """`trained(kind)`: the output directory of `binance-cluster train` with that model kind."""
    from binance_cluster.cli import main

    root = tmp_path_factory.mktemp("trained")
    done = {}

    def get(kind: str = "logistic"):
        if kind not in done:
            model = TREES_MODEL if kind == "trees" else ""
            job = write_job(root / f"{kind}.toml", ml_job_text(
                train_store, TRAIN_SYMBOLS, root / kind, root / f"{kind}.h5",
                train=f'kind = "{kind}"\n{model}\n{TRAIN_FEATURES}'))
            assert main(["train", str(job), "--no-progress"]) == 0
            done[kind] = root / kind
        return done[kind]

    return get


@pytest.fixture(scope="session")
def paper_run(shared_data, tmp_path_factory):
    """`paper_run(name, **plan)`: a run folder with journal.sqlite from a paper run on a day
    of real BTCUSDT and ETHUSDT candles (support.live.paper_journal) and its job.toml."""
    from support.live import T0, paper_journal
    from support.real_data import read_real

    candles = {s: read_real(shared_data, s, T0, T0 + DAY_MS) for s in LIVE_SYMBOLS}
    root = tmp_path_factory.mktemp("paper")
    done = {}

    def get(name: str = "paper", **plan):
        if name not in done:
            folder = root / name
            folder.mkdir()
            (folder / "job.toml").write_text(LIVE_JOB.format(store=root / "none", out=folder))
            paper_journal(folder / "journal.sqlite", candles, job=name, **plan)
            done[name] = folder
        return done[name]

    return get
