"""A symbol's exchange filters: `SymbolRules`, the float view the backtest kernels take
(tick, lot step, minimum notional)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from binance_cluster.errors import ConfigError


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """Exchange filters of one symbol: PRICE_FILTER tick, LOT_SIZE step, minimum notional."""

    tick_size: float = 0.01
    step_size: float = 0.00001
    min_notional: float = 5.0

    def __post_init__(self) -> None:
        for name in ("tick_size", "step_size", "min_notional"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(v) or v < 0:
                raise ConfigError(f"rules.{name} = {v!r}: must be a number >= 0 "
                                  "(0 = no rounding / no minimum)")
