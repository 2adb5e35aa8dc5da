"""Broker-specific kinds of the project's exchange errors (all subclasses of `errors.py`).

The broker translates every python-binance exception into one of these (or into the base
classes `ExchangeError`, `RetryableExchangeError`, `RateLimitError`, `UnknownSymbolError`),
so callers never see python-binance or requests types. Messages are one line and never carry
API keys, secrets or signatures.
"""

from __future__ import annotations

from binance_cluster.errors import ExchangeError, InputError, RetryableExchangeError


class OrderRequestError(InputError):
    """An order request that is malformed before it reaches any exchange (field, value)."""


class OrderRejectedError(ExchangeError):
    """-2010: the exchange refused a new order (balance, price relation, market closed...)."""


class InsufficientBalanceError(OrderRejectedError):
    """-2010 "Account has insufficient balance for requested action." (or the paper check)."""


class FilterError(ExchangeError):
    """-1013 "Filter failure: X" (or the same check made locally before sending)."""


class OrderNotFoundError(ExchangeError):
    """-2013 (query) or -2011 (cancel): the exchange knows no such open order."""


class AuthenticationError(ExchangeError):
    """-2014 / -2015 / -1022: the API key, its permissions or the signature were refused."""


class ClockSkewError(ExchangeError):
    """-1021: the request's timestamp fell outside recvWindow even after a time resync."""


class OrderStatusUnknownError(RetryableExchangeError):
    """A submit or cancel whose outcome the broker could not establish; query `client_id`."""

    def __init__(self, message: str, client_id: str, code: int = 0, status: int = 0):
        super().__init__(message, code, status)
        self.client_id = client_id
