"""The registry of model kinds: name -> parameters class, fit function, model class.

Every kind follows one interface: `fit(X float64[n, f], y 0/1[n], params, sample_weight=None)`
returns a model with `predict_proba(X) -> float64[n]`, `importance() -> float64[f]`,
`to_arrays() -> dict[str, ndarray]`, the classmethod `from_arrays(d)` and `params`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from binance_cluster.errors import ConfigError
from binance_cluster.ml.logistic import LogisticModel, LogisticParams, fit_logistic
from binance_cluster.ml.trees import TreeModel, TreeParams, fit_trees


@dataclass(frozen=True, slots=True)
class ModelKind:
    """One kind of model: its parameters dataclass, fit function and model class."""

    name: str
    params_cls: type
    fit: Callable[..., Any]
    model_cls: type

    def params(self, values: dict | None = None) -> Any:
        """Parameters from a table of name = value; ConfigError naming an unknown key."""
        values = dict(values or {})
        known = [f.name for f in dataclasses.fields(self.params_cls)]
        for key in values:
            if key not in known:
                raise ConfigError(f"{key}: unknown parameter of model {self.name} "
                                  f"(known: {', '.join(known)})")
        try:
            return self.params_cls(**values)
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None


MODEL_KINDS: dict[str, ModelKind] = {
    "logistic": ModelKind("logistic", LogisticParams, fit_logistic, LogisticModel),
    "trees": ModelKind("trees", TreeParams, fit_trees, TreeModel),
}


def get_kind(name: str) -> ModelKind:
    """The registered model kind `name`; ConfigError listing the known ones."""
    try:
        return MODEL_KINDS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown model kind {name!r} (known: {', '.join(MODEL_KINDS)})") from None
