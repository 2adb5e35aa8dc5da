"""Every strategy's fused sweep equals its single runs through the general path, bit for bit.

On real candles, with stops, targets, trailing stops, max hold, shifts, warm-up history and
both fee models: every metric of every combination of `sweep_symbol` equals
`compute_metrics(run_symbol(compute_signals(...)))` of that combination.
"""

from __future__ import annotations

import dataclasses

import pytest

from binance_cluster.engine.metrics import compute_metrics
from binance_cluster.engine.simulate import Risk, rules_for_prices, run_symbol, sweep_symbol
from binance_cluster.strategies.registry import STRATEGIES, compute_signals, get_strategy
from support.real_data import load_real

MIN = 60_000
EXITS = dict(stop_loss=0.004, take_profit=0.006, trailing_stop=0.003, max_hold_bars=120)
RISKS = {
    "exchange": Risk(),
    "exchange-exits": Risk(**EXITS),
    "exchange-exits-quote-stake": Risk(stake=300.0, stake_mode="quote", slippage=0.0003, **EXITS),
    "quote": Risk(fee_model="quote"),
    "quote-exits-shifts": Risk(fee_model="quote", shifts=True, shifts_min_trades=2, **EXITS),
    "bnb-max-hold": Risk(bnb_fees=True, stake=0.9, max_hold_bars=45),
}
GRIDS = {
    "sma_cross": [{"fast": f, "slow": s} for f in (5, 20) for s in (30, 120)],
    "ema_cross": [{"fast": f, "slow": s} for f in (5, 20) for s in (30, 120)],
    "rsi_reversion": [{"n": n, "lower": lo, "upper": up} for n in (7, 14, 30)
                      for lo in (20.0, 35.0) for up in (60.0, 70.0)],
    "bollinger_reversion": [{"n": n, "k": k} for n in (10, 20, 50) for k in (0.5, 1.5, 2.5)],
    "momentum_burst": [{"window": w, "min_growth": g, "min_weight": mw, "hours": h,
                        "room": 0.002, "band": 0.01}
                       for w in (3, 5) for g in (0.05, 0.15) for mw in (0, 4) for h in (6, 24)],
    "ml_barrier": [{"margin": m} for m in (-0.2, -0.1, -0.05, 0.0, 0.05)],
}


@pytest.fixture(scope="module")
def candles(shared_data):
    return {s: load_real(s, str(shared_data)).slice(0, 20_000) for s in ("SOLUSDT", "BTCUSDT")}


@pytest.fixture(scope="module")
def models(candles):
    from binance_cluster.ml.serve import warm_up_models

    return {s: warm_up_models(c) for s, c in candles.items()}


def test_every_strategy_has_a_fused_sweep():
    assert set(GRIDS) == set(STRATEGIES)
    assert all(st.sweep_fn is not None for st in STRATEGIES.values())


@pytest.mark.parametrize("risk", list(RISKS), ids=list(RISKS))
@pytest.mark.parametrize("name", list(GRIDS))
def test_fused_sweep_equals_single_runs(candles, models, name, risk):
    st = get_strategy(name)
    grid = GRIDS[name]
    risk = RISKS[risk]
    trades = 0
    for symbol, c in candles.items():
        model = models[symbol] if st.needs_model else None
        rules = rules_for_prices(c.close)
        for first in (0, 300):
            swept = sweep_symbol(st, c, grid, risk, rules, "1m", first=first, model=model)
            assert len(swept) == len(grid)
            for p, m in zip(grid, swept):
                sim = run_symbol(c, compute_signals(st, c, p, "1m", model=model), risk, rules,
                                 first=first)
                assert m == compute_metrics(sim, MIN, risk.initial_cash), (symbol, first, p)
                trades += m["trades"]
    assert trades > 2 * len(grid)


@pytest.fixture(scope="module")
def walk_forward_models(shared_data, tmp_path_factory):
    """ETHUSDT's walk-forward models over six days of real candles (daily folds), read back
    from a model store as a backtest reads them: each bar scored by the model fitted before
    its fold, NaN before the first traded fold."""
    from binance_cluster.ml.features import FeatureSpec
    from binance_cluster.ml.labels import LabelSpec
    from binance_cluster.ml.logistic import LogisticParams
    from binance_cluster.ml.model_store import ModelStore
    from binance_cluster.ml.serve import load_symbol_models
    from binance_cluster.ml.walkforward import TrainSpec, walk_forward
    from binance_cluster.types import DAY_MS, parse_time_ms
    from support.real_data import read_real

    start = parse_time_ms("2025-05-05")
    eth = read_real(shared_data, "ETHUSDT", start, start + 6 * DAY_MS)
    spec = TrainSpec(kind="logistic", params=LogisticParams(),
                     features=FeatureSpec(rsi=14, hour=True), label=LabelSpec(0.003, 0.003, 30),
                     fold="day", min_train_rows=1000, min_eval_rows=200)
    path = tmp_path_factory.mktemp("wf") / "ml.h5"
    ModelStore(path).write({"ETHUSDT": walk_forward(eth, "ETHUSDT", spec)})
    return eth, load_symbol_models(str(path), "ETHUSDT")


@pytest.mark.parametrize("risk", ["exchange-exits", "quote-exits-shifts", "bnb-max-hold"])
def test_ml_barrier_sweep_of_walk_forward_models_equals_single_runs(walk_forward_models, risk):
    eth, models = walk_forward_models
    st = get_strategy("ml_barrier")
    risk = dataclasses.replace(RISKS[risk], **st.risk_defaults) if risk == "bnb-max-hold" \
        else RISKS[risk]
    grid = [{"margin": m} for m in (-0.15, -0.05, 0.0, 0.02, 0.1)]
    rules = rules_for_prices(eth.close)
    trades = []
    for first in (0, 1500):
        swept = sweep_symbol(st, eth, grid, risk, rules, "1m", first=first, model=models)
        for p, m in zip(grid, swept):
            sim = run_symbol(eth, compute_signals(st, eth, p, "1m", model=models), risk, rules,
                             first=first)
            assert m == compute_metrics(sim, MIN, risk.initial_cash), (first, p)
            trades.append(m["trades"])
    assert min(trades) < max(trades) and max(trades) > 2   # the margins move the entries


def test_fused_sweep_of_a_grid_equals_each_combination_alone(candles):
    """Indicators shared by combinations change nothing: one combination alone, the same."""
    c = candles["SOLUSDT"]
    rules = rules_for_prices(c.close)
    for name in ("rsi_reversion", "bollinger_reversion", "momentum_burst"):
        st = get_strategy(name)
        risk = dataclasses.replace(RISKS["exchange-exits"], fee_model="quote")
        swept = sweep_symbol(st, c, GRIDS[name][::-1], risk, rules, "1m")
        for p, m in zip(GRIDS[name][::-1], swept):
            assert sweep_symbol(st, c, [p], risk, rules, "1m") == [m]
