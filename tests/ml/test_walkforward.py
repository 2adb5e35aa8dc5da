"""Walk-forward folds, purge, thresholds, champion/challenger, metrics and the model store."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from binance_cluster.errors import ConfigError, DataError, NotAStoreFileError
from binance_cluster.ml import evaluate as ev
from binance_cluster.ml.champion import decide
from binance_cluster.ml.features import FeatureSpec
from binance_cluster.ml.folds import boundaries, fold_name
from binance_cluster.ml.labels import LabelSpec
from binance_cluster.ml.logistic import LogisticModel, LogisticParams
from binance_cluster.ml.model_store import FORMAT_VERSION, ModelStore
from binance_cluster.ml.thresholds import GRID, choose_threshold, threshold_curve
from binance_cluster.ml.walkforward import TrainSpec, walk_forward
from binance_cluster.types import DAY_MS, parse_time_ms
from support.real_data import read_real

sk_metrics = pytest.importorskip("sklearn.metrics")

START = parse_time_ms("2025-05-05")
SPEC = TrainSpec(kind="logistic", params=LogisticParams(), features=FeatureSpec(rsi=14),
                 label=LabelSpec(0.003, 0.003, 30), fold="day", min_train_rows=1000, min_eval_rows=200)


@pytest.fixture(scope="module")
def btc(shared_data):
    return read_real(shared_data, "BTCUSDT", START, START + 6 * DAY_MS)


@pytest.fixture(scope="module")
def folds(btc):
    return walk_forward(btc, "BTCUSDT", SPEC)


def test_fold_periods():
    may5 = parse_time_ms("2025-05-05")          # a Monday
    assert boundaries(may5 + 3_600_000, may5 + 10 * DAY_MS, "week") == [
        may5, may5 + 7 * DAY_MS, may5 + 14 * DAY_MS]
    assert boundaries(may5, may5 + DAY_MS - 1, "day") == [may5, may5 + DAY_MS]
    assert boundaries(may5, parse_time_ms("2025-06-03"), "month") == [
        parse_time_ms("2025-05-01"), parse_time_ms("2025-06-01"), parse_time_ms("2025-07-01")]
    assert fold_name(may5) == "2025-05-05T0000"
    with pytest.raises(ConfigError, match="unknown fold period"):
        boundaries(may5, may5, "fortnight")


def test_each_fold_trains_before_its_window_purged_and_trades_the_next(folds, btc):
    assert [r.fold for r in folds] == [fold_name(START + k * DAY_MS) for k in range(1, 6)]
    first = folds[0]
    # day 1 only has 1440 candles before it: features need 1441, so nothing to train on
    assert first.skip.startswith("too few training rows")
    h = SPEC.label.horizon
    for r in folds[1:]:
        assert r.train_end == r.eval_start and r.eval_end == r.trade_start == r.eval_start + DAY_MS
        assert r.trade_end == r.trade_start + DAY_MS
        before = int(np.searchsorted(btc.open_time, r.eval_start))
        usable_before = before - (SPEC.features.history - 1) - h     # warm-up and purge
        assert r.metrics["train_rows"] == usable_before
        assert r.metrics["eval_rows"] == DAY_MS // 60_000 - h
        assert not r.skip and r.trades_with in {f.fold for f in folds if f.fold <= r.fold}
        assert r.decision["metric"] == "auc"


def test_champion_kept_unless_the_challenger_beats_it(folds):
    fitted = [r for r in folds if not r.skip]
    assert fitted[0].decision["winner"] == "challenger" and fitted[0].decision["champion"] is None
    champion = fitted[0].fold
    for r in fitted[1:]:
        d = r.decision
        assert d["champion"] == r.metrics["champion"]["auc"]
        assert d["challenger"] == r.metrics["challenger"]["auc"]
        if d["challenger"] > d["champion"]:
            assert d["winner"] == "challenger"
            champion = r.fold
        else:
            assert d["winner"] == "champion"
        assert r.trades_with == champion
    assert decide("log_loss", 0.5, 0.4)["winner"] == "challenger"
    assert decide("log_loss", 0.4, 0.5)["winner"] == "champion"
    assert decide("auc", 0.6, 0.6)["winner"] == "champion"          # a tie keeps the champion
    assert decide("auc", 0.6, float("nan"))["winner"] == "champion"


def test_threshold_rules():
    p = np.array([0.55, 0.62, 0.7, 0.9, 0.95])
    y = np.array([0, 1, 0, 1, 1], np.int8)
    curve = threshold_curve(p, y, np.zeros(5), "tp_fp", 0.001)
    # at 0.50: 3 TP - 2 FP = 1; at 0.56..0.62: 3 - 1 = 2; at 0.63..0.70: 2 - 1; above: 2 - 0
    assert curve[GRID.tolist().index(0.6)] == 2 and curve[GRID.tolist().index(0.9)] == 2
    assert choose_threshold(curve) == 0.56                           # the lowest of the best
    none = threshold_curve(p, np.zeros(5, np.int8), np.zeros(5), "tp_fp", 0.001)
    assert choose_threshold(none) is None                            # no edge: do not trade
    outcome = np.array([-0.02, 0.01, -0.02, 0.01, 0.01])
    profit = threshold_curve(p, y, outcome, "profit", 0.001)
    assert profit[GRID.tolist().index(0.71)] == pytest.approx(2 * (0.01 - 0.002))
    assert choose_threshold(profit) == 0.71
    fees_eat_it = threshold_curve(p, y, outcome, "profit", 0.01)
    assert choose_threshold(fees_eat_it) is None


def test_metrics_match_scikit_learn(folds):
    rng = np.random.default_rng(1)
    p = np.round(rng.uniform(size=2000), 2)        # ties on purpose
    y = (rng.uniform(size=2000) < p).astype(np.int8)
    assert ev.auc(p, y) == pytest.approx(sk_metrics.roc_auc_score(y, p), abs=1e-12)
    assert ev.log_loss(p, y) == pytest.approx(sk_metrics.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)), rel=1e-9)
    r = next(r for r in folds if not r.skip)
    d = r.diagnostics
    assert d["roc_fpr"][0] == 0 and d["roc_tpr"][-1] == 1 and np.all(np.diff(d["roc_tpr"]) >= 0)
    assert d["calibration_rows"].sum() == r.metrics["eval_rows"]
    assert d["importance"].shape == (len(SPEC.features.names),)
    assert d["threshold_score"].max() == r.metrics["threshold_score"]


def test_too_few_rows_and_single_class_are_recorded_skips(btc):
    strict = TrainSpec(kind="logistic", params=LogisticParams(), features=FeatureSpec(),
                       label=LabelSpec(), fold="day", min_train_rows=10**6)
    assert all(r.skip.startswith("too few training rows") for r in walk_forward(btc, "BTCUSDT", strict))
    never = TrainSpec(kind="logistic", params=LogisticParams(), features=FeatureSpec(),
                      label=LabelSpec(take_profit=5.0), fold="day", min_train_rows=100)
    recs = walk_forward(btc, "BTCUSDT", never)
    assert any(r.skip == "single-class training labels (all 0)" for r in recs)
    assert all(r.threshold is None and not r.model for r in recs)


def test_model_store_round_trip_and_bad_files(folds, tmp_path):
    path = tmp_path / "models.h5"
    store = ModelStore(path)
    store.write({"BTCUSDT": folds})
    store.write({"ETHUSDT": folds[:2]})                 # other symbols stay
    assert store.symbols() == ["BTCUSDT", "ETHUSDT"]
    back = store.records("BTCUSDT", with_arrays=True)
    assert [r.fold for r in back] == [r.fold for r in folds]
    for a, b in zip(back, folds):
        assert (a.threshold, a.trades_with, a.skip, a.decision) == (b.threshold, b.trades_with, b.skip, b.decision)
        assert json.dumps(a.metrics, sort_keys=True) == json.dumps(b.metrics, sort_keys=True)
        assert a.model.keys() == b.model.keys()
        for k in b.diagnostics:
            assert np.array_equal(a.diagnostics[k], b.diagnostics[k], equal_nan=True)
    fitted = next(r for r in folds if not r.skip)
    model = store.load_model("BTCUSDT", fitted.fold, feature_hash=SPEC.features.hash)
    assert isinstance(model, LogisticModel)
    assert np.array_equal(model.coef, LogisticModel.from_arrays(fitted.model).coef)
    with pytest.raises(DataError, match="another feature spec"):
        store.load_model("BTCUSDT", fitted.fold, feature_hash=FeatureSpec().hash)
    with pytest.raises(DataError, match="has no model"):
        store.load_model("BTCUSDT", folds[0].fold)
    with pytest.raises(DataError, match="no models for SOLUSDT"):
        store.records("SOLUSDT")
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(DataError, match=f"format version {FORMAT_VERSION + 1}, this program reads"):
        store.records("BTCUSDT")
    with pytest.raises(DataError):
        store.write({"BTCUSDT": folds})                 # never overwrites a foreign version
    other = tmp_path / "candles.h5"
    with h5py.File(other, "w") as f:
        f.attrs["format"] = "binance-cluster-candles"
    with pytest.raises(NotAStoreFileError, match="not a model store"):
        ModelStore(other).symbols()
    with pytest.raises(DataError, match="not found"):
        ModelStore(tmp_path / "missing.h5").symbols()


def _image(trained) -> dict:
    """Every record of a walk-forward run: its fields, model and diagnostics as bytes."""
    out = {}
    for symbol, recs in trained.records.items():
        for r in recs:
            fields = {k: getattr(r, k) for k in r.__slots__ if k not in ("model", "diagnostics")}
            out[symbol, r.fold] = (repr(fields), {k: v.tobytes() for k, v in r.model.items()},
                                   {k: v.tobytes() for k, v in r.diagnostics.items()})
    return out


def test_a_pool_of_light_blocks_fits_what_full_blocks_fit(btc, shared_data):
    """Rank 0 of a pool keeps no feature matrix (`light`): each fold's rows are computed from
    the candles into the matrix it is fitted on, and every model, figure and threshold is the
    same, bit for bit, as from blocks that hold their features; rows taken by index (unusable
    rows in between) and every row_step-th row alike."""
    import dataclasses

    from binance_cluster.ml.walkforward import light, symbol_block, walk_forward_blocks

    eth = read_real(shared_data, "ETHUSDT", START, START + 6 * DAY_MS)
    spec = dataclasses.replace(SPEC, row_step=3)
    full = [symbol_block(btc, "BTCUSDT", spec), symbol_block(eth, "ETHUSDT", spec)]
    holes = full[1].usable.copy()
    holes[3000:6000:7] = False                        # ETH's rows taken by an index array
    full[1] = dataclasses.replace(full[1], usable=holes)
    light_blocks = [light(b) for b in full]
    assert all(b.x is None for b in light_blocks)
    want = walk_forward_blocks(full, spec, pool="pool")
    got = walk_forward_blocks(light_blocks, spec, pool="pool")
    assert sum(1 for r in want.records["BTCUSDT"] if not r.skip) >= 3
    assert _image(got) == _image(want)
