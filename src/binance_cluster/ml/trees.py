"""Histogram gradient-boosted trees for a binary label: parameters, fitting, the model.

`fit_trees` validates its inputs, bins the features and runs the numba kernels of
`binance_cluster.kernels.trees` (which say how trees are grown). The resulting `TreeModel`
predicts from raw feature values (a row goes left when its value is <= the node's
threshold), so the live loop predicts the newest bar without binning. It is saved as flat
numpy arrays (`to_arrays` / `from_arrays`), never pickled.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from binance_cluster.errors import ConfigError, DataError
from binance_cluster.kernels import trees as K
from binance_cluster.ml.params import (CLASS_WEIGHTS, check_xy, params_from_array,
                                       params_to_array, training_weights)

FORMAT_VERSION = 1
# Histograms of a tree's open leaves are kept for sibling subtraction; beyond this many bytes
# the leaf limit is refused (a worker must stay well under 200 MB).
MAX_HISTOGRAM_BYTES = 128 * 2**20


def _integer(name: str, value, low: int, high: int | None = None) -> int:
    """`value` as an int within [low, high]; ConfigError naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"tree parameter {name}: expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in {low}..{high}"
        raise ConfigError(f"tree parameter {name}: must be {bound}, got {value}")
    return int(value)


def _number(name: str, value, low: float, high: float, low_open: bool) -> float:
    """`value` as a finite float in (low or [low) .. high]; ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"tree parameter {name}: expected a finite number, got {value!r}")
    if value < low or (low_open and value == low) or value > high:
        bound = f"{'(' if low_open else '['}{low}, {high}]"
        raise ConfigError(f"tree parameter {name}: must be in {bound}, got {value}")
    return float(value)


@dataclass(frozen=True, slots=True)
class TreeParams:
    """Boosting settings; defaults mirror scikit-learn's HistGradientBoostingClassifier."""

    learning_rate: float = 0.1
    n_rounds: int = 100
    max_leaf_nodes: int | None = 31
    max_depth: int | None = None
    min_samples_leaf: int = 20
    l2: float = 0.0
    max_bins: int = 255
    subsample: float = 1.0
    class_weight: str = "none"
    seed: int = 0

    def __post_init__(self):
        _number("learning_rate", self.learning_rate, 0.0, math.inf, True)
        _integer("n_rounds", self.n_rounds, 1)
        if self.max_leaf_nodes is not None:
            _integer("max_leaf_nodes", self.max_leaf_nodes, 2)
        if self.max_depth is not None:
            _integer("max_depth", self.max_depth, 1, 62)
        if self.max_leaf_nodes is None and self.max_depth is None:
            raise ConfigError("tree parameters: set max_leaf_nodes or max_depth (or both)")
        _integer("min_samples_leaf", self.min_samples_leaf, 1)
        _number("l2", self.l2, 0.0, math.inf, False)
        _integer("max_bins", self.max_bins, 2, 255)
        _number("subsample", self.subsample, 0.0, 1.0, True)
        if self.class_weight not in CLASS_WEIGHTS:
            raise ConfigError(f"tree parameter class_weight: expected one of "
                              f"{', '.join(CLASS_WEIGHTS)}, got {self.class_weight!r}")
        _integer("seed", self.seed, 0, 2**63 - 1)

    def max_leaves(self, n_rows: int) -> int:
        """The most leaves one tree can have on n_rows rows under these limits."""
        bound = max(1, n_rows // self.min_samples_leaf)
        if self.max_leaf_nodes is not None:
            bound = min(bound, self.max_leaf_nodes)
        if self.max_depth is not None:
            bound = min(bound, 2**self.max_depth)
        return bound


def _entry(d: dict[str, np.ndarray], key: str) -> np.ndarray:
    """d[key] as an array; DataError naming the key when it is missing."""
    if key not in d:
        raise DataError(f"tree model arrays: missing {key!r}")
    return np.asarray(d[key])


def _matrix(X, n_features: int) -> np.ndarray:
    """X as float64[n, n_features] of finite values; DataError otherwise."""
    X, _ = check_xy(X, None, "tree predict")
    if X.shape[1] != n_features:
        raise DataError(f"tree predict: the model was trained on {n_features} features, got "
                        f"{X.shape[1]}")
    return X


@dataclass(frozen=True, slots=True)
class TreeModel:
    """A fitted boosted-tree model: flat node arrays, bin edges and its parameters."""

    params: TreeParams
    n_features: int
    baseline: float
    node_feature: np.ndarray     # int32, -1 at a leaf
    node_threshold: np.ndarray   # float64, go left when x <= threshold
    node_left: np.ndarray        # int32, global node index, -1 at a leaf
    node_right: np.ndarray       # int32
    node_value: np.ndarray       # float64, leaf output (learning rate included)
    node_gain: np.ndarray        # float64, split gain (0 at a leaf)
    node_count: np.ndarray       # int64, training rows reaching the node
    tree_start: np.ndarray       # int64[n_trees + 1], root of tree t = tree_start[t]
    bin_edges: np.ndarray        # float64, every feature's edges one after another
    bin_offsets: np.ndarray      # int64[n_features + 1], feature f's edges start here

    def predict_proba(self, X) -> np.ndarray:
        """Probability of class 1 for every row of X[n, f]."""
        X = _matrix(X, self.n_features)
        return K.predict_proba(X, self.node_feature, self.node_threshold, self.node_left,
                               self.node_right, self.node_value, self.tree_start,
                               self.baseline)

    def predict_one(self, x) -> float:
        """Probability of class 1 for one feature row x[f] (the newest bar)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape != (self.n_features,):
            raise DataError(f"tree predict: expected one row of {self.n_features} features, "
                            f"got shape {x.shape}")
        if not np.isfinite(x).all():
            bad = int(np.flatnonzero(~np.isfinite(x))[0])
            raise DataError(f"tree predict: feature {bad} is {x[bad]}")
        return K.predict_proba_row(x, self.node_feature, self.node_threshold, self.node_left,
                                   self.node_right, self.node_value, self.tree_start,
                                   self.baseline)

    def importance(self) -> np.ndarray:
        """Total split gain per feature, normalised to sum 1 (zeros if no tree split)."""
        return K.gain_importance(self.node_feature, self.node_gain, self.n_features)

    @property
    def n_trees(self) -> int:
        """Number of boosting rounds (trees) in the model."""
        return self.tree_start.shape[0] - 1

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The model as named numpy arrays (what the model store writes; no pickle)."""
        out = {
            "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
            "n_features": np.array(self.n_features, dtype=np.int64),
            "baseline": np.array(self.baseline, dtype=np.float64),
        }
        for name in _ARRAYS:
            out[name] = getattr(self, name).copy()
        out["params"] = params_to_array(self.params)
        return out

    @classmethod
    def from_arrays(cls, d: dict[str, np.ndarray]) -> "TreeModel":
        """The model saved by `to_arrays`; DataError when an array is missing or inconsistent."""
        version = int(_entry(d, "format_version"))
        if version != FORMAT_VERSION:
            raise DataError(f"tree model arrays: format version {version}, this program "
                            f"reads version {FORMAT_VERSION}")
        n_features = int(_entry(d, "n_features"))
        arrays = {}
        for name, dtype in _ARRAYS.items():
            a = _entry(d, name)
            if a.ndim != 1:
                raise DataError(f"tree model arrays: {name!r} must be 1-D, got shape {a.shape}")
            arrays[name] = np.ascontiguousarray(a, dtype=dtype)
        n_nodes = arrays["node_feature"].shape[0]
        for name in ("node_threshold", "node_left", "node_right", "node_value", "node_gain",
                     "node_count"):
            if arrays[name].shape[0] != n_nodes:
                raise DataError(f"tree model arrays: {name!r} has {arrays[name].shape[0]} "
                                f"entries for {n_nodes} nodes")
        starts = arrays["tree_start"]
        if (starts.shape[0] < 2 or starts[0] != 0 or starts[-1] != n_nodes
                or (np.diff(starts) < 1).any()):
            raise DataError("tree model arrays: 'tree_start' does not index the nodes")
        internal = arrays["node_feature"] >= 0
        if (arrays["node_feature"] >= n_features).any() or (
                internal & ((arrays["node_left"] < 0) | (arrays["node_left"] >= n_nodes)
                            | (arrays["node_right"] < 0) | (arrays["node_right"] >= n_nodes))
        ).any():
            raise DataError("tree model arrays: a node points outside the model")
        offsets = arrays["bin_offsets"]
        if (offsets.shape[0] != n_features + 1 or offsets[0] != 0
                or offsets[-1] != arrays["bin_edges"].shape[0] or (np.diff(offsets) < 0).any()):
            raise DataError(f"tree model arrays: 'bin_offsets' does not index 'bin_edges' for "
                            f"{n_features} features")
        return cls(params=params_from_array(TreeParams, _entry(d, "params")),
                   n_features=n_features,
                   baseline=float(_entry(d, "baseline")), **arrays)


_ARRAYS = {
    "node_feature": np.int32, "node_threshold": np.float64, "node_left": np.int32,
    "node_right": np.int32, "node_value": np.float64, "node_gain": np.float64,
    "node_count": np.int64, "tree_start": np.int64, "bin_edges": np.float64,
    "bin_offsets": np.int64,
}


def bin_edges(X: np.ndarray, max_bins: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Every feature's bin edges, one after another, and offsets[f + 1] into them."""
    rows = K.bin_sample_rows(X.shape[0], seed)
    per_feature = [K.feature_edges(np.sort(X[rows, f]), max_bins)   # numpy's sort: fast
                   for f in range(X.shape[1])]
    offsets = np.zeros(X.shape[1] + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([e.shape[0] for e in per_feature])
    return np.concatenate(per_feature), offsets


def fit_trees(X, y, params: TreeParams = TreeParams(), sample_weight=None) -> TreeModel:
    """Boosted trees for P(y = 1 | X) fitted on X[n, f] (finite floats) and y[n] (0/1)."""
    if not isinstance(params, TreeParams):
        raise ConfigError(f"tree parameters: expected TreeParams, got {type(params).__name__}")
    X, y = check_xy(X, y, "tree fit")
    n, n_features = X.shape
    w = training_weights(y, params.class_weight, sample_weight, "tree fit")
    max_leaves = params.max_leaves(n)
    hist_bytes = (max_leaves + 1) * n_features * params.max_bins * 3 * 8
    if hist_bytes > MAX_HISTOGRAM_BYTES:
        raise ConfigError(f"tree parameters: {max_leaves} leaves per tree on {n_features} "
                          f"features need {hist_bytes >> 20} MB of histograms; lower "
                          f"max_leaf_nodes or max_depth")
    edges, offsets = bin_edges(X, params.max_bins, params.seed)
    Xb = K.bin_matrix(X, edges, offsets)
    n_bins = (np.diff(offsets) + 1).astype(np.int64)
    (baseline, feature, threshold, _bins, left, right, value, gain, count,
     tree_start) = K.fit_boosted(
        Xb, n_bins, edges, offsets, y.astype(np.float64), w, params.learning_rate, params.n_rounds, max_leaves,
        -1 if params.max_depth is None else params.max_depth, params.min_samples_leaf,
        params.l2, params.subsample, params.seed)
    return TreeModel(params=params, n_features=n_features, baseline=float(baseline),
                     node_feature=feature, node_threshold=threshold, node_left=left,
                     node_right=right, node_value=value, node_gain=gain, node_count=count,
                     tree_start=tree_start, bin_edges=edges, bin_offsets=offsets)
