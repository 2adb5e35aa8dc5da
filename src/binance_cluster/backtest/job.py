"""The backtest job: TOML in (read with `jobfile`), a frozen, fully resolved `Job` out, and the `Job` back to TOML.

A job file (see `jobs/demo.toml`)::

    store = "data/demo"                 # candle store directory
    symbols = ["BTCUSDT", "ETHUSDT"]    # or "all"
    interval = "1m"                     # other intervals are read if stored, else resampled from 1m
    start = "2025-05-04"                # optional, inclusive (UTC)
    end = "2025-05-11"                  # optional, exclusive
    mode = "sweep"                      # or "portfolio"
    output = "results/demo"
    top = 5                             # best units that get trades and equity curves
    rank_by = "sharpe"                  # metric that orders the results table
    chunk_size = 100                    # parameter combinations per work unit (sweep mode)
    models = "models/ml.h5"             # model store of strategies that use a model (ml_barrier);
                                        # `binance-cluster train` writes it from the [train]
                                        # section, which the backtest leaves to it (ml/job.py);
                                        # [live] is the live loop's (live/job.py), also ignored here

    [strategy]
    name = "sma_cross"
    [strategy.params]
    fast = {start = 5, stop = 50, step = 5}   # inclusive range
    slow = [20, 40, 80]                        # list; a plain value is a one-value grid

    [risk]                              # fields of binance_cluster.engine.simulate.Risk over the
    fee_rate = 0.001                    # strategy's risk defaults; stop_loss = false unsets one
    [rules]                             # default symbol rules (SymbolRules fields)
    tick_size = 0.01
    [rules.BTCUSDT]                     # per-symbol overrides
    tick_size = 0.1

Every problem is a `ConfigError` with one line naming the file and the key, raised by
`load_job` before anything is computed. `dump_job` writes the resolved job (every default
filled in, grids as lists) so that `load_job` of it gives an equal `Job`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from binance_cluster.errors import ConfigError, DataError, InputError
from binance_cluster.jobfile import (SYMBOL_RE, TomlTime, Where, field_kind, no_unknown, read_field,
                                     read_integer, read_interval, read_number, read_string,
                                     read_symbols, read_time, read_toml, show_value, toml_key,
                                     toml_value)
from binance_cluster.types import format_time_ms, interval_ms

MODES = ("sweep", "portfolio")
TOP_KEYS = ("store", "symbols", "interval", "start", "end", "mode", "output", "top", "rank_by",
            "chunk_size", "strategy", "risk", "rules", "models", "train", "live")
STRATEGY_KEYS = ("name", "params")
RANGE_KEYS = ("start", "stop", "step")
RULE_KEYS = ("tick_size", "step_size", "min_notional")
MAX_COMBINATIONS = 1_000_000
DEFAULT_TOP = 5
DEFAULT_RANK_BY = "sharpe"
DEFAULT_CHUNK = 100


@dataclass(frozen=True, slots=True)
class Job:
    """A resolved backtest job: every default filled in, every value checked."""

    store: str                                   # absolute store directory
    symbols: tuple[str, ...]
    interval: str
    start: int | None                            # ms UTC, inclusive
    end: int | None                              # ms UTC, exclusive
    mode: str
    output: str                                  # absolute output directory
    top: int
    rank_by: str
    chunk_size: int
    strategy: str
    params: tuple[tuple[str, tuple], ...]        # (name, values) in the strategy's order
    risk: Any                                    # binance_cluster.engine.simulate.Risk
    rules: Any                                   # default binance_cluster.engine.simulate.SymbolRules
    symbol_rules: tuple[tuple[str, Any], ...] = ()   # per-symbol overrides, symbol order
    models: str | None = None                    # model store file (absolute; `train` writes it)
    source: str = field(default="", compare=False)   # the file it was read from

    @property
    def n_combinations(self) -> int:
        """Number of parameter combinations of the grid."""
        return math.prod(len(values) for _, values in self.params)

    def grid(self) -> list[dict]:
        """Every parameter combination, last parameter varying fastest."""
        names = [name for name, _ in self.params]
        return [dict(zip(names, combo))
                for combo in itertools.product(*(values for _, values in self.params))]

    def rules_for(self, symbol: str) -> Any:
        """Symbol rules of `symbol`: its override, or the defaults."""
        for name, rules in self.symbol_rules:
            if name == symbol:
                return rules
        return self.rules


@dataclass(frozen=True, slots=True)
class Overrides:
    """Command-line settings that replace the job file's (None: keep the file's)."""

    store: str | None = None
    output: str | None = None
    symbols: tuple[str, ...] | None = None
    top: int | None = None
    rank_by: str | None = None


# -- reading ---------------------------------------------------------------------------------

def load_job(path: str | os.PathLike, overrides: Overrides | None = None,
             check_store: bool = True) -> Job:
    """Read, check and resolve a job file (see the module docstring).

    `check_store` also checks the store: it exists, holds the symbols and the interval (or
    1m candles to resample), and has candles in the time range.
    """
    where = Where(str(path))
    raw = read_toml(path)
    return resolve_job(raw, where, overrides or Overrides(), check_store)


def resolve_job(raw: dict, where: Where, overrides: Overrides, check_store: bool) -> Job:
    """Turn the parsed TOML of a job into a Job; ConfigError naming the key on any problem."""
    from binance_cluster.engine.metrics import METRIC_NAMES

    no_unknown(raw, TOP_KEYS, "", where)
    store = overrides.store if overrides.store is not None else raw.get("store")
    if store is None:
        raise where.error("store", "missing (the candle store directory, e.g. \"data/demo\")")
    store = read_string(store, "store", where)
    output = overrides.output if overrides.output is not None else raw.get("output")
    if output is None:
        output = str(Path("results") / Path(where.path).stem)
    output = read_string(output, "output", where)

    interval = read_interval(raw.get("interval", "1m"), "interval", where)
    start = read_time(raw.get("start"), "start", where)
    end = read_time(raw.get("end"), "end", where)
    if start is not None and end is not None and end <= start:
        raise where.error("end", f"{format_time_ms(end)} is not after start {format_time_ms(start)}")

    mode = read_string(raw.get("mode", "sweep"), "mode", where)
    if mode not in MODES:
        raise where.error("mode", f"unknown mode {mode!r} (known: {', '.join(MODES)})")
    top = overrides.top if overrides.top is not None else raw.get("top", DEFAULT_TOP)
    top = read_integer(top, "top", where, low=0)
    rank_by = overrides.rank_by if overrides.rank_by is not None else raw.get("rank_by", DEFAULT_RANK_BY)
    rank_by = read_string(rank_by, "rank_by", where)
    if rank_by not in METRIC_NAMES:
        raise where.error("rank_by", f"unknown metric {rank_by!r} (known: {', '.join(METRIC_NAMES)})")
    chunk_size = read_integer(raw.get("chunk_size", DEFAULT_CHUNK), "chunk_size", where, low=1)

    strategy_name, params = _strategy(raw.get("strategy"), where)
    _check_interval(strategy_name, params, interval, where)
    n = math.prod(len(v) for _, v in params)
    if mode == "portfolio" and n > 1:
        many = next(name for name, values in params if len(values) > 1)
        raise where.error(f"strategy.params.{many}", "portfolio mode takes one value per "
                          f"parameter, not a grid ({n} combinations)")
    risk = _risk(raw.get("risk", {}), strategy_name, where)
    if _needs_model(strategy_name):
        if raw.get("models") is None:
            raise where.error("models", f"missing: strategy {strategy_name} trades the models "
                                        "`binance-cluster train` writes there (e.g. \"models/ml.h5\")")

    symbols_raw = overrides.symbols if overrides.symbols is not None else raw.get("symbols", "all")
    symbols = read_symbols(symbols_raw, where)
    store_path = Path(store).expanduser().absolute()
    known = None
    if check_store:
        symbols, known = _check_store(store_path, symbols, interval, start, end, where)
    elif symbols == ("all",):
        raise where.error("symbols", "\"all\" needs the store to be read")
    rules, symbol_rules = _rules(raw.get("rules", {}), symbols, known, where)
    models = raw.get("models")
    models = None if models is None else str(Path(read_string(models, "models", where)).expanduser().absolute())
    job = Job(models=models, store=str(store_path), symbols=symbols, interval=interval, start=start, end=end,
              mode=mode, output=str(Path(output).expanduser().absolute()), top=top,
              rank_by=rank_by, chunk_size=chunk_size, strategy=strategy_name, params=params,
              risk=risk, rules=rules, symbol_rules=symbol_rules, source=where.path)
    _check_stake(job, where)
    if check_store:
        _check_history(job, where)
    return job


def _check_stake(job: Job, where: Where) -> None:
    """ConfigError on risk.stake when what it buys after the commission is under a symbol's
    minimum notional (every entry would be rejected, or its exit refused)."""
    from binance_cluster.engine.simulate import stake_after_fees

    left = stake_after_fees(job.risk)
    for symbol in job.symbols:
        floor = job.rules_for(symbol).min_notional
        if left < floor:
            raise where.error("risk.stake", f"{_fmt(job.risk.stake)} leaves {left:.8g} after "
                              f"the commission, under the minimum notional {_fmt(floor)} of "
                              f"{symbol}")


def _check_history(job: Job, where: Where) -> None:
    """ConfigError on start when a symbol has fewer stored bars before it than the warm-up."""
    from binance_cluster.candles.store import CandleStore

    bars = warmup_bars(job)
    if bars == 0:
        return
    store = CandleStore(job.store)
    for symbol in job.symbols:
        try:
            read_history(store, symbol, job, bars)
        except InputError as exc:
            raise where.error("start", str(exc)) from None


# -- strategy and grids ----------------------------------------------------------------------

def _strategy(table: Any, where: Where) -> tuple[str, tuple[tuple[str, tuple], ...]]:
    from binance_cluster.strategies.registry import get_strategy

    if table is None:
        raise where.error("strategy", "missing table [strategy] with name = \"...\"")
    no_unknown(table, STRATEGY_KEYS, "strategy.", where)
    if "name" not in table:
        raise where.error("strategy.name", "missing (e.g. name = \"sma_cross\")")
    name = read_string(table["name"], "strategy.name", where)
    try:
        strategy = get_strategy(name)
    except ConfigError as exc:
        raise where.error("strategy.name", str(exc)) from None
    given = table.get("params", {})
    specs = {spec.name: spec for spec in strategy.params}
    no_unknown(given, tuple(specs), "strategy.params.", where)
    params = []
    for spec in strategy.params:
        key = f"strategy.params.{spec.name}"
        values = _grid_values(given[spec.name], spec, key, where) if spec.name in given \
            else (_coerce(spec.default, spec, key, where),)
        params.append((spec.name, values))
    n = math.prod(len(v) for _, v in params)
    if n > MAX_COMBINATIONS:
        raise where.error("strategy.params", f"the grid has {n:,} combinations, more than "
                                             f"{MAX_COMBINATIONS:,}")
    names = [p for p, _ in params]
    for combo in itertools.product(*(v for _, v in params)):
        try:
            strategy.resolve(dict(zip(names, combo)))
        except ConfigError as exc:
            raise where.error("strategy.params", str(exc)) from None
    return name, tuple(params)


def _needs_model(name: str) -> bool:
    from binance_cluster.strategies.registry import get_strategy

    return get_strategy(name).needs_model


def _check_interval(name: str, params: tuple[tuple[str, tuple], ...], interval: str,
                    where: Where) -> None:
    """ConfigError on `interval` when the strategy cannot run on bars of that length."""
    from binance_cluster.strategies.registry import get_strategy

    first = {p: values[0] for p, values in params}
    try:
        get_strategy(name).warmup(first, interval)
    except ConfigError as exc:
        raise where.error("interval", str(exc)) from None


def _grid_values(value: Any, spec, key: str, where: Where) -> tuple:
    """The values of one parameter: a scalar, a list, or an inclusive {start, stop, step}."""
    if isinstance(value, dict):
        no_unknown(value, RANGE_KEYS, key + ".", where)
        for k in ("start", "stop"):
            if k not in value:
                raise where.error(f"{key}.{k}", "missing (a range is {start = A, stop = B, step = S})")
        lo = read_number(value["start"], f"{key}.start", where)
        hi = read_number(value["stop"], f"{key}.stop", where)
        step = read_number(value.get("step", 1), f"{key}.step", where)
        if step <= 0:
            raise where.error(f"{key}.step", f"{value.get('step', 1)} must be above zero")
        if spec.integer and any(isinstance(value.get(k, 1), float) and not float(value.get(k, 1)).is_integer()
                                for k in RANGE_KEYS):
            raise where.error(key, f"{spec.name} is an integer parameter; use integer start, stop, step")
        if hi < lo:
            raise where.error(key, f"the grid is empty (start {value['start']} is above stop "
                                   f"{value['stop']})")
        count = int(math.floor((hi - lo) / step + 1e-9)) + 1
        if count > MAX_COMBINATIONS:
            raise where.error(key, f"the range has {count:,} values, more than {MAX_COMBINATIONS:,}")
        raw = [lo + i * step for i in range(count)]
        if not spec.integer:
            raw = [float(f"{v:.12g}") for v in raw]
    elif isinstance(value, list):
        if not value:
            raise where.error(key, "the grid is empty (an empty list)")
        raw = value
    else:
        raw = [value]
    out = []
    for v in raw:
        c = _coerce(v, spec, key, where)
        if c in out:
            raise where.error(key, f"{_fmt(c)} is listed twice")
        out.append(c)
    return tuple(out)


def _coerce(value: Any, spec, key: str, where: Where) -> int | float:
    """One parameter value of the right type within the spec's bounds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(key, f"must be a number, a list of numbers or a range table, not {show_value(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise where.error(key, f"{value} is not a finite number")
    if spec.integer:
        if isinstance(value, float) and not value.is_integer():
            raise where.error(key, f"{value} is not an integer ({spec.name} takes whole numbers)")
        value = int(value)
    else:
        value = float(value)
    if value < spec.low:
        raise where.error(key, f"{_fmt(value)} is below the minimum {_fmt(spec.low)}")
    if value > spec.high:
        raise where.error(key, f"{_fmt(value)} is above the maximum {_fmt(spec.high)}")
    return value


def _fmt(value: float | int) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


# -- risk and symbol rules -------------------------------------------------------------------

# Checks beyond the type, by field name: (test, problem) pairs; unknown fields are type-checked only.
_RISK_CHECKS: dict[str, tuple] = {
    "initial_cash": (lambda v: v > 0, "must be above zero"),
    "stake": (lambda v: v > 0, "must be above zero (a negative or zero stake buys nothing)"),
    "fee_rate": (lambda v: 0 <= v < 1, "must be at least 0 and below 1 (a fee rate is a fraction)"),
    "slippage": (lambda v: 0 <= v < 1, "must be at least 0 and below 1"),
    "stop_loss": (lambda v: 0 < v < 1, "must be above 0 and below 1 (a fraction below entry)"),
    "take_profit": (lambda v: v > 0, "must be above zero (a fraction above entry)"),
    "trailing_stop": (lambda v: 0 < v < 1, "must be above 0 and below 1"),
    "max_hold_bars": (lambda v: v >= 1, "must be at least 1"),
    "shifts_min_win_rate": (lambda v: 0 <= v <= 1, "must be between 0 and 1"),
    "shifts_min_trades": (lambda v: v >= 1, "must be at least 1"),
    "max_positions": (lambda v: v >= 1, "must be at least 1"),
}


def _risk(table: Any, strategy: str, where: Where):
    """Risk from the job's [risk] over the strategy's risk defaults; `false` unsets an optional."""
    from binance_cluster.engine.simulate import FEE_MODELS, STAKE_MODES, Risk
    from binance_cluster.strategies.registry import get_strategy

    fields = {f.name: f for f in dataclasses.fields(Risk)}
    no_unknown(table, tuple(fields), "risk.", where)
    values = dict(getattr(get_strategy(strategy), "risk_defaults", {}) or {})
    for name, value in table.items():
        key = f"risk.{name}"
        if value is False and field_kind(fields[name])[1]:
            values[name] = None
            continue
        v = read_field(value, fields[name], key, where)
        check = _RISK_CHECKS.get(name)
        if check is not None and not isinstance(v, (bool, str)) and not check[0](v):
            raise where.error(key, f"{_fmt(v)} {check[1]}")
        values[name] = v
    model = values.get("fee_model", Risk().fee_model)
    if model not in FEE_MODELS:
        raise where.error("risk.fee_model", f"unknown fee model {model!r} "
                                            f"(known: {', '.join(FEE_MODELS)})")
    mode = values.get("stake_mode", Risk().stake_mode)
    if mode not in STAKE_MODES:
        raise where.error("risk.stake_mode", f"unknown stake mode {mode!r} (known: {', '.join(STAKE_MODES)})")
    if mode == "fraction" and values.get("stake", Risk().stake) > 1:
        raise where.error("risk.stake", f"{_fmt(values['stake'])} is above 1: with stake_mode "
                                        "\"fraction\" the stake is a fraction of equity")
    try:
        return Risk(**values)
    except (ValueError, TypeError, ConfigError) as exc:
        raise where.error("risk", str(exc)) from None


def _symbol_rules(table: Any, base, prefix: str, where: Where):
    from binance_cluster.engine.simulate import SymbolRules

    fields = {f.name: f for f in dataclasses.fields(SymbolRules)}
    values = {}
    for name, value in table.items():
        key = prefix + name
        v = read_field(value, fields[name], key, where)
        if v < 0:
            raise where.error(key, f"{_fmt(v)} must not be negative (0 = no rounding / no minimum)")
        values[name] = v
    try:
        return dataclasses.replace(base, **values)
    except (ValueError, TypeError, ConfigError) as exc:
        raise where.error(prefix.rstrip("."), str(exc)) from None


def _rules(table: Any, symbols: tuple[str, ...], known: list[str] | None, where: Where):
    """Default rules and the overrides of the job's symbols (others, if in the store, are dropped)."""
    from binance_cluster.engine.simulate import SymbolRules

    if not isinstance(table, dict):
        raise where.error("rules", "must be a table")
    names = tuple(f.name for f in dataclasses.fields(SymbolRules))
    defaults = {k: v for k, v in table.items() if not isinstance(v, dict)}
    for key, value in table.items():
        if isinstance(value, dict) and not SYMBOL_RE.match(key):
            raise where.error(f"rules.{key}", "unknown key (a per-symbol table is named by its "
                                              f"symbol, e.g. [rules.BTCUSDT]; fields: {', '.join(names)})")
    no_unknown(defaults, names, "rules.", where)
    base = _symbol_rules(defaults, SymbolRules(), "rules.", where)
    overrides = []
    for key, value in table.items():
        if not isinstance(value, dict):
            continue
        if known is not None and key not in known:
            raise where.error(f"rules.{key}", f"{key} is not in the store")
        no_unknown(value, names, f"rules.{key}.", where)
        rules = _symbol_rules(value, base, f"rules.{key}.", where)
        if key in symbols:
            overrides.append((key, rules))
    order = {s: i for i, s in enumerate(symbols)}
    overrides.sort(key=lambda kv: order.get(kv[0], len(order)))
    return base, tuple(overrides)


# -- the store -------------------------------------------------------------------------------

def _check_store(root: Path, symbols: tuple[str, ...], interval: str, start: int | None,
                 end: int | None, where: Where) -> tuple[tuple[str, ...], list[str]]:
    """The job's symbols checked against the store ("all": the usable ones), and the store's."""
    from binance_cluster.candles.store import CandleStore

    if not root.is_dir():
        raise where.error("store", f"{root}: store directory does not exist")
    store = CandleStore(root)
    stored = store.symbols()
    every = symbols == ("all",)
    if every:
        if not stored:
            raise where.error("store", f"{root}: the store holds no symbols")
        symbols = tuple(stored)
    for s in symbols:
        if s not in stored:
            listed = ", ".join(stored[:12]) + (", ..." if len(stored) > 12 else "")
            raise where.error("symbols", f"{s} is not in the store {root} (it has: {listed or 'nothing'})")
    usable = []
    for s in symbols:
        try:
            n = count_candles(store, s, interval, start, end)
        except InputError as exc:
            raise where.error("symbols", f"{s}: {exc}") from None
        if n == 0:
            if every:
                continue
            raise where.error("start" if start is not None else "symbols",
                              f"{s} has no candles between {format_time_ms(start)} and "
                              f"{format_time_ms(end)} (stored: {_span_text(store, s, interval)})")
        usable.append(s)
    if not usable:
        raise where.error("start" if start is not None else "symbols",
                          f"no symbol of the store has candles between {format_time_ms(start)} and "
                          f"{format_time_ms(end)}")
    return tuple(usable), stored


def source_interval(store, symbol: str, interval: str) -> str:
    """The stored interval to read for `interval`: itself if stored, else 1m to resample."""
    stored = store.intervals(symbol)
    if interval in stored:
        return interval
    if "1m" in stored:
        return "1m"
    from binance_cluster.errors import UnknownSymbolError
    raise UnknownSymbolError(f"has no {interval} candles and no 1m candles to resample from "
                             f"(stored: {', '.join(stored) or 'none'})")


def count_candles(store, symbol: str, interval: str, start: int | None, end: int | None) -> int:
    """Stored candles of the interval read for `interval` within [start, end)."""
    src = source_interval(store, symbol, interval)
    span = store.span(symbol, src)
    if span is None:
        return 0
    first, last = span
    if (start is None or start <= first) and (end is None or end > last):
        return store.count(symbol, src)
    if (start is not None and start > last) or (end is not None and end <= first):
        return 0
    return len(store.read(symbol, src, start, end, columns=()).open_time)


def warmup_bars(job: Job) -> int:
    """Bars of history read before `start`: the largest warm-up of the job's parameter sets, for
    a strategy served by models at least their features' history (0 without a `start`: the
    run then begins at the first stored candle)."""
    if job.start is None:
        return 0
    from binance_cluster.strategies.registry import get_strategy

    strategy = get_strategy(job.strategy)
    bars = max(strategy.warmup(p, job.interval) for p in job.grid())
    if strategy.needs_model and job.models is not None:
        from binance_cluster.ml.serve import feature_history

        bars = max(bars, feature_history(job.models, job.symbols))
    return bars


def read_candles(store, symbol: str, job: Job, start: int | None, end: int | None,
                 columns: tuple[str, ...] | None = None):
    """Candles of `symbol` in job.interval within [start, end): read, checked, resampled.

    `columns` limits the extra columns read (the core ones always are; default: all stored).
    """
    from binance_cluster.candles.store import validate_candles

    src = source_interval(store, symbol, job.interval)
    candles = store.read(symbol, src, start, end, columns=columns)
    try:
        validate_candles(candles, src)
    except DataError as exc:
        raise DataError(f"{store.path(symbol)}: {src} {exc}") from None
    if src != job.interval:
        from binance_cluster.candles.resample import resample

        candles = resample(candles, job.interval, src)
    return candles


def read_history(store, symbol: str, job: Job, bars: int, columns: tuple[str, ...] | None = None):
    """The last `bars` candles of `symbol` before job.start; DataError when there are fewer."""
    candles = read_candles(store, symbol, job, job.start - bars * interval_ms(job.interval),
                           job.start, columns)
    if len(candles) < bars:        # gaps: look further back
        candles = read_candles(store, symbol, job, None, job.start, columns)
    if len(candles) < bars:
        raise DataError(f"{symbol}: the warm-up needs {bars} {job.interval} bars before "
                        f"{format_time_ms(job.start)}, the store has {len(candles)}")
    return candles.slice(len(candles) - bars, len(candles))


def _span_text(store, symbol: str, interval: str) -> str:
    span = store.span(symbol, source_interval(store, symbol, interval))
    return "nothing" if span is None else f"{format_time_ms(span[0])} to {format_time_ms(span[1])}"


# -- writing ---------------------------------------------------------------------------------

def dump_job(job: Job) -> str:
    """The job as TOML text that `load_job` reads back into an equal Job."""
    from binance_cluster.engine.simulate import Risk, SymbolRules

    lines = ["# Resolved job: every default filled in, grids written as lists, false = unset.",
             f"# Read from {job.source}" if job.source else "# ", ""]
    top = [("store", job.store), ("symbols", list(job.symbols)), ("interval", job.interval)]
    if job.start is not None:
        top.append(("start", TomlTime(job.start)))
    if job.end is not None:
        top.append(("end", TomlTime(job.end)))
    top += [("mode", job.mode), ("output", job.output), ("top", job.top),
            ("rank_by", job.rank_by), ("chunk_size", job.chunk_size)]
    if job.models is not None:
        top.append(("models", job.models))
    lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in top]
    lines += ["", "[strategy]", f"name = {toml_value(job.strategy)}", "", "[strategy.params]"]
    lines += [f"{toml_key(name)} = {toml_value(list(values))}" for name, values in job.params]
    lines += ["", "[risk]"]
    # an unset optional is written as false, so that a strategy's risk default stays unset
    lines += [f"{toml_key(f.name)} = {toml_value(getattr(job.risk, f.name))}"
              if getattr(job.risk, f.name) is not None else f"{toml_key(f.name)} = false"
              for f in dataclasses.fields(Risk)]
    lines += ["", "[rules]"]
    lines += [f"{toml_key(f.name)} = {toml_value(getattr(job.rules, f.name))}"
              for f in dataclasses.fields(SymbolRules)]
    for symbol, rules in job.symbol_rules:
        lines += ["", f"[rules.{toml_key(symbol)}]"]
        lines += [f"{toml_key(f.name)} = {toml_value(getattr(rules, f.name))}"
                  for f in dataclasses.fields(SymbolRules)]
    return "\n".join(lines) + "\n"


