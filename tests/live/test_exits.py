"""live/exits: the requests and plans the live loop sends for protective exits (pure
functions; the fills themselves are proven against the emulator in test_exits_match_backtest)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from binance_cluster.engine.simulate import Risk
from binance_cluster.engine.symbol_rules import SymbolFilters
from binance_cluster.exchange.broker.base import OrderRequest, oco_legs
from binance_cluster.exchange.broker.errors import OrderRequestError
from binance_cluster.exchange.broker.ids import client_order_id
from binance_cluster.live import exits as ex

T = 1_700_000_040_000
BASE = dict(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT", tick_size=Decimal("0.01"),
            step_size=Decimal("0.00001"), min_notional=Decimal("5"))
NO_STOP_MARKET = SymbolFilters(**BASE)
WITH_STOP_MARKET = SymbolFilters(**BASE, order_types=("LIMIT", "LIMIT_MAKER", "MARKET",
                                                      "STOP_LOSS", "STOP_LOSS_LIMIT"))
HELD = Decimal("0.0099912")          # 0.01 bought less its commission, plus earlier dust


def holding(peak: float = 100_000.0) -> ex.Holding:
    return ex.holding("BTCUSDT", 100_000.0, HELD, peak)


def test_levels_are_the_backtests_rounded_away_from_the_entry():
    lv = ex.levels(100_000.07, 100_000.07, Risk(stop_loss=0.013, take_profit=0.021),
                   NO_STOP_MARKET)
    assert lv == ex.Levels(98_700.06, 102_100.08, False)    # stop down, target up, to the tick
    none = ex.levels(100_000.0, 100_000.0, Risk(), NO_STOP_MARKET)
    assert math.isnan(none.stop) and math.isnan(none.target)


def test_trailing_level_is_the_higher_stop_and_names_its_reason():
    risk = Risk(stop_loss=0.01, trailing_stop=0.015)
    assert ex.levels(100_000.0, 100_000.0, risk, NO_STOP_MARKET).stop_reason == "stop_loss"
    raised = ex.levels(100_000.0, 101_000.0, risk, NO_STOP_MARKET)
    assert raised.stop == 99_485.0 and raised.stop_reason == "trailing_stop"
    # equal levels report the stop loss, as the backtest does
    tie = ex.levels(100_000.0, 100_000.0, Risk(stop_loss=0.015, trailing_stop=0.015),
                    NO_STOP_MARKET)
    assert tie.stop == 98_500.0 and tie.stop_reason == "stop_loss"


def test_crossed_fills_stop_first_and_at_the_open_on_a_gap():
    lv = ex.Levels(99_000.0, 102_000.0)
    assert ex.crossed(lv, 100_000.0, 101_000.0, 99_500.0) is None
    assert ex.crossed(lv, 100_000.0, 102_500.0, 98_000.0) == ("stop_loss", 99_000.0)
    assert ex.crossed(lv, 98_800.0, 99_900.0, 98_700.0) == ("stop_loss", 98_800.0)
    assert ex.crossed(lv, 102_300.0, 102_400.0, 101_000.0) == ("take_profit", 102_300.0)


def test_protective_order_is_an_oco_with_a_market_stop_leg_when_the_symbol_allows_it():
    lv = ex.Levels(99_000.0, 102_000.0)
    req = ex.protective_order("job", "BTCUSDT", T, HELD, lv, WITH_STOP_MARKET)
    assert req.type == "OCO" and req.side == "SELL" and req.stop_type == "STOP_LOSS"
    assert req.quantity == Decimal("0.00999")                    # lot-floored; the rest is dust
    assert (req.price, req.stop_price, req.stop_limit_price) == (Decimal("102000.0"),
                                                                 Decimal("99000.0"), None)
    assert req.client_id == client_order_id("job", "BTCUSDT", T, ex.PROTECT)
    above, below = oco_legs(req)
    assert (above.type, above.price) == ("LIMIT_MAKER", Decimal("102000.0"))
    assert (below.type, below.stop_price, below.price, below.time_in_force) == (
        "STOP_LOSS", Decimal("99000.0"), None, None)


def test_without_stop_loss_orders_the_stop_leg_is_a_stop_limit_with_slack():
    req = ex.protective_order("job", "BTCUSDT", T, HELD, ex.Levels(99_000.0, 102_000.0),
                              NO_STOP_MARKET)
    assert req.stop_type == "STOP_LOSS_LIMIT"
    assert req.stop_limit_price == Decimal("94050.00")           # 5 % below, down to the tick
    assert oco_legs(req)[1].type == "STOP_LOSS_LIMIT"


def test_one_level_gives_one_order_and_none_gives_nothing():
    stop = ex.protective_order("job", "BTCUSDT", T, HELD, ex.Levels(99_000.0, math.nan),
                               WITH_STOP_MARKET)
    assert (stop.type, stop.stop_price, stop.price) == ("STOP_LOSS", Decimal("99000.0"), None)
    limited = ex.protective_order("job", "BTCUSDT", T, HELD, ex.Levels(99_000.0, math.nan),
                                  NO_STOP_MARKET)
    assert (limited.type, limited.price) == ("STOP_LOSS_LIMIT", Decimal("94050.00"))
    target = ex.protective_order("job", "BTCUSDT", T, HELD, ex.Levels(math.nan, 102_000.0),
                                 WITH_STOP_MARKET)
    assert (target.type, target.price, target.time_in_force) == ("LIMIT", Decimal("102000.0"),
                                                                 "GTC")
    assert ex.protective_order("job", "BTCUSDT", T, HELD, ex.Levels(math.nan, math.nan),
                               WITH_STOP_MARKET) is None
    assert ex.protective_order("job", "BTCUSDT", T, Decimal("0.000009"),
                               ex.Levels(99_000.0, 102_000.0), WITH_STOP_MARKET) is None
    assert ex.after_entry("job", holding(), T, Risk(), WITH_STOP_MARKET) == ()


def test_bot_mode_places_nothing_after_an_entry():
    risk = Risk(stop_loss=0.01, take_profit=0.02)
    assert ex.after_entry("job", holding(), T, risk, WITH_STOP_MARKET, mode="bot") == ()
    (place,) = ex.after_entry("job", holding(), T, risk, WITH_STOP_MARKET)
    assert place.purpose == ex.PROTECT and place.bar_ms == T
    # when the market is already past a level at placement, it sells at market for that
    # level: the stop alone is tried; refused, the stop is past; accepted, the target was
    (alone,) = place.fallback
    assert (alone.request.type, alone.request.stop_price, alone.purpose) == (
        "STOP_LOSS", Decimal("99000.0"), ex.PROTECT)
    (stop_sell,) = alone.fallback
    assert (stop_sell.request.type, stop_sell.request.quantity, stop_sell.purpose) == (
        "MARKET", Decimal("0.00999"), "stop_loss")
    cancel, target_sell = alone.then
    assert cancel == ex.Cancel("BTCUSDT", alone.request.client_id)
    assert (target_sell.request.type, target_sell.purpose) == ("MARKET", "take_profit")
    (lone,) = ex.after_entry("job", holding(), T, Risk(take_profit=0.02), WITH_STOP_MARKET)
    assert [f.purpose for f in lone.fallback] == ["take_profit"] and lone.then == ()
    with pytest.raises(ValueError, match="exits mode"):
        ex.after_entry("job", holding(), T, risk, WITH_STOP_MARKET, mode="exchnage")


def test_a_rising_trailing_stop_cancels_then_replaces_under_a_new_id():
    risk = Risk(stop_loss=0.01, take_profit=0.02, trailing_stop=0.015)
    resting = ex.Resting("BTCUSDT", "old-list", Decimal("99000.0"))
    assert ex.trail("job", holding(100_400.0), resting, T, risk, WITH_STOP_MARKET) == ()
    cancel, place = ex.trail("job", holding(101_000.0), resting, T, risk, WITH_STOP_MARKET)
    assert cancel == ex.Cancel("BTCUSDT", "old-list")
    assert place.request.stop_price == Decimal("99485.0")
    assert place.request.client_id == client_order_id("job", "BTCUSDT", T, ex.PROTECT)
    assert place.fallback[0].fallback[0].purpose == "trailing_stop"
    same_level = ex.Resting("BTCUSDT", "new", Decimal("99485.0"))
    assert ex.trail("job", holding(101_000.0), same_level, T, risk, WITH_STOP_MARKET) == ()


def test_a_stop_raised_over_one_placed_under_the_same_bars_id_gets_its_own_id():
    """A restart places a missing protection under the forming bar's id; the first close
    raises the trailing stop for that same bar: the replacement may not reuse the id (the
    exchange has it, cancelled: asked for, it would be found and nothing placed)."""
    risk = Risk(stop_loss=0.01, take_profit=0.02, trailing_stop=0.015)
    at_restart = client_order_id("job", "BTCUSDT", T, ex.PROTECT)
    resting = ex.Resting("BTCUSDT", at_restart, Decimal("99000.0"))
    cancel, place = ex.trail("job", holding(101_000.0), resting, T, risk, WITH_STOP_MARKET)
    assert cancel == ex.Cancel("BTCUSDT", at_restart)
    assert place.request.client_id == client_order_id("job", "BTCUSDT", T, ex.RETRAIL)
    assert place.purpose == ex.PROTECT and place.request.stop_price == Decimal("99485.0")
    assert place.fallback[0].request.client_id == client_order_id("job", "BTCUSDT", T,
                                                                  ex.RETRAIL + "-stop")


def test_an_exit_cancels_the_protection_then_sells_what_is_held():
    risk = Risk(stop_loss=0.01, take_profit=0.02)
    resting = ex.Resting("BTCUSDT", "list", Decimal("99000.0"))
    cancel, sell = ex.exit_now("job", holding(), resting, T, "max_hold", risk, WITH_STOP_MARKET)
    assert cancel == ex.Cancel("BTCUSDT", "list")
    assert (sell.request.type, sell.request.side, sell.request.quantity) == (
        "MARKET", "SELL", Decimal("0.00999"))
    assert sell.request.client_id == client_order_id("job", "BTCUSDT", T, "max_hold")
    # refused under the minimum notional: the position stays, so does its protection
    (again,) = sell.fallback
    assert again.purpose == ex.PROTECT and again.request.type == "OCO"
    assert again.request.client_id == client_order_id("job", "BTCUSDT", T, ex.REPROTECT)
    (alone,) = ex.exit_now("job", holding(), None, T, "signal", risk, WITH_STOP_MARKET)
    assert alone.fallback == ()
    with pytest.raises(ValueError, match="exit reason"):
        ex.market_exit("job", "BTCUSDT", T, HELD, "panic", WITH_STOP_MARKET)


def test_bot_check_sells_at_market_when_the_closed_bar_reached_a_level():
    risk = Risk(stop_loss=0.01, take_profit=0.02)
    assert ex.bot_check("job", holding(), T, 100_000.0, 101_000.0, 99_500.0, risk,
                        WITH_STOP_MARKET) == ()
    (sell,) = ex.bot_check("job", holding(), T, 100_000.0, 102_500.0, 98_000.0, risk,
                           WITH_STOP_MARKET)
    assert sell.purpose == "stop_loss" and sell.request.type == "MARKET"


def test_first_crossing_walks_the_trailing_peak_like_the_backtest():
    import numpy as np

    risk = Risk(trailing_stop=0.01)
    o = np.array([100_000.0, 100_500.0, 101_800.0, 101_000.0])
    h = np.array([100_600.0, 102_000.0, 101_900.0, 101_100.0])
    lo = np.array([99_500.0, 100_400.0, 100_900.0, 100_000.0])
    # bar 1's high lifts the level to 100,980 from bar 2 on: bar 2's low reaches it
    assert ex.first_crossing(holding(), o, h, lo, risk, WITH_STOP_MARKET) == (
        2, "trailing_stop", 100_980.0)
    assert ex.first_crossing(holding(), o[:2], h[:2], lo[:2], risk, WITH_STOP_MARKET) is None


def test_restore_protects_the_unprotected_and_cancels_the_orphaned():
    risk = Risk(stop_loss=0.01, take_profit=0.02)
    eth = ex.holding("ETHUSDT", 3000.0, Decimal("0.5"), 3000.0)
    filters = {"BTCUSDT": WITH_STOP_MARKET,
               "ETHUSDT": SymbolFilters("ETHUSDT", "ETH", "USDT", tick_size=Decimal("0.01"),
                                        step_size=Decimal("0.0001"))}
    resting = {"BTCUSDT": [ex.Resting("BTCUSDT", "a", Decimal("99000")),
                           ex.Resting("BTCUSDT", "b", Decimal("99000"))],
               "SOLUSDT": [ex.Resting("SOLUSDT", "c", Decimal("150"))]}
    actions = ex.restore("job", [holding(), eth], resting, T, risk, filters.__getitem__)
    assert actions[:2] == (ex.Cancel("BTCUSDT", "a"), ex.Cancel("SOLUSDT", "c"))
    (place,) = actions[2:]
    assert place.symbol == "ETHUSDT" and place.request.type == "OCO"
    bot = ex.restore("job", [holding(), eth], resting, T, risk, filters.__getitem__, mode="bot")
    assert set(bot) == {ex.Cancel("BTCUSDT", "a"), ex.Cancel("BTCUSDT", "b"),
                        ex.Cancel("SOLUSDT", "c")}


def test_order_request_checks_the_stop_type():
    with pytest.raises(OrderRequestError, match="stop_type"):
        OrderRequest("BTCUSDT", "SELL", "OCO", "x", quantity="1", price="2", stop_price="1",
                     stop_type="TAKE_PROFIT")
    with pytest.raises(OrderRequestError, match="stop_type"):
        OrderRequest("BTCUSDT", "SELL", "LIMIT", "x", quantity="1", price="2",
                     stop_type="STOP_LOSS")
    with pytest.raises(OrderRequestError, match="takes no stop_limit_price"):
        OrderRequest("BTCUSDT", "SELL", "OCO", "x", quantity="1", price="2", stop_price="1",
                     stop_limit_price="0.9", stop_type="STOP_LOSS")
    with pytest.raises(OrderRequestError, match="takes no price"):
        OrderRequest("BTCUSDT", "SELL", "STOP_LOSS", "x", quantity="1", price="2",
                     stop_price="1")


def test_stop_passed_sells_a_position_its_stop_did_not_sell_and_leaves_targets():
    risk = Risk(stop_loss=0.01, take_profit=0.02)
    resting = ex.Resting("BTCUSDT", "list", Decimal("99000.0"))
    assert ex.stop_passed("job", holding(), resting, T, 100_000.0, 102_500.0, 99_500.0, risk,
                          NO_STOP_MARKET) == ()                 # a target touched: it rests
    cancel, sell = ex.stop_passed("job", holding(), resting, T, 98_000.0, 98_100.0, 97_900.0,
                                  risk, NO_STOP_MARKET)
    assert cancel == ex.Cancel("BTCUSDT", "list")
    assert (sell.request.type, sell.purpose) == ("MARKET", "stop_loss")
    (alone,) = ex.stop_passed("job", holding(), None, T, 98_000.0, 98_100.0, 97_900.0, risk,
                              NO_STOP_MARKET)
    assert alone.purpose == "stop_loss"
