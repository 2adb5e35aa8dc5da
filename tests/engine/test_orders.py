"""The order engine on hand-made candles: commissions in the asset received, the behaviours
the paper broker lacked before it shared the engine (IOC/FOK stop limits expiring, a gapping
buy stop short of quote expiring, BUY OCO lists), every reject reason, and the one filter
type's Binance round trip and float view."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from binance_cluster.engine.order_book import Account, NewOco, NewOrder, Quote
from binance_cluster.engine.orders import OrderEngine
from binance_cluster.engine.reject import OrderRejected, Reject
from binance_cluster.engine.symbol_rules import SymbolFilters, SymbolRules
from binance_cluster.kernels import fills
from binance_cluster.types import MINUTE_MS, Candles

Q8 = Decimal("0.00000001")
TOY = SymbolFilters("TOYUSDT", "TOY", "USDT", tick_size=Decimal("0.01"),
                    step_size=Decimal("0.001"), min_qty=Decimal("0.001"),
                    max_qty=Decimal("100000"), min_price=Decimal("0.01"),
                    max_price=Decimal("100000"), min_notional=Decimal("5"),
                    max_notional=Decimal("1000000"), market_max_qty=Decimal("500"),
                    max_num_orders=3,
                    order_types=("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS",
                                 "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"))


class Toy:
    """One symbol's candles in memory: the engine's market source."""

    def __init__(self, rows, filters: SymbolFilters = TOY):
        a = np.array(rows, dtype=np.float64)
        self.c = Candles.from_columns({"open_time": MINUTE_MS * np.arange(len(rows)),
                                       "open": a[:, 0], "high": a[:, 1], "low": a[:, 2],
                                       "close": a[:, 3], "volume": np.ones(len(rows))})
        self.spec = filters

    def filters(self, symbol: str) -> SymbolFilters:
        return self.spec

    def step_of(self, symbol: str) -> int:
        return MINUTE_MS

    def market(self, symbol: str, now: int) -> Quote | None:
        i = int(now // MINUTE_MS)
        return Quote(float(self.c.open[i]), i * MINUTE_MS, True) if i < len(self.c) else None

    def closed_candles(self, symbol: str, start: int, now: int):
        lo = int(np.searchsorted(self.c.open_time, start))
        hi = int(np.searchsorted(self.c.open_time, now - MINUTE_MS, side="right"))
        return self.c.slice(lo, max(lo, hi))


def engine(rows, balances, filters: SymbolFilters = TOY):
    eng = OrderEngine(Toy(rows, filters))
    account = eng.add_account(Account(1, [(a, Decimal(v)) for a, v in balances.items()],
                                      Decimal("0.0008"), Decimal("0.001")))
    return eng, account


def new(side, type_, qty=None, price=None, stop=None, tif=None, cid="o1", quote=None):
    dec = (lambda x: None if x is None else Decimal(str(x)))
    return NewOrder("TOYUSDT", side, type_, quantity=dec(qty), quote_qty=dec(quote),
                    price=dec(price), stop_price=dec(stop), time_in_force=tif, client_id=cid)


FLAT = [(100, 100.5, 99.5, 100)] * 3


def test_commission_is_taken_in_the_asset_received():
    eng, acct = engine(FLAT, {"USDT": "1000", "TOY": "0"})
    buy = eng.place(acct, new("BUY", "MARKET", qty="2"), 10)
    assert buy.fills[0].commission == Decimal("0.002") and buy.fills[0].commission_asset == "TOY"
    assert acct.free["TOY"] == Decimal("1.998") and acct.free["USDT"] == Decimal("800")
    sell = eng.place(acct, new("SELL", "MARKET", qty="1.998", cid="o2"), 20)
    proceeds = Decimal("199.8")
    fee = (proceeds * Decimal("0.001")).quantize(Q8, ROUND_HALF_UP)
    assert (sell.fills[0].commission, sell.fills[0].commission_asset) == (fee, "USDT")
    assert acct.free["USDT"] == Decimal("800") + proceeds - fee and acct.free["TOY"] == 0


@pytest.mark.parametrize("tif, status, reason", [
    ("GTC", "NEW", None), ("IOC", "EXPIRED", "UNFILLED_IOC_QUANTITY_EXPIRED"),
    ("FOK", "EXPIRED", "UNFILLED_FOK_ORDER_EXPIRED")])
def test_a_triggered_stop_limit_that_cannot_fill_rests_only_when_gtc(tif, status, reason):
    rows = [(100, 100.5, 99.5, 100), (96, 97, 95, 96), (97, 99, 96.5, 98)]
    eng, acct = engine(rows, {"TOY": "10"})
    order = eng.place(acct, new("SELL", "STOP_LOSS_LIMIT", "10", "98", "98", tif), 0)
    assert acct.locked["TOY"] == 10
    eng.sync(2 * MINUTE_MS)  # gaps to 96 under its 98 limit: triggered, not filled
    assert (order.status, order.expiry_reason, order.triggered) == (status, reason, True)
    assert acct.locked["TOY"] == (10 if tif == "GTC" else 0)
    eng.sync(3 * MINUTE_MS)  # back up to 99: the resting GTC limit fills as maker at 98
    assert order.status == ("FILLED" if tif == "GTC" else "EXPIRED")
    if tif == "GTC":
        assert order.fills[0].price == Decimal("98") and order.fills[0].is_maker


def test_a_buy_stop_gapping_above_what_the_quote_pays_for_expires():
    rows = [(100, 100.5, 99.5, 100), (130, 131, 129, 130)]
    eng, acct = engine(rows, {"USDT": "1010"})
    order = eng.place(acct, new("BUY", "STOP_LOSS", qty="10", stop="101"), 0)
    assert acct.locked["USDT"] == Decimal("1010")  # qty * stop
    eng.sync(2 * MINUTE_MS)  # fills at the 130 open: 1300 > 1010 free
    assert (order.status, order.expiry_reason) == ("EXPIRED", "INSUFFICIENT_BALANCE")
    assert (acct.free["USDT"], acct.locked["USDT"]) == (Decimal("1010"), 0) and not order.fills


def test_a_buy_oco_fills_the_first_leg_touched_and_expires_the_other():
    rows = [(100, 100.5, 99.5, 100), (100, 100.8, 97, 98), (98, 105, 97.5, 104)]
    eng, acct = engine(rows, {"USDT": "2000"})
    olist = eng.place_oco(acct, NewOco(
        "TOYUSDT", "BUY", Decimal("5"),
        above=new("BUY", "STOP_LOSS_LIMIT", "5", "104", "103", "GTC", "up"),
        below=new("BUY", "TAKE_PROFIT_LIMIT", "5", "97.5", "97.5", "GTC", "dip"),
        list_client_id="pair"), 0)
    assert acct.locked["USDT"] == Decimal("520")  # qty * the higher price
    eng.sync(2 * MINUTE_MS)  # candle 1 falls to 97: the take profit triggers at 97.5, fills
    dip, up = olist.legs
    assert (dip.status, up.status, up.expiry_reason) == ("FILLED", "EXPIRED", "OCO_TRIGGER")
    assert dip.fills[0].price == Decimal("97.5") and olist.status == "ALL_DONE"
    assert acct.locked["USDT"] == 0
    assert acct.free["USDT"] == Decimal("2000") - Decimal("487.5")
    assert acct.free["TOY"] == Decimal("5") - Decimal("0.005")


REJECTS = {
    "market closed": (dict(side="BUY", type_="MARKET", qty="1"), 10 * MINUTE_MS,
                      Reject.MARKET_CLOSED),
    "type": (dict(side="BUY", type_="TAKE_PROFIT", qty="1", stop="90"), 0,
             Reject.UNSUPPORTED_TYPE),
    "tick": (dict(side="BUY", type_="LIMIT", qty="1", price="90.005", tif="GTC"), 0,
             Reject.PRICE_FILTER),
    "lot": (dict(side="BUY", type_="LIMIT", qty="1.0005", price="90", tif="GTC"), 0,
            Reject.LOT_SIZE),
    "market lot": (dict(side="SELL", type_="MARKET", qty="600"), 0, Reject.MARKET_LOT_SIZE),
    "notional": (dict(side="BUY", type_="LIMIT", qty="0.05", price="90", tif="GTC"), 0,
                 Reject.NOTIONAL),
    "market notional": (dict(side="BUY", type_="MARKET", qty="0.04"), 0, Reject.NOTIONAL),
    "trigger": (dict(side="SELL", type_="STOP_LOSS_LIMIT", qty="1", price="101", stop="101",
                     tif="GTC"), 0, Reject.WOULD_TRIGGER),
    "take": (dict(side="BUY", type_="LIMIT_MAKER", qty="1", price="101"), 0,
             Reject.WOULD_TAKE),
    "balance": (dict(side="BUY", type_="LIMIT", qty="30", price="90", tif="GTC"), 0,
                Reject.INSUFFICIENT_BALANCE),
}


@pytest.mark.parametrize("case", REJECTS)
def test_every_refusal_has_its_reason_code(case):
    fields, now, reason = REJECTS[case]
    rows = [(100, 100.5, 99.5, 100)] * 5
    eng, acct = engine(rows, {"USDT": "1000", "TOY": "1000"})
    with pytest.raises(OrderRejected) as info:
        eng.place(acct, new(**fields), now)
    assert info.value.reason is reason
    assert (acct.free["USDT"], acct.locked["USDT"]) == (Decimal("1000"), 0)


def test_open_order_limits_duplicates_and_oco_price_relationships():
    eng, acct = engine([(100, 100.5, 99.5, 100)] * 5, {"USDT": "1000", "TOY": "100"})
    for i in range(3):
        eng.place(acct, new("BUY", "LIMIT", "1", "90", tif="GTC", cid=f"b{i}"), 0)
    with pytest.raises(OrderRejected) as full:
        eng.place(acct, new("BUY", "LIMIT", "1", "90", tif="GTC", cid="b3"), 0)
    eng.cancel(acct.open_by_client[("TOYUSDT", "b2")], 0)
    with pytest.raises(OrderRejected) as twice:
        eng.place(acct, new("BUY", "LIMIT", "1", "90", tif="GTC", cid="b1"), 0)
    eng.cancel(acct.open_by_client[("TOYUSDT", "b1")], 0)
    with pytest.raises(OrderRejected) as wrong_side:
        eng.place_oco(acct, NewOco("TOYUSDT", "SELL", Decimal("1"),
                                   above=new("SELL", "LIMIT_MAKER", "1", "99", cid="t"),
                                   below=new("SELL", "STOP_LOSS_LIMIT", "1", "95", "96",
                                             "GTC", "s"), list_client_id="l"), 0)
    assert (full.value.reason, twice.value.reason, wrong_side.value.reason) == \
        (Reject.MAX_NUM_ORDERS, Reject.DUPLICATE, Reject.PRICE_RELATIONSHIP)
    assert acct.locked["USDT"] == Decimal("90") and acct.locked["TOY"] == 0


def test_touch_fill_is_the_four_resting_fill_rules():
    o, h, lo = 100.0, 103.0, 97.0
    for level in (95.0, 98.0, 100.0, 102.0, 105.0):
        assert np.array_equal(
            [fills.touch_fill(True, True, level, o, h, lo),
             fills.touch_fill(False, True, level, o, h, lo),
             fills.touch_fill(True, False, level, o, h, lo),
             fills.touch_fill(False, False, level, o, h, lo)],
            [fills.sell_limit_fill(o, h, level), fills.buy_stop_fill(o, h, level),
             fills.sell_stop_fill(o, lo, level), fills.buy_limit_fill(o, lo, level)],
            equal_nan=True)


def test_one_filter_type_reads_back_its_exchange_info_and_gives_the_kernels_floats():
    spec = replace(TOY, market_min_qty=Decimal("0.01"), market_step_size=Decimal("0.01"),
                   base_precision=6)
    assert SymbolFilters.from_symbol_info(spec.to_exchange_info()) == spec
    assert spec.rules() == SymbolRules(tick_size=0.01, step_size=0.001, min_notional=5.0)
    assert spec.lot_problem(Decimal("0.0015")) is Reject.LOT_SIZE
    assert spec.market_lot_problem(Decimal("0.015")) is Reject.MARKET_LOT_SIZE
    assert spec.notional_problem(Decimal(0)) is Reject.NOTIONAL_ZERO
    assert spec.notional_problem(Decimal("2000000")) is Reject.NOTIONAL
    assert spec.price_problem(Decimal("100000.01")) is Reject.PRICE_FILTER
    assert spec.price_problem(Decimal("12.34")) is None and spec.lot_problem(Decimal(1)) is None
