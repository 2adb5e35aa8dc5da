"""HDF5 candle store: one file per symbol, one group per interval; the only h5py user for candles.

Layout of `STORE/SYMBOL.h5`:

- file attributes `format`, `format_version`, `symbol` and free-form metadata such as
  `synthetic` or `source`;
- one group per interval (`/1m`, `/1h`, ...) with attributes `interval` and `interval_ms`;
- in each group one 1-D dataset per column: `open_time` (int64 ms UTC), `open`, `high`, `low`,
  `close`, `volume` (float64) and optionally `quote_volume`, `trades` (int64), `taker_buy_base`,
  `taker_buy_quote`.

Datasets are chunked, uncompressed and allocated in full when created, with room beyond the
stored rows. Unused rows hold the fill value: `open_time` is INT64_MAX there, so the stored rows
are exactly those before the first fill value and `open_time` stays sorted over the whole
capacity. Uncompressed was chosen by measurement (page-cache reads: about 4.8 GB/s against
3 GB/s for Blosc-lz4 and 0.4 GB/s for gzip or lzf; see bench/bench_store.py) and because it makes
appends crash-safe:

- an append into the preallocated room writes raw data only, never HDF5 metadata: first the
  value columns, a flush, then `open_time`, a flush. A row exists once its open time is
  written, so a process killed at any moment leaves a readable file holding every candle
  committed before and no half-written row;
- when the room runs out, the whole file is written anew beside the old one and renamed over
  it (`os.replace` is atomic), with room for a quarter more rows.

One writer per file (a lock file under `STORE/.locks/` enforces it); readers never lock, so
they can read while a writer appends.
"""

from __future__ import annotations

import fcntl
import os
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from binance_cluster.errors import (DataError, InputError, NotAStoreFileError, StoreError,
                                    UnknownSymbolError)
from binance_cluster.types import (COLUMN_DTYPES, COLUMNS, EXTRA_COLUMNS, Candles,
                                   interval_ms, interval_origin_ms)

FORMAT = "binance-cluster-candles"
FORMAT_VERSION = 1
CHUNK_ROWS = 8192
FILL_TIME = np.iinfo(np.int64).max
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,30}$")
_FILL = {"open_time": FILL_TIME, "trades": -1}
# A writer kept open (the live loop holds one per symbol) writes a few rows at a time into
# preallocated room: no chunk cache. HDF5's default (1 MiB a dataset) kept every column's
# touched chunk, ~1.3 MB a file, and flushed whole 64 KiB chunks on every append (measured
# with 100 open writers: 2.1 -> 0.84 MB a file, an append 8.3 -> 3.0 ms; the rest of the
# 0.84 MB is HDF5's fixed per-file metadata cache).
WRITER_CHUNK_CACHE = 0


def check_symbol(symbol: str) -> str:
    """Return `symbol` if it is a valid Binance symbol name (upper-case letters and digits)."""
    if not isinstance(symbol, str) or not SYMBOL_RE.match(symbol):
        raise InputError(f"invalid symbol name {symbol!r}: use upper-case letters and digits, "
                         "as Binance spells it (e.g. BTCUSDT)")
    return symbol


class CandleValidationError(DataError):
    """A candle row that breaks a store rule; `row` is its index in the rows given."""

    def __init__(self, row: int, problem: str):
        super().__init__(f"row {row}: {problem}")
        self.row = row
        self.problem = problem


def validate_candles(candles: Candles, interval: str) -> None:
    """Raise CandleValidationError for the first row breaking a rule of the store.

    Rules: open times strictly increasing and on the interval's grid; finite values; prices
    above zero; low <= min(open, close); high >= max(open, close); volume >= 0; optional extras
    finite or NaN and not negative.
    """
    n = len(candles)
    if n == 0:
        return
    step = interval_ms(interval)
    origin = interval_origin_ms(interval)
    for name in COLUMNS:
        if getattr(candles, name).shape != (n,):
            raise DataError(f"column {name} has {getattr(candles, name).shape} values, "
                            f"expected {n}")
    t = candles.open_time
    bad = np.flatnonzero((t - origin) % step != 0)
    if bad.size:
        i = int(bad[0])
        raise CandleValidationError(i, f"open_time {int(t[i])} is not on the {interval} grid")
    if n > 1:
        d = np.diff(t)
        bad = np.flatnonzero(d <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            what = "duplicate" if d[i - 1] == 0 else "out of order"
            raise CandleValidationError(
                i, f"open_time {int(t[i])} is {what} (previous row {int(t[i - 1])}); "
                   "times must be strictly increasing")
    o, h, lo, c, v = candles.open, candles.high, candles.low, candles.close, candles.volume
    checks = []
    for name, col in (("open", o), ("high", h), ("low", lo), ("close", c), ("volume", v)):
        checks.append((~np.isfinite(col), lambda i, name=name, col=col:
                       f"{name} is not a finite number ({_num(col[i])})"))
    for name, col in (("open", o), ("high", h), ("low", lo), ("close", c)):
        checks.append((col <= 0, lambda i, name=name, col=col:
                       f"{name} {_num(col[i])} is not above zero"))
    checks.append((v < 0, lambda i: f"volume {_num(v[i])} is negative"))
    checks.append((h < lo, lambda i: f"high {_num(h[i])} is below low {_num(lo[i])}"))
    checks.append((lo > np.minimum(o, c), lambda i:
                   f"low {_num(lo[i])} is above min(open, close) {_num(min(o[i], c[i]))}"))
    checks.append((h < np.maximum(o, c), lambda i:
                   f"high {_num(h[i])} is below max(open, close) {_num(max(o[i], c[i]))}"))
    for name, col in candles.extras.items():
        if name == "trades":
            checks.append((col < -1, lambda i, col=col: f"trades {col[i]} is negative"))
        else:
            checks.append((np.isinf(col) | (col < 0), lambda i, name=name, col=col:
                           f"{name} {_num(col[i])} is negative or infinite"))
    first_bad = n
    message = None
    for mask, describe in checks:
        hits = np.flatnonzero(mask)
        if hits.size and hits[0] < first_bad:
            first_bad = int(hits[0])
            message = describe(first_bad)
    if message is not None:
        raise CandleValidationError(first_bad, message)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append did: rows written and rows that were already stored identically."""

    added: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """Summary of one symbol and interval in the store."""

    symbol: str
    interval: str
    rows: int
    first: int | None
    last: int | None
    gaps: int
    largest_gap_ms: int
    file_bytes: int
    synthetic: bool


def _open_read(path: Path) -> h5py.File:
    """Open a store file for reading, turning every kind of unreadable file into one error."""
    try:
        f = h5py.File(path, "r", locking=False)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise NotAStoreFileError(f"{path}: not an HDF5 candle store file ({_short(exc)})") from None
    if f.attrs.get("format") != FORMAT:
        f.close()
        raise NotAStoreFileError(f"{path}: HDF5 file is not a binance-cluster candle store file "
                                 f"(attribute format != {FORMAT!r})")
    return f


def _num(value) -> str:
    """A number as a user would write it (no numpy type names)."""
    return repr(value.item() if hasattr(value, "item") else value)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


class _TimeIndex:
    """Finds rows by open time reading two small pieces of the column, not element by element:
    the first open time of every chunk, then the one chunk that holds the answer."""

    def __init__(self, times: h5py.Dataset):
        self.times = times
        self.coarse = times[0:times.shape[0]:CHUNK_ROWS]
        self.rows = self.search(FILL_TIME)

    def search(self, value: int, limit: int | None = None) -> int:
        """First row index (at most `limit`) whose open time is >= value."""
        limit = self.times.shape[0] if limit is None else limit
        k = int(np.searchsorted(self.coarse, value, side="left"))
        if k == 0:
            return 0
        lo = (k - 1) * CHUNK_ROWS
        hi = min(k * CHUNK_ROWS, self.times.shape[0])
        block = self.times[lo:hi]
        return min(lo + int(np.searchsorted(block, value, side="left")), limit)


def _stored_rows(times: h5py.Dataset) -> int:
    """Number of stored rows: index of the first fill value in the sorted open_time column."""
    return _TimeIndex(times).rows


def _bisect_left(times: h5py.Dataset, n: int, value: int) -> int:
    """First index in 0..n whose open time is >= value."""
    return _TimeIndex(times).search(value, n)


def _capacity_for(rows: int) -> int:
    """Rows to allocate for `rows` stored rows: a quarter more, whole chunks, at least one chunk."""
    want = rows + max(rows // 4, CHUNK_ROWS // 2)
    return -(-want // CHUNK_ROWS) * CHUNK_ROWS


class CandleStore:
    """A directory of per-symbol HDF5 candle files."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    # -- paths and listing -------------------------------------------------------------
    def path(self, symbol: str) -> Path:
        """File holding `symbol`."""
        return self.root / f"{check_symbol(symbol)}.h5"

    def symbols(self) -> list[str]:
        """Symbols with a file in the store, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.h5") if SYMBOL_RE.match(p.stem))

    def has(self, symbol: str, interval: str | None = None) -> bool:
        """Whether the store holds `symbol` (and the interval, when given)."""
        path = self.path(symbol)
        if not path.exists():
            return False
        if interval is None:
            return True
        with _open_read(path) as f:
            return interval in f

    def intervals(self, symbol: str) -> list[str]:
        """Intervals stored for `symbol`, shortest first."""
        with self._reader(symbol) as f:
            return sorted(f.keys(), key=lambda name: f[name].attrs["interval_ms"])

    def attrs(self, symbol: str) -> dict:
        """File-level metadata of `symbol` (format, symbol, synthetic, source, ...)."""
        with self._reader(symbol) as f:
            return {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}

    def _reader(self, symbol: str) -> h5py.File:
        path = self.path(symbol)
        try:
            return _open_read(path)
        except FileNotFoundError:
            raise UnknownSymbolError(f"symbol {symbol} is not in the store {self.root}") from None

    # -- reading -----------------------------------------------------------------------
    def count(self, symbol: str, interval: str) -> int:
        """Number of stored candles."""
        with self._reader(symbol) as f:
            return _stored_rows(self._group(f, symbol, interval)["open_time"])

    def span(self, symbol: str, interval: str) -> tuple[int, int] | None:
        """Open times of the first and last stored candle, or None when there is none."""
        with self._reader(symbol) as f:
            times = self._group(f, symbol, interval)["open_time"]
            n = _stored_rows(times)
            return (int(times[0]), int(times[n - 1])) if n else None

    def read(self, symbol: str, interval: str, start: int | None = None, end: int | None = None,
             columns: tuple[str, ...] | None = None) -> Candles:
        """Candles with `start <= open_time < end` (ms; None for open ends).

        Only the rows asked for are read: the range is found by bisection on the file.
        `columns` limits the extras read (core columns are always read); default: all stored.
        """
        with self._reader(symbol) as f:
            group = self._group(f, symbol, interval)
            index = _TimeIndex(group["open_time"])
            n = index.rows
            i0 = 0 if start is None else index.search(int(start), n)
            i1 = n if end is None else index.search(int(end), n)
            i1 = max(i0, i1)
            names = [c for c in group.keys() if c in COLUMN_DTYPES]
            if columns is not None:
                names = [c for c in names if c in COLUMNS or c in columns]
            out = {}
            for name in names:
                out[name] = group[name][i0:i1]  # h5py's fast path for a simple slice
            return Candles.from_columns(out)

    def gaps(self, symbol: str, interval: str) -> np.ndarray:
        """Missing stretches as rows (open time of the candle before, open time after)."""
        with self._reader(symbol) as f:
            times = self._group(f, symbol, interval)["open_time"]
            t = times[:_stored_rows(times)]
        step = interval_ms(interval)
        idx = np.flatnonzero(np.diff(t) > step)
        return np.stack([t[idx], t[idx + 1]], axis=1) if idx.size else np.empty((0, 2), np.int64)

    def describe(self, symbol: str) -> list[SeriesInfo]:
        """SeriesInfo for every interval of `symbol`."""
        out = []
        size = self.path(symbol).stat().st_size
        with self._reader(symbol) as f:
            synthetic = bool(f.attrs.get("synthetic", False))
            for interval in sorted(f.keys(), key=lambda k: f[k].attrs["interval_ms"]):
                times = f[interval]["open_time"]
                t = times[:_stored_rows(times)]
                step = interval_ms(interval)
                d = np.diff(t)
                over = d[d > step]
                out.append(SeriesInfo(symbol, interval, int(t.size),
                                      int(t[0]) if t.size else None,
                                      int(t[-1]) if t.size else None,
                                      int(over.size), int(over.max() - step) if over.size else 0,
                                      size, synthetic))
        return out

    @staticmethod
    def _group(f: h5py.File, symbol: str, interval: str) -> h5py.Group:
        interval_ms(interval)
        if interval not in f:
            raise UnknownSymbolError(f"{f.filename}: symbol {symbol} has no {interval} candles "
                                     f"(stored: {', '.join(f.keys()) or 'none'})")
        return f[interval]

    # -- writing -----------------------------------------------------------------------
    def writer(self, symbol: str) -> "StoreWriter":
        """An exclusive writer for `symbol`'s file (a context manager)."""
        return StoreWriter(self, symbol)

    def append(self, symbol: str, interval: str, candles: Candles, **attrs) -> AppendResult:
        """Append candles to `symbol`/`interval` (see StoreWriter.append)."""
        with self.writer(symbol) as w:
            return w.append(interval, candles, **attrs)


class StoreWriter:
    """The one writer of a symbol's file; keeps it open between appends for low latency."""

    def __init__(self, store: CandleStore, symbol: str):
        self.store = store
        self.symbol = check_symbol(symbol)
        self.path = store.path(symbol)
        self._lock_fd: int | None = None
        self._file: h5py.File | None = None
        self._rows: dict[str, int] = {}
        self._datasets: dict[str, dict] = {}
        self._reserved: dict[str, int] = {}
        self._resume: tuple[bool, dict[str, int]] | None = None   # set by close_file

    def __enter__(self) -> "StoreWriter":
        self.store.root.mkdir(parents=True, exist_ok=True)
        lock_dir = self.store.root / ".locks"
        lock_dir.mkdir(exist_ok=True)
        fd = os.open(lock_dir / f"{self.symbol}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"{self.path}: another process is writing this file") from None
        self._lock_fd = fd
        if self.path.exists():
            _open_read(self.path).close()  # refuse a foreign file before touching it
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the file and release the lock."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def close_file(self) -> None:
        """Close the HDF5 file but keep the lock: the next append opens it again (an open file
        holds ~0.8 MB of HDF5 caches; a writer of many symbols that appends once a bar keeps
        them closed). Held under the lock, the file cannot change meanwhile: the next open
        keeps the mode and the row counts it had."""
        if self._file is not None:
            self._resume = (self._file.mode == "r+", dict(self._rows))
            self._file.close()
            self._file = None

    def _open(self, writable: bool = False) -> h5py.File | None:
        """The file, opened read-only until a write needs it (a no-op append leaves it untouched)."""
        if self._file is not None and writable and self._file.mode != "r+":
            self._file.close()
            self._file = None
        if self._file is None and self.path.exists():
            resume, self._resume = self._resume, None
            writable = writable or (resume is not None and resume[0])
            self._file = h5py.File(self.path, "r+" if writable else "r", locking=False,
                                   rdcc_nbytes=WRITER_CHUNK_CACHE)
            self._rows = dict(resume[1]) if resume is not None else {}
            self._datasets = {}
        return self._file

    def reserve(self, interval: str, rows: int) -> None:
        """Expect about `rows` more candles of `interval`: the next file rewrite makes room for
        them all at once instead of growing a quarter at a time (fetch knows its row count)."""
        f = self._open()
        stored = 0
        if f is not None and interval in f:
            stored = self._rows.get(interval) or _stored_rows(f[interval]["open_time"])
        self._reserved[interval] = stored + max(int(rows), 0)

    def append(self, interval: str, candles: Candles, **attrs) -> AppendResult:
        """Append candles in time order; rows already stored identically are skipped.

        A row at or before the last stored candle must equal the stored row (an identical
        re-append is a no-op); anything else there is a DataError and nothing is written.
        `attrs` (e.g. synthetic=True) are stored on the file when it is created or rewritten.
        """
        if self._lock_fd is None:
            raise StoreError("StoreWriter used outside its `with` block")
        validate_candles(candles, interval)
        f = self._open()
        if f is None or interval not in f:
            if len(candles) == 0:
                return AppendResult(0, 0)
            self._rewrite(interval, candles, attrs)
            return AppendResult(len(candles), 0)
        group = f[interval]
        times = group["open_time"]
        n = self._rows.get(interval)
        if n is None:
            n = self._rows[interval] = _stored_rows(times)
        new_from = self._check_overlap(group, n, candles, interval)
        fresh = candles.slice(new_from, len(candles))
        added = len(fresh)
        if added == 0:
            return AppendResult(0, new_from)
        if n + added > times.shape[0] or attrs:
            self._rewrite(interval, fresh, attrs)
            return AppendResult(added, new_from)
        group = self._open(writable=True)[interval]
        self._write_rows(group, n, fresh)
        self._rows[interval] = n + added
        return AppendResult(added, new_from)

    def _check_overlap(self, group: h5py.Group, n: int, candles: Candles, interval: str) -> int:
        """Index of the first new row; raises when an overlapping row differs from the store."""
        if n == 0 or len(candles) == 0:
            return 0
        times = group["open_time"]
        last = int(times[n - 1])
        k = int(np.searchsorted(candles.open_time, last, side="right"))
        if k == 0:
            return 0
        first = int(candles.open_time[0])
        i0 = _bisect_left(times, n, first)
        stored_t = times[i0:n]
        pos = np.searchsorted(stored_t, candles.open_time[:k])
        pos = np.minimum(pos, stored_t.size - 1)
        missing = np.flatnonzero(stored_t[pos] != candles.open_time[:k])
        if missing.size:
            t = int(candles.open_time[missing[0]])
            raise CandleValidationError(
                int(missing[0]), f"open_time {t} falls before the last stored {interval} candle "
                f"({last}) of {self.symbol} where the store has no candle; appends must be in time order")
        for name, col in candles.columns().items():
            if name == "open_time" or name not in group:
                continue
            stored = group[name][i0:n][pos]
            given = col[:k]
            same = (stored == given) | (np.isnan(stored) & np.isnan(given)) \
                if stored.dtype.kind == "f" else stored == given
            diff = np.flatnonzero(~same)
            if diff.size:
                i = int(diff[0])
                raise CandleValidationError(
                    i, f"open_time {int(candles.open_time[i])} is already stored for {self.symbol} "
                       f"{interval} with {name}={_num(stored[i])}, not {_num(given[i])} (conflicting duplicate)")
        return k

    def _write_rows(self, group: h5py.Group, n: int, fresh: Candles) -> None:
        """Write rows n.. into the preallocated room: values, flush, open times, flush."""
        datasets = self._datasets.get(group.name)
        if datasets is None:
            datasets = self._datasets[group.name] = {
                name: group[name].id for name in group.keys() if name in COLUMN_DTYPES}
        columns = conform_columns(list(datasets), fresh)
        memory = h5py.h5s.create_simple((len(fresh),))

        def write(name: str) -> None:
            space = datasets[name].get_space()
            space.select_hyperslab((n,), (len(fresh),))
            datasets[name].write(memory, space, columns[name])

        for name in columns:
            if name != "open_time":
                write(name)
        self._file.flush()
        write("open_time")
        self._file.flush()

    def _rewrite(self, interval: str, fresh: Candles, attrs: dict) -> None:
        """Write the whole file anew with `fresh` appended to `interval`, then rename it in place."""
        old = self._file
        tmp = self.path.with_name(self.path.name + ".tmp")
        with h5py.File(tmp, "w", locking=False) as out:
            file_attrs = dict(old.attrs) if old is not None else {}
            file_attrs.update(attrs)
            file_attrs.update(format=FORMAT, format_version=FORMAT_VERSION, symbol=self.symbol)
            for key, value in file_attrs.items():
                out.attrs[key] = value
            names = set(old.keys()) if old is not None else set()
            for name in sorted(names | {interval}):
                src = old[name] if name in names else None
                kept = {}
                if src is not None:
                    n = _stored_rows(src["open_time"])
                    kept = {c: src[c][:n] for c in src.keys() if c in COLUMN_DTYPES}
                if name == interval:
                    if src is None:
                        kept = {c: v[:0] for c, v in fresh.columns().items()}
                    add = conform_columns(list(kept), fresh)
                    kept = {c: np.concatenate([kept[c], add[c]]) for c in kept}
                _write_group(out, name, kept, self._reserved.get(name, 0))
            out.flush()
            os.fsync(out.id.get_vfd_handle())
        if old is not None:
            old.close()
            self._file = None
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._rows = {}


def conform_columns(names: list[str], fresh: Candles) -> dict[str, np.ndarray]:
    """`fresh` with exactly the columns `names`: unknown extras filled (NaN, trades -1)."""
    given = fresh.columns()
    n = len(fresh)
    out = {}
    for name in names:
        if name in given:
            out[name] = np.ascontiguousarray(given[name], dtype=COLUMN_DTYPES[name])
        else:
            out[name] = np.full(n, _FILL.get(name, np.nan), dtype=COLUMN_DTYPES[name])
    return out


def _write_group(out: h5py.File, interval: str, columns: dict[str, np.ndarray],
                 reserved: int = 0) -> None:
    """Create an interval group with preallocated, chunked, uncompressed column datasets."""
    rows = columns["open_time"].size
    capacity = _capacity_for(max(rows, reserved))
    group = out.create_group(interval)
    group.attrs["interval"] = interval
    group.attrs["interval_ms"] = interval_ms(interval)
    order = [c for c in COLUMNS + EXTRA_COLUMNS if c in columns]
    for name in order:
        dtype = COLUMN_DTYPES[name]
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((CHUNK_ROWS,))
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
        dcpl.set_fill_value(np.array(_FILL.get(name, np.nan), dtype=dtype))
        space = h5py.h5s.create_simple((capacity,), (capacity,))
        dsid = h5py.h5d.create(group.id, name.encode(), h5py.h5t.py_create(dtype), space,
                               dcpl=dcpl)
        ds = h5py.Dataset(dsid)
        if rows:
            ds.write_direct(np.ascontiguousarray(columns[name]), dest_sel=np.s_[0:rows])
