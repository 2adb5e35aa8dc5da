"""Performance metrics of a simulation (one place for their definitions).

- total_return: final equity / initial cash - 1.
- cagr: (final / initial) ** (1 / years) - 1, years = bars * bar_ms / 365 days; -1 when the
  equity ends at or below zero, 0 without bars.
- sharpe, sortino: per-bar returns r_t = eq_t / eq_{t-1} - 1 (eq_{-1} = initial cash),
  annualised with periods per year = 365 * 86_400_000 / bar_ms and no risk-free rate:
  sharpe = mean(r) / std(r, ddof=1) * sqrt(ppy); sortino = mean(r) / sqrt(mean(min(r, 0)^2))
  * sqrt(ppy). A zero denominator (no variance, no losing bar, fewer than 2 bars) gives 0.
- max_drawdown: largest (peak - equity) / peak, as a positive fraction (0.25 = -25 %).
- trades: closed real trades (paper trades of the shifts filter excluded).
- win_rate: winning trades / trades (0 without trades). A trade wins when its pnl is above
  5e-9 (half a unit of the 8th decimal, Binance's amount precision) and loses below -5e-9; a
  break-even trade (exact pnl 0, whatever float noise its sums leave) is neither
  (`kernels.metrics.is_win`, also used by the shifts filter's hourly win rates).
- profit_factor: gross profit (sum of wins) / gross loss (minus the sum of losses); `inf` when there are profits and no losses, 0
  without profits. JSON has no infinity: `jsonable` writes it as the string "inf".
- exposure: fraction of bars during which at least one real position was held.
- fees: fees paid by real trades (quote currency).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from binance_cluster.errors import ConfigError
from binance_cluster.kernels import metrics as mk

METRIC_NAMES = ("total_return", "cagr", "sharpe", "sortino", "max_drawdown", "trades",
                "win_rate", "profit_factor", "exposure", "fees")
YEAR_MS = 365 * 86_400_000


def periods_per_year(bar_ms: int) -> float:
    """Bars in a 365-day year."""
    return YEAR_MS / bar_ms


def finish(acc: np.ndarray, bar_ms: int, initial_cash: float) -> dict[str, float]:
    """Named metrics from one accumulator vector of `kernels.metrics`."""
    return finish_many(np.asarray(acc, dtype=np.float64)[None, :], bar_ms, initial_cash)[0]


def finish_many(accs: np.ndarray, bar_ms: int, initial_cash: float) -> list[dict[str, float]]:
    """Named metrics of each row of an accumulator array [k, ACC_SIZE] (elementwise IEEE
    arithmetic, so a row gives the same floats alone or among others)."""
    a = np.asarray(accs, dtype=np.float64)
    n = a[:, mk.ACC_BARS]
    ratio = a[:, mk.ACC_FINAL] / initial_cash
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        years = n * bar_ms / YEAR_MS
        exponent = np.log(np.where(ratio > 0.0, ratio, 1.0)) / np.where(n > 0, years, 1.0)
        cagr = np.where(exponent > 700.0, np.inf, np.expm1(np.minimum(exponent, 700.0)))
        cagr = np.where(n == 0, 0.0, np.where(ratio <= 0.0, -1.0, cagr))
        s1 = a[:, mk.ACC_SUM_R]
        s2 = a[:, mk.ACC_SUM_R2]
        ann = math.sqrt(periods_per_year(bar_ms))
        many = n >= 2
        mean = s1 / np.where(many, n, 1.0)
        var = (s2 - s1 * s1 / np.where(many, n, 1.0)) / np.where(many, n - 1.0, 1.0)
        sharpe = np.where(many & (var > 0.0), mean / np.sqrt(np.where(var > 0.0, var, 1.0)) * ann,
                          0.0)
        down = np.sqrt(a[:, mk.ACC_SUM_D2] / np.where(many, n, 1.0))
        sortino = np.where(many & (down > 0.0), mean / np.where(down > 0.0, down, 1.0) * ann,
                           0.0)
        trades = a[:, mk.ACC_TRADES]
        win_rate = np.where(trades > 0, a[:, mk.ACC_WINS] / np.where(trades > 0, trades, 1.0),
                            0.0)
        gp = a[:, mk.ACC_GROSS_PROFIT]
        gl = a[:, mk.ACC_GROSS_LOSS]
        pf = np.where(gl > 0.0, gp / np.where(gl > 0.0, gl, 1.0),
                      np.where(gp > 0.0, np.inf, 0.0))
        exposure = np.where(n > 0, a[:, mk.ACC_HELD] / np.where(n > 0, n, 1.0), 0.0)
    columns = {
        "total_return": (ratio - 1.0).tolist(),
        "cagr": cagr.tolist(),
        "sharpe": sharpe.tolist(),
        "sortino": sortino.tolist(),
        "max_drawdown": a[:, mk.ACC_MAX_DD].tolist(),
        "trades": trades.astype(np.int64).tolist(),
        "win_rate": win_rate.tolist(),
        "profit_factor": pf.tolist(),
        "exposure": exposure.tolist(),
        "fees": a[:, mk.ACC_FEES].tolist(),
    }
    return [dict(zip(columns, row)) for row in zip(*columns.values())]


def accumulators(sim, initial_cash: float) -> np.ndarray:
    """The metric accumulator vector (kernels.metrics ACC_* slots) of a SimResult."""
    held = sim.held if sim.held is not None else held_from_trades(sim)
    return mk.accumulate(np.ascontiguousarray(sim.equity, dtype=np.float64),
                         np.ascontiguousarray(held, dtype=np.int64),
                         np.ascontiguousarray(sim.trades["pnl"], dtype=np.float64),
                         np.ascontiguousarray(sim.trades["fees"], dtype=np.float64),
                         np.ascontiguousarray(sim.trades["paper"], dtype=np.bool_),
                         float(initial_cash))


def held_from_trades(sim) -> np.ndarray:
    """held[t] from the real trades: entry bar to exit bar (excluded for exits at the open)."""
    n = sim.equity.shape[0]
    held = np.zeros(n + 1, dtype=np.int64)
    tr = sim.trades
    at_open = (tr["exit_reason"] == 0) | (tr["exit_reason"] == 4)
    for k in np.flatnonzero(~np.asarray(tr["paper"], bool)):
        last = tr["exit_bar"][k] - (1 if at_open[k] else 0)
        held[tr["entry_bar"][k]] += 1
        held[last + 1] -= 1
    return np.cumsum(held[:n])


def compute_metrics(result, bar_ms: int, initial_cash: float) -> dict[str, float]:
    """METRIC_NAMES of a SimResult whose run started with `initial_cash`, on bars of `bar_ms`."""
    if not (isinstance(bar_ms, (int, np.integer)) and bar_ms > 0):
        raise ConfigError(f"compute_metrics: bar_ms must be a positive whole number, "
                          f"not {bar_ms!r}")
    if not (initial_cash > 0 and math.isfinite(initial_cash)):
        raise ConfigError(f"compute_metrics: initial_cash must be above zero, not {initial_cash!r}")
    return finish(accumulators(result, initial_cash), int(bar_ms), float(initial_cash))


def jsonable(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics ready for strict JSON: inf -> "inf", -inf -> "-inf", NaN -> None."""
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, (float, np.floating)) and not math.isfinite(v):
            out[k] = None if math.isnan(v) else ("inf" if v > 0 else "-inf")
        elif isinstance(v, np.integer):
            out[k] = int(v)
        elif isinstance(v, np.floating):
            out[k] = float(v)
        else:
            out[k] = v
    return out
