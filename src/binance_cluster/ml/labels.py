"""Barrier labels (validating wrapper of kernels/labels.py) and the purge of training windows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from binance_cluster.errors import ConfigError
from binance_cluster.kernels import labels as lk
from binance_cluster.types import Candles

UNKNOWN = lk.UNKNOWN


@dataclass(frozen=True, slots=True)
class LabelSpec:
    """The barrier of a label: take profit and stop loss (fractions of the entry), horizon in bars."""

    take_profit: float = 0.01
    stop_loss: float = 0.02
    horizon: int = 60

    def __post_init__(self) -> None:
        if not 0 < self.take_profit < 10:
            raise ConfigError(f"label take_profit = {self.take_profit!r}: must be above 0")
        if not 0 < self.stop_loss < 1:
            raise ConfigError(f"label stop_loss = {self.stop_loss!r}: must be above 0 and below 1")
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, int) or self.horizon < 1:
            raise ConfigError(f"label horizon = {self.horizon!r}: must be a whole number of bars >= 1")


def barrier_labels(candles: Candles, spec: LabelSpec) -> tuple[np.ndarray, np.ndarray]:
    """(label int8[n] with 1, 0 or UNKNOWN; trade outcome float64[n]) of every bar."""
    return lk.barrier_labels(np.ascontiguousarray(candles.open, np.float64),
                             np.ascontiguousarray(candles.high, np.float64),
                             np.ascontiguousarray(candles.low, np.float64),
                             np.ascontiguousarray(candles.close, np.float64),
                             float(spec.take_profit), float(spec.stop_loss), int(spec.horizon))


def purged_stop(stop: int, horizon: int) -> int:
    """End (exclusive) of the usable rows of a window ending at row `stop`: its last `horizon`
    rows are dropped, since their labels look at bars at or after `stop`."""
    return max(0, stop - horizon)
