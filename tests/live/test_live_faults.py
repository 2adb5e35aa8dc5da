"""Faults: the parity replay (`mpirun -n 2 binance-cluster live`, testnet mode, the real
python-binance client over HTTP, the emulator replaying real 1m candles with its clock stepped
bar by bar) with the emulator injecting 5xx answers, 429 and 418 refusals with Retry-After,
delays past the client's timeout (the request still runs: a timeout whose order went through)
and dropped answers (the request ran, the answer is lost: where a blind re-send would buy
twice) on every endpoint the loop calls, signed (order, orderList, account, myTrades) and
public (klines, time, exchangeInfo, bookTicker).

The faults are seeded and drawn per endpoint (`emulator/faults.py`): rank 0 calls the signed
endpoints one at a time, so the faults on orders are the same on every run. The rates are a
few percent of every request; the seed is one whose draws hit the order endpoints with every
kind early (the test asserts they did, by the emulator's own counts).

What must hold: the run completes (exit 0, every bar handled and none skipped); the exchange
holds no client id twice and no order a fault-free run would not have placed; every fill the
exchange made is in the journal, and the journal's positions and cash are the account's.

- Signal exits: the trades equal the backtest's (`same_trades`), as in the parity proof. No
  bar is skipped: a public fetch is retried up to six times, so a skip needs six faults in a
  row on one request (about 1e-7 at these rates); were one skipped, the run would differ from
  the backtest legitimately and this test would say so rather than hide it.
- Protective exits on the exchange (OCO take profit / stop loss, cancelled before a signal
  exit): the trades, orders (client id, kind, status, quantities, prices) and fills equal a
  fault-free live run's. (The backtest differs from live protective exits where the README
  says so, so the fault-free run is the reference here.)
"""

from __future__ import annotations

import re
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from binance_cluster.backtest.results import read_trades
from binance_cluster.candles.store import CandleStore
from binance_cluster.exchange.emulator import EmulatorControl
from binance_cluster.exchange.broker.ids import list_id_of
from binance_cluster.live.journal import Journal
from binance_cluster.types import interval_ms
from support.broker import account_truth, fill_key, keyed_client
from support.live import (DAY0, KEY, SECRET, build_source, exchange_rules, journal_trades,
                          live_job_text, run_stepped, same_trades, stepped_emulator)

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "LINKUSDT", "SUIUSDT", "AVAXUSDT", "LTCUSDT")
INTERVAL = "30m"
BAR_MS = interval_ms(INTERVAL)
BARS = 86_400_000 // BAR_MS                 # the traded day
DAYS, HISTORY_DAYS = 5, 3
FIRST = DAY0 + HISTORY_DAYS * 86_400_000
FEE, SLIPPAGE, CASH = 0.001, 0.0002, 10_000.0
SIGNALS = "[strategy.params]\nfast = 3\nslow = 8\n[risk]\nstop_loss = false\ntake_profit = false\n"
PROTECTED = "[strategy.params]\nfast = 3\nslow = 8\n[risk]\nstop_loss = 0.006\ntake_profit = 0.008\n"
# the client gives up after TIMEOUT_S; an injected delay outlasts it, and the request still
# runs inside its recvWindow (the broker waits that out, then looks the order up)
TIMEOUT_S, DELAY_S, RECV_WINDOW_MS = 0.5, 1.0, 1500
REQUESTS = f"timeout_seconds = {TIMEOUT_S}\nrecv_window_ms = {RECV_WINDOW_MS}\n"
RATES = {"5xx": 0.025, "429": 0.015, "418": 0.005, "delay": 0.015, "drop": 0.02}
# POST /api/v3/order draws drop, 5xx, delay and 429 in its first 8 requests, POST
# /api/v3/orderList/oco drop and delay in its first 7, DELETE /api/v3/order delay at its 2nd
SEED = 705432
KINDS = tuple(RATES)
ORDER_PATHS = ("/api/v3/order", "/api/v3/orderList/oco")
SIGNED_PATHS = ("/api/v3/account", "/api/v3/myTrades")
PUBLIC_PATHS = ("/api/v3/klines", "/api/v3/time", "/api/v3/exchangeInfo")


@pytest.fixture(scope="module")
def source(shared_data, tmp_path_factory) -> CandleStore:
    """The emulator's store: five days of eight real symbols, 1m, from 2025-05-05."""
    return build_source(shared_data, tmp_path_factory.mktemp("faults") / "source", SYMBOLS, DAYS)


def run_live(source: CandleStore, root: Path, params_and_risk: str, exits: str,
             faults: dict | None) -> dict:
    """The day's stepped live run (faults on when given), then the account as a fault-free
    client sees it; the job, the run, the emulator's fault counts, the journal's trades."""
    out = root / "out"
    root.mkdir(parents=True, exist_ok=True)
    with stepped_emulator(source, root, FIRST, BAR_MS, CASH, FEE, SLIPPAGE) as url:
        control = EmulatorControl(url)
        job = root / "faults.toml"                      # one job name: the same client ids
        job.write_text(live_job_text("sma_cross", params_and_risk, SYMBOLS, INTERVAL,
                                     root / "live-store", out, FIRST, FIRST + BARS * BAR_MS,
                                     exchange_rules(url, SYMBOLS), CASH, FEE, SLIPPAGE,
                                     extra=f'{REQUESTS}exits = "{exits}"\n'))
        if faults is not None:
            control.set_faults(**faults)
        run = run_stepped(job, url, control, FIRST, BARS, BAR_MS, out / "heartbeat.json",
                          bar_timeout=120.0)
        counts = control.faults()
        control.set_faults()
        truth = account_truth(keyed_client(url, KEY, SECRET), SYMBOLS)
    return dict(job=job, run=run, faults=counts, truth=truth, journal=out / "journal.sqlite",
                trades=journal_trades(out / "journal.sqlite"))


def check_completed(r: dict) -> None:
    run = r["run"]
    assert run.code == 0, run.stderr[-3000:]
    assert run.bars == [FIRST + k * BAR_MS for k in range(BARS)]
    with Journal(r["journal"], readonly=True) as j:
        bars = j.bars()
    assert [b.bar_ms for b in bars] == run.bars
    assert [b.skipped for b in bars] == [{}] * BARS
    assert run.stdout.count(" UTC  latency ") == BARS


def check_account(r: dict) -> dict[str, list]:
    """No client id twice on the exchange, each one journaled; every exchange fill journaled
    and nothing else; the journal's positions and cash equal the account's balances. Returns
    the exchange's orders by symbol."""
    truth = r["truth"]
    with Journal(r["journal"], readonly=True) as j:
        intents = {i.client_id: i for i in j.intents()}
        journal_fills = sorted(fill_key(f) for f in j.fills())
        positions = j.positions()
    orders = truth["orders"]
    placed = [o.client_id for s in SYMBOLS for o in orders[s]]
    twice = [cid for cid, n in Counter(placed).items() if n > 1]
    assert not twice, twice
    for cid in placed:                      # an OCO's legs belong to the list's intent
        assert cid in intents or list_id_of(cid) in intents, cid
    assert journal_fills == sorted(fill_key(f) for s in SYMBOLS for f in truth["fills"][s])
    balances = truth["balances"]
    cash = Decimal(repr(CASH))
    for s in SYMBOLS:
        base = s.removesuffix("USDT")
        held = positions[s].quantity if s in positions else Decimal(0)
        assert held == balances[base].total if base in balances else held == 0, s
        for f in truth["fills"][s]:
            quote_fee = f.commission if f.commission_asset == "USDT" else 0
            cash += (f.quote_qty - quote_fee) if f.side == "SELL" else -f.quote_qty - quote_fee
    assert balances["USDT"].total == cash
    return orders


def check_faults(r: dict) -> dict[str, Counter]:
    """Each kind was injected on the order endpoints, and faults hit the other signed and the
    public endpoints; every 429/418 was waited out for its Retry-After, every delay timed out."""
    by = r["faults"]["by_endpoint"]
    on = {}
    for group, paths in (("orders", ORDER_PATHS), ("signed", SIGNED_PATHS),
                         ("public", PUBLIC_PATHS)):
        on[group] = Counter()
        for endpoint, kinds in by.items():
            if endpoint.split(" ", 1)[1] in paths:
                on[group].update(kinds)
    assert all(on["orders"][k] > 0 for k in ("5xx", "429", "delay", "drop")), on["orders"]
    assert sum(on["signed"].values()) > 0 and sum(on["public"].values()) > 0, on
    counts = r["faults"]["counts"]
    assert all(counts[k] > 0 for k in KINDS), counts
    err = r["run"].stderr
    waits = len(re.findall(r"HTTP 4(?:29|18) \(.*\): waiting 1 s \(Retry-After\)", err))
    assert waits == counts["429"] + counts["418"]
    assert err.count("ReadTimeout") >= counts["delay"]
    return on


@pytest.mark.slow
@pytest.mark.mpi
def test_faults_on_every_endpoint_lose_and_duplicate_nothing_and_trade_as_the_backtest(
        source, tmp_path, cli):
    faults = dict(seed=SEED, rates=RATES, retry_after=1, delay_s=DELAY_S, status_5xx=503)
    r = run_live(source, tmp_path, SIGNALS, "exchange", faults)
    print(f"faults: {BARS} bars in {r['run'].seconds:.1f} s; injected {r['faults']['counts']}; "
          f"by endpoint {r['faults']['by_endpoint']}")
    check_completed(r)
    orders = check_account(r)
    on = check_faults(r)
    code, _, err = cli("backtest", r["job"], "--store", source.root, "--output", tmp_path / "bt",
                       "--no-progress")
    assert code == 0, err
    closed, still_open = r["trades"]
    trades = same_trades(read_trades(tmp_path / "bt"), closed, still_open, FIRST + BARS * BAR_MS)
    assert trades >= 5
    # every order on the exchange is one of those trades' entries and exits
    assert sum(len(orders[s]) for s in SYMBOLS) == 2 * len(closed) + len(still_open)
    print(f"faults: {trades} trades as the backtest; on orders {dict(on['orders'])}")


def order_view(o) -> tuple:
    """An order as two runs must agree on (the exchange's order ids aside)."""
    return (o.client_id, o.symbol, o.side, o.type, o.status, o.quantity, o.executed_qty,
            o.cumulative_quote, o.price, o.stop_price, o.time_ms)


def fill_view(f) -> tuple:
    return (f.symbol, f.side, f.price, f.qty, f.quote_qty, f.commission, f.commission_asset,
            f.time_ms, f.is_maker)


@pytest.mark.slow
@pytest.mark.mpi
def test_faults_with_protective_orders_on_the_exchange_trade_as_a_fault_free_run(source,
                                                                                  tmp_path):
    clean = run_live(source, tmp_path / "clean", PROTECTED, "exchange", None)
    check_completed(clean)
    faults = dict(seed=SEED, rates=RATES, retry_after=1, delay_s=DELAY_S,
                  status_5xx=503)
    r = run_live(source, tmp_path / "faults", PROTECTED, "exchange", faults)
    print(f"faults (protected): {BARS} bars in {r['run'].seconds:.1f} s (fault-free "
          f"{clean['run'].seconds:.1f} s); injected {r['faults']['counts']}; by endpoint "
          f"{r['faults']['by_endpoint']}")
    check_completed(r)
    orders = check_account(r)
    check_account(clean)
    on = check_faults(r)
    want = clean["truth"]
    kinds = Counter(o.type for s in SYMBOLS for o in want["orders"][s])
    assert kinds["LIMIT_MAKER"] >= 2 and kinds["MARKET"] >= 6, kinds   # OCOs and market orders
    assert any(o.status == "CANCELED" for s in SYMBOLS for o in want["orders"][s])
    assert any(o.type != "MARKET" and o.executed_qty > 0 for s in SYMBOLS for o in want["orders"][s])
    for s in SYMBOLS:
        assert sorted(map(order_view, orders[s])) == sorted(map(order_view, want["orders"][s])), s
        assert [fill_view(f) for f in r["truth"]["fills"][s]] == \
            [fill_view(f) for f in want["fills"][s]], s
    assert r["trades"] == clean["trades"]
    print(f"faults (protected): {len(clean['trades'][0])} trades as the fault-free run; on orders "
          f"{dict(on['orders'])}")
