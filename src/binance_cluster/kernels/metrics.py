"""Performance accumulators over an equity curve and a trade list.

Metrics are computed in two steps: kernels fold the equity curve and the trades into a small
accumulator vector (`ACC_*` slots), and `binance_cluster.engine.metrics.finish` turns one vector into
named metrics. The fused sweep kernels update the same accumulators with the same per-bar and
per-trade functions (`add_return`, `add_trade`), so a combination's metrics are
bit-identical whether it ran alone or inside a sweep.

Per bar t (starting from the initial cash as equity before bar 0): return
r_t = eq_t / eq_{t-1} - 1; the sums of r, r^2 and min(r, 0)^2 feed Sharpe and Sortino; the
maximum drawdown is the largest (peak_t - eq_t) / peak_t. Sums run in bar order. A bar whose equity
equals the previous bar's adds exactly nothing to the sums, which lets the fused kernels skip
flat bars. The fused kernels find the same maximum drawdown without a division on most bars
(`add_drawdown`).
"""

from __future__ import annotations

import numpy as np

from binance_cluster.kernels._jit import jit

ACC_FINAL = 0        # last equity value
ACC_SUM_R = 1        # sum of per-bar returns
ACC_SUM_R2 = 2       # sum of squared returns
ACC_SUM_D2 = 3       # sum of squared negative returns
ACC_MAX_DD = 4       # largest (peak - equity) / peak
ACC_BARS = 5         # number of bars (returns)
ACC_HELD = 6         # bars during which a real position was held
ACC_TRADES = 7       # closed real trades
ACC_WINS = 8         # winning trades (`is_win`)
ACC_GROSS_PROFIT = 9
ACC_GROSS_LOSS = 10  # positive number
ACC_FEES = 11
ACC_SIZE = 12


# A trade wins when its pnl is above half a unit of the 8th decimal, Binance's amount precision,
# and loses when it is below minus that: the exact result of a trade on the price and lot grids
# is a whole number of 1e-8 in the exchange fee model, and float noise on the sums is far
# smaller (1e-12 on a 10,000 trade), so a break-even trade (exactly 0) is neither.
WIN_EPS = 5e-9


@jit
def is_win(pnl):
    """True when the trade's pnl is a profit (above the amount precision's half unit)."""
    return pnl > WIN_EPS


@jit
def is_loss(pnl):
    """True when the trade's pnl is a loss (below minus the amount precision's half unit)."""
    return pnl < -WIN_EPS


@jit
def add_return(eq, prev, s1, s2, d2):
    """Fold one bar's return eq / prev - 1 into the sums of r, r^2 and min(r, 0)^2."""
    r = eq / prev - 1.0
    s1 += r
    s2 += r * r
    m = min(r, 0.0)
    d2 += m * m
    return s1, s2, d2


DD_SLACK = 1e-12


@jit
def add_drawdown(eq, peak, max_dd, keep):
    """Fold one bar into (peak, max_dd, keep) without a division on most bars.

    keep = 1 - max_dd + DD_SLACK: a bar with eq >= peak * keep cannot raise the maximum
    drawdown (its exact ratio is below max_dd by ~1e-12, far more than the rounding of the
    test), so only the other bars divide. The result is the same float as the maximum over
    every bar of (peak - eq) / peak. Start with peak = initial cash, max_dd = 0,
    keep = 1 + DD_SLACK.
    """
    peak = max(peak, eq)
    if eq < peak * keep:
        dd = (peak - eq) / peak
        if dd > max_dd:
            max_dd = dd
            keep = 1.0 - max_dd + DD_SLACK
    return peak, max_dd, keep


@jit
def drawdown_bar(eq, peak, max_dd):
    """`add_drawdown` without its test: (peak, max_dd, keep) after one bar, one division."""
    peak = max(peak, eq)
    max_dd = max(max_dd, (peak - eq) / peak)
    return peak, max_dd, 1.0 - max_dd + DD_SLACK


@jit
def add_trade(pnl, fees, trades, wins, gross_profit, gross_loss, total_fees):
    """Fold one closed real trade into the trade accumulators."""
    trades += 1.0
    total_fees += fees
    # without branches (adding 0.0 changes nothing): a trade's sign is unpredictable
    wins += 1.0 if pnl > WIN_EPS else 0.0
    gross_profit += pnl if pnl > WIN_EPS else 0.0
    gross_loss -= pnl if pnl < -WIN_EPS else 0.0
    return trades, wins, gross_profit, gross_loss, total_fees


@jit
def accumulate(equity, held, pnl, fees, paper, initial_cash):
    """Accumulator vector of a run: equity[n], held[n] (real positions during each bar), trades."""
    acc = np.zeros(ACC_SIZE)
    s1 = 0.0
    s2 = 0.0
    d2 = 0.0
    peak = initial_cash
    max_dd = 0.0
    prev = initial_cash
    n_held = np.int64(0)
    for t in range(equity.shape[0]):
        eq = equity[t]
        s1, s2, d2 = add_return(eq, prev, s1, s2, d2)
        prev = eq
        peak = max(peak, eq)
        max_dd = max(max_dd, (peak - eq) / peak)
        if held[t] > 0:
            n_held += 1
    trades = 0.0
    wins = 0.0
    gp = 0.0
    gl = 0.0
    tf = 0.0
    for k in range(pnl.shape[0]):
        if not paper[k]:
            trades, wins, gp, gl, tf = add_trade(pnl[k], fees[k], trades, wins, gp, gl, tf)
    store(acc, prev, s1, s2, d2, max_dd, equity.shape[0], n_held, trades, wins, gp, gl, tf)
    return acc


@jit
def store(acc, final, s1, s2, d2, max_dd, bars, held, trades, wins, gross_profit, gross_loss,
          fees):
    """Write the accumulator vector `acc`."""
    acc[ACC_FINAL] = final
    acc[ACC_SUM_R] = s1
    acc[ACC_SUM_R2] = s2
    acc[ACC_SUM_D2] = d2
    acc[ACC_MAX_DD] = max_dd
    acc[ACC_BARS] = bars
    acc[ACC_HELD] = held
    acc[ACC_TRADES] = trades
    acc[ACC_WINS] = wins
    acc[ACC_GROSS_PROFIT] = gross_profit
    acc[ACC_GROSS_LOSS] = gross_loss
    acc[ACC_FEES] = fees
