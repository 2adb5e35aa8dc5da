"""The files a train run writes to its output directory, and their reader: `train.json` (the
summary: models file, feature spec, failures and one row per symbol and fold) and `train.csv`
(the same rows as CSV). Light to import: the report reads them without the training code."""

from __future__ import annotations

import csv
import io
import json
import os

from binance_cluster.backtest.results import summary_text
from binance_cluster.errors import DataError
from binance_cluster.fileio import atomic_write

TRAIN_JSON = "train.json"
TRAIN_CSV = "train.csv"
CSV_COLUMNS = ("symbol", "fold", "eval_start", "eval_end", "train_rows", "eval_rows", "base_rate",
               "auc", "log_loss", "champion_auc", "champion_log_loss", "winner", "trades_with",
               "threshold", "precision", "recall", "signals", "skip", "pool", "stored_auc",
               "stored_log_loss", "stored_winner")


def write_train_summary(out: str | os.PathLike, summary: dict) -> None:
    """OUT/train.json and OUT/train.csv (from `summary["folds"]`), each replaced atomically."""
    os.makedirs(out, exist_ok=True)
    atomic_write(os.path.join(out, TRAIN_JSON), summary_text(summary))
    atomic_write(os.path.join(out, TRAIN_CSV), csv_text(summary["folds"]))


def read_train_summary(out: str | os.PathLike) -> dict:
    """`OUT/train.json` as `run_train` wrote it; DataError naming the file when missing or bad."""
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
