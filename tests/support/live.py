"""Helpers of the live tests: fills made up by hand (prices and quantities as decimal text)."""

from __future__ import annotations

from decimal import Decimal

from binance_cluster.exchange.broker.base import Fill

T0 = 1_746_403_200_000  # 2025-05-05 00:00 UTC


def fake_fill(symbol: str, trade_id: int, side: str, price: str, qty: str, commission: str, asset: str,
              time_ms: int = T0, order_id: int = 1) -> Fill:
    """A Fill whose quote quantity is price x quantity."""
    return Fill(symbol=symbol, order_id=order_id, trade_id=trade_id, side=side, price=Decimal(price),
                qty=Decimal(qty), quote_qty=Decimal(price) * Decimal(qty), commission=Decimal(commission),
                commission_asset=asset, time_ms=time_ms)
