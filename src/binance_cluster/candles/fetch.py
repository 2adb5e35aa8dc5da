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
are injectable (`transport.TimeDeps`) so rate-limit behaviour is testable without waiting.
The request loop (retries, waits, weight, server time) is `exchange.transport.Transport`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from binance_cluster.errors import ConfigError, ExchangeError, UnknownSymbolError
from binance_cluster.exchange.transport import (DEFAULT_BASE_URL, DEFAULT_WEIGHT_LIMIT,
                                                PAGE_LIMIT, RetryPolicy, TimeDeps,
                                                Transport, parse_klines, weight_limit_of)
from binance_cluster.parallel import Comm, UnitResult, get_comm, map_units, on_root
from binance_cluster.progress import Progress
from binance_cluster.candles.store import CandleStore, check_symbol
from binance_cluster.types import (format_duration_ms, format_time_ms, interval_ms,
                                   interval_origin_ms)

log = logging.getLogger(__name__)

MAX_RESERVE_ROWS = 1_100_000  # about two years of 1m candles: the most a fetch preallocates


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


def plan_fetch(config: FetchConfig, client: Transport,
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


def fetch_symbol(job: SymbolJob, config: FetchConfig, client: Transport, rank: int = 0,
                 on_page: Callable[[int], None] | None = None) -> SymbolReport:
    """Download `job` page by page into its store file; returns what was done.

    `on_page(n)` is called after each stored page with the number of candle slots of the
    range it covered (gaps and the time before a listing included), for progress.
    """
    started = time.perf_counter()
    counters = dict(client.stats)
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
                candles, dropped = parse_klines(rows, step, job.now, job.end, what,
                                                client.unknown_fields())
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
    done = {k: v - counters[k] for k, v in client.stats.items()}
    log.info("fetch: %s: %d new candles%s, %d requests", what, added,
             f" ({format_time_ms(first)} .. {format_time_ms(last)})" if added else "",
             done["requests"])
    return SymbolReport(
        symbol=job.symbol, interval=job.interval, added=added, first=first, last=last,
        stored_rows=stored, gaps=gaps.count, missing=gaps.missing, largest_gap=gaps.largest,
        largest_gap_after=gaps.largest_after, requests=done["requests"],
        retries=done["retries"], rate_limit_waits=done["rate_limit_waits"],
        throttle_waits=done["throttle_waits"], rank=rank, pid=os.getpid(),
        seconds=time.perf_counter() - started)


def run_fetch(config: FetchConfig, comm: Comm | None = None, deps: TimeDeps = TimeDeps(),
              show_progress: bool = True, debug: bool = False) -> FetchOutcome | None:
    """Plan at rank 0, download the symbols split across ranks; the outcome at rank 0.

    Raises UnknownSymbolError (on every rank) before anything is written when the exchange
    does not list a symbol. Per-symbol failures are in `FetchOutcome.failures`.
    """
    comm = comm or get_comm()
    clients: dict[str, Transport] = {}

    def client(limit: int = DEFAULT_WEIGHT_LIMIT) -> Transport:
        if "c" not in clients:
            clients["c"] = Transport.public(config.base_url, config.timeout_s, config.retry,
                                            deps, limit, config.weight_headroom)
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
