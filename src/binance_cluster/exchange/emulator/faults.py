"""Seeded, deterministic fault injection for the emulator's API routes.

Off by default. A `FaultConfig` (set with `POST /admin/faults`) gives each fault kind a rate
and an optional explicit queue of faults for the next eligible requests (`"ok"` in the queue
lets one request through); once the queue is empty, one seeded random
draw is made per eligible request, from a sequence of its own per endpoint (method and path) in
arrival order: a serial client of an endpoint sees the same faults on every run, however many
requests other clients (other threads, other processes) send to other endpoints meanwhile.
Every injected fault is logged and counted, in total and per endpoint (`GET /admin/faults`).

Kinds and when they act:

- `5xx`: answer `status_5xx` (default 503) with a Binance error body instead of running the
  handler (execution status unknown, as on Binance).
- `429` / `418`: answer a rate-limit refusal with `Retry-After: retry_after`.
- `delay`: receive the whole request, wait `delay_s`, then handle it: a client that timed out
  meanwhile sees an error although the request (an order) is still carried out.
- `drop`: run the handler, then close the connection without answering. For an order this is
  "accepted but the response was lost"; the trading half only needs to restrict `paths`.
- `skew_ms`: not drawn per request: the server clock reports time shifted by this much while
  set; each `/api/v3/time` answer given with a skew is counted as a `skew` fault.
"""

from __future__ import annotations

import logging
import random
from collections import deque
from dataclasses import dataclass, field, fields

from binance_cluster.errors import ConfigError

log = logging.getLogger(__name__)

BEFORE_KINDS = ("5xx", "429", "418", "delay")
AFTER_KINDS = ("drop",)
KINDS = BEFORE_KINDS + AFTER_KINDS
COUNTED = KINDS + ("skew",)
STATUS_5XX = {500: (-1000, "An unknown error occurred while processing the request."),
              502: (-1001, "Internal error; unable to process your request. Please try again."),
              503: (-1008, "Server is currently overloaded with other requests. "
                           "Please try again in a few minutes."),
              504: (-1007, "Timeout waiting for response from backend server. "
                           "Send status unknown; execution status unknown.")}
LOG_SIZE = 500
PASS = "ok"  # a queue entry that lets one request through unharmed


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Which faults to inject, how often, and their parameters (all off by default)."""

    seed: int = 0
    rates: dict[str, float] = field(default_factory=dict)
    queue: tuple[str, ...] = ()
    paths: tuple[str, ...] | None = None
    retry_after: int = 1
    delay_s: float = 2.0
    status_5xx: int = 503
    skew_ms: int = 0

    @staticmethod
    def from_dict(data: dict, where: str = "faults") -> "FaultConfig":
        """Validate a JSON object into a FaultConfig; ConfigError names the bad key."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object")
        known = {f.name for f in fields(FaultConfig)}
        for key in data:
            if key not in known:
                raise ConfigError(f"{where}: unknown key {key!r} "
                                  f"(known: {', '.join(sorted(known))})")
        rates = data.get("rates", {}) or {}
        if not isinstance(rates, dict):
            raise ConfigError(f"{where}: rates must be an object of kind -> probability")
        clean: dict[str, float] = {}
        for kind, rate in rates.items():
            if kind not in KINDS:
                raise ConfigError(f"{where}: unknown fault kind {kind!r} in rates "
                                  f"(known: {', '.join(KINDS)})")
            if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise ConfigError(f"{where}: rates.{kind} must be a probability in [0, 1]")
            clean[kind] = float(rate)
        if sum(clean.values()) > 1:
            raise ConfigError(f"{where}: the fault rates add up to more than 1")
        queue = tuple(data.get("queue", ()) or ())
        for kind in queue:
            if kind not in KINDS and kind != PASS:
                raise ConfigError(f"{where}: unknown fault kind {kind!r} in queue")
        paths = data.get("paths")
        if paths is not None:
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise ConfigError(f"{where}: paths must be a list of request paths")
            paths = tuple(paths)
        status = int(data.get("status_5xx", 503))
        if status not in STATUS_5XX:
            raise ConfigError(f"{where}: status_5xx must be one of {sorted(STATUS_5XX)}")
        delay = float(data.get("delay_s", 2.0))
        retry_after = int(data.get("retry_after", 1))
        if delay < 0 or retry_after < 0:
            raise ConfigError(f"{where}: delay_s and retry_after must not be negative")
        return FaultConfig(seed=int(data.get("seed", 0)), rates=clean, queue=queue, paths=paths,
                           retry_after=retry_after, delay_s=delay, status_5xx=status,
                           skew_ms=int(data.get("skew_ms", 0)))

    def to_dict(self) -> dict:
        return {"seed": self.seed, "rates": dict(self.rates), "queue": list(self.queue),
                "paths": None if self.paths is None else list(self.paths),
                "retry_after": self.retry_after, "delay_s": self.delay_s,
                "status_5xx": self.status_5xx, "skew_ms": self.skew_ms}


class FaultInjector:
    """Draws faults for API requests per its FaultConfig; counts and logs each one."""

    def __init__(self, config: FaultConfig | None = None):
        self.counts = {kind: 0 for kind in COUNTED}
        self.by_endpoint: dict[str, dict[str, int]] = {}
        self.log: deque[dict] = deque(maxlen=LOG_SIZE)
        self._seq = 0
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        """Replace the configuration; every endpoint's random sequence restarts from the seed."""
        self.config = config
        self._rngs: dict[str, random.Random] = {}
        self._queue = deque(config.queue)

    def reset_counts(self) -> None:
        """Zero the counters and clear the log."""
        self.counts = {kind: 0 for kind in COUNTED}
        self.by_endpoint = {}
        self.log.clear()

    def _rng(self, endpoint: str) -> random.Random:
        rng = self._rngs.get(endpoint)
        if rng is None:
            # a str seed is hashed with SHA-512 by `random`: the same on every run
            rng = self._rngs[endpoint] = random.Random(f"{self.config.seed} {endpoint}")
        return rng

    @property
    def active(self) -> bool:
        return bool(self._queue) or any(r > 0 for r in self.config.rates.values())

    def draw(self, method: str, path: str) -> str | None:
        """The fault kind for this request, or None. Consumes the queue, then one random draw."""
        if not self.active:
            return None
        if self.config.paths is not None and path not in self.config.paths:
            return None
        if self._queue:
            kind = self._queue.popleft()
            return None if kind == PASS else kind
        x = self._rng(f"{method} {path}").random()
        acc = 0.0
        for kind in KINDS:
            acc += self.config.rates.get(kind, 0.0)
            if x < acc:
                return kind
        return None

    def record(self, kind: str, method: str, path: str, detail: str = "") -> None:
        """Count and log one injected fault."""
        self._seq += 1
        self.counts[kind] += 1
        endpoint = self.by_endpoint.setdefault(f"{method} {path}", {})
        endpoint[kind] = endpoint.get(kind, 0) + 1
        entry = {"n": self._seq, "kind": kind, "method": method, "path": path}
        if detail:
            entry["detail"] = detail
        self.log.append(entry)
        log.info("fault #%d injected: %s on %s %s%s", self._seq, kind, method, path,
                 f" ({detail})" if detail else "")

    def snapshot(self) -> dict:
        """Configuration, counters (`by_endpoint`: "METHOD /path" -> kind -> count) and the
        recent log for `GET /admin/faults`."""
        return {"config": self.config.to_dict(), "counts": dict(self.counts),
                "by_endpoint": {e: dict(c) for e, c in sorted(self.by_endpoint.items())},
                "total": sum(self.counts.values()), "queue_left": len(self._queue),
                "log": list(self.log)}
