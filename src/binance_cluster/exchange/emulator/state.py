"""The emulator's shared state: clocks, candle data, symbol rules, weight limiter, faults,
and the exchange (accounts, orders, matching)."""

from __future__ import annotations

import logging

from aiohttp import web

from binance_cluster.exchange.emulator.clock import ReplayClock, ServerClock
from binance_cluster.exchange.emulator.config import EmulatorConfig
from binance_cluster.exchange.emulator.faults import FaultInjector
from binance_cluster.exchange.emulator.http import ApiError
from binance_cluster.exchange.emulator.limits import WeightLimiter
from binance_cluster.exchange.emulator.replay import ReplayData
from binance_cluster.engine.symbol_rules import SymbolFilters
from binance_cluster.exchange.emulator.symbols import apply_overrides, derive_spec, load_overrides
from binance_cluster.errors import ConfigError
from binance_cluster.candles.store import CandleStore
from binance_cluster.types import DAY_MS

log = logging.getLogger(__name__)


class EmulatorState:
    """Everything the route handlers share; one per application (one event loop)."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        store = CandleStore(config.store)
        if not store.root.is_dir():
            raise ConfigError(f"{store.root}: store directory does not exist")
        symbols = store.symbols()
        if config.symbols is not None:
            missing = [s for s in config.symbols if s not in symbols]
            if missing:
                raise ConfigError(f"{store.root}: no candles for {', '.join(missing)}")
            symbols = list(config.symbols)
        if not symbols:
            raise ConfigError(f"{store.root}: the store holds no symbols to replay")
        self.data = ReplayData(store, tuple(symbols))
        self.symbols = symbols
        self.overrides: dict[str, dict] = {}
        if config.symbol_config is not None:
            self.overrides = load_overrides(config.symbol_config)
            unknown = [s for s in self.overrides if s not in symbols]
            if unknown:
                raise ConfigError(f"{config.symbol_config}: symbols not in the store: "
                                  f"{', '.join(unknown)}")
        start = config.start_ms if config.start_ms is not None else self.default_start()
        self.server_clock = ServerClock(config.server_offset_ms)
        self.replay_clock = ReplayClock(start, config.speed)
        self.limiter = WeightLimiter(config.weight_limit, config.ban_after, config.ban_seconds)
        self.faults = FaultInjector(config.faults)
        self.server_clock.skew_ms = config.faults.skew_ms
        self._specs: dict[str, SymbolFilters] = {}
        self.start_ms = start
        for symbol in self.overrides:  # a bad override fails at start-up, not on a request
            self.spec(symbol)
        from binance_cluster.exchange.emulator.matching import Exchange  # numba: the fill rules

        self.exchange = Exchange(self)

    def default_start(self) -> int:
        """One day after the latest first candle: every symbol then has a day of history."""
        firsts = [self.data.first_open(s) for s in self.symbols]
        known = [t for t in firsts if t is not None]
        if not known:
            raise ConfigError(f"{self.config.store}: the store's symbols hold no candles")
        return max(known) + DAY_MS

    def require_symbol(self, symbol: str | None) -> str:
        """`symbol` if the emulator lists it, else -1121 Invalid symbol."""
        if symbol not in self.symbols:
            raise ApiError(400, -1121, "Invalid symbol.")
        return symbol

    def spec(self, symbol: str) -> SymbolFilters:
        """The trading rules of `symbol` (derived from its price at the replay start)."""
        found = self._specs.get(symbol)
        if found is None:
            price, decimals = self.data.price_level(symbol, self.start_ms)
            found = derive_spec(symbol, price, decimals)
            if symbol in self.overrides:
                found = apply_overrides(found, self.overrides[symbol],
                                        str(self.config.symbol_config))
            self._specs[symbol] = found
        return found

    def replay_now(self) -> int:
        return self.replay_clock.now_ms()

    def status(self, symbol: str, now_ms: int) -> str:
        """The symbol's trading status at replay time `now_ms`: its configured status, or
        BREAK once its data has ended (no candle forms: orders are refused)."""
        status = self.spec(symbol).status
        if status == "TRADING" and self.data.ended(symbol, now_ms):
            return "BREAK"
        return status


STATE = web.AppKey("binance_cluster_emulator_state", EmulatorState)
