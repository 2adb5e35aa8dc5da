"""Symbol filters checked on new orders (binance-api.md section 7), in exact decimals.

Each check raises `-1013 Filter failure: NAME` (HTTP 400). A filter field set to 0 disables
that rule, as on Binance. The minimum notional of MARKET orders is checked by the matching
engine with the shared fill rules (`kernels.fills.notional_ok` at the fill price), so the
emulator rejects exactly the orders the backtest rejects.
"""

from __future__ import annotations

from decimal import Decimal

from binance_cluster.exchange.emulator.http import ApiError
from binance_cluster.exchange.emulator.symbols import SymbolSpec


def filter_failure(name: str) -> ApiError:
    return ApiError(400, -1013, f"Filter failure: {name}")


def _on_grid(value: Decimal, origin: Decimal, step: Decimal) -> bool:
    return step <= 0 or (value - origin) % step == 0


def check_price(spec: SymbolSpec, price: Decimal | None) -> None:
    """PRICE_FILTER on a price or stop price: min, max, tick."""
    if price is None:
        return
    if (spec.min_price > 0 and price < spec.min_price) or \
            (spec.max_price > 0 and price > spec.max_price) or \
            not _on_grid(price, spec.min_price, spec.tick_size):
        raise filter_failure("PRICE_FILTER")


def check_lot(spec: SymbolSpec, qty: Decimal) -> None:
    """LOT_SIZE: min, max, step (every order type)."""
    if (spec.min_qty > 0 and qty < spec.min_qty) or (spec.max_qty > 0 and qty > spec.max_qty) \
            or not _on_grid(qty, spec.min_qty, spec.step_size) or qty <= 0:
        raise filter_failure("LOT_SIZE")


def check_market_lot(spec: SymbolSpec, qty: Decimal) -> None:
    """MARKET_LOT_SIZE: min, max, step of MARKET quantities (all 0 disables it)."""
    if (spec.market_min_qty > 0 and qty < spec.market_min_qty) or \
            (spec.market_max_qty > 0 and qty > spec.market_max_qty) or \
            not _on_grid(qty, spec.market_min_qty, spec.market_step_size):
        raise filter_failure("MARKET_LOT_SIZE")


def check_notional(spec: SymbolSpec, notional: Decimal) -> None:
    """NOTIONAL of a priced order: minNotional <= price * qty <= maxNotional."""
    if notional <= 0:
        raise ApiError(400, -1013, "Price * QTY is zero or less.")
    if (spec.min_notional > 0 and notional < spec.min_notional) or \
            (spec.max_notional > 0 and notional > spec.max_notional):
        raise filter_failure("NOTIONAL")


def check_open_orders(spec: SymbolSpec, open_now: int, adding: int) -> None:
    """MAX_NUM_ORDERS: open orders on the symbol, the new ones included, within the maximum."""
    if spec.max_num_orders > 0 and open_now + adding > spec.max_num_orders:
        raise filter_failure("MAX_NUM_ORDERS")
