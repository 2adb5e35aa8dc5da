"""Kernels that generate synthetic one-minute markets for the demo data (see `demo.py`).

Randomness comes from splitmix64 streams (Steele, Lea and Flood, 2014: a Weyl sequence passed
through a bijective 64-bit mix), one per (seed, stream number), so a stream's numbers depend on
nothing else: a symbol's candles do not change with the number of symbols generated beside it,
nor with numba's or numpy's own generators.
"""

from __future__ import annotations

import numpy as np

from binance_cluster.kernels._jit import jit

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_PI = 2.0 * np.pi
_UNIT = 1.0 / 9007199254740992.0  # 2**-53
MINUTE_MS = 60_000
DAY_MINUTES = 1440
T_DOF = 5.0  # Student-t degrees of freedom of every innovation


@jit
def mix64(z):
    """splitmix64 finaliser: a bijective scramble of a uint64."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@jit
def stream_state(seed, stream):
    """A one-element splitmix64 state for stream number `stream` of `seed` (both >= 0)."""
    state = np.empty(1, np.uint64)
    state[0] = mix64(np.uint64(seed) ^ mix64(np.uint64(stream) + _GAMMA))
    return state


@jit
def next_uniform(state):
    """A uniform number in (0, 1) from the stream, advancing it."""
    state[0] += _GAMMA
    return (float(mix64(state[0]) >> _S11) + 0.5) * _UNIT


@jit
def next_normal(state):
    """A standard normal number (Box-Muller, cosine branch)."""
    u1 = next_uniform(state)
    u2 = next_uniform(state)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(_TWO_PI * u2)


@jit
def next_student_t(state):
    """A Student-t number with T_DOF = 5 degrees of freedom, scaled to unit variance."""
    z = next_normal(state)
    extra = next_normal(state)
    # chi-square with 5 dof: two exponentials of mean 2 (4 dof) plus one squared normal
    chi2 = -2.0 * (np.log(next_uniform(state)) + np.log(next_uniform(state))) + extra * extra
    return z / np.sqrt(chi2 / T_DOF) / np.sqrt(T_DOF / (T_DOF - 2.0))


@jit
def _nearest(x):
    # Round half up; the same on every platform, unlike banker's rounding variants.
    return np.floor(x + 0.5)


@jit
def _weekday(absolute_minute):
    # 1970-01-01 was a Thursday (weekday 3 with Monday = 0).
    return (absolute_minute // DAY_MINUTES + 3) % 7


@jit
def market_factor(seed, start_minute, n, sigma, season, garch_alpha, garch_beta, slow_days,
                  slow_sd, weekend_vol):
    """Per-minute returns of the common market factor and their conditional variance.

    GARCH(1,1) variance (Bollerslev 1986) with Student-t innovations, times a slow AR(1)
    log-volatility regime, an intraday profile `season[minute of day]` and a weekend damping.
    """
    state = stream_state(seed, 1)
    returns = np.empty(n)
    variance = np.empty(n)
    omega = sigma * sigma * (1.0 - garch_alpha - garch_beta)
    h = sigma * sigma
    cap = 25.0 * sigma * sigma
    phi = 1.0 - 1.0 / (slow_days * DAY_MINUTES)
    kick = slow_sd * np.sqrt(1.0 - phi * phi)
    slow = slow_sd * next_normal(state)
    for t in range(n):
        minute = start_minute + t
        scale = season[minute % DAY_MINUTES] * np.exp(slow - 0.5 * slow_sd * slow_sd)
        if _weekday(minute) >= 5:
            scale *= weekend_vol
        eps = np.sqrt(h) * next_student_t(state)
        returns[t] = scale * eps
        variance[t] = scale * scale * h
        h = min(omega + garch_alpha * eps * eps + garch_beta * h, cap)
        slow = phi * slow + kick * next_normal(state)
    return returns, variance


@jit
def symbol_minutes(seed, stream, start_minute, market, market_var, missing, season,
                   volume_season, weekend_vol, weekend_volume, garch_alpha, garch_beta,
                   price, price_scale, qty_scale, beta, idio_sigma, drift, regime_from,
                   regime_to, regime_drift, regime_vol, regime_volume, after_minutes,
                   base_volume, trade_size):
    """One symbol's one-minute candles: returns beta * market + GARCH-t idiosyncratic moves.

    `drift` is a log drift per minute over the whole span; between rows regime_from and
    regime_to the drift is `regime_drift` and volatility and volume are multiplied by
    `regime_vol` and `regime_volume` (halfway back to normal for `after_minutes` more).
    Prices are integers of ticks divided by `price_scale` (10**decimals), quantities rounded
    to 1 / qty_scale; rows where `missing` is set are simulated but not emitted.
    Returns open_time, open, high, low, close, volume, quote_volume, trades, taker_buy_base,
    taker_buy_quote.
    """
    n = market.shape[0]
    kept = 0
    for t in range(n):
        if not missing[t]:
            kept += 1
    open_time = np.empty(kept, np.int64)
    o = np.empty(kept)
    h = np.empty(kept)
    lo = np.empty(kept)
    c = np.empty(kept)
    v = np.empty(kept)
    qv = np.empty(kept)
    trades = np.empty(kept, np.int64)
    tb = np.empty(kept)
    tq = np.empty(kept)
    state = stream_state(seed, stream)
    omega = idio_sigma * idio_sigma * (1.0 - garch_alpha - garch_beta)
    var_i = idio_sigma * idio_sigma
    cap = 25.0 * idio_sigma * idio_sigma
    typical = np.sqrt(beta * beta * market_var.mean() + var_i)
    log_price = np.log(price)
    prev_ticks = max(np.int64(1), np.int64(_nearest(price * price_scale)))
    row = 0
    for t in range(n):
        minute = start_minute + t
        season_t = season[minute % DAY_MINUTES]
        vol_mult = 1.0
        vol_boost = 1.0
        mu = drift
        if regime_from <= t < regime_to:
            mu = regime_drift
            vol_mult = regime_vol
            vol_boost = regime_volume
        elif regime_to <= t < regime_to + after_minutes:
            vol_mult = 0.5 * (1.0 + regime_vol)
            vol_boost = 0.5 * (1.0 + regime_volume)
        if _weekday(minute) >= 5:
            season_t *= weekend_vol
        eps = np.sqrt(var_i) * next_student_t(state)
        idio = season_t * vol_mult * eps
        ret = beta * market[t] * vol_mult + idio + mu
        sd = np.sqrt(beta * beta * market_var[t] * vol_mult * vol_mult
                     + season_t * season_t * vol_mult * vol_mult * var_i)
        var_i = min(omega + garch_alpha * eps * eps + garch_beta * var_i, cap)
        log_price += ret
        open_ticks = prev_ticks
        close_ticks = max(np.int64(1), np.int64(_nearest(np.exp(log_price) * price_scale)))
        top = max(open_ticks, close_ticks)
        bottom = min(open_ticks, close_ticks)
        up = np.exp(0.35 * sd * abs(next_normal(state)))
        down = np.exp(-0.35 * sd * abs(next_normal(state)))
        high_ticks = max(top, np.int64(np.ceil(top * up)))
        low_ticks = max(np.int64(1), min(bottom, np.int64(np.floor(bottom * down))))
        activity = 0.5 + 0.6 * abs(ret - mu) / typical
        volume_t = (base_volume * volume_season[minute % DAY_MINUTES] * vol_boost * activity
                    * np.exp(0.45 * next_normal(state) - 0.1))
        if _weekday(minute) >= 5:
            volume_t *= weekend_volume
        buy_share = 0.5 + 0.25 * np.tanh((ret - mu) / sd) + 0.08 * next_normal(state)
        buy_share = min(max(buy_share, 0.02), 0.98)
        trade_noise = np.exp(0.3 * next_normal(state))
        prev_ticks = close_ticks
        if missing[t]:
            continue
        qty = _nearest(volume_t * qty_scale) / qty_scale
        buy = min(_nearest(qty * buy_share * qty_scale) / qty_scale, qty)
        mean_price = (open_ticks + high_ticks + low_ticks + close_ticks) / (4.0 * price_scale)
        open_time[row] = minute * MINUTE_MS
        o[row] = open_ticks / price_scale
        h[row] = high_ticks / price_scale
        lo[row] = low_ticks / price_scale
        c[row] = close_ticks / price_scale
        v[row] = qty
        qv[row] = _nearest(qty * mean_price * 1e4) / 1e4
        tb[row] = buy
        tq[row] = _nearest(buy * mean_price * 1e4) / 1e4
        trades[row] = 0 if qty == 0.0 else max(np.int64(1),
                                               np.int64(qty / trade_size * trade_noise))
        row += 1
    return open_time, o, h, lo, c, v, qv, trades, tb, tq


@jit
def outage_mask(seed, n, count, min_len, max_len):
    """A mask of `count` missing stretches of min_len..max_len minutes inside n minutes.

    Stretches keep clear of the first and last tenth of the span and of each other.
    """
    state = stream_state(seed, 2)
    missing = np.zeros(n, np.bool_)
    lo = n // 10
    hi = n - n // 10 - max_len - 1
    if hi <= lo:
        return missing
    placed = 0
    tries = 0
    while placed < count and tries < 1000:
        tries += 1
        length = min_len + np.int64(next_uniform(state) * (max_len - min_len + 1))
        start = lo + np.int64(next_uniform(state) * (hi - lo))
        clear = True
        for i in range(max(0, start - 1), min(n, start + length + 1)):
            if missing[i]:
                clear = False
                break
        if not clear:
            continue
        for i in range(start, start + length):
            missing[i] = True
        placed += 1
    return missing
