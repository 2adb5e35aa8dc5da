"""A symbol's exchange filters, once: `SymbolFilters` (exact decimals, with Binance's checks
as reason codes) and `SymbolRules`, its float view for the backtest kernels (tick, lot step,
minimum notional).

A filter field of 0 disables its rule, as on Binance. The checks (binance-api.md section 7):
PRICE_FILTER (min, max, on the tick grid from minPrice), LOT_SIZE (min, max, on the step grid
from minQty), MARKET_LOT_SIZE (the same for MARKET quantities), NOTIONAL (price * qty within
[minNotional, maxNotional]; zero or less is its own reason), MAX_NUM_ORDERS (open orders on
the symbol, the new ones included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_UP, Decimal, InvalidOperation

import numpy as np

from binance_cluster.engine.reject import Reject
from binance_cluster.errors import ConfigError

ZERO = Decimal(0)
SYMBOL_ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """Exchange filters of one symbol: PRICE_FILTER tick, LOT_SIZE step, minimum notional."""

    tick_size: float = 0.01
    step_size: float = 0.00001
    min_notional: float = 5.0

    def __post_init__(self) -> None:
        for name in ("tick_size", "step_size", "min_notional"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(v) or v < 0:
                raise ConfigError(f"rules.{name} = {v!r}: must be a number >= 0 "
                                  "(0 = no rounding / no minimum)")


def _dec(text) -> Decimal:
    if text is None or text == "":
        return ZERO
    try:
        return Decimal(str(text)).normalize()
    except InvalidOperation:
        return ZERO


def _d8(value: Decimal) -> str:
    return f"{value:.8f}"


def _on_grid(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    if step <= 0:
        return value
    units = (value / step).to_integral_value(rounding=rounding)
    return (units * step).quantize(step)


def _float_to_grid(value: float, step: Decimal, rounding) -> Decimal:
    units = Decimal(repr(float(value))) / step
    # a value already on the grid must stay there despite binary float noise
    nearest = units.to_integral_value()
    if abs(units - nearest) < Decimal("1e-9"):
        units = nearest
    return (Decimal(rounding(units)) * step).normalize()


def _is_on(value: Decimal, origin: Decimal, step: Decimal) -> bool:
    return step <= 0 or (value - origin) % step == 0


@dataclass(frozen=True, slots=True)
class SymbolFilters:
    """One symbol's assets, status and trading rules (decimals as Decimal)."""

    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal = Decimal("0.01")
    step_size: Decimal = Decimal("0.00001")
    min_qty: Decimal = ZERO
    max_qty: Decimal = ZERO
    min_price: Decimal = ZERO
    max_price: Decimal = ZERO
    min_notional: Decimal = ZERO
    apply_min_to_market: bool = True
    market_max_qty: Decimal = ZERO
    order_types: tuple[str, ...] = SYMBOL_ORDER_TYPES
    status: str = "TRADING"
    market_min_qty: Decimal = ZERO
    market_step_size: Decimal = ZERO
    max_notional: Decimal = ZERO
    max_num_orders: int = 0
    base_precision: int = 8
    quote_precision: int = 8

    @staticmethod
    def from_symbol_info(info: dict) -> "SymbolFilters":
        """The filters of one `exchangeInfo.symbols[]` entry."""
        by_type = {f.get("filterType"): f for f in info.get("filters", [])}
        price = by_type.get("PRICE_FILTER", {})
        lot = by_type.get("LOT_SIZE", {})
        market_lot = by_type.get("MARKET_LOT_SIZE", {})
        notional = by_type.get("NOTIONAL") or by_type.get("MIN_NOTIONAL") or {}
        apply_min = notional.get("applyMinToMarket", notional.get("applyToMarket", True))
        return SymbolFilters(
            symbol=info["symbol"], base_asset=info.get("baseAsset", ""),
            quote_asset=info.get("quoteAsset", ""), tick_size=_dec(price.get("tickSize")),
            step_size=_dec(lot.get("stepSize")), min_qty=_dec(lot.get("minQty")),
            max_qty=_dec(lot.get("maxQty")), min_price=_dec(price.get("minPrice")),
            max_price=_dec(price.get("maxPrice")),
            min_notional=_dec(notional.get("minNotional")),
            apply_min_to_market=bool(apply_min),
            market_max_qty=_dec(market_lot.get("maxQty")),
            order_types=tuple(info.get("orderTypes", SYMBOL_ORDER_TYPES)),
            status=info.get("status", "TRADING"),
            market_min_qty=_dec(market_lot.get("minQty")),
            market_step_size=_dec(market_lot.get("stepSize")),
            max_notional=_dec(notional.get("maxNotional")),
            max_num_orders=int(by_type.get("MAX_NUM_ORDERS", {}).get("maxNumOrders", 0)),
            base_precision=int(info.get("baseAssetPrecision", 8)),
            quote_precision=int(info.get("quoteAssetPrecision", 8)))

    def filters_json(self) -> list[dict]:
        """The exchangeInfo `filters` array."""
        return [
            {"filterType": "PRICE_FILTER", "minPrice": _d8(self.min_price),
             "maxPrice": _d8(self.max_price), "tickSize": _d8(self.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": _d8(self.min_qty), "maxQty": _d8(self.max_qty),
             "stepSize": _d8(self.step_size)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": _d8(self.market_min_qty),
             "maxQty": _d8(self.market_max_qty), "stepSize": _d8(self.market_step_size)},
            {"filterType": "NOTIONAL", "minNotional": _d8(self.min_notional),
             "applyMinToMarket": self.apply_min_to_market,
             "maxNotional": _d8(self.max_notional), "applyMaxToMarket": False,
             "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": self.max_num_orders},
        ]

    def to_exchange_info(self) -> dict:
        """The exchangeInfo entry of this symbol (field order as in the Binance docs), the
        inverse of `from_symbol_info`."""
        return {
            "symbol": self.symbol, "status": self.status, "baseAsset": self.base_asset,
            "baseAssetPrecision": self.base_precision, "quoteAsset": self.quote_asset,
            "quotePrecision": self.quote_precision, "quoteAssetPrecision": self.quote_precision,
            "baseCommissionPrecision": self.base_precision,
            "quoteCommissionPrecision": self.quote_precision,
            "orderTypes": list(self.order_types), "icebergAllowed": False, "ocoAllowed": True,
            "otoAllowed": False, "opoAllowed": False, "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": False, "cancelReplaceAllowed": False, "amendAllowed": False,
            "pegInstructionsAllowed": False, "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False, "filters": self.filters_json(), "permissions": [],
            "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "NONE",
            "allowedSelfTradePreventionModes": ["NONE"],
        }

    def rules(self) -> SymbolRules:
        """The float view the backtest kernels take."""
        return SymbolRules(tick_size=float(self.tick_size), step_size=float(self.step_size),
                           min_notional=float(self.min_notional))

    # -- rounding to the grids ---------------------------------------------------------------
    def floor_qty(self, qty: Decimal) -> Decimal:
        """`qty` rounded down to the lot step."""
        return _on_grid(qty, self.step_size, ROUND_DOWN)

    def round_price(self, price: Decimal) -> Decimal:
        """`price` rounded to the nearest tick (unchanged when already on the grid)."""
        return _on_grid(price, self.tick_size, ROUND_HALF_EVEN)

    def floor_price(self, price: Decimal) -> Decimal:
        """`price` rounded down to the tick."""
        return _on_grid(price, self.tick_size, ROUND_DOWN)

    def ceil_price(self, price: Decimal) -> Decimal:
        """`price` rounded up to the tick."""
        return _on_grid(price, self.tick_size, ROUND_UP)

    def round_price_down(self, price: float) -> Decimal:
        """The float `price` rounded down to the tick grid."""
        return _float_to_grid(price, self.tick_size, math.floor)

    def round_price_up(self, price: float) -> Decimal:
        """The float `price` rounded up to the tick grid."""
        return _float_to_grid(price, self.tick_size, math.ceil)

    def round_qty_down(self, qty: float) -> Decimal:
        """The float `qty` rounded down to the LOT_SIZE step."""
        return _float_to_grid(qty, self.step_size, math.floor)

    # -- checks: None when the value passes, else the reason ----------------------------------
    def price_problem(self, price: Decimal | None) -> Reject | None:
        """PRICE_FILTER on a price or stop price (None: not given, passes)."""
        if price is None:
            return None
        if price <= 0 or (self.min_price > 0 and price < self.min_price) or \
                (self.max_price > 0 and price > self.max_price) or \
                not _is_on(price, self.min_price, self.tick_size):
            return Reject.PRICE_FILTER
        return None

    def lot_problem(self, qty: Decimal) -> Reject | None:
        """LOT_SIZE (every order type)."""
        if qty <= 0 or (self.min_qty > 0 and qty < self.min_qty) or \
                (self.max_qty > 0 and qty > self.max_qty) or \
                not _is_on(qty, self.min_qty, self.step_size):
            return Reject.LOT_SIZE
        return None

    def market_lot_problem(self, qty: Decimal) -> Reject | None:
        """MARKET_LOT_SIZE of a MARKET quantity."""
        if (self.market_min_qty > 0 and qty < self.market_min_qty) or \
                (self.market_max_qty > 0 and qty > self.market_max_qty) or \
                not _is_on(qty, self.market_min_qty, self.market_step_size):
            return Reject.MARKET_LOT_SIZE
        return None

    def notional_problem(self, notional: Decimal) -> Reject | None:
        """NOTIONAL of a priced order (price * qty)."""
        if notional <= 0:
            return Reject.NOTIONAL_ZERO
        if (self.min_notional > 0 and notional < self.min_notional) or \
                (self.max_notional > 0 and notional > self.max_notional):
            return Reject.NOTIONAL
        return None

    def open_orders_problem(self, open_now: int, adding: int) -> Reject | None:
        """MAX_NUM_ORDERS: the open orders on the symbol with the new ones."""
        if self.max_num_orders > 0 and open_now + adding > self.max_num_orders:
            return Reject.MAX_NUM_ORDERS
        return None
