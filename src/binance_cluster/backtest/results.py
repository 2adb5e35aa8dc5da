"""Backtest results on disk, written by rank 0 only, each file atomically (temp file + rename).

`OUT/job.toml`      the resolved job (loads again to the same job)
`OUT/summary.json`  one object per result unit (symbol, params, metrics, error)
`OUT/trades.csv`    one row per trade of the best units (sweep) or of the portfolio
`OUT/results.h5`    equity curves of the portfolio and of the best units
`OUT/run.json`      run metadata: wall times, ranks, host (the only file that differs between runs)

`summary.json` and `trades.csv` hold no run metadata and format every float with `repr`
(the shortest text that reads back to the same float), so the same job gives byte-identical
files at any number of ranks. A run that is interrupted leaves either the previous file or
none, never a half-written one; the files of an earlier run are removed when a new run starts.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from binance_cluster.fileio import atomic_write, fsync_dir

RESULT_FILES = ("summary.json", "trades.csv", "results.h5", "run.json")
TRADE_COLUMNS = ("symbol", "params_id", "entry_time", "entry_time_ms", "exit_time", "exit_time_ms",
                 "entry_price", "exit_price", "quantity", "fees", "pnl", "exit_reason", "paper")


def prepare_output(out: str | os.PathLike, job_toml: str) -> Path:
    """Create the output directory, remove an earlier run's results and write job.toml."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in RESULT_FILES:
        (out / name).unlink(missing_ok=True)
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
               _num(trades["quantity"][i]), _num(trades["fees"][i]), _num(trades["pnl"][i]),
               exit_reasons[reason] if 0 <= reason < len(exit_reasons) else str(reason),
               "1" if bool(trades["paper"][i]) else "0"]


def trades_text(rows: Iterable[list[str]]) -> str:
    """CSV text with the TRADE_COLUMNS header (no field needs quoting: names are [A-Z0-9])."""
    lines = [",".join(TRADE_COLUMNS)]
    lines += [",".join(row) for row in rows]
    return "\n".join(lines) + "\n"


def write_curves(path: str | os.PathLike, curves: list[tuple[str, np.ndarray, np.ndarray, dict]]) -> None:
    """Write equity curves to an HDF5 file: one group per curve with `times`, `equity`, attrs."""
    import h5py

    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w", locking=False) as f:
            f.attrs["format"] = "binance-cluster-results"
            f.attrs["format_version"] = 1
            for name, times, equity, attrs in curves:
                g = f.require_group(name)
                for key, values, dtype in (("times", times, np.int64), ("equity", equity, np.float64)):
                    data = np.asarray(values, dtype=dtype)
                    big = data.size >= 4096
                    g.create_dataset(key, data=data, compression="gzip" if big else None,
                                     shuffle=big)
                for key, value in attrs.items():
                    g.attrs[key] = json.dumps(plain(value)) if isinstance(value, (dict, list)) else value
            f.flush()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)


def run_text(meta: dict) -> str:
    """JSON text of the run metadata."""
    return json.dumps(plain(meta), indent=1, ensure_ascii=False, allow_nan=False) + "\n"
