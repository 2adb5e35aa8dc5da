"""Fill rules: the one place that says at what price, in what quantity and for what fee an
order fills against a candle (DESIGN.md section 2).

Every function is a small scalar `@jit` kernel, callable from other numba kernels (the backtest
simulator) and from plain Python (the exchange emulator and the paper broker). Conventions:

- A decision taken on closed bar t is a MARKET order that fills at the open of bar t+1, plus
  slippage: buys pay `open * (1 + slippage)` rounded UP to the tick, sells receive
  `open * (1 - slippage)` rounded DOWN to the tick, so rounding never favours the trader.
  Without slippage the fill is the open itself (a traded price, on the tick grid).
- A resting order inside a bar fills at its own price, or at the bar's open when the bar gaps
  through it: a sell stop when `open <= stop` (else when `low <= stop`), a sell limit (take
  profit) when `open >= limit` (else when `high >= limit`); buy stops and buy limits mirror
  these. Stops and limits pay no slippage: they fill at their price or at the open.
- When a long position's stop and target are both inside one bar, the stop fills (the path
  inside the bar is unknown; assuming the worse outcome keeps backtests honest).
- Every fill pays `notional * fee_rate` in quote currency (buys: cost = notional + fee;
  sells: proceeds = notional - fee).
- Quantities round DOWN to the lot step and prices to the tick, in whole steps:
  `floor(x / step + 1e-9)` steps, so a value a rounding error below a grid point stays on it.
  A step or tick of 0 (or below) means no rounding. The `*_units` / `*_inv` variants take
  `grid_inverse(step)` precomputed (kernels call them in loops); results are the same.
- An order whose notional is under `min_notional` is rejected (`notional_ok` is False).

Results are the float nearest to the decimal grid value (e.g. 95505.4, not 95505.40000000001),
so a price that is already on the tick is returned unchanged.
"""

from __future__ import annotations

import math

from binance_cluster.kernels._jit import jit

GRID_EPS = 1e-9          # tolerance in grid units when rounding to a step or tick

NO_FILL = 0              # long_exit_fill kinds
STOP_FILL = 1
TARGET_FILL = 2


@jit
def grid_inverse(step):
    """1/step when step is 1/k for a whole k (0.1, 0.01, 0.5 ...), else 0; precomputed."""
    if 0.0 < step < 1.0:
        inv = math.floor(1.0 / step + 0.5)
        if abs(inv * step - 1.0) < 1e-12:
            return float(inv)
    return 0.0


@jit
def floor_units(x, step, inv):
    """floor_to_step with inv = grid_inverse(step) precomputed."""
    if step <= 0.0:
        return x
    if inv > 0.0:
        return math.floor(x * inv + GRID_EPS) / inv
    return math.floor(x / step + GRID_EPS) * step


@jit
def ceil_units(x, step, inv):
    """ceil_to_step with inv = grid_inverse(step) precomputed."""
    if step <= 0.0:
        return x
    if inv > 0.0:
        return math.ceil(x * inv - GRID_EPS) / inv
    return math.ceil(x / step - GRID_EPS) * step


@jit
def floor_to_step(x, step):
    """Round `x` down to a multiple of `step` (a quantity to the lot, a sell price to the tick)."""
    return floor_units(x, step, grid_inverse(step))


@jit
def ceil_to_step(x, step):
    """Round `x` up to a multiple of `step` (a buy price to the tick)."""
    return ceil_units(x, step, grid_inverse(step))


@jit
def market_buy_price(open_, slippage, tick):
    """Market buy at a bar's open: the open, or open * (1 + slippage) rounded up to the tick."""
    if slippage == 0.0:
        return open_
    return ceil_to_step(open_ * (1.0 + slippage), tick)


@jit
def market_sell_price(open_, slippage, tick):
    """Market sell at a bar's open: the open, or open * (1 - slippage) rounded down to the tick."""
    if slippage == 0.0:
        return open_
    return floor_to_step(open_ * (1.0 - slippage), tick)


@jit
def sell_stop_fill(open_, low, stop):
    """Resting sell stop in a bar: the open if it gaps below, the stop if touched, else NaN."""
    if open_ <= stop:
        return open_
    if low <= stop:
        return stop
    return math.nan


@jit
def sell_limit_fill(open_, high, limit):
    """Resting sell limit (take profit): the open on a gap above, the limit if touched, else NaN."""
    if open_ >= limit:
        return open_
    if high >= limit:
        return limit
    return math.nan


@jit
def buy_stop_fill(open_, high, stop):
    """Resting buy stop: the open if it gaps above, the stop if touched, else NaN."""
    if open_ >= stop:
        return open_
    if high >= stop:
        return stop
    return math.nan


@jit
def buy_limit_fill(open_, low, limit):
    """Resting buy limit: the open if it gaps below, the limit if touched, else NaN."""
    if open_ <= limit:
        return open_
    if low <= limit:
        return limit
    return math.nan


@jit
def long_exit_fill(open_, high, low, stop, target):
    """(price, kind) of a long's protective exit in one bar; NaN stop/target = none; stop first.

    kind is NO_FILL (price NaN), STOP_FILL or TARGET_FILL.
    """
    if stop == stop:  # not NaN
        price = sell_stop_fill(open_, low, stop)
        if price == price:
            return price, STOP_FILL
    if target == target:
        price = sell_limit_fill(open_, high, target)
        if price == price:
            return price, TARGET_FILL
    return math.nan, NO_FILL


@jit
def fee(notional, fee_rate):
    """Fee of one fill in quote currency."""
    return notional * fee_rate


@jit
def notional_ok(quantity, price, min_notional):
    """True when an order of `quantity` at `price` passes the exchange's minimum notional."""
    return quantity > 0.0 and quantity * price >= min_notional


@jit
def buy_quantity(spend, price, fee_rate, step):
    """Largest lot-rounded quantity whose cost `q * price + fee` does not exceed `spend`."""
    return buy_quantity_inv(spend, price, fee_rate, step, grid_inverse(step))


@jit
def buy_quantity_inv(spend, price, fee_rate, step, inv):
    """buy_quantity with inv = grid_inverse(step) precomputed."""
    if spend <= 0.0 or price <= 0.0:
        return 0.0
    q = floor_units(spend / (price * (1.0 + fee_rate)), step, inv)
    # The rounding tolerance (or float error without a step) may overshoot by a hair.
    for _ in range(8):
        notional = q * price
        if notional + fee(notional, fee_rate) <= spend:
            return q
        if step > 0.0:
            q = floor_units(q - 0.5 * step, step, inv)
        else:
            q = q * (1.0 - 4.440892098500626e-16)
    return 0.0


# -- where a candle reaches a resting order's level (the order engine's touch rule) -----------
@jit
def touch_fill(sell, rising, level, open_, high, low):
    """Where a candle reaches `level` (NaN if it does not): `rising` when the price rises to
    it (a sell limit or take profit, a buy stop), else when it falls to it (a buy limit or
    take profit, a sell stop); `sell` picks the sell or the buy rule of that direction."""
    if rising:
        if sell:
            return sell_limit_fill(open_, high, level)
        return buy_stop_fill(open_, high, level)
    if sell:
        return sell_stop_fill(open_, low, level)
    return buy_limit_fill(open_, low, level)


AMOUNT_UNITS = 1e8       # Binance amounts (quote, commission, balances) have 8 decimals


@jit
def round_amount(x):
    """`x` rounded half up to 8 decimals, as the emulator quantizes the shortest decimal of `x`.

    The float of a half-way decimal k.5e-8 is compared with the correctly rounded (2k+1)/2e8,
    so a value whose shortest decimal ends in that 5 rounds up like Decimal's ROUND_HALF_UP.
    """
    k = math.floor(x * AMOUNT_UNITS)
    if x < k / AMOUNT_UNITS:
        k -= 1.0
    elif x >= (k + 1.0) / AMOUNT_UNITS:
        k += 1.0
    if x >= (2.0 * k + 1.0) / (2.0 * AMOUNT_UNITS):
        k += 1.0
    return k / AMOUNT_UNITS


@jit
def notional_amount(qty, price, lot_inv, tick_inv):
    """qty x price rounded half up to 8 decimals, exactly as the decimal product would be.

    With decimal grids (lot_inv, tick_inv from `grid_inverse`) the product is taken in whole
    lots x ticks, so a product ending in a half unit of the 8th decimal rounds up even where
    the float product falls a hair below it; off the grids, `round_amount` of the product.
    """
    if lot_inv > 0.0 and tick_inv > 0.0:
        a = math.floor(qty * lot_inv + 0.5)
        b = math.floor(price * tick_inv + 0.5)
        units = lot_inv * tick_inv                 # grid units per quote unit
        if a * b < 4e18 and units < 4e18:
            ab = int(a) * int(b)
            if units <= AMOUNT_UNITS:
                return ab / units
            r = int(units / AMOUNT_UNITS + 0.5)
            if r * AMOUNT_UNITS == units:
                return ((ab + r // 2) // r) / AMOUNT_UNITS
    return round_amount(qty * price)
