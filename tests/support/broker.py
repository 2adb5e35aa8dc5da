"""Fixtures and helpers for the broker tests: a trading emulator with one funded account on
real candles, brokers pointed at it, and a fault-free python-binance client to check the
account's true state.

    from support.broker import trading  # noqa: F401  (pytest fixture)
    with trading(balances={"USDT": "10000"}) as venue:
        broker = venue.broker(timeout_s=0.3)
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from binance_cluster.exchange.broker.base import Balance, Fill, Order
from binance_cluster.exchange.broker.binance import (BinanceBroker, BinanceBrokerConfig, fill_from_trade,
                                            order_from)
from binance_cluster.exchange.emulator import EmulatorConfig, EmulatorControl, run_emulator
from binance_cluster.exchange.transport import RetryPolicy, TimeDeps
from binance_cluster.candles.store import CandleStore
from binance_cluster.types import MINUTE_MS

KEY = "bcTestKey7Qm2Xv9Lp4Rt8Wn3Zy6Hs1Jd5Fg0Kc2Ve7Bu4Na9Mx3Py8Ow1Lz6"
SECRET = "bcTestSecret3Hq8Zr5Mv2Xk9Np4Wt7Lc1Yb6Fs0Jg3Dd8Ue5Ra2Ki7Oh4Tn9"
ENV = {"TEST_BINANCE_API_KEY": KEY, "TEST_BINANCE_API_SEC": SECRET}
START_MINUTE = 1500           # replay starts this many minutes after the first stored candle
FAST_RETRY = RetryPolicy(attempts=6, base_s=0.01, cap_s=0.05, rate_limit_waits=10)


class Sleeps:
    """An injectable sleep that records every wait; sleeps for real up to `cap` seconds."""

    def __init__(self, cap: float | None = None):
        self.calls: list[float] = []
        self.cap = cap

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        wait = seconds if self.cap is None else min(seconds, self.cap)
        if wait > 0:
            time.sleep(wait)


def warm_fill_kernels() -> None:
    """Load (or compile) the numba fill rules once, so the emulator's first fill is fast."""
    from binance_cluster.kernels import fills

    fills.market_buy_price(100.0, 0.001, 0.01)
    fills.market_sell_price(100.0, 0.001, 0.01)
    fills.floor_to_step(1.2345, 0.01)
    fills.ceil_to_step(1.2345, 0.01)
    fills.notional_ok(1.0, 10.0, 5.0)
    fills.fee(100.0, 0.001)
    fills.sell_limit_fill(1.0, 2.0, 1.5)
    fills.buy_limit_fill(1.0, 0.5, 0.7)
    fills.sell_stop_fill(1.0, 0.5, 0.7)
    fills.buy_stop_fill(1.0, 2.0, 1.5)
    fills.long_exit_fill(1.0, 2.0, 0.5, 0.7, 1.5)


def keyed_client(base_url: str, key: str = KEY, secret: str = SECRET):
    """A real python-binance Client with the test key: the fault-free view of the account."""
    from binance import Client

    client = Client(key, secret, ping=False, requests_params={"timeout": 10})
    client.API_URL = base_url.rstrip("/") + "/api"
    return client


def account_truth(client, symbols) -> dict:
    """The account as a fault-free `client` sees it: every order (allOrders) and fill
    (myTrades) of `symbols`, the open orders and the balances."""
    orders = {s: [order_from(o) for o in client.get_all_orders(symbol=s, limit=1000)]
              for s in symbols}
    fills = {s: sorted((fill_from_trade(t) for t in client.get_my_trades(symbol=s, limit=1000)),
                       key=lambda f: f.trade_id) for s in symbols}
    opened = sorted((order_from(o) for o in client.get_open_orders()),
                    key=lambda o: (o.time_ms, o.order_id))
    balances = {b["asset"]: Balance(b["asset"], Decimal(b["free"]), Decimal(b["locked"]))
                for b in client.get_account()["balances"]}
    return {"orders": orders, "fills": fills, "open": opened, "balances": balances}


@dataclass
class Venue:
    """A running trading emulator and what tests need to talk to it."""

    url: str
    control: EmulatorControl
    store: CandleStore
    start_ms: int
    sleeps: list[Sleeps] = field(default_factory=list)

    def broker(self, sleep: Sleeps | None = None, **config) -> BinanceBroker:
        """A BinanceBroker on this emulator (fast retries unless `retry=` is given)."""
        settings = {"base_url": self.url, "timeout_s": 2.0, "retry": FAST_RETRY}
        settings.update(config)
        sleep = sleep or Sleeps()
        self.sleeps.append(sleep)
        return BinanceBroker(BinanceBrokerConfig(**settings), env=ENV,
                             deps=TimeDeps(sleep=sleep))

    def client(self):
        return keyed_client(self.url)

    def truth(self, symbols: tuple[str, ...]) -> dict:
        """The account as a fault-free client sees it (`account_truth`)."""
        return account_truth(self.client(), symbols)


def order_key(o: Order) -> tuple:
    """What must agree between two views of one order."""
    return (o.symbol, o.client_id, o.side, o.type, o.status, o.quantity, o.executed_qty,
            o.cumulative_quote, o.price, o.order_id)


def fill_key(f: Fill) -> tuple:
    return (f.symbol, f.order_id, f.trade_id, f.side, f.price, f.qty, f.quote_qty,
            f.commission, f.commission_asset, f.time_ms, f.is_maker)


@pytest.fixture
def trading(source_store, tmp_path):
    """Factory: `with trading(balances=..., **emulator_config) as venue` (replay frozen at a
    candle open `START_MINUTE` minutes into the stored data)."""
    warm_fill_kernels()

    @contextmanager
    def start(balances: dict | None = None, maker: str = "0.001", taker: str = "0.001",
              **overrides):
        accounts = tmp_path / f"accounts-{time.monotonic_ns()}.json"
        accounts.write_text(json.dumps({KEY: {
            "secret": SECRET, "balances": balances or {"USDT": "10000"},
            "maker_commission": maker, "taker_commission": taker}}))
        first = source_store.span("BTCUSDT", "1m")[0]
        start_ms = first + START_MINUTE * MINUTE_MS
        settings = {"store": source_store.root, "speed": 0.0, "start_ms": start_ms,
                    "accounts": accounts}
        settings.update(overrides)
        with run_emulator(EmulatorConfig(**settings)) as url:
            yield Venue(url, EmulatorControl(url), source_store, start_ms)

    return start
