"""Feature specs (which columns a model sees) and the validating wrapper of the feature kernel."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from binance_cluster.errors import ConfigError, DataError
from binance_cluster.kernels import features as fk
from binance_cluster.types import Candles

SEED_LAGS = tuple(range(0, 61)) + tuple(range(120, 481, 60)) + (720, 1440)
SEED_MEAN_WINDOW = 1441
MAX_WINDOW = 100_000


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """The feature columns of a model: the seed's close ratios plus optional families (0 = off)."""

    lags: tuple[int, ...] = SEED_LAGS
    mean_window: int = SEED_MEAN_WINDOW
    returns: tuple[int, ...] = ()
    rsi: int = 0
    atr: int = 0
    volume_z: int = 0
    hour: bool = False

    def __post_init__(self) -> None:
        for name in ("lags", "returns"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or any(
                    isinstance(v, bool) or not isinstance(v, int) for v in values):
                raise ConfigError(f"features.{name} must be a list of whole numbers of bars")
            if any(v < (0 if name == "lags" else 1) or v > MAX_WINDOW for v in values):
                raise ConfigError(f"features.{name}: every value must be between "
                                  f"{0 if name == 'lags' else 1} and {MAX_WINDOW}")
            if len(set(values)) != len(values):
                raise ConfigError(f"features.{name}: a value is listed twice")
        if not self.lags:
            raise ConfigError("features.lags must list at least one lag (0 = the newest close)")
        for name in ("mean_window", "rsi", "atr", "volume_z"):
            v = getattr(self, name)
            low = 1 if name == "mean_window" else 0
            if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= MAX_WINDOW:
                raise ConfigError(f"features.{name} must be a whole number from {low} to "
                                  f"{MAX_WINDOW}, not {v!r}")
        if self.volume_z == 1:
            raise ConfigError("features.volume_z needs a window of at least 2 bars (0 = off)")
        if not isinstance(self.hour, bool):
            raise ConfigError("features.hour must be true or false")

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in row order."""
        out = [f"close_lag{d}" for d in self.lags] + [f"return{h}" for h in self.returns]
        if self.rsi:
            out.append(f"rsi{self.rsi}")
        if self.atr:
            out.append(f"range_atr{self.atr}")
        if self.volume_z:
            out.append(f"volume_z{self.volume_z}")
        if self.hour:
            out += ["hour_sin", "hour_cos"]
        return tuple(out)

    @property
    def history(self) -> int:
        """Candles a row reads (the live loop keeps this many)."""
        return int(fk.history_length(*self._kernel_args()[:6]))

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, lists), the form stored with a model."""
        d = asdict(self)
        return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in d.items()},
                          sort_keys=True, separators=(",", ":"))

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical JSON: the identity a stored model is checked against."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> "FeatureSpec":
        """The spec stored as `to_json`; ConfigError for unknown keys."""
        try:
            d = json.loads(text)
        except (TypeError, ValueError):
            raise ConfigError(f"feature spec is not JSON: {text!r:.80}") from None
        if not isinstance(d, dict):
            raise ConfigError("feature spec must be a JSON object")
        known = set(cls.__slots__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"feature spec: unknown key {unknown[0]!r}")
        for k in ("lags", "returns"):
            if k in d and isinstance(d[k], list):
                d[k] = tuple(d[k])
        return cls(**d)

    def _kernel_args(self) -> tuple:
        return _kernel_args(self)


@functools.lru_cache(maxsize=64)
def _kernel_args(spec: FeatureSpec) -> tuple:
    """The spec as the feature kernel's arguments (built once per spec: the live loop's hot path)."""
    lags = np.asarray(spec.lags, np.int64)
    returns = np.asarray(spec.returns, np.int64)
    return (lags, spec.mean_window, returns, spec.rsi, spec.atr, spec.volume_z, spec.hour)


def compute_features(candles: Candles, spec: FeatureSpec, start: int = 0,
                     stop: int | None = None) -> np.ndarray:
    """Feature rows of bars [start, stop) of `candles` (float64[rows, f]; NaN before the history)."""
    n = len(candles)
    stop = n if stop is None else stop
    if not 0 <= start <= stop <= n:
        raise DataError(f"features: rows [{start}, {stop}) outside the {n} candles")
    cols = []
    for name in ("open_time", "high", "low", "close", "volume"):
        col = np.ascontiguousarray(getattr(candles, name),
                                   np.int64 if name == "open_time" else np.float64)
        if col.shape != (n,):
            raise DataError(f"features: column {name} has shape {col.shape}, expected ({n},)")
        cols.append(col)
    lags, mean_window, returns, rsi, atr, volume_z, hour = spec._kernel_args()
    return fk.feature_rows(*cols, lags, mean_window, returns, rsi, atr, volume_z, hour,
                           start, stop)


def newest_features(candles: Candles, spec: FeatureSpec) -> np.ndarray:
    """The feature row of the newest candle (float64[f]); DataError with fewer than history candles."""
    n = len(candles)
    if n < spec.history:
        raise DataError(f"features: {n} candles, a row needs the last {spec.history}")
    return compute_features(candles, spec, n - 1, n)[0]
