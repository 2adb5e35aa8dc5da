"""Boosted trees: against scikit-learn on real features, determinism, round trips, hand cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from binance_cluster.errors import ConfigError, DataError
from binance_cluster.kernels import trees as K
from binance_cluster.ml.trees import TreeModel, TreeParams, bin_edges, fit_trees
from support.model_data import time_split

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")


@pytest.fixture(scope="module")
def data(shared_data):
    """Real features and barrier labels, split in time (train first, test later)."""
    return time_split(shared_data, SYMBOLS)


def sklearn_peer(params: TreeParams) -> HistGradientBoostingClassifier:
    """scikit-learn's classifier with the same settings (no early stopping, no NaN bin used)."""
    return HistGradientBoostingClassifier(
        learning_rate=params.learning_rate, max_iter=params.n_rounds,
        max_leaf_nodes=params.max_leaf_nodes, max_depth=params.max_depth,
        min_samples_leaf=params.min_samples_leaf, l2_regularization=params.l2,
        max_bins=params.max_bins,
        class_weight=None if params.class_weight == "none" else params.class_weight,
        early_stopping=False,
        random_state=params.seed)


def tree_depths(model: TreeModel) -> list[int]:
    """Depth of every tree of the model."""
    depths = []
    for t in range(model.n_trees):
        deepest = 0
        stack = [(int(model.tree_start[t]), 0)]
        while stack:
            node, d = stack.pop()
            deepest = max(deepest, d)
            if model.node_feature[node] >= 0:
                stack += [(int(model.node_left[node]), d + 1),
                          (int(model.node_right[node]), d + 1)]
        depths.append(deepest)
    return depths


def leaves_per_tree(model: TreeModel) -> np.ndarray:
    """Number of leaves of every tree."""
    is_leaf = (model.node_feature < 0).astype(np.int64)
    return np.add.reduceat(is_leaf, model.tree_start[:-1])


def assert_same_arrays(a: dict, b: dict) -> None:
    """Two to_arrays() dicts hold the same keys, dtypes and values."""
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.parametrize("params", [
    TreeParams(),
    TreeParams(n_rounds=10, class_weight="balanced"),          # the seed bot's model
    TreeParams(n_rounds=50, max_leaf_nodes=None, max_depth=4, min_samples_leaf=50, l2=1.0,
               learning_rate=0.2, max_bins=63),
], ids=["defaults", "seed-bot", "depth-limited"])
def test_out_of_sample_auc_matches_sklearn(data, params):
    X_train, y_train, X_test, y_test = data
    ours = roc_auc_score(y_test, fit_trees(X_train, y_train, params).predict_proba(X_test))
    peer = sklearn_peer(params).fit(X_train, y_train)
    theirs = roc_auc_score(y_test, peer.predict_proba(X_test)[:, 1])
    assert theirs > 0.6            # the features carry signal: the comparison means something
    assert abs(ours - theirs) <= 0.01, (ours, theirs)


def test_probabilities_equal_sklearn_when_bins_are_the_distinct_values(data):
    # With at most max_bins distinct values per feature both put edges at the midpoints, so the
    # same algorithm must give the same trees (up to scikit-learn's float32 gradients).
    X_train, y_train, X_test, _ = data
    f = X_train.shape[1]
    levels = [np.quantile(X_train[:, j], np.linspace(0.01, 0.99, 99)) for j in range(f)]
    coded = [np.column_stack([np.searchsorted(levels[j], X[:, j]) for j in range(f)])
             .astype(np.float64) for X in (X_train, X_test)]
    params = TreeParams(n_rounds=30)
    ours = fit_trees(coded[0], y_train, params).predict_proba(coded[1])
    theirs = sklearn_peer(params).fit(coded[0], y_train).predict_proba(coded[1])[:, 1]
    assert np.abs(ours - theirs).max() < 1e-6


def test_bins_count_the_edges_below_each_value(data):
    X_train, _, X_test, _ = data
    edges, offsets = bin_edges(X_train, 255, 0)
    f = X_train.shape[1]
    assert (np.diff(offsets) == 254).sum() >= f - 2          # quantile edges, 255 bins
    on_edges = np.column_stack([np.resize(edges[offsets[j]:offsets[j + 1]], 1000)
                                for j in range(f)])          # values exactly on an edge
    far = np.vstack([X_test.min(axis=0) - 1.0, X_test.max(axis=0) + 1.0])
    X = np.ascontiguousarray(np.vstack([X_test, on_edges, far]))
    bins = K.bin_matrix(X, edges, offsets)
    for j in range(f):
        assert np.array_equal(bins[:, j], np.searchsorted(edges[offsets[j]:offsets[j + 1]],
                                                          X[:, j], side="left")), j


def test_same_seed_same_model_other_seed_other_model(data):
    X_train, y_train, _, _ = data
    params = TreeParams(n_rounds=20, subsample=0.5, seed=7)
    a = fit_trees(X_train, y_train, params).to_arrays()
    b = fit_trees(X_train, y_train, params).to_arrays()
    assert_same_arrays(a, b)
    c = fit_trees(X_train, y_train, TreeParams(n_rounds=20, subsample=0.5, seed=8)).to_arrays()
    assert not np.array_equal(a["node_value"], c["node_value"])


def test_round_trip_through_arrays_and_npz_without_pickle(data, tmp_path):
    X_train, y_train, X_test, _ = data
    model = fit_trees(X_train, y_train, TreeParams(n_rounds=15, max_depth=5,
                                                   class_weight="balanced"))
    path = tmp_path / "model.npz"
    np.savez(path, **model.to_arrays())
    with np.load(path, allow_pickle=False) as f:
        loaded = TreeModel.from_arrays({k: f[k] for k in f.files})
    assert loaded.params == model.params
    assert_same_arrays(loaded.to_arrays(), model.to_arrays())
    assert np.array_equal(loaded.predict_proba(X_test), model.predict_proba(X_test))
    assert np.array_equal(loaded.importance(), model.importance())


def test_predict_one_row_equals_matrix_prediction(data):
    X_train, y_train, X_test, _ = data
    model = fit_trees(X_train, y_train, TreeParams(n_rounds=25))
    rows = X_test[::300]
    batch = model.predict_proba(rows)
    assert batch.std() > 0.01
    assert [model.predict_one(r) for r in rows] == batch.tolist()


@pytest.mark.parametrize("n0,n1", [(10, 10), (30, 10)])
def test_one_split_hand_checked(n0, n1):
    # x0 separates the classes, x1 is constant: one round at learning rate 1 makes one split
    # at the midpoint 0.5 with Newton leaf values -1/(1-p) and 1/p (p = base rate).
    X = np.column_stack([np.r_[np.zeros(n0), np.ones(n1)], np.full(n0 + n1, 3.0)])
    y = np.r_[np.zeros(n0), np.ones(n1)].astype(np.int8)
    model = fit_trees(X, y, TreeParams(n_rounds=1, learning_rate=1.0, min_samples_leaf=1))
    p = n1 / (n0 + n1)
    assert model.baseline == pytest.approx(math.log(p / (1 - p)), rel=1e-12, abs=1e-15)
    assert model.node_feature.tolist() == [0, -1, -1]
    assert model.node_threshold[0] == 0.5
    assert model.node_count.tolist() == [n0 + n1, n0, n1]
    left, right = model.node_value[model.node_left[0]], model.node_value[model.node_right[0]]
    assert left == pytest.approx(-1 / (1 - p), rel=1e-12)
    assert right == pytest.approx(1 / p, rel=1e-12)
    z = model.baseline + np.array([left, right])
    assert model.predict_proba([[0.0, 3.0], [1.0, 3.0]]) == pytest.approx(1 / (1 + np.exp(-z)))
    # a value equal to the threshold goes left
    assert model.predict_one([0.5, 3.0]) == pytest.approx(1 / (1 + math.exp(-z[0])))
    assert model.importance().tolist() == [1.0, 0.0]


def test_limits_hold_in_every_tree(data):
    X_train, y_train, _, _ = data
    deep = fit_trees(X_train, y_train, TreeParams(n_rounds=10, max_leaf_nodes=None, max_depth=2))
    assert max(tree_depths(deep)) == 2 and (leaves_per_tree(deep) <= 4).all()
    few = fit_trees(X_train, y_train, TreeParams(n_rounds=10, max_leaf_nodes=5))
    assert leaves_per_tree(few).max() == 5
    big = fit_trees(X_train, y_train, TreeParams(n_rounds=10, min_samples_leaf=5000))
    assert big.node_count[big.node_feature < 0].min() >= 5000


def test_subsample_draws_the_stated_rows_each_round_and_changes_the_model(data):
    X_train, y_train, _, _ = data
    n = X_train.shape[0]
    full = fit_trees(X_train, y_train, TreeParams(n_rounds=10))
    half = fit_trees(X_train, y_train, TreeParams(n_rounds=10, subsample=0.5))
    assert (full.node_count[full.tree_start[:-1]] == n).all()
    assert (half.node_count[half.tree_start[:-1]] == math.floor(0.5 * n + 0.5)).all()
    assert not np.array_equal(full.node_value, half.node_value)
    first = half.node_count[half.tree_start[0]:half.tree_start[1]]
    second = half.node_count[half.tree_start[1]:half.tree_start[2]]
    assert not np.array_equal(first, second)          # other rows in another round


def test_balanced_class_weight_is_n_over_two_class_counts(data):
    X_train, y_train, X_test, _ = data
    params = TreeParams(n_rounds=10)
    plain = fit_trees(X_train, y_train, params)
    balanced = fit_trees(X_train, y_train, TreeParams(n_rounds=10, class_weight="balanced"))
    n, ones = y_train.shape[0], int(y_train.sum())
    w = np.where(y_train == 1, n / (2 * ones), n / (2 * (n - ones)))
    explicit = fit_trees(X_train, y_train, params, sample_weight=w)
    assert_same_arrays({k: v for k, v in balanced.to_arrays().items() if "param" not in k},
                       {k: v for k, v in explicit.to_arrays().items() if "param" not in k})
    assert abs(balanced.baseline) < 1e-9     # weighted base rate 1/2 (up to summing rounding)
    assert plain.baseline < -1.0
    assert balanced.predict_proba(X_test).mean() > plain.predict_proba(X_test).mean() + 0.2


def test_importance_is_normalised_gain(data):
    X_train, y_train, _, _ = data
    model = fit_trees(X_train, y_train, TreeParams(n_rounds=20))
    imp = model.importance()
    assert imp.shape == (X_train.shape[1],) and (imp >= 0).all()
    assert imp.sum() == pytest.approx(1.0)
    by_hand = np.bincount(model.node_feature[model.node_feature >= 0],
                          weights=model.node_gain[model.node_feature >= 0],
                          minlength=X_train.shape[1])
    assert imp == pytest.approx(by_hand / by_hand.sum())


GOOD_X = np.column_stack([np.arange(40.0), np.arange(40.0) % 7])
GOOD_Y = (np.arange(40) % 2).astype(np.int8)


@pytest.mark.parametrize("X,y,message", [
    (np.arange(40.0), GOOD_Y, "tree fit: features must be a 2-D numeric array"),
    (GOOD_X, GOOD_Y[:-1], "tree fit: 39 labels for 40 rows"),
    (GOOD_X, np.where(np.arange(40) == 5, np.nan, GOOD_Y), "tree fit: label row 5 is NaN"),
    (GOOD_X, np.zeros(40, dtype=np.int8), "tree fit: the labels hold a single class"),
    (GOOD_X, np.full(40, 2, dtype=np.int8), "tree fit: labels must be 0 or 1"),
    (np.where(GOOD_X == 3.0, np.inf, GOOD_X), GOOD_Y, "tree fit: feature row 3 column 0 is inf"),
    (np.where(GOOD_X == 5.0, np.nan, GOOD_X), GOOD_Y, "tree fit: feature row 5 column 0 is nan"),
])
def test_bad_data_is_a_one_line_data_error(X, y, message):
    with pytest.raises(DataError, match="^" + message.replace("(", r"\(")) as err:
        fit_trees(X, y)
    assert "\n" not in str(err.value)


def test_bad_prediction_input_and_bad_arrays_are_data_errors():
    model = fit_trees(GOOD_X, GOOD_Y, TreeParams(n_rounds=2, min_samples_leaf=2))
    with pytest.raises(DataError, match="trained on 2 features, got 3"):
        model.predict_proba(np.zeros((4, 3)))
    with pytest.raises(DataError, match="tree predict: feature 1 is nan"):
        model.predict_one([1.0, np.nan])
    arrays = model.to_arrays()
    with pytest.raises(DataError, match="missing 'node_value'"):
        TreeModel.from_arrays({k: v for k, v in arrays.items() if k != "node_value"})
    with pytest.raises(DataError, match="format version 99"):
        TreeModel.from_arrays({**arrays, "format_version": np.array(99)})
    with pytest.raises(DataError, match="'bin_offsets' does not index"):
        TreeModel.from_arrays({**arrays, "bin_edges": arrays["bin_edges"][:-1]})
    with pytest.raises(DataError, match="a node points outside"):
        TreeModel.from_arrays({**arrays, "node_left": arrays["node_left"] + 100})


@pytest.mark.parametrize("kwargs,message", [
    (dict(learning_rate=0.0), "learning_rate: must be in (0.0"),
    (dict(n_rounds=0), "n_rounds: must be >= 1"),
    (dict(max_leaf_nodes=1), "max_leaf_nodes: must be >= 2"),
    (dict(max_leaf_nodes=None), "set max_leaf_nodes or max_depth"),
    (dict(min_samples_leaf=2.5), "min_samples_leaf: expected an integer"),
    (dict(max_bins=256), "max_bins: must be in 2..255"),
    (dict(subsample=1.5), "subsample: must be in (0.0, 1.0]"),
    (dict(class_weight="auto"), "class_weight: expected one of none, balanced"),
    (dict(l2=-1.0), "l2: must be in [0.0"),
])
def test_bad_parameters_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError) as err:
        TreeParams(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_too_many_leaves_for_memory_is_refused():
    X = np.random.default_rng(0).normal(size=(100_000, 40))
    y = (X[:, 0] > 0).astype(np.int8)
    with pytest.raises(ConfigError, match="lower max_leaf_nodes or max_depth"):
        fit_trees(X, y, TreeParams(max_leaf_nodes=None, max_depth=12, min_samples_leaf=1))
