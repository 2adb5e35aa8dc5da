"""A local Binance-compatible exchange replaying stored candles (aiohttp, loopback by default).

Modules, one job each: `config` (EmulatorConfig), `clock` (server and replay clocks),
`replay` (stored candles served up to the replay clock), `symbols` (filters per symbol),
`limits` (request weight per minute), `faults` (seeded fault injection), `http` (error
bodies, parameters, route groups), `state` (what handlers share), `market`, `trading` and
`admin` (route groups), `app` (create_app and the request pipeline), `server` (run in a thread
or the foreground), `control` (admin client). The trading half: `accounts` (keys, balances),
`auth` (signed requests), `params` / `order_params` (parameter validation), `rules` (symbol
filters), `orders` (records and JSON shapes), `matching` (the engine, on the shared fill rules
of `binance_cluster.kernels.fills`).

    from binance import Client
    from binance_cluster.exchange.emulator import EmulatorConfig, run_emulator
    with run_emulator(EmulatorConfig(store="data/demo", speed=0)) as base_url:
        client = Client("demo", "demo", ping=False)     # the built-in demo account
        client.API_URL = base_url + "/api"
        client.order_market_buy(symbol="BTCUSDT", quantity="0.001")
"""

from binance_cluster.exchange.emulator.config import EmulatorConfig
from binance_cluster.exchange.emulator.control import EmulatorControl
from binance_cluster.exchange.emulator.faults import FaultConfig

__all__ = ["EmulatorConfig", "EmulatorControl", "FaultConfig", "create_app", "run_emulator",
           "run_emulator_server"]


def __getattr__(name: str):
    # aiohttp is imported only when a server is actually built
    if name == "create_app":
        from binance_cluster.exchange.emulator.app import create_app
        return create_app
    if name in ("run_emulator", "run_emulator_server"):
        from binance_cluster.exchange.emulator import server
        return getattr(server, name)
    raise AttributeError(name)
