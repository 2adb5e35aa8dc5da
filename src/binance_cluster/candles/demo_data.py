"""Synthetic demo data: deterministic one-minute candles with the texture of real markets.

Nothing here comes from an exchange. Each file is marked `synthetic=True` with
`source="binance-cluster demo-data seed=N"` and the full recipe in `demo_recipe`.

The model, per minute: a common market factor (GARCH(1,1) variance, Student-t(5)
innovations, a slow multi-day volatility regime) drives every symbol through its beta, plus
an idiosyncratic GARCH-t move; volatility and volume follow a UTC-hour profile (quiet Asian
night, busy European and US sessions) and are damped at weekends; volume rises with the size
of the move. Two regimes are planted:

- SOLUSDT trends: a log drift of +2 % a day over the whole span;
- LINKUSDT crashes: -60 % over 36 hours from 55 % of the span (rounded down to
  the hour), with 2.5 times the volatility and 3 times the volume, then a day of aftermath.

A few exchange outages (1 + days // 20 stretches of 3 to 90 minutes) are missing from every
symbol. Prices are whole ticks (0.01 for BTC-like coins, 0.0001 or 0.00001 for small ones) and
each candle opens at the previous minute's close. The same spec gives identical arrays on the
same platform (transcendental functions may differ in the last bit across CPUs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from binance_cluster.errors import ConfigError
from binance_cluster.kernels import synthetic as _k
from binance_cluster.types import (DAY_MS, MINUTE_MS, Candles, format_time_ms,
                                   parse_time_ms)

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
DEFAULT_END = "2025-06-01"
MAX_DAYS = 3660

MARKET_DAILY_VOL = 0.028
GARCH_ALPHA = 0.04
GARCH_BETA = 0.955
SLOW_DAYS = 3.0
SLOW_SD = 0.35
WEEKEND_VOL = 0.8
WEEKEND_VOLUME = 0.65
TREND_PER_DAY = 0.02
CRASH_DEPTH = 0.60
CRASH_HOURS = 36
CRASH_AT = 0.55
CRASH_VOL = 2.5
CRASH_VOLUME = 3.0
AFTERMATH_HOURS = 24
OUTAGE_MINUTES = (3, 90)


@dataclass(frozen=True, slots=True)
class DemoSymbol:
    """One synthetic market: name, start price, tick and lot decimals, beta, volatility, volume."""

    name: str
    price: float
    price_decimals: int
    qty_decimals: int
    beta: float
    idio_daily_vol: float
    volume_per_minute: float
    trade_size: float
    regime: str = ""


SYMBOLS: tuple[DemoSymbol, ...] = (
    DemoSymbol("BTCUSDT", 65_000.0, 2, 5, 1.00, 0.006, 12.0, 0.02),
    DemoSymbol("ETHUSDT", 3_200.0, 2, 4, 1.15, 0.017, 250.0, 0.3),
    DemoSymbol("BNBUSDT", 580.0, 2, 3, 0.80, 0.018, 60.0, 0.4),
    DemoSymbol("SOLUSDT", 150.0, 2, 3, 1.30, 0.028, 900.0, 2.0, "trend"),
    DemoSymbol("XRPUSDT", 0.52, 4, 0, 1.10, 0.025, 300_000.0, 400.0),
    DemoSymbol("ADAUSDT", 0.45, 4, 1, 1.20, 0.028, 200_000.0, 500.0),
    DemoSymbol("DOGEUSDT", 0.15, 5, 0, 1.40, 0.035, 2_000_000.0, 5_000.0),
    DemoSymbol("LINKUSDT", 14.5, 3, 2, 1.20, 0.028, 8_000.0, 10.0, "crash"),
    DemoSymbol("AVAXUSDT", 28.0, 3, 2, 1.30, 0.030, 6_000.0, 8.0),
    DemoSymbol("LTCUSDT", 80.0, 2, 3, 0.90, 0.021, 900.0, 1.5),
    DemoSymbol("DOTUSDT", 6.5, 3, 2, 1.20, 0.028, 30_000.0, 40.0),
    DemoSymbol("TRXUSDT", 0.12, 5, 1, 0.60, 0.017, 900_000.0, 2_000.0),
    DemoSymbol("ATOMUSDT", 8.0, 3, 2, 1.10, 0.028, 15_000.0, 20.0),
    DemoSymbol("NEARUSDT", 5.0, 3, 1, 1.30, 0.033, 40_000.0, 60.0),
    DemoSymbol("FILUSDT", 5.5, 3, 2, 1.20, 0.030, 30_000.0, 40.0),
    DemoSymbol("APTUSDT", 9.0, 4, 2, 1.30, 0.033, 20_000.0, 25.0),
)


@dataclass(frozen=True, slots=True)
class DemoSpec:
    """What to generate: `symbols` first entries of SYMBOLS, `days` of 1m candles ending at
    `end_ms` (exclusive), from `seed`; `outages=False` leaves out the missing stretches."""

    symbols: int = 8
    days: int = 60
    seed: int = 42
    end_ms: int = parse_time_ms(DEFAULT_END)
    outages: bool = True

    @property
    def start_ms(self) -> int:
        return self.end_ms - self.days * DAY_MS

    @property
    def minutes(self) -> int:
        return self.days * DAY_MS // MINUTE_MS

    @property
    def recipe(self) -> str:
        """What fixes the arrays of every symbol (the symbol count does not)."""
        end = format_time_ms(self.end_ms).replace(" ", "T")
        return (f"generator={GENERATOR_VERSION} seed={self.seed} days={self.days} "
                f"end={end}Z outages={int(self.outages)}")

    def names(self) -> list[str]:
        return [s.name for s in SYMBOLS[:self.symbols]]

    def crash_window(self) -> tuple[int, int]:
        """Rows (minute indexes) [from, to) of the crash regime."""
        start = int(self.minutes * CRASH_AT) // 60 * 60
        return start, start + CRASH_HOURS * 60


def make_spec(symbols: int = 8, days: int = 60, seed: int = 42,
              end: int | str = DEFAULT_END, outages: bool = True) -> DemoSpec:
    """A validated DemoSpec; ConfigError naming the bad setting."""
    if not 1 <= int(symbols) <= len(SYMBOLS):
        raise ConfigError(f"symbols: {symbols} is out of range (1 to {len(SYMBOLS)})")
    if not 1 <= int(days) <= MAX_DAYS:
        raise ConfigError(f"days: {days} is out of range (1 to {MAX_DAYS})")
    if not 0 <= int(seed) < 2 ** 63:
        raise ConfigError(f"seed: {seed} must be a non-negative integer below 2**63")
    end_ms = parse_time_ms(end, "end")
    if end_ms % MINUTE_MS:
        raise ConfigError(f"end: {format_time_ms(end_ms)} is not on a whole minute")
    if end_ms - int(days) * DAY_MS < 0:
        raise ConfigError(f"end: {format_time_ms(end_ms)} minus {days} days is before 1970")
    return DemoSpec(int(symbols), int(days), int(seed), end_ms, bool(outages))


def _profile(hours: np.ndarray, bumps: tuple[tuple[float, float, float], ...],
             base: float) -> np.ndarray:
    """base + Gaussian bumps (centre hour, width in hours, height) on a 24 h circle, mean 1."""
    out = np.full(hours.shape, base)
    for centre, width, height in bumps:
        d = np.abs(hours - centre)
        d = np.minimum(d, 24.0 - d)
        out += height * np.exp(-0.5 * (d / width) ** 2)
    return out / out.mean()


def seasonality() -> tuple[np.ndarray, np.ndarray]:
    """Volatility and volume multipliers for each minute of the UTC day (both mean 1)."""
    hours = np.arange(_k.DAY_MINUTES) / 60.0
    vol = _profile(hours, ((0.5, 2.0, 0.4), (8.5, 1.5, 0.2), (14.5, 3.0, 0.5)), 0.8)
    volume = _profile(hours, ((0.5, 2.0, 0.5), (8.5, 1.5, 0.3), (14.5, 3.0, 0.8)), 0.6)
    return vol, volume


def outages(spec: DemoSpec) -> np.ndarray:
    """The mask of missing minutes, shared by every symbol."""
    if not spec.outages:
        return np.zeros(spec.minutes, np.bool_)
    return _k.outage_mask(spec.seed, spec.minutes, 1 + spec.days // 20, *OUTAGE_MINUTES)


@dataclass(frozen=True, slots=True)
class Market:
    """The common inputs of every symbol of a spec: market factor, its variance, outages."""

    returns: np.ndarray
    variance: np.ndarray
    missing: np.ndarray


def market(spec: DemoSpec) -> Market:
    """The market factor and outage mask for `spec`."""
    vol_season, _ = seasonality()
    sigma = MARKET_DAILY_VOL / np.sqrt(_k.DAY_MINUTES)
    returns, variance = _k.market_factor(spec.seed, spec.start_ms // MINUTE_MS, spec.minutes,
                                         sigma, vol_season, GARCH_ALPHA, GARCH_BETA, SLOW_DAYS,
                                         SLOW_SD, WEEKEND_VOL)
    return Market(returns, variance, outages(spec))


def generate_symbol(spec: DemoSpec, index: int, common: Market | None = None) -> Candles:
    """The 1m candles of symbol number `index` (0-based into SYMBOLS) for `spec`."""
    sym = SYMBOLS[index]
    common = market(spec) if common is None else common
    vol_season, volume_season = seasonality()
    per_minute = 1.0 / np.sqrt(_k.DAY_MINUTES)
    drift = TREND_PER_DAY / _k.DAY_MINUTES if sym.regime == "trend" else 0.0
    regime_from = regime_to = after = 0
    regime_drift, regime_vol, regime_volume = drift, 1.0, 1.0
    if sym.regime == "crash":
        regime_from, regime_to = spec.crash_window()
        regime_drift = np.log(1.0 - CRASH_DEPTH) / (regime_to - regime_from)
        regime_vol, regime_volume, after = CRASH_VOL, CRASH_VOLUME, AFTERMATH_HOURS * 60
    cols = _k.symbol_minutes(
        spec.seed, 1000 + index, spec.start_ms // MINUTE_MS, common.returns, common.variance,
        common.missing, vol_season, volume_season, WEEKEND_VOL, WEEKEND_VOLUME, GARCH_ALPHA,
        GARCH_BETA, sym.price, float(10 ** sym.price_decimals), float(10 ** sym.qty_decimals),
        sym.beta, sym.idio_daily_vol * per_minute, drift, regime_from, regime_to, regime_drift,
        regime_vol, regime_volume, after, sym.volume_per_minute, sym.trade_size)
    names = ("open_time", "open", "high", "low", "close", "volume", "quote_volume", "trades",
             "taker_buy_base", "taker_buy_quote")
    return Candles.from_columns(dict(zip(names, cols)))


def regime_note(spec: DemoSpec, index: int) -> str:
    """A one-line description of the symbol's planted regime ('' for none)."""
    regime = SYMBOLS[index].regime
    if regime == "trend":
        return f"trend: log drift +{TREND_PER_DAY:.0%}/day over the whole span"
    if regime == "crash":
        a, b = spec.crash_window()
        return (f"crash: -{CRASH_DEPTH:.0%} from {format_time_ms(spec.start_ms + a * MINUTE_MS)} "
                f"to {format_time_ms(spec.start_ms + b * MINUTE_MS)} UTC")
    return ""


def file_attrs(spec: DemoSpec, index: int) -> dict:
    """Metadata stored on the symbol's file: the synthetic marker, source, recipe, regime."""
    return dict(synthetic=True, source=f"binance-cluster demo-data seed={spec.seed}",
                demo_recipe=spec.recipe, demo_regime=regime_note(spec, index) or "none")


@dataclass(frozen=True, slots=True)
class SymbolSummary:
    """What was generated for one symbol."""

    symbol: str
    rows: int
    added: int
    first_open: float
    last_close: float
    max_drawdown: float
    gaps: int
    regime: str


def summarize(symbol: str, candles: Candles, added: int, regime: str) -> SymbolSummary:
    """Rows, price change, worst drawdown (from a running high of closes) and gap count."""
    close = candles.close
    peak = np.maximum.accumulate(close)
    drawdown = float(np.max(1.0 - close / peak)) if close.size else 0.0
    gaps = int(np.count_nonzero(np.diff(candles.open_time) > MINUTE_MS))
    return SymbolSummary(symbol, len(candles), added, float(candles.open[0]),
                         float(close[-1]), drawdown, gaps, regime)
