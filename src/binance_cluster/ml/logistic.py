"""The logistic model: L2-regularised logistic regression on standardised features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from binance_cluster.errors import ConfigError, DataError
from binance_cluster.kernels import logistic as lk
from binance_cluster.ml.params import (CLASS_WEIGHTS, check_xy, params_from_array,
                                       params_to_array, training_weights)


@dataclass(frozen=True, slots=True)
class LogisticParams:
    """l2: penalty on the standardised weights (scikit-learn C = 1 / l2); balanced class weights
    weigh each class by rows / (2 * rows of the class), as the seed did."""

    l2: float = 1.0
    class_weight: str = "balanced"
    max_iter: int = 100
    tol: float = 1e-10

    def __post_init__(self) -> None:
        if isinstance(self.l2, bool) or not isinstance(self.l2, (int, float)) or not self.l2 > 0:
            raise ConfigError(f"model l2 = {self.l2!r}: must be a number above 0")
        if self.class_weight not in CLASS_WEIGHTS:
            raise ConfigError(f"model class_weight = {self.class_weight!r}: known: "
                              f"{', '.join(CLASS_WEIGHTS)}")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, int) or self.max_iter < 1:
            raise ConfigError(f"model max_iter = {self.max_iter!r}: must be a whole number >= 1")
        if not isinstance(self.tol, (int, float)) or not 0 < self.tol < 1:
            raise ConfigError(f"model tol = {self.tol!r}: must be above 0 and below 1")


def fit_logistic(x, y, params: LogisticParams, sample_weight=None) -> "LogisticModel":
    """Fit on rows x [n, f] with labels y (0/1); DataError for NaN features or a single class."""
    x, y = check_xy(x, y, "logistic fit")
    s = training_weights(y, params.class_weight, sample_weight, "logistic fit")
    mean, scale = lk.standardise_stats(x)
    w, b0, iterations, converged = lk.fit_newton(x, mean, scale, y.astype(np.float64), np.ascontiguousarray(s),
                                                 float(params.l2), int(params.max_iter),
                                                 float(params.tol))
    return LogisticModel(params, w, float(b0), mean, scale, int(iterations), bool(converged))


class LogisticModel:
    """A fitted logistic model: weights on standardised features, their means and scales."""

    kind = "logistic"

    def __init__(self, params: LogisticParams, coef: np.ndarray, intercept: float,
                 mean: np.ndarray, scale: np.ndarray, iterations: int = 0,
                 converged: bool = True):
        self.params = params
        self.coef = np.ascontiguousarray(coef, np.float64)
        self.intercept = float(intercept)
        self.mean = np.ascontiguousarray(mean, np.float64)
        self.scale = np.ascontiguousarray(scale, np.float64)
        self.iterations = iterations
        self.converged = converged

    @property
    def n_features(self) -> int:
        return int(self.coef.shape[0])

    def predict_proba(self, x) -> np.ndarray:
        """Probability of class 1 per row; DataError for NaN features or a wrong column count."""
        x, _ = check_xy(x, None, "logistic predict")
        if x.shape[1] != self.n_features:
            raise DataError(f"logistic predict: {x.shape[1]} feature columns, the model was "
                            f"trained on {self.n_features}")
        return lk.predict_standardised(x, self.mean, self.scale, self.coef, self.intercept)

    def importance(self) -> np.ndarray:
        """The standardised coefficients (signed: the log-odds change per standard deviation)."""
        return self.coef.copy()

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything the model is, as plain arrays (saved without pickle)."""
        return {"coef": self.coef.copy(), "intercept": np.array([self.intercept]),
                "mean": self.mean.copy(), "scale": self.scale.copy(),
                "fit_info": np.array([self.iterations, int(self.converged)], np.int64),
                "params": params_to_array(self.params)}

    @classmethod
    def from_arrays(cls, d: dict[str, np.ndarray]) -> "LogisticModel":
        """The model `to_arrays` saved; DataError naming a missing or inconsistent array."""
        for key in ("coef", "intercept", "mean", "scale", "fit_info", "params"):
            if key not in d:
                raise DataError(f"logistic model: array {key!r} missing")
        coef = np.asarray(d["coef"], np.float64)
        f = coef.shape[0] if coef.ndim == 1 else -1
        if f < 1 or np.shape(d["mean"]) != (f,) or np.shape(d["scale"]) != (f,) \
                or np.shape(d["intercept"]) != (1,):
            raise DataError("logistic model: coef, mean, scale and intercept disagree in shape")
        values = np.concatenate([coef, np.asarray(d["mean"], np.float64),
                                 np.asarray(d["scale"], np.float64), np.asarray(d["intercept"], np.float64)])
        if not np.isfinite(values).all() or not (np.asarray(d["scale"]) > 0).all():
            raise DataError("logistic model: coef, mean, scale or intercept not finite (or a scale <= 0)")
        info = np.asarray(d["fit_info"], np.int64)
        return cls(params_from_array(LogisticParams, d["params"]), coef,
                   float(np.asarray(d["intercept"])[0]), d["mean"], d["scale"], int(info[0]),
                   bool(info[1]))
