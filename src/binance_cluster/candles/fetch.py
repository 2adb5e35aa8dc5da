"""Download klines from Binance (or the project's emulator) into the candle store.

One python-binance 1.0.37 `Client` per process calls the public kline endpoint
(`get_klines` with startTime, endTime and limit 1000). For each symbol the download resumes
after the last stored candle and appends page by page through the symbol's `StoreWriter`, so
an interrupted fetch keeps every page written. The still-open candle is never stored: rows
whose close time is at or after the exchange's "now" are dropped. That "now" is the server
time from `/api/v3/time`, or, when the answer carries `X-Replay-Time` (the emulator's replay
clock, which lags its server clock), the earlier of the two.

Rate limits: every answer's `X-MBX-USED-WEIGHT-1M` is read; when the next request would take
the used weight past (1 - headroom) of the exchange's REQUEST_WEIGHT limit, the fetch waits
for the next minute window of the server clock. A 429 or 418 is waited out for its
`Retry-After` seconds. Network errors, timeouts and 5xx answers are retried with capped
exponential backoff, a bounded number of times, then the symbol fails with one clear line.
Gaps the exchange itself has in the fetched range are logged (count and largest).

Under mpirun the symbols are divided among ranks by expected candle count
(`parallel.map_units`); each rank writes only the files of its own symbols. Symbols are all
checked against `exchangeInfo` at rank 0 before anything is downloaded. `sleep` and `clock`
are injectable (`FetchDeps`) so rate-limit behaviour is testable without waiting.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from binance_cluster.errors import (ConfigError, ExchangeError, RateLimitError,
                                    RetryableExchangeError, UnknownSymbolError)
from binance_cluster.parallel import Comm, UnitResult, get_comm, map_units, on_root
from binance_cluster.progress import Progress
from binance_cluster.candles.store import CandleStore, check_symbol
from binance_cluster.types import (Candles, format_duration_ms, format_time_ms, interval_ms,
                                   interval_origin_ms)

log = logging.getLogger(__name__)

MAX_RESERVE_ROWS = 1_100_000  # about two years of 1m candles: the most a fetch preallocates

DEFAULT_BASE_URL = "https://api.binance.com"
PAGE_LIMIT = 1000
KLINES_WEIGHT = 2
TIME_WEIGHT = 1
EXCHANGE_INFO_WEIGHT = 20
DEFAULT_WEIGHT_LIMIT = 6000
WINDOW_MS = 60_000
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
REPLAY_TIME_HEADER = "X-Replay-Time"  # sent by the project's emulator, not by Binance


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
class FetchConfig:
    """What to download and from where. `end_ms` None means up to the exchange's now."""

    store: Path
    symbols: tuple[str, ...]
    start_ms: int
    interval: str = "1m"
    end_ms: int | None = None
    base_url: str = DEFAULT_BASE_URL
    timeout_s: float = 10.0
    page_limit: int = PAGE_LIMIT
    weight_headroom: float = 0.1
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        object.__setattr__(self, "store", Path(self.store))
        object.__setattr__(self, "symbols", tuple(check_symbol(s) for s in self.symbols))
        if not self.symbols:
            raise ConfigError("fetch: no symbols given")
        if len(set(self.symbols)) != len(self.symbols):
            raise ConfigError("fetch: a symbol is given twice")
        interval_ms(self.interval)
        if self.end_ms is not None and self.end_ms <= self.start_ms:
            raise ConfigError(f"fetch: --end {format_time_ms(self.end_ms)} is not after --start "
                              f"{format_time_ms(self.start_ms)}")
        if not 1 <= self.page_limit <= 1000:
            raise ConfigError("fetch: page_limit must be in 1..1000")
        if not 0 <= self.weight_headroom < 1:
            raise ConfigError("fetch: weight_headroom must be in [0, 1)")
        if not self.timeout_s > 0:
            raise ConfigError("fetch: timeout must be above zero")


@dataclass(frozen=True, slots=True)
class FetchDeps:
    """Injected time functions: `sleep(seconds)` and `clock()` (epoch seconds)."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time


@dataclass(frozen=True, slots=True)
class SymbolJob:
    """One symbol to download: open times [start, end), rows closing before `now` only."""

    symbol: str
    interval: str
    start: int
    end: int
    now: int
    stored_last: int | None
    expected: int


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """The validated jobs and what the exchange said about itself."""

    jobs: tuple[SymbolJob, ...]
    weight_limit: int
    now: int


@dataclass(frozen=True, slots=True)
class SymbolReport:
    """What fetching one symbol did."""

    symbol: str
    interval: str
    added: int
    first: int | None
    last: int | None
    stored_rows: int
    gaps: int
    missing: int
    largest_gap: int
    largest_gap_after: int | None
    requests: int
    retries: int
    rate_limit_waits: int
    throttle_waits: int
    rank: int
    pid: int
    seconds: float


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """Per-symbol results at rank 0 (in the order the symbols were given)."""

    plan: FetchPlan
    results: tuple[UnitResult, ...]

    @property
    def reports(self) -> list[SymbolReport]:
        return [r.value for r in self.results if r.ok]

    @property
    def failures(self) -> list[UnitResult]:
        return [r for r in self.results if not r.ok]


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
                failures = self._failed(what, _network_problem(exc), failures, 0, 0)
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


def _network_problem(exc: Exception) -> str:
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


@dataclass(slots=True)
class _Gaps:
    """Missing candles between consecutive open times, tallied over the fetched range."""

    step: int
    count: int = 0
    missing: int = 0
    largest: int = 0
    largest_after: int | None = None

    def add(self, previous: int | None, times: np.ndarray) -> None:
        t = times if previous is None else np.concatenate([[previous], times])
        if t.size < 2:
            return
        d = np.diff(t)
        idx = np.flatnonzero(d > self.step)
        if not idx.size:
            return
        miss = d[idx] // self.step - 1
        self.count += int(idx.size)
        self.missing += int(miss.sum())
        k = int(np.argmax(miss))
        if int(miss[k]) > self.largest:
            self.largest = int(miss[k])
            self.largest_after = int(t[idx[k]])


def plan_fetch(config: FetchConfig, client: PublicClient,
               store: CandleStore | None = None) -> FetchPlan:
    """Check every symbol against exchangeInfo and work out each one's range; nothing is written.

    UnknownSymbolError names the symbols the exchange does not list.
    """
    store = store or CandleStore(config.store)
    info = client.exchange_info()
    listed = {s.get("symbol") for s in info.get("symbols", [])}
    missing = [s for s in config.symbols if s not in listed]
    if missing:
        if len(missing) == 1:
            raise UnknownSymbolError(f"fetch: symbol {missing[0]} is not listed by the exchange "
                                     "(-1121)")
        raise UnknownSymbolError(f"fetch: symbols {', '.join(missing)} are not listed by the "
                                 "exchange (-1121)")
    limit = weight_limit_of(info)
    client.weight_limit = limit
    now = client.now()
    step = interval_ms(config.interval)
    origin = interval_origin_ms(config.interval)
    end = now if config.end_ms is None else min(config.end_ms, now)
    first = origin + -(-(config.start_ms - origin) // step) * step  # first grid time >= start
    jobs = []
    for symbol in config.symbols:
        last = None
        if store.has(symbol, config.interval):
            span = store.span(symbol, config.interval)
            last = None if span is None else span[1]
        start = first if last is None else max(first, last + step)
        if last is not None and start > last + step:
            log.warning("fetch: %s %s: --start %s is after the last stored candle (%s): the "
                        "store will have a hole in between", symbol, config.interval,
                        format_time_ms(start), format_time_ms(last))
        elif last is not None and first < last:
            log.info("fetch: %s %s: stored up to %s; resuming after it", symbol,
                     config.interval, format_time_ms(last))
        expected = max(0, -(-(end - start) // step))
        jobs.append(SymbolJob(symbol, config.interval, start, end, now, last, expected))
    return FetchPlan(tuple(jobs), limit, now)


def fetch_symbol(job: SymbolJob, config: FetchConfig, client: PublicClient, rank: int = 0,
                 on_page: Callable[[int], None] | None = None) -> SymbolReport:
    """Download `job` page by page into its store file; returns what was done.

    `on_page(n)` is called after each stored page with the number of candle slots of the
    range it covered (gaps and the time before a listing included), for progress.
    """
    started = time.perf_counter()
    counters = (client.requests, client.retries, client.rate_limit_waits, client.throttle_waits)
    store = CandleStore(config.store)
    step = interval_ms(job.interval)
    gaps = _Gaps(step)
    joined = job.stored_last is not None and job.start == job.stored_last + step
    previous = job.stored_last if joined else None  # a hole left by --start is not a gap
    cursor = job.start
    added = 0
    first = last = None
    what = f"{job.symbol} {job.interval}"
    if cursor < job.end:
        with store.writer(job.symbol) as writer:
            create = job.stored_last is None
            while cursor < job.end:
                rows = client.klines(job.symbol, job.interval, cursor, job.end - 1,
                                     config.page_limit)
                candles, dropped = parse_klines(rows, step, job.now, job.end, what)
                n = len(candles)
                if n:
                    if int(candles.open_time[0]) < cursor:
                        raise ExchangeError(f"{what}: the exchange answered candles from "
                                            f"{int(candles.open_time[0])}, before startTime "
                                            f"{cursor}")
                    if first is None:  # room for the rest of the span, counted from real data
                        writer.reserve(job.interval, min(
                            (job.end - int(candles.open_time[0])) // step, MAX_RESERVE_ROWS))
                    gaps.add(previous, candles.open_time)
                    attrs = {"source": f"binance klines via {config.base_url}"} if create else {}
                    result = writer.append(job.interval, candles, **attrs)
                    create = False
                    added += result.added
                    first = int(candles.open_time[0]) if first is None else first
                    previous = last = int(candles.open_time[-1])
                    if on_page is not None:
                        on_page((last + step - cursor) // step)  # candle slots now covered
                    cursor = last + step
                if len(rows) < config.page_limit or dropped or n == 0:
                    break
    if gaps.count:
        log.warning("fetch: %s: the exchange has %d gap(s) in the fetched range: %d candles "
                    "missing, the largest %d (%s) after %s", what, gaps.count, gaps.missing,
                    gaps.largest, format_duration_ms(gaps.largest * step),
                    format_time_ms(gaps.largest_after))
    stored = store.count(job.symbol, job.interval) if store.has(job.symbol, job.interval) else 0
    log.info("fetch: %s: %d new candles%s, %d requests", what, added,
             f" ({format_time_ms(first)} .. {format_time_ms(last)})" if added else "",
             client.requests - counters[0])
    return SymbolReport(
        symbol=job.symbol, interval=job.interval, added=added, first=first, last=last,
        stored_rows=stored, gaps=gaps.count, missing=gaps.missing, largest_gap=gaps.largest,
        largest_gap_after=gaps.largest_after, requests=client.requests - counters[0],
        retries=client.retries - counters[1],
        rate_limit_waits=client.rate_limit_waits - counters[2],
        throttle_waits=client.throttle_waits - counters[3], rank=rank, pid=os.getpid(),
        seconds=time.perf_counter() - started)


def run_fetch(config: FetchConfig, comm: Comm | None = None, deps: FetchDeps = FetchDeps(),
              show_progress: bool = True, debug: bool = False) -> FetchOutcome | None:
    """Plan at rank 0, download the symbols split across ranks; the outcome at rank 0.

    Raises UnknownSymbolError (on every rank) before anything is written when the exchange
    does not list a symbol. Per-symbol failures are in `FetchOutcome.failures`.
    """
    comm = comm or get_comm()
    clients: dict[str, PublicClient] = {}

    def client(limit: int = DEFAULT_WEIGHT_LIMIT) -> PublicClient:
        if "c" not in clients:
            clients["c"] = PublicClient(config.base_url, config.timeout_s, config.retry, deps,
                                        limit, config.weight_headroom)
        clients["c"].weight_limit = limit
        return clients["c"]

    plan: FetchPlan = on_root(comm, lambda: plan_fetch(config, client()))
    jobs = list(plan.jobs)
    expected = [j.expected for j in jobs]
    bar = Progress(sum(expected), "fetch", enabled=show_progress and comm.rank == 0,
                   unit="candles")
    counted = [0] * len(jobs)

    def unit(index: int) -> SymbolReport:
        job = jobs[index]

        def on_page(n: int) -> None:
            if comm.rank == 0:
                step = min(n, max(expected[index] - counted[index], 0))
                counted[index] += step
                bar.update(step, note=job.symbol)

        return fetch_symbol(job, config, client(plan.weight_limit), comm.rank, on_page)

    def finished(result: UnitResult) -> None:
        rest = max(expected[result.index] - counted[result.index], 0)
        counted[result.index] += rest
        bar.update(rest, note=result.name + ("" if result.ok else " failed"))

    try:
        results = map_units(comm, list(range(len(jobs))), unit,
                            costs=[max(e, 1) for e in expected], names=[j.symbol for j in jobs],
                            progress=finished, debug=debug)
    finally:
        bar.close()
    if comm.rank != 0:
        return None
    return FetchOutcome(plan, tuple(results))
