"""Emulated accounts: API keys, balances (free and locked, exact decimals), commission rates
(the order engine's `engine.order_book.Account` plus the ORDERS counter).

Accounts come from a JSON or TOML file (`--accounts FILE`) whose top-level keys are API keys:

    # accounts.toml
    [myBotKey1]
    secret = "a-long-random-hmac-secret"           # HMAC-SHA256 key ...
    balances = { USDT = "10000", BTC = "0.5" }
    maker_commission = "0.001"                      # fractions: 0.001 = 0.10 % (default)
    taker_commission = "0.001"

    [myEd25519Key]
    ed25519_public_key = '''-----BEGIN PUBLIC KEY-----
    MCowBQYDK2VwAyEA...
    -----END PUBLIC KEY-----'''                     # ... or an Ed25519 public key (PEM)
    balances = { USDT = "2500" }

Without a file there is one demo account for local use: API key `demo`, secret `demo`,
10,000 USDT (`DEMO_API_KEY`, `DEMO_API_SECRET`, `DEMO_BALANCES`). Errors name the file and
the account's position, never its key; keys and secrets are never logged.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterable

from binance_cluster.engine import order_book
from binance_cluster.errors import ConfigError

DEMO_API_KEY = "demo"
DEMO_API_SECRET = "demo"
DEMO_BALANCES = (("USDT", Decimal("10000")),)
DEFAULT_COMMISSION = Decimal("0.001")
KEY_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")
ASSET_RE = re.compile(r"^[A-Z0-9]{1,20}$")
FIELDS = ("secret", "ed25519_public_key", "balances", "maker_commission", "taker_commission")


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """One configured account: its key, how requests are signed, balances, commissions."""

    api_key: str = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    ed25519_public_key: str | None = field(default=None, repr=False)
    balances: tuple[tuple[str, Decimal], ...] = ()
    maker_commission: Decimal = DEFAULT_COMMISSION
    taker_commission: Decimal = DEFAULT_COMMISSION


def demo_accounts() -> list[AccountSpec]:
    """The built-in demo account (key `demo`, secret `demo`, 10,000 USDT)."""
    return [AccountSpec(DEMO_API_KEY, secret=DEMO_API_SECRET, balances=DEMO_BALANCES)]


def _amount(value, where: str, what: str) -> Decimal:
    try:
        amount = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise ConfigError(f"{where}: {what} must be a non-negative decimal, not {value!r}")
    return amount


def _commission(value, where: str, what: str) -> Decimal:
    rate = _amount(value, where, what)
    if rate >= 1:
        raise ConfigError(f"{where}: {what} is a fraction (0.001 = 0.1 %), not {value!r}")
    return rate


def parse_accounts(data, source: str) -> list[AccountSpec]:
    """Validate the decoded accounts file `data` (a table of API key -> account)."""
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{source}: expected a table of API key -> account, with at least one")
    out = []
    for n, (key, table) in enumerate(data.items(), start=1):
        where = f"{source}: account {n}"
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise ConfigError(f"{where}: the API key must be 1-128 letters and digits")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a table of {', '.join(FIELDS)}")
        unknown = sorted(set(table) - set(FIELDS))
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} "
                              f"(known: {', '.join(FIELDS)})")
        secret, pem = table.get("secret"), table.get("ed25519_public_key")
        if (secret is None) == (pem is None):
            raise ConfigError(f"{where}: give exactly one of secret (HMAC) and "
                              "ed25519_public_key")
        for name, value in (("secret", secret), ("ed25519_public_key", pem)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ConfigError(f"{where}: {name} must be a non-empty string")
        balances = table.get("balances", {})
        if not isinstance(balances, dict):
            raise ConfigError(f"{where}: balances must be a table of asset -> amount")
        for asset in balances:
            if not isinstance(asset, str) or not ASSET_RE.match(asset):
                raise ConfigError(f"{where}: balances: {asset!r} is not an asset name "
                                  "(capital letters and digits)")
        out.append(AccountSpec(
            api_key=key, secret=secret, ed25519_public_key=pem,
            balances=tuple((a, _amount(v, where, f"balances.{a}")) for a, v in balances.items()),
            maker_commission=_commission(table.get("maker_commission", DEFAULT_COMMISSION),
                                         where, "maker_commission"),
            taker_commission=_commission(table.get("taker_commission", DEFAULT_COMMISSION),
                                         where, "taker_commission")))
    return out


def load_accounts(path: str | Path) -> list[AccountSpec]:
    """Read and validate a JSON or TOML accounts file; ConfigError names file and account."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read accounts file ({exc.strerror})") from None
    toml = path.suffix.lower() == ".toml"
    try:
        data = tomllib.loads(text) if toml else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'TOML' if toml else 'JSON'} "
                          f"({str(exc).splitlines()[0]})") from None
    return parse_accounts(data, str(path))


class OrderCounter:
    """Orders placed per fixed 10-second and 1-day window of the server clock (ORDERS limit)."""

    WINDOWS = (("SECOND", 10, 10_000), ("DAY", 1, 86_400_000))

    def __init__(self) -> None:
        self._window = [-1, -1]
        self._count = [0, 0]

    def counts(self, now_ms: int) -> tuple[int, int]:
        """(orders in this 10 s window, orders today)."""
        return tuple(c if now_ms // size == w else 0  # type: ignore[return-value]
                     for (_, _, size), w, c in zip(self.WINDOWS, self._window, self._count))

    def add(self, n: int, now_ms: int) -> tuple[int, int]:
        """Count `n` new orders; returns the new counts."""
        for i, (_, _, size) in enumerate(self.WINDOWS):
            window = now_ms // size
            if window != self._window[i]:
                self._window[i], self._count[i] = window, 0
            self._count[i] += n
        return self.counts(now_ms)


class Account(order_book.Account):
    """An order-engine account with its configured rates and its ORDERS counter."""

    def __init__(self, uid: int, spec: AccountSpec, assets: Iterable[str] = ()):
        super().__init__(uid, spec.balances, spec.maker_commission, spec.taker_commission,
                         assets)
        self.order_counter = OrderCounter()

    def balances(self, omit_zero: bool = False) -> list[dict]:
        """The `balances` array of GET /api/v3/account."""
        out = []
        for asset, free in self.free.items():
            locked = self.locked[asset]
            if omit_zero and free == 0 and locked == 0:
                continue
            out.append({"asset": asset, "free": f"{free:.8f}", "locked": f"{locked:.8f}"})
        return out
