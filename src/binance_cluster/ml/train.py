"""The `train` driver: walk-forward training of every symbol across the ranks, written at rank 0.

A unit is a symbol (cost: its candles); each rank reads its symbols' candles and the stored
champion of the symbol and runs the walk-forward; rank 0 gathers the fold records and
champions, writes them to the model store (one atomic replace) and writes `train.json` /
`train.csv` (one row per symbol and fold, `ml.train_results`) to the job's output directory.
A symbol that fails is reported with its error and the others are stored. Each symbol's records travel to rank 0
as soon as the symbol is done (no rank holds its share until a final gather).

Pooled (`[train] pool = true`): rank 0 computes every symbol's features and labels and fits
the pool's model fold by fold, so the models do not depend on the number of ranks; the other
ranks wait for the exit code. Rank 0 keeps each symbol's candles and labels, not its feature
matrix (`walkforward.light`): a fold's rows are computed from the candles straight into the
one matrix the fold is fitted (or scored) on, so rank 0 holds that matrix (the largest fold's:
every symbol's rows before it, 8 bytes a row and feature) but never every symbol's features
beside it. A fold's training rows must all sit on the fitting rank anyway; computing them
there (about 0.1 s per symbol and month) costs far less than sending them (twice their size
in flight on both ends) and keeps the workers at their floor. The others sleep in a quiet
barrier meanwhile (MPI's own waits would spin on a core rank 0 may share).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import time
from dataclasses import dataclass

from binance_cluster.backtest.driver import load_candles
from binance_cluster.candles.store import CandleStore
from binance_cluster.ml.job import TrainJob
from binance_cluster.errors import BinanceClusterError
from binance_cluster.ml.model_store import FoldRecord, ModelStore
from binance_cluster.kernels._jit import release_llvm_code
from binance_cluster.kernels.cache import load_once_per_node, mark_warm
from binance_cluster.ml.train_results import write_train_summary
from binance_cluster.ml.walkforward import (POOL, Trained, light, symbol_block,
                                           walk_forward_blocks, warm_up)
from binance_cluster.parallel import Comm, SerialComm, UnitResult, map_units, quiet_barrier
from binance_cluster.progress import Progress
from binance_cluster.types import format_time_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    """What a train run produced, at rank 0."""

    records: dict[str, list[FoldRecord]]
    champions: dict[str, tuple[FoldRecord, list[dict]]]
    failures: list[tuple[str, str]]
    seconds: float
    ranks: int

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


M_MMAP_THRESHOLD = -3          # glibc mallopt parameter
BIG_ALLOCATION = 128 * 1024    # bytes from which an allocation gets (and frees) its own pages


def return_freed_arrays() -> None:
    """Have glibc map every allocation of BIG_ALLOCATION bytes or more on its own, so a freed
    feature matrix goes back to the system. Otherwise glibc raises its threshold after the
    first large free and the next symbols' matrices come from a heap that never shrinks: on
    the 16 real symbols a training rank peaked 44 MB higher. No-op off glibc."""
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).mallopt(M_MMAP_THRESHOLD, BIG_ALLOCATION)
    except (OSError, AttributeError, TypeError):
        pass


def train_keys(tj: TrainJob) -> list[str]:
    """The warm-up stamp's name for the training kernels of the job's model kind."""
    return [f"train:{tj.spec.kind}"]


def warm_up_training(tj: TrainJob) -> bool:
    """Compile (or load) the job's training kernels and stamp the cache; False if that failed
    (only an optimisation: the units show a real error)."""
    try:
        warm_up(tj.spec)
    except Exception as exc:
        log.warning("training kernels not loaded ahead (%s: %s); they load on first use",
                    type(exc).__name__, exc)
        return False
    mark_warm(train_keys(tj))
    return True


def load_kernels(tj: TrainJob, comm: Comm) -> None:
    """Load the job's training kernels before any data (compiled by one rank per node when
    the cache lacks them, `load_once_per_node`), handing LLVM's code pages back as they load:
    loaded by the first symbol instead, they raised a training rank's peak by ~90 MB of LLVM
    code on top of that symbol's features."""
    load_once_per_node(comm, train_keys(tj), f"training {tj.spec.kind} models",
                       lambda: warm_up_training(tj), lambda: warm_up_training(tj))


def run_train(tj: TrainJob, comm: Comm, counts: dict[str, int] | None = None,
              show_progress: bool = True, debug: bool = False) -> TrainOutcome | None:
    """Train every symbol of the job on the ranks of `comm`; the outcome at rank 0, else None."""
    started = time.perf_counter()
    return_freed_arrays()
    job = tj.job
    symbols = list(job.symbols)
    store = CandleStore(job.store)

    models = ModelStore(job.models)
    pooled = tj.spec.pool

    def unit(symbol: str):
        block = symbol_block(load_candles(store, symbol, job), symbol, tj.spec)
        if pooled:
            return light(block)
        return walk_forward_blocks([block], tj.spec, models.champion(symbol),
                                   models.champion_history(symbol))

    what = "features" if pooled else f"train {tj.spec.kind}"
    bar = Progress(len(symbols), what, enabled=show_progress and comm.rank == 0, unit="symbols")

    def tick(r: UnitResult) -> None:
        bar.update(1, note=r.name if r.ok else f"{r.name} FAILED")

    if pooled and comm.rank != 0:
        release_llvm_code()
        quiet_barrier(comm)            # asleep while rank 0 fits: MPI's waits spin on a core
        return None
    values: dict[int, object] = {}

    def keep(r: UnitResult) -> None:   # results stream to rank 0 one symbol at a time
        if r.ok:
            values[r.index] = r.value

    load_kernels(tj, SerialComm() if pooled else comm)
    with bar:
        gathered = map_units(SerialComm() if pooled else comm, symbols, unit,
                             costs=[float((counts or {}).get(s, 1)) for s in symbols],
                             names=symbols, progress=tick, debug=debug, on_result=keep)
    if comm.rank != 0:
        return None
    failures = [(s, r.error) for s, r in zip(symbols, gathered) if not r.ok]
    done = [values.pop(i) for i in sorted(values)]
    del gathered
    if pooled:
        try:
            done = [_train_pool(done, tj, models, failures, show_progress)] if done else []
        finally:
            quiet_barrier(comm)
    records = {s: recs for t in done for s, recs in t.records.items()}
    champions = {n: c for t in done for n, c in t.champions.items()}
    models.write(records, champions)
    rows = [fold_row(rec) for s in symbols if s in records for rec in records[s]]
    summary = {"models": job.models, "kind": tj.spec.kind, "fold": tj.spec.fold,
               "threshold_rule": tj.spec.threshold, "metric": tj.spec.metric,
               "feature_hash": tj.spec.features.hash, "features": list(tj.spec.features.names),
               "failures": [{"symbol": s, "error": e} for s, e in failures], "folds": rows}
    write_train_summary(job.output, summary)
    return TrainOutcome(records, champions, failures, time.perf_counter() - started, comm.size)


def _train_pool(blocks: list, tj: TrainJob, models: ModelStore, failures: list,
                show_progress: bool) -> Trained:
    """The pool's walk-forward at rank 0 on the gathered blocks (a failure: nothing trained)."""
    bar = Progress(1, f"train pooled {tj.spec.kind}", enabled=show_progress, unit="pool")
    with bar:
        try:
            trained = walk_forward_blocks(blocks, tj.spec, models.champion(POOL),
                                          models.champion_history(POOL), pool=POOL)
        except BinanceClusterError as exc:
            failures.append((POOL, str(exc)))
            trained = Trained({}, {})
        bar.update(1)
    return trained


def fold_row(rec: FoldRecord) -> dict:
    """One symbol and fold as a flat row of figures."""
    m = rec.metrics
    ch = m.get("challenger") or {}
    held = m.get("champion") or {}
    at = m.get("at_threshold") or {}
    stored = (m.get("stored_champion") or {}).get("stored") or {}
    return {"symbol": rec.symbol, "fold": rec.fold, "eval_start": format_time_ms(rec.eval_start),
            "eval_end": format_time_ms(rec.eval_end), "train_rows": m.get("train_rows"),
            "eval_rows": m.get("eval_rows"), "base_rate": ch.get("base_rate"),
            "auc": ch.get("auc"), "log_loss": ch.get("log_loss"),
            "champion_auc": held.get("auc"), "champion_log_loss": held.get("log_loss"),
            "winner": rec.decision.get("winner"), "trades_with": rec.trades_with or None,
            "threshold": rec.threshold, "precision": at.get("precision"),
            "recall": at.get("recall"), "signals": at.get("signals"), "skip": rec.skip or None,
            "pool": rec.pool or None, "stored_auc": stored.get("auc"),
            "stored_log_loss": stored.get("log_loss"),
            "stored_winner": _stored_winner(m.get("stored_champion"))}


def _stored_winner(judged: dict | None) -> str | None:
    """Who trades after a fold judged against the stored champion: "stored", "this run" or
    "stored (not judged)"; None for the other folds."""
    if not judged:
        return None
    d = judged["decision"]
    if d["winner"] == "challenger":
        return "this run"
    return "stored" if judged.get("stored") else "stored (not judged)"
