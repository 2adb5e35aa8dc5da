"""A local Binance-compatible exchange replaying stored candles (aiohttp, loopback by default).

Modules, one job each: `config` (EmulatorConfig), `clock` (server and replay clocks),
`replay` (stored candles served up to the replay clock), `symbols` (filters per symbol),
`limits` (request weight per minute), `faults` (seeded fault injection), `http` (error
bodies, parameters, route groups), `state` (what handlers share), `market` and `admin`
(route groups), `app` (create_app and the request pipeline), `server` (run in a thread or
the foreground), `control` (admin client).

    from binance_cluster.emulator import EmulatorConfig, run_emulator
    with run_emulator(EmulatorConfig(store="data/demo", speed=0)) as base_url:
        client = Client(None, None, ping=False)
        client.API_URL = base_url + "/api"
"""

from binance_cluster.emulator.config import EmulatorConfig
from binance_cluster.emulator.control import EmulatorControl
from binance_cluster.emulator.faults import FaultConfig

__all__ = ["EmulatorConfig", "EmulatorControl", "FaultConfig", "create_app", "run_emulator",
           "run_emulator_server"]


def __getattr__(name: str):
    # aiohttp is imported only when a server is actually built
    if name == "create_app":
        from binance_cluster.emulator.app import create_app
        return create_app
    if name in ("run_emulator", "run_emulator_server"):
        from binance_cluster.emulator import server
        return getattr(server, name)
    raise AttributeError(name)
