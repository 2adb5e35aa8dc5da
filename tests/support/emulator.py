"""Fixtures for tests that run the exchange emulator on real candles (import them by name).

    from support.emulator import emulator, source_store  # noqa: F401  (pytest fixtures)

`source_store` is a store made once per session from the first rows of three real symbols in
`shared_data` (BTCUSDT and SOLUSDT with the six CSV columns; ETHUSDT also with the four
Binance extras, derived from its own rows, so the 12-column path is exercised). `emulator`
is a factory: `with emulator(start_ms=..., forming_candle=...) as (url, control):` serves a
store on 127.0.0.1 with a frozen replay clock.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from binance_cluster.exchange.emulator import EmulatorConfig, EmulatorControl, run_emulator
from binance_cluster.candles.store import CandleStore
from binance_cluster.exchange.transport import TimeDeps
from binance_cluster.types import MINUTE_MS, Candles
from support.real_data import first_rows

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
ROWS = 2600


def with_extras(c: Candles) -> Candles:
    """`c` plus quote volume, trades and taker volumes derived from its own rows (test data);
    taker_buy_quote keeps full float precision to exercise exact decimal encoding."""
    cols = c.columns()
    mid = (c.high + c.low) / 2
    cols["quote_volume"] = np.round(c.volume * mid, 8)
    cols["trades"] = (c.volume * 3).astype(np.int64) + 1
    cols["taker_buy_base"] = np.round(c.volume * 0.45, 8)
    cols["taker_buy_quote"] = c.volume * 0.45 * mid
    return Candles.from_columns(cols)


def build_store(root: Path, shared_data: Path, symbols=SYMBOLS, rows: int = ROWS,
                drop: dict[str, list[int]] | None = None) -> CandleStore:
    """A store of real candles; `drop` removes row indices per symbol to make exchange gaps."""
    store = CandleStore(root)
    for symbol in symbols:
        c = first_rows(shared_data, symbol, rows)
        if symbol == "ETHUSDT":
            c = with_extras(c)
        if drop and symbol in drop:
            keep = np.setdiff1d(np.arange(len(c)), drop[symbol])
            c = Candles.from_columns({k: v[keep] for k, v in c.columns().items()})
        store.append(symbol, "1m", c, source="tests: shared_data")
    return store


def first_open(store: CandleStore, symbol: str = "BTCUSDT") -> int:
    return store.span(symbol, "1m")[0]


def all_closed_at(store: CandleStore) -> int:
    """A replay time at which every stored candle has closed (one minute after the last)."""
    return max(store.span(s, "1m")[1] for s in store.symbols()) + 2 * MINUTE_MS


@pytest.fixture(scope="session")
def source_store(shared_data, tmp_path_factory) -> CandleStore:
    """Three real symbols, 2,600 one-minute candles each (ETHUSDT with extras)."""
    return build_store(tmp_path_factory.mktemp("source") / "store", shared_data)


@pytest.fixture
def emulator(source_store):
    """Factory: `with emulator(store=..., **config) as (base_url, control)`; replay frozen."""

    @contextmanager
    def start(store: CandleStore | None = None, **overrides):
        store = store or source_store
        settings = {"speed": 0.0, "start_ms": all_closed_at(store)}
        settings.update(overrides)
        with run_emulator(EmulatorConfig(store=store.root, **settings)) as url:
            yield url, EmulatorControl(url)

    return start


def binance_client(base_url: str, timeout: float | None = None):
    """A real python-binance 1.0.37 Client pointed at `base_url`."""
    from binance import Client

    params = {"timeout": timeout} if timeout is not None else None
    client = Client(None, None, ping=False, requests_params=params)
    client.API_URL = base_url.rstrip("/") + "/api"
    return client


def same_candles(a: Candles, b: Candles, extras: bool = True) -> bool:
    """Whether two candle sets are identical (NaN equal to NaN), extras of `a` included."""
    if not np.array_equal(a.open_time, b.open_time):
        return False
    names = ["open", "high", "low", "close", "volume"] + (list(a.extras) if extras else [])
    for name in names:
        x, y = a.column(name), b.column(name)
        if not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
            return False
    return True


def fresh_weight_window(control: EmulatorControl) -> None:
    """Move the emulator's server clock to 1 s into a new minute, so a test's requests all fall
    in one weight window (a real minute boundary during the test would reset the count)."""
    server = control.clock()["server"]
    control.advance_server(60_000 - server % 60_000 + 1_000)


class FakeTime:
    """Injected sleep and clock: sleeping advances the emulator's server clock instead of
    waiting, and our clock with it unless `signed` (python-binance signs with the real clock,
    so a signed caller's clock must stay real: it resyncs on the -1021 that follows)."""

    def __init__(self, control=None, signed: bool = False):
        self.control = control
        self.slept: list[float] = []
        self.offset = 0.0
        self.signed = signed

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if not self.signed:
            self.offset += seconds
        if self.control is not None:
            self.control.advance_server(int(round(seconds * 1000)))

    def clock(self) -> float:
        return time.time() + self.offset

    @property
    def deps(self) -> TimeDeps:
        return TimeDeps(sleep=self.sleep, clock=self.clock)
