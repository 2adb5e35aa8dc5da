"""Out-of-sample figures of a model on an evaluation window: AUC, log-loss, diagnostics."""

from __future__ import annotations

import numpy as np

CALIBRATION_BINS = 10
EPS = 1e-15


def auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); NaN with a single class."""
    y = np.asarray(y)
    pos = int((y == 1).sum())
    neg = y.size - pos
    if pos == 0 or neg == 0:
        return float("nan")
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(p.size)
    sorted_p = p[order]
    # average ranks of tied probabilities
    edges = np.flatnonzero(np.diff(sorted_p)) + 1
    starts = np.concatenate(([0], edges))
    stops = np.concatenate((edges, [p.size]))
    for a, b in zip(starts, stops):
        ranks[order[a:b]] = (a + b + 1) / 2.0
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2.0) / (pos * neg))


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean binary log-loss, probabilities clipped to [1e-15, 1 - 1e-15]."""
    q = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(np.where(y == 1, np.log(q), np.log1p(-q)))) if y.size else float("nan")


def roc_points(p: np.ndarray, y: np.ndarray, points: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) at `points` thresholds from 1 down to 0."""
    pos = max(int((y == 1).sum()), 1)
    neg = max(int((y == 0).sum()), 1)
    cuts = np.linspace(1.0, 0.0, points)
    fpr = np.array([((p >= c) & (y == 0)).sum() / neg for c in cuts])
    tpr = np.array([((p >= c) & (y == 1)).sum() / pos for c in cuts])
    return fpr, tpr


def calibration(p: np.ndarray, y: np.ndarray, bins: int = CALIBRATION_BINS):
    """(mean predicted, observed rate, rows) in equal-width probability bins (NaN when empty)."""
    idx = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(idx, minlength=bins).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=bins) / count
        rate = np.bincount(idx, weights=(y == 1).astype(float), minlength=bins) / count
    return mean_p, rate, count


def at_threshold(p: np.ndarray, y: np.ndarray, threshold: float | None) -> dict:
    """Precision, recall, true and false positives of 'trade when p >= threshold'."""
    if threshold is None or not np.isfinite(threshold):
        return {"precision": None, "recall": None, "tp": 0, "fp": 0, "signals": 0}
    hit = p >= threshold
    tp = int((hit & (y == 1)).sum())
    fp = int((hit & (y == 0)).sum())
    pos = int((y == 1).sum())
    return {"precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / pos if pos else None, "tp": tp, "fp": fp, "signals": tp + fp}
