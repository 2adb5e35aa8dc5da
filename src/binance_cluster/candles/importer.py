"""Import candle files into the store: Binance public-data klines and header CSVs.

Accepted files (plain, gzip or zip holding one CSV; the content decides, not the name):

- Binance public-data klines: 12 columns without a header (open_time, open, high, low,
  close, volume, close_time, quote_volume, trades, taker_buy_base, taker_buy_quote, ignore),
  or the same with Binance's own header row. Open times in milliseconds or, in newer files,
  microseconds (told apart by magnitude).
- Header CSVs with at least `open_time,open,high,low,close,volume`, plus any of the extras by
  name.

Every file is read and validated, and every series checked against what the store holds,
before anything is written: bad input leaves the store as it was.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from binance_cluster.errors import ConfigError, DataError, InputError
from binance_cluster.kernels import csvparse
from binance_cluster.candles.store import CandleStore, CandleValidationError, check_symbol, validate_candles
from binance_cluster.types import (COLUMN_DTYPES, COLUMNS, EXTRA_COLUMNS, Candles, format_time_ms,
                                   interval_ms)

log = logging.getLogger(__name__)

BINANCE_COLUMNS = ("open_time", "open", "high", "low", "close", "volume", "close_time",
                   "quote_volume", "trades", "taker_buy_base", "taker_buy_quote", "ignore")
# Header names used by Binance public data and common exports, mapped to store columns.
HEADER_ALIASES = {
    "open_time": "open_time", "opentime": "open_time",
    "open": "open", "high": "high", "low": "low", "close": "close", "volume": "volume",
    "quote_volume": "quote_volume", "quote_asset_volume": "quote_volume",
    "trades": "trades", "count": "trades", "number_of_trades": "trades",
    "taker_buy_base": "taker_buy_base", "taker_buy_volume": "taker_buy_base",
    "taker_buy_base_asset_volume": "taker_buy_base", "taker_buy_base_volume": "taker_buy_base",
    "taker_buy_quote": "taker_buy_quote", "taker_buy_quote_volume": "taker_buy_quote",
    "taker_buy_quote_asset_volume": "taker_buy_quote",
}
INT_COLUMNS = ("open_time", "trades")
SUFFIXES = (".csv.gz", ".csv.zip", ".csv", ".zip", ".gz")
# open times at or above this are microseconds (10**14 ms is the year 5138)
MICROSECOND_FLOOR = 10 ** 14
_NAME_RE = re.compile(r"^(?P<symbol>[A-Za-z0-9]{2,30})-(?P<interval>[0-9]+[A-Za-z]+)(?:-.*)?$")


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """One file read and validated: its candles and the line number of every row."""

    path: str
    symbol: str
    interval: str
    candles: Candles
    lines: np.ndarray
    rows_read: int
    layout: str
    microseconds: bool


@dataclass(frozen=True, slots=True)
class SeriesImport:
    """The outcome for one symbol and interval."""

    symbol: str
    interval: str
    files: tuple[str, ...]
    rows_read: int
    added: int
    unchanged: int
    first: int | None
    last: int | None


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What an import did, series by series."""

    series: tuple[SeriesImport, ...]
    files: int
    rows_read: int
    added: int
    unchanged: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        """Rows read per second of the whole import."""
        return self.rows_read / self.seconds if self.seconds > 0 else float("inf")


# -- file names ------------------------------------------------------------------------------
def name_parts(path: str | os.PathLike) -> tuple[str | None, str | None]:
    """(symbol, interval) from a Binance-style file name such as `BTCUSDT-1m-2024-01.zip`."""
    name = Path(path).name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    match = _NAME_RE.match(name)
    if not match:
        return None, None
    return match["symbol"].upper(), match["interval"]


def expand_paths(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Files to import: directories expand to their CSV / gzip / zip files; duplicates dropped."""
    out: list[str] = []
    seen: set[str] = set()
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(str(c) for c in path.iterdir()
                           if c.is_file() and c.name.lower().endswith(SUFFIXES))
            if not found:
                raise InputError(f"{path}: directory holds no .csv, .csv.gz or .zip files")
        else:
            found = [str(path)]
        for f in found:
            key = os.path.realpath(f)
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def series_of(path: str, symbol: str | None, interval: str | None) -> tuple[str, str]:
    """The (symbol, interval) a file is imported as: given values first, else its name."""
    name_symbol, name_interval = name_parts(path)
    sym = symbol or name_symbol
    ivl = interval or name_interval
    if sym is None or ivl is None:
        raise InputError(f"{path}: cannot tell the symbol and interval from the file name "
                         "(expected e.g. BTCUSDT-1m.csv.gz); give --symbol and --interval")
    try:
        check_symbol(sym)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    try:
        interval_ms(ivl)
    except ConfigError as exc:
        where = "--interval" if interval else f"{path}: file name"
        raise ConfigError(f"{where}: {exc}") from None
    return sym, ivl


# -- reading bytes ---------------------------------------------------------------------------
def read_bytes(path: str) -> bytes:
    """The CSV text of a file: plain, gzip or a zip holding exactly one CSV."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: not a valid gzip file ({exc})") from None
    if raw[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _read_zip(path, raw)
    if path.lower().endswith((".gz", ".zip")):
        kind = "gzip" if path.lower().endswith(".gz") else "zip"
        raise DataError(f"{path}: not a valid {kind} file")
    return raw


def _read_zip(path: str, raw: bytes) -> bytes:
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            names = [i.filename for i in z.infolist() if not i.is_dir()]
            csvs = [n for n in names if n.lower().endswith(".csv")]
            if len(csvs) != 1:
                found = ", ".join(names[:5]) or "nothing"
                what = "no CSV file" if not csvs else f"{len(csvs)} CSV files"
                raise DataError(f"{path}: zip holds {what} (expected one; found: {found})")
            return z.read(csvs[0])
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataError(f"{path}: not a valid zip file ({exc})") from None


# -- parsing ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Layout:
    name: str
    columns: tuple[str | None, ...]  # store column of each CSV field (None: ignored)
    header_lines: int


def _detect_layout(path: str, data: bytes) -> _Layout:
    """Column layout from the first line: a header row, or 12 (or 6) headerless fields."""
    end = data.find(b"\n")
    first = (data if end < 0 else data[:end]).decode("utf-8", "replace").strip().lstrip("\ufeff")
    fields = [f.strip().strip('"').lower() for f in first.split(",")]
    head = fields[0][:1]
    if head and not (head.isdigit() or head in "+-."):
        columns = tuple(HEADER_ALIASES.get(f) for f in fields)
        named = [c for c in columns if c is not None]
        dupes = sorted({c for c in named if named.count(c) > 1})
        if dupes:
            raise DataError(f"{path}: line 1: header names column {dupes[0]} twice")
        missing = [c for c in COLUMNS if c not in named]
        if missing:
            raise DataError(f"{path}: line 1: header lacks column(s) {', '.join(missing)} "
                            f"(found: {first[:120]})")
        layout = "binance-12" if len(fields) == 12 and fields[0] == "open_time" \
            and "close_time" in fields else "header"
        return _Layout(layout, columns, 1)
    if len(fields) == 12:
        return _Layout("binance-12", tuple(None if c in ("close_time", "ignore") else c
                                           for c in BINANCE_COLUMNS), 0)
    if len(fields) == 6:
        return _Layout("ohlcv-6", COLUMNS, 0)
    raise DataError(f"{path}: line 1: {len(fields)} fields without a header; expected the 12 "
                    "columns of Binance klines, or a header row naming open_time,open,high,low,"
                    "close,volume")


def _slow_value(path: str, text: str, line: int, column: str, kind: int) -> float | int:
    """Exact conversion of a field the fast path left over; DataError when it is no number."""
    if kind == csvparse.KIND_INT:
        try:
            return int(text)
        except ValueError:
            pass
    try:
        value = float(text)
    except ValueError:
        shown = text if len(text) <= 40 else text[:40] + "..."
        what = "empty field" if not text.strip() else f"{shown!r} is not a number"
        raise DataError(f"{path}: line {line}: column {column}: {what}") from None
    if kind == csvparse.KIND_INT:
        if not value.is_integer():
            raise DataError(f"{path}: line {line}: column {column}: {text!r} is not a whole number")
        return int(value)
    return value


def parse_csv(path: str, data: bytes) -> tuple[dict[str, np.ndarray], np.ndarray, _Layout]:
    """Columns (store names) and line numbers of every row of CSV text `data`."""
    if not data.strip():
        raise DataError(f"{path}: empty file (no candles)")
    layout = _detect_layout(path, data)
    buf = np.frombuffer(data, dtype=np.uint8)
    ncols = len(layout.columns)
    kinds = np.array([csvparse.KIND_SKIP if c is None else
                      csvparse.KIND_INT if c in INT_COLUMNS else csvparse.KIND_FLOAT
                      for c in layout.columns], dtype=np.int64)
    slots = np.zeros(ncols, dtype=np.int64)
    float_names: list[str] = []
    int_names: list[str] = []
    for c, name in enumerate(layout.columns):
        if kinds[c] == csvparse.KIND_FLOAT:
            slots[c] = len(float_names)
            float_names.append(name)
        elif kinds[c] == csvparse.KIND_INT:
            slots[c] = len(int_names)
            int_names.append(name)
    cap = int(np.count_nonzero(buf == 10)) + 1
    out_f = np.empty((len(float_names), cap), dtype=np.float64)
    out_i = np.empty((len(int_names), cap), dtype=np.int64)
    lines = np.empty(cap, dtype=np.int64)
    slow = np.empty((csvparse.SLOW_FIELDS, 4), dtype=np.int64)
    pos, line, row = 0, 1, 0
    if layout.header_lines:
        nl = data.find(b"\n")
        pos, line = (len(data), 2) if nl < 0 else (nl + 1, 2)
    while True:
        status, pos, line, row, nslow, err_col = csvparse.parse_rows(
            buf, pos, line, row, kinds, slots, out_f, out_i, lines, slow)
        for r, c, s, e in slow[:nslow].tolist():
            line_r = line if r >= row else int(lines[r])
            value = _slow_value(path, data[s:e].decode("utf-8", "replace"), line_r,
                                _column_label(layout, c), int(kinds[c]))
            if kinds[c] == csvparse.KIND_FLOAT:
                out_f[slots[c], r] = value
            else:
                if not -2 ** 63 <= value < 2 ** 63:
                    raise DataError(f"{path}: line {line_r}: column {_column_label(layout, c)}: "
                                    f"{value} is out of range")
                out_i[slots[c], r] = value
        if status == csvparse.STATUS_DONE:
            break
        if status == csvparse.STATUS_SLOW_FULL:
            continue
        if status == csvparse.STATUS_SHORT_ROW:
            raise DataError(f"{path}: line {line}: {err_col} field{'s' * (err_col != 1)}, "
                            f"expected {ncols} (short row)")
        if status == csvparse.STATUS_LONG_ROW:
            raise DataError(f"{path}: line {line}: more than {ncols} fields (too many fields)")
        raise DataError(f"{path}: line {line}: cannot parse (status {status})")
    if row == 0:
        raise DataError(f"{path}: no candle rows (only a header)" if layout.header_lines
                        else f"{path}: empty file (no candles)")
    columns = {name: out_f[k, :row] for k, name in enumerate(float_names)}
    columns.update({name: out_i[k, :row] for k, name in enumerate(int_names)})
    return columns, lines[:row], layout


def _column_label(layout: _Layout, c: int) -> str:
    name = layout.columns[c]
    return name if name is not None else f"{c + 1}"


def _to_milliseconds(path: str, t: np.ndarray, lines: np.ndarray) -> tuple[np.ndarray, bool]:
    """Open times in ms: values at or above 10**14 are microseconds and are divided by 1000."""
    micro = t >= MICROSECOND_FLOOR
    if not micro.any():
        return t, False
    uneven = np.flatnonzero(micro & (t % 1000 != 0))
    if uneven.size:
        i = int(uneven[0])
        raise DataError(f"{path}: line {int(lines[i])}: open_time {int(t[i])} microseconds is not a "
                        "whole millisecond")
    return np.where(micro, t // 1000, t), True


def _drop_repeats(columns: dict[str, np.ndarray], lines: np.ndarray
                  ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Drop rows identical to the row before them (repeated lines); conflicting ones stay."""
    t = columns["open_time"]
    same = np.zeros(t.size, dtype=bool)
    same[1:] = t[1:] == t[:-1]
    if not same.any():
        return columns, lines
    for name, col in columns.items():
        if name == "open_time":
            continue
        eq = col[1:] == col[:-1]
        if col.dtype.kind == "f":
            eq |= np.isnan(col[1:]) & np.isnan(col[:-1])
        same[1:] &= eq
    if not same.any():
        return columns, lines
    keep = ~same
    return {k: v[keep] for k, v in columns.items()}, lines[keep]


def load_file(path: str, symbol: str | None = None, interval: str | None = None) -> ParsedFile:
    """Read, parse and validate one file (raises InputError naming the file and line)."""
    data = read_bytes(path)
    sym, ivl = series_of(path, symbol, interval)
    columns, lines, layout = parse_csv(path, data)
    rows_read = int(lines.size)
    columns["open_time"], micro = _to_milliseconds(path, columns["open_time"], lines)
    columns, lines = _drop_repeats(columns, lines)
    candles = Candles.from_columns(columns)
    try:
        validate_candles(candles, ivl)
    except CandleValidationError as exc:
        raise DataError(f"{path}: line {int(lines[exc.row])}: {exc.problem}") from None
    log.debug("%s: %d rows, %s layout%s", path, rows_read, layout.name,
              ", open times in microseconds" if micro else "")
    return ParsedFile(path, sym, ivl, candles, lines, rows_read, layout.name, micro)


# -- merging and checking against the store -------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Series:
    symbol: str
    interval: str
    files: tuple[ParsedFile, ...]
    candles: Candles
    source: np.ndarray  # index into files of every row
    lines: np.ndarray


def _where(series: _Series, i: int) -> str:
    return f"{series.files[int(series.source[i])].path}: line {int(series.lines[i])}"


def merge_files(files: Sequence[ParsedFile]) -> _Series:
    """One series from several files of it: sorted by time, identical overlaps dropped."""
    first = files[0]
    if len(files) == 1:
        return _Series(first.symbol, first.interval, tuple(files), first.candles,
                       np.zeros(len(first.candles), np.int64), first.lines)
    names = [c for c in COLUMNS + EXTRA_COLUMNS if any(c in f.candles.columns() for f in files)]
    cols: dict[str, list[np.ndarray]] = {c: [] for c in names}
    for f in files:
        given = f.candles.columns()
        n = len(f.candles)
        for c in names:
            cols[c].append(given[c] if c in given else
                           np.full(n, -1 if c == "trades" else np.nan, COLUMN_DTYPES[c]))
    merged = {c: np.concatenate(v) for c, v in cols.items()}
    source = np.concatenate([np.full(len(f.candles), k, np.int64) for k, f in enumerate(files)])
    lines = np.concatenate([f.lines for f in files])
    order = np.argsort(merged["open_time"], kind="stable")
    merged = {c: v[order] for c, v in merged.items()}
    merged, keep = _drop_repeats_indexed(merged)
    source, lines = source[order][keep], lines[order][keep]
    series = _Series(first.symbol, first.interval, tuple(files), Candles.from_columns(merged),
                     source, lines)
    try:
        validate_candles(series.candles, series.interval)
    except CandleValidationError as exc:
        raise DataError(f"{_where(series, exc.row)}: {exc.problem} (across the files of "
                        f"{series.symbol} {series.interval})") from None
    return series


def _drop_repeats_indexed(columns: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    index = np.arange(columns["open_time"].size)
    kept, index = _drop_repeats(columns, index)
    keep = np.zeros(columns["open_time"].size, dtype=bool)
    keep[index] = True
    return kept, keep


def check_against_store(store: CandleStore, series: _Series) -> int:
    """Rows of `series` already stored identically (a prefix); DataError on any conflict.

    The store only appends: rows up to its last candle must match stored rows exactly.
    """
    path = store.path(series.symbol)
    if not path.exists() or not store.has(series.symbol, series.interval):
        return 0
    span = store.span(series.symbol, series.interval)
    if span is None:
        return 0
    last = span[1]
    t = series.candles.open_time
    k = int(np.searchsorted(t, last, side="right"))
    if k == 0:
        return 0
    stored = store.read(series.symbol, series.interval, int(t[0]), last + 1)
    st = stored.open_time
    pos = np.minimum(np.searchsorted(st, t[:k]), max(st.size - 1, 0))
    missing = np.flatnonzero(st[pos] != t[:k]) if st.size else np.arange(k)
    if missing.size:
        i = int(missing[0])
        raise DataError(f"{_where(series, i)}: open_time {int(t[i])} ({format_time_ms(int(t[i]))} "
                        f"UTC) falls before the last stored {series.interval} candle of "
                        f"{series.symbol} ({format_time_ms(last)}) where the store has none; "
                        f"the store only appends in time order ({path})")
    given = series.candles.columns()
    have = stored.columns()
    for name in given:
        if name == "open_time" or name not in have:
            continue
        a, b = have[name][pos], given[name][:k]
        same = (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b
        if name in EXTRA_COLUMNS:
            same |= (b == -1) if name == "trades" else np.isnan(b)
        diff = np.flatnonzero(~same)
        if diff.size:
            i = int(diff[0])
            raise DataError(f"{_where(series, i)}: open_time {int(t[i])} ({format_time_ms(int(t[i]))} "
                            f"UTC) is already stored for "
                            f"{series.symbol} {series.interval} with {name}={a[i].item()!r}, "
                            f"not {b[i].item()!r} (conflicting duplicate)")
    return k


# -- the import ------------------------------------------------------------------------------
def load_all(paths: Sequence[str], symbol: str | None = None, interval: str | None = None,
             threads: int | None = None,
             on_file: Callable[[ParsedFile], None] | None = None) -> list[ParsedFile]:
    """Load every file (in threads: decompression and the parser release the GIL).

    Every file is attempted; the error of the first bad file in the given order is raised.
    """
    threads = threads or min(len(paths), os.cpu_count() or 1)
    results: list[ParsedFile | BaseException] = []
    if threads <= 1 or len(paths) <= 1:
        for p in paths:
            results.append(_attempt(p, symbol, interval, on_file))
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            results = list(pool.map(lambda p: _attempt(p, symbol, interval, on_file), paths))
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]


def _attempt(path: str, symbol: str | None, interval: str | None,
             on_file: Callable[[ParsedFile], None] | None) -> ParsedFile | BaseException:
    try:
        parsed = load_file(path, symbol, interval)
    except Exception as exc:  # reported after every file was tried, in the given order
        return exc
    if on_file is not None:
        on_file(parsed)
    return parsed


def import_files(store: CandleStore, paths: Sequence[str | os.PathLike],
                 symbol: str | None = None, interval: str | None = None,
                 threads: int | None = None,
                 on_file: Callable[[ParsedFile], None] | None = None) -> ImportSummary:
    """Import candle files into `store`; nothing is written unless every file is valid."""
    started = time.perf_counter()
    if store.root.exists() and not store.root.is_dir():
        raise InputError(f"{store.root}: the store must be a directory, not a file")
    if symbol is not None:
        check_symbol(symbol)
    if interval is not None:
        try:
            interval_ms(interval)
        except ConfigError as exc:
            raise ConfigError(f"--interval: {exc}") from None
    files = expand_paths(paths)
    if not files:
        raise InputError("no files to import")
    parsed = load_all(files, symbol, interval, threads, on_file)
    groups: dict[tuple[str, str], list[ParsedFile]] = {}
    for p in parsed:
        groups.setdefault((p.symbol, p.interval), []).append(p)
    plans: list[tuple[_Series, int]] = []
    for (sym, ivl), members in sorted(groups.items(), key=lambda kv: (kv[0][0], interval_ms(kv[0][1]))):
        members.sort(key=lambda f: int(f.candles.open_time[0]))
        series = merge_files(members)
        plans.append((series, check_against_store(store, series)))
    results = _write(store, plans)
    return ImportSummary(tuple(results), len(files), sum(p.rows_read for p in parsed),
                         sum(r.added for r in results), sum(r.unchanged for r in results),
                         time.perf_counter() - started)


def _write(store: CandleStore, plans: list[tuple[_Series, int]]) -> list[SeriesImport]:
    """Append the new rows of every series, holding every symbol's write lock throughout."""
    todo = [(s, k) for s, k in plans if k < len(s.candles)]
    results: dict[tuple[str, str], int] = {}
    with ExitStack() as stack:
        writers = {}
        for series, _ in todo:
            if series.symbol not in writers:
                existed = store.path(series.symbol).exists()
                writers[series.symbol] = (stack.enter_context(store.writer(series.symbol)), existed)
        for series, k in todo:
            writer, existed = writers[series.symbol]
            attrs = {} if existed else {"source": "import"}
            writers[series.symbol] = (writer, True)
            fresh = series.candles.slice(k, len(series.candles))
            try:
                result = writer.append(series.interval, fresh, **attrs)
            except CandleValidationError as exc:  # the store changed since the check
                raise DataError(f"{_where(series, k + exc.row)}: {exc.problem}") from None
            results[(series.symbol, series.interval)] = result.added
    out = []
    for series, k in plans:
        added = results.get((series.symbol, series.interval), 0)
        t = series.candles.open_time
        out.append(SeriesImport(series.symbol, series.interval,
                                tuple(f.path for f in series.files),
                                sum(f.rows_read for f in series.files), added, k,
                                int(t[0]) if t.size else None, int(t[-1]) if t.size else None))
    return out
