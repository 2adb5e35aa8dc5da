"""Exchange: everything that speaks Binance, on either side of the wire.

Owns the brokers (`broker`: the Broker protocol, `BinanceBroker` over python-binance,
`PaperBroker` on public prices) and the local Binance-compatible exchange (`emulator`, an
aiohttp server replaying a candle store). A new exchange call goes into the broker (client
side) and, where tests need it, the emulator (server side). Both trade on the fill rules of
`kernels/fills.py`. May import the ground floor, `kernels`, `engine` and `candles.store`;
never a strategy or a driver. python-binance is imported here only.
"""
