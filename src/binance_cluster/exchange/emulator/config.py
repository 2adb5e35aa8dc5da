"""The emulator's settings as one frozen value, checked before the server starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from binance_cluster.exchange.emulator.faults import FaultConfig
from binance_cluster.errors import ConfigError

FORMING_MODES = ("none", "synthetic")
RESTING_MODES = ("placement", "next")


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Everything `create_app` needs.

    `start_ms` None starts the replay clock one day after the latest first candle among the
    symbols (the earliest moment every symbol has a day of history). `speed` is replay
    seconds per real second; 0 freezes the replay clock (tests step it with
    `POST /admin/clock`). `weight_limit` 0 disables the request-weight limit.

    Trading: `accounts` is a JSON or TOML accounts file (None: the demo account, key and
    secret `demo`, 10,000 USDT); `slippage_bps` moves MARKET fills against the trader;
    `resting_from` "placement" lets resting orders fill from the candle they were placed in
    ("next": from the following candle); `order_limit_10s` / `order_limit_1d` are the ORDERS
    limits per account (0 disables one); `timestamp_check` False skips the recvWindow check.
    """

    store: Path
    host: str = "127.0.0.1"
    port: int = 0
    start_ms: int | None = None
    speed: float = 1.0
    forming_candle: str = "none"
    weight_limit: int = 6000
    ban_after: int = 3
    ban_seconds: int = 120
    half_spread_bps: float = 1.0
    book_depth_quote: float = 50_000.0
    symbol_config: Path | None = None
    symbols: tuple[str, ...] | None = None
    server_offset_ms: int = 0
    faults: FaultConfig = field(default_factory=FaultConfig)
    accounts: Path | None = None
    slippage_bps: float = 0.0
    resting_from: str = "placement"
    order_limit_10s: int = 100
    order_limit_1d: int = 200_000
    timestamp_check: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "store", Path(self.store))
        if self.symbol_config is not None:
            object.__setattr__(self, "symbol_config", Path(self.symbol_config))
        if self.accounts is not None:
            object.__setattr__(self, "accounts", Path(self.accounts))
        if self.resting_from not in RESTING_MODES:
            raise ConfigError(f"resting_from must be one of {', '.join(RESTING_MODES)}, "
                              f"not {self.resting_from!r}")
        if not 0 <= self.slippage_bps < 10_000:
            raise ConfigError(f"slippage_bps must be in [0, 10000), not {self.slippage_bps!r}")
        if self.order_limit_10s < 0 or self.order_limit_1d < 0:
            raise ConfigError("order_limit_10s and order_limit_1d must not be negative")
        if self.forming_candle not in FORMING_MODES:
            raise ConfigError(f"forming_candle must be one of {', '.join(FORMING_MODES)}, "
                              f"not {self.forming_candle!r}")
        if not self.speed >= 0:
            raise ConfigError(f"speed must be zero or positive, not {self.speed!r}")
        if self.weight_limit < 0 or self.ban_after < 0 or self.ban_seconds < 0:
            raise ConfigError("weight_limit, ban_after and ban_seconds must not be negative")
        if not 0 <= self.half_spread_bps < 10_000:
            raise ConfigError(f"half_spread_bps must be in [0, 10000), "
                              f"not {self.half_spread_bps!r}")
        if not self.book_depth_quote > 0:
            raise ConfigError("book_depth_quote must be above zero")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, not {self.port}")
