"""The broker layer: one protocol (`base.Broker`) and its implementations.

`BinanceBroker` (module `binance`: trading through `exchange/transport`, rank 0 only)
and `PaperBroker` (module `paper`, local fills by the one order engine, `engine/orders`). Importing this
package imports neither python-binance nor requests.
"""

from binance_cluster.exchange.broker.base import (Balance, Broker, Fill, Order, OrderRequest,
                                         SymbolFilters)
from binance_cluster.exchange.broker.ids import client_order_id

__all__ = ["Balance", "Broker", "Fill", "Order", "OrderRequest", "SymbolFilters",
           "client_order_id", "BinanceBroker", "BinanceBrokerConfig", "PaperBroker"]


def __getattr__(name: str):
    if name in ("BinanceBroker", "BinanceBrokerConfig"):
        from binance_cluster.exchange.broker import binance
        return getattr(binance, name)
    if name == "PaperBroker":
        from binance_cluster.exchange.broker import paper
        return paper.PaperBroker
    raise AttributeError(name)
