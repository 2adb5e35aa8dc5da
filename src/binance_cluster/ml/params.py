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


def check_xy(x: Any, y: Any | None, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """x as float64[n, f] with finite values, y as 0/1 int8[n]; DataError naming the problem."""
    x = np.asarray(x)
    if x.ndim != 2 or x.dtype.kind not in "fiu":
        raise DataError(f"{what}: features must be a 2-D numeric array, got {x.dtype}{list(x.shape)}")
    x = np.ascontiguousarray(x, np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{what}: feature row {row} column {col} is {x[row, col]} "
                        f"({int(bad.any(axis=1).sum())} rows with NaN or infinite features)")
    if y is None:
        return x, None
    y = np.asarray(y)
    if y.shape != (x.shape[0],):
        raise DataError(f"{what}: {y.shape[0] if y.ndim == 1 else y.shape} labels for {x.shape[0]} rows")
    if y.size and not np.isin(y, (0, 1)).all():
        raise DataError(f"{what}: labels must be 0 or 1")
    return x, y.astype(np.int8)
