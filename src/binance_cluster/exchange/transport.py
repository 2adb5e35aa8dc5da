"""The one Binance transport: python-binance 1.0.37 clients and what the bare client lacks.

Everything that speaks to Binance (mainnet, the spot testnet, or any base URL such as the
project's emulator) goes through a `Transport`: `fetch` (public klines), the exchange feed
of the paper broker and `BinanceBroker` (signed trading). It adds to the bare client
(binance-api.md sections 2, 4, 8 and 13.9):

- Client construction (`make_client`) without the constructor's ping, at mainnet, the
  testnet (python-binance's own testnet URL) or a base URL. The environment's proxy and CA
  bundle settings (`HTTPS_PROXY`, `NO_PROXY`, `REQUESTS_CA_BUNDLE`, ...) are read once, when
  the client is made: requests would read the whole environment again on every request
  (about a quarter of a loopback klines request's time).
- Rate limits: every answer's `X-MBX-USED-WEIGHT-1M` is read; with a `weight_limit`, a
  request that would take the used weight past (1 - headroom) of it waits for the next
  minute window of the server clock. A 429 or 418 is waited out for its `Retry-After`
  seconds (the exchange refused the request; it did not run), a bounded number of times.
- Retries: timeouts, dropped connections and 5xx answers are retried with capped
  exponential backoff when the call is safe to repeat (queries); for an unsafe one (a submit
  or cancel) they raise `Ambiguous`, for the caller to resolve.
- Server time: `sync_time` measures the server clock's offset from ours and signs with it
  (the sync client never does); signed calls resync every `time_sync_s`, and a -1021 answer
  triggers one resync and one more try (the request was refused before matching).
  `now()` is the exchange's "now": the server time, or the emulator's replay time
  (`X-Replay-Time`, not a Binance header) when earlier.
- Errors become the project's exceptions (`translate`), one line naming the call, never a
  key, secret or signature; callers never see python-binance or requests types.
- Kline rows become `Candles` (`parse_klines`), still-open rows dropped.
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
from binance_cluster.types import EXTRA_COLUMNS, Candles

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.binance.com"
PAGE_LIMIT = 1000
KLINES_WEIGHT = 2
TIME_WEIGHT = 1
EXCHANGE_INFO_WEIGHT = 20
DEFAULT_WEIGHT_LIMIT = 6000
WINDOW_MS = 60_000
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
# Not Binance headers: sent by the project's emulator. The replay clock (ms), so clients can
# tell the market's "now" from the server clock that /api/v3/time reports (binance-api.md
# section 13.1); and the kline extras the replayed store does not know (sent as zeros).
REPLAY_TIME_HEADER = "X-Replay-Time"
UNKNOWN_FIELDS_HEADER = "X-Replay-Unknown-Fields"
BALANCE_MSG = "insufficient balance"
AUTH_CODES = (-2014, -2015, -1022)
OFFSET_NOTE_MS = 500  # an offset change larger than this is logged


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
class TimeDeps:
    """Injected time functions: `sleep(seconds)` and `clock()` (epoch seconds)."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time


class Ambiguous(Exception):
    """An unsafe request that may or may not have been executed (timeout, dropped answer, 5xx)."""

    def __init__(self, problem: str, status: int = 0, code: int = 0):
        super().__init__(problem)
        self.problem = problem
        self.status = status
        self.code = code


def make_client(base_url: str | None = None, *, key: str | None = None,
                secret: str | None = None, testnet: bool = False, timeout_s: float = 10.0,
                recv_window_ms: int | None = None):
    """A python-binance Client (no ping): mainnet, the spot testnet, or `base_url`."""
    from binance import Client

    client = Client(key, secret, ping=False, testnet=testnet and base_url is None,
                    requests_params={"timeout": timeout_s})
    if base_url is not None:
        client.API_URL = base_url.rstrip("/") + "/api"
    if recv_window_ms is not None:
        client.REQUEST_RECVWINDOW = int(recv_window_ms)
    api = client.API_TESTNET_URL if getattr(client, "testnet", False) else client.API_URL
    settle_environment(client.session, str(api))
    return client


def settle_environment(session, url: str) -> None:
    """Fix `session`'s proxies and CA bundle for `url` from the environment now, and stop
    requests from reading the environment again on every request."""
    import os

    from requests.utils import get_environ_proxies

    for scheme, proxy in get_environ_proxies(url).items():
        if scheme != "no":     # NO_PROXY was applied to `url` just now
            session.proxies.setdefault(scheme, proxy)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle and session.verify is True:
        session.verify = bundle
    session.trust_env = False


class Transport:
    """One python-binance client and the request loop around it; see the module docstring.

    `name` prefixes log lines; `stats` counts requests, retries, rate-limit waits, weight
    throttle waits and time syncs (callers may add their own keys).
    """

    def __init__(self, client, *, name: str = "binance", retry: RetryPolicy = RetryPolicy(),
                 deps: TimeDeps = TimeDeps(), weight_limit: int = 0, headroom: float = 0.1,
                 time_sync_s: float = 300.0):
        self.client = client
        self.name = name
        api = client.API_TESTNET_URL if getattr(client, "testnet", False) else client.API_URL
        self.base_url = str(api).removesuffix("/api")  # where requests go (named in errors)
        self.retry = retry
        self.deps = deps
        self.weight_limit = weight_limit
        self.headroom = headroom
        self.time_sync_s = time_sync_s
        self.offset_ms = 0  # server clock minus local clock
        self.synced_at: float | None = None
        self.last_sent_ms = 0  # ~ the timestamp python-binance signed the last request with
        self.used_weight: int | None = None
        self._used_window: int | None = None
        self.stats = {"requests": 0, "retries": 0, "rate_limit_waits": 0, "throttle_waits": 0,
                      "resyncs": 0}

    @classmethod
    def public(cls, base_url: str = DEFAULT_BASE_URL, timeout_s: float = 10.0,
               retry: RetryPolicy = RetryPolicy(), deps: TimeDeps = TimeDeps(),
               weight_limit: int = DEFAULT_WEIGHT_LIMIT, headroom: float = 0.1,
               name: str = "fetch") -> "Transport":
        """A keyless transport for the public endpoints at `base_url`, weight-throttled."""
        return cls(make_client(base_url, timeout_s=timeout_s), name=name, retry=retry,
                   deps=deps, weight_limit=weight_limit, headroom=headroom)

    def close(self) -> None:
        """Close the HTTP session."""
        self.client.close_connection()

    # -- clocks and weight -----------------------------------------------------------------
    def server_ms(self) -> int:
        """The server clock now, as last measured by `sync_time`."""
        return int(self.deps.clock() * 1000) + self.offset_ms

    def sync_time(self) -> int:
        """Measure the server clock's offset from ours and sign with it from now on; returns
        the server time."""
        before = self.deps.clock()
        answer = self.call("time", self.client.get_server_time, weight=TIME_WEIGHT)
        after = self.deps.clock()
        server = int(answer["serverTime"])
        offset = server - int((before + after) * 500)
        if self.synced_at is not None and abs(offset - self.offset_ms) > OFFSET_NOTE_MS:
            log.info("%s: server clock offset changed from %+d ms to %+d ms", self.name,
                     self.offset_ms, offset)
        self.offset_ms = offset
        self.client.timestamp_offset = offset
        self.synced_at = after
        self.stats["resyncs"] += 1
        return server

    def now(self) -> int:
        """The exchange's "now" in ms (server time, or the replay time when earlier); also
        measures the server clock's offset."""
        server = self.sync_time()
        headers = getattr(self.client.response, "headers", None) or {}
        replay = headers.get(REPLAY_TIME_HEADER)
        if replay is not None and str(replay).isdigit():
            return min(server, int(replay))
        return server

    def _note_weight(self, headers) -> None:
        value = headers.get(WEIGHT_HEADER) if headers is not None else None
        if value is not None and str(value).isdigit():
            self.used_weight = int(value)
            self._used_window = self.server_ms() // WINDOW_MS

    def _throttle(self, weight: int) -> None:
        """Wait for the next weight window when this request would pass the safe limit."""
        if self.weight_limit <= 0 or self.used_weight is None:
            return
        if self.server_ms() // WINDOW_MS != self._used_window:
            self.used_weight = None  # a new window has begun since the last answer
            return
        if self.used_weight + weight <= self.weight_limit * (1 - self.headroom):
            return
        wait = (WINDOW_MS - self.server_ms() % WINDOW_MS) / 1000 + 0.5
        log.info("%s: used weight %d of %d this minute: waiting %.1f s for the next window",
                 self.name, self.used_weight, self.weight_limit, wait)
        self.stats["throttle_waits"] += 1
        self.deps.sleep(wait)
        self.used_weight = None

    def _retry_after(self, exc) -> float:
        headers = getattr(exc.response, "headers", None) or {}
        try:
            return max(0.0, float(headers.get("Retry-After")))
        except (TypeError, ValueError):
            return self.retry.default_retry_after_s

    def _failed(self, what: str, problem: str, failures: int, status: int, code: int) -> int:
        failures += 1
        if failures >= self.retry.attempts:
            raise RetryableExchangeError(f"{what}: giving up after {failures} attempts at "
                                         f"{self.base_url}: {problem}", code, status)
        wait = self.retry.backoff(failures)
        log.warning("%s: %s: %s; retry %d of %d in %g s", self.name, what, problem, failures,
                    self.retry.attempts - 1, wait)
        self.stats["retries"] += 1
        self.deps.sleep(wait)
        return failures

    # -- the request loop ------------------------------------------------------------------
    def call(self, what: str, fn: Callable[..., Any], *, weight: int = 1, safe: bool = True,
             signed: bool = False, **params) -> Any:
        """`fn(**params)` (a method of `self.client`; `what` names it in errors) with weight
        throttling, 429/418 waits, a -1021 resync when `signed`, and retries of timeouts,
        dropped answers and 5xx when `safe` (else they raise `Ambiguous`)."""
        from binance.exceptions import BinanceAPIException, BinanceRequestException
        from requests.exceptions import ChunkedEncodingError, ConnectionError, Timeout

        failures = waits = 0
        resynced = False
        while True:
            if signed and (self.synced_at is None or
                           self.deps.clock() - self.synced_at > self.time_sync_s):
                self.sync_time()
            self._throttle(weight)
            self.stats["requests"] += 1
            self.last_sent_ms = self.server_ms()
            try:
                result = fn(**params)
            except BinanceAPIException as exc:
                self._note_weight(getattr(exc.response, "headers", None))
                status, code = int(exc.status_code or 0), int(exc.code or 0)
                if status in (418, 429):
                    waits += 1
                    wait = self._retry_after(exc)
                    if waits > self.retry.rate_limit_waits:
                        raise RateLimitError(f"{what}: still rate limited (HTTP {status}) after "
                                             f"{waits - 1} waits; giving up", code, status,
                                             wait) from None
                    log.warning("%s: %s: HTTP %d (%s): waiting %g s (Retry-After)", self.name,
                                what, status, exc.message, wait)
                    self.stats["rate_limit_waits"] += 1
                    self.used_weight = None
                    self.deps.sleep(wait)
                    continue
                if code == -1021 and signed and not resynced:
                    log.warning("%s: %s: -1021 %s: resynchronising the clock", self.name, what,
                                exc.message)
                    resynced = True
                    self.sync_time()
                    continue
                if status >= 500:
                    problem = f"HTTP {status} ({exc.message})"
                    if not safe:
                        raise Ambiguous(problem, status, code) from None
                    failures = self._failed(what, problem, failures, status, code)
                    continue
                raise translate(what, status, code, str(exc.message),
                                self._retry_after(exc)) from None
            except (ConnectionError, Timeout, ChunkedEncodingError,
                    BinanceRequestException) as exc:
                problem = network_problem(exc)
                if not safe:
                    raise Ambiguous(problem) from None
                failures = self._failed(what, problem, failures, 0, 0)
                continue
            self._note_weight(getattr(self.client.response, "headers", None))
            return result

    def unknown_fields(self) -> tuple[str, ...]:
        """The kline extras the last answer said it does not know (the emulator's
        `X-Replay-Unknown-Fields`; Binance knows them all)."""
        headers = getattr(self.client.response, "headers", None) or {}
        value = headers.get(UNKNOWN_FIELDS_HEADER) or ""
        return tuple(name for name in value.split(",") if name in EXTRA_COLUMNS)

    # -- public endpoints --------------------------------------------------------------------
    def exchange_info(self) -> dict:
        """`GET /api/v3/exchangeInfo` (all symbols)."""
        return self.call("exchangeInfo", self.client.get_exchange_info,
                         weight=EXCHANGE_INFO_WEIGHT)

    def klines(self, symbol: str, interval: str, start: int | None, end: int | None,
               limit: int) -> list:
        """`GET /api/v3/klines` rows with open times in [start, end] (both inclusive; a
        bound None is not sent)."""
        return self.call(f"{symbol} klines", self.client.get_klines, weight=KLINES_WEIGHT,
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


def weight_limit_of(info: dict, default: int = DEFAULT_WEIGHT_LIMIT) -> int:
    """The REQUEST_WEIGHT per minute from exchangeInfo (`default` when it lists none)."""
    for item in info.get("rateLimits", []) or []:
        if item.get("rateLimitType") == "REQUEST_WEIGHT" and item.get("interval") == "MINUTE":
            return int(item["limit"]) // max(int(item.get("intervalNum", 1)), 1)
    return default


def parse_klines(rows: list, step: int, now: int, end: int, what: str,
                 unknown: tuple[str, ...] = ()) -> tuple[Candles, int]:
    """Closed candles of kline rows (close time before `now`, open before `end`), and how
    many rows were dropped as still open or out of range. Extras named in `unknown` are left
    out (the store then marks them unknown itself)."""
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
    candles = Candles.from_columns({k: v[:keep] for k, v in data.items() if k not in unknown})
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
