"""Parameters of signed requests: query string and form body merged, decimals and enums checked.

Binance reads POST/PUT/DELETE parameters from the query string, an
`application/x-www-form-urlencoded` body, or both; a key sent in both takes the query's value,
a key repeated inside one of them is -1101 (binance-api.md sections 3 and 13.7). Bodies are
never parsed as JSON, whatever the Content-Type says. Decimal values are validated against
Binance's legal range before `Decimal(str)` is built, so `quantity=1e-05` (what python-binance
sends for the float 0.00001) is -1100, as on the live exchange.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Iterable
from urllib.parse import parse_qsl

from binance_cluster.exchange.emulator.http import ApiError, Params, bad_param, invalid_value

DECIMAL_LEGAL = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
DECIMAL_RE = re.compile(DECIMAL_LEGAL)
CLIENT_ID_LEGAL = "^[a-zA-Z0-9-_]{1,36}$"
CLIENT_ID_RE = re.compile(r"^[a-zA-Z0-9\-_]{1,36}$")
INT_LEGAL = "^[0-9]{1,20}$"
INT_RE = re.compile(INT_LEGAL)
BOOLEANS = {"true": True, "false": False}


def split_pairs(raw: str) -> list[tuple[str, str]]:
    """`k=v&...` (percent- and plus-decoded) as pairs, empty values kept."""
    return parse_qsl(raw, keep_blank_values=True)


def _no_duplicates(pairs: list[tuple[str, str]]) -> dict[str, str]:
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key in seen:
            raise ApiError(400, -1101, f"Duplicate values for parameter '{key}'.")
        seen[key] = value
    return seen


def merge_sources(query: str, body: str) -> list[tuple[str, str]]:
    """Pairs of the raw query string and raw form body; the query wins a key sent in both."""
    merged = _no_duplicates(split_pairs(body)) if body else {}
    merged.update(_no_duplicates(split_pairs(query)) if query else {})
    return list(merged.items())


class TradeParams(Params):
    """`Params` with the typed readers the trading endpoints need."""

    def decimal(self, name: str, required: bool = False) -> Decimal | None:
        """A non-negative decimal; -1100 for anything outside Binance's legal range."""
        value = self.get(name, required)
        if value is None:
            return None
        if not DECIMAL_RE.match(value):
            raise bad_param(name, DECIMAL_LEGAL)
        return Decimal(value)

    def client_id(self, name: str) -> str | None:
        """A client order id (`^[a-zA-Z0-9-_]{1,36}$`); -1100 otherwise."""
        value = self.get(name)
        if value is not None and not CLIENT_ID_RE.match(value):
            raise bad_param(name, CLIENT_ID_LEGAL)
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        """`true` / `false` (any case); -1130 otherwise."""
        value = self.get(name)
        if value is None:
            return default
        found = BOOLEANS.get(value.lower())
        if found is None:
            raise invalid_value(name)
        return found


def check_enum(value: str | None, allowed: Iterable[str], error: ApiError) -> str | None:
    """`value` when it is one of `allowed` (or None), else `error`."""
    if value is not None and value not in allowed:
        raise error
    return value


def decimals_of(value: Decimal) -> int:
    """Number of decimals written in `value` (trailing zeros count, as Binance counts them)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def check_precision(name: str, value: Decimal | None, precision: int) -> None:
    """-1111 when `value` is written with more decimals than the asset's precision."""
    if value is not None and decimals_of(value.normalize()) > precision:
        raise ApiError(400, -1111, "Precision is over the maximum defined for this asset.")
