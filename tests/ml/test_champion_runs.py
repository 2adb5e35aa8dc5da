"""The champion kept across `train` runs: judged on the new run's last window, after both
models' training data; kept on a tie, an earlier window, a failed or an interrupted run."""

from __future__ import annotations

import numpy as np
import pytest

from binance_cluster.ml import train as train_mod
from binance_cluster.ml import model_store as ms
from binance_cluster.ml.evaluate import auc
from binance_cluster.ml.features import FeatureSpec, compute_features
from binance_cluster.ml.labels import LabelSpec, barrier_labels, purged_stop
from binance_cluster.ml.model_store import CHAMPION, ModelStore
from binance_cluster.ml.models import get_kind
from binance_cluster.ml.serve import load_symbol_models
from binance_cluster.types import DAY_MS, format_time_ms, parse_time_ms
from support.backtest_store import build_store, write_job
from support.model_data import ml_job_text
from support.real_data import read_real

START = parse_time_ms("2025-05-05")
SYMBOLS = ("BTCUSDT", "ETHUSDT")
LABEL = LabelSpec(0.003, 0.003, 30)

# A stump on one near-noise column: the weak model. The strong one: the seed's columns + more.
WEAK = ('kind = "trees"\n[train.model]\nn_rounds = 1\nmax_leaf_nodes = 2\n'
        '[train.features]\nlags = [0]\nmean_window = 2')
STRONG = '[train.features]\nrsi = 14\natr = 14\nhour = true'


@pytest.fixture(scope="module")
def store(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("champstore")
    build_store(shared_data, root, SYMBOLS, START, START + 7 * DAY_MS)
    return root


def _train(cli, tmp_path, store, name, days, train):
    end = format_time_ms(START + days * DAY_MS).replace(" ", "T")
    job = write_job(tmp_path / f"{name}.toml", ml_job_text(
        store, SYMBOLS, tmp_path / f"out-{name}", tmp_path / "models.h5", top=f'end = "{end}"',
        train=train))
    code, out, err = cli("train", job, "--no-progress")
    assert code == 0, err + out
    return job


def _last_judged(store: ModelStore, symbol: str):
    return [r for r in store.records(symbol) if not r.skip and r.trades_with][-1]


def _stored_auc_by_hand(shared_data, champion, rec, symbol):
    """The champion's AUC on `rec`'s evaluation window, computed here from the raw candles."""
    candles = read_real(shared_data, symbol, START, rec.eval_end)
    spec = FeatureSpec.from_json(champion.feature_spec)
    x = compute_features(candles, spec)
    y, _ = barrier_labels(candles, LABEL)
    i0, i1 = np.searchsorted(candles.open_time, [rec.eval_start, rec.eval_end])
    rows = np.arange(i0, purged_stop(int(i1), LABEL.horizon))
    model = get_kind(champion.kind).model_cls.from_arrays(champion.model)
    return auc(model.predict_proba(x[rows]), y[rows])


def _same_arrays(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _check_served(models, s, last, champion, shared_data):
    """The backtest's probabilities of `last`'s traded period come from `champion` (none
    when it found no threshold on the window: do not trade); returns the period's fold."""
    served = load_symbol_models(str(models.path), s)
    candles = read_real(shared_data, s, START, START + 7 * DAY_MS)
    prob, thr = served.probabilities(candles)
    lo, hi = np.searchsorted(candles.open_time, [last.trade_start, last.trade_end])
    if last.threshold is None:
        assert all(p.start != last.trade_start for p in served.periods)
        assert np.isnan(prob[lo:hi]).all()
        return None
    period = next(p for p in served.periods if p.start == last.trade_start)
    spec = FeatureSpec.from_json(champion.feature_spec)
    own = get_kind(champion.kind).model_cls.from_arrays(champion.model)
    np.testing.assert_array_equal(prob[lo:hi],
                                  own.predict_proba(compute_features(candles, spec)[lo:hi]))
    assert np.all(thr[lo:hi] == last.threshold)
    return period.fold


def test_champion_across_runs(cli, tmp_path, store, shared_data, monkeypatch):
    models = ModelStore(tmp_path / "models.h5")
    # run 1, days 1-5: the weak model becomes the first champion (none was stored)
    _train(cli, tmp_path, store, "weak", 5, WEAK)
    weak = {s: models.champion(s) for s in SYMBOLS}
    for s in SYMBOLS:
        last = _last_judged(models, s)
        assert models.champion_history(s)[-1]["why"] == "no stored champion yet"
        assert weak[s].kind == "trees" and weak[s].train_end <= last.eval_start
        assert _same_arrays(weak[s].model, next(r for r in models.records(s, True)
                                                 if r.fold == last.trades_with).model)

    # run 2, same days, the strong model: judged against the stored weak one on the last
    # window (day 5), figures recomputed here by hand; the better one trades day 6 and is kept
    _train(cli, tmp_path, store, "strong", 5, STRONG)
    winners, served = {}, {}
    for s in SYMBOLS:
        last = _last_judged(models, s)
        judged = last.metrics["stored_champion"]
        assert judged["stored"]["auc"] == pytest.approx(
            _stored_auc_by_hand(shared_data, weak[s], last, s), abs=1e-12)
        new_wins = judged["this_run"]["auc"] > judged["stored"]["auc"]
        winners[s] = judged["decision"]["winner"]
        assert winners[s] == ("challenger" if new_wins else "champion")
        kept = models.champion(s)
        if new_wins:
            assert last.trades_with != CHAMPION and kept.fold == last.trades_with
            assert kept.kind == "logistic"
        else:
            assert last.trades_with == CHAMPION
            assert _same_arrays(kept.model, weak[s].model)
            assert (kept.kind, kept.feature_spec, kept.train_start, kept.train_end) == (
                weak[s].kind, weak[s].feature_spec, weak[s].train_start, weak[s].train_end)
            assert kept.eval_start == last.eval_start and kept.threshold == last.threshold
        served[s] = _check_served(models, s, last, kept, shared_data)
        assert served[s] in (None, last.trades_with)
        assert [d["winner"] for d in models.champion_history(s)] == ["challenger", winners[s]]
    # the real data decides who wins; these two symbols exercise both outcomes on day 5
    assert sorted(winners.values()) == ["challenger", "champion"]

    # run 3, the strong model again: the stored champion is at least as good (the same model
    # on a tie, which keeps it): kept, and it trades day 6
    strong = {s: models.champion(s) for s in SYMBOLS}
    _train(cli, tmp_path, store, "again", 5, STRONG)
    for s in SYMBOLS:
        last = _last_judged(models, s)
        assert last.metrics["stored_champion"]["decision"]["winner"] == "champion"
        assert last.trades_with == CHAMPION
        assert _same_arrays(models.champion(s).model, strong[s].model)
        served[s] = _check_served(models, s, last, strong[s], shared_data)
    assert any(served.values()), "some champion should trade day 6 (a threshold with an edge)"

    # run 4, days 1-3: its last window (day 3) starts before the champion's training data
    # ends: not judged, kept; this run's folds trade this run's models
    _train(cli, tmp_path, store, "early", 3, STRONG)
    for s in SYMBOLS:
        kept = models.champion(s)
        assert _same_arrays(kept.model, strong[s].model)
        assert kept.train_end > _last_judged(models, s).eval_start
        decision = models.champion_history(s)[-1]
        assert decision["winner"] == "champion" and "not judged, kept" in decision["why"]
        assert all(r.trades_with != CHAMPION for r in models.records(s))

    # a failed symbol and an interrupted write leave everything stored as it was
    before = {s: models.champion(s) for s in SYMBOLS}
    real_block = train_mod.symbol_block

    def eth_fails(candles, symbol, spec):
        if symbol == "ETHUSDT":
            raise ValueError("broken on purpose")
        return real_block(candles, symbol, spec)

    monkeypatch.setattr(train_mod, "symbol_block", eth_fails)
    job = write_job(tmp_path / "fail.toml", (tmp_path / "weak.toml").read_text())
    code, out, err = cli("train", job, "--no-progress")
    assert code == 1 and "FAILED ETHUSDT" in out
    eth = models.champion("ETHUSDT")
    assert _same_arrays(eth.model, before["ETHUSDT"].model)
    assert eth.eval_start == before["ETHUSDT"].eval_start
    assert len(models.champion_history("ETHUSDT")) == 4
    assert len(models.champion_history("BTCUSDT")) == 5
    monkeypatch.setattr(train_mod, "symbol_block", real_block)

    image = models.path.read_bytes()
    real_write = ms._write_record
    calls = []

    def dies(g, rec, shared):
        calls.append(rec.fold)
        if len(calls) > 3:
            raise KeyboardInterrupt
        real_write(g, rec, shared)

    monkeypatch.setattr(ms, "_write_record", dies)
    code, out, err = cli("train", job, "--no-progress")
    assert code == 130 and "interrupted" in err and len(calls) == 4   # Ctrl-C while writing
    assert models.path.read_bytes() == image
    assert not list(tmp_path.glob(".models.h5.*"))


def test_a_version_1_store_reads_without_champions_and_is_upgraded_on_write(cli, tmp_path, store):
    import h5py

    _train(cli, tmp_path, store, "v1", 4, STRONG)
    models = ModelStore(tmp_path / "models.h5")
    records = models.records("BTCUSDT", True)
    with h5py.File(models.path, "a") as f:             # what the first format looked like
        f.attrs["format_version"] = 1
        del f[ms.CHAMPIONS]
        for s in SYMBOLS:
            for fold in f[s]:
                del f[s][fold].attrs["pool"]
    assert models.champion("BTCUSDT") is None and models.champion_history("BTCUSDT") == []
    again = models.records("BTCUSDT", True)
    assert [(r.fold, r.trades_with, r.threshold, r.pool) for r in again] == [
        (r.fold, r.trades_with, r.threshold, "") for r in records]
    _train(cli, tmp_path, store, "v1", 4, STRONG)      # no champion stored: this run's wins
    with h5py.File(models.path, "r") as f:
        assert f.attrs["format_version"] == ms.FORMAT_VERSION
    assert models.champion_history("BTCUSDT")[-1]["why"] == "no stored champion yet"
