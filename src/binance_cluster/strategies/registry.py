"""Strategy registry: name -> parameter spec, warm-up length, default risk and signal kernels.

Every strategy computes its indicators with the one indicator family (`strategies.indicators`
over `kernels.indicators`, TA-Lib's definitions; SMAs in its integer-tick variant) and turns
them into `Signals` (entry, exit, score per bar) with the rules of `kernels.signals`: the
signals of the first k candles equal the first k signals of all candles. The decision step
(`binance_cluster.engine.simulate`) acts on them at the next bar's open.

Strategies:

- `sma_cross` (fast, slow): enter when the fast SMA crosses above the slow one, exit when it
  crosses below. SMAs are compared exactly in integer ticks (`kernels.indicators`).
- `ema_cross` (fast, slow): the same with TA-Lib EMAs (alpha 2/(n+1), SMA seed).
- `rsi_reversion` (n, lower, upper): enter while TA-Lib's RSI(n) (Wilder) < lower, exit while
  > upper. Over n bars without a price change the RSI is 0 (TA-Lib's convention).
- `bollinger_reversion` (n, k): enter while the close is below the lower Bollinger band
  (TA-Lib BBANDS: SMA(n) - k population standard deviations), exit while it is above the SMA
  (compared exactly in integer ticks, like the SMA crossovers).
- `momentum_burst`: the Raspberry Pi cluster scalper (SEEDS.md A) with its defaults: the
  weight of the last `window` closed candles (growth >= min_growth % adds 2(i+1), a falling
  candle subtracts it) must exceed `min_weight`, and against the last `hours` hourly candles
  closed by the decision (built causally from the bars) the close p must satisfy
  p * (1 + room) < max close and p <= mean close * (1 + band). No exit signal: take profit
  7 % and stop loss 5 % are its default risk (`risk_defaults`). Score: the weight.

- `ml_barrier` (margin): the cloud ML bot (SEEDS.md B). Each bar's probability comes from the
  model `binance-cluster train` fitted strictly before that bar's fold (`ml.serve`); enter when
  it is at least the fold's threshold + margin; no fold model or threshold: no entry. Exits:
  take profit 1 %, stop loss 2 %, 60 bars (`risk_defaults`). Score: probability - threshold.

Scores rank simultaneous entries in portfolio mode (higher is better): the relative margin
fast/slow - 1 for crossovers, lower - RSI for `rsi_reversion`, (mean - close) / std for
`bollinger_reversion`, the weight for `momentum_burst`.
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from binance_cluster.errors import ConfigError, DataError
from binance_cluster.kernels import indicators as ki
from binance_cluster.kernels import signals as sk
from binance_cluster.kernels import simulate as ks
from binance_cluster.strategies import indicators as ind
from binance_cluster.types import Candles, interval_ms

HOUR_MS = 3_600_000
INT64_SAFE = 1 << 62


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One strategy parameter: default, inclusive bounds, integer or real, one-line help."""

    name: str
    default: float | int
    low: float
    high: float
    integer: bool
    help: str


@dataclass(frozen=True, slots=True)
class Signals:
    """Per-bar decisions on closed bars: enter / exit at the next bar's open, ranking score."""

    entry: np.ndarray   # bool[n]
    exit: np.ndarray    # bool[n]
    score: np.ndarray   # float64[n], NaN = none

    def __len__(self) -> int:
        return int(self.entry.shape[0])


@dataclass(frozen=True, slots=True)
class Strategy:
    """A registered strategy: parameters, help, default risk overrides and its kernels."""

    name: str
    params: tuple[ParamSpec, ...]
    help: str
    risk_defaults: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    signals_fn: Callable[["SignalContext", dict], Signals] | None = field(
        default=None, repr=False, compare=False)
    warmup_fn: Callable[[dict, int], int] | None = field(default=None, repr=False, compare=False)
    check_fn: Callable[[dict], str | None] | None = field(default=None, repr=False,
                                                          compare=False)
    sweep_fn: Callable[["SignalContext", list, "SweepArgs"], np.ndarray] | None = field(
        default=None, repr=False, compare=False)   # the fused sweep (`kernels.simulate`)
    needs_model: bool = False    # signals need the symbol's models (SignalContext.model)

    def resolve(self, params: Mapping[str, Any] | None) -> dict:
        """Parameters with defaults filled in, in spec order; ConfigError naming a bad one."""
        if params is None:
            params = {}
        if type(params) is not dict and not isinstance(params, Mapping):
            raise ConfigError(f"strategy {self.name}: parameters must be a table of "
                              f"name = value, not {type(params).__name__}")
        specs = {p.name: p for p in self.params}
        for key in params:
            if key not in specs:
                known = ", ".join(specs) or "none"
                raise ConfigError(f"strategy {self.name}: unknown parameter {key!r} "
                                  f"(known: {known})")
        out = {}
        for spec in self.params:
            out[spec.name] = _coerce(self.name, spec, params.get(spec.name, spec.default))
        if self.check_fn is not None:
            problem = self.check_fn(out)
            if problem:
                raise ConfigError(f"strategy {self.name}: {problem}")
        return out

    def warmup(self, params: Mapping[str, Any] | None, interval: str = "1m") -> int:
        """Bars (of `interval`) the indicators need before they are fully formed (an upper bound).

        A driver loads this many bars before the start of a run; no signal rests on fewer bars
        than the strategy weighs.
        """
        resolved = self.resolve(params)
        return int(self.warmup_fn(resolved, interval_ms(interval))) if self.warmup_fn else 0


def _coerce(strategy: str, spec: ParamSpec, value: Any) -> int | float:
    kind = type(value)
    if kind is int or kind is float:   # fast path (sweeps resolve every grid entry)
        if spec.integer and kind is int and spec.low <= value <= spec.high:
            return value
        if not spec.integer and kind is float and spec.low <= value <= spec.high:
            return value
    where = f"strategy {strategy}: parameter {spec.name}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer,
                                                                      np.floating)):
        raise ConfigError(f"{where} must be a number, not {value!r}")
    if not math.isfinite(float(value)):
        raise ConfigError(f"{where} must be a finite number, not {value!r}")
    if spec.integer:
        if not float(value).is_integer():
            raise ConfigError(f"{where} must be a whole number, not {value!r}")
        value = int(value)
    else:
        value = float(value)
    if value < spec.low or value > spec.high:
        raise ConfigError(f"{where} = {value!r} is outside [{spec.low:g}, {spec.high:g}]")
    return value


# ----------------------------------------------------------------------------------------
# indicator cache shared by the combinations of a sweep


class SignalContext:
    """Candles of one symbol plus a cache of indicator arrays keyed by (name, window).

    `model` is what a strategy with `needs_model` reads its probabilities from (for
    `ml_barrier`: `binance_cluster.ml.serve.SymbolModels`), handed over by the driver.
    """

    def __init__(self, candles: Candles, interval: str, model: Any = None):
        self.candles = candles
        self.interval = interval
        self.model = model
        self.bar_ms = interval_ms(interval)
        self._cache: dict[tuple, Any] = {}

    def _get(self, key: tuple, make: Callable[[], Any]) -> Any:
        value = self._cache.get(key)
        if value is None:
            value = make()
            self._cache[key] = value
        return value

    def ticks(self) -> np.ndarray:
        """Closes as int64 ticks (see `price_scale`)."""
        return self._get(("ticks",), lambda: ki.to_ticks(self.candles.close,
                                                         price_scale(self.candles.close)))

    def max_tick(self) -> int:
        t = self.ticks()
        return self._get(("max_tick",), lambda: int(t.max()) if t.size else 0)

    def safe_mul(self, fast: int, slow: int) -> bool:
        """True when fast_sum * slow_n cannot overflow int64 (else the kernels use divmod)."""
        return (self.max_tick() + 1) * max(fast, 1) * max(slow, 1) < INT64_SAFE

    def prefix(self) -> np.ndarray:
        """Prefix sums of the ticks: exact int64 window sums (`kernels.indicators.tick_prefix`)."""
        return self._get(("prefix",), lambda: ki.tick_prefix(self.ticks()))

    def ema(self, n: int) -> np.ndarray:
        """EMA(n) of the closes (the family's `ema`)."""
        return self._get(("ema", n), lambda: ind.ema(self.candles.close, n))

    def rsi(self, n: int) -> np.ndarray:
        """RSI(n) of the closes (the family's `rsi`: 0 over flat stretches, as TA-Lib)."""
        return self._get(("rsi", n), lambda: ind.rsi(self.candles.close, n))

    def mean_std(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """SMA(n) and population std of the closes: the Bollinger mean and deviation."""
        close = self.candles.close
        return self._get(("mean_std", n),
                         lambda: (ind.sma(close, n), ind.rolling_std(close, n, 0)))

    def burst_weight(self, window: int, min_growth: float) -> np.ndarray:
        c = self.candles
        return self._get(("burst", window, min_growth),
                         lambda: sk.burst_weight(c.open, c.close, window, min_growth))

    def hour_stats(self, hours: int) -> tuple[np.ndarray, np.ndarray]:
        c = self.candles
        return self._get(("hours", hours),
                         lambda: sk.closed_hours_stats(c.open_time, c.close, self.bar_ms, hours))


def price_scale(prices: np.ndarray) -> float:
    """10**d for the fewest decimals d <= 8 that represent every price exactly, else 1e8.

    Prices with d decimals are exact at any larger scale, so the integer comparisons of a
    prefix of a series (which may need fewer decimals) agree with those of the whole series.
    """
    d = int(ki.price_decimals(np.ascontiguousarray(prices, dtype=np.float64)))
    return float(10 ** (d if d >= 0 else ki.MAX_DECIMALS))


# ----------------------------------------------------------------------------------------
# signal functions


def _sma_cross(ctx: SignalContext, p: dict) -> Signals:
    f, s = p["fast"], p["slow"]
    return Signals(*sk.sma_cross_signals(ctx.prefix(), f, s, ctx.safe_mul(f, s)))


def _ema_cross(ctx: SignalContext, p: dict) -> Signals:
    f, s = p["fast"], p["slow"]
    return Signals(*sk.ema_cross_signals(ctx.ema(f), ctx.ema(s), max(f, s) - 1))


def _rsi_reversion(ctx: SignalContext, p: dict) -> Signals:
    return Signals(*sk.level_signals(ctx.rsi(p["n"]), float(p["lower"]), float(p["upper"])))


def _bollinger_reversion(ctx: SignalContext, p: dict) -> Signals:
    mean, std = ctx.mean_std(p["n"])
    n = p["n"]
    return Signals(*sk.band_signals(ctx.candles.close, ctx.prefix(), n, mean, std, float(p["k"]),
                                    ctx.safe_mul(1, n)))


def _check_hourly(bar_ms: int) -> None:
    if bar_ms > HOUR_MS or HOUR_MS % bar_ms:
        raise ConfigError(f"strategy momentum_burst needs an interval that divides one hour "
                          f"(1m ... 1h), not one of {bar_ms // 60_000} minutes")


def _momentum_burst(ctx: SignalContext, p: dict) -> Signals:
    _check_hourly(ctx.bar_ms)
    weight = ctx.burst_weight(p["window"], float(p["min_growth"]))
    max_close, mean_close = ctx.hour_stats(p["hours"])
    return Signals(*sk.burst_signals(weight, ctx.candles.close, max_close, mean_close,
                                     p["min_weight"], float(p["room"]), float(p["band"])))


def _probabilities(ctx: SignalContext) -> tuple[np.ndarray, np.ndarray]:
    if ctx.model is None:
        raise ConfigError("strategy ml_barrier needs its models: set `models` in the job and run "
                          "`binance-cluster train` on it first")
    return ctx._get(("probabilities",), lambda: ctx.model.probabilities(ctx.candles))


def _ml_barrier(ctx: SignalContext, p: dict) -> Signals:
    probability, threshold = _probabilities(ctx)
    margin = probability - threshold - p["margin"]
    entry = np.nan_to_num(margin, nan=-1.0) >= 0.0
    return Signals(entry, np.zeros(len(ctx.candles), bool), np.where(entry, margin, np.nan))


# ----------------------------------------------------------------------------------------
# fused sweeps: each distinct indicator once per symbol, one lean pass per combination


@dataclass(frozen=True, slots=True)
class SweepArgs:
    """What a fused sweep kernel needs beside the signals: packed risk, symbol rules, first bar."""

    risk_params: np.ndarray
    tick: float
    lot: float
    min_notional: float
    first: int


def _bars(ctx: SignalContext) -> tuple:
    c = ctx.candles
    return (np.ascontiguousarray(c.open_time, dtype=np.int64), c.open, c.high, c.low, c.close)


def _tail(a: SweepArgs) -> tuple:
    return a.risk_params, float(a.tick), float(a.lot), float(a.min_notional), int(a.first)


def _distinct(values: list) -> tuple[list, np.ndarray]:
    """(sorted distinct values, index of each value in them)."""
    keys = sorted(set(values))
    index = {k: i for i, k in enumerate(keys)}
    return keys, np.array([index[v] for v in values], dtype=np.int64)


def _cross_indices(params: list[dict]) -> tuple[list, np.ndarray, np.ndarray]:
    windows, idx = _distinct([p["fast"] for p in params] + [p["slow"] for p in params])
    return windows, idx[:len(params)], idx[len(params):]


def _sweep_sma(ctx: SignalContext, params: list[dict], a: SweepArgs) -> np.ndarray:
    windows, fast, slow = _cross_indices(params)
    return ks.sweep_cross(*_bars(ctx), ctx.prefix(), np.zeros((1, 1)),
                          np.array(windows, dtype=np.int64), fast, slow, False,
                          ctx.safe_mul(windows[-1], windows[-1]), *_tail(a))


def _sweep_ema(ctx: SignalContext, params: list[dict], a: SweepArgs) -> np.ndarray:
    windows, fast, slow = _cross_indices(params)
    return ks.sweep_cross(*_bars(ctx), np.zeros(1, dtype=np.int64),
                          np.stack([ctx.ema(w) for w in windows]),
                          np.array(windows, dtype=np.int64), fast, slow, True, True, *_tail(a))


def _sweep_rsi(ctx: SignalContext, params: list[dict], a: SweepArgs) -> np.ndarray:
    ns, idx = _distinct([p["n"] for p in params])
    return ks.sweep_levels(*_bars(ctx), np.stack([ctx.rsi(n) for n in ns]), idx,
                           np.array([float(p["lower"]) for p in params]),
                           np.array([float(p["upper"]) for p in params]), *_tail(a))


def _sweep_bollinger(ctx: SignalContext, params: list[dict], a: SweepArgs) -> np.ndarray:
    ns, idx = _distinct([p["n"] for p in params])
    pairs = [ctx.mean_std(n) for n in ns]
    exits = [sk.band_exits(ctx.prefix(), n, m, ctx.safe_mul(1, n)) for n, (m, _) in zip(ns, pairs)]
    return ks.sweep_bands(*_bars(ctx), np.stack([m for m, _ in pairs]),
                          np.stack([s for _, s in pairs]), np.stack(exits), idx,
                          np.array([float(p["k"]) for p in params]), *_tail(a))


def _sweep_momentum(ctx: SignalContext, params: list[dict], a: SweepArgs) -> np.ndarray:
    _check_hourly(ctx.bar_ms)
    keys, idx = _distinct([(p["window"], float(p["min_growth"]), p["hours"], float(p["room"]),
                            float(p["band"])) for p in params])
    close = ctx.candles.close
    filtered = np.empty((len(keys), len(close)), dtype=np.int16)
    for k, (window, growth, hours, room, band) in enumerate(keys):
        max_close, mean_close = ctx.hour_stats(hours)
        filtered[k] = sk.filtered_weights(ctx.burst_weight(window, growth), close, max_close,
                                          mean_close, room, band, a.first)
    return ks.sweep_bursts(*_bars(ctx), filtered, idx,
                           np.array([p["min_weight"] for p in params], np.int64), *_tail(a))


def _sweep_ml(ctx: SignalContext, params: list[dict], a: SweepArgs) -> np.ndarray:
    probability, threshold = _probabilities(ctx)
    return ks.sweep_margins(*_bars(ctx), np.ascontiguousarray(probability - threshold),
                            np.array([float(p["margin"]) for p in params]), *_tail(a))


def _rsi_check(p: dict) -> str | None:
    if p["lower"] >= p["upper"]:
        return f"lower ({p['lower']:g}) must be below upper ({p['upper']:g})"
    return None


def _momentum_warmup(p: dict, bar_ms: int) -> int:
    _check_hourly(bar_ms)
    per_hour = HOUR_MS // bar_ms
    return max((p["hours"] + 1) * per_hour, p["window"])


_CROSS_PARAMS = (
    ParamSpec("fast", 10, 1, 10_000, True, "bars of the fast moving average"),
    ParamSpec("slow", 30, 1, 10_000, True, "bars of the slow moving average"),
)

STRATEGIES: dict[str, Strategy] = {
    s.name: s for s in (
        Strategy("sma_cross", _CROSS_PARAMS,
                 "enter when the fast SMA crosses above the slow SMA, exit when it crosses below",
                 signals_fn=_sma_cross, warmup_fn=lambda p, ms: max(p["fast"], p["slow"]),
                 sweep_fn=_sweep_sma),
        Strategy("ema_cross",
                 (ParamSpec("fast", 12, 1, 10_000, True, "bars of the fast EMA"),
                  ParamSpec("slow", 26, 1, 10_000, True, "bars of the slow EMA")),
                 "enter when the fast EMA crosses above the slow EMA, exit when it crosses below",
                 signals_fn=_ema_cross, warmup_fn=lambda p, ms: max(p["fast"], p["slow"]),
                 sweep_fn=_sweep_ema),
        Strategy("rsi_reversion",
                 (ParamSpec("n", 14, 2, 10_000, True, "bars of Wilder's RSI"),
                  ParamSpec("lower", 30.0, 0.0, 100.0, False, "enter while RSI is below"),
                  ParamSpec("upper", 70.0, 0.0, 100.0, False, "exit while RSI is above")),
                 "buy oversold (RSI below lower), sell overbought (RSI above upper)",
                 signals_fn=_rsi_reversion, warmup_fn=lambda p, ms: p["n"], check_fn=_rsi_check,
                 sweep_fn=_sweep_rsi),
        Strategy("bollinger_reversion",
                 (ParamSpec("n", 20, 2, 10_000, True, "bars of the mean and standard deviation"),
                  ParamSpec("k", 2.0, 0.0, 10.0, False, "band width in standard deviations")),
                 "buy below the lower Bollinger band, sell above the mean",
                 signals_fn=_bollinger_reversion, warmup_fn=lambda p, ms: p["n"] - 1,
                 sweep_fn=_sweep_bollinger),
        Strategy("momentum_burst",
                 (ParamSpec("window", 5, 1, 60, True, "closed candles weighed"),
                  ParamSpec("min_growth", 0.4, 0.0, 100.0, False,
                            "growth in % that counts as a rising candle"),
                  ParamSpec("min_weight", 18, -10_000, 10_000, True,
                            "enter when the weight is above this (at most window*(window+1))"),
                  ParamSpec("room", 0.07, 0.0, 10.0, False,
                            "require close * (1 + room) < the max close of the last hours"),
                  ParamSpec("band", 0.07, 0.0, 10.0, False,
                            "require close <= the mean close of the last hours * (1 + band)"),
                  ParamSpec("hours", 24, 1, 24 * 14, True, "closed hourly candles of the filter")),
                 "the cluster scalper (SEEDS A): a burst of rising 1m candles below the day's high",
                 risk_defaults=types.MappingProxyType({"take_profit": 0.07, "stop_loss": 0.05}),
                 signals_fn=_momentum_burst, warmup_fn=_momentum_warmup,
                 sweep_fn=_sweep_momentum),
        Strategy("ml_barrier",
                 (ParamSpec("margin", 0.0, -1.0, 1.0, False,
                            "enter when the probability is at least the fold's threshold + margin"),),
                 "the cloud ML bot (SEEDS B): the walk-forward model's probability of +take_profit "
                 "before -stop_loss",
                 risk_defaults=types.MappingProxyType({"take_profit": 0.01, "stop_loss": 0.02,
                                                       "max_hold_bars": 60}),
                 signals_fn=_ml_barrier, needs_model=True, sweep_fn=_sweep_ml),
    )
}


def get_strategy(name: str) -> Strategy:
    """The registered strategy called `name`; ConfigError listing the known ones."""
    try:
        return STRATEGIES[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)})") from None


def check_candles(candles: Candles) -> None:
    """DataError unless the price columns are 1-D, as long as open_time and float64."""
    n = len(candles)
    for name in ("open", "high", "low", "close"):
        col = getattr(candles, name)
        if col.shape != (n,) or col.dtype != np.float64:
            raise DataError(f"candles: column {name} is {col.dtype}{list(col.shape)}, "
                            f"expected float64[{n}]")


def compute_signals(strategy: Strategy, candles: Candles, params: Mapping[str, Any] | None,
                    interval: str, context: SignalContext | None = None,
                    model: Any = None) -> Signals:
    """Causal entry/exit/score of `strategy` on `candles` (one symbol, `interval` bars).

    `context` (optional) shares indicator arrays between calls on the same candles (sweeps);
    `model` is the symbol's models for a strategy that `needs_model`.
    """
    resolved = strategy.resolve(params)
    check_candles(candles)
    ctx = context if context is not None else SignalContext(candles, interval, model)
    return strategy.signals_fn(ctx, resolved)
