"""Barrier labels: does a buy at the next bar's open reach its take profit before its stop?

Label of bar t (a decision on closed bar t fills at the open of bar t+1): with entry =
open[t+1], target = entry * (1 + take_profit) and stop = entry * (1 - stop_loss), scan bars
t+1 .. t+horizon in order; the first bar whose low is at or below the stop gives 0, the first
whose high is at or above the target gives 1, and a bar that touches both gives 0 (stop
first, as the fill rules assume). Neither within the horizon gives 0. A bar whose horizon runs
past the data and which touched neither yet is unknown (-1), as is the last bar.

`outcome` is the return of that trade before fees: +take_profit, -stop_loss, or the close
of bar t+horizon over the entry minus 1 at the horizon (NaN when unknown).
"""

import numpy as np

from binance_cluster.kernels._jit import jit

UNKNOWN = -1


@jit
def barrier_labels(open_, high, low, close, take_profit, stop_loss, horizon):
    """(label int8[n]: 1, 0 or -1 unknown; outcome float64[n]) of every bar."""
    n = close.shape[0]
    label = np.full(n, np.int8(UNKNOWN))
    outcome = np.full(n, np.nan)
    for t in range(n - 1):
        entry = open_[t + 1]
        target = entry * (1.0 + take_profit)
        stop = entry * (1.0 - stop_loss)
        last = min(n - 1, t + horizon)
        for k in range(t + 1, last + 1):
            if low[k] <= stop:
                label[t] = 0
                outcome[t] = -stop_loss
                break
            if high[k] >= target:
                label[t] = 1
                outcome[t] = take_profit
                break
        if label[t] == UNKNOWN and t + horizon <= n - 1:
            label[t] = 0
            outcome[t] = close[t + horizon] / entry - 1.0
    return label, outcome
