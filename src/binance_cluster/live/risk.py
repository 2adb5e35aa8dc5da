"""Risk controls of the live loop, checked on rank 0 before every order.

Rules for an order that opens or adds to a position (exits are never refused by these rules:
a protective or signal exit always goes out, subject only to the symbol's filters):

- `max_order_notional`: the order's quote amount is at most this;
- `max_open_positions`: a new position is refused while this many are open;
- `max_exposure`: the quote cost of everything held plus this order is at most this;
- `max_daily_loss`: once the UTC day's PnL (realised plus unrealised at the last close) is at
  or below minus this amount, no position is opened until the next UTC day;
- the kill switch: once the file `kill_switch` exists or the process got SIGTERM, nothing is
  opened; with `flatten_on_kill` every position is exited, then the loop stops cleanly.

Each refusal names its rule and is journaled. Real-money trading (`--mode live`) refuses to
start unless the job sets all four limits (`RiskLimits.missing`).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from binance_cluster.errors import ConfigError

LIMIT_NAMES = ("max_order_notional", "max_open_positions", "max_exposure", "max_daily_loss")


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """The job's live risk limits (None: no limit; only paper and testnet allow that)."""

    max_order_notional: Decimal | None = None
    max_open_positions: int | None = None
    max_exposure: Decimal | None = None
    max_daily_loss: Decimal | None = None
    kill_switch: Path | None = None
    flatten_on_kill: bool = False

    def __post_init__(self) -> None:
        for name in LIMIT_NAMES:
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"live.risk.{name}: {value} must be above zero")

    def missing(self) -> list[str]:
        """The limits the job leaves unset."""
        return [name for name in LIMIT_NAMES if getattr(self, name) is None]


@dataclass(frozen=True, slots=True)
class AccountView:
    """What the rules look at: open positions, their quote cost, the UTC day's PnL."""

    open_positions: int
    exposure: Decimal
    day_pnl: Decimal


@dataclass(frozen=True, slots=True)
class Refusal:
    """An order a rule refused: the rule's name and a line saying why."""

    rule: str
    detail: str


def check_entry(symbol: str, notional: Decimal, limits: RiskLimits, account: AccountView,
                killed: bool) -> Refusal | None:
    """The first rule that refuses a buy of `notional` quote of `symbol`, or None."""
    if killed:
        return Refusal("kill_switch", f"{symbol}: the kill switch is engaged; no new positions")
    if limits.max_daily_loss is not None and account.day_pnl <= -limits.max_daily_loss:
        return Refusal("max_daily_loss", f"{symbol}: today's PnL {account.day_pnl:f} is at or below "
                                         f"-{limits.max_daily_loss:f}; no new positions until tomorrow (UTC)")
    if limits.max_order_notional is not None and notional > limits.max_order_notional:
        return Refusal("max_order_notional", f"{symbol}: order of {notional:f} above the limit "
                                             f"{limits.max_order_notional:f}")
    if limits.max_open_positions is not None and account.open_positions >= limits.max_open_positions:
        return Refusal("max_open_positions", f"{symbol}: {account.open_positions} positions open, "
                                             f"the limit is {limits.max_open_positions}")
    if limits.max_exposure is not None and account.exposure + notional > limits.max_exposure:
        return Refusal("max_exposure", f"{symbol}: exposure {account.exposure:f} + {notional:f} above "
                                       f"the limit {limits.max_exposure:f}")
    return None


class KillSwitch:
    """Engaged once its file exists or the process received SIGTERM (after `install`)."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self._signalled = False

    def install(self) -> None:
        """Catch SIGTERM (rank 0's main thread): the loop stops opening and exits cleanly."""
        signal.signal(signal.SIGTERM, self._on_term)

    def _on_term(self, signum, frame) -> None:
        self._signalled = True

    @property
    def engaged(self) -> bool:
        """Whether the loop must stop opening positions."""
        return self._signalled or (self.path is not None and self.path.exists())

    @property
    def reason(self) -> str:
        """Why it is engaged (for the journal and the log)."""
        if self._signalled:
            return "SIGTERM received"
        if self.path is not None and self.path.exists():
            return f"kill switch file {self.path} exists"
        return "not engaged"
