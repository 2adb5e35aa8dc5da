"""Metrics against values computed by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from binance_cluster.errors import ConfigError
from binance_cluster.engine.metrics import METRIC_NAMES, compute_metrics, jsonable, periods_per_year
from binance_cluster.engine.simulate import SimResult

DAY = 86_400_000


def result(equity, pnl=(), fees=(), paper=None, held=None) -> SimResult:
    n = len(equity)
    k = len(pnl)
    trades = {"pnl": np.array(pnl, float), "fees": np.array(fees, float),
              "paper": np.zeros(k, bool) if paper is None else np.array(paper, bool),
              "symbol_index": np.zeros(k, np.int64), "exit_reason": np.zeros(k, np.int8)}
    return SimResult(trades=trades, equity=np.array(equity, float),
                     times=np.arange(n, dtype=np.int64) * DAY,
                     held=np.zeros(n, np.int64) if held is None else np.array(held, np.int64))


def test_hand_computed_values():
    equity = [110.0, 99.0, 108.9, 108.9]
    res = result(equity, pnl=[10.0, -11.0, 9.9, 5.0], fees=[0.5, 0.25, 0.25, 1.0],
                 paper=[False, False, False, True], held=[1, 1, 0, 0])
    m = compute_metrics(res, DAY, 100.0)
    assert set(m) == set(METRIC_NAMES)
    r = np.array([0.1, -0.1, 0.1, 0.0])                   # 110/100-1, 99/110-1, 108.9/99-1, 0
    ppy = 365.0
    assert periods_per_year(DAY) == ppy
    assert m["total_return"] == pytest.approx(0.089, abs=1e-15)
    assert m["cagr"] == pytest.approx(1.089 ** (365 / 4) - 1, rel=1e-12)
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(ppy), rel=1e-12)
    downside = math.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert m["sortino"] == pytest.approx(r.mean() / downside * math.sqrt(ppy), rel=1e-12)
    assert m["max_drawdown"] == pytest.approx(0.1, abs=1e-15)       # 110 -> 99
    assert m["trades"] == 3                                          # the paper trade is out
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["profit_factor"] == pytest.approx(19.9 / 11.0)
    assert m["exposure"] == 0.5
    assert m["fees"] == pytest.approx(1.0)


def test_drawdown_counts_from_the_initial_cash():
    m = compute_metrics(result([90.0, 95.0, 80.0, 120.0]), DAY, 100.0)
    assert m["max_drawdown"] == pytest.approx(0.2)                  # 100 -> 80


def test_no_trades_no_variance_gives_zeros():
    m = compute_metrics(result([100.0] * 5), DAY, 100.0)
    assert m == {"total_return": 0.0, "cagr": 0.0, "sharpe": 0.0, "sortino": 0.0,
                 "max_drawdown": 0.0, "trades": 0, "win_rate": 0.0, "profit_factor": 0.0,
                 "exposure": 0.0, "fees": 0.0}


def test_profit_factor_without_losses_is_inf_and_serialises():
    m = compute_metrics(result([100.0, 101.0, 102.0], pnl=[1.0, 1.0], fees=[0.1, 0.1],
                               held=[1, 1, 0]), DAY, 100.0)
    assert m["profit_factor"] == math.inf
    assert m["sortino"] == 0.0                         # no losing bar: documented as 0
    assert m["sharpe"] > 0
    text = json.dumps(jsonable(m), allow_nan=False)
    assert json.loads(text)["profit_factor"] == "inf"


def test_annualisation_uses_the_bar_interval():
    eq = [100.0, 101.0, 100.5, 102.0]
    a = compute_metrics(result(eq), 60_000, 100.0)
    b = compute_metrics(result(eq), DAY, 100.0)
    assert a["sharpe"] / b["sharpe"] == pytest.approx(math.sqrt(1440.0))
    assert periods_per_year(60_000) == 525_600.0


def test_ruin_and_bad_arguments():
    m = compute_metrics(result([50.0, 0.0]), DAY, 100.0)
    assert m["cagr"] == -1.0 and m["max_drawdown"] == 1.0 and m["total_return"] == -1.0
    with pytest.raises(ConfigError, match="bar_ms"):
        compute_metrics(result([100.0]), 0, 100.0)
    with pytest.raises(ConfigError, match="initial_cash"):
        compute_metrics(result([100.0]), DAY, -1.0)
