"""The live job: the backtest job file (same TOML, read by `backtest.job`) plus its `[live]` table.

    [live]
    missed_bars = "catch_up"     # or "skip" (live/bars.py): bars missed while the loop was down
    max_catch_up = 60            # catch_up replays at most this many bars, older ones are skipped
    poll_seconds = 1.0           # how often the exchange's clock is read while waiting for a close
    timeout_seconds = 10.0       # an exchange request unanswered this long has timed out
    recv_window_ms = 5000        # how long the exchange accepts a signed request after it was signed
    journal = "results/paper/journal.sqlite"   # default: OUTPUT/journal.sqlite
    heartbeat = "results/paper/heartbeat.json" # default: OUTPUT/heartbeat.json
    exits = "exchange"           # protective OCO on the exchange; "bot": the loop watches the levels
    [live.risk]                  # live/risk.py RiskLimits; --mode live needs the four limits
    max_order_notional = 1000
    max_open_positions = 3
    max_exposure = 3000
    max_daily_loss = 200
    kill_switch = "results/paper/KILL"   # the file that stops new positions
    flatten_on_kill = false

The backtest reads the same file and ignores `[live]`; `start` and `end` are the backtest's (the
live loop trades from the exchange's "now"). Every problem is one ConfigError naming the file
and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from binance_cluster.backtest.job import Job, Overrides, load_job
from binance_cluster.jobfile import (Where, no_unknown, read_integer, read_number, read_string,
                                     read_toml, show_value)
from binance_cluster.live.bars import POLICIES
from binance_cluster.live.risk import LIMIT_NAMES, RiskLimits

LIVE_KEYS = ("missed_bars", "max_catch_up", "poll_seconds", "timeout_seconds", "recv_window_ms",
             "journal", "heartbeat", "exits", "risk")
RISK_KEYS = LIMIT_NAMES + ("kill_switch", "flatten_on_kill")
MODES = ("paper", "testnet", "live")
EXIT_MODES = ("exchange", "bot")   # where protective exits live: see live.exits


@dataclass(frozen=True, slots=True)
class LiveSettings:
    """The `[live]` table, resolved (paths absolute)."""

    journal: str
    heartbeat: str
    missed_bars: str = "catch_up"
    max_catch_up: int = 60
    poll_seconds: float = 1.0
    timeout_seconds: float = 10.0
    recv_window_ms: int = 5000
    exits: str = "exchange"
    limits: RiskLimits = RiskLimits()


@dataclass(frozen=True, slots=True)
class LiveJob:
    """A backtest job and how to trade it live."""

    job: Job
    live: LiveSettings

    @property
    def name(self) -> str:
        """The job's name in client order ids and the journal (its file name without .toml)."""
        return Path(self.job.source).stem or "job"


def load_live_job(path: str, mode: str = "paper", overrides: Overrides | None = None) -> LiveJob:
    """Read and check a live job for `mode`; ConfigError naming the file and key.

    The store is not checked: the loop fetches the history it needs into it.
    """
    job = load_job(path, overrides, check_store=False)
    where = Where(str(path))
    live = read_live(read_toml(path).get("live", {}), job, where)
    check_for_mode(job, live, mode, where)
    return LiveJob(job, live)


def read_live(table: Any, job: Job, where: Where) -> LiveSettings:
    """The `[live]` table over its defaults."""
    if not isinstance(table, dict):
        raise where.error("live", f"must be a table, not {show_value(table)}")
    no_unknown(table, LIVE_KEYS, "live.", where)
    policy = read_string(table.get("missed_bars", "catch_up"), "live.missed_bars", where)
    if policy not in POLICIES:
        raise where.error("live.missed_bars", f"unknown policy {policy!r} (known: {', '.join(POLICIES)})")
    exits = read_string(table.get("exits", "exchange"), "live.exits", where)
    if exits not in EXIT_MODES:
        raise where.error("live.exits", f"unknown value {exits!r} (known: {', '.join(EXIT_MODES)})")
    poll = read_number(table.get("poll_seconds", 1.0), "live.poll_seconds", where)
    if not 0 < poll <= 60:
        raise where.error("live.poll_seconds", f"{poll} must be above 0 and at most 60")
    timeout = read_number(table.get("timeout_seconds", 10.0), "live.timeout_seconds", where)
    if not 0 < timeout <= 120:
        raise where.error("live.timeout_seconds", f"{timeout} must be above 0 and at most 120")
    recv_window = read_integer(table.get("recv_window_ms", 5000), "live.recv_window_ms", where,
                               low=1)
    if recv_window > 60_000:
        raise where.error("live.recv_window_ms", f"{recv_window} must be at most 60000 (Binance's "
                                                 "limit)")
    out = Path(job.output)
    journal = _path(table.get("journal"), out / "journal.sqlite", "live.journal", where)
    heartbeat = _path(table.get("heartbeat"), out / "heartbeat.json", "live.heartbeat", where)
    return LiveSettings(journal=journal, heartbeat=heartbeat, missed_bars=policy,
                        max_catch_up=read_integer(table.get("max_catch_up", 60), "live.max_catch_up",
                                                  where, low=1),
                        poll_seconds=poll, timeout_seconds=timeout, recv_window_ms=recv_window,
                        exits=exits, limits=_limits(table.get("risk", {}), where))


def _path(value: Any, default: Path, key: str, where: Where) -> str:
    if value is None:
        return str(default)
    return str(Path(read_string(value, key, where)).expanduser().absolute())


def _limits(table: Any, where: Where) -> RiskLimits:
    if not isinstance(table, dict):
        raise where.error("live.risk", f"must be a table, not {show_value(table)}")
    no_unknown(table, RISK_KEYS, "live.risk.", where)
    values: dict[str, Any] = {}
    for name in LIMIT_NAMES:
        if name not in table:
            continue
        key = f"live.risk.{name}"
        value = table[name]
        if name == "max_open_positions":
            values[name] = read_integer(value, key, where, low=1)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise where.error(key, f"must be a number, not {show_value(value)}")
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise where.error(key, f"{value!r} is not a number") from None
        if not amount.is_finite() or amount <= 0:
            raise where.error(key, f"{value} must be above zero")
        values[name] = amount
    if "kill_switch" in table:
        values["kill_switch"] = Path(read_string(table["kill_switch"], "live.risk.kill_switch",
                                                 where)).expanduser().absolute()
    if "flatten_on_kill" in table:
        if not isinstance(table["flatten_on_kill"], bool):
            raise where.error("live.risk.flatten_on_kill", "must be true or false")
        values["flatten_on_kill"] = table["flatten_on_kill"]
    return RiskLimits(**values)


def check_for_mode(job: Job, live: LiveSettings, mode: str, where: Where) -> None:
    """ConfigError when the job cannot trade in `mode`: portfolio mode, the exchange's fee
    model, no shifts (paper trades are not rebuilt from fills), and for real money every limit."""
    if mode not in MODES:
        raise where.error("", f"unknown mode {mode!r} (known: {', '.join(MODES)})")
    if job.mode != "portfolio":
        raise where.error("mode", "the live loop trades one portfolio: set mode = \"portfolio\"")
    if job.risk.fee_model != "exchange" or job.risk.bnb_fees:
        raise where.error("risk.fee_model", "the live loop accounts as the exchange does: "
                                            "fee_model = \"exchange\" without bnb_fees")
    if job.risk.shifts:
        raise where.error("risk.shifts", "the shifts filter's paper trades are not traded live "
                                         "(set shifts = false)")
    if job.symbols == ("all",):
        raise where.error("symbols", "the live loop needs the symbols listed, not \"all\"")
    if mode == "live":
        missing = live.limits.missing()
        if missing:
            raise where.error(f"live.risk.{missing[0]}", "missing: --mode live trades real money "
                              f"and needs every risk limit ({', '.join(LIMIT_NAMES)})")
