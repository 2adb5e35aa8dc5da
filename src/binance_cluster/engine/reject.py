"""Why the order engine refuses an order: reason codes, worded as Binance words them.

The emulator maps a reason to its Binance error (-1013 for filter failures, -2010 for the
rest); the paper broker maps it to a broker error (FilterError, InsufficientBalanceError,
OrderRejectedError).
"""

from __future__ import annotations

from enum import Enum

TYPE_NAMES = {"LIMIT": "Limit", "MARKET": "Market", "STOP_LOSS": "Stop loss",
              "STOP_LOSS_LIMIT": "Stop loss limit", "TAKE_PROFIT": "Take profit",
              "TAKE_PROFIT_LIMIT": "Take profit limit", "LIMIT_MAKER": "Limit maker"}


class Reject(Enum):
    """A reason code; the value is Binance's message."""

    PRICE_FILTER = "Filter failure: PRICE_FILTER"
    LOT_SIZE = "Filter failure: LOT_SIZE"
    MARKET_LOT_SIZE = "Filter failure: MARKET_LOT_SIZE"
    NOTIONAL = "Filter failure: NOTIONAL"
    NOTIONAL_ZERO = "Price * QTY is zero or less."
    MAX_NUM_ORDERS = "Filter failure: MAX_NUM_ORDERS"
    UNSUPPORTED_TYPE = "{type} orders are not supported for this symbol."
    MARKET_CLOSED = "Market is closed."
    DUPLICATE = "Duplicate order sent."
    WOULD_TRIGGER = "Order would trigger immediately."
    WOULD_TAKE = "Order would immediately match and take."
    PRICE_RELATIONSHIP = "The relationship of the prices for the orders is not correct."
    INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."

    @property
    def is_filter(self) -> bool:
        """A symbol-filter failure (Binance -1013) rather than a refusal (-2010)."""
        return self in FILTER_REJECTS


FILTER_REJECTS = frozenset({Reject.PRICE_FILTER, Reject.LOT_SIZE, Reject.MARKET_LOT_SIZE,
                            Reject.NOTIONAL, Reject.NOTIONAL_ZERO, Reject.MAX_NUM_ORDERS})


class OrderRejected(Exception):
    """The engine refused an order for `reason` (`order_type` names an unsupported type)."""

    def __init__(self, reason: Reject, order_type: str | None = None):
        self.reason = reason
        self.order_type = order_type
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """Binance's message for this refusal."""
        if self.reason is Reject.UNSUPPORTED_TYPE:
            return self.reason.value.format(type=TYPE_NAMES.get(self.order_type or "",
                                                                self.order_type))
        return self.reason.value
