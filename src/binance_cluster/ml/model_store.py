"""The model store: one HDF5 file of walk-forward models per training job (never unpickled).

Layout::

    MODELS.h5  attrs: format, format_version
      /SYMBOL/FOLD          one walk-forward fold (FOLD: its evaluation start, YYYY-MM-DDTHHMM)
        attrs: kind, feature_spec (JSON), feature_hash, label (JSON), params (JSON),
               train_start, train_end, eval_start, eval_end, trade_start, trade_end (ms),
               metrics (JSON), threshold (NaN: do not trade), trades_with (the fold whose
               model trades [trade_start, trade_end), or "champion"), decision (JSON),
               skip ("" or why), pool ("" or the pool whose one model every symbol shares)
        model/NAME          the model's arrays (to_arrays), absent for a skipped fold
        diagnostics/NAME    ROC points, calibration bins, threshold curve, importance
        champion/           when trades_with is "champion": the stored champion that trades
                            (a hard link to the champions/ entry written with this fold)
      /champions/NAME       the champion kept across train runs of a symbol or pool (NAME):
                            a fold record (its model's fold, training window and arrays; the
                            window it was last judged on, threshold, figures, decision) and
                            attrs history (JSON list of every run's decision)

A model shared by several records (a pool's) is written once and hard-linked from the others.

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
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)          # version 1: no champions, no pools
CHAMPION = "champion"               # trades_with of a fold traded by the stored champion
CHAMPIONS = "champions"             # the group of champions kept across runs
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
    pool: str = ""
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
        if version not in READABLE_VERSIONS:
            f.close()
            raise DataError(f"{self.path}: model store format version {version}, this program "
                            f"reads version {FORMAT_VERSION}; retrain with `binance-cluster train`")
        return f

    def symbols(self) -> list[str]:
        """Symbols with models, sorted."""
        with self._open() as f:
            return sorted(k for k in f.keys() if k != CHAMPIONS)

    def kinds(self) -> tuple[str, ...]:
        """The model kinds of the stored folds, sorted (() when there is no store yet)."""
        if not self.path.exists():
            return ()
        found: set[str] = set()
        with self._open() as f:
            f.visititems(lambda name, obj: found.add(str(obj.attrs["kind"]))
                         if isinstance(obj, h5py.Group) and "kind" in obj.attrs else None)
        return tuple(sorted(found))

    def champion(self, name: str) -> FoldRecord | None:
        """The champion kept for the symbol or pool `name` (arrays loaded), None when there is
        none (or no store yet)."""
        if not self.path.exists():
            return None
        with self._open() as f:
            if CHAMPIONS not in f or name not in f[CHAMPIONS]:
                return None
            g = f[CHAMPIONS][name]
            return _read_record(str(g.attrs.get("symbol", name)), str(g.attrs["fold"]), g, True)

    def champion_history(self, name: str) -> list[dict]:
        """Every run's decision on the champion of `name`, oldest first ([] when none)."""
        if not self.path.exists():
            return []
        with self._open() as f:
            if CHAMPIONS not in f or name not in f[CHAMPIONS]:
                return []
            return json.loads(f[CHAMPIONS][name].attrs["history"])

    def fold_champion(self, symbol: str, fold: str) -> FoldRecord:
        """The stored champion that trades `symbol`'s fold (trades_with "champion")."""
        with self._open() as f:
            try:
                g = f[symbol][fold][CHAMPION]
            except KeyError:
                raise DataError(f"{self.path}: {symbol}/{fold} trades with the champion, "
                                f"which is not stored with it") from None
            return _read_record(symbol, str(g.attrs["fold"]), g, True)

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

    def write(self, records: dict[str, list[FoldRecord]],
              champions: dict[str, tuple[FoldRecord, list[dict]]] | None = None) -> None:
        """Replace the folds of every symbol in `records` and the champions (name -> record,
        history) in `champions`; other symbols and champions stay as they were. All or nothing."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.path) as tmp:
            if self.path.exists():
                self._open().close()          # refuse to overwrite a file that is not ours
                shutil.copyfile(self.path, tmp)
            with h5py.File(tmp, "a") as f:
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                shared: dict[int, h5py.Group] = {}
                kept = f.require_group(CHAMPIONS)
                for name, (rec, history) in (champions or {}).items():
                    if name in kept:
                        del kept[name]
                    g = kept.create_group(name)
                    _write_record(g, rec, {})
                    g.attrs["symbol"] = rec.symbol
                    g.attrs["fold"] = rec.fold
                    g.attrs["history"] = json.dumps(history, sort_keys=True)
                for symbol, recs in records.items():
                    if symbol in f:
                        del f[symbol]
                    g = f.create_group(symbol)
                    for rec in recs:
                        h = g.create_group(rec.fold)
                        _write_record(h, rec, shared)
                        if rec.trades_with == CHAMPION:
                            name = rec.pool or rec.symbol
                            if name not in kept:
                                raise DataError(f"{self.path}: {symbol}/{rec.fold} trades with "
                                                f"the champion of {name}, which is not stored")
                            h[CHAMPION] = kept[name]
                f.flush()


def _write_record(g: h5py.Group, rec: FoldRecord, shared: dict[int, h5py.Group]) -> None:
    """Write `rec` into `g`; arrays dicts already written (by identity, in `shared`) are linked."""
    for name in ("kind", "feature_spec", "feature_hash", "label", "params", "trades_with", "skip",
                 "pool"):
        g.attrs[name] = getattr(rec, name)
    for name in _TIMES:
        g.attrs[name] = np.int64(getattr(rec, name))
    g.attrs["metrics"] = json.dumps(rec.metrics, sort_keys=True)
    g.attrs["decision"] = json.dumps(rec.decision, sort_keys=True)
    g.attrs["threshold"] = np.nan if rec.threshold is None else float(rec.threshold)
    for sub, arrays in (("model", rec.model), ("diagnostics", rec.diagnostics)):
        if arrays and id(arrays) in shared:
            g[sub] = shared[id(arrays)]
        elif arrays:
            h = g.create_group(sub)
            shared[id(arrays)] = h
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
        values["pool"] = str(a.get("pool", ""))
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
