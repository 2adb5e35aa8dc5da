"""Benchmark order throughput of the exchange emulator with a signed python-binance client.

    /tmp/venv/bin/python bench/bench_emulator_orders.py [DATA_DIR] [--orders N] [--repeat N]

A store is made from real BTCUSDT and ETHUSDT candles of the shared data, `binance-cluster
exchange-sim` serves it in its own process on 127.0.0.1 (replay clock frozen mid-data, no
weight or order-rate limit, one account with large balances), and these are measured side by
side in one run:

- MARKET orders per second with python-binance 1.0.37 (`create_order`, signed, FULL answer),
  buys and sells alternating;
- LIMIT place + cancel per second (two signed requests each: `order_limit_buy`, then
  `cancel_order`), orders placed per second and requests per second;
- CPU time per MARKET order in the emulator process and in the client process (psutil and
  `time.process_time`): on a busy machine the rates above fall with the load, these do not;
  1 / max(server, client) is the rate with a free core each, 1 / (server + client) serially;
- peers: the unsigned round trip of the same client (`ping`: the HTTP + client floor), the
  same signed MARKET order sent with a bare `requests.Session` (python-binance's own cost
  removed), and the emulator's server-side order cost in process (`Exchange.place`: validation
  and matching, no HTTP, no signature).

The goal is more than 500 orders per second for MARKET orders on a 2-core machine.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import hmac
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

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "binance-usdm-1m"
SYMBOLS = ("BTCUSDT", "ETHUSDT")
ROWS = 5000
KEY, SECRET = "benchKey1", "benchSecret1"


def read_candles(data: Path, symbol: str, rows: int) -> Candles:
    with gzip.open(data / f"{symbol}-1m.csv.gz", "rt") as f:
        a = np.loadtxt(f, delimiter=",", skiprows=1, max_rows=rows)
    return Candles.from_columns({"open_time": a[:, 0].astype(np.int64), "open": a[:, 1],
                                 "high": a[:, 2], "low": a[:, 3], "close": a[:, 4],
                                 "volume": a[:, 5]})


def make_store(data: Path, root: Path) -> tuple[CandleStore, int]:
    store = CandleStore(root)
    for symbol in SYMBOLS:
        store.append(symbol, "1m", read_candles(data, symbol, ROWS), source="bench")
    start = int(store.read("BTCUSDT", "1m").open_time[ROWS // 2]) + 5_000
    return store, start


def start_emulator(store: Path, start_ms: int, accounts: Path,
                   *extra: str) -> tuple[subprocess.Popen, str]:
    """`exchange-sim` in its own process, replay frozen at `start_ms`, no rate limits
    (`extra`: more exchange-sim options); (process, base URL)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "binance_cluster", "exchange-sim", "--store", str(store),
         "--port", "0", "--speed", "0", "--start", str(start_ms), "--weight-limit", "0",
         "--order-limit", "0", "--accounts", str(accounts), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("exchange-sim: listening on "):
        proc.kill()
        raise SystemExit(f"the emulator did not start: {line}{proc.stderr.read()}")
    return proc, line.split()[-1]


def client_for(url: str):
    from binance import Client

    client = Client(KEY, SECRET, ping=False)
    client.API_URL = url + "/api"
    return client


def cpu_per_call(proc_pid: int, n: int, fn) -> tuple[float, float]:
    """(server CPU s, client CPU s) per call of `fn(n)`."""
    import psutil

    server = psutil.Process(proc_pid)

    def used() -> float:
        t = server.cpu_times()
        return t.user + t.system

    s0, c0 = used(), time.process_time()
    fn(n)
    return (used() - s0) / n, (time.process_time() - c0) / n


def rate(n: int, fn, repeat: int) -> float:
    """Best of `repeat` runs of `fn(n)`, in calls per second."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t0)
    return n / best


def bench_market(client, n: int) -> None:
    for i in range(n):
        client.create_order(symbol="BTCUSDT", side="BUY" if i % 2 == 0 else "SELL",
                            type="MARKET", quantity="0.001")


def bench_limit_cycle(client, price: str, n: int) -> None:
    for _ in range(n):
        order = client.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price=price)
        client.cancel_order(symbol="BTCUSDT", orderId=order["orderId"])


def bench_ping(client, n: int) -> None:
    for _ in range(n):
        client.ping()


def bench_bare(url: str, n: int) -> None:
    import requests

    session = requests.Session()
    headers = {"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"}
    for i in range(n):
        body = (f"quantity=0.001&side={'BUY' if i % 2 == 0 else 'SELL'}&symbol=BTCUSDT"
                f"&type=MARKET&timestamp={int(time.time() * 1000)}")
        sig = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
        resp = session.post(url + "/api/v3/order", data=f"{body}&signature={sig}",
                            headers=headers, timeout=10)
        if resp.status_code != 200:
            raise SystemExit(f"bare order failed: {resp.text}")


def bench_in_process(store: Path, start_ms: int, accounts: Path, n: int,
                     repeat: int) -> float:
    from decimal import Decimal

    from binance_cluster.exchange.emulator import EmulatorConfig
    from binance_cluster.exchange.emulator.orders import NewOrder
    from binance_cluster.exchange.emulator.state import EmulatorState

    state = EmulatorState(EmulatorConfig(store=store, speed=0, start_ms=start_ms,
                                         accounts=accounts, order_limit_10s=0))
    account = next(iter(state.exchange.accounts.values()))
    orders = [NewOrder("BTCUSDT", side, "MARKET", quantity=Decimal("0.001"))
              for side in ("BUY", "SELL")]

    def run(k: int) -> None:
        now = state.replay_now()
        for i in range(k):
            state.exchange.sync(now)
            state.exchange.place(account, orders[i % 2], now)

    run(10)
    return rate(n, run, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA))
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = Path(args.data)
    tmp = Path(tempfile.mkdtemp(prefix="bench-orders-"))
    try:
        store, start = make_store(data, tmp / "store")
        accounts = tmp / "accounts.json"
        accounts.write_text(json.dumps({KEY: {"secret": SECRET, "balances": {
            "USDT": "100000000", "BTC": "1000", "ETH": "1000"}}}))
        proc, url = start_emulator(store.root, start, accounts)
        try:
            client = client_for(url)
            price = f"{float(client.get_symbol_ticker(symbol='BTCUSDT')['price']) * 0.8:.2f}"
            bench_market(client, 20)                     # warm-up: numba, caches, sockets
            bench_limit_cycle(client, price, 20)
            n = args.orders
            market = rate(n, lambda k: bench_market(client, k), args.repeat)
            cycles = rate(n // 2, lambda k: bench_limit_cycle(client, price, k), args.repeat)
            ping = rate(n, lambda k: bench_ping(client, k), args.repeat)
            bare = rate(n, lambda k: bench_bare(url, k), args.repeat)
            server_cpu, client_cpu = cpu_per_call(proc.pid, n, lambda k: bench_market(client, k))
            load = Path("/proc/loadavg").read_text().split()[0]
            placed = len(client.get_all_orders(symbol="BTCUSDT", limit=1000))
        finally:
            proc.terminate()
            proc.communicate(timeout=20)
        engine = bench_in_process(store.root, start, accounts, n * 5, args.repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"exchange emulator order throughput ({n} orders, best of {args.repeat}; emulator in "
          f"its own process; python-binance 1.0.37 sync Client, HMAC-signed; load average "
          f"{load} on {os.cpu_count()} cores)")
    rows = [
        ("MARKET orders, python-binance create_order", market, "orders/s"),
        ("LIMIT place + cancel, python-binance", cycles, "cycles/s"),
        ("  = LIMIT orders placed", cycles, "orders/s"),
        ("  = signed requests", 2 * cycles, "requests/s"),
        ("CPU per MARKET order: emulator process", server_cpu * 1e6, "us"),
        ("CPU per MARKET order: client process", client_cpu * 1e6, "us"),
        ("  => a free core each: 1 / max(server, client)", 1 / max(server_cpu, client_cpu),
         "orders/s"),
        ("  => one core, serial: 1 / (server + client)", 1 / (server_cpu + client_cpu),
         "orders/s"),
        ("peer: python-binance ping (unsigned floor)", ping, "requests/s"),
        ("peer: MARKET orders, bare requests.Session", bare, "orders/s"),
        ("peer: Exchange.place in process (no HTTP)", engine, "orders/s"),
    ]
    for name, value, unit in rows:
        print(f"  {name:<46} {value:>9,.0f} {unit}")
    print(f"  MARKET orders vs ping round trip: {market / ping:.2f}x; vs bare requests: "
          f"{market / bare:.2f}x; HTTP+client share of an order: {1 - market / engine:.0%}")
    print(f"  goal > 500 MARKET orders/s: {'met' if market > 500 else 'NOT met'}"
          f" ({placed} orders listed by allOrders afterwards)")


if __name__ == "__main__":
    main()
