"""The emulator's exchange: its accounts and API keys on the project's one order engine
(`engine.orders.OrderEngine`, where the matching rules are written), fed with the stored
candles of each symbol's base interval (the shortest stored one) on the replay clock.

This module only adapts: it serves the engine the current price and the closed candles, and
answers the engine's refusals with Binance's error codes (`rules.api_error`). Matching of
resting orders runs (`sync`) before every trading request, after every admin clock change and
periodically while the replay clock runs, so answers are deterministic under an admin-stepped
clock.
"""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

import numpy as np

from binance_cluster.engine.order_book import NewOco, NewOrder, Order, OrderList, Quote
from binance_cluster.engine.orders import OrderEngine
from binance_cluster.engine.reject import OrderRejected
from binance_cluster.engine.symbol_rules import SymbolFilters
from binance_cluster.exchange.emulator.accounts import Account, demo_accounts, load_accounts
from binance_cluster.exchange.emulator.keys import KeyEntry, verifier_for
from binance_cluster.exchange.emulator.rules import api_error
from binance_cluster.exchange.emulator.symbols import split_assets

if TYPE_CHECKING:
    from binance_cluster.exchange.emulator.state import EmulatorState

log = logging.getLogger(__name__)

UID_BASE = 1_000_000
ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class PriceArrays:
    """A symbol's base-interval candles (or a run of them) as the engine reads them."""

    __slots__ = ("open_time", "open", "high", "low", "step")

    def __init__(self, open_time: np.ndarray, open_: np.ndarray, high: np.ndarray,
                 low: np.ndarray, step: int):
        self.open_time, self.open, self.high, self.low, self.step = (open_time, open_, high,
                                                                     low, step)

    def closed(self, now: int) -> int:
        """Number of leading candles closed at `now`."""
        return int(np.searchsorted(self.open_time, now - self.step, side="right"))

    def run(self, lo: int, hi: int) -> "PriceArrays":
        """Candles lo..hi-1 (views)."""
        return PriceArrays(self.open_time[lo:hi], self.open[lo:hi], self.high[lo:hi],
                           self.low[lo:hi], self.step)


class Exchange:
    """Accounts, keys and the order engine of one emulator (used from its event loop)."""

    def __init__(self, state: "EmulatorState"):
        self._state = state
        config = state.config
        self._ids = random.Random(0x5EED)
        self.engine = OrderEngine(self, config.slippage_bps / 10_000,
                                  config.resting_from == "next", self.new_client_id)
        self.accounts = self.engine.accounts
        specs = load_accounts(config.accounts) if config.accounts is not None \
            else demo_accounts()
        where = str(config.accounts) if config.accounts is not None else "demo account"
        assets = sorted({a for s in state.symbols for a in self._assets(s)})
        self.keys: dict[str, KeyEntry] = {}
        for n, spec in enumerate(specs, start=1):
            account = self.engine.add_account(Account(UID_BASE + n, spec, assets))
            self.keys[spec.api_key] = KeyEntry(verifier_for(spec, f"{where}: account {n}"),
                                               account)
        self._arrays: dict[str, PriceArrays] = {}

    def _assets(self, symbol: str) -> tuple[str, str]:
        base, quote = split_assets(symbol)
        table = self._state.overrides.get(symbol, {})
        return str(table.get("base_asset", base)), str(table.get("quote_asset", quote))

    def new_client_id(self) -> str:
        """A 22-character id like the ones Binance generates (deterministic per emulator)."""
        return "".join(self._ids.choice(ID_CHARS) for _ in range(22))

    # -- the engine's market source ------------------------------------------------------------
    def arrays(self, symbol: str) -> PriceArrays:
        found = self._arrays.get(symbol)
        if found is None:
            data = self._state.data
            series = data.series(symbol, data.base_interval(symbol))
            c = series.candles
            found = PriceArrays(series.open_time, c.open, c.high, c.low, series.step)
            self._arrays[symbol] = found
        return found

    def filters(self, symbol: str) -> SymbolFilters:
        return self._state.spec(symbol)

    def step_of(self, symbol: str) -> int:
        return self.arrays(symbol).step

    def market(self, symbol: str, now: int) -> Quote | None:
        """The current price of `symbol` at replay time `now` (None after the last candle)."""
        c = self.arrays(symbol)
        i = int(np.searchsorted(c.open_time, now, side="right")) - 1
        if i >= 0 and int(c.open_time[i]) + c.step > now:
            return Quote(float(c.open[i]), int(c.open_time[i]), True)
        if i + 1 < len(c.open_time):
            return Quote(float(c.open[i + 1]), int(c.open_time[i + 1]), False)
        return None

    def closed_candles(self, symbol: str, start_ms: int, now_ms: int) -> PriceArrays:
        c = self.arrays(symbol)
        lo = int(np.searchsorted(c.open_time, start_ms, side="left"))
        return c.run(lo, max(lo, c.closed(now_ms)))

    # -- orders: the engine's, its refusals as Binance errors --------------------------------
    def place(self, account: Account, new: NewOrder, now: int, test: bool = False) -> Order | None:
        """Check `new` in Binance's order and execute it (or only check it, `test`)."""
        try:
            return self.engine.place(account, new, now, test)
        except OrderRejected as refusal:
            raise api_error(refusal) from None

    def place_oco(self, account: Account, new: NewOco, now: int) -> OrderList:
        """Check and place an OCO (two legs, one lock)."""
        try:
            return self.engine.place_oco(account, new, now)
        except OrderRejected as refusal:
            raise api_error(refusal) from None

    def cancel(self, order: Order, now: int) -> list[Order]:
        """Cancel an open order (and, for an OCO leg, its whole list); the canceled orders."""
        return self.engine.cancel(order, now)

    def sync(self, now: int) -> None:
        """Fill and trigger resting orders on every candle closed at replay time `now`."""
        self.engine.sync(now)
