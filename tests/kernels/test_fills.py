"""Fill rules by hand: market fills, stops and targets (gaps, stop first), fees, lots, ticks,
minimum notional."""

from __future__ import annotations

import math

import pytest

from binance_cluster.kernels import fills


def test_market_fill_without_slippage_is_the_open():
    assert fills.market_buy_price(95505.4, 0.0, 0.1) == 95505.4
    assert fills.market_sell_price(95505.4, 0.0, 0.1) == 95505.4


def test_market_fill_with_slippage_rounds_against_the_trader():
    # 100 * 1.001 = 100.1 exactly on a 0.1 tick: stays; 100.05 rounds up for a buy
    assert fills.market_buy_price(100.0, 0.001, 0.1) == 100.1
    assert fills.market_buy_price(100.0, 0.0005, 0.1) == 100.1      # 100.05 -> up
    assert fills.market_sell_price(100.0, 0.0005, 0.1) == 99.9      # 99.95 -> down
    assert fills.market_sell_price(100.0, 0.001, 0.1) == 99.9       # 99.9 on the tick
    assert fills.market_buy_price(3.2713, 0.001, 0.0001) == 3.2746   # 3.2745713 -> up
    assert fills.market_sell_price(3.2713, 0.001, 0.0001) == 3.2680  # 3.2680287 -> down


def test_prices_on_the_grid_are_the_decimal_value():
    # 95505.4 / 0.1 is 955053.9999999999 in floats: it must stay on its grid point
    assert fills.floor_to_step(95505.4, 0.1) == 95505.4
    assert fills.ceil_to_step(95505.4, 0.1) == 95505.4
    assert fills.floor_to_step(0.1 + 0.2, 0.1) == 0.3
    assert fills.floor_to_step(1.23456789, 0.00001) == 1.23456
    assert fills.ceil_to_step(1.23456789, 0.00001) == 1.23457
    assert fills.floor_to_step(1234.5, 5.0) == 1230.0
    assert fills.floor_to_step(1.2345, 0.0) == 1.2345                 # no rounding


def test_lot_step_rounds_quantity_down_in_whole_steps():
    assert fills.floor_to_step(0.10469999, 0.00001) == 0.10469
    assert fills.floor_to_step(0.3, 0.1) == 0.3          # 0.3 / 0.1 = 2.9999999999999996
    assert fills.floor_to_step(2.9999999, 1.0) == 2.0


def test_sell_stop_inside_bar_fills_at_stop_and_at_open_on_a_gap():
    assert fills.sell_stop_fill(100.0, 94.0, 95.0) == 95.0      # touched inside the bar
    assert fills.sell_stop_fill(93.0, 90.0, 95.0) == 93.0       # gapped below: the open
    assert fills.sell_stop_fill(95.0, 94.0, 95.0) == 95.0       # open exactly at the stop
    assert math.isnan(fills.sell_stop_fill(100.0, 95.1, 95.0))  # not reached


def test_take_profit_fills_at_limit_and_at_open_on_a_gap():
    assert fills.sell_limit_fill(100.0, 108.0, 107.0) == 107.0
    assert fills.sell_limit_fill(110.0, 111.0, 107.0) == 110.0  # gapped above: the open
    assert math.isnan(fills.sell_limit_fill(100.0, 106.9, 107.0))


def test_buy_side_mirrors():
    assert fills.buy_stop_fill(100.0, 106.0, 105.0) == 105.0
    assert fills.buy_stop_fill(107.0, 108.0, 105.0) == 107.0    # gapped above the stop
    assert math.isnan(fills.buy_stop_fill(100.0, 104.9, 105.0))
    assert fills.buy_limit_fill(100.0, 94.0, 95.0) == 95.0
    assert fills.buy_limit_fill(93.0, 92.0, 95.0) == 93.0       # gapped below the limit
    assert math.isnan(fills.buy_limit_fill(100.0, 95.1, 95.0))


def test_stop_first_when_stop_and_target_in_one_bar():
    price, kind = fills.long_exit_fill(100.0, 110.0, 90.0, 95.0, 107.0)
    assert (price, kind) == (95.0, fills.STOP_FILL)
    price, kind = fills.long_exit_fill(100.0, 110.0, 96.0, 95.0, 107.0)
    assert (price, kind) == (107.0, fills.TARGET_FILL)
    price, kind = fills.long_exit_fill(100.0, 101.0, 99.0, 95.0, 107.0)
    assert math.isnan(price) and kind == fills.NO_FILL
    price, kind = fills.long_exit_fill(100.0, 110.0, 90.0, math.nan, 107.0)   # no stop
    assert (price, kind) == (107.0, fills.TARGET_FILL)


def test_fee_on_notional():
    assert fills.fee(1000.0, 0.001) == 1.0
    assert fills.fee(0.0, 0.001) == 0.0


def test_min_notional_rejects_small_orders():
    assert fills.notional_ok(0.05, 100.0, 5.0)           # exactly 5
    assert not fills.notional_ok(0.049, 100.0, 5.0)
    assert not fills.notional_ok(0.0, 100.0, 0.0)         # nothing to buy


@pytest.mark.parametrize("spend,price,fee_rate,step", [
    (10_000.0, 95505.4, 0.001, 0.00001), (1000.0, 3.2713, 0.001, 0.1),
    (20.0, 0.26908, 0.00075, 1.0), (10_000.0, 95505.4, 0.001, 0.0), (7.0, 3.0, 0.0, 0.001)])
def test_buy_quantity_spends_at_most_the_cash(spend, price, fee_rate, step):
    q = fills.buy_quantity(spend, price, fee_rate, step)
    notional = q * price
    assert notional + fills.fee(notional, fee_rate) <= spend
    if step > 0:
        assert fills.floor_to_step(q, step) == q                     # on the lot grid
        more = q + step                                              # one more lot is too much
        assert more * price * (1 + fee_rate) > spend * (1 - 1e-12)
    else:
        assert notional + fills.fee(notional, fee_rate) > spend * (1 - 1e-12)


def test_fill_rules_are_callable_from_plain_python_and_numba():
    from binance_cluster.kernels._jit import jit

    @jit
    def inside(o, h, lo, stop, target):
        return fills.long_exit_fill(o, h, lo, stop, target)

    assert inside(100.0, 110.0, 90.0, 95.0, 107.0) == (95.0, fills.STOP_FILL)


def test_amounts_round_half_up_to_8_decimals_as_the_emulator_quantizes():
    from decimal import ROUND_HALF_UP, Decimal

    import numpy as np

    def emulator(x: float) -> float:
        return float(Decimal(repr(x)).quantize(Decimal("0.00000001"), ROUND_HALF_UP))

    assert fills.round_amount(8.102545113475) == 8.10254511        # 9th decimal 4: down
    assert fills.round_amount(0.000012345) == 0.00001235           # a half: up
    assert fills.round_amount(6.19465041) == 6.19465041            # on the grid: unchanged
    rng = np.random.default_rng(11)
    for x in np.concatenate([rng.uniform(0, 20, 3000), rng.integers(0, 10**6, 2000) * 5e-9]):
        assert fills.round_amount(float(x)) == emulator(float(x)), repr(x)


def test_notional_amount_is_the_decimal_product_not_the_float_one():
    from decimal import ROUND_HALF_UP, Decimal

    # 6188.45575 x 1.3093 = 8102.545113475 exactly, but 8102.545113474999 in floats
    assert 6188.45575 * 1.3093 < 8102.545113475
    assert fills.notional_amount(6188.45575, 1.3093, 1e5, 1e4) == 8102.54511348
    exact = (Decimal("6188.45575") * Decimal("1.3093")).quantize(Decimal("1e-8"), ROUND_HALF_UP)
    assert fills.notional_amount(6188.45575, 1.3093, 1e5, 1e4) == float(exact)
    assert fills.notional_amount(0.01, 95505.4, 1e5, 10.0) == 955.054       # 7 decimals
    assert fills.notional_amount(0.3, 0.7, 0.0, 0.0) == 0.21                # off the grids
