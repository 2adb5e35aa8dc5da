"""The model store: one HDF5 file of walk-forward models per training job (never unpickled).

Layout::

    MODELS.h5  attrs: format, format_version
      /SYMBOL/FOLD          one walk-forward fold (FOLD: its evaluation start, YYYY-MM-DDTHHMM)
        attrs: kind, feature_spec (JSON), feature_hash, label (JSON), params (JSON),
               train_start, train_end, eval_start, eval_end, trade_start, trade_end (ms),
               metrics (JSON), threshold (NaN: do not trade), trades_with (the fold whose
               model trades [trade_start, trade_end)), decision (JSON), skip ("" or why)
        model/NAME          the model's arrays (to_arrays), absent for a skipped fold
        diagnostics/NAME    ROC points, calibration bins, threshold curve, importance

Only rank 0 writes, after every symbol is trained: the file is copied beside itself, the
symbols written, and the copy renamed over the original, so a reader sees the old store or
the new one. Loading checks the format version and, when asked, the feature spec hash.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from binance_cluster.errors import DataError, NotAStoreFileError
from binance_cluster.fileio import atomic_file

FORMAT = "binance-cluster-models"
FORMAT_VERSION = 1
_TIMES = ("train_start", "train_end", "eval_start", "eval_end", "trade_start", "trade_end")


@dataclass(frozen=True, slots=True)
class FoldRecord:
    """One symbol's walk-forward fold: the challenger trained before it, its figures, the decision."""

    symbol: str
    fold: str
    kind: str
    feature_spec: str
    feature_hash: str
    label: str
    params: str
    train_start: int
    train_end: int
    eval_start: int
    eval_end: int
    trade_start: int
    trade_end: int
    metrics: dict = field(default_factory=dict)
    threshold: float | None = None
    trades_with: str = ""
    decision: dict = field(default_factory=dict)
    skip: str = ""
    model: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    diagnostics: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


class ModelStore:
    """The models of a training job in one HDF5 file."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # -- reading ---------------------------------------------------------------------------

    def _open(self) -> h5py.File:
        if not self.path.is_file():
            raise DataError(f"{self.path}: model store not found (run `binance-cluster train` first)")
        try:
            f = h5py.File(self.path, "r")
        except OSError:
            raise NotAStoreFileError(f"{self.path}: not an HDF5 model store") from None
        fmt = f.attrs.get("format")
        version = f.attrs.get("format_version")
        if fmt != FORMAT:
            f.close()
            raise NotAStoreFileError(f"{self.path}: not a model store (format {fmt!r})")
        if version != FORMAT_VERSION:
            f.close()
            raise DataError(f"{self.path}: model store format version {version}, this program "
                            f"reads version {FORMAT_VERSION}; retrain with `binance-cluster train`")
        return f

    def symbols(self) -> list[str]:
        """Symbols with models, sorted."""
        with self._open() as f:
            return sorted(f.keys())

    def records(self, symbol: str, with_arrays: bool = False) -> list[FoldRecord]:
        """The folds of `symbol` in time order (arrays loaded when asked)."""
        with self._open() as f:
            if symbol not in f:
                raise DataError(f"{self.path}: no models for {symbol}")
            return [_read_record(symbol, name, f[symbol][name], with_arrays)
                    for name in sorted(f[symbol].keys())]

    def load_model(self, symbol: str, fold: str, feature_hash: str | None = None):
        """The model of `symbol`'s fold; DataError if its feature spec hash is not `feature_hash`."""
        from binance_cluster.ml.models import get_kind

        with self._open() as f:
            try:
                g = f[symbol][fold]
            except KeyError:
                raise DataError(f"{self.path}: no model {symbol}/{fold}") from None
            rec = _read_record(symbol, fold, g, True)
        if rec.skip or not rec.model:
            raise DataError(f"{self.path}: {symbol}/{fold} has no model ({rec.skip or 'empty'})")
        if feature_hash is not None and rec.feature_hash != feature_hash:
            raise DataError(f"{self.path}: {symbol}/{fold} was trained with another feature spec "
                            f"(hash {rec.feature_hash[:12]}, the job's is {feature_hash[:12]})")
        return get_kind(rec.kind).model_cls.from_arrays(rec.model)

    # -- writing (rank 0) --------------------------------------------------------------------

    def write(self, records: dict[str, list[FoldRecord]]) -> None:
        """Replace the folds of every symbol in `records`; other symbols stay as they were."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.path) as tmp:
            if self.path.exists():
                self._open().close()          # refuse to overwrite a file that is not ours
                shutil.copyfile(self.path, tmp)
            with h5py.File(tmp, "a") as f:
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                for symbol, recs in records.items():
                    if symbol in f:
                        del f[symbol]
                    g = f.create_group(symbol)
                    for rec in recs:
                        _write_record(g.create_group(rec.fold), rec)
                f.flush()


def _write_record(g: h5py.Group, rec: FoldRecord) -> None:
    for name in ("kind", "feature_spec", "feature_hash", "label", "params", "trades_with", "skip"):
        g.attrs[name] = getattr(rec, name)
    for name in _TIMES:
        g.attrs[name] = np.int64(getattr(rec, name))
    g.attrs["metrics"] = json.dumps(rec.metrics, sort_keys=True)
    g.attrs["decision"] = json.dumps(rec.decision, sort_keys=True)
    g.attrs["threshold"] = np.nan if rec.threshold is None else float(rec.threshold)
    for sub, arrays in (("model", rec.model), ("diagnostics", rec.diagnostics)):
        if arrays:
            h = g.create_group(sub)
            for key, arr in arrays.items():
                arr = np.asarray(arr)
                if arr.dtype == object or arr.dtype.kind in "OUS":
                    raise TypeError(f"model array {key} has dtype {arr.dtype}; numbers only")
                h.create_dataset(key, data=arr)


def _read_record(symbol: str, fold: str, g: h5py.Group, with_arrays: bool) -> FoldRecord:
    a = g.attrs
    try:
        threshold = float(a["threshold"])
        values: dict[str, Any] = {name: str(a[name]) for name in
                                  ("kind", "feature_spec", "feature_hash", "label", "params",
                                   "trades_with", "skip")}
        values.update({name: int(a[name]) for name in _TIMES})
        values["metrics"] = json.loads(a["metrics"])
        values["decision"] = json.loads(a["decision"])
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(f"model {symbol}/{fold}: unreadable record ({exc})") from None
    arrays = {}
    if with_arrays:
        for sub in ("model", "diagnostics"):
            arrays[sub] = {k: g[sub][k][()] for k in g[sub]} if sub in g else {}
    return FoldRecord(symbol=symbol, fold=fold, threshold=None if math.isnan(threshold) else threshold,
                      model=arrays.get("model", {}), diagnostics=arrays.get("diagnostics", {}),
                      **values)
