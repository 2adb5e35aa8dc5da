"""live/state: a bar handled again after a restart is decided on the account at its close
(`before_fills` takes back what the fills made since changed)."""

from __future__ import annotations

from decimal import Decimal

from binance_cluster.exchange.broker.base import Balance
from binance_cluster.live.state import before_fills

from support.live import T0, fake_fill

BASE = {"BTCUSDT": "BTC", "ETHUSDT": "ETH"}


def test_the_balances_before_a_buy_and_a_sell_are_given_back():
    now = {"USDT": Balance("USDT", Decimal("7000"), Decimal("0")),
           "BTC": Balance("BTC", Decimal("0.00999"), Decimal("0")),
           "ETH": Balance("ETH", Decimal("0.0004"), Decimal("0")),
           "BNB": Balance("BNB", Decimal("0.9"), Decimal("0"))}
    fills = [fake_fill("BTCUSDT", 1, "BUY", "100000", "0.01", "0.00001", "BTC", T0),
             fake_fill("ETHUSDT", 2, "SELL", "2000", "1.5", "3", "USDT", T0),
             fake_fill("ETHUSDT", 3, "SELL", "2000", "0.1", "0.1", "BNB", T0)]
    then = before_fills(now, fills, BASE, "USDT")
    # the buy cost 1000 USDT and brought 0.01 BTC less 0.00001 commission; the sells brought
    # 3000 - 3 and 200 USDT for 1.6 ETH, one paying 0.1 BNB
    assert then["USDT"].total == Decimal("7000") + 1000 - 2997 - 200
    assert then["BTC"].total == 0
    assert then["ETH"].total == Decimal("1.6004")
    assert then["BNB"].total == Decimal("1.0")
    assert before_fills(now, [], BASE, "USDT") == now
