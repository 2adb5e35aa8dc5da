"""Backtest results on disk, written by rank 0 only, each file atomically (temp file + rename).

`OUT/job.toml`      the resolved job (loads again to the same job)
`OUT/summary.json`  one object per result unit (symbol, params, metrics, error)
`OUT/trades.csv`    one row per trade of the best units (sweep) or of the portfolio
`OUT/results.h5`    equity curves of the portfolio and of the best units
`OUT/run.json`      run metadata: wall times, ranks, host (the only file that differs between runs)
`OUT/report.html`, `OUT/report.pdf`, `OUT/figures/`   the report of the run, when one is rendered

`summary.json` and `trades.csv` hold no run metadata and format every float with `repr`
(the shortest text that reads back to the same float), so the same job gives byte-identical
files at any number of ranks. A run that is interrupted leaves either the previous file or
none, never a half-written one; the files of an earlier run, its report included, are removed
when a new run starts.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from binance_cluster.fileio import atomic_file, atomic_write

RESULT_FILES = ("summary.json", "trades.csv", "results.h5", "run.json")
REPORT_FILES = ("report.html", "report.pdf")
FIGURES_DIR = "figures"
TRADE_COLUMNS = ("symbol", "params_id", "entry_time", "entry_time_ms", "exit_time", "exit_time_ms",
                 "entry_price", "exit_price", "quantity", "sold_quantity", "dust", "fees", "pnl",
                 "exit_reason", "paper")


def prepare_output(out: str | os.PathLike, job_toml: str) -> Path:
    """Create the output directory, remove an earlier run's results and report, write job.toml."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in RESULT_FILES + REPORT_FILES:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / FIGURES_DIR, ignore_errors=True)
    atomic_write(out / "job.toml", job_toml)
    return out


def plain(value: Any) -> Any:
    """`value` with numpy scalars made Python ones; NaN becomes null and +-inf "inf"/"-inf"."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    return value


def summary_text(summary: dict) -> str:
    """Deterministic JSON text of the summary (key order as built, floats by repr)."""
    return json.dumps(plain(summary), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def iso_ms(ms: int) -> str:
    """`YYYY-MM-DDTHH:MM:SS.mmmZ` for a millisecond UTC time."""
    stamp = _dt.datetime.fromtimestamp(int(ms) // 1000, tz=_dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{int(ms) % 1000:03d}Z"


def _num(x: float) -> str:
    v = float(x)
    if math.isnan(v):
        return "nan"
    return repr(v)


def trade_rows(symbols: list[str], params_id: int | list[int], trades: dict[str, np.ndarray],
               exit_reasons: tuple[str, ...]) -> Iterable[list[str]]:
    """CSV rows of one SimResult's trades; `symbols` maps symbol_index to a name."""
    n = len(trades["entry_time"])
    for i in range(n):
        si = int(trades["symbol_index"][i]) if "symbol_index" in trades else 0
        reason = int(trades["exit_reason"][i])
        pid = params_id if isinstance(params_id, int) else params_id[si]
        yield [symbols[si], str(pid),
               iso_ms(trades["entry_time"][i]), str(int(trades["entry_time"][i])),
               iso_ms(trades["exit_time"][i]), str(int(trades["exit_time"][i])),
               _num(trades["entry_price"][i]), _num(trades["exit_price"][i]),
               _num(trades["quantity"][i]), _num(trades["sold_quantity"][i]),
               _num(trades["dust"][i]), _num(trades["fees"][i]), _num(trades["pnl"][i]),
               exit_reasons[reason] if 0 <= reason < len(exit_reasons) else str(reason),
               "1" if bool(trades["paper"][i]) else "0"]


def trades_text(rows: Iterable[list[str]]) -> str:
    """CSV text with the TRADE_COLUMNS header (no field needs quoting: names are [A-Z0-9])."""
    lines = [",".join(TRADE_COLUMNS)]
    lines += [",".join(row) for row in rows]
    return "\n".join(lines) + "\n"


class CurveSink:
    """Adds equity curves to an open results file, one group each (see `curve_writer`)."""

    def __init__(self, f):
        self._file = f
        self._times: dict[str, str] = {}

    def add(self, name: str, times: np.ndarray, equity: np.ndarray, attrs: dict,
            times_of: str | None = None) -> None:
        """Write curve `name`; curves that give the same `times_of` key share one time axis
        (written once, then hard-linked: read back, each group has its own `times`)."""
        g = self._file.require_group(name)
        if times_of is not None and times_of in self._times:
            g["times"] = self._file[self._times[times_of]]
        else:
            data = np.asarray(times, dtype=np.int64)
            big = data.size >= 4096  # candle times are regular: they compress to almost nothing
            g.create_dataset("times", data=data, compression="gzip" if big else None,
                             compression_opts=1 if big else None, shuffle=big)
            if times_of is not None:
                self._times[times_of] = g["times"].name
        # equity curves barely compress (about 1.6x) at ten times the cost of writing them
        g.create_dataset("equity", data=np.asarray(equity, dtype=np.float64))
        for key, value in attrs.items():
            g.attrs[key] = json.dumps(plain(value)) if isinstance(value, (dict, list)) else value


@contextmanager
def curve_writer(path: str | os.PathLike) -> Iterator[CurveSink]:
    """An HDF5 results file written atomically, curve by curve, as they arrive."""
    import h5py

    with atomic_file(path) as tmp:
        with h5py.File(tmp, "w", locking=False) as f:
            f.attrs["format"] = "binance-cluster-results"
            f.attrs["format_version"] = 1
            yield CurveSink(f)
            f.flush()


def write_curves(path: str | os.PathLike, curves: list[tuple[str, np.ndarray, np.ndarray, dict]]) -> None:
    """Write equity curves to an HDF5 file: one group per curve with `times`, `equity`, attrs."""
    with curve_writer(path) as sink:
        for name, times, equity, attrs in curves:
            sink.add(name, times, equity, attrs)


def run_text(meta: dict) -> str:
    """JSON text of the run metadata."""
    return json.dumps(plain(meta), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


# -- readers (the report reads results through these, so each format is defined here) -------

def _result_file(out: str | os.PathLike, name: str) -> Path:
    """`OUT/name`, or a DataError naming it when it is missing."""
    from binance_cluster.errors import DataError

    path = Path(out) / name
    if not path.is_file():
        raise DataError(f"{path}: missing (not a backtest results directory? "
                        "`binance-cluster backtest JOB --out DIR` writes it)")
    return path


def _unplain(value: Any) -> Any:
    """Inverse of `plain` for floats: null is NaN, "inf"/"-inf" are infinities."""
    if isinstance(value, dict):
        return {k: _unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    if value is None:
        return math.nan
    if value == "inf":
        return math.inf
    if value == "-inf":
        return -math.inf
    return value


def read_summary(out: str | os.PathLike) -> dict:
    """`OUT/summary.json` as written; metric values null/"inf" read back as NaN/inf."""
    from binance_cluster.errors import DataError

    path = _result_file(out, "summary.json")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("units"), list):
        raise DataError(f"{path}: no `units` list (not a backtest summary)")
    for unit in summary["units"]:
        if unit.get("metrics") is not None:
            unit["metrics"] = _unplain(unit["metrics"])
    portfolio = summary.get("portfolio")
    if portfolio and portfolio.get("metrics") is not None:
        portfolio["metrics"] = _unplain(portfolio["metrics"])
    return summary


# trades.csv columns by type; columns not listed here are read as text
_TRADE_INTS = ("params_id", "entry_time_ms", "exit_time_ms")
_TRADE_FLOATS = ("entry_price", "exit_price", "quantity", "fees", "pnl")


def read_trades(out: str | os.PathLike) -> dict[str, np.ndarray]:
    """`OUT/trades.csv` as one numpy column per header name (times int64 ms, prices float64,
    `paper` bool, text columns str); the columns are those of the file's header."""
    from binance_cluster.errors import DataError

    path = _result_file(out, "trades.csv")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        raise DataError(f"{path}: empty (no header line)")
    header = lines[0].split(",")
    missing = [c for c in ("symbol", "entry_time_ms", "exit_time_ms", "pnl") if c not in header]
    if missing:
        raise DataError(f"{path}: header lacks {', '.join(missing)}")
    rows = [line.split(",") for line in lines[1:] if line]
    for n, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise DataError(f"{path}: line {n}: {len(row)} fields, the header has {len(header)}")
    columns: dict[str, np.ndarray] = {}
    for k, name in enumerate(header):
        text = [row[k] for row in rows]
        try:
            if name in _TRADE_INTS:
                columns[name] = np.array(text, dtype=np.int64).reshape(len(rows))
            elif name in _TRADE_FLOATS:
                columns[name] = np.array(text, dtype=np.float64).reshape(len(rows))
            elif name == "paper":
                columns[name] = np.array([t == "1" for t in text], dtype=bool)
            else:
                columns[name] = np.array(text, dtype=str).reshape(len(rows))
        except ValueError as exc:
            raise DataError(f"{path}: column {name}: {exc}") from None
    return columns


def read_curves(out: str | os.PathLike) -> list[tuple[str, np.ndarray, np.ndarray, dict]]:
    """`OUT/results.h5` as `write_curves` took it: (name, times, equity, attrs) per curve."""
    import h5py

    from binance_cluster.errors import DataError

    path = _result_file(out, "results.h5")
    curves = []
    try:
        with h5py.File(path, "r", locking=False) as f:
            if f.attrs.get("format") != "binance-cluster-results":
                raise DataError(f"{path}: not a binance-cluster results file")

            def visit(name: str, node) -> None:
                if isinstance(node, h5py.Group) and "times" in node and "equity" in node:
                    attrs = {}
                    for key, value in node.attrs.items():
                        if isinstance(value, bytes):
                            value = value.decode()
                        if isinstance(value, str) and value[:1] in "[{":
                            value = json.loads(value)
                        elif isinstance(value, np.generic):
                            value = value.item()
                        attrs[key] = value
                    curves.append((name, node["times"][()].astype(np.int64),
                                   node["equity"][()].astype(np.float64), attrs))

            f.visititems(visit)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from None
    return sorted(curves, key=lambda c: c[0])


def read_job(out: str | os.PathLike):
    """`OUT/job.toml`, the resolved job, as a `Job` (the store is not checked)."""
    from binance_cluster.backtest.job import load_job

    return load_job(_result_file(out, "job.toml"), check_store=False)
