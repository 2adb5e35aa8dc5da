"""Logistic regression in numba against scikit-learn, determinism, saving without pickle."""

from __future__ import annotations

import numpy as np
import pytest

from binance_cluster.errors import DataError
from binance_cluster.kernels import logistic as lk
from binance_cluster.ml.features import FeatureSpec, compute_features
from binance_cluster.ml.labels import LabelSpec, barrier_labels
from binance_cluster.ml.logistic import LogisticModel, LogisticParams, fit_logistic
from binance_cluster.ml.models import MODEL_KINDS, get_kind
from binance_cluster.ml.params import class_weights
from support.real_data import first_rows

sklearn_linear = pytest.importorskip("sklearn.linear_model")


def _real_xy(shared_data, symbol="BTCUSDT", rows=6000):
    c = first_rows(shared_data, symbol, rows)
    spec = FeatureSpec(returns=(1, 15), rsi=14, volume_z=30, hour=True)
    x = compute_features(c, spec)
    y, _ = barrier_labels(c, LabelSpec(take_profit=0.003, stop_loss=0.003, horizon=30))
    keep = np.isfinite(x).all(axis=1) & (y >= 0)
    return x[keep], y[keep]


def _sklearn(z, y, l2, weights):
    ref = sklearn_linear.LogisticRegression(C=1.0 / l2, solver="newton-cholesky", tol=1e-12,
                                            max_iter=1000)
    ref.fit(z, y, sample_weight=weights)
    return ref.coef_[0], ref.intercept_[0]


@pytest.mark.parametrize("l2,class_weight", [(1.0, "balanced"), (50.0, "none"), (0.01, "balanced")])
def test_coefficients_match_scikit_learn(shared_data, l2, class_weight):
    x, y = _real_xy(shared_data)
    assert 0.05 < y.mean() < 0.95
    model = fit_logistic(x, y, LogisticParams(l2=l2, class_weight=class_weight))
    assert model.converged
    z = lk.standardise(x, model.mean, model.scale)
    coef, intercept = _sklearn(z, y, l2, class_weights(y, class_weight))
    np.testing.assert_allclose(model.coef, coef, rtol=1e-4, atol=1e-4 * np.abs(coef).max())
    assert model.intercept == pytest.approx(intercept, rel=1e-4, abs=1e-6)
    np.testing.assert_allclose(model.mean, x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.scale, x.std(axis=0), rtol=1e-9)


def test_sample_weights_match_scikit_learn(shared_data):
    x, y = _real_xy(shared_data, "ETHUSDT")
    sw = np.random.default_rng(3).uniform(0.2, 2.0, size=y.size)
    model = fit_logistic(x, y, LogisticParams(l2=2.0, class_weight="none"), sample_weight=sw)
    coef, _ = _sklearn(lk.standardise(x, model.mean, model.scale), y, 2.0, sw)
    np.testing.assert_allclose(model.coef, coef, rtol=1e-4, atol=1e-4 * np.abs(coef).max())


def test_probabilities_match_scikit_learn_and_round_trip_without_pickle(shared_data):
    x, y = _real_xy(shared_data, "SOLUSDT")
    model = fit_logistic(x, y, LogisticParams())
    ref = sklearn_linear.LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    z = lk.standardise(x, model.mean, model.scale)
    ref.fit(z, y, sample_weight=class_weights(y, "balanced"))
    np.testing.assert_allclose(model.predict_proba(x), ref.predict_proba(z)[:, 1], atol=1e-6)
    arrays = model.to_arrays()
    assert all(isinstance(a, np.ndarray) and a.dtype != object for a in arrays.values())
    again = LogisticModel.from_arrays(arrays)
    assert again.params == model.params
    assert np.array_equal(again.predict_proba(x), model.predict_proba(x))
    assert np.array_equal(model.importance(), model.coef)


def test_fit_is_deterministic(shared_data):
    x, y = _real_xy(shared_data, "XRPUSDT")
    a = fit_logistic(x, y, LogisticParams())
    b = fit_logistic(x.copy(), y.copy(), LogisticParams())
    assert np.array_equal(a.coef, b.coef) and a.intercept == b.intercept


def test_bad_input_is_one_line_error(shared_data):
    x, y = _real_xy(shared_data, rows=3000)
    with pytest.raises(DataError, match="single class"):
        fit_logistic(x, np.zeros_like(y), LogisticParams())
    bad = x.copy()
    bad[5, 2] = np.nan
    with pytest.raises(DataError, match="row 5 column 2 is nan"):
        fit_logistic(bad, y, LogisticParams())
    model = fit_logistic(x, y, LogisticParams())
    with pytest.raises(DataError, match="row 5 column 2"):
        model.predict_proba(bad)
    with pytest.raises(DataError, match="trained on"):
        model.predict_proba(x[:, :-1])
    arrays = model.to_arrays()
    del arrays["scale"]
    with pytest.raises(DataError, match="'scale' missing"):
        LogisticModel.from_arrays(arrays)


def test_registry_holds_logistic():
    kind = get_kind("logistic")
    assert kind.fit is fit_logistic and kind.model_cls is LogisticModel
    assert kind.params({"l2": 3.0}).l2 == 3.0
    assert "logistic" in MODEL_KINDS
