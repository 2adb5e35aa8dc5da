"""Warm-up: compile (or load from numba's cache) every kernel a backtest path uses.

Runs the whole backtest path once on small synthetic candles, then stamps the cache
(`kernels.cache`) so ranks started later load the kernels instead of compiling them. Under
`mpirun` the first rank of each node compiles first while the others wait (`parallel.node_leader`).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

from binance_cluster.candles.synthetic import synthetic_candles
from binance_cluster.engine.portfolio import align, portfolio_part
from binance_cluster.kernels.cache import mark_warm, warm_keys
from binance_cluster.types import interval_ms


def warm_up(strategies: list[str] | None = None, modes: tuple[str, ...] = ("sweep", "portfolio"),
            intervals: tuple[str, ...] = ("1m",), risks: list | None = None,
            replay: bool = True, sweep: bool = True,
            model_kinds: tuple[str, ...] = ("logistic",)) -> list[str]:
    """Compile (or load from numba's cache) every kernel the given strategies and modes use.

    Runs the whole backtest path once on small synthetic candles, a strategy served by models
    once with a model of each of `model_kinds`. Returns what was warmed.
    In sweep mode, `sweep` False leaves out the sweep units' kernels and `replay` False the
    replay of the best units (a job with `top = 0`); only a complete warm-up stamps the cache.
    """
    from binance_cluster.engine.metrics import compute_metrics
    from binance_cluster.engine.simulate import Risk, SymbolRules, run_portfolio, run_symbol, sweep_symbol
    from binance_cluster.strategies.registry import STRATEGIES, compute_signals, get_strategy

    names = list(STRATEGIES) if strategies is None else list(strategies)
    if risks is None:
        risks = [Risk(), Risk(stop_loss=0.05, take_profit=0.07, trailing_stop=0.03,
                          max_hold_bars=60, shifts=True, stake_mode="quote", stake=100.0,
                          slippage=0.0005, max_positions=2)]
    rules = SymbolRules()
    base = synthetic_candles()
    done = []
    for interval in intervals:
        candles = base
        if interval != "1m":
            from binance_cluster.candles.resample import resample

            candles = resample(base, interval, "1m")
        bar_ms = interval_ms(interval)
        for name in names:
            strategy = get_strategy(name)
            params = strategy.resolve({})
            models = [None]
            if strategy.needs_model:
                from binance_cluster.ml.serve import warm_up_models

                models = [warm_up_models(candles, kind) for kind in model_kinds]
            for model, risk in ((m, r) for m in models for r in risks):
                if "sweep" in modes:
                    if sweep:
                        sweep_symbol(strategy, candles, [params, params], risk, rules, interval,
                                     model=model)
                    if replay:  # the best units' trades and curves (no metrics: the sweep's)
                        run_symbol(candles, compute_signals(strategy, candles, params, interval,
                                                            model=model),
                                   risk, rules, bar_ms=bar_ms)
                if "portfolio" in modes:
                    parts = [portfolio_part(strategy, c, params, interval, risk, rules, model)
                             for c in (candles, candles.slice(len(candles) // 3, len(candles)))]
                    grid = align(parts)
                    sim = run_portfolio(grid["times"], grid["open"], grid["high"], grid["low"],
                                        grid["close"], grid["entry"], grid["exit"], grid["score"],
                                        risk, [rules, rules], bar_ms=bar_ms)
                    compute_metrics(sim, bar_ms, risk.initial_cash)
            done.append(f"{name} {interval}")
    if (replay and sweep) or "sweep" not in modes:
        mark_warm(warm_keys(names, modes, intervals, _served_kinds(names, model_kinds)))
    return done


def _served_kinds(names: list[str], model_kinds: tuple[str, ...]) -> tuple[str, ...]:
    """`model_kinds` when one of the strategies `names` is served by models, else ()."""
    from binance_cluster.strategies.registry import get_strategy

    return model_kinds if any(get_strategy(n).needs_model for n in names) else ()


_HELPER = ("import pickle, sys\n"
           "from binance_cluster.backtest.warmup import warm_up\n"
           "args, kwargs = pickle.load(sys.stdin.buffer)\n"
           "warm_up(*args, **kwargs)\n")


def warm_up_in_parallel(strategies: list[str] | None = None,
                        modes: tuple[str, ...] = ("sweep", "portfolio"),
                        intervals: tuple[str, ...] = ("1m",), risks: list | None = None,
                        model_kinds: tuple[str, ...] = ("logistic",)) -> list[str]:
    """`warm_up` with the replay's kernels compiled by a second process beside this one.

    A sweep's two kernel sets (its units' and the replay's general simulator) share little
    and compile for seconds each; on a machine with more than one core they compile at once.
    A failed helper process is made up for here; the cache is stamped once both are done.
    """
    if "sweep" not in modes or (os.cpu_count() or 1) < 2:
        return warm_up(strategies, modes, intervals, risks, model_kinds=model_kinds)
    # a fresh interpreter (not multiprocessing: it would re-run the caller's main script)
    helper = subprocess.Popen([sys.executable, "-c", _HELPER], stdin=subprocess.PIPE)
    with helper.stdin:
        helper.stdin.write(pickle.dumps(((strategies, ("sweep",), intervals, risks),
                                         {"sweep": False, "model_kinds": model_kinds})))
    done = warm_up(strategies, modes, intervals, risks, replay=False, model_kinds=model_kinds)
    if helper.wait() != 0:
        warm_up(strategies, ("sweep",), intervals, risks, sweep=False, model_kinds=model_kinds)
    from binance_cluster.strategies.registry import STRATEGIES

    names = list(STRATEGIES) if strategies is None else list(strategies)
    mark_warm(warm_keys(names, modes, intervals, _served_kinds(names, model_kinds)))
    return done
