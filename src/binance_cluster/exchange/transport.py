"""The one Binance transport: python-binance 1.0.37 clients and what the bare client lacks.

Moved here from the download driver (`candles.fetch`) so that `fetch` and the brokers share
one copy: the public client with retries, rate-limit waits and weight throttling, the
retry policy, the network-problem description, the weight limit of exchangeInfo and the
parsing of kline rows.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from binance_cluster.errors import (ExchangeError, RateLimitError, RetryableExchangeError,
                                    UnknownSymbolError)
from binance_cluster.exchange.broker.errors import (AuthenticationError, ClockSkewError,
                                                    FilterError, InsufficientBalanceError,
                                                    OrderNotFoundError, OrderRejectedError)
from binance_cluster.types import Candles

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.binance.com"
PAGE_LIMIT = 1000
KLINES_WEIGHT = 2
TIME_WEIGHT = 1
EXCHANGE_INFO_WEIGHT = 20
DEFAULT_WEIGHT_LIMIT = 6000
WINDOW_MS = 60_000
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
REPLAY_TIME_HEADER = "X-Replay-Time"  # sent by the project's emulator, not by Binance
BALANCE_MSG = "insufficient balance"
AUTH_CODES = (-2014, -2015, -1022)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry: backoff `base_s * 2**(n-1)` capped at `cap_s`."""

    attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0
    rate_limit_waits: int = 10
    default_retry_after_s: float = 60.0

    def backoff(self, failure: int) -> float:
        """Seconds to wait after the `failure`-th failed attempt (1-based)."""
        return min(self.cap_s, self.base_s * 2 ** (failure - 1))


@dataclass(frozen=True, slots=True)
class FetchDeps:
    """Injected time functions: `sleep(seconds)` and `clock()` (epoch seconds)."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time


class PublicClient:
    """python-binance's public endpoints with retries, rate-limit waits and weight throttling."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, timeout_s: float = 10.0,
                 retry: RetryPolicy = RetryPolicy(), deps: FetchDeps = FetchDeps(),
                 weight_limit: int = DEFAULT_WEIGHT_LIMIT, headroom: float = 0.1):
        from binance import Client

        self.client = Client(None, None, ping=False, requests_params={"timeout": timeout_s})
        self.client.API_URL = base_url.rstrip("/") + "/api"
        self.base_url = base_url
        self.retry = retry
        self.deps = deps
        self.weight_limit = weight_limit
        self.headroom = headroom
        self.offset_ms = 0  # server clock minus local clock
        self.used_weight: int | None = None
        self._used_window: int | None = None
        self.requests = 0
        self.retries = 0
        self.rate_limit_waits = 0
        self.throttle_waits = 0

    # -- plumbing ----------------------------------------------------------------------
    def _server_ms(self) -> int:
        return int(self.deps.clock() * 1000) + self.offset_ms

    def _note_weight(self, headers) -> None:
        value = headers.get(WEIGHT_HEADER) if headers is not None else None
        if value is not None and str(value).isdigit():
            self.used_weight = int(value)
            self._used_window = self._server_ms() // WINDOW_MS

    def _throttle(self, weight: int) -> None:
        """Wait for the next weight window when this request would pass the safe limit."""
        if self.weight_limit <= 0 or self.used_weight is None:
            return
        if self._server_ms() // WINDOW_MS != self._used_window:
            self.used_weight = None  # a new window has begun since the last answer
            return
        if self.used_weight + weight <= self.weight_limit * (1 - self.headroom):
            return
        wait = (WINDOW_MS - self._server_ms() % WINDOW_MS) / 1000 + 0.5
        log.info("fetch: used weight %d of %d this minute: waiting %.1f s for the next window",
                 self.used_weight, self.weight_limit, wait)
        self.throttle_waits += 1
        self.deps.sleep(wait)
        self.used_weight = None

    def _retry_after(self, exc) -> float:
        headers = getattr(exc.response, "headers", None) or {}
        try:
            return max(0.0, float(headers.get("Retry-After")))
        except (TypeError, ValueError):
            return self.retry.default_retry_after_s

    def call(self, what: str, weight: int, fn: Callable[..., Any], **params) -> Any:
        """`fn(**params)` with throttling, rate-limit waits and retries; `what` names the call
        in errors."""
        from binance.exceptions import BinanceAPIException, BinanceRequestException
        from requests.exceptions import ChunkedEncodingError, ConnectionError, Timeout

        failures = 0
        waits = 0
        while True:
            self._throttle(weight)
            self.requests += 1
            try:
                result = fn(**params)
            except BinanceAPIException as exc:
                self._note_weight(getattr(exc.response, "headers", None))
                status = int(exc.status_code or 0)
                if status in (418, 429):
                    waits += 1
                    if waits > self.retry.rate_limit_waits:
                        raise RateLimitError(f"{what}: still rate limited (HTTP {status}) after "
                                             f"{waits - 1} waits; giving up", exc.code, status,
                                             self._retry_after(exc)) from None
                    wait = self._retry_after(exc)
                    log.warning("fetch: %s: HTTP %d (%s): waiting %g s (Retry-After)", what,
                                status, exc.message, wait)
                    self.rate_limit_waits += 1
                    self.used_weight = None
                    self.deps.sleep(wait)
                    continue
                if status >= 500:
                    failures = self._failed(what, f"HTTP {status} ({exc.message})", failures,
                                            status, exc.code)
                    continue
                if exc.code == -1121:
                    raise UnknownSymbolError(f"{what}: the exchange answered -1121 Invalid "
                                             "symbol.") from None
                raise ExchangeError(f"{what}: {exc.message} (code {exc.code}, HTTP {status})",
                                    int(exc.code or 0), status) from None
            except (ConnectionError, Timeout, ChunkedEncodingError, BinanceRequestException) as exc:
                failures = self._failed(what, network_problem(exc), failures, 0, 0)
                continue
            self._note_weight(getattr(self.client.response, "headers", None))
            return result

    def _failed(self, what: str, problem: str, failures: int, status: int, code) -> int:
        failures += 1
        if failures >= self.retry.attempts:
            raise RetryableExchangeError(f"{what}: giving up after {failures} attempts at "
                                         f"{self.base_url}: {problem}", int(code or 0), status)
        wait = self.retry.backoff(failures)
        log.warning("fetch: %s: %s; retry %d of %d in %g s", what, problem, failures,
                    self.retry.attempts - 1, wait)
        self.retries += 1
        self.deps.sleep(wait)
        return failures

    # -- endpoints ---------------------------------------------------------------------
    def exchange_info(self) -> dict:
        """`GET /api/v3/exchangeInfo` (all symbols)."""
        return self.call("exchangeInfo", EXCHANGE_INFO_WEIGHT, self.client.get_exchange_info)

    def now(self) -> int:
        """The exchange's "now" in ms (server time, or the replay time when earlier);
        also measures the server clock's offset from the local clock."""
        before = self.deps.clock()
        answer = self.call("time", TIME_WEIGHT, self.client.get_server_time)
        after = self.deps.clock()
        server = int(answer["serverTime"])
        self.offset_ms = server - int((before + after) * 500)
        headers = getattr(self.client.response, "headers", None) or {}
        replay = headers.get(REPLAY_TIME_HEADER)
        if replay is not None and str(replay).isdigit():
            return min(server, int(replay))
        return server

    def klines(self, symbol: str, interval: str, start: int, end: int, limit: int) -> list:
        """`GET /api/v3/klines` rows with open times in [start, end] (both inclusive)."""
        return self.call(f"{symbol} klines", KLINES_WEIGHT, self.client.get_klines,
                         symbol=symbol, interval=interval, startTime=start, endTime=end,
                         limit=limit)


def network_problem(exc: Exception) -> str:
    """A short description of a failed request: the exception kind and the OS-level reason."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    text = str(reason if reason is not None else exc)
    found = re.search(r"\[Errno -?\d+\] [^)'\"]+", text)
    if found:
        return f"{type(exc).__name__} ({found.group(0).strip()})"
    first = text.splitlines()[0][:160] if text else ""
    return type(exc).__name__ + (f" ({first})" if first else "")


def weight_limit_of(info: dict) -> int:
    """The REQUEST_WEIGHT per minute from exchangeInfo (the mainnet default when absent)."""
    for item in info.get("rateLimits", []) or []:
        if item.get("rateLimitType") == "REQUEST_WEIGHT" and item.get("interval") == "MINUTE":
            return int(item["limit"]) // max(int(item.get("intervalNum", 1)), 1)
    return DEFAULT_WEIGHT_LIMIT


def parse_klines(rows: list, step: int, now: int, end: int, what: str) -> tuple[Candles, int]:
    """Closed candles of kline rows (close time before `now`, open before `end`), and how
    many rows were dropped as still open or out of range."""
    if not isinstance(rows, list):
        raise ExchangeError(f"{what}: expected a list of klines, got {type(rows).__name__}")
    if not rows:
        return Candles.from_columns({name: np.empty(0) for name in
                                     ("open_time", "open", "high", "low", "close", "volume")}), 0
    try:
        cols = list(zip(*rows, strict=True))
        if len(cols) < 11:
            raise ValueError("rows have fewer than 11 fields")
        open_time = np.array(cols[0], dtype=np.int64)
        close_time = np.array(cols[6], dtype=np.int64)
        data = {"open_time": open_time}
        for name, i in (("open", 1), ("high", 2), ("low", 3), ("close", 4), ("volume", 5),
                        ("quote_volume", 7), ("taker_buy_base", 9), ("taker_buy_quote", 10)):
            data[name] = np.array(cols[i], dtype=np.float64)
        data["trades"] = np.array(cols[8], dtype=np.int64)
    except (ValueError, TypeError) as exc:
        raise ExchangeError(f"{what}: malformed kline rows from the exchange ({exc})") from None
    bad = np.flatnonzero(close_time != open_time + step - 1)
    if bad.size:
        i = int(bad[0])
        raise ExchangeError(f"{what}: kline at {int(open_time[i])} has close time "
                            f"{int(close_time[i])}, expected {int(open_time[i]) + step - 1}")
    keep = int(np.count_nonzero((close_time < now) & (open_time < end)))
    if not np.all((close_time[:keep] < now) & (open_time[:keep] < end)):
        raise ExchangeError(f"{what}: kline rows are not in time order")
    candles = Candles.from_columns({k: v[:keep] for k, v in data.items()})
    return candles, len(rows) - keep


def translate(what: str, status: int, code: int, message: str,
              retry_after: float = 0.0) -> Exception:
    """The project exception for an exchange error answer."""
    text = f"{what}: {message} (code {code}, HTTP {status})"
    if status in (418, 429):
        return RateLimitError(text, code, status, retry_after)
    if code == -1121:
        return UnknownSymbolError(text)
    if code == -1013:
        return FilterError(text, code, status)
    if code == -2010:
        if BALANCE_MSG in message.lower():
            return InsufficientBalanceError(text, code, status)
        return OrderRejectedError(text, code, status)
    if code in (-2011, -2013):
        return OrderNotFoundError(text, code, status)
    if code in AUTH_CODES or status == 401:
        return AuthenticationError(text, code, status)
    if code == -1021:
        return ClockSkewError(text, code, status)
    if status >= 500:
        return RetryableExchangeError(text, code, status)
    return ExchangeError(text, code, status)
