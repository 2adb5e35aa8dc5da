"""The decision step and the backtest loops (long only, spot), over explicit state arrays.

`step` advances every symbol of a portfolio by one bar. A backtest calls it for each bar
(`simulate`); a live loop calls it once per closed bar with the state rebuilt from real fills
(`binance_cluster.engine.step`).
One bar t runs these phases, in order:

A. at the open of t, pending market exits (decided at the close of t-1) fill at
   `market_sell_price(open)`; in the exchange fee models a sell whose notional is under the
   minimum notional is refused as Binance refuses it (the position stays open, the exit is
   decided again at later closes);
B. at the open of t, pending entries fill at `market_buy_price(open)`: paper entries (shifts)
   always, real ones ranked by score (highest first, NaN last, then by symbol index) while
   fewer than `max_positions` real positions are open; each is sized from `stake` (fraction of
   the equity marked at the close of t-1, or a fixed quote amount), capped by the free cash so
   that cash never goes negative, rounded down to the lot step (`buy_quantity_for`), and
   rejected under the minimum notional. Entries that cannot fill are dropped, not queued;
   an entry whose symbol has no candle at t is dropped, an exit waits for its next candle;
   `held[t]` = number of real positions open after the open fills;
C. inside t, each position's stop (the higher of the stop loss and the trailing stop) and take
   profit are checked with `long_exit_fill` (stop first, gaps fill at the open); the trailing
   high then takes bar t's high, so a trailing stop never uses the high of the bar it is
   checked on;
D. at the close of t, decisions for bar t+1: a position exits on an exit signal, or when it
   will have been held `max_hold_bars` bars at the next open; a flat symbol with an entry
   signal (and no exit signal on the same bar) becomes a pending entry. With `shifts` on, an
   entry is a paper trade unless the UTC hour of its decision time (close of t) has at least
   `shifts_min_trades` closed trades with a win rate >= `shifts_min_win_rate`; the statistics
   count every trade (paper or real) closed up to the close of t, attributed to the hour of its
   entry decision, a win being `kernels.metrics.is_win`. Paper trades are simulated and
   recorded but never touch cash or equity. No decision is taken for a symbol at its last
   candle;
E. a symbol whose bar t is its last candle (`ends`: its data ends, or it stops trading) sells
   its position at that close minus slippage (reason "end", never refused), after the
   decisions of D, so the trade counts for the statistics from the next close on and its
   slot is free at the next open;
F. at the close of t, equity = cash + sum of real held quantities x close (last known close
   for a symbol without a candle at t). Dust (see below) is not valued.

`simulate` ends every symbol at its last candle, so a run ends flat; `finish` sells what is
still open at the last closes (a live loop that stops).

Fee models (`R_FEE_MODEL`): "quote" charges `notional x fee_rate` in quote on every fill (a
buy costs notional + fee, the position is the quantity bought, an exit sells all of it);
"exchange" accounts as Binance does: a buy costs its notional (8 decimals) and the commission
`quantity x fee_rate` (8 decimals) is taken from the base received, so the position is the
quantity held; a real exit sells the held quantity plus the dust earlier exits left, floored
to the lot step, and the rest stays as dust (`F_DUST`, reported per trade, not valued in
equity); a sell's commission is `notional x fee_rate` in quote (8
decimals); with BNB fees the commission is paid apart (at the discounted rate, valued in quote
and taken from cash) and the whole quantity is held. Fees of a trade are valued in quote (a
base commission at its fill price); pnl = proceeds - cost.

Stop and target levels are set at entry from the fill price and rounded to the tick away from
it (stop down, target up); the trailing level is the trailing high x (1 - trailing_stop)
rounded down. Trade times are the open times of the bars in which the fills happened.

The fused sweeps run, for one symbol, the decision logic and the metric accumulators of every
parameter combination in one lean pass over its signal codes (`codes_pass`: one int8 per bar,
entry or exit (`kernels.signals` codes), from indicators computed once per symbol; the codes
of up to GROUP combinations that share an indicator are filled in one pass over it, BLOCK
bars at a time), with the same float operations in the same order as `step` +
`kernels.metrics`, so a combination's results are bit-identical to a single run.
`sweep_cross` fills the codes of the crossovers.
"""

from __future__ import annotations

import math

import numpy as np

from binance_cluster.kernels._jit import jit
from binance_cluster.kernels.fills import (TARGET_FILL, buy_quantity_inv, ceil_units, fee,
                                           floor_units, grid_inverse, long_exit_fill,
                                           market_buy_price, market_sell_price,
                                           notional_amount, notional_ok, round_amount)
from binance_cluster.kernels.metrics import (ACC_SIZE, DD_SLACK, add_drawdown, add_return,
                                             add_trade, drawdown_bar, is_win, store)
from binance_cluster.kernels.indicators import mean_relation
from binance_cluster.kernels.signals import (BLOCK, CODE_ENTER, CODE_EXIT, band_codes,
                                             level_codes, margin_codes, weight_codes)

HOUR_MS = 3_600_000

# Exit reasons (index into binance_cluster.engine.simulate.EXIT_REASONS).
REASON_SIGNAL = 0
REASON_STOP_LOSS = 1
REASON_TAKE_PROFIT = 2
REASON_TRAILING_STOP = 3
REASON_MAX_HOLD = 4
REASON_END = 5

# Risk parameters, packed in one float64 array (NaN = option off).
R_INITIAL_CASH = 0
R_STAKE = 1
R_STAKE_QUOTE = 2        # 0: fraction of equity, 1: fixed quote amount
R_FEE = 3                # the commission rate charged (BNB: after its discount)
R_SLIPPAGE = 4
R_STOP_LOSS = 5
R_TAKE_PROFIT = 6
R_TRAILING = 7
R_MAX_HOLD = 8           # 0: off
R_SHIFTS = 9
R_SHIFTS_RATE = 10
R_SHIFTS_MIN = 11
R_MAX_POSITIONS = 12
R_BAR_MS = 13
R_FEE_MODEL = 14         # FEE_QUOTE, FEE_EXCHANGE or FEE_BNB
R_SIZE = 15

# Fee models (R_FEE_MODEL).
FEE_QUOTE = 0            # every fee in quote on top of the notional; exits sell what was bought
FEE_EXCHANGE = 1         # Binance: buys pay in the base received, sells in quote, 8 decimals
FEE_BNB = 2              # Binance paying fees in BNB: quote value, none taken from the assets

# Per-symbol float state.
F_QTY = 0                # quantity bought
F_ENTRY_PRICE = 1
F_ENTRY_FEE = 2          # entry fee, valued in quote
F_STOP = 3
F_TARGET = 4
F_TRAIL_HIGH = 5
F_PENDING_SCORE = 6
F_LAST_CLOSE = 7
F_HELD = 8               # quantity held (bought minus a commission taken in the base asset)
F_COST = 9               # quote paid for the entry, fee included
F_DUST = 10              # quantity left unsold by the last real exit (below one lot step)
F_SIZE = 11

# Per-symbol int state.
I_POS = 0                # 0 flat, 1 real long, 2 paper long
I_ENTRY_BAR = 1
I_ENTRY_TIME = 2
I_HOUR = 3               # UTC hour of the entry decision (shifts statistics)
I_PENDING = 4            # 0 none, 1 entry, 2 exit on signal, 3 exit on max hold
I_PENDING_PAPER = 5
I_PENDING_HOUR = 6
I_SIZE = 7

POS_FLAT = 0
POS_REAL = 1
POS_PAPER = 2
PEND_NONE = 0
PEND_ENTRY = 1
PEND_EXIT_SIGNAL = 2
PEND_EXIT_MAX_HOLD = 3

# Portfolio state.
P_CASH = 0
P_EQUITY = 1             # equity marked at the last close (sizing of fraction stakes)
P_OPEN = 2               # open real positions
P_REJECTED = 3           # entries rejected under the minimum notional
P_SELL_REFUSED = 4       # market sells refused under the minimum notional (exchange models)
P_SIZE = 5

# Trade record columns (float64 buffer; times and bars are exact integers).
T_SYMBOL = 0
T_ENTRY_TIME = 1
T_EXIT_TIME = 2
T_ENTRY_BAR = 3
T_EXIT_BAR = 4
T_ENTRY_PRICE = 5
T_EXIT_PRICE = 6
T_QTY = 7                # quantity bought
T_FEES = 8               # entry and exit fees, valued in quote
T_PNL = 9
T_REASON = 10
T_PAPER = 11
T_SOLD = 12              # quantity sold
T_DUST = 13              # quantity left unsold after the exit (below one lot step), kept
T_HOUR = 14              # UTC hour of the entry decision (shifts statistics)
T_SIZE = 15


# ----------------------------------------------------------------------------------------
# state


@jit
def new_state(n_symbols, initial_cash):
    """(float_state, int_state, portfolio_state, hour_stats, trades buffer) of a fresh flat portfolio."""
    float_state = np.full((n_symbols, F_SIZE), np.nan)
    float_state[:, F_DUST] = 0.0
    int_state = np.zeros((n_symbols, I_SIZE), dtype=np.int64)
    portfolio_state = np.zeros(P_SIZE)
    portfolio_state[P_CASH] = initial_cash
    portfolio_state[P_EQUITY] = initial_cash
    hour_stats = np.zeros((24, 2), dtype=np.int64)     # closed trades, winning trades
    trades = np.empty((64, T_SIZE))
    return float_state, int_state, portfolio_state, hour_stats, trades


@jit
def hour_qualified(hour_stats, hour, min_rate, min_trades):
    """True when the hour's closed trades are enough and their win rate reaches min_rate."""
    closed = hour_stats[hour, 0]
    if closed < min_trades or closed == 0:
        return False
    return hour_stats[hour, 1] / closed >= min_rate


@jit
def decision_hour(time_ms, bar_ms):
    """UTC hour of day of a decision taken at the close of the bar opening at time_ms."""
    return ((time_ms + bar_ms) // HOUR_MS) % 24


# ----------------------------------------------------------------------------------------
# fill accounting of the fee models


@jit
def buy_quantity_for(spend, price, risk_params, lot, lot_inv):
    """Lot-floored quantity a market buy may take with `spend` quote (fee included if in quote)."""
    rate = 0.0 if risk_params[R_FEE_MODEL] == FEE_EXCHANGE else risk_params[R_FEE]
    return buy_quantity_inv(spend, price, rate, lot, lot_inv)


@jit
def buy_fill(qty, price, risk_params, lot_inv, tick_inv):
    """(cost in quote, quantity held, fee valued in quote) of buying `qty` at `price`.

    quote: cost = notional + fee, all of qty held. exchange: cost = the notional (8 decimals),
    the commission qty x rate (8 decimals) is taken from the base received. BNB: cost =
    notional + fee (both 8 decimals), all of qty held.
    """
    model = risk_params[R_FEE_MODEL]
    rate = risk_params[R_FEE]
    notional = qty * price
    if model == FEE_QUOTE:
        entry_fee = fee(notional, rate)
        return notional + entry_fee, qty, entry_fee
    notional = notional_amount(qty, price, lot_inv, tick_inv)
    if model == FEE_EXCHANGE:
        commission = round_amount(fee(qty, rate))
        return notional, round_amount(qty - commission), commission * price
    entry_fee = round_amount(fee(notional, rate))
    return notional + entry_fee, qty, entry_fee


@jit
def sell_fill(held, price, risk_params, lot, lot_inv, tick_inv):
    """(quantity sold, proceeds in quote, fee in quote) of selling a held quantity at `price`.

    quote: all of it, proceeds = notional - fee. exchange and BNB: the held quantity floored
    to the lot step (the rest is dust), notional and fee to 8 decimals; BNB pays the fee
    apart, so it still leaves the cash.
    """
    model = risk_params[R_FEE_MODEL]
    rate = risk_params[R_FEE]
    if model == FEE_QUOTE:
        notional = held * price
        exit_fee = fee(notional, rate)
        return held, notional - exit_fee, exit_fee
    sold = floor_units(held, lot, lot_inv)
    notional = notional_amount(sold, price, lot_inv, tick_inv)
    exit_fee = round_amount(fee(notional, rate))
    return sold, notional - exit_fee, exit_fee


@jit
def sell_refused(sold, price, risk_params, min_notional):
    """True when the exchange refuses a market sell of `sold` at `price` (exchange models)."""
    return risk_params[R_FEE_MODEL] != FEE_QUOTE and not notional_ok(sold, price, min_notional)


@jit
def _record(trades, n, row):
    """Append one trade row, growing the buffer when full; returns (trades, n)."""
    # Element loops, not slice assignments: those compile numba's shape-mismatch error
    # message (string formatting), seconds of compile time for nothing.
    if n == trades.shape[0]:
        bigger = np.empty((2 * trades.shape[0], T_SIZE))
        for i in range(n):
            for k in range(T_SIZE):
                bigger[i, k] = trades[i, k]
        trades = bigger
    for k in range(T_SIZE):
        trades[n, k] = row[k]
    return trades, n + 1


@jit
def dust_left(total, sold):
    """What a sell of `sold` out of `total` held leaves (8 decimals)."""
    return round_amount(total - sold) if sold != total else 0.0


@jit
def _close(s, price, total, sold, proceeds, exit_fee, reason, t, time_t, float_state, int_state,
           portfolio_state, hour_stats, trades, n):
    """Close symbol s's position (sell_fill results given); cash, statistics, trade record."""
    pnl = proceeds - float_state[s, F_COST]
    dust = dust_left(total, sold)
    paper = int_state[s, I_POS] == POS_PAPER
    if not paper:
        portfolio_state[P_CASH] = portfolio_state[P_CASH] + proceeds
        portfolio_state[P_OPEN] -= 1
        float_state[s, F_DUST] = dust
    hour = int_state[s, I_HOUR]
    hour_stats[hour, 0] += 1
    if is_win(pnl):
        hour_stats[hour, 1] += 1
    row = np.empty(T_SIZE)
    row[T_SYMBOL] = s
    row[T_ENTRY_TIME] = int_state[s, I_ENTRY_TIME]
    row[T_EXIT_TIME] = time_t
    row[T_ENTRY_BAR] = int_state[s, I_ENTRY_BAR]
    row[T_EXIT_BAR] = t
    row[T_ENTRY_PRICE] = float_state[s, F_ENTRY_PRICE]
    row[T_EXIT_PRICE] = price
    row[T_QTY] = float_state[s, F_QTY]
    row[T_FEES] = float_state[s, F_ENTRY_FEE] + exit_fee
    row[T_PNL] = pnl
    row[T_REASON] = reason
    row[T_PAPER] = 1.0 if paper else 0.0
    row[T_SOLD] = sold
    row[T_DUST] = dust
    row[T_HOUR] = hour
    int_state[s, I_POS] = POS_FLAT
    int_state[s, I_PENDING] = PEND_NONE
    return _record(trades, n, row)


@jit
def _sell(s, price, reason, market, t, time_t, risk_params, tick, lot, min_notional, float_state, int_state,
          portfolio_state, hour_stats, trades, n):
    """Sell symbol s's held quantity (real: with the dust of earlier exits) at `price`.

    Returns (trades, n, sold): sold is False when the exchange refused the market sell (the
    position stays open).
    """
    total = float_state[s, F_HELD]
    if int_state[s, I_POS] == POS_REAL:
        total = total + float_state[s, F_DUST]
    sold, proceeds, exit_fee = sell_fill(total, price, risk_params, lot, grid_inverse(lot),
                                         grid_inverse(tick))
    if market and sell_refused(sold, price, risk_params, min_notional):
        portfolio_state[P_SELL_REFUSED] += 1.0
        int_state[s, I_PENDING] = PEND_NONE
        return trades, n, False
    trades, n = _close(s, price, total, sold, proceeds, exit_fee, reason, t, time_t, float_state,
                       int_state, portfolio_state, hour_stats, trades, n)
    return trades, n, True


@jit
def protective_levels(price, risk_params, tick, tick_inv):
    """(stop, target) levels of a long entered at `price`; NaN where the option is off."""
    stop = math.nan
    target = math.nan
    if risk_params[R_STOP_LOSS] == risk_params[R_STOP_LOSS]:
        stop = floor_units(price * (1.0 - risk_params[R_STOP_LOSS]), tick, tick_inv)
    if risk_params[R_TAKE_PROFIT] == risk_params[R_TAKE_PROFIT]:
        target = ceil_units(price * (1.0 + risk_params[R_TAKE_PROFIT]), tick, tick_inv)
    return stop, target


@jit
def stake_amount(risk_params, equity):
    """Quote amount an entry may spend before the cash cap."""
    if risk_params[R_STAKE_QUOTE] != 0.0:
        return risk_params[R_STAKE]
    return risk_params[R_STAKE] * equity


@jit
def _open(s, price, qty, paper, t, time_t, risk_params, tick, lot, float_state, int_state, portfolio_state):
    """Open symbol s's position: `qty` at `price` (real: pays the cost from cash)."""
    cost, held, entry_fee = buy_fill(qty, price, risk_params, grid_inverse(lot), grid_inverse(tick))
    if not paper:
        portfolio_state[P_CASH] = portfolio_state[P_CASH] - cost
        portfolio_state[P_OPEN] += 1
    stop, target = protective_levels(price, risk_params, tick, grid_inverse(tick))
    float_state[s, F_QTY] = qty
    float_state[s, F_HELD] = held
    float_state[s, F_COST] = cost
    float_state[s, F_ENTRY_PRICE] = price
    float_state[s, F_ENTRY_FEE] = entry_fee
    float_state[s, F_STOP] = stop
    float_state[s, F_TARGET] = target
    float_state[s, F_TRAIL_HIGH] = price
    int_state[s, I_POS] = POS_PAPER if paper else POS_REAL
    int_state[s, I_ENTRY_BAR] = t
    int_state[s, I_ENTRY_TIME] = time_t
    int_state[s, I_HOUR] = int_state[s, I_PENDING_HOUR]


@jit
def effective_stop(stop, trail_high, trailing, tick, tick_inv):
    """(level, is_trailing): the higher of the stop loss and the trailing stop; NaN if neither.

    When both levels are equal the stop loss is the one reported.
    """
    if trailing == trailing:
        level = floor_units(trail_high * (1.0 - trailing), tick, tick_inv)
        if stop != stop or level > stop:
            return level, True
    return stop, False


@jit
def _rank_before(a, b, score):
    """True when candidate a ranks before b: higher score first, NaN last, then lower index."""
    sa = score[a]
    sb = score[b]
    if sa != sa:
        if sb != sb:
            return a < b
        return False
    if sb != sb:
        return True
    if sa != sb:
        return sa > sb
    return a < b


# ----------------------------------------------------------------------------------------
# the step


@jit
def step(t, time_t, open_, high, low, close, entry, exit_, score, ends, risk_params, tick, lot,
         min_notional, float_state, int_state, portfolio_state, hour_stats, trades, n_trades):
    """Advance every symbol by bar t (phases A-F in the module docstring).

    open_/high/low/close/entry/exit_/score hold bar t of each symbol (NaN prices: no candle);
    ends[s] is True when bar t is symbol s's last candle (its data ends, or it stops trading).
    Returns (trades, n_trades, held, equity).
    """
    n_sym = open_.shape[0]
    slip = risk_params[R_SLIPPAGE]
    # A. pending exits at the open
    for s in range(n_sym):
        o = open_[s]
        if o == o and int_state[s, I_PENDING] >= PEND_EXIT_SIGNAL:
            reason = REASON_SIGNAL if int_state[s, I_PENDING] == PEND_EXIT_SIGNAL else REASON_MAX_HOLD
            price = market_sell_price(o, slip, tick[s])
            trades, n_trades, _ = _sell(s, price, reason, np.bool_(True), t, time_t, risk_params, tick[s],
                                        lot[s], min_notional[s], float_state, int_state, portfolio_state, hour_stats,
                                        trades, n_trades)
    # B. pending entries at the open
    cand = np.empty(n_sym, dtype=np.int64)
    cscore = np.full(n_sym, np.nan)
    n_cand = 0
    for s in range(n_sym):
        if int_state[s, I_PENDING] != PEND_ENTRY:
            continue
        int_state[s, I_PENDING] = PEND_NONE
        o = open_[s]
        if o != o:
            continue
        if int_state[s, I_PENDING_PAPER] != 0:
            price = market_buy_price(o, slip, tick[s])
            amount = stake_amount(risk_params, portfolio_state[P_EQUITY])
            qty = buy_quantity_for(amount, price, risk_params, lot[s], grid_inverse(lot[s]))
            if notional_ok(qty, price, min_notional[s]):
                _open(s, price, qty, np.bool_(True), t, time_t, risk_params, tick[s], lot[s], float_state, int_state, portfolio_state)
            else:
                portfolio_state[P_REJECTED] += 1.0
            continue
        cscore[s] = float_state[s, F_PENDING_SCORE]
        # insertion sort of the real candidates
        k = n_cand
        while k > 0 and _rank_before(s, cand[k - 1], cscore):
            cand[k] = cand[k - 1]
            k -= 1
        cand[k] = s
        n_cand += 1
    max_pos = risk_params[R_MAX_POSITIONS]
    for k in range(n_cand):
        if portfolio_state[P_OPEN] >= max_pos:
            break
        s = cand[k]
        price = market_buy_price(open_[s], slip, tick[s])
        amount = stake_amount(risk_params, portfolio_state[P_EQUITY])
        cash = portfolio_state[P_CASH]
        spend = amount if amount < cash else cash
        qty = buy_quantity_for(spend, price, risk_params, lot[s], grid_inverse(lot[s]))
        if notional_ok(qty, price, min_notional[s]):
            _open(s, price, qty, np.bool_(False), t, time_t, risk_params, tick[s], lot[s], float_state, int_state,
                  portfolio_state)
        else:
            portfolio_state[P_REJECTED] += 1.0
    held = np.int64(portfolio_state[P_OPEN])
    # C. stops and targets inside the bar
    trailing = risk_params[R_TRAILING]
    for s in range(n_sym):
        o = open_[s]
        if int_state[s, I_POS] == POS_FLAT or o != o:
            continue
        level, is_trailing = effective_stop(float_state[s, F_STOP], float_state[s, F_TRAIL_HIGH],
                                            trailing, tick[s], grid_inverse(tick[s]))
        price, kind = long_exit_fill(o, high[s], low[s], level, float_state[s, F_TARGET])
        if kind != 0:
            if kind == TARGET_FILL:
                reason = REASON_TAKE_PROFIT
            elif is_trailing:
                reason = REASON_TRAILING_STOP
            else:
                reason = REASON_STOP_LOSS
            trades, n_trades, _ = _sell(s, price, reason, np.bool_(False), t, time_t, risk_params, tick[s],
                                        lot[s], min_notional[s], float_state, int_state, portfolio_state, hour_stats,
                                        trades, n_trades)
        elif high[s] > float_state[s, F_TRAIL_HIGH]:
            float_state[s, F_TRAIL_HIGH] = high[s]
    # D. decisions for the next open
    max_hold = risk_params[R_MAX_HOLD]
    shifts = risk_params[R_SHIFTS] != 0.0
    bar_ms = np.int64(risk_params[R_BAR_MS])
    for s in range(n_sym):
        if close[s] != close[s] or ends[s] or int_state[s, I_PENDING] != PEND_NONE:
            continue
        if int_state[s, I_POS] != POS_FLAT:
            if exit_[s]:
                int_state[s, I_PENDING] = PEND_EXIT_SIGNAL
            elif max_hold > 0 and t + 1 - int_state[s, I_ENTRY_BAR] >= max_hold:
                int_state[s, I_PENDING] = PEND_EXIT_MAX_HOLD
        elif entry[s] and not exit_[s]:
            int_state[s, I_PENDING] = PEND_ENTRY
            float_state[s, F_PENDING_SCORE] = score[s]
            paper = False
            hour = 0
            if shifts:
                hour = decision_hour(time_t, bar_ms)
                paper = not hour_qualified(hour_stats, hour, risk_params[R_SHIFTS_RATE], risk_params[R_SHIFTS_MIN])
            int_state[s, I_PENDING_HOUR] = hour
            int_state[s, I_PENDING_PAPER] = 1 if paper else 0
    # E. a symbol at its last candle sells at its close (reason end), freeing its slot
    for s in range(n_sym):
        if ends[s] and close[s] == close[s]:
            int_state[s, I_PENDING] = PEND_NONE
            if int_state[s, I_POS] != POS_FLAT:
                price = market_sell_price(close[s], slip, tick[s])
                trades, n_trades, _ = _sell(s, price, np.int64(REASON_END), np.bool_(False), t, time_t, risk_params, tick[s],
                                            lot[s], min_notional[s], float_state, int_state, portfolio_state,
                                            hour_stats, trades, n_trades)
    # F. equity at the close
    equity = portfolio_state[P_CASH]
    for s in range(n_sym):
        c = close[s]
        if c == c:
            float_state[s, F_LAST_CLOSE] = c
        if int_state[s, I_POS] == POS_REAL:
            equity = equity + float_state[s, F_HELD] * float_state[s, F_LAST_CLOSE]
    portfolio_state[P_EQUITY] = equity
    return trades, n_trades, held, equity


@jit
def finish(t, time_t, risk_params, tick, lot, float_state, int_state, portfolio_state, hour_stats, trades, n_trades):
    """Sell every open position at its last close (reason end); returns (trades, n, cash)."""
    for s in range(float_state.shape[0]):
        if int_state[s, I_POS] != POS_FLAT:
            price = market_sell_price(float_state[s, F_LAST_CLOSE], risk_params[R_SLIPPAGE], tick[s])
            trades, n_trades, _ = _sell(s, price, np.int64(REASON_END), np.bool_(False), t, time_t, risk_params, tick[s],
                                        lot[s], 0.0, float_state, int_state, portfolio_state, hour_stats,
                                        trades, n_trades)
    portfolio_state[P_EQUITY] = portfolio_state[P_CASH]
    return trades, n_trades, portfolio_state[P_CASH]


@jit
def last_bars(open_):
    """Index of each symbol's last candle in 2-D [bar, symbol] opens (-1: none)."""
    n, m = open_.shape
    out = np.full(m, -1, dtype=np.int64)
    for s in range(m):
        for t in range(n - 1, -1, -1):
            if open_[t, s] == open_[t, s]:
                out[s] = t
                break
    return out


@jit
def simulate(times, open_, high, low, close, entry, exit_, score, risk_params, tick, lot, min_notional):
    """Run `step` over every bar of 2-D [bar, symbol] arrays (each symbol ends at its last candle).

    Returns (trades[n_trades, T_SIZE], equity[n], held[n], rejected, sells refused, dust[m]).
    """
    n = times.shape[0]
    n_sym = open_.shape[1]
    float_state, int_state, portfolio_state, hour_stats, trades = new_state(n_sym, risk_params[R_INITIAL_CASH])
    n_trades = np.int64(0)
    equity = np.empty(n)
    held = np.zeros(n, dtype=np.int64)
    last = last_bars(open_)
    ends = np.zeros(n_sym, dtype=np.bool_)
    for t in range(n):
        for s in range(n_sym):
            ends[s] = last[s] == t
        trades, n_trades, h, eq = step(t, times[t], open_[t], high[t], low[t], close[t],
                                       entry[t], exit_[t], score[t], ends, risk_params, tick, lot,
                                       min_notional, float_state, int_state, portfolio_state, hour_stats,
                                       trades, n_trades)
        held[t] = h
        equity[t] = eq
    return (trades[:n_trades].copy(), equity, held, portfolio_state[P_REJECTED],
            portfolio_state[P_SELL_REFUSED], float_state[:, F_DUST].copy())


# ----------------------------------------------------------------------------------------
# fused sweeps: per-bar signal codes, one lean pass per combination


@jit
def code_buffer(n):
    """(code[n] int8, its int64 words) zeroed, the words zero beyond n: a sweep's scratch."""
    words = np.zeros(n // 8 + 1, dtype=np.int64)
    return words.view(np.int8)[:n], words


@jit
def sum_relations(prefix, an, bn, start, stop, safe_mul, out):
    """out[t] = sign(mean of the last an ticks - mean of the last bn ticks), start <= t < stop.

    `prefix[t]` is the int64 sum of ticks[:t]; window sums are exact differences of it.
    """
    # Loops over slices from 0 let LLVM vectorise them.
    hi = prefix[start + 1:stop + 1]
    lo_a = prefix[start + 1 - an:stop + 1 - an]
    lo_b = prefix[start + 1 - bn:stop + 1 - bn]
    o = out[start:stop]
    if safe_mul:
        for k in range(o.shape[0]):
            u = (hi[k] - lo_a[k]) * bn
            v = (hi[k] - lo_b[k]) * an
            o[k] = np.int8(u > v) - np.int8(u < v)
    else:
        for k in range(o.shape[0]):
            o[k] = mean_relation(hi[k] - lo_a[k], an, hi[k] - lo_b[k], bn, np.bool_(False))


@jit
def value_relations(a, b, start, stop, out):
    """out[t] = sign(a[t] - b[t]) for start <= t < stop."""
    x = a[start:stop]
    y = b[start:stop]
    o = out[start:stop]
    for t in range(x.shape[0]):
        u = x[t]
        v = y[t]
        o[t] = np.int8(u > v) - np.int8(u < v)


@jit
def cross_codes(rel, start, code):
    """code[t] for t >= start: the cross rule's codes of the relations rel (signs of fast - slow).

    The cross rule of `kernels.signals` (`cross_step` from bar `start` on) without its state:
    a cross up at t > start needs rel[t] > 0 >= rel[t-1] and a rel < 0 on a bar before t,
    i.e. t after the first negative relation; a cross down mirrors it. One vectorised pass
    without the "before" conditions, then the few bars up to the first negative (positive)
    relation lose their entries (exits).
    """
    n = rel.shape[0]
    if start >= n:
        return
    code[start] = 0
    r = rel[start + 1:]
    q = rel[start:n - 1]
    o = code[start + 1:]
    for k in range(o.shape[0]):
        a = r[k]
        b = q[k]
        o[k] = np.int8(-128) * np.int8((a > 0) & (b <= 0)) + np.int8((a < 0) & (b >= 0))
    t = start
    while t < n and rel[t] >= 0:
        if code[t] == CODE_ENTER:
            code[t] = 0
        t += 1
    t = start
    while t < n and rel[t] <= 0:
        if code[t] == CODE_EXIT:
            code[t] = 0
        t += 1


_BYTE_HIGH = np.uint64(0x8080808080808080)
_BYTE_INDEX = np.uint64(0x0001020304050607)
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


@jit
def _first_flagged(n, words, t, low_bit):
    """First index u >= t whose code byte has its high bit (low_bit: its low bit) set; n if none.

    Eight bytes per test; `words` is the int64 view of the codes, zero beyond n.
    """
    if t >= n:
        return n
    w = t >> 3
    n_words = words.shape[0]
    mask = _ALL_ONES << np.uint64((t & 7) * 8)           # drop the bytes before t
    while True:
        flags = np.uint64(words[w])
        if low_bit:
            flags = flags << np.uint64(7)
        flags &= _BYTE_HIGH & mask
        if flags != 0:
            break
        w += 1
        if w >= n_words:
            return n
        mask = _ALL_ONES
    lowest = flags & (~flags + np.uint64(1))
    byte = np.int64(((lowest >> np.uint64(7)) * _BYTE_INDEX) >> np.uint64(56))
    return min((w << 3) + byte, n)


@jit
def next_enter(code, words, t):
    """First bar u >= t whose code is CODE_ENTER (len(code) if none)."""
    return _first_flagged(code.shape[0], words, t, np.bool_(False))


@jit
def next_exit(code, words, t):
    """First bar u >= t whose code has an exit signal (len(code) if none)."""
    return _first_flagged(code.shape[0], words, t, np.bool_(True))


@jit
def fold_long(close, a, b, cash, qty, s1, s2, d2, prev, peak, max_dd, keep):
    """Fold bars a..b-1 of a long position (cash and quantity fixed) into the accumulators.

    Equity cash + qty * close is a non-decreasing function of the close (also in floats), so
    when the highest close of the range makes no new equity peak, the deepest drawdown of
    the range is at its lowest close: one division instead of one per bar.
    """
    # Two bars a step, with the lowest and highest close of even and odd bars apart: the
    # min/max chains would otherwise cost more a bar than the division (the sums stay in
    # bar order; min and max do not depend on it).
    lo = close[a]
    hi = lo
    lo1 = lo
    hi1 = lo
    t = a
    while t + 1 < b:
        c = close[t]
        equity = cash + qty * c
        s1, s2, d2 = add_return(equity, prev, s1, s2, d2)
        lo = c if c < lo else lo
        hi = c if c > hi else hi
        c = close[t + 1]
        prev = cash + qty * c
        s1, s2, d2 = add_return(prev, equity, s1, s2, d2)
        lo1 = c if c < lo1 else lo1
        hi1 = c if c > hi1 else hi1
        t += 2
    if t < b:
        c = close[t]
        equity = cash + qty * c
        s1, s2, d2 = add_return(equity, prev, s1, s2, d2)
        prev = equity
        lo = c if c < lo else lo
        hi = c if c > hi else hi
    lo = lo1 if lo1 < lo else lo
    hi = hi1 if hi1 > hi else hi
    if cash + qty * hi <= peak:
        max_dd = max(max_dd, (peak - (cash + qty * lo)) / peak)
        keep = 1.0 - max_dd + DD_SLACK
    else:
        for t in range(a, b):
            peak, max_dd, keep = add_drawdown(cash + qty * close[t], peak, max_dd, keep)
    return s1, s2, d2, prev, peak, max_dd, keep


@jit
def fresh_accumulators(cash0):
    """(s1, s2, d2, peak, max_dd, keep, n_held, trades, wins, gross profit, gross loss, fees)
    of a combination before its first bar."""
    return 0.0, 0.0, 0.0, cash0, 0.0, 1.0 + DD_SLACK, 0, 0.0, 0.0, 0.0, 0.0, 0.0


@jit
def codes_simple(open_, close, code, words, start, first, risk_params, tick, lot, lot_inv,
                 min_notional, acc):
    """One combination without stops, targets, max hold or shifts, into `acc`.

    The same decisions and float operations as `codes_pass` (and `step`), organised as a
    cycle: scan to the next entry code, fill the entry at the next open, scan to the next
    exit code, fold the bars held, fill the exit at the next open. Trading starts at bar
    `start`; bars before `first` are history. Returns False, with `acc` unwritten, when an
    exit's market sell is refused (`codes_pass`'s general loop handles that case).
    """
    n = close.shape[0]
    cash0 = risk_params[R_INITIAL_CASH]
    slip = risk_params[R_SLIPPAGE]
    quote_stake = risk_params[R_STAKE_QUOTE] != 0.0
    stake = risk_params[R_STAKE]
    tick_inv = grid_inverse(tick)
    cash = cash0
    prev = cash0
    s1, s2, d2, peak, max_dd, keep, n_held, trades, wins, gp, gl, tf = fresh_accumulators(cash0)
    dust = 0.0
    t = start
    while True:
        t = next_enter(code, words, t)
        if t >= n - 1:          # no entry, or one on the last bar: nothing fills after it
            break
        e = t + 1
        entry_price = market_buy_price(open_[e], slip, tick)
        amount = stake if quote_stake else stake * cash      # flat: equity is the cash
        amount = amount if amount < cash else cash
        q = buy_quantity_for(amount, entry_price, risk_params, lot, lot_inv)
        if not notional_ok(q, entry_price, min_notional):
            t = e               # rejected: the decision at bar e is scanned as usual
            continue
        cost, held, entry_fee = buy_fill(q, entry_price, risk_params, lot_inv, tick_inv)
        cash = cash - cost
        total = held + dust
        u = next_exit(code, words, e)
        if u >= n - 1:
            # held to the end: bars e..n-2, then sold at the last close
            if e < n - 1:
                s1, s2, d2, prev, peak, max_dd, keep = fold_long(
                    close, e, n - 1, cash, held, s1, s2, d2, prev, peak, max_dd, keep)
            price = market_sell_price(close[n - 1], slip, tick)
            sold, proceeds, exit_fee = sell_fill(total, price, risk_params, lot, lot_inv, tick_inv)
            cash = cash + proceeds
            trades, wins, gp, gl, tf = add_trade(proceeds - cost, entry_fee + exit_fee, trades,
                                                 wins, gp, gl, tf)
            s1, s2, d2 = add_return(cash, prev, s1, s2, d2)
            prev = cash
            peak, max_dd, keep = drawdown_bar(cash, peak, max_dd)
            n_held += n - e
            break
        s1, s2, d2, prev, peak, max_dd, keep = fold_long(
            close, e, u + 1, cash, held, s1, s2, d2, prev, peak, max_dd, keep)
        n_held += u + 1 - e
        # the exit fills at the next open; that bar is flat and its decision is scanned next
        x = u + 1
        price = market_sell_price(open_[x], slip, tick)
        sold, proceeds, exit_fee = sell_fill(total, price, risk_params, lot, lot_inv, tick_inv)
        if sell_refused(sold, price, risk_params, min_notional):
            return False
        dust = dust_left(total, sold)
        cash = cash + proceeds
        trades, wins, gp, gl, tf = add_trade(proceeds - cost, entry_fee + exit_fee, trades,
                                             wins, gp, gl, tf)
        s1, s2, d2 = add_return(cash, prev, s1, s2, d2)
        prev = cash
        peak, max_dd, keep = drawdown_bar(cash, peak, max_dd)
        t = x
    store(acc, prev, s1, s2, d2, max_dd, n - first, n_held, trades, wins, gp, gl, tf)
    return True


@jit
def shifts_entry(time_t, bar_ms, hour_stats, risk_params):
    """(hour, paper) of an entry decided at the close of the bar opening at time_t (shifts)."""
    hour = decision_hour(time_t, bar_ms)
    return hour, not hour_qualified(hour_stats, hour, risk_params[R_SHIFTS_RATE],
                                    risk_params[R_SHIFTS_MIN])


@jit
def codes_pass(times, open_, high, low, close, code, words, start, first, risk_params, tick,
               lot, min_notional, hour_stats, acc):
    """One combination trading its signal codes from bar `start` on, its accumulators into `acc`.

    The decision step for one symbol (same rules and float operations as `step`) and the
    metric accumulators, in one pass over the bars. While flat with nothing to fill, it jumps
    to the next entry code (eight bars per test): the bars in between add exactly nothing to
    the accumulators. While long without stops it jumps to the next exit code and folds the
    bars held in one tight loop (`fold_long`); without stops, max hold or shifts the whole
    combination runs as that cycle (`codes_simple`). Bars before `first` are history (not
    traded, not counted); `hour_stats` is a [24, 2] scratch for the shifts statistics.
    """
    n = close.shape[0]
    cash0 = risk_params[R_INITIAL_CASH]
    slip = risk_params[R_SLIPPAGE]
    trailing = risk_params[R_TRAILING]
    has_levels = (risk_params[R_STOP_LOSS] == risk_params[R_STOP_LOSS]
                  or risk_params[R_TAKE_PROFIT] == risk_params[R_TAKE_PROFIT]
                  or trailing == trailing)
    max_hold = risk_params[R_MAX_HOLD]
    shifts = risk_params[R_SHIFTS] != 0.0
    quote_stake = risk_params[R_STAKE_QUOTE] != 0.0
    stake = risk_params[R_STAKE]
    bar_ms = np.int64(risk_params[R_BAR_MS])
    tick_inv = grid_inverse(tick)
    lot_inv = grid_inverse(lot)
    if not has_levels and not shifts and not max_hold > 0:
        if codes_simple(open_, close, code, words, start, first, risk_params, tick, lot, lot_inv,
                        min_notional, acc):
            return
    hour_stats[:, :] = 0
    cash = cash0
    equity = cash0          # marked at the last close (sizing)
    prev = cash0            # last equity folded into the accumulators
    s1, s2, d2, peak, max_dd, keep, n_held, trades, wins, gp, gl, tf = fresh_accumulators(cash0)
    pos = POS_FLAT
    pending = PEND_NONE
    pending_paper = False
    pending_hour = 0
    hour = 0
    qty = 0.0
    cost = 0.0
    entry_price = 0.0
    entry_fee = 0.0
    stop = math.nan
    target = math.nan
    trail_high = 0.0
    entry_bar = 0
    stuck = False           # long after a refused market sell: no jump to the exit signal
    dust = 0.0
    t = start
    while t < n:
        fill = False
        # A/B. pending orders at the open
        if pending != PEND_NONE:
            o = open_[t]
            if pending == PEND_ENTRY:
                price = market_buy_price(o, slip, tick)
                amount = stake if quote_stake else stake * equity
                if not pending_paper:
                    amount = amount if amount < cash else cash
                q = buy_quantity_for(amount, price, risk_params, lot, lot_inv)
                if notional_ok(q, price, min_notional):
                    cost, qty, entry_fee = buy_fill(q, price, risk_params, lot_inv, tick_inv)
                    if not pending_paper:
                        cash = cash - cost
                        fill = True
                    entry_price = price
                    stop, target = protective_levels(price, risk_params, tick, tick_inv)
                    trail_high = price
                    pos = POS_PAPER if pending_paper else POS_REAL
                    entry_bar = t
                    hour = pending_hour
                    stuck = False
            else:
                price = market_sell_price(o, slip, tick)
                total = qty + dust if pos == POS_REAL else qty
                sold, proceeds, exit_fee = sell_fill(total, price, risk_params, lot, lot_inv,
                                                     tick_inv)
                if sell_refused(sold, price, risk_params, min_notional):
                    stuck = True
                else:
                    pnl = proceeds - cost
                    if pos == POS_REAL:
                        dust = dust_left(total, sold)
                        cash = cash + proceeds
                        fill = True
                        trades, wins, gp, gl, tf = add_trade(pnl, entry_fee + exit_fee,
                                                             trades, wins, gp, gl, tf)
                    hour_stats[hour, 0] += 1
                    if is_win(pnl):
                        hour_stats[hour, 1] += 1
                    pos = POS_FLAT
            pending = PEND_NONE
        if pos == POS_FLAT and not fill:
            # Flat, nothing filled: jump to the next entry signal.
            t = next_enter(code, words, t)
            if t >= n:
                break
            pending = PEND_ENTRY
            if shifts:
                pending_hour, pending_paper = shifts_entry(times[t], bar_ms, hour_stats,
                                                           risk_params)
            t += 1
            continue
        if pos == POS_REAL and not has_levels and not stuck:
            # Long without stops: a tight loop up to the exit signal, the max-hold bar or
            # the last bar (those two run through the general code below).
            bound = n - 1
            if max_hold > 0:
                bound = min(bound, entry_bar + np.int64(max_hold) - 1)
            ran = t < bound
            u = min(next_exit(code, words, t), bound)
            last = u if u < bound else bound - 1
            if ran:
                s1, s2, d2, prev, peak, max_dd, keep = fold_long(
                    close, t, last + 1, cash, qty, s1, s2, d2, prev, peak, max_dd, keep)
                n_held += last + 1 - t
                equity = prev
            t = u
            if t < bound:
                pending = PEND_EXIT_SIGNAL
                t += 1
                continue
            if ran:
                fill = False
        if pos == POS_REAL and has_levels and trailing != trailing and not stuck:
            # Long with fixed stop and target levels: the bars before the first one with a
            # stop or target hit, an exit signal, the max-hold bar or the last bar hold on
            # unchanged; fold them in one tight loop, that bar runs through the code below.
            bound = n - 1
            if max_hold > 0:
                bound = min(bound, entry_bar + np.int64(max_hold) - 1)
            u = t
            while u < bound and code[u] != CODE_EXIT:
                _, kind = long_exit_fill(open_[u], high[u], low[u], stop, target)
                if kind != 0:
                    break
                u += 1
            if u > t:
                s1, s2, d2, prev, peak, max_dd, keep = fold_long(
                    close, t, u, cash, qty, s1, s2, d2, prev, peak, max_dd, keep)
                n_held += u - t
                equity = prev
                t = u
        held = pos == POS_REAL
        # C. stops and targets inside the bar
        if has_levels and pos != POS_FLAT:
            level, is_trailing = effective_stop(stop, trail_high, trailing, tick, tick_inv)
            price, kind = long_exit_fill(open_[t], high[t], low[t], level, target)
            if kind != 0:
                total = qty + dust if pos == POS_REAL else qty
                sold, proceeds, exit_fee = sell_fill(total, price, risk_params, lot, lot_inv,
                                                     tick_inv)
                pnl = proceeds - cost
                if pos == POS_REAL:
                    dust = dust_left(total, sold)
                    cash = cash + proceeds
                    trades, wins, gp, gl, tf = add_trade(pnl, entry_fee + exit_fee, trades,
                                                         wins, gp, gl, tf)
                hour_stats[hour, 0] += 1
                if is_win(pnl):
                    hour_stats[hour, 1] += 1
                pos = POS_FLAT
            elif high[t] > trail_high:
                trail_high = high[t]
        # D-F. the last bar sells what is left at its close; equity at the close
        if t == n - 1 and pos != POS_FLAT:
            price = market_sell_price(close[t], slip, tick)
            total = qty + dust if pos == POS_REAL else qty
            sold, proceeds, exit_fee = sell_fill(total, price, risk_params, lot, lot_inv, tick_inv)
            if pos == POS_REAL:
                cash = cash + proceeds
                trades, wins, gp, gl, tf = add_trade(proceeds - cost, entry_fee + exit_fee,
                                                     trades, wins, gp, gl, tf)
                fill = True
            pos = POS_FLAT
        if pos == POS_REAL:
            equity = cash + qty * close[t]
        else:
            equity = cash
        if held or fill:
            s1, s2, d2 = add_return(equity, prev, s1, s2, d2)
            prev = equity
            peak, max_dd, keep = add_drawdown(equity, peak, max_dd, keep)
            if held:
                n_held += 1
        # D. signals and decisions for the next open
        c = code[t]
        if pos != POS_FLAT:
            if c == CODE_EXIT:
                pending = PEND_EXIT_SIGNAL
            elif max_hold > 0 and t + 1 - entry_bar >= max_hold:
                pending = PEND_EXIT_MAX_HOLD
        elif c == CODE_ENTER:
            pending = PEND_ENTRY
            if shifts:
                pending_hour, pending_paper = shifts_entry(times[t], bar_ms, hour_stats,
                                                           risk_params)
        t += 1
    store(acc, prev, s1, s2, d2, max_dd, n - first, n_held, trades, wins, gp, gl, tf)


GROUP = 16      # combinations whose codes one pass over their shared indicator fills


@jit
def code_rows(k, n):
    """(codes [k, >= n] int8, their int64 words [k, n // 8 + 1]) zeroed: a group's scratch."""
    words = np.zeros((k, n // 8 + 1), dtype=np.int64)
    return words.view(np.int8), words


@jit
def stable_order(key):
    """Indices that sort `key` ascending, ties in index order: an insertion sort (a unit's
    few combinations; numba's stable argsort alone took ~1.8 s to compile)."""
    order = np.arange(key.shape[0])
    for i in range(1, key.shape[0]):
        v = order[i]
        j = i
        while j > 0 and key[order[j - 1]] > key[v]:
            order[j] = order[j - 1]
            j -= 1
        order[j] = v
    return order


@jit
def group_end(key, order, g0):
    """End of the group that starts at order[g0]: the combinations after it in `order` with
    the same key, at most GROUP in all."""
    g1 = g0 + 1
    while g1 < order.shape[0] and g1 - g0 < GROUP and key[order[g1]] == key[order[g0]]:
        g1 += 1
    return g1


@jit
def pass_group(times, open_, high, low, close, codes, words, members, first, risk_params, tick,
               lot, min_notional, hour_stats, out):
    """`codes_pass` of each combination members[j] on its codes codes[j], into out[members[j]]."""
    n = close.shape[0]
    for j in range(members.shape[0]):
        codes_pass(times, open_, high, low, close, codes[j, :n], words[j], first, first,
                   risk_params, tick, lot, min_notional, hour_stats, out[members[j]])


@jit
def sweep_cross(times, open_, high, low, close, prefix, fvals, windows, fast_idx, slow_idx,
                use_float, safe_mul, risk_params, tick, lot, min_notional, first):
    """Accumulator vectors [n_combos, ACC_SIZE] of crossover combinations on one symbol.

    Combination c compares the average of window fast_idx[c] with that of slow_idx[c]:
    SMAs exactly from `prefix`, the int64 prefix sums of the ticks (use_float False), or
    float series `fvals[w]` (EMA, NaN during warm-up). Up to GROUP combinations of one slow
    window are a group: their signs of fast - slow are computed BLOCK bars at a time (the
    block's slow values, or prefix sums, stay in the first-level cache for all of them);
    then per combination one vectorised pass turns its signs into the cross rule's codes,
    and `codes_pass` trades them.

    Bars before `first` are warm-up history: they feed the averages and the cross state,
    and trading starts at bar `first` (the results equal `step` run on bars first.. with the
    signals computed on all bars).
    """
    n = close.shape[0]
    m = fast_idx.shape[0]
    out = np.zeros((m, ACC_SIZE))
    codes, words = code_rows(min(m, GROUP), n)
    rels = np.zeros((min(m, GROUP), n), dtype=np.int8)
    hour_stats = np.zeros((24, 2), dtype=np.int64)
    order = stable_order(slow_idx)
    g0 = np.int64(0)
    while g0 < m:
        g1 = group_end(slow_idx, order, g0)
        members = order[g0:g1]
        for a in range(0, n, BLOCK):
            b = min(a + BLOCK, n)
            for j in range(members.shape[0]):
                fw = fast_idx[members[j]]
                sw = slow_idx[members[j]]
                lo = max(a, max(windows[fw], windows[sw]) - 1)
                if lo >= b:
                    continue
                if use_float:
                    value_relations(fvals[fw], fvals[sw], lo, b, rels[j])
                else:
                    sum_relations(prefix, windows[fw], windows[sw], lo, b, safe_mul, rels[j])
        for j in range(members.shape[0]):
            c = members[j]
            start = max(max(windows[fast_idx[c]], windows[slow_idx[c]]) - 1, 0)
            code = codes[j, :n]
            cross_codes(rels[j], start, code)
            code[:start] = 0
            codes_pass(times, open_, high, low, close, code, words[j], max(start, first), first,
                       risk_params, tick, lot, min_notional, hour_stats, out[c])
        g0 = g1
    return out


@jit
def sweep_levels(times, open_, high, low, close, values, value_idx, lowers, uppers, risk_params,
                 tick, lot, min_notional, first):
    """Accumulators [n_combos, ACC_SIZE] of level combinations (`rsi_reversion`) on one symbol.

    Combination c enters while values[value_idx[c]] < lowers[c] and exits while it is above
    uppers[c] (`kernels.signals.level_codes`, filled for up to GROUP combinations of one
    value series at once); trading starts at bar `first`.
    """
    m = value_idx.shape[0]
    out = np.zeros((m, ACC_SIZE))
    codes, words = code_rows(min(m, GROUP), close.shape[0])
    hour_stats = np.zeros((24, 2), dtype=np.int64)
    order = stable_order(value_idx)
    g0 = np.int64(0)
    while g0 < m:
        g1 = group_end(value_idx, order, g0)
        members = order[g0:g1]
        level_codes(values[value_idx[members[0]]], lowers[members], uppers[members], first, codes)
        pass_group(times, open_, high, low, close, codes, words, members, first, risk_params,
                   tick, lot, min_notional, hour_stats, out)
        g0 = g1
    return out


@jit
def sweep_bands(times, open_, high, low, close, means, stds, exits, window_idx, ks, risk_params,
                tick, lot, min_notional, first):
    """Accumulators [n_combos, ACC_SIZE] of Bollinger combinations on one symbol.

    Combination c uses window w = window_idx[c] (SMA means[w], deviation stds[w], exit
    signals exits[w]) and band width ks[c] (`kernels.signals.band_codes`, filled for up to
    GROUP combinations of one window at once).
    """
    m = window_idx.shape[0]
    out = np.zeros((m, ACC_SIZE))
    codes, words = code_rows(min(m, GROUP), close.shape[0])
    hour_stats = np.zeros((24, 2), dtype=np.int64)
    order = stable_order(window_idx)
    g0 = np.int64(0)
    while g0 < m:
        g1 = group_end(window_idx, order, g0)
        members = order[g0:g1]
        w = window_idx[members[0]]
        band_codes(close, means[w], stds[w], ks[members], exits[w], first, codes)
        pass_group(times, open_, high, low, close, codes, words, members, first, risk_params,
                   tick, lot, min_notional, hour_stats, out)
        g0 = g1
    return out


@jit
def sweep_bursts(times, open_, high, low, close, filtered, filter_idx, min_weights, risk_params,
                 tick, lot, min_notional, first):
    """Accumulators [n_combos, ACC_SIZE] of momentum-burst combinations on one symbol.

    Combination c compares the filtered weights filtered[filter_idx[c]] (its window,
    min_growth, hours, room and band: `kernels.signals.filtered_weights`) with
    min_weights[c] (`kernels.signals.weight_codes`).
    """
    n = close.shape[0]
    out = np.zeros((filter_idx.shape[0], ACC_SIZE))
    code, words = code_buffer(n)
    hour_stats = np.zeros((24, 2), dtype=np.int64)
    for c in range(filter_idx.shape[0]):
        weight_codes(filtered[filter_idx[c]], min_weights[c], first, code)
        codes_pass(times, open_, high, low, close, code, words, first, first, risk_params, tick,
                   lot, min_notional, hour_stats, out[c])
    return out


@jit
def sweep_margins(times, open_, high, low, close, edge, margins, risk_params, tick, lot,
                  min_notional, first):
    """Accumulators [n_combos, ACC_SIZE] of probability-margin combinations (`ml_barrier`).

    Combination c enters where edge - margins[c] >= 0 (`kernels.signals.margin_codes`, up
    to GROUP margins at once).
    """
    m = margins.shape[0]
    out = np.zeros((m, ACC_SIZE))
    codes, words = code_rows(min(m, GROUP), close.shape[0])
    hour_stats = np.zeros((24, 2), dtype=np.int64)
    same = np.zeros(m, dtype=np.int64)
    order = np.arange(m)
    g0 = np.int64(0)
    while g0 < m:
        g1 = group_end(same, order, g0)
        members = order[g0:g1]
        margin_codes(edge, margins[members], first, codes)
        pass_group(times, open_, high, low, close, codes, words, members, first, risk_params,
                   tick, lot, min_notional, hour_stats, out)
        g0 = g1
    return out
