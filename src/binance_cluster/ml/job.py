"""The train job: a backtest job file (store, symbols, time range, risk) plus its [train] section.

The same file serves `train` and `backtest`: the top-level `models` key names the model store
both use, the label's barrier is the job's risk (take_profit, stop_loss, max_hold_bars), and::

    [train]
    kind = "logistic"          # a model kind of binance_cluster.ml.models
    fold = "week"              # month (default), week or day
    train_days = 0             # 0: every row before the fold
    min_train_rows = 2000      # fewer: the fold is skipped (recorded), its next period not traded
    min_eval_rows = 200
    threshold = "tp_fp"        # or "profit" (after 2 x fee_rate per trade)
    metric = "auc"             # champion vs challenger: auc (larger wins) or log_loss (smaller)
    row_step = 1               # fit on every row_step-th row
    pool = false               # true: one model per fold for all the job's symbols
    [train.model]              # parameters of the kind (e.g. l2, class_weight)
    [train.features]           # FeatureSpec: lags, mean_window, returns, rsi, atr, volume_z, hour
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from binance_cluster.backtest.job import Job, Overrides, load_job
from binance_cluster.errors import ConfigError
from binance_cluster.jobfile import (Where, no_unknown, read_field, read_integer, read_string,
                                     read_toml, show_value)
from binance_cluster.ml.champion import METRICS
from binance_cluster.ml.features import FeatureSpec
from binance_cluster.ml.folds import PERIODS
from binance_cluster.ml.labels import LabelSpec
from binance_cluster.ml.models import get_kind
from binance_cluster.ml.thresholds import RULES
from binance_cluster.ml.walkforward import TrainSpec

TRAIN_KEYS = ("kind", "fold", "train_days", "min_train_rows", "min_eval_rows", "threshold",
              "metric", "row_step", "pool", "model", "features")
FEATURE_KEYS = tuple(f.name for f in dataclasses.fields(FeatureSpec))


@dataclass(frozen=True, slots=True)
class TrainJob:
    """A resolved train job: the backtest job it shares and what to train."""

    job: Job
    spec: TrainSpec

    @property
    def models(self) -> str:
        return self.job.models


def load_train_job(path: str, overrides: Overrides | None = None,
                   check_store: bool = True) -> TrainJob:
    """Read and check a train job; ConfigError naming the file and key."""
    job = load_job(path, overrides, check_store=check_store)
    where = Where(str(path))
    raw = read_toml(path)
    if job.models is None:
        raise where.error("models", "missing (the model store file, e.g. \"models/ml.h5\")")
    return TrainJob(job, read_train(raw.get("train", {}), job, where))


def read_train(table: Any, job: Job, where: Where) -> TrainSpec:
    """The [train] section over the job's risk."""
    no_unknown(table, TRAIN_KEYS, "train.", where)
    kind_name = read_string(table.get("kind", "logistic"), "train.kind", where)
    try:
        kind = get_kind(kind_name)
    except ConfigError as exc:
        raise where.error("train.kind", str(exc)) from None
    try:
        params = kind.params(_table(table.get("model", {}), "train.model", where))
    except ConfigError as exc:
        raise where.error("train.model", str(exc)) from None
    features = _features(table.get("features", {}), where)
    risk = job.risk
    missing = [n for n in ("take_profit", "stop_loss", "max_hold_bars") if getattr(risk, n) is None]
    if missing:
        raise where.error(f"risk.{missing[0]}", "the label's barrier needs take_profit, stop_loss "
                                                 "and max_hold_bars (false unsets one)")
    label = LabelSpec(float(risk.take_profit), float(risk.stop_loss), int(risk.max_hold_bars))
    choices = {"fold": PERIODS, "threshold": RULES, "metric": tuple(METRICS)}
    values: dict[str, Any] = {}
    for key, known in choices.items():
        if key in table:
            v = read_string(table[key], f"train.{key}", where)
            if v not in known:
                raise where.error(f"train.{key}", f"unknown value {v!r} (known: {', '.join(known)})")
            values[key] = v
    for key, low in (("train_days", 0), ("min_train_rows", 2), ("min_eval_rows", 2), ("row_step", 1)):
        if key in table:
            values[key] = read_integer(table[key], f"train.{key}", where, low=low)
    if "pool" in table:
        pool_field = next(f for f in dataclasses.fields(TrainSpec) if f.name == "pool")
        values["pool"] = read_field(table["pool"], pool_field, "train.pool", where)
    return TrainSpec(kind=kind_name, params=params, features=features, label=label,
                     fee_rate=float(risk.fee_rate), **values)


def _table(value: Any, key: str, where: Where) -> dict:
    if not isinstance(value, dict):
        raise where.error(key, f"must be a table, not {show_value(value)}")
    return value


def _features(table: Any, where: Where) -> FeatureSpec:
    no_unknown(_table(table, "train.features", where), FEATURE_KEYS, "train.features.", where)
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in table.items()}
    try:
        return FeatureSpec(**values)
    except (ConfigError, TypeError) as exc:
        raise where.error("train.features", str(exc)) from None

