"""The project's one exception tree; the CLI maps each branch to an exit code."""


class BinanceClusterError(Exception):
    """Base of every error the project raises on purpose."""

    exit_code = 1


class InputError(BinanceClusterError):
    """Bad input or usage: a file, job, argument or symbol the user must fix (exit 2)."""

    exit_code = 2


class ConfigError(InputError):
    """A job file or command-line setting that is invalid."""


class DataError(InputError):
    """Candle data that fails validation (bad row, bad value, bad order)."""


class StoreError(BinanceClusterError):
    """A store file that cannot be read or written for a reason other than bad data."""


class NotAStoreFileError(InputError, StoreError):
    """A file where a store file is expected that is not a valid HDF5 candle file."""


class UnknownSymbolError(InputError):
    """A symbol the exchange or the store does not list."""


class ExchangeError(BinanceClusterError):
    """An error answer from the exchange (Binance or the emulator)."""

    def __init__(self, message: str, code: int = 0, status: int = 0):
        super().__init__(message)
        self.code = code
        self.status = status


class RetryableExchangeError(ExchangeError):
    """An exchange error after which the same request may be retried (5xx, 429, timeouts)."""

    def __init__(self, message: str, code: int = 0, status: int = 0, retry_after: float = 0.0):
        super().__init__(message, code, status)
        self.retry_after = retry_after


class RateLimitError(RetryableExchangeError):
    """HTTP 429 or 418 from the exchange; wait `retry_after` seconds."""


class UnitError(BinanceClusterError):
    """One or more work units failed in a parallel map."""
