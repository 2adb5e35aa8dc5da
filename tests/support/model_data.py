"""Model training data from real candles: the project's features and barrier labels, split in time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from binance_cluster.ml.features import FeatureSpec, compute_features
from binance_cluster.ml.labels import UNKNOWN, LabelSpec, barrier_labels, purged_stop
from support.real_data import load_real

# A dozen causal columns: close ratios, returns, ATR-normalised range, volume z-score.
SMALL_FEATURES = FeatureSpec(lags=(0, 1, 5, 15, 60, 240), mean_window=240,
                             returns=(1, 5, 15, 60, 240), atr=14, volume_z=60)


def time_split(shared_data: Path, symbols: tuple[str, ...], spec: FeatureSpec = SMALL_FEATURES,
               labels: LabelSpec = LabelSpec(), train_fraction: float = 0.7
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test) pooled over symbols: per symbol the first
    train_fraction of the labelled bars train, the rest test; the training rows whose label
    window reaches the test bars are purged."""
    parts: list[list[np.ndarray]] = [[], [], [], []]
    for symbol in symbols:
        c = load_real(symbol, str(shared_data))
        X = compute_features(c, spec)
        y, _ = barrier_labels(c, labels)
        keep = np.isfinite(X).all(axis=1) & (y != UNKNOWN)   # warm-up and the last bars
        X, y = X[keep], y[keep]
        cut = int(train_fraction * X.shape[0])
        stop = purged_stop(cut, labels.horizon)
        for part, values in zip(parts, (X[:stop], y[:stop], X[cut:], y[cut:])):
            part.append(values)
    X_train, y_train, X_test, y_test = (np.concatenate(p) for p in parts)
    return X_train, y_train, X_test, y_test


# A train + backtest job of ml_barrier over daily folds (a few days of real candles).
_ML_JOB = """
store = "{store}"
symbols = {symbols}
{top}
mode = "portfolio"
output = "{out}"
models = "{models}"
[strategy]
name = "ml_barrier"
[risk]
take_profit = 0.003
stop_loss = 0.003
max_hold_bars = 30
max_positions = 1
{risk}
[train]
fold = "day"
min_train_rows = 1000
min_eval_rows = 200
{train}
"""


def ml_job_text(store, symbols: tuple[str, ...], out, models, top: str = "", risk: str = "",
                train: str = "") -> str:
    """The text of an ml_barrier job: `top` lines before `mode`, `risk` lines in [risk],
    `train` lines (and sub-tables) in [train]."""
    return _ML_JOB.format(store=store, symbols=json.dumps(list(symbols)), top=top, out=out,
                          models=models, risk=risk, train=train)
