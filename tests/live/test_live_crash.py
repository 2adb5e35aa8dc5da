"""Crash and restart: `mpirun -n 2 binance-cluster live` over a day of real candles against the
emulator (replay clock stepped bar by bar, the real python-binance client over HTTP, stops and
targets resting on the exchange as OCO lists), killed with SIGKILL again and again at points
of its order path chosen by a seeded RNG (`live.crash`: before a send, after a send before its
answer is journaled, between an entry's fill and its protective order), and with its worker
rank killed mid-run; each time restarted on the same journal, store and emulator until the day
is done. Then the emulator's order history holds no duplicate client id and no order beyond
what the backtest's trades need, every fill of the account is in the journal, and the trades
and final balances are the backtest's."""

from __future__ import annotations

import os
import random
import signal
import time
from decimal import Decimal
from pathlib import Path

import pytest

from binance_cluster.backtest.results import read_trades
from binance_cluster.candles.store import CandleStore
from binance_cluster.exchange.broker.ids import list_id_of
from binance_cluster.exchange.emulator import EmulatorControl
from binance_cluster.live.crash import POINTS, VARIABLE
from binance_cluster.live.journal import Journal
from binance_cluster.types import interval_ms
from support.live import (DAY0, ENV, KEY, SECRET, build_source, exchange_rules, journal_trades,
                          live_job_text, rank_pid, run_stepped, same_trades, stepped_emulator)

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "LINKUSDT", "SUIUSDT", "AVAXUSDT", "LTCUSDT")
INTERVAL = "30m"
DAYS, HISTORY_DAYS = 5, 3
FEE, SLIPPAGE, CASH = 0.001, 0.0002, 10_000.0
STRATEGY = ("[strategy.params]\nfast = 3\nslow = 8\n"
            "[risk]\nstop_loss = 0.03\ntake_profit = 0.05\n")
SEED = 9
KILLS_PER_POINT = 2
WORKER_DEATHS = 2
EXIT_BOUND_S = 30.0        # a dead worker ends the whole job well within this


def signed_client(base_url: str):
    """A python-binance Client with the live job's key: the account as the exchange keeps it."""
    from binance import Client

    client = Client(KEY, SECRET, ping=False, requests_params={"timeout": 10})
    client.API_URL = base_url.rstrip("/") + "/api"
    return client


def job_processes(marker: str) -> list[int]:
    """Pids of processes whose command line holds `marker` (the job file's path)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def assert_no_orphans(marker: str) -> None:
    deadline = time.monotonic() + 20
    while job_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = job_processes(marker)
    for pid in left:                       # do not leave them behind for the next test
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"ranks left running after the job ended: {left}"


def next_bar(journal: Path, first: int, bar_ms: int) -> int:
    """The first bar the journal has not handled."""
    if not journal.exists():
        return first
    with Journal(journal, readonly=True) as j:
        last = j.bars(last=1)
    return last[0].bar_ms + bar_ms if last else first


@pytest.fixture(scope="module")
def source(shared_data, tmp_path_factory) -> CandleStore:
    return build_source(shared_data, tmp_path_factory.mktemp("crash") / "source", SYMBOLS, DAYS)


@pytest.mark.slow
@pytest.mark.mpi
def test_killed_and_restarted_the_job_trades_as_the_backtest(source, tmp_path, cli):
    bar_ms = interval_ms(INTERVAL)
    bars = 86_400_000 // bar_ms
    first = DAY0 + HISTORY_DAYS * 86_400_000
    end = first + bars * bar_ms
    out = tmp_path / "out"
    journal = out / "journal.sqlite"
    heartbeat = out / "heartbeat.json"
    rng = random.Random(SEED)
    kills = [p for p in POINTS for _ in range(KILLS_PER_POINT)]
    rng.shuffle(kills)
    plan = [(p, rng.randint(1, 3)) for p in kills]
    # the worker dies after a random handled bar of two runs of its own
    for at in (2, 6)[:WORKER_DEATHS]:
        plan[at:at] = [("worker", rng.randint(1, 4))]
    started = time.monotonic()
    runs, done, exits = [], [], []
    with stepped_emulator(source, tmp_path, first, bar_ms, CASH, FEE, SLIPPAGE) as url:
        control = EmulatorControl(url)
        job = tmp_path / "crash.toml"
        job.write_text(live_job_text("sma_cross", STRATEGY, SYMBOLS, INTERVAL,
                                     tmp_path / "live-store", out, first, end,
                                     exchange_rules(url, SYMBOLS), CASH, FEE, SLIPPAGE))
        marker = str(job)
        for what, n in plan + [("finish", 0)]:
            bar = next_bar(journal, first, bar_ms)
            if bar >= end:
                break
            env = dict(ENV)
            on_bar = None
            if what in POINTS:
                env[VARIABLE] = f"{what}:{n}"
            elif what == "worker":
                def on_bar(k, proc, n=n):
                    if k + 1 != n:
                        return
                    pid = rank_pid(1, marker)
                    killed = time.monotonic()
                    os.kill(pid, signal.SIGKILL)
                    proc.wait(timeout=120)
                    exits.append((time.monotonic() - killed, proc.returncode))
            control.limits(reset=True)     # restarts in one real minute: a fresh weight window
            run = run_stepped(job, url, control, bar, (end - bar) // bar_ms, bar_ms, heartbeat,
                              env=env, on_bar=on_bar, bar_timeout=120)
            assert_no_orphans(marker)
            runs.append((what, n, bar, run))
            if run.code == 0:
                assert next_bar(journal, first, bar_ms) == end, run.stderr[-3000:]
            else:
                assert run.code != 0 and what != "finish", run.stderr[-3000:]
                done.append(what)
        assert next_bar(journal, first, bar_ms) == end
        client = signed_client(url)
        orders = {s: client.get_all_orders(symbol=s) for s in SYMBOLS}
        trades = {s: client.get_my_trades(symbol=s) for s in SYMBOLS}
        balances = {b["asset"]: Decimal(b["free"]) + Decimal(b["locked"])
                    for b in client.get_account()["balances"]}
    seconds = time.monotonic() - started
    # every planned kill happened, each restart reconciled
    assert sorted(done) == sorted(kills + ["worker"] * WORKER_DEATHS), done
    assert len(exits) == WORKER_DEATHS
    for seconds_to_exit, code in exits:
        assert code != 0 and seconds_to_exit < EXIT_BOUND_S
    for what, n, bar, run in runs[1:]:
        line = next((x for x in run.stdout.splitlines() if x.startswith("reconciled with")), "")
        assert line.endswith(" 0 foreign order(s), 0 mismatch(es)"), run.stdout[-2000:]

    code, text, err = cli("backtest", job, "--store", source.root, "--output", tmp_path / "bt",
                          "--no-progress")
    assert code == 0, err
    for what, n, bar, run in runs:
        print(f"{what}:{n} from bar {bar}: exit {run.code}, {len(run.bars)} bars, "
              f"{run.seconds:.1f} s")
    print(f"worker deaths: job exit {[(round(s, 2), c) for s, c in exits]} s after the kill")
    print(f"{len(runs)} runs, {seconds:.1f} s of live runs")

    backtest = read_trades(tmp_path / "bt")
    closed, still_open = journal_trades(journal)
    n = same_trades(backtest, closed, still_open, end, bar_ms)
    assert n >= 5

    # the exchange's history: no client id twice, every order journaled before it was sent,
    # no order the backtest's trades do not need
    all_orders = [o for s in SYMBOLS for o in orders[s]]
    ids = [o["clientOrderId"] for o in all_orders]
    assert len(ids) == len(set(ids))
    with Journal(journal, readonly=True) as j:
        intents = {i.client_id for i in j.intents()}
        journaled = {(f.symbol, f.trade_id) for f in j.fills()}
        held = {s: p.quantity for s, p in j.positions().items()}
        assets = j.assets()
    assert all(cid in intents or list_id_of(cid) in intents for cid in ids)
    late_buys = [t for t in still_open + closed if t["entry"]["time"] >= end]
    late_sells = [t for t in closed if t["exit"]["time"] >= end]
    buys = [o for o in all_orders if o["side"] == "BUY"]
    assert len(buys) == len(backtest["pnl"]) + len(late_buys)
    assert all(o["status"] == "FILLED" and o["type"] == "MARKET" for o in buys)
    market_sells = [o for o in all_orders if o["side"] == "SELL" and o["type"] == "MARKET"]
    at_open = sum(1 for r in backtest["exit_reason"] if r in ("signal", "max_hold"))
    assert len(market_sells) == at_open + len(late_sells)
    lists = {list_id_of(o["clientOrderId"]) for o in all_orders if list_id_of(o["clientOrderId"])}
    restarts = len(runs) - 1
    print(f"{n} trades; orders: {len(buys)} buys, {len(market_sells)} market sells, "
          f"{len(lists)} protective lists for {len(buys)} entries over {restarts} restarts")
    assert len(buys) <= len(lists) <= len(buys) + restarts
    assert len(all_orders) == len(buys) + len(market_sells) + 2 * len(lists)
    assert sum(1 for r in backtest["exit_reason"] if r == "take_profit") >= 1

    # every fill is journaled, and only those
    assert journaled == {(s, t["id"]) for s in SYMBOLS for t in trades[s]}

    # the final balances: the coins the fills leave, the backtest's cash
    for s in SYMBOLS:
        assert balances.get(assets[s][0], Decimal(0)) == held.get(s, Decimal(0)), s
    ended = backtest["exit_reason"] == "end"
    cash = (CASH + float(sum(backtest["pnl"][~ended]))
            - float(sum(backtest["entry_price"][ended] * backtest["quantity"][ended]))
            + float(sum(t["exit"]["quote"] - t["exit"]["fee"] for t in late_sells))
            - float(sum(t["entry"]["quote"] for t in late_buys)))
    assert abs(float(balances["USDT"]) - cash) <= 1e-6, (balances["USDT"], cash)
