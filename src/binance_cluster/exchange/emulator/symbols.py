"""Trading rules of the emulated symbols (`engine.symbol_rules.SymbolFilters`, which also
renders their exchangeInfo entry): filters derived from each symbol's price level.

`derive_spec` picks Binance-like filters from a price and the number of decimals the stored
prices use, so that every stored price lies on the tick grid:

- PRICE_FILTER: `tickSize` = min(0.01, 10^(floor(log10 p) - 4), 10^-decimals) (BTC at 95,000
  gets 0.01, XRP at 2.3 gets 0.0001, as on Binance); `minPrice` = tick; `maxPrice` =
  10^(floor(log10 p) + 3).
- LOT_SIZE: `stepSize` = 10^(-floor(log10 p) - 1) within [1e-8, 1] (one step is worth 0.1 to
  1 quote unit); `minQty` = step; `maxQty` = 9 * 10^(8 - ceil(log10 p)).
- MARKET_LOT_SIZE: minQty 0, step 0 (rules off, as on most real symbols), maxQty =
  10^(7 - ceil(log10 p)).
- NOTIONAL: by quote asset: 5 (stablecoins), 0.0001 (BTC), 0.001 (ETH), 0.01 (BNB), else 1;
  applyMinToMarket true, maxNotional 9,000,000 (stablecoins), applyMaxToMarket false.
- MAX_NUM_ORDERS: 200.

Any field can be overridden per symbol from a JSON or TOML file whose top-level keys are
symbols, e.g. `{"BTCUSDT": {"tick_size": "0.01", "step_size": "0.00001", "min_notional": "5"}}`.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import fields, replace
from decimal import Decimal
from pathlib import Path

from binance_cluster.engine.symbol_rules import SymbolFilters
from binance_cluster.errors import ConfigError

QUOTE_ASSETS = ("FDUSD", "USDT", "USDC", "TUSD", "BUSD", "DAI", "BTC", "ETH", "BNB", "EUR",
                "TRY", "BRL", "JPY", "USD")
STABLE = {"FDUSD", "USDT", "USDC", "TUSD", "BUSD", "DAI", "USD"}
NOTIONAL_BY_QUOTE = {"BTC": ("0.0001", "1000"), "ETH": ("0.001", "10000"),
                     "BNB": ("0.01", "100000")}
STATUSES = ("TRADING", "END_OF_DAY", "HALT", "BREAK", "CANCEL_ONLY")


def _pow10(exp: int) -> Decimal:
    return Decimal(1).scaleb(exp)


def split_assets(symbol: str) -> tuple[str, str]:
    """(base, quote) by the known quote-asset suffixes; the last 4 letters when none matches."""
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[:-len(quote)], quote
    return symbol[:-4], symbol[-4:]


def price_decimals(prices) -> int:
    """Fewest decimals (0..8) that represent every price exactly (within float noise)."""
    import numpy as np

    p = np.asarray(prices, dtype=np.float64)
    p = p[np.isfinite(p)]
    for d in range(9):
        scaled = p * 10.0 ** d
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-13 * np.maximum(1.0, np.abs(scaled))):
            return d
    return 8


def derive_spec(symbol: str, price: float, decimals: int = 8) -> SymbolFilters:
    """Filters for `symbol` from its price level and the decimals its stored prices use."""
    if not (price > 0 and math.isfinite(price)):
        raise ConfigError(f"{symbol}: cannot derive filters from price {price!r}")
    base, quote = split_assets(symbol)
    mag = math.floor(math.log10(price))
    cmag = math.ceil(math.log10(price))
    tick = min(Decimal("0.01"), _pow10(mag - 4), _pow10(-min(max(decimals, 0), 8)))
    tick = max(tick, _pow10(-8))
    step = min(max(_pow10(-mag - 1), _pow10(-8)), Decimal(1))
    min_notional, max_notional = ("5", "9000000") if quote in STABLE \
        else NOTIONAL_BY_QUOTE.get(quote, ("1", "9000000"))
    return SymbolFilters(
        symbol=symbol, base_asset=base, quote_asset=quote, tick_size=tick, min_price=tick,
        max_price=_pow10(mag + 3), step_size=step, min_qty=step,
        max_qty=Decimal(9) * _pow10(max(8 - cmag, 0)),
        market_max_qty=_pow10(max(7 - cmag, 0)), min_notional=Decimal(min_notional),
        max_notional=Decimal(max_notional), max_num_orders=200)


_DECIMAL_FIELDS = {f.name for f in fields(SymbolFilters)
                   if f.type in ("Decimal", Decimal)}
_INT_FIELDS = {"base_precision", "quote_precision", "max_num_orders"}
_STR_FIELDS = {"base_asset", "quote_asset", "status"}


def load_overrides(path: str | Path) -> dict[str, dict]:
    """Read a JSON or TOML file of per-symbol overrides; ConfigError names file, symbol, key."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read symbol config ({exc.strerror})") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise ConfigError(f"{path}: not valid {kind} ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a table of symbols")
    allowed = _DECIMAL_FIELDS | _INT_FIELDS | _STR_FIELDS | {"order_types"}
    for symbol, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {symbol}: expected a table of fields")
        for key, value in table.items():
            if key not in allowed:
                raise ConfigError(f"{path}: {symbol}: unknown key {key!r} "
                                  f"(known: {', '.join(sorted(allowed))})")
    return data


def apply_overrides(spec: SymbolFilters, table: dict,
                    where: str = "symbol config") -> SymbolFilters:
    """`spec` with the fields of `table` replaced (values checked)."""
    changes: dict = {}
    for key, value in table.items():
        try:
            if key in _DECIMAL_FIELDS:
                dec = Decimal(str(value))
                if not dec.is_finite() or dec < 0:
                    raise ValueError
                changes[key] = dec
            elif key in _INT_FIELDS:
                if isinstance(value, bool) or int(value) != value or int(value) < 0:
                    raise ValueError
                changes[key] = int(value)
            elif key == "order_types":
                changes[key] = tuple(str(v) for v in value)
            else:
                changes[key] = str(value)
        except (ValueError, TypeError, ArithmeticError):
            raise ConfigError(f"{where}: {spec.symbol}.{key}: invalid value {value!r}") from None
    if changes.get("status", spec.status) not in STATUSES:
        raise ConfigError(f"{where}: {spec.symbol}.status must be one of {', '.join(STATUSES)}")
    return replace(spec, **changes)
