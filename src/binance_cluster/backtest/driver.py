"""The backtest driver: plans work units, runs them on every rank, gathers and writes results.

Loops and orchestration only; the maths lives in `strategy`, `simulate` and `metrics`.

- sweep mode: a unit is (symbol, chunk of the parameter grid), its cost candles x
  combinations; units are split by cost across ranks (`parallel.map_units`) and each calls
  `sweep_symbol`. The chunks depend on the job alone, never on the number of ranks, so the
  results are the same at any rank count. The `top` best (symbol, parameters) are then
  replayed with `run_symbol` (again spread over the ranks) for their trades and equity.
- portfolio mode: a unit is a symbol; ranks compute its signals and scores, rank 0 aligns
  them on the union of the candle times and runs `run_portfolio`.

A unit that fails (a corrupt file, a bad value) is reported with its error and the others
finish; the exit code is then 1. Rank 0 alone writes files and shows progress.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import platform
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from binance_cluster.backtest import results
from binance_cluster.backtest.job import (Job, dump_job, read_candles, read_history,
                                          source_interval, warmup_bars)
from binance_cluster.engine.portfolio import align, plain_metrics, portfolio_part
from binance_cluster.errors import DataError
from binance_cluster.kernels.cache import load_once_per_node, warm_keys
from binance_cluster.parallel import Comm, UnitResult, map_units
from binance_cluster.progress import Progress
from binance_cluster.candles.store import CandleStore
from binance_cluster.types import Candles, interval_ms

log = logging.getLogger(__name__)

# Metrics where a smaller value is better; every other metric ranks larger first.
SMALLER_IS_BETTER = frozenset({"fees", "max_drawdown"})


@dataclass(frozen=True, slots=True)
class Unit:
    """One piece of work: a symbol and a slice [lo, hi) of the job's parameter grid."""

    symbol: str
    lo: int
    hi: int
    cost: float

    @property
    def name(self) -> str:
        return self.symbol if self.hi - self.lo <= 1 and self.lo == 0 else \
            f"{self.symbol}[{self.lo}:{self.hi}]"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a run produced, at rank 0: the summary entries, failures and timings."""

    job: Job
    entries: list[dict]                 # summary units, in unit order
    ranked: list[int]                   # indices into entries, best first (ok entries only)
    failures: list[tuple[str, str]]     # (unit name, error)
    units: int
    portfolio: dict | None
    seconds: dict[str, float]
    ranks: int

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def chunk_bounds(n: int, chunk_size: int) -> list[tuple[int, int]]:
    """Split n combinations into near-equal chunks of at most chunk_size (job-only, not rank-dependent)."""
    if n <= 0:
        return []
    parts = -(-n // chunk_size)
    base, extra = divmod(n, parts)
    out, lo = [], 0
    for k in range(parts):
        hi = lo + base + (1 if k < extra else 0)
        out.append((lo, hi))
        lo = hi
    return out


def plan_units(job: Job, candle_counts: dict[str, int]) -> list[Unit]:
    """The job's work units in a fixed order: symbols in job order, then grid chunks."""
    if job.mode == "portfolio":
        return [Unit(s, 0, 1, float(max(candle_counts.get(s, 1), 1))) for s in job.symbols]
    units = []
    for s in job.symbols:
        for lo, hi in chunk_bounds(job.n_combinations, job.chunk_size):
            units.append(Unit(s, lo, hi, float(max(candle_counts.get(s, 1), 1)) * (hi - lo)))
    return units


@dataclass(frozen=True, slots=True)
class Loaded:
    """A symbol's candles for a job: `first` warm-up bars before `start`, then the run's bars."""

    candles: Candles
    first: int


class CandleLoader:
    """Reads (and resamples) the candles of one symbol for a job, keeping the last one read.

    Units of one symbol are consecutive in unit order, so one cached symbol per rank is enough.
    Only the core columns are read unless the strategy trades with models (their features
    may use the extra columns).
    """

    def __init__(self, job: Job, strategy=None):
        self.job = job
        self.store = CandleStore(job.store)
        self.warmup = warmup_bars(job)
        self.columns = None if strategy is None or strategy.needs_model else ()
        self._last: tuple[str, Loaded] | None = None

    def __call__(self, symbol: str) -> Loaded:
        if self._last is not None and self._last[0] == symbol:
            return self._last[1]
        self._last = None
        loaded = load_with_history(self.store, symbol, self.job, self.warmup, self.columns)
        self._last = (symbol, loaded)
        return loaded


def load_candles(store: CandleStore, symbol: str, job: Job,
                 columns: tuple[str, ...] | None = None) -> Candles:
    """The job's candles of `symbol` within [start, end): read, checked, resampled if needed."""
    candles = read_candles(store, symbol, job, job.start, job.end, columns)
    if len(candles) == 0:
        raise DataError(f"{symbol}: no {job.interval} candles in the job's time range")
    return candles


def load_with_history(store: CandleStore, symbol: str, job: Job, warmup: int = 0,
                      columns: tuple[str, ...] | None = None) -> Loaded:
    """`warmup` bars of `symbol` before the job's start, then its candles of [start, end).

    When the job's interval is stored, history and range are one read (no second copy of
    the candles); resampled candles are read as two parts, each resampled on its own.
    """
    if warmup == 0:
        return Loaded(load_candles(store, symbol, job, columns), 0)
    history = read_history(store, symbol, job, warmup, columns)
    if source_interval(store, symbol, job.interval) == job.interval:
        both = read_candles(store, symbol, job, int(history.open_time[0]), job.end, columns)
        if len(both) == warmup:
            raise DataError(f"{symbol}: no {job.interval} candles in the job's time range")
        return Loaded(both, warmup)
    candles = load_candles(store, symbol, job, columns)
    joined = {name: np.concatenate([history.column(name), candles.column(name)])
              for name in candles.columns() if name in history.columns()}
    return Loaded(Candles.from_columns(joined), warmup)


def symbol_model(job: Job, strategy, symbol: str):
    """The models a strategy that `needs_model` trades `symbol` with (None for the others)."""
    if not strategy.needs_model:
        return None
    from binance_cluster.ml.serve import load_symbol_models

    return load_symbol_models(job.models, symbol)


# -- units -----------------------------------------------------------------------------------

# -- the run ---------------------------------------------------------------------------------

def _sort_key(entry: dict, metric: str) -> tuple:
    metrics = entry.get("metrics") or {}
    value = metrics.get(metric)
    if value is None or not isinstance(value, (int, float)) or math.isnan(value):
        return (2, 0.0)
    return (0 if metrics.get("trades", 1) else 1, value if metric in SMALLER_IS_BETTER else -value)


def rank_entries(entries: list[dict], metric: str) -> list[int]:
    """Indices of entries without error, best first by `metric`.

    Units that made no trade come after those that did (their metrics say nothing), NaN
    last; ties keep unit order.
    """
    ok = [i for i, e in enumerate(entries) if e.get("error") is None and e.get("metrics")]
    return sorted(ok, key=lambda i: (*_sort_key(entries[i], metric), i))


def replay_groups(job: Job, top: list[tuple[str, int]]) -> list[tuple[str, list[int]]]:
    """The best units to replay, one group per symbol (job order), so each is read once."""
    by_symbol: dict[str, list[int]] = {}
    for symbol, pid in top:
        by_symbol.setdefault(symbol, []).append(pid)
    return [(s, by_symbol[s]) for s in job.symbols if s in by_symbol]


def run_backtest(job: Job, comm: Comm, candle_counts: dict[str, int] | None = None,
                 show_progress: bool = True, debug: bool = False,
                 fail_rank: int | None = None) -> Outcome | None:
    """Run the job on every rank of `comm`; returns the Outcome at rank 0, None elsewhere.

    Every rank must call it with the same (broadcast) job. `fail_rank` raises a RuntimeError
    on that rank before the compute phase (fault injection for the abort test).
    """
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    counts = candle_counts or {}
    _load_kernels(job, comm)
    seconds["load_kernels"] = time.perf_counter() - started
    if comm.rank == 0:
        results.prepare_output(job.output, dump_job(job))
    if fail_rank is not None and comm.rank == fail_rank:
        raise RuntimeError(f"injected fault on rank {comm.rank}")
    units = plan_units(job, counts)
    t0 = time.perf_counter()
    if job.mode == "sweep":
        outcome = _sweep(job, comm, units, counts, show_progress, debug, seconds)
    else:
        outcome = _portfolio(job, comm, units, show_progress, debug, seconds)
    seconds["compute"] = time.perf_counter() - t0
    if comm.rank != 0:
        return None
    entries, ranked, failures, portfolio, write = outcome
    t1 = time.perf_counter()
    write()
    seconds["write"] = time.perf_counter() - t1
    seconds["total"] = time.perf_counter() - started
    result = Outcome(job, entries, ranked, failures, len(units), portfolio, seconds, comm.size)
    results.atomic_write(os.path.join(job.output, "run.json"), results.run_text(_run_meta(result, units)))
    return result


def _load_kernels(job: Job, comm: Comm) -> None:
    """Get the job's kernels compiled (once per node) and loaded on every rank before the
    compute phase (`kernels.cache.load_once_per_node`), so the compute phase is free of the
    time loading costs. A rank loads only what the job calls: the replay's kernels only when
    `top` asks for trades and curves, the prediction kernels of the kinds its models are of.
    """
    kinds = model_kinds(job)
    load_once_per_node(
        comm, warm_keys([job.strategy], (job.mode,), (job.interval,), kinds),
        f"{job.strategy} ({job.mode}, {job.interval})",
        lambda: _try_warm_up(job, kinds, replay=True, parallel=True),
        lambda: _try_warm_up(job, kinds, replay=job.top > 0))
    comm.barrier()  # the compute phase starts together on every rank


def model_kinds(job: Job, also: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The model kinds a job's strategy is served by: those in its model store and `also`
    (a train job's kind), () for a strategy without models; logistic when there is none yet
    (no store: its error comes later)."""
    from binance_cluster.strategies.registry import get_strategy

    if not get_strategy(job.strategy).needs_model:
        return ()
    from binance_cluster.ml.model_store import ModelStore

    return tuple(sorted(set(ModelStore(job.models).kinds()) | set(also))) or ("logistic",)


def _try_warm_up(job: Job, kinds: tuple[str, ...], replay: bool, parallel: bool = False) -> bool:
    try:
        from binance_cluster.backtest.warmup import warm_up, warm_up_in_parallel

        if parallel:  # compiling: a second process takes the replay's kernels
            warm_up_in_parallel([job.strategy], (job.mode,), (job.interval,), [job.risk], kinds)
        else:
            warm_up([job.strategy], (job.mode,), (job.interval,), [job.risk], replay=replay,
                    model_kinds=kinds)
        return True
    except Exception as exc:  # only an optimisation: the units will show a real error
        log.warning("numba warm-up failed (%s: %s); kernels compile on first use",
                    type(exc).__name__, exc)
        return False


def _busy(gathered: list[UnitResult] | None, phase: str, seconds: dict[str, float]) -> None:
    """Add each rank's time inside units of `phase` (load balance) to `seconds`, at rank 0."""
    if gathered is None:
        return
    for r in sorted({u.rank for u in gathered}):
        seconds[f"{phase}_busy_rank{r}"] = sum(u.seconds for u in gathered if u.rank == r)


def _progress(total: int, label: str, comm: Comm, show: bool) -> tuple[Progress, Callable]:
    bar = Progress(total, label, enabled=show and comm.rank == 0, unit="units")

    def tick(r: UnitResult) -> None:
        bar.update(1, note=r.name if r.ok else f"{r.name} FAILED")

    return bar, tick


def _unit_phase(phase: str, job: Job, comm: Comm, units: list[Unit], fn: Callable, show: bool,
                debug: bool, seconds: dict[str, float]) -> list[UnitResult] | None:
    """Run `fn` over the units on every rank with a progress bar; time it as `phase`."""
    t0 = time.perf_counter()
    bar, tick = _progress(len(units), f"{phase} {job.strategy}", comm, show)
    with bar:
        gathered = map_units(comm, units, fn, costs=[u.cost for u in units],
                             names=[u.name for u in units], progress=tick, debug=debug)
    seconds[phase] = time.perf_counter() - t0
    _busy(gathered, phase, seconds)
    return gathered


def _sweep(job: Job, comm: Comm, units: list[Unit], candle_counts: dict[str, int], show: bool,
           debug: bool, seconds: dict[str, float]):
    from binance_cluster.engine.simulate import EXIT_REASONS, run_symbol, sweep_symbol
    from binance_cluster.strategies.registry import compute_signals, get_strategy

    strategy = get_strategy(job.strategy)
    grid = job.grid()
    load = CandleLoader(job, strategy)
    # a symbol's units are consecutive: its models are read once per rank
    model_of = functools.lru_cache(maxsize=1)(lambda symbol: symbol_model(job, strategy, symbol))

    def sweep_unit(unit: Unit) -> list[dict]:
        loaded = load(unit.symbol)
        out = sweep_symbol(strategy, loaded.candles, grid[unit.lo:unit.hi], job.risk,
                           job.rules_for(unit.symbol), job.interval, first=loaded.first,
                           model=model_of(unit.symbol))
        if len(out) != unit.hi - unit.lo:
            raise RuntimeError(f"sweep_symbol returned {len(out)} results for "
                               f"{unit.hi - unit.lo} parameter sets")
        return [plain_metrics(m) for m in out]

    gathered = _unit_phase("sweep", job, comm, units, sweep_unit, show, debug, seconds)

    top: list[tuple[str, int]] | None = None
    entries: list[dict] = []
    failures: list[tuple[str, str]] = []
    ranked: list[int] = []
    if comm.rank == 0:
        for unit, r in zip(units, gathered):
            if not r.ok:
                failures.append((unit.name, r.error))
            for k in range(unit.lo, unit.hi):
                entries.append({"symbol": unit.symbol, "params_id": k, "params": grid[k],
                                "metrics": r.value[k - unit.lo] if r.ok else None,
                                "error": r.error})
        ranked = rank_entries(entries, job.rank_by)
        top = [(entries[i]["symbol"], entries[i]["params_id"]) for i in ranked[:job.top]]
    top = comm.bcast(top, root=0)

    def replay(group: tuple[str, list[int]]):
        symbol, pids = group
        loaded = load(symbol)
        out, times = [], None
        for pid in pids:
            signals = compute_signals(strategy, loaded.candles, grid[pid], job.interval,
                                      model=model_of(symbol))
            sim = run_symbol(loaded.candles, signals, job.risk, job.rules_for(symbol),
                             bar_ms=interval_ms(job.interval), first=loaded.first)
            times = np.asarray(sim.times)
            out.append((pid, sim.trades, np.asarray(sim.equity)))
            del sim, signals  # before the next pair is made
        return times, out

    t0 = time.perf_counter()
    groups = replay_groups(job, top)
    position = {item: k for k, item in enumerate(top, start=1)}
    trades_at: dict[int, dict] = {}
    failed: dict[int, tuple[str, str]] = {}
    index = {(e["symbol"], e["params_id"]): e for e in entries}

    def take(r: UnitResult, sink) -> None:
        """Rank 0: one symbol's replays arrived; its curves go to results.h5 at once."""
        symbol, pids = groups[r.index]
        if not r.ok:
            failed.update({position[(symbol, pid)]: (f"replay {symbol}#{pid}", r.error)
                           for pid in pids})
            return
        times, replays = r.value
        for pid, trades, equity in replays:
            pos = position[(symbol, pid)]
            trades_at[pos] = trades
            sink.add(f"top/{pos:03d}", times, equity,
                     {"symbol": symbol, "params_id": pid, "params": grid[pid], "rank": pos,
                      job.rank_by: index[(symbol, pid)]["metrics"].get(job.rank_by)},
                     times_of=symbol)

    writing = results.curve_writer(os.path.join(job.output, "results.h5")) \
        if comm.rank == 0 else contextlib.nullcontext()
    with writing as sink:
        map_units(comm, groups, replay,
                  costs=[float(candle_counts.get(g[0], 1)) * len(g[1]) for g in groups],
                  names=[g[0] for g in groups], debug=debug,
                  on_result=(lambda r: take(r, sink)) if comm.rank == 0 else None)
    seconds["replay"] = time.perf_counter() - t0
    if comm.rank != 0:
        return None
    failures.extend(failed[pos] for pos in sorted(failed))

    def write() -> None:
        rows: list[list[str]] = []
        for pos, (symbol, pid) in enumerate(top, start=1):
            if pos in trades_at:
                rows.extend(results.trade_rows([symbol], pid, trades_at[pos], EXIT_REASONS))
        summary = _summary(job, entries, None)
        results.atomic_write(os.path.join(job.output, "trades.csv"), results.trades_text(rows))
        results.atomic_write(os.path.join(job.output, "summary.json"), results.summary_text(summary))

    return entries, ranked, failures, None, write


def _portfolio(job: Job, comm: Comm, units: list[Unit], show: bool, debug: bool,
               seconds: dict[str, float]):
    from binance_cluster.engine.metrics import compute_metrics
    from binance_cluster.engine.simulate import EXIT_REASONS, run_portfolio
    from binance_cluster.strategies.registry import get_strategy

    strategy = get_strategy(job.strategy)
    params = job.grid()[0]
    load = CandleLoader(job, strategy)

    def signal_unit(unit: Unit) -> dict:
        loaded = load(unit.symbol)
        return portfolio_part(strategy, loaded.candles, params, job.interval, job.risk,
                              job.rules_for(unit.symbol),
                              model=symbol_model(job, strategy, unit.symbol), first=loaded.first)

    gathered = _unit_phase("signals", job, comm, units, signal_unit, show, debug, seconds)
    if comm.rank != 0:
        return None
    failures = [(u.name, r.error) for u, r in zip(units, gathered) if not r.ok]
    good = [(u.symbol, r.value) for u, r in zip(units, gathered) if r.ok]
    portfolio: dict[str, Any] = {"symbols": [s for s, _ in good], "metrics": None, "error": None}
    sim = None
    t0 = time.perf_counter()
    if good:
        grid = align([p for _, p in good])
        try:
            sim = run_portfolio(grid["times"], grid["open"], grid["high"], grid["low"],
                                grid["close"], grid["entry"], grid["exit"], grid["score"],
                                job.risk, [job.rules_for(s) for s, _ in good],
                                bar_ms=interval_ms(job.interval))
            portfolio["metrics"] = plain_metrics(compute_metrics(sim, interval_ms(job.interval),
                                                                 job.risk.initial_cash))
            names = [s for s, _ in good]
            portfolio["rejected_entries"] = sim.rejected
            portfolio["refused_sells"] = sim.sell_refused
            portfolio["dust"] = {s: float(d) for s, d in zip(names, sim.dust)}
        except Exception as exc:  # reported like a failed unit; the per-symbol results stand
            text = str(exc) if debug is False else repr(exc)
            portfolio["error"] = text
            failures.append(("portfolio", text))
            sim = None
    seconds["portfolio"] = time.perf_counter() - t0
    index = {s: j for j, (s, _) in enumerate(good)}
    entries = []
    for u, r in zip(units, gathered):
        entry = {"symbol": u.symbol, "params_id": 0, "params": params,
                 "candles": r.value["candles"] if r.ok else None,
                 "metrics": r.value["metrics"] if r.ok else None,
                 "portfolio_trades": None, "portfolio_pnl": None, "error": r.error}
        if sim is not None and u.symbol in index:
            mine = np.asarray(sim.trades["symbol_index"]) == index[u.symbol]
            real = mine & ~np.asarray(sim.trades["paper"], bool)
            entry["portfolio_trades"] = int(real.sum())
            entry["portfolio_pnl"] = float(np.asarray(sim.trades["pnl"])[real].sum()) if real.any() else 0.0
        entries.append(entry)
    ranked = rank_entries(entries, job.rank_by)

    def write() -> None:
        names = [s for s, _ in good]
        rows = list(results.trade_rows(names, 0, sim.trades, EXIT_REASONS)) if sim is not None else []
        curves = []
        if sim is not None:
            curves.append(("portfolio", np.asarray(sim.times), np.asarray(sim.equity),
                           {"symbols": names, "params": params}))
        summary = _summary(job, entries, portfolio)
        results.atomic_write(os.path.join(job.output, "trades.csv"), results.trades_text(rows))
        results.write_curves(os.path.join(job.output, "results.h5"), curves)
        results.atomic_write(os.path.join(job.output, "summary.json"), results.summary_text(summary))

    return entries, ranked, failures, portfolio, write


def _summary(job: Job, entries: list[dict], portfolio: dict | None) -> dict:
    """The summary.json object: job identity, units and (portfolio mode) the portfolio."""
    out: dict[str, Any] = {
        "mode": job.mode, "strategy": job.strategy, "interval": job.interval,
        "start": job.start, "end": job.end, "symbols": list(job.symbols),
        "rank_by": job.rank_by, "combinations": job.n_combinations,
        "failed": sum(1 for e in entries if e["error"] is not None),
    }
    if portfolio is not None:
        out["portfolio"] = portfolio
    out["units"] = entries
    return out


def _run_meta(outcome: Outcome, units: list[Unit]) -> dict:
    import datetime as _dt

    from binance_cluster import __version__

    return {
        "complete": True,
        "finished_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(), "platform": platform.platform(),
        "python": platform.python_version(), "version": __version__,
        "ranks": outcome.ranks, "units": len(units), "failed_units": len(outcome.failures),
        "failures": [{"unit": n, "error": e} for n, e in outcome.failures],
        "seconds": {k: round(v, 4) for k, v in outcome.seconds.items()},
        "job": outcome.job.source,
    }
