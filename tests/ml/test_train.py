"""`binance-cluster train` under real mpirun: same models and figures at 1 and 2 ranks, then the
backtest of the same job trades them; bad jobs exit 2 with one line naming the key."""

from __future__ import annotations

import json

import numpy as np
import pytest

from binance_cluster.ml.model_store import ModelStore
from binance_cluster.types import DAY_MS, parse_time_ms
from support.backtest_store import build_store, write_job
from support.model_data import ml_job_text

pytestmark = pytest.mark.mpi

START = parse_time_ms("2025-05-05")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "LAYERUSDT")

FEATURES = "\n[train.features]\nrsi = 14\nhour = true"


@pytest.fixture(scope="module")
def store(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("mlstore")
    build_store(shared_data, root, SYMBOLS, START, START + 5 * DAY_MS)
    return root


def _job(tmp_path, store, name="job", extra="", train="", top=""):
    return write_job(tmp_path / f"{name}.toml", ml_job_text(
        store, SYMBOLS, tmp_path / f"out-{name}", tmp_path / f"{name}.h5", top=top, risk=extra,
        train=train + FEATURES))


def test_same_models_at_1_and_2_ranks_then_backtest_trades_them(tmp_path, store, mpirun):
    outputs = []
    for n in (1, 2):
        job = _job(tmp_path, store, f"n{n}")
        proc = mpirun(n, "-m", "binance_cluster", "train", job, "--no-progress")
        assert proc.returncode == 0, proc.stderr
        assert "on 3 symbols" in proc.stdout and f"on {n} rank(s)" in proc.stdout
        outputs.append(((tmp_path / f"out-n{n}" / "train.csv").read_text(),
                        ModelStore(tmp_path / f"n{n}.h5")))
    (csv1, store1), (csv2, store2) = outputs
    assert csv1 == csv2
    lines = csv1.splitlines()
    assert len(lines) == 1 + 3 * 4            # 3 symbols x 4 daily folds after the first day
    assert store1.symbols() == list(SYMBOLS)
    for s in SYMBOLS:
        for a, b in zip(store1.records(s, True), store2.records(s, True)):
            assert a.fold == b.fold and a.trades_with == b.trades_with
            for k in a.model:
                assert np.array_equal(a.model[k], b.model[k])
    traded = [r for s in SYMBOLS for r in store1.records(s) if r.threshold is not None]
    assert traded, "some fold should find an edge on its window"

    proc = mpirun(2, "-m", "binance_cluster", "backtest", tmp_path / "n2.toml", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    trades = (tmp_path / "out-n2" / "trades.csv").read_text().splitlines()[1:]
    periods = [(r.symbol, r.trade_start, r.trade_end) for r in traded]
    for row in trades:
        cells = row.split(",")
        symbol, entry_ms = cells[0], int(cells[3])
        # a decision on the bar before the entry: inside a traded period of that symbol
        assert any(s == symbol and lo <= entry_ms - 60_000 < hi for s, lo, hi in periods), row


def test_boosted_trees_train_and_trade_through_the_same_model_store(tmp_path, store, cli):
    job = _job(tmp_path, store, "trees", train='kind = "trees"\n[train.model]\nn_rounds = 20\n'
                                                'class_weight = "balanced"')
    code, out, err = cli("train", job, "--no-progress")
    assert code == 0, err
    records = [r for s in SYMBOLS for r in ModelStore(tmp_path / "trees.h5").records(s, True)]
    assert records and all(r.kind == "trees" for r in records)
    assert any(r.threshold is not None for r in records)
    code, out, err = cli("backtest", job, "--no-progress")
    assert code == 0, err


@pytest.mark.parametrize("train,extra,key", [
    ('colour = "red"', "", "train.colour: unknown key"),
    ('kind = "forest"', "", "train.kind: unknown model kind 'forest'"),
    ('threshold = "median"', "", "train.threshold: unknown value 'median'"),
    ('pool = "yes"', "", "train.pool: must be true or false"),
    ("[train.model]\nl2 = -1", "", "train.model: model l2 = -1"),
    ("[train.model]\nc = 1", "", "train.model: c: unknown parameter of model logistic"),
    ("", "max_hold_bars = false", "risk.max_hold_bars: the label's barrier needs"),
])
def test_bad_train_job_exits_2_with_one_line(tmp_path, store, mpirun, train, extra, key):
    job = _job(tmp_path, store, "bad", extra=extra, train=train)
    text = job.read_text()
    if extra:   # the [risk] table already has max_hold_bars: replace it
        text = text.replace("max_hold_bars = 30\n", "")
        job.write_text(text)
    proc = mpirun(2, "-m", "binance_cluster", "train", job, "--no-progress")
    assert proc.returncode == 2, proc.stderr
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and key in err[0] and str(job) in err[0], proc.stderr
    assert not (tmp_path / "bad.h5").exists()


def test_backtest_without_trained_models_is_an_error_naming_the_file(tmp_path, store, cli):
    job = _job(tmp_path, store, "untrained")
    code, out, err = cli("backtest", job, "--no-progress")
    assert code == 1
    assert "untrained.h5: model store not found" in out


@pytest.mark.parametrize("mode", ["portfolio", "sweep"])
def test_backtest_job_of_ml_barrier_needs_models(tmp_path, store, cli, mode):
    job = _job(tmp_path, store, "check")
    text = job.read_text().replace('mode = "portfolio"', f'mode = "{mode}"')
    job.write_text("\n".join(l for l in text.splitlines() if not l.startswith("models")))
    code, out, err = cli("backtest", job, "--no-progress")
    assert code == 2 and "models: missing" in err and len(err.strip().splitlines()) == 1, err


MARGINS = (-0.1, 0.0, 0.05)


def test_sweep_of_ml_barrier_margins_equals_the_portfolio_runs_of_each_margin(tmp_path, store,
                                                                              cli):
    """A sweep job over margins trades the trained walk-forward models: each (symbol, margin)
    unit's metrics equal that symbol's standalone run in a portfolio job of that margin (the
    general path), and the best unit's replayed trades enter inside traded periods only."""
    import json

    job = _job(tmp_path, store, "msweep", top='top = 1\nrank_by = "trades"')
    code, out, err = cli("train", job, "--no-progress")
    assert code == 0, err
    portfolio_text = job.read_text()
    sweep = tmp_path / "msweep-grid.toml"
    sweep.write_text(portfolio_text.replace('mode = "portfolio"', 'mode = "sweep"').replace(
        'name = "ml_barrier"', f'name = "ml_barrier"\n[strategy.params]\nmargin = {list(MARGINS)}'))
    code, out, err = cli("backtest", sweep, "--no-progress")
    assert code == 0, err
    units = json.loads((tmp_path / "out-msweep" / "summary.json").read_text())["units"]
    assert [(u["symbol"], u["params"]["margin"]) for u in units] == \
        [(s, m) for s in SYMBOLS for m in MARGINS]
    swept = {(u["symbol"], u["params"]["margin"]): u["metrics"] for u in units}
    assert sum(m["trades"] for m in swept.values()) > 0
    assert swept[SYMBOLS[0], -0.1]["trades"] >= swept[SYMBOLS[0], 0.05]["trades"]
    for margin in MARGINS:
        one = tmp_path / f"margin{margin}.toml"
        one.write_text(portfolio_text.replace(str(tmp_path / "out-msweep"),
                                              str(tmp_path / f"out-m{margin}")).replace(
            'name = "ml_barrier"', f'name = "ml_barrier"\n[strategy.params]\nmargin = {margin}'))
        code, out, err = cli("backtest", one, "--no-progress")
        assert code == 0, err
        alone = json.loads((tmp_path / f"out-m{margin}" / "summary.json").read_text())["units"]
        for u in alone:
            assert swept[u["symbol"], margin] == u["metrics"], (u["symbol"], margin)
    periods = [(r.symbol, r.trade_start, r.trade_end) for s in SYMBOLS
               for r in ModelStore(tmp_path / "msweep.h5").records(s) if r.threshold is not None]
    rows = (tmp_path / "out-msweep" / "trades.csv").read_text().splitlines()[1:]
    assert rows
    for row in rows:
        cells = row.split(",")
        assert any(s == cells[0] and lo <= int(cells[3]) - 60_000 < hi for s, lo, hi in periods), row


def _store_image(store: ModelStore) -> dict:
    """Every record of the store: its fields and arrays (bytes), symbol by symbol."""
    out = {}
    for s in store.symbols():
        for r in store.records(s, True):
            fields = {k: getattr(r, k) for k in r.__slots__ if k not in ("model", "diagnostics")}
            out[s, r.fold] = (repr(fields), {k: v.tobytes() for k, v in r.model.items()},
                              {k: v.tobytes() for k, v in r.diagnostics.items()})
    return out


def test_pooled_model_is_one_model_for_all_symbols_the_same_at_1_and_2_ranks(
        tmp_path, store, mpirun, shared_data):
    from binance_cluster.ml.job import load_train_job
    from binance_cluster.ml.model_store import CHAMPION
    from binance_cluster.ml.walkforward import POOL, walk_forward
    from support.real_data import read_real

    images = []
    for n in (1, 2):
        job = _job(tmp_path, store, f"pool{n}", train="pool = true")
        proc = mpirun(n, "-m", "binance_cluster", "train", job, "--no-progress")
        assert proc.returncode == 0, proc.stderr
        images.append(_store_image(ModelStore(tmp_path / f"pool{n}.h5")))
    assert images[0] == images[1]                       # bit for bit
    models = ModelStore(tmp_path / "pool2.h5")
    spec = load_train_job(str(tmp_path / "pool2.toml")).spec
    alone = {s: walk_forward(read_real(shared_data, s, START, START + 5 * DAY_MS), s, spec)
             for s in SYMBOLS}
    by_symbol = {s: models.records(s, True) for s in SYMBOLS}
    fitted = 0
    for k, first in enumerate(by_symbol[SYMBOLS[0]]):
        same = [by_symbol[s][k] for s in SYMBOLS]
        assert all(r.pool == POOL and r.fold == first.fold for r in same)
        assert all(r.metrics == first.metrics and r.threshold == first.threshold for r in same)
        for r in same[1:]:
            assert r.model.keys() == first.model.keys()
            assert all(np.array_equal(r.model[a], first.model[a]) for a in r.model)
        if not first.skip:
            fitted += 1
            # one model on the rows of every symbol, each purged as alone
            assert first.metrics["train_rows"] == sum(alone[s][k].metrics["train_rows"]
                                                      for s in SYMBOLS)
            assert first.metrics["eval_rows"] == sum(alone[s][k].metrics["eval_rows"]
                                                     for s in SYMBOLS)
    assert fitted >= 3
    assert models.champion(POOL) is not None
    assert all(models.champion(s) is None for s in SYMBOLS)
    csv_lines = (tmp_path / "out-pool2" / "train.csv").read_text().splitlines()
    assert all(line.split(",")[18] == POOL for line in csv_lines[1:])

    # trained again on the same data: the same model ties with the stored champion, which
    # is kept and trades the last period of every symbol; the backtest trades per symbol
    proc = mpirun(2, "-m", "binance_cluster", "train", tmp_path / "pool2.toml", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    for s in SYMBOLS:
        last = [r for r in models.records(s) if not r.skip and r.trades_with][-1]
        assert last.trades_with == CHAMPION
        assert last.metrics["stored_champion"]["decision"]["why"] == "auc not better"
    proc = mpirun(2, "-m", "binance_cluster", "backtest", tmp_path / "pool2.toml", "--no-progress")
    assert proc.returncode == 0, proc.stderr


def _cache_files(cache):
    return {p.name: p.stat().st_mtime_ns for p in cache.rglob("*") if p.suffix in (".nbi", ".nbc")}


def test_warm_up_of_a_trees_train_job_warms_its_training_and_serving_kernels(
        tmp_path, store, mpirun):
    # Before, `warm-up JOB` warmed the logistic kernels only: a trees job compiled its
    # training kernels on every rank at once, and its backtest the trees' prediction.
    job = _job(tmp_path, store, "cold", train='kind = "trees"\n[train.model]\nn_rounds = 5')
    cache = tmp_path / "cache"
    env = {"NUMBA_CACHE_DIR": str(cache)}
    proc = mpirun(1, "-m", "binance_cluster", "warm-up", job, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "warmed the training kernels of trees models" in proc.stdout
    warm = {k for s in cache.glob("binance-cluster-warm-*.json")
            for k in json.loads(s.read_text())["warm"]}
    assert {"ml_barrier:portfolio:1m", "model:trees", "train:trees"} <= warm
    warmed = _cache_files(cache)
    for command in ("train", "backtest"):
        proc = mpirun(2, "-m", "binance_cluster", command, job, "--no-progress", env=env,
                      timeout=900)
        assert proc.returncode == 0, proc.stderr
        assert "compiling" not in proc.stderr, command
        assert _cache_files(cache) == warmed, command      # nothing compiled, nothing rewritten
    assert ModelStore(tmp_path / "cold.h5").kinds() == ("trees",)
    for stamp in cache.glob("binance-cluster-warm-*.json"):
        stamp.unlink()                                     # no longer known warm: one rank compiles
    proc = mpirun(2, "-m", "binance_cluster", "train", job, "--no-progress", env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("compiling the numba kernels of training trees models") == 1
