"""Exchange: everything that speaks Binance, on either side of the wire.

Owns the one Binance transport (`transport`: python-binance clients, retries, rate limits,
server time, error translation, kline parsing; `fetch` builds on it too), the brokers
(`broker`: the Broker protocol, `BinanceBroker` over the transport, `PaperBroker` on public
prices) and the local Binance-compatible exchange (`emulator`, an aiohttp server replaying a
candle store). A new exchange call goes into the transport or broker (client side) and, where
tests need it, the emulator (server side). Both trade on the fill rules of
`kernels/fills.py`. May import the ground floor, `kernels`, `engine` and `candles.store`;
never a strategy or a driver. python-binance is imported only by `transport` and `broker`
(tests/test_import_boundaries.py).
"""
