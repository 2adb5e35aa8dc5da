"""Benchmark klines replay: `fetch` end to end against the emulator, next to its peers.

    /tmp/venv/bin/python bench/bench_klines_replay.py [DATA_DIR] [--symbols N] [--requests N]
        [--repeat N]

A store is made from the first N real symbols of the shared data (a month of 1m candles
each), `binance-cluster exchange-sim` serves it in a separate process on 127.0.0.1 (replay
clock frozen after the last candle, no weight limit), and these are measured on the same
data, side by side:

- raw `/klines` calls with python-binance 1.0.37 (`get_klines`, limit 1000 and limit 1):
  requests per second and candles per second;
- the same calls with a bare `requests.Session` + `json` (no python-binance): the HTTP floor;
- python-binance's own pager `get_historical_klines` over one symbol (no storing; it sleeps
  1 s after every third request by design, which dominates its figure);
- `fetch` (serial) into an empty store: candles per second in this process (`run_fetch`:
  exchangeInfo, time, paging, parsing, validation, HDF5 appends), then as the CLI in a new
  process and under `mpirun -n 2` (Python, numpy, h5py and python-binance start-up included);
- the emulator's server-side cost of one 1000-row answer, in process (no HTTP);
- reading the same candles back from the store (the local ceiling);
- the ceiling Binance's own weight limit puts on any downloader from one IP.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from binance_cluster.candles.store import CandleStore
from binance_cluster.types import Candles

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "binance-usdm-1m"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT", "ADAUSDT", "LINKUSDT",
           "LTCUSDT")


def load_store(data: Path, root: Path, symbols: list[str]) -> int:
    """Write the shared CSVs of `symbols` into a store; returns the number of candles."""
    store = CandleStore(root)
    total = 0
    for symbol in symbols:
        with gzip.open(data / f"{symbol}-1m.csv.gz", "rt") as f:
            a = np.loadtxt(f, delimiter=",", skiprows=1)
        c = Candles.from_columns({"open_time": a[:, 0].astype(np.int64), "open": a[:, 1],
                                  "high": a[:, 2], "low": a[:, 3], "close": a[:, 4],
                                  "volume": a[:, 5]})
        store.append(symbol, "1m", c)
        total += len(c)
    return total


def start_emulator(store: Path, start_ms: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "binance_cluster", "exchange-sim", "--store", str(store),
         "--port", "0", "--speed", "0", "--start", str(start_ms), "--weight-limit", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"exchange-sim did not start: {line!r}")
    return proc, line.split()[-1]


def client_for(url: str):
    from binance import Client

    client = Client(None, None, ping=False)
    client.API_URL = url + "/api"
    return client


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def best(repeat: int, fn, *args) -> tuple[float, object]:
    """The fastest of `repeat` runs of `fn(*args) -> (seconds, result)` (other work on a
    shared machine only ever slows a run down)."""
    return min((fn(*args) for _ in range(repeat)), key=lambda r: r[0])


def raw_python_binance(url: str, symbol: str, first: int, n: int, limit: int) -> tuple[float, int]:
    client = client_for(url)
    client.get_klines(symbol=symbol, interval="1m", startTime=first, limit=limit)  # warm
    rows = 0
    started = time.perf_counter()
    for i in range(n):
        start = first + (i * limit % 40_000) * 60_000
        rows += len(client.get_klines(symbol=symbol, interval="1m", startTime=start, limit=limit))
    return time.perf_counter() - started, rows


def raw_requests(url: str, symbol: str, first: int, n: int, limit: int) -> tuple[float, int]:
    import requests

    session = requests.Session()
    session.get(f"{url}/api/v3/ping", timeout=10)  # warm: connection open
    rows = 0
    started = time.perf_counter()
    for i in range(n):
        start = first + (i * limit % 40_000) * 60_000
        resp = session.get(f"{url}/api/v3/klines", params={
            "interval": "1m", "limit": limit, "startTime": start, "symbol": symbol}, timeout=10)
        rows += len(json.loads(resp.text))
    return time.perf_counter() - started, rows


def server_side(store: Path, symbol: str, first: int, end: int, n: int) -> float:
    """Seconds per 1000-row klines answer inside the emulator (cached rows, no HTTP)."""
    from binance_cluster.exchange.emulator.replay import ReplayData

    data = ReplayData(CandleStore(store))
    data.klines_json(symbol, "1m", end, first, None, 1000, False)  # load and encode once
    started = time.perf_counter()
    for i in range(n):
        data.klines_json(symbol, "1m", end, first + (i * 1000 % 40_000) * 60_000, None, 1000,
                         False)
    return (time.perf_counter() - started) / n


def run_fetch_cli(url: str, root: Path, symbols: list[str], ranks: int = 1) -> float:
    cmd = [sys.executable, "-m", "binance_cluster", "fetch", "--store", str(root), "--symbols",
           ",".join(symbols), "--start", "2025-01-01", "--base-url", url, "--no-progress",
           "--json"]
    if ranks > 1:
        cmd = [str(Path(sys.executable).parent / "mpirun"), "-n", str(ranks)] + cmd
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"fetch failed: {proc.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA))
    parser.add_argument("--symbols", type=int, default=4, help="symbols to replay (default 4)")
    parser.add_argument("--requests", type=int, default=200, help="raw requests per figure")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    args = parser.parse_args()
    symbols = list(SYMBOLS[:args.symbols])
    work = Path(tempfile.mkdtemp(prefix="bench-klines-"))
    try:
        source = work / "source"
        total = load_store(Path(args.data), source, symbols)
        src = CandleStore(source)
        spans = [src.span(s, "1m") for s in symbols]
        first = spans[0][0]
        end = max(s[1] for s in spans) + 120_000
        proc, url = start_emulator(source, end)
        try:
            print(f"klines replay benchmark: {len(symbols)} symbols, {total:,} one-minute candles, "
                  f"emulator at {url} (separate process), {os.cpu_count()} cores")
            figures = []
            warm = client_for(url)
            for symbol in symbols:  # the emulator loads and encodes each series on first use
                warm.get_klines(symbol=symbol, interval="1m", limit=1)

            for limit in (1000, 1):
                n = args.requests if limit == 1000 else args.requests * 2
                secs, rows = best(args.repeat, raw_python_binance, url, symbols[0], first, n, limit)
                figures.append((f"python-binance get_klines limit={limit}", n / secs, rows / secs))
                secs, rows = best(args.repeat, raw_requests, url, symbols[0], first, n, limit)
                figures.append((f"requests.Session + json limit={limit}", n / secs, rows / secs))

            client = client_for(url)
            secs, rows = timed(client.get_historical_klines, symbols[0], "1m", 0)
            pages = -(-len(rows) // 1000) + 1
            figures.append(("python-binance get_historical_klines (1 symbol, no store)",
                            pages / secs, len(rows) / secs))

            from binance_cluster.candles.fetch import FetchConfig, run_fetch
            from binance_cluster.parallel import SerialComm

            def fetch_in_process(k=iter(range(100))):
                config = FetchConfig(store=work / f"fetched-inproc-{next(k)}",
                                     symbols=tuple(symbols), start_ms=0, base_url=url)
                return timed(run_fetch, config, SerialComm(), show_progress=False)

            secs, outcome = best(args.repeat, fetch_in_process)
            reports = outcome.reports
            assert sum(r.added for r in reports) == total, [r.added for r in reports]
            requests_made = sum(r.requests for r in reports) + 2  # + exchangeInfo, time
            fetch_rate = total / secs
            figures.append(("fetch, in process (run_fetch)", requests_made / secs, fetch_rate))

            out = work / "fetched"
            secs = run_fetch_cli(url, out, symbols)
            fetched = sum(CandleStore(out).count(s, "1m") for s in symbols)
            assert fetched == total, (fetched, total)
            figures.append(("fetch, CLI in a new process (incl. start-up)",
                            requests_made / secs, fetched / secs))

            mpirun = Path(sys.executable).parent / "mpirun"
            if mpirun.exists():
                out2 = work / "fetched-mpi"
                secs2 = run_fetch_cli(url, out2, symbols, ranks=2)
                assert sum(CandleStore(out2).count(s, "1m") for s in symbols) == total
                figures.append(("fetch, mpirun -n 2 (CLI, incl. start-up)",
                                requests_made / secs2, total / secs2))

            per_answer = server_side(source, symbols[0], first, end, 200)
            figures.append(("emulator server side, 1000-row answer (in process)",
                            1 / per_answer, 1000 / per_answer))

            read_secs, _ = timed(lambda: [src.read(s, "1m") for s in symbols])
            figures.append(("CandleStore.read of the same candles (local ceiling)",
                            float("nan"), total / read_secs))
            # what Binance itself allows one IP: 6000 weight a minute, 2 per 1000-candle page
            figures.append(("Binance mainnet weight limit (6000/min, klines weight 2)",
                            6000 / 2 / 60, 6000 / 2 / 60 * 1000))
        finally:
            proc.terminate()
            proc.wait(10)

        width = max(len(f[0]) for f in figures)
        print(f"{'':{width}}  {'requests/s':>11}  {'candles/s':>12}  {'vs fetch':>8}")
        for name, rps, cps in figures:
            rps_text = f"{rps:11,.0f}" if rps == rps else f"{'-':>11}"
            print(f"{name:{width}}  {rps_text}  {cps:12,.0f}  {cps / fetch_rate:7.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
