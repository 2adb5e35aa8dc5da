"""Benchmark the one order engine: the paper broker against the exchange emulator, orders
per second on the same random order sequence, side by side in one run.

    .venv/bin/python bench/bench_order_engine.py [DATA_DIR] [--steps N] [--repeat N]

A store is made from real BTCUSDT, ETHUSDT and SOLUSDT 1m candles of the shared data. One
random order script (`tests/support/order_sequences.py`: MARKET, LIMIT GTC/IOC/FOK, stop
and take-profit limits both ways, SELL OCO lists, cancels, clock steps; the sequence of the
paper/emulator property test) is run on:

- the paper broker on the store's candles in memory (`CandleFeed`): the engine plus the
  broker adapter, no HTTP;
- the paper broker on the emulator's public endpoints (`ExchangeFeed`: candles and prices over
  HTTP, the order engine local);
- `BinanceBroker` on the emulator (`binance-cluster exchange-sim` in its own process, python-
  binance 1.0.37, HMAC-signed), with its default query-before-submit and without it.

Each run starts from a fresh account (a new emulator process for the emulator runs) and the
same replay time; clock steps are `set_now` on paper and `POST /admin/clock` on the emulator
(both counted). Requests = submits + cancels. The outcomes (orders, errors) of every run
must be identical; the bench says so, and stops if they are not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from bench_emulator_orders import start_emulator as emulator_process  # noqa: E402
from support.order_sequences import Advance, apply, random_script  # noqa: E402

from binance_cluster.candles.store import CandleStore  # noqa: E402
from binance_cluster.exchange.broker.binance import BinanceBroker, BinanceBrokerConfig  # noqa: E402
from binance_cluster.exchange.broker.feeds import CandleFeed, ExchangeFeed  # noqa: E402
from binance_cluster.exchange.broker.paper import PaperBroker, PaperConfig  # noqa: E402
from binance_cluster.exchange.emulator import EmulatorControl  # noqa: E402
from binance_cluster.types import MINUTE_MS  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "binance-usdm-1m"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
ROWS = 20_000
KEY, SECRET = "benchEngineKey1", "benchEngineSecret1"
ENV = {"TEST_BINANCE_API_KEY": KEY, "TEST_BINANCE_API_SEC": SECRET}
BALANCES = {"USDT": "30000", "BTC": "0.2", "ETH": "6", "SOL": "120"}
MAKER, TAKER, SLIPPAGE_BPS = "0.0008", "0.001", 5


def make_store(data: Path, root: Path) -> tuple[CandleStore, int]:
    from support.real_data import first_rows

    store = CandleStore(root)
    for symbol in SYMBOLS:
        store.append(symbol, "1m", first_rows(data, symbol, ROWS), source="bench")
    start = store.span("BTCUSDT", "1m")[0] + 1500 * MINUTE_MS
    return store, start


def start_emulator(store: Path, start_ms: int, accounts: Path) -> tuple[subprocess.Popen, str]:
    return emulator_process(store, start_ms, accounts, "--slippage-bps", str(SLIPPAGE_BPS),
                            "--forming-candle", "synthetic")


def run(broker, steps, advance) -> tuple[float, list]:
    """(seconds, outcomes) of the script on `broker`; `advance(ms)` moves its clock."""
    outcomes = []
    t0 = time.perf_counter()
    for step in steps:
        if isinstance(step, Advance):
            advance(step.ms)
        else:
            outcomes.append(apply(broker, step))
    return time.perf_counter() - t0, outcomes


def paper_config() -> PaperConfig:
    return PaperConfig(maker_fee=float(MAKER), taker_fee=float(TAKER),
                       slippage=SLIPPAGE_BPS / 10_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(DEFAULT_DATA))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-engine-"))
    try:
        store, start = make_store(Path(args.data), tmp / "store")
        accounts = tmp / "accounts.json"
        accounts.write_text(json.dumps({KEY: {"secret": SECRET, "balances": BALANCES,
                                              "maker_commission": MAKER,
                                              "taker_commission": TAKER}}))
        candles = {s: store.read(s, "1m") for s in SYMBOLS}
        probe, url = start_emulator(store.root, start, accounts)
        try:
            filters = {s: BinanceBroker(BinanceBrokerConfig(base_url=url), env=ENV).filters(s)
                       for s in SYMBOLS}
        finally:
            probe.terminate()
            probe.communicate(timeout=20)
        scout = CandleFeed(candles, filters, now_ms=start)

        def price_at(symbol: str, now: int):
            quote = scout.market(symbol, now)
            return None if quote is None else quote.price

        steps = random_script(random.Random(2026), SYMBOLS, price_at, start, args.steps, "b")
        n = sum(1 for s in steps if not isinstance(s, Advance))
        results: dict[str, tuple[float, list]] = {}

        def best(name: str, once) -> None:
            runs = [once() for _ in range(args.repeat)]
            results[name] = min(runs, key=lambda r: r[0])
            if any(r[1] != runs[0][1] for r in runs):
                raise SystemExit(f"{name}: repeated runs disagree")

        def paper_memory():
            feed = CandleFeed(candles, filters, now_ms=start)
            paper = PaperBroker(feed, BALANCES, paper_config())
            clock = [start]

            def advance(ms: int) -> None:
                clock[0] += ms
                feed.set_now(clock[0])
            return run(paper, steps, advance)

        def on_emulator(kind: str):
            proc, url = start_emulator(store.root, start, accounts)
            try:
                control = EmulatorControl(url)
                if kind == "paper":
                    broker = PaperBroker(ExchangeFeed(url, timeout_s=10), BALANCES,
                                         paper_config())
                else:
                    broker = BinanceBroker(BinanceBrokerConfig(
                        base_url=url, check_before_submit=kind == "binance"), env=ENV)
                broker.filters("BTCUSDT")  # exchangeInfo read before the clock starts
                return run(broker, steps, control.advance_replay)
            finally:
                proc.terminate()
                proc.communicate(timeout=20)

        paper_memory()  # warm-up: numba kernels, caches
        best("paper broker, candles in memory (CandleFeed)", paper_memory)
        best("paper broker, emulator's public endpoints", lambda: on_emulator("paper"))
        best("emulator via BinanceBroker (query first)", lambda: on_emulator("binance"))
        best("emulator via BinanceBroker (no query first)", lambda: on_emulator("direct"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    names = list(results)
    reference = results[names[0]][1]
    agree = all(r[1] == reference for r in results.values())
    kinds: dict[str, int] = {}
    for o in reference:
        key = o[1][4] if o[0] == "order" else f"{o[1]} {o[2]}"
        kinds[key] = kinds.get(key, 0) + 1
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"order engine: paper broker against the exchange emulator, one script of "
          f"{len(steps)} steps ({n} submits and cancels, {len(steps) - n} clock steps) on "
          f"real 1m candles of {', '.join(SYMBOLS)}; best of {args.repeat}; load average "
          f"{load} on {os.cpu_count()} cores")
    print("  outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    paper_rate = n / results[names[0]][0]
    for name in names:
        seconds = results[name][0]
        print(f"  {name:<46} {n / seconds:>9,.0f} requests/s  {seconds * 1e3 / n:>7.3f} ms "
              f"each  ({paper_rate * seconds / n:>6.1f}x the paper broker's time)")
    print(f"  identical outcomes in every run: {'yes' if agree else 'NO'}")
    if not agree:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
