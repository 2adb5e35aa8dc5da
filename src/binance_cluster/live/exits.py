"""Protective exits of the live loop: the backtest's stops, targets, trailing stops and market
exits turned into broker requests with deterministic client ids, and the start-up pass that
gives every open position its protection back (README, "Live exits").

Two modes (`EXIT_MODES`):

- `"exchange"` (default): the exits rest on the exchange, so a position stays protected while
  the bot is down. Right after an entry fills, one protective order is placed for what the
  account holds of the coin (the position plus earlier dust) floored to the lot step: an OCO
  SELL with the target as its LIMIT_MAKER leg and the stop as its stop leg when the job has
  both, a lone stop or a lone LIMIT sell at the target when it has one, nothing when it has
  neither. The levels are the backtest's (`kernels.simulate.protective_levels`,
  `effective_stop`). The stop leg is a STOP_LOSS (a market sell once triggered), so it fills
  at the stop, or at the open of a candle that gaps through it, with no slippage, as the
  backtest's stop; on a symbol whose exchangeInfo does not list STOP_LOSS it is a
  STOP_LOSS_LIMIT whose limit is `STOP_LIMIT_SLACK` below the stop, which fills the same way
  unless a candle opens further below (then it rests at its limit). A trailing stop that
  rises (a bar's high raises it from the next bar on) cancels the resting order and places a
  new one: cancel first, so one position never has two protective orders (both would lock
  the same coins), then place at once. A protective order the exchange rejects because the
  market is already past a level (the next open gaps through it) becomes a market sell for
  that level (an OCO learns which level by trying its stop alone). After each close,
  `stop_passed` sells at market a position whose stop the bar reached but which is still
  held (a stop limit left behind, a protective order refused for the minimum notional).
- `"bot"`: nothing rests on the exchange; at each close (and first of all at a restart,
  `first_crossing` over the missed bars) every open position's bar is checked against its
  levels (`crossed`: stop first) and a market sell is sent when one was reached. Unlike the
  backtest, which fills such an exit at its level inside the bar, these fill at market after
  the close: at the next open less slippage.

Exit signals, max hold and a symbol leaving TRADING cancel the protective order, then sell at
market what the account holds, floored to the lot step (the rest stays as dust); nothing is
sold when the protective order filled first. A market sell refused (under the minimum
notional, as in the backtest, or on a market that is closed) leaves the position open, and
its protection is placed again (which a closed market refuses too: the refusals are
journaled and the position waits).

Client ids (`broker.ids.client_order_id`): the protective order resting from the bar opening
at `b` is (job, symbol, b, "protect") (a raised stop replacing one a restart placed under
that same id: "retrail"); a market exit decided on the bar opening at `b` is (job, symbol, b,
reason). A restarted process re-derives them, so nothing is placed twice; an order planned
again under an id already journaled is asked for first (`orders.send_intent`).

Planning functions are pure and return `Cancel` / `Place` actions; `carry_out` journals each
order before it is sent and every answer after. The start-up pass, after `reconcile`:
`journal_holdings` (open positions by the journal's fills), `resting_exits` (this job's
protective orders on the exchange) and `restore` (what to place and cancel).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Iterable, Sequence, Union

import numpy as np

from binance_cluster.engine.reject import Reject
from binance_cluster.engine.simulate import EXIT_REASONS, Risk, risk_array
from binance_cluster.engine.symbol_rules import SymbolFilters
from binance_cluster.exchange.broker.base import Broker, Order, OrderRequest
from binance_cluster.exchange.broker.errors import (FilterError, InsufficientBalanceError,
                                                    OrderNotFoundError, OrderRejectedError)
from binance_cluster.exchange.broker.ids import client_order_id, list_id_of
from binance_cluster.kernels import fills
from binance_cluster.kernels import simulate as kern
from binance_cluster.live.job import EXIT_MODES
from binance_cluster.live.journal import Journal
from binance_cluster.live.orders import send_intent
from binance_cluster.live.state import Holding

log = logging.getLogger(__name__)

PROTECT = "protect"                   # purpose (and id intent) of a resting protective order
REPROTECT = "reprotect"               # id intent of one placed again after a refused exit
RETRAIL = "retrail"                   # id intent of a raised stop replacing one of its bar's id
# Binance's -2010 messages for an order the market has already passed (`engine.reject`)
PAST_MESSAGES = tuple(r.value for r in (Reject.WOULD_TRIGGER, Reject.WOULD_TAKE,
                                         Reject.PRICE_RELATIONSHIP))
STOP_LIMIT_SLACK = 0.05               # a STOP_LOSS_LIMIT's limit below its stop (no STOP_LOSS)
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Levels:
    """A long's exit levels (NaN: none): the stop in force (the higher of the stop loss and
    the trailing stop; `trailing` when the trailing one is higher) and the target."""

    stop: float
    target: float
    trailing: bool = False

    @property
    def stop_reason(self) -> str:
        """The exit reason of this stop: trailing_stop or stop_loss."""
        return "trailing_stop" if self.trailing else "stop_loss"


def holding(symbol: str, entry_price: float, account: Decimal, peak: float) -> Holding:
    """An open long as the exits see it: symbol, entry fill price, what the account holds of
    the coin for it (the position plus dust of earlier exits) and the peak of the trailing
    stop (the entry fill, then the highs of its closed bars)."""
    return Holding(symbol, Decimal(repr(float(entry_price))), account=account, peak=float(peak))


@dataclass(frozen=True, slots=True)
class Resting:
    """A protective order on the exchange: its (list) client id and its stop, if any."""

    symbol: str
    client_id: str
    stop: Decimal | None


@dataclass(frozen=True, slots=True)
class Cancel:
    """Cancel the order or list `client_id`; later actions of the symbol are dropped when it
    had already filled (the position is gone)."""

    symbol: str
    client_id: str


@dataclass(frozen=True, slots=True)
class Place:
    """Journal `request` (purpose, decision bar) and send it; `fallback` is carried out
    instead when the exchange refuses it for `fallback_when` ("past": a level the market has
    already passed, -2010 with one of PAST_MESSAGES; "refused": any refusal but a short
    balance, e.g. the minimum notional or a closed market), `then` right after when it
    accepts it."""

    request: OrderRequest
    purpose: str
    bar_ms: int
    fallback: tuple["Action", ...] = ()
    then: tuple["Action", ...] = ()
    fallback_when: str = "past"

    @property
    def symbol(self) -> str:
        return self.request.symbol


Action = Union[Cancel, Place]


# -- levels and quantities -------------------------------------------------------------------
def levels(entry_price: float, peak: float, risk: Risk, filters: SymbolFilters) -> Levels:
    """The backtest's stop in force and target of a long entered at `entry_price` whose
    trailing peak is `peak` (`kernels.simulate.protective_levels`, `effective_stop`)."""
    tick = float(filters.tick_size)
    inv = fills.grid_inverse(tick)
    stop, target = kern.protective_levels(float(entry_price), risk_array(risk, 0), tick, inv)
    trailing = math.nan if risk.trailing_stop is None else float(risk.trailing_stop)
    level, is_trailing = kern.effective_stop(stop, float(peak), trailing, tick, inv)
    return Levels(float(level), float(target), bool(is_trailing))


def crossed(lv: Levels, open_: float, high: float, low: float) -> tuple[str, float] | None:
    """(reason, backtest fill price) when a bar reaches a level (stop first), else None."""
    price, kind = fills.long_exit_fill(float(open_), float(high), float(low), lv.stop,
                                       lv.target)
    if kind == fills.NO_FILL:
        return None
    return ("take_profit" if kind == fills.TARGET_FILL else lv.stop_reason), float(price)


def next_peak(peak: float, high: float) -> float:
    """The trailing peak after a bar that did not exit (its high counts from the next bar)."""
    return float(high) if high > peak else float(peak)


def sell_quantity(held: Decimal, filters: SymbolFilters) -> Decimal:
    """What an exit sells of `held`: floored to the lot step (the rest stays as dust)."""
    return filters.floor_qty(held)


def _price(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def _stop_leg(stop: Decimal, filters: SymbolFilters, slack: float) -> dict:
    """The stop leg's fields: STOP_LOSS when the symbol allows it, else a STOP_LOSS_LIMIT
    limited `slack` below the stop."""
    if "STOP_LOSS" in filters.order_types:
        return {"stop_type": "STOP_LOSS"}
    limit = filters.floor_price(stop * (1 - _price(slack)))
    return {"stop_type": "STOP_LOSS_LIMIT", "stop_limit_price": limit}


# -- requests --------------------------------------------------------------------------------
def protective_order(job: str, symbol: str, from_bar_ms: int, held: Decimal, lv: Levels,
                     filters: SymbolFilters, slack: float | None = None,
                     intent: str = PROTECT) -> OrderRequest | None:
    """The order protecting `held` from the bar opening at `from_bar_ms` on: an OCO (both
    levels), a stop, a LIMIT sell at the target, or None (no level or nothing to sell)."""
    qty = sell_quantity(held, filters)
    has_stop, has_target = not math.isnan(lv.stop), not math.isnan(lv.target)
    if qty <= 0 or not (has_stop or has_target):
        return None
    cid = client_order_id(job, symbol, from_bar_ms, intent)
    slack = STOP_LIMIT_SLACK if slack is None else slack
    if has_stop and has_target:
        leg = _stop_leg(_price(lv.stop), filters, slack)
        return OrderRequest(symbol, "SELL", "OCO", cid, quantity=qty, price=_price(lv.target),
                            stop_price=_price(lv.stop), **leg)
    if has_target:
        return OrderRequest(symbol, "SELL", "LIMIT", cid, quantity=qty, price=_price(lv.target))
    leg = _stop_leg(_price(lv.stop), filters, slack)
    if leg["stop_type"] == "STOP_LOSS":
        return OrderRequest(symbol, "SELL", "STOP_LOSS", cid, quantity=qty,
                            stop_price=_price(lv.stop))
    return OrderRequest(symbol, "SELL", "STOP_LOSS_LIMIT", cid, quantity=qty,
                        price=leg["stop_limit_price"], stop_price=_price(lv.stop))


def market_exit(job: str, symbol: str, bar_ms: int, held: Decimal, reason: str,
                filters: SymbolFilters) -> OrderRequest | None:
    """The MARKET SELL of `held` (lot-floored) decided on the bar opening at `bar_ms` for
    `reason` (one of the backtest's EXIT_REASONS); None when less than one lot is held."""
    if reason not in EXIT_REASONS:
        raise ValueError(f"exit reason must be one of {', '.join(EXIT_REASONS)}, "
                         f"not {reason!r}")
    qty = sell_quantity(held, filters)
    if qty <= 0:
        return None
    return OrderRequest(symbol, "SELL", "MARKET", client_order_id(job, symbol, bar_ms, reason),
                        quantity=qty)


# -- plans -----------------------------------------------------------------------------------
def _protect_actions(job: str, h: Holding, from_bar_ms: int, lv: Levels,
                     filters: SymbolFilters, intent: str = PROTECT) -> tuple[Place, ...]:
    """Place the protective order; when the exchange rejects it because the market is already
    past a level, sell at market for that level. A rejected OCO finds out which by placing
    its stop alone: rejected too, the stop is past; accepted, the target was (cancel the
    stop, sell)."""
    request = protective_order(job, h.symbol, from_bar_ms, h.account, lv, filters,
                               intent=intent)
    if request is None:
        return ()

    def sell(reason: str) -> tuple[Place, ...]:
        order = market_exit(job, h.symbol, from_bar_ms, h.account, reason, filters)
        return (Place(order, reason, from_bar_ms),) if order is not None else ()

    if request.type != "OCO":
        reason = lv.stop_reason if not math.isnan(lv.stop) else "take_profit"
        return (Place(request, PROTECT, from_bar_ms, sell(reason)),)
    alone = protective_order(job, h.symbol, from_bar_ms, h.account,
                             Levels(lv.stop, math.nan, lv.trailing), filters,
                             intent=intent + "-stop")
    assert alone is not None
    probe = Place(alone, PROTECT, from_bar_ms, fallback=sell(lv.stop_reason),
                  then=(Cancel(h.symbol, alone.client_id), *sell("take_profit")))
    return (Place(request, PROTECT, from_bar_ms, (probe,)),)


def after_entry(job: str, h: Holding, entry_bar_ms: int, risk: Risk, filters: SymbolFilters,
                mode: str = "exchange") -> tuple[Action, ...]:
    """Right after an entry filled in the bar opening at `entry_bar_ms`: its protective order
    (exchange mode; nothing in bot mode or without levels)."""
    _check_mode(mode)
    if mode == "bot":
        return ()
    return _protect_actions(job, h, entry_bar_ms, levels(h.entry_price, h.peak, risk, filters),
                            filters)


def trail(job: str, h: Holding, resting: Resting | None, from_bar_ms: int, risk: Risk,
          filters: SymbolFilters) -> tuple[Action, ...]:
    """After a close: when the stop in force from the bar opening at `from_bar_ms` (with the
    peak `h.peak`, which includes the closed bar's high) is above the resting order's stop,
    cancel that order and place the new one; nothing otherwise. The new one's id is the
    bar's protect id, or, when the resting order already has that id (placed at a restart
    for the same bar), the bar's RETRAIL id: an id is never asked to carry two orders."""
    lv = levels(h.entry_price, h.peak, risk, filters)
    if resting is None or math.isnan(lv.stop) or resting.stop is None or \
            _price(lv.stop) <= resting.stop:
        return ()
    taken = resting.client_id == client_order_id(job, h.symbol, from_bar_ms, PROTECT)
    return (Cancel(h.symbol, resting.client_id),
            *_protect_actions(job, h, from_bar_ms, lv, filters,
                              intent=RETRAIL if taken else PROTECT))


def exit_now(job: str, h: Holding, resting: Resting | None, bar_ms: int, reason: str,
             risk: Risk, filters: SymbolFilters) -> tuple[Action, ...]:
    """An exit decided on the bar opening at `bar_ms` (signal, max hold, end, or a level a
    bot-managed position crossed): cancel the protective order, then sell at market what is
    held; a sale refused (minimum notional, market closed) puts the protection back."""
    request = market_exit(job, h.symbol, bar_ms, h.account, reason, filters)
    if request is None:
        return ()
    if resting is None:
        return (Place(request, reason, bar_ms),)
    again = _protect_actions(job, h, bar_ms, levels(h.entry_price, h.peak, risk, filters),
                             filters, intent=REPROTECT)
    return (Cancel(h.symbol, resting.client_id),
            Place(request, reason, bar_ms, again, fallback_when="refused"))


def bot_check(job: str, h: Holding, bar_ms: int, open_: float, high: float, low: float,
              risk: Risk, filters: SymbolFilters) -> tuple[Action, ...]:
    """Bot mode, after the bar opening at `bar_ms` closed: a market sell when the bar reached
    a level (levels from `h.peak`, the peak before this bar), else nothing."""
    hit = crossed(levels(h.entry_price, h.peak, risk, filters), open_, high, low)
    if hit is None:
        return ()
    return exit_now(job, h, None, bar_ms, hit[0], risk, filters)


def stop_passed(job: str, h: Holding, resting: Resting | None, bar_ms: int, open_: float,
                high: float, low: float, risk: Risk,
                filters: SymbolFilters) -> tuple[Action, ...]:
    """Exchange mode, after the bar opening at `bar_ms` closed with the position still held:
    when the bar reached the stop in force (levels from `h.peak`, the peak before this bar),
    the protective order did not sell (a stop limit left behind by a deep gap, a protective
    order the exchange refused): cancel it and sell at market. A target reached but not
    filled is left resting."""
    lv = levels(h.entry_price, h.peak, risk, filters)
    hit = crossed(Levels(lv.stop, math.nan, lv.trailing), open_, high, low)
    if hit is None:
        return ()
    return exit_now(job, h, resting, bar_ms, hit[0], risk, filters)


def first_crossing(h: Holding, open_: np.ndarray, high: np.ndarray, low: np.ndarray,
                   risk: Risk, filters: SymbolFilters) -> tuple[int, str, float] | None:
    """(bar index, reason, backtest price) of the first bar of the given bars (oldest first,
    all after the peak `h.peak` was taken) that reaches a level, walking the trailing peak as
    the backtest does; None when none does (a restart's check of the bars it missed)."""
    peak = h.peak
    for k in range(len(open_)):
        if math.isnan(open_[k]):
            continue
        hit = crossed(levels(h.entry_price, peak, risk, filters), open_[k], high[k], low[k])
        if hit is not None:
            return k, hit[0], hit[1]
        peak = next_peak(peak, high[k])
    return None


# -- the exchange's view -----------------------------------------------------------------------
def resting_exits(journal: Journal, broker: Broker,
                  symbols: Iterable[str]) -> dict[str, list[Resting]]:
    """Open protective orders of this job per symbol (journaled with purpose PROTECT), oldest
    first: one Resting per order or OCO list."""
    protect = {i.client_id for i in journal.intents() if i.purpose == PROTECT}
    out: dict[str, list[Resting]] = {}
    for symbol in symbols:
        seen: dict[str, Resting] = {}
        for order in broker.open_orders(symbol):
            cid = order.client_id if order.client_id in protect else list_id_of(order.client_id)
            if cid not in protect:
                continue
            found = seen.get(cid)
            stop = order.stop_price if order.type.startswith("STOP_LOSS") else None
            if found is None or (found.stop is None and stop is not None):
                seen[cid] = Resting(symbol, cid, stop)
        if seen:
            out[symbol] = list(seen.values())
    return out


def journal_holdings(journal: Journal, filters_of: Callable[[str], SymbolFilters],
                     peak_of: Callable[[str, float, int], float] | None = None) -> list[Holding]:
    """Open positions by the journal's fills: a symbol whose last fill is a buy and that holds
    at least one lot; entry price the average of the last buy's fills; `peak_of(symbol,
    entry price, entry fill time)` gives the trailing peak (default: the entry price)."""
    out = []
    for symbol, position in sorted(journal.positions().items()):
        fills_ = journal.fills(symbol)
        if not fills_ or fills_[-1].side != "BUY" or \
                sell_quantity(position.quantity, filters_of(symbol)) <= 0:
            continue
        last = [f for f in fills_ if f.order_id == fills_[-1].order_id and f.side == "BUY"]
        qty = sum((f.qty for f in last), ZERO)
        price = float(sum((f.quote_qty for f in last), ZERO) / qty)
        peak = price if peak_of is None else float(peak_of(symbol, price, last[0].time_ms))
        out.append(holding(symbol, price, position.quantity, peak))
    return out


def restore(job: str, holdings: Sequence[Holding], resting: dict[str, list[Resting]],
            from_bar_ms: int, risk: Risk, filters_of: Callable[[str], SymbolFilters],
            mode: str = "exchange") -> tuple[Action, ...]:
    """The start-up pass: every open position gets its protective order back when none rests
    (exchange mode: placed for the bar opening at `from_bar_ms`); a protective order whose
    position is gone, a second one for one position, and every one in bot mode are
    cancelled. (Bot mode then checks the missed bars: `first_crossing`.)"""
    _check_mode(mode)
    held = {h.symbol: h for h in holdings}
    actions: list[Action] = []
    for symbol, orders in sorted(resting.items()):
        keep = orders[-1:] if symbol in held and mode == "exchange" else []
        actions += [Cancel(symbol, r.client_id) for r in orders if r not in keep]
    if mode == "exchange":
        for h in holdings:
            if not resting.get(h.symbol):
                filters = filters_of(h.symbol)
                actions += _protect_actions(job, h, from_bar_ms,
                                            levels(h.entry_price, h.peak, risk, filters),
                                            filters)
    return tuple(actions)


# -- carrying out ------------------------------------------------------------------------------
def carry_out(actions: Iterable[Action], broker: Broker, journal: Journal) -> list[Order]:
    """Journal and send `actions` in order; the exchange's answers. Each Place goes out by
    `orders.send_intent` (an order journaled before is asked for by its client id first). A
    cancel that finds its order filled drops the symbol's later actions; a rejected Place
    runs its fallback; any other exchange error (its outcome unknown, the exchange
    unreachable) stops the plan and is raised."""
    answers: list[Order] = []
    gone: set[str] = set()
    pending = list(actions)
    while pending:
        action = pending.pop(0)
        if action.symbol in gone:
            continue
        if isinstance(action, Cancel):
            try:
                order = broker.cancel(action.symbol, action.client_id)
            except OrderNotFoundError as exc:
                journal.record_error(action.client_id, str(exc), getattr(exc, "code", 0))
                continue
            journal.record_answer(order)
            answers.append(order)
            if order.executed_qty > 0:
                gone.add(action.symbol)
            continue
        request = action.request
        try:
            order = send_intent(request, action.purpose, action.bar_ms, broker, journal)
        except (OrderRejectedError, FilterError) as exc:
            fallback = action.fallback if _answers(action, exc) else ()
            log.warning("exits: %s %s %s refused (%s)%s", request.symbol, action.purpose,
                        request.client_id, exc, ": carrying out its fallback" if fallback else "")
            pending[:0] = list(fallback)
            continue
        answers.append(order)
        pending[:0] = list(action.then)
    return answers


def _answers(action: Place, refusal: Exception) -> bool:
    """Whether `action.fallback` answers this refusal (see `Place.fallback_when`)."""
    if isinstance(refusal, InsufficientBalanceError):
        return False
    if action.fallback_when == "refused":
        return True
    return isinstance(refusal, OrderRejectedError) and \
        any(text in str(refusal) for text in PAST_MESSAGES)


def _check_mode(mode: str) -> None:
    if mode not in EXIT_MODES:
        raise ValueError(f"exits mode must be one of {', '.join(EXIT_MODES)}, not {mode!r}")
