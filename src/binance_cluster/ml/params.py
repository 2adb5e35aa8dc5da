"""Model parameters carried inside a model's arrays (JSON bytes, never pickle)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np

from binance_cluster.errors import DataError


def params_to_array(params: Any) -> np.ndarray:
    """A parameters dataclass as uint8 JSON bytes (sorted keys)."""
    return np.frombuffer(json.dumps(dataclasses.asdict(params), sort_keys=True).encode(),
                         dtype=np.uint8).copy()


def params_from_array(cls: type, arr: np.ndarray) -> Any:
    """The parameters dataclass `cls` from `params_to_array` bytes; DataError when unreadable."""
    try:
        values = json.loads(np.asarray(arr, np.uint8).tobytes().decode())
        return cls(**values)
    except (ValueError, TypeError) as exc:
        raise DataError(f"model parameters of {cls.__name__} unreadable: {exc}") from None


CHECK_ROWS = 65_536        # rows checked at a time (no n x f temporary: a worker's memory)


def check_xy(x: Any, y: Any | None, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """x as float64[n, f] with finite values, y as 0/1 int8[n]; DataError naming the problem."""
    x = np.asarray(x)
    if x.ndim != 2 or x.dtype.kind not in "fiu":
        raise DataError(f"{what}: features must be a 2-D numeric array, got {x.dtype}{list(x.shape)}")
    x = np.ascontiguousarray(x, np.float64)
    finite = (np.isfinite(x).all() if x.shape[0] <= CHECK_ROWS else    # the live loop's row
              all(np.isfinite(x[i:i + CHECK_ROWS]).all() for i in range(0, x.shape[0], CHECK_ROWS)))
    if not finite:
        bad = ~np.isfinite(x)
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{what}: feature row {row} column {col} is {x[row, col]} "
                        f"({int(bad.any(axis=1).sum())} rows with NaN or infinite features)")
    if y is None:
        return x, None
    y = np.asarray(y)
    if y.shape != (x.shape[0],):
        raise DataError(f"{what}: {y.shape[0] if y.ndim == 1 else y.shape} labels for {x.shape[0]} rows")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise DataError(f"{what}: label row {int(np.flatnonzero(np.isnan(y))[0])} is NaN")
    if y.size and not np.isin(y, (0, 1)).all():
        raise DataError(f"{what}: labels must be 0 or 1")
    return x, y.astype(np.int8)


CLASS_WEIGHTS = ("none", "balanced")


def class_weights(y: np.ndarray, mode: str) -> np.ndarray:
    """Per-row weights of the class weighting `mode` ("none" or "balanced")."""
    if mode == "none":
        return np.ones(y.shape[0])
    n = y.shape[0]
    pos = int(y.sum())
    return np.where(y == 1, n / (2.0 * pos), n / (2.0 * (n - pos)))


def training_weights(y: np.ndarray, mode: str, sample_weight: Any, what: str) -> np.ndarray:
    """Row weights of a fit on 0/1 labels y: class weights (`mode`) times sample_weight;
    DataError for a single class, bad weights or a class without weight."""
    n = y.shape[0]
    pos = int(y.sum())
    if n < 2 or pos == 0 or pos == n:
        raise DataError(f"{what}: the labels hold a single class ({n} rows, {pos} positive)")
    s = class_weights(y, mode)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, np.float64)
        if sw.shape != (n,) or not np.isfinite(sw).all() or (sw < 0).any():
            raise DataError(f"{what}: sample_weight must be n finite values >= 0")
        s = s * sw
    for c in (0, 1):
        if not s[y == c].sum() > 0:
            raise DataError(f"{what}: class {c} has zero total weight")
    return s
