"""What a backtest report is drawn from: the results files (through their readers) and the prices."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from binance_cluster.backtest import results
from binance_cluster.errors import BinanceClusterError
from binance_cluster.types import Candles, format_time_ms

log = logging.getLogger(__name__)

QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR")


@dataclass
class BacktestRun:
    """One backtest output directory, read once; prices are read from the job's store on demand."""

    directory: Path
    summary: dict
    trades: dict[str, np.ndarray]
    curves: list[tuple[str, np.ndarray, np.ndarray, dict]]
    job: object                                  # binance_cluster.backtest.job.Job
    _prices: dict[str, Candles | None] = field(default_factory=dict, repr=False)
    price_problems: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def mode(self) -> str:
        return self.summary.get("mode", self.job.mode)

    @property
    def quote(self) -> str:
        """The quote asset all symbols share (e.g. USDT), or `quote`."""
        for q in QUOTES:
            if self.job.symbols and all(s.endswith(q) and s != q for s in self.job.symbols):
                return q
        return "quote"

    def span(self) -> tuple[int | None, int | None]:
        """First and last bar time of the results (ms UTC), from the curves, else the job."""
        starts = [int(t[0]) for _, t, _, _ in self.curves if len(t)]
        ends = [int(t[-1]) for _, t, _, _ in self.curves if len(t)]
        if starts:
            return min(starts), max(ends)
        return self.job.start, self.job.end

    def period(self) -> str:
        """`2025-05-05 00:00 to 2025-05-11 23:59 UTC` (the bars the results cover)."""
        first, last = self.span()
        if first is None and last is None:
            return "the whole store"
        return f"{format_time_ms(first) if first is not None else 'start'} to " \
               f"{format_time_ms(last) if last is not None else 'end'} UTC"

    def real(self, symbol: str | None = None, params_id: int | None = None) -> np.ndarray:
        """Mask of the real (not paper) trades, of one symbol and parameter set if given."""
        t = self.trades
        mask = ~t["paper"] if "paper" in t else np.ones(len(t["symbol"]), bool)
        if symbol is not None:
            mask &= t["symbol"] == symbol
        if params_id is not None and "params_id" in t:
            mask &= t["params_id"] == params_id
        return mask

    def prices(self, symbol: str) -> Candles | None:
        """The job's candles of `symbol` from the store named in job.toml (None if unreadable)."""
        if symbol not in self._prices:
            from binance_cluster.backtest.driver import load_candles
            from binance_cluster.candles.store import CandleStore

            try:
                self._prices[symbol] = load_candles(CandleStore(self.job.store), symbol, self.job)
            except (BinanceClusterError, OSError) as exc:
                self._prices[symbol] = None
                self.price_problems[symbol] = f"{self.job.store}: {symbol}: {exc}"
                log.warning("no prices for %s in the report: %s", symbol, exc)
        return self._prices[symbol]


def run_mode(directory: str | Path) -> str | None:
    """The `mode` of a backtest output directory's summary.json; None when it has no readable one."""
    try:
        return results.read_summary(directory).get("mode")
    except BinanceClusterError:
        return None


def load_backtest(directory: str | Path) -> BacktestRun:
    """Read a backtest output directory; DataError naming the first missing or bad file."""
    directory = Path(directory)
    summary = results.read_summary(directory)
    trades = results.read_trades(directory)
    curves = results.read_curves(directory)
    job = results.read_job(directory)
    return BacktestRun(directory, summary, trades, curves, job)


def closes_at(candles: Candles, times: np.ndarray) -> np.ndarray:
    """The last close at or before each of `times` (NaN before the first candle)."""
    idx = np.searchsorted(candles.open_time, times, side="right") - 1
    out = np.full(len(times), np.nan)
    ok = idx >= 0
    out[ok] = candles.close[idx[ok]]
    return out
