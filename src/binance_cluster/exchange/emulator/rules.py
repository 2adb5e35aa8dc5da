"""The order engine's refusals as Binance errors (binance-api.md section 7).

The symbol filters and their checks are the engine's (`engine.symbol_rules`); a filter
failure answers `-1013` (HTTP 400) with `Filter failure: NAME` (or "Price * QTY is zero or
less."), every other refusal `-2010` NEW_ORDER_REJECTED with Binance's message.
"""

from __future__ import annotations

from binance_cluster.engine.reject import OrderRejected
from binance_cluster.exchange.emulator.http import ApiError


def api_error(refusal: OrderRejected) -> ApiError:
    """The Binance error answering `refusal`."""
    return ApiError(400, -1013 if refusal.reason.is_filter else -2010, refusal.message)
