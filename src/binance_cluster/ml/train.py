"""The `train` driver: walk-forward training of every symbol across the ranks, written at rank 0.

A unit is a symbol (cost: its candles); each rank reads its symbols' candles and runs
`walk_forward`; rank 0 gathers the fold records, writes them to the model store (one atomic
replace) and writes `train.json` / `train.csv` (one row per symbol and fold) to the job's
output directory. A symbol that fails is reported with its error and the others are stored.
"""

from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass

from binance_cluster.backtest import results
from binance_cluster.backtest.driver import load_candles
from binance_cluster.candles.store import CandleStore
from binance_cluster.ml.job import TrainJob
from binance_cluster.ml.model_store import FoldRecord, ModelStore
from binance_cluster.ml.walkforward import walk_forward
from binance_cluster.parallel import Comm, UnitResult, map_units
from binance_cluster.progress import Progress
from binance_cluster.types import format_time_ms

TRAIN_JSON = "train.json"
CSV_COLUMNS = ("symbol", "fold", "eval_start", "eval_end", "train_rows", "eval_rows", "base_rate",
               "auc", "log_loss", "champion_auc", "champion_log_loss", "winner", "trades_with",
               "threshold", "precision", "recall", "signals", "skip")


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    """What a train run produced, at rank 0."""

    records: dict[str, list[FoldRecord]]
    failures: list[tuple[str, str]]
    seconds: float
    ranks: int

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def run_train(tj: TrainJob, comm: Comm, counts: dict[str, int] | None = None,
              show_progress: bool = True, debug: bool = False) -> TrainOutcome | None:
    """Train every symbol of the job on the ranks of `comm`; the outcome at rank 0, else None."""
    started = time.perf_counter()
    job = tj.job
    symbols = list(job.symbols)
    store = CandleStore(job.store)

    def unit(symbol: str) -> list[FoldRecord]:
        return walk_forward(load_candles(store, symbol, job), symbol, tj.spec)

    bar = Progress(len(symbols), f"train {tj.spec.kind}", enabled=show_progress and comm.rank == 0,
                   unit="symbols")

    def tick(r: UnitResult) -> None:
        bar.update(1, note=r.name if r.ok else f"{r.name} FAILED")

    with bar:
        gathered = map_units(comm, symbols, unit,
                             costs=[float((counts or {}).get(s, 1)) for s in symbols],
                             names=symbols, progress=tick, debug=debug)
    if comm.rank != 0:
        return None
    records = {s: r.value for s, r in zip(symbols, gathered) if r.ok}
    failures = [(s, r.error) for s, r in zip(symbols, gathered) if not r.ok]
    ModelStore(job.models).write(records)
    os.makedirs(job.output, exist_ok=True)
    rows = [fold_row(rec) for s in symbols if s in records for rec in records[s]]
    summary = {"models": job.models, "kind": tj.spec.kind, "fold": tj.spec.fold,
               "threshold_rule": tj.spec.threshold, "metric": tj.spec.metric,
               "feature_hash": tj.spec.features.hash, "features": list(tj.spec.features.names),
               "failures": [{"symbol": s, "error": e} for s, e in failures], "folds": rows}
    results.atomic_write(os.path.join(job.output, TRAIN_JSON), results.summary_text(summary))
    results.atomic_write(os.path.join(job.output, "train.csv"), csv_text(rows))
    return TrainOutcome(records, failures, time.perf_counter() - started, comm.size)


def fold_row(rec: FoldRecord) -> dict:
    """One symbol and fold as a flat row of figures."""
    m = rec.metrics
    ch = m.get("challenger") or {}
    held = m.get("champion") or {}
    at = m.get("at_threshold") or {}
    return {"symbol": rec.symbol, "fold": rec.fold, "eval_start": format_time_ms(rec.eval_start),
            "eval_end": format_time_ms(rec.eval_end), "train_rows": m.get("train_rows"),
            "eval_rows": m.get("eval_rows"), "base_rate": ch.get("base_rate"),
            "auc": ch.get("auc"), "log_loss": ch.get("log_loss"),
            "champion_auc": held.get("auc"), "champion_log_loss": held.get("log_loss"),
            "winner": rec.decision.get("winner"), "trades_with": rec.trades_with or None,
            "threshold": rec.threshold, "precision": at.get("precision"),
            "recall": at.get("recall"), "signals": at.get("signals"), "skip": rec.skip or None}


def read_train_summary(out: str | os.PathLike) -> dict:
    """`OUT/train.json` as `run_train` wrote it; DataError naming the file when missing or bad."""
    import json

    from binance_cluster.errors import DataError

    path = os.path.join(out, TRAIN_JSON)
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing (not a training output directory? "
                        "`binance-cluster train JOB` writes it)")
    try:
        with open(path, encoding="utf-8") as fh:
            summary = json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("folds"), list) \
            or not isinstance(summary.get("models"), str):
        raise DataError(f"{path}: no `models` and `folds` (not a train summary)")
    return summary


def csv_text(rows: list[dict]) -> str:
    """The fold rows as CSV (empty cells for none)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow(["" if r[c] is None else (f"{r[c]:.6g}" if isinstance(r[c], float) else r[c])
                    for c in CSV_COLUMNS])
    return buf.getvalue()
