"""The live loop: once per closed candle of the job's interval, the backtest's decision on real fills.

Every bar (on the exchange's clock; the emulator's replay clock in tests):

1. rank 0 sees the bar close (`bars.plan_bars`: missed bars caught up in order or skipped with
   a logged reason, per the job's policy) and sends the bar to every rank;
2. each rank fetches the newly closed candles of ITS symbols (public klines), appends them to
   its own store files (a writer thread, once the rank's signals of the bar are computed),
   and computes the strategy's signals over the last `history` bars (`live.history`: read
   from the store once, then kept in memory with what it appends) with the backtest's kernels (`strategies.registry.compute_signals`; ml_barrier
   with the model store as the backtest reads it). A symbol whose fetch fails is skipped this
   bar with the reason logged and journaled, never decided on stale data;
3. rank 0 gathers them, rebuilds the decision state from the journal's fills and the broker's
   balances (`live.state`), and runs the backtest's step for the closed bar
   (`engine.step.step_bar`): the decisions at its close (entries, exit signals, max-hold exits;
   a symbol that left TRADING is sold, reason `end`);
4. for the orders decided, the same step runs the next bar's open on the forming candle's open
   (the price the market orders will fill at): its exits first, then its entries ranked by
   score, sized from the equity at the close and cut to the cash, as the backtest fills them.
   Exits go out first; each entry is checked by `live.risk` and journaled (intent, with its
   deterministic client id, BEFORE it is sent; then the answer and fills);
5. rank 0 journals the bar (close, decision and last-order times, orders, equity, skipped
   symbols), prints one line, rewrites the heartbeat file and waits for the next close.

Protective exits (the OCO take profit / stop loss placed right after an entry fill, trailing
stops, bot-managed levels, market exits that cancel the protection first) are `live.exits`'s
plans; `ExitsSeam` carries them out with the loop's broker and journal: after every close for
each open position, right after every entry fill, for every exit decided, and at start-up.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

import numpy as np

from binance_cluster.errors import ExchangeError, RetryableExchangeError
from binance_cluster.exchange.broker.base import Broker, Order, OrderRequest
from binance_cluster.exchange.broker.errors import (AuthenticationError, ClockSkewError,
                                                    OrderStatusUnknownError)
from binance_cluster.exchange.broker.ids import client_order_id
from binance_cluster.fileio import atomic_write
from binance_cluster.live import exits
from binance_cluster.live.bars import plan_bars
from binance_cluster.live.crash import crash_point
from binance_cluster.live.job import LiveJob
from binance_cluster.live.journal import BarRecord, Journal, realised_since
from binance_cluster.live.orders import send_intent
from binance_cluster.live.reconcile import resolve_unknown
from binance_cluster.live.risk import AccountView, KillSwitch, check_entry
from binance_cluster.live.state import (Holding, before_fills, open_holding, rebuild,
                                        split_at_close)
from binance_cluster.live.venue import quote_asset
from binance_cluster.parallel import Comm, map_units, partition, quiet_bcast
from binance_cluster.types import format_time_ms, interval_ms

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
FETCH_THREADS = 8          # a rank's symbols fetched at once (requests in flight)
ACTIONS = {1: "entry", 2: "exit_signal", 3: "max_hold"}
# exits decided at a close and sold at once (not at the next open with the decided orders)
CLOSE_EXITS = ("stop_loss", "take_profit", "trailing_stop", "end")
# errors that mean the exchange cannot be reached now (after the transport's retries: 5xx,
# timeouts, dropped connections, rate limits; an order's outcome unknown; the clock out of
# recvWindow after a resync): the bar is skipped, the loop goes on. Anything else (a refused
# key, a symbol or a job the exchange does not know) ends the run with one line.
UNREACHABLE = (RetryableExchangeError, ClockSkewError)


# -- every rank: one symbol's bar -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SymbolBar:
    """What a rank sends for one symbol and bar: the candle (NaN: none), the signals at its
    close, the closes and trailing peaks before and after it."""

    symbol: str
    open: float = math.nan
    high: float = math.nan
    low: float = math.nan
    close: float = math.nan
    entry: bool = False
    exit: bool = False
    score: float = math.nan
    prev_close: float = math.nan     # the last close before this bar
    peak_before: float = math.nan    # highest high of the open position up to the bar before
    fetched: int = 0                 # candles appended to the store this bar


def history_bars(strategy, params: dict, interval: str, models=None) -> int:
    """Bars of history every decision sees: the strategy's warm-up and the features' window,
    plus the bar before (crossovers compare two bars) and one to spare."""
    bars = strategy.warmup(params, interval)
    if models is not None:
        bars = max([bars] + [p.spec.history for p in models.periods])
    return bars + 2


class SymbolWorker:
    """A rank's symbols: fetch, store, signals (`__call__` on a (symbol, bar, position) unit)."""

    def __init__(self, live_job: LiveJob, public_url: str):
        from binance_cluster.candles.store import CandleStore
        from binance_cluster.exchange.broker.feeds import ExchangeFeed
        from binance_cluster.live.history import RecentCandles
        from binance_cluster.strategies.registry import get_strategy

        self.job = live_job.job
        self.strategy = get_strategy(self.job.strategy)
        self.params = self.job.grid()[0]
        self.bar_ms = interval_ms(self.job.interval)
        self.timeout_s = live_job.live.timeout_seconds
        self.feed = ExchangeFeed(public_url, self.job.interval, self.timeout_s)
        self.store = CandleStore(self.job.store)
        # the decisions' history, read from the store once and extended with what is appended
        self.recent = RecentCandles(self.store, self.job.interval)
        self._models: dict[str, Any] = {}
        self._writers: dict[str, Any] = {}
        self._prefetched: dict[str, Any] = {}
        # the newest stored open time per symbol: this rank alone writes its symbols' files
        # (`writer`, locked for the run), so the store is opened only to read the history
        self._last_open: dict[str, int] = {}
        self.public_url = public_url
        self._local = threading.local()
        self._write_lock = threading.Lock()
        # appends to the store wait for the writer thread (off the bar's critical path); one
        # that fails is reported at the symbol's next fetch
        self._appends: queue.Queue = queue.Queue()
        self._append_errors: dict[str, Exception] = {}
        self._append_thread: threading.Thread | None = None
        self._quiet = threading.Event()     # set: no bar is being fetched and computed
        self._quiet.set()
        self._left = 0
        self._pool = None                   # prefetch's threads

    def models(self, symbol: str):
        if not self.strategy.needs_model:
            return None
        if symbol not in self._models:
            from binance_cluster.ml.serve import load_symbol_models

            self._models[symbol] = load_symbol_models(self.job.models, symbol)
        return self._models[symbol]

    def __call__(self, unit: tuple) -> SymbolBar:
        try:
            return self._bar(unit)
        finally:
            self._left -= 1
            if self._left <= 0:
                self._quiet.set()     # the bar's units are computed: the store's turn

    def _bar(self, unit: tuple) -> SymbolBar:
        from binance_cluster.engine.step import peak_since
        from binance_cluster.strategies.registry import compute_signals

        symbol, bar, position = unit
        models = self.models(symbol)
        history = history_bars(self.strategy, self.params, self.job.interval, models)
        first = bar - (history - 1) * self.bar_ms
        fetched = self._fetch(symbol, first, bar)
        c = self.recent.window(symbol, first, bar + self.bar_ms)
        if not len(c) or int(c.open_time[-1]) != bar:
            before = c.close[c.open_time < bar]
            return SymbolBar(symbol, prev_close=float(before[-1]) if len(before) else math.nan,
                             fetched=fetched)
        sig = compute_signals(self.strategy, c, self.params, self.job.interval, model=models)
        peak = math.nan
        if position is not None:
            entry_time, entry_price = position
            inside = (c.open_time >= entry_time) & (c.open_time < bar)
            peak = peak_since(entry_price, c.high[inside])
        return SymbolBar(symbol, float(c.open[-1]), float(c.high[-1]), float(c.low[-1]),
                         float(c.close[-1]), bool(sig.entry[-1]), bool(sig.exit[-1]),
                         float(sig.score[-1]),
                         prev_close=float(c.close[-2]) if len(c) > 1 else math.nan,
                         peak_before=peak, fetched=fetched)

    def prefetch(self, units: list[tuple], comm: Comm) -> None:
        """Fetch this rank's share of `units` at once, a few symbols at a time (the requests
        overlap), before `map_units` computes them one by one."""
        from concurrent.futures import ThreadPoolExecutor

        mine = [units[i] for i in partition([1.0] * len(units), comm.size)[comm.rank]]
        self._prefetched = {}
        self._left = len(mine)
        if mine:
            self._quiet.clear()       # queued appends wait until this bar's units are computed
        if len(mine) < 2:
            return

        def one(unit):
            symbol, bar, _ = unit
            models = self.models(symbol)
            first = bar - (history_bars(self.strategy, self.params, self.job.interval, models) - 1) \
                * self.bar_ms
            try:
                return symbol, self._fetch(symbol, first, bar, self._thread_feed())
            except Exception as exc:       # reported for this symbol by __call__
                return symbol, exc

        if self._pool is None:
            # kept for the run: its threads keep their feeds, and so their HTTP connections
            self._pool = ThreadPoolExecutor(max_workers=FETCH_THREADS, thread_name_prefix="fetch")
        self._prefetched = dict(self._pool.map(one, mine))

    def _thread_feed(self):
        feed = getattr(self._local, "feed", None)
        if feed is None:
            from binance_cluster.exchange.broker.feeds import ExchangeFeed

            feed = self._local.feed = ExchangeFeed(self.public_url, self.job.interval,
                                                   self.timeout_s)
        return feed

    def _fetch(self, symbol: str, first: int, bar: int, feed=None) -> int:
        """Append the candles closed by the bar's close that the store lacks (from `first`)."""
        done = self._prefetched.pop(symbol, None)
        if isinstance(done, Exception):
            raise done
        if symbol in self._append_errors:
            # the store refused candles memory holds (and the later ones were dropped): both
            # start again from the store, and the next bar fetches what it lacks
            self.flush()
            failed = self._append_errors.pop(symbol)
            self._last_open.pop(symbol, None)
            self.recent.forget(symbol)
            raise failed
        last = self._last_open.get(symbol)
        if last is None:
            span = self.store.span(symbol, self.job.interval) \
                if self.store.has(symbol, self.job.interval) else None
            if span is not None:
                last = self._last_open[symbol] = span[1]
        start = first if last is None else max(first, last + self.bar_ms)
        if start > bar:
            return done or 0
        candles = (feed or self.feed).closed_candles(symbol, start, bar + self.bar_ms)
        if len(candles):
            from binance_cluster.candles.store import validate_candles

            validate_candles(candles, self.job.interval)
            with self._write_lock:
                writer = self.writer(symbol)
                if self.recent.holds(symbol):
                    self.recent.appended(symbol, candles)
                    self._append_later(symbol, candles)
                else:
                    # memory is loaded from the store next: the store must have them first
                    self.flush()
                    writer.append(self.job.interval, candles)
                    writer.close_file()
                newest = int(candles.open_time[-1])
                self._last_open[symbol] = newest if last is None else max(last, newest)
        return len(candles)

    def _append_later(self, symbol: str, candles) -> None:
        """Queue candles for the writer thread: the store is the record (a crash before they
        are written loses nothing the exchange does not still have: the restart fetches them
        again), memory already serves the decisions."""
        if self._append_thread is None:
            self._append_thread = threading.Thread(target=self._write_appends,
                                                   name="store-appends", daemon=True)
            self._append_thread.start()
        self._appends.put((symbol, candles))

    def _write_appends(self) -> None:
        while True:
            item = self._appends.get()
            self._quiet.wait()
            try:
                if item is None:
                    return
                symbol, candles = item
                if symbol in self._append_errors:
                    continue          # in order or not at all: refetched after the failure
                writer = self._writers[symbol]
                try:
                    writer.append(self.job.interval, candles)
                    writer.close_file()       # the lock stays: ~0.8 MB less a symbol
                except Exception as exc:    # reported at the symbol's next fetch
                    log.warning("%s: the store refused the fetched candles: %s", symbol, exc)
                    self._append_errors[symbol] = exc
            finally:
                self._appends.task_done()

    def writer(self, symbol: str):
        """This rank's writer of `symbol`'s store file, locked for the run (its HDF5 file is
        open only while an append writes)."""
        if symbol not in self._writers:
            self._writers[symbol] = self.store.writer(symbol).__enter__()
        return self._writers[symbol]

    def flush(self) -> None:
        """Wait until every queued append is in the store."""
        self._quiet.set()
        self._appends.join()

    def close(self) -> None:
        """Write the queued appends, then close the store files this rank writes."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._quiet.set()
        if self._append_thread is not None:
            self._appends.put(None)
            self._append_thread.join()
            self._append_thread = None
        for w in self._writers.values():
            w.close()
        self._writers.clear()


# -- rank 0: exits seam -----------------------------------------------------------------------

class ExitsSeam:
    """The loop's hand-over to `live.exits`: the actions it plans for a position are carried
    out (journaled before they are sent) with the loop's broker and journal."""

    protects = True           # places the protective orders of the job's stops and targets

    def __init__(self, loop: "LiveLoop"):
        self.loop = loop
        # the account read once for the after-close checks of all held symbols (an order for
        # one symbol changes neither another's coin nor its resting orders); None: read anew
        self.balances: dict | None = None
        self.resting_now: dict | None = None

    def _run(self, actions) -> int:
        if not actions:
            return 0
        answers = exits.carry_out(actions, self.loop.broker, self.loop.journal)
        self.loop._last_order_ms = self.loop.since_read()
        return len(answers)

    def _held(self, symbol: str) -> Decimal:
        """What the account holds of the symbol's coin (free and locked)."""
        balances = self.balances if self.balances is not None else self.loop.broker.balances()
        balance = balances.get(self.loop.base[symbol])
        return balance.total if balance is not None else Decimal(0)

    def _holding(self, symbol: str, entry_price: float, peak: float, held: Decimal | None = None):
        held = self._held(symbol) if held is None else held
        return exits.holding(symbol, entry_price, held, peak)

    def resting(self, symbol: str):
        """The protective order resting for `symbol` (the newest), or None."""
        if self.resting_now is not None:
            found = self.resting_now.get(symbol)
        else:
            found = exits.resting_exits(self.loop.journal, self.loop.broker, [symbol]).get(symbol)
        return found[-1] if found else None

    def start(self, from_bar_ms: int) -> int:
        """At start-up (after reconcile): every open position gets its protection back."""
        lp = self.loop
        holdings = exits.journal_holdings(lp.journal, lp.broker.filters)
        resting = exits.resting_exits(lp.journal, lp.broker, lp.symbols)
        return self._run(exits.restore(lp.lj.name, holdings, resting, from_bar_ms, lp.job.risk,
                                       lp.broker.filters, lp.settings.exits))

    def exit_now(self, symbol: str, entry_price: float, peak: float, reason: str, bar: int) -> int:
        """Cancel the protection and sell at market what the account holds (signal, max hold,
        a symbol ending) for the decision on the bar opening at `bar`."""
        lp = self.loop
        actions = exits.exit_now(lp.lj.name, self._holding(symbol, entry_price, peak),
                                 self.resting(symbol), bar, reason, lp.job.risk, lp.filters[symbol])
        return self._run(actions)

    def after_close(self, symbol: str, entry_price: float, peak_before: float, peak_after: float,
                    bar: int, open_: float, high: float, low: float) -> int:
        """After the bar's close: bot mode checks the levels; exchange mode sells a position its
        stop passed without selling, else raises a trailing stop."""
        lp = self.loop
        risk, filters, job = lp.job.risk, lp.filters[symbol], lp.lj.name
        held = self._held(symbol)     # one account request for both checks
        before = self._holding(symbol, entry_price, peak_before, held)
        if lp.settings.exits == "bot":
            return self._run(exits.bot_check(job, before, bar, open_, high, low, risk, filters))
        resting = self.resting(symbol)
        actions = exits.stop_passed(job, before, resting, bar, open_, high, low, risk, filters)
        if not actions:
            actions = exits.trail(job, self._holding(symbol, entry_price, peak_after, held),
                                  resting, bar + lp.bar_ms, risk, filters)
        return self._run(actions)

    def after_entry(self, symbol: str, order: Order, entry_bar: int) -> int:
        """Protect an entry that filled in the bar opening at `entry_bar`."""
        lp = self.loop
        price = float(order.avg_price) if order.avg_price is not None else math.nan
        return self._run(exits.after_entry(lp.lj.name, self._holding(symbol, price, price),
                                           entry_bar, lp.job.risk, lp.filters[symbol],
                                           lp.settings.exits))


# -- rank 0: the loop ------------------------------------------------------------------------

class LiveLoop:
    """Rank 0's side of the loop (see the module docstring)."""

    def __init__(self, live_job: LiveJob, broker: Broker, market, journal: Journal, comm: Comm,
                 worker: SymbolWorker, kill: KillSwitch, mode: str = "paper",
                 out: Callable[[str], None] = print):
        from binance_cluster.strategies.registry import get_strategy

        self.lj = live_job
        self.job = live_job.job
        self.settings = live_job.live
        self.broker = broker
        self.market = market
        self.journal = journal
        self.comm = comm
        self.worker = worker
        self.kill = kill
        self.mode = mode
        self.out = out
        self.bar_ms = interval_ms(self.job.interval)
        self.symbols = list(self.job.symbols)
        self.strategy = get_strategy(self.job.strategy)
        self.filters = {s: broker.filters(s) for s in self.symbols}
        self.rules = [self.filters[s].rules() for s in self.symbols]
        self.base = {s: f.base_asset for s, f in self.filters.items()}
        self.quote = quote_asset(broker, self.symbols)
        for s, f in self.filters.items():
            journal.record_symbol(s, f.base_asset, f.quote_asset)
            job_rules = self.job.rules_for(s)
            if (job_rules.tick_size, job_rules.step_size, job_rules.min_notional) != \
                    (self.rules[self.symbols.index(s)].tick_size, self.rules[self.symbols.index(s)].step_size,
                     self.rules[self.symbols.index(s)].min_notional):
                log.warning("%s: the exchange's filters %s differ from the job's rules %s; the "
                            "loop follows the exchange", s, self.rules[self.symbols.index(s)], job_rules)
        self.exits = ExitsSeam(self)
        self.ended: set[str] = set()
        last = journal.bars(last=1)
        self.last_bar: int | None = last[0].bar_ms if last else None
        self._clock_at: tuple[int, float] = (0, 0.0)
        self._last_order_ms: int | None = None
        self._realised: tuple[int, Decimal] | None = None    # (bar, its day's realised PnL)
        self._interrupted = False        # the last bar was skipped (`_handle_or_skip`)
        self.handled = 0

    # -- clocks, ids, sending ------------------------------------------------------------------
    def exchange_now(self) -> int:
        """The exchange's time now: read from it, and remembered against our clock."""
        now = int(self.market.now_ms())
        self._clock_at = (now, time.monotonic())
        return now

    def since_read(self) -> int:
        """The exchange's time now, from its last reading and our clock's progress since."""
        at, mono = self._clock_at
        return at + int((time.monotonic() - mono) * 1000)

    def client_id(self, symbol: str, bar: int, intent: str) -> str:
        return client_order_id(self.lj.name, symbol, bar, intent)

    def send(self, req: OrderRequest, purpose: str, bar: int) -> Order | None:
        """Journal the intent, send it, journal the answer (or the error): `orders.send_intent`
        (an intent the journal already holds is asked for by its client id first); None when
        refused or when its outcome is unknown (queried before the next bar, `_sync_fills`).
        A refused key and an exchange that cannot be reached are raised (`run`)."""
        try:
            return send_intent(req, purpose, bar, self.broker, self.journal)
        except OrderStatusUnknownError as exc:
            log.warning("%s %s %s: outcome unknown, queried next bar: %s", req.symbol, purpose,
                        req.client_id, exc)
            return None
        except (AuthenticationError, *UNREACHABLE):
            raise                      # a refused key ends the run; the exchange unreachable, the bar
        except ExchangeError as exc:
            log.warning("%s %s %s refused by the exchange: %s", req.symbol, purpose, req.client_id, exc)
            return None
        finally:
            self._last_order_ms = self.since_read()

    # -- the run -------------------------------------------------------------------------------
    def run(self, max_bars: int | None = None) -> int:
        """Handle bars until `max_bars` were handled or the kill switch is engaged; exit code."""
        while True:
            if self.kill.engaged:
                log.warning("stopping: %s", self.kill.reason)
                self.out(f"stopped: {self.kill.reason}")
                return 0
            try:
                now = self.exchange_now()
            except UNREACHABLE as exc:
                log.warning("the exchange's clock could not be read (%s); trying again in %g s",
                            _first_line(exc), self.settings.poll_seconds)
                time.sleep(self.settings.poll_seconds)
                continue
            plan = plan_bars(self.last_bar, now, self.bar_ms, self.settings.missed_bars,
                             self.settings.max_catch_up)
            for bar, reason in plan.skipped:
                log.warning("bar %s skipped: %s", format_time_ms(bar), reason)
                self.journal.record_bar(BarRecord(bar, bar + self.bar_ms, now, None, 0, None,
                                                  {"*": reason}))
            if not plan.handle:
                time.sleep(self.settings.poll_seconds)
                continue
            for bar in plan.handle:
                self._handle_or_skip(bar)
                self.last_bar = bar
                self.handled += 1
                if max_bars is not None and self.handled >= max_bars:
                    return 0
                if self.kill.engaged:
                    break

    def _handle_or_skip(self, bar: int) -> None:
        """`handle(bar)`; when the exchange cannot be reached for it (`UNREACHABLE`: still
        failing after the transport's retries), the rest of the bar is skipped with the reason
        logged, journaled and printed, and the loop goes on with the next bar. What was sent
        before stays journaled; an order whose outcome is unknown is asked for before the next
        bar (`_sync_fills`); after a skipped bar, the start-up pass of the exits runs first
        (`ExitsSeam.start`: a position whose protection the skip left unplaced gets it).
        Every other error ends the run (a refused key, a bad job)."""
        started = int(time.time() * 1000)
        try:
            if self._interrupted:
                self._sync_fills()
                restored = self.exits.start(bar + self.bar_ms)
                self._interrupted = False
                if restored:
                    log.warning("after the skipped bar: %d protective order(s) placed or "
                                "cancelled", restored)
            self.handle(bar)
        except UNREACHABLE as exc:
            self._interrupted = True
            reason = f"the exchange could not be reached: {_first_line(exc)}"
            log.warning("bar %s skipped: %s", format_time_ms(bar), reason)
            sent = sum(1 for i in self.journal.intents() if i.created_ms >= started)
            record = BarRecord(bar, bar + self.bar_ms, self.since_read(), self._last_order_ms,
                               sent, None, {"*": reason})
            self.journal.record_bar(record)
            self.out(f"{format_time_ms(bar)} UTC  skipped: {reason}")
            self._heartbeat(record, None)

    def handle(self, bar: int) -> None:
        """One closed bar (see the module docstring)."""
        self._last_order_ms = self._realised = None
        protected = self._sync_fills()
        holdings, balances = self._account(bar)
        positions = {s: (h.time_ms - h.time_ms % self.bar_ms, float(h.price)) for s, h in holdings.items()}
        units = [(s, bar, positions.get(s)) for s in self.symbols]
        quiet_bcast(self.comm, ("bar", units))
        self.worker.prefetch(units, self.comm)
        gathered = map_units(self.comm, units, self.worker, names=self.symbols)
        parts, skipped = {}, {}
        for s, r in zip(self.symbols, gathered):
            if r.ok:
                parts[s] = r.value
            else:
                skipped[s] = (r.error or "").splitlines()[0]
                log.warning("%s skipped for bar %s: %s", s, format_time_ms(bar), skipped[s])
        decided, equity, orders = self._decide(bar, holdings, balances, parts)
        orders += protected
        record = BarRecord(bar, bar + self.bar_ms, decided, self._last_order_ms, orders,
                           Decimal(repr(equity)), skipped)
        self.journal.record_bar(record)
        self.out(f"{format_time_ms(bar)} UTC  latency {record.latency_ms} ms  orders {orders}  "
                 f"equity {equity:.2f}" + (f"  skipped {', '.join(sorted(skipped))}" if skipped else ""))
        self._heartbeat(record, equity)

    def _sync_fills(self) -> int:
        """Journal what the exchange did since: orders whose outcome was unknown, protective
        orders filling between bars, fills of the held symbols; then protect at once an entry
        found filled that never got its protection (`_protect_found_entries`). Returns the
        protective orders sent."""
        resolve_unknown(self.journal, self.broker)
        for intent in self.journal.open_intents():
            self.journal.record_answer(self.broker.query(intent.symbol, intent.client_id))
        for s in self.symbols:
            if open_holding(s, self.base[s], self.journal.fills(s)) is not None:
                last = self.journal.last_trade_id(s)
                new = self.broker.fills_since(s, trade_id=(last or 0) + 1)
                if new:
                    self.journal.record_fills(new)
        return self._protect_found_entries()

    def _protect_found_entries(self) -> int:
        """Exchange-mode exits: a position whose entry is its symbol's newest intent (nothing
        was sent for it since: its outcome was unknown when it went out, and it was found
        filled since) gets its protective order now, as right after an entry fill (same
        client id), instead of at the next start-up."""
        if self.settings.exits != "exchange":
            return 0
        newest = {i.symbol: i for i in self.journal.intents()}
        sent = 0
        for s, intent in newest.items():
            if intent.purpose != "entry" or s not in self.base or s in self.ended:
                continue
            fills = self.journal.fills(s)
            if open_holding(s, self.base[s], fills) is None or \
                    (s, fills[-1].order_id) not in self.journal.order_ids([intent.client_id]):
                continue
            price = float(fills[-1].price)
            lv = exits.levels(price, price, self.job.risk, self.filters[s])
            if math.isnan(lv.stop) and math.isnan(lv.target):
                continue
            log.warning("%s %s: found filled after its outcome was unknown; placing its "
                        "protection now", s, intent.client_id)
            order = self.broker.query(s, intent.client_id)
            sent += self.exits.after_entry(s, order, intent.bar_ms + self.bar_ms)
        return sent

    def _account(self, bar: int, close_exits: bool = False) -> tuple[dict[str, Holding], dict]:
        """The open holdings and the balances as they were at the close of the bar opening at
        `bar` (`state.before_fills`): the fills made since are taken back, so a bar handled
        again after a restart is decided on the account it was first decided on. With
        `close_exits`, the sales of the exits decided at that close (a stop passed, a symbol
        that stopped trading) stay: the account the next open's orders are sized on."""
        then, later = self._fills_at(bar, close_exits)
        holdings = {}
        for s in self.symbols:
            h = open_holding(s, self.base[s], then[s])
            if h is not None:
                holdings[s] = h
        balances = before_fills(self.broker.balances(), later, self.base, self.quote)
        return holdings, balances

    def _fills_at(self, bar: int, close_exits: bool = False) -> tuple[dict[str, list], list]:
        """Each symbol's journaled fills as they were at the close of the bar opening at `bar`
        (with `close_exits`, the sales of the exits decided at that close too), and the fills
        made since (`state.split_at_close`)."""
        keep: set = set()
        if close_exits:
            keep = self.journal.order_ids([i.client_id for i in self.journal.intents()
                                           if i.bar_ms == bar and i.purpose in CLOSE_EXITS])
        then, later = {}, []
        for s in self.symbols:
            then[s], after = split_at_close(self.journal.fills(s), bar + self.bar_ms, keep)
            later += after
        return then, later

    def _statuses(self) -> dict[str, str]:
        info = self.market.client.exchange_info()
        return {d["symbol"]: d.get("status", "TRADING") for d in info.get("symbols", [])}

    def _decide(self, bar: int, holdings: dict[str, Holding], balances: dict,
                parts: dict) -> tuple[int, float, int]:
        from binance_cluster.engine.step import step_bar

        n = len(self.symbols)
        cols = {k: np.full(n, np.nan) for k in ("open", "high", "low", "close", "score", "prev")}
        entry, exit_ = np.zeros(n, bool), np.zeros(n, bool)
        peaks = {}
        for i, s in enumerate(self.symbols):
            p = parts.get(s)
            if p is None or s in self.ended:
                continue
            cols["open"][i], cols["high"][i], cols["low"][i], cols["close"][i] = p.open, p.high, p.low, p.close
            cols["score"][i], cols["prev"][i] = p.score, p.prev_close
            entry[i], exit_[i] = p.entry, p.exit
            if s in holdings and not math.isnan(p.peak_before):
                peaks[s] = p.peak_before
        statuses = self._statuses()
        ends = np.array([statuses.get(s, "BREAK") != "TRADING" and s not in self.ended
                         and not math.isnan(cols["open"][i]) for i, s in enumerate(self.symbols)])
        state = rebuild(self.symbols, holdings, balances, self.base, self.quote, cols["prev"], peaks,
                        self.bar_ms)
        t = bar // self.bar_ms
        max_positions = self.job.risk.max_positions
        res = step_bar(state, t, bar, cols["open"], cols["high"], cols["low"], cols["close"], entry,
                       exit_, cols["score"], ends, self.job.risk, self.rules, self.bar_ms, max_positions)
        decided = self.since_read()
        sent = 0
        self.journal.record_decisions([
            (bar, self.symbols[o.symbol], ACTIONS.get(o.kind, str(o.kind)), bar,
             None if math.isnan(o.score) else o.score, None) for o in res.orders])
        reasons = _reasons(res.trades)
        for k, reason in enumerate(reasons):
            s = self.symbols[int(res.trades["symbol_index"][k])]
            if reason == "end" and s in holdings:
                self.journal.record_decision(bar, s, "end", bar, None, {"status": statuses.get(s)})
                sent += self.exits.exit_now(s, float(holdings[s].price),
                                            peaks.get(s, float(holdings[s].price)), "end", bar)
        self.ended.update(s for i, s in enumerate(self.symbols) if ends[i])
        checked = [i for i, s in enumerate(self.symbols)
                   if s in holdings and s not in self.ended and not math.isnan(cols["open"][i])]
        if checked:
            self.exits.balances = self.broker.balances()
            if self.settings.exits != "bot":
                self.exits.resting_now = exits.resting_exits(
                    self.journal, self.broker, [self.symbols[i] for i in checked])
        try:
            for i in checked:
                s = self.symbols[i]
                price = float(holdings[s].price)
                before = peaks.get(s, price)
                sent += self.exits.after_close(s, price, before, max(before, cols["high"][i]), bar,
                                               cols["open"][i], cols["high"][i], cols["low"][i])
        finally:
            self.exits.balances = self.exits.resting_now = None
        closes = np.where(np.isnan(cols["close"]), cols["prev"], cols["close"])
        equity = res.equity
        if res.orders:
            if sent:
                self._sync_fills()
            holdings, balances = self._account(bar, close_exits=True)
            sent += self._at_open(bar, res, holdings, balances, closes, peaks, cols["high"])
        return decided, equity, sent

    def _at_open(self, bar: int, res, holdings, balances, closes, peaks, highs) -> int:
        """Run the decided orders at the next open (forming candle) and send them."""
        from binance_cluster.engine.step import step_bar

        n = len(self.symbols)
        now = self.since_read()
        price = np.full(n, np.nan)
        for o in res.orders:
            s = self.symbols[o.symbol]
            quote = self.market.market(s, now)
            if quote is None:
                log.warning("%s: no market at the open after %s; its order is not sent", s,
                            format_time_ms(bar))
                continue
            price[o.symbol] = quote.price
        holdings = {s: h for s, h in holdings.items()
                    if s not in self.ended}
        after_peaks = {}
        for i, s in enumerate(self.symbols):
            if s in holdings:
                before = peaks.get(s, float(holdings[s].price))
                after_peaks[s] = max(before, highs[i]) if not math.isnan(highs[i]) else before
        state = rebuild(self.symbols, holdings, balances, self.base, self.quote,
                        closes, after_peaks, self.bar_ms, orders=res.orders)
        nxt = bar + self.bar_ms
        none = np.zeros(n, bool)
        res2 = step_bar(state, nxt // self.bar_ms, nxt, price, price, price, price, none, none,
                        np.full(n, np.nan), none, self.job.risk, self.rules, self.bar_ms,
                        self.job.risk.max_positions)
        sent = 0
        for k, reason in enumerate(_reasons(res2.trades)):
            if reason in ("signal", "max_hold") and int(res2.trades["exit_time"][k]) == nxt:
                s = self.symbols[int(res2.trades["symbol_index"][k])]
                if s in holdings:
                    sent += self.exits.exit_now(s, float(holdings[s].price), after_peaks[s],
                                                reason, bar)
        scores = {o.symbol: o.score for o in res.orders}
        opened = sorted((p for p in res2.opened if not p.paper),
                        key=lambda p: (-scores.get(p.symbol, -math.inf)
                                       if not math.isnan(scores.get(p.symbol, math.nan)) else math.inf,
                                       p.symbol))
        open_count = len(holdings)
        exposure = sum((h.cost for h in holdings.values()), Decimal(0))
        for p in opened:
            s = self.symbols[p.symbol]
            qty = Decimal(repr(p.quantity))
            notional = qty * Decimal(repr(p.price))
            view = AccountView(open_count, exposure, self._day_pnl(bar, holdings, closes))
            refusal = check_entry(s, notional, self.settings.limits, view, self.kill.engaged)
            if refusal is not None:
                self.journal.record_refusal(bar, s, refusal.rule, refusal.detail)
                log.warning("entry refused: %s", refusal.detail)
                continue
            req = OrderRequest(s, "BUY", "MARKET", self.client_id(s, bar, "entry"), quantity=qty)
            order = self.send(req, "entry", bar)
            if order is not None:
                sent += 1
                open_count += 1
                exposure += order.cumulative_quote
                if order.executed_qty > 0:
                    crash_point("after-fill")
                    sent += self.exits.after_entry(s, order, nxt)
        return sent

    def _day_pnl(self, bar: int, holdings: dict[str, Holding], closes) -> Decimal:
        """The UTC day's PnL the entries of the bar opening at `bar` are checked against:
        realised since midnight plus `holdings` at the last close, on the fills of the account
        those entries are sized on (`_account(bar, close_exits=True)`). Fills made since (the
        bar's own orders; when the bar is decided again after a restart, those sent before
        it) are not counted: each real fill counts once, and a bar decided again sees the PnL
        it was first decided on."""
        if self._realised is None or self._realised[0] != bar:
            day = bar - bar % DAY_MS
            then, _ = self._fills_at(bar, close_exits=True)
            self._realised = (bar, sum((realised_since(then[s], s, self.base[s], self.quote, day)
                                        for s in self.symbols), Decimal(0)))
        pnl = self._realised[1]
        for s, h in holdings.items():
            close = closes[self.symbols.index(s)]
            if not math.isnan(close):
                pnl += h.held * Decimal(repr(float(close))) - h.cost
        return pnl

    def _heartbeat(self, record: BarRecord, equity: float | None) -> None:
        atomic_write(self.settings.heartbeat, json.dumps({
            "bar_ms": record.bar_ms, "bar": format_time_ms(record.bar_ms), "bars": self.handled + 1,
            "latency_ms": record.latency_ms, "orders": record.orders, "equity": equity,
            "mode": self.mode, "pid": os.getpid(), "time": time.time()}, sort_keys=True) + "\n")


def _first_line(exc: Exception) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0]


def _reasons(trades: dict) -> list[str]:
    from binance_cluster.engine.simulate import EXIT_REASONS

    return [EXIT_REASONS[int(r)] for r in trades["exit_reason"]]


def worker_loop(comm: Comm, worker: SymbolWorker) -> int:
    """A worker rank: compute its symbols' bars until rank 0 says stop; the exit code.

    SIGTERM is left to rank 0 (the kill switch: it finishes the bar, then says stop)."""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        message = quiet_bcast(comm)
        if message[0] == "stop":
            worker.close()
            return int(message[1])
        units = message[1]
        worker.prefetch(units, comm)
        map_units(comm, units, worker, names=[u[0] for u in units])


def stop_workers(comm: Comm, code: int) -> None:
    """Tell every worker rank to return `code`."""
    quiet_bcast(comm, ("stop", code))

