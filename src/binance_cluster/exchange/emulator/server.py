"""Running the emulator: in a background thread (tests, broker tests) or in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

from aiohttp import web

from binance_cluster.exchange.emulator.app import create_app
from binance_cluster.exchange.emulator.config import EmulatorConfig
from binance_cluster.exchange.emulator.state import STATE, EmulatorState
from binance_cluster.errors import ConfigError

log = logging.getLogger(__name__)


SHUTDOWN_S = 0.5  # in-flight requests (e.g. injected delays) get this long when stopping


async def _start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=SHUTDOWN_S)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return runner, f"http://{shown}:{bound_port}"


class EmulatorServer:
    """The emulator on its own event loop in a daemon thread; `start()` returns the base URL."""

    def __init__(self, config: EmulatorConfig):
        self.config = config
        self.app = create_app(config)  # bad configuration fails here, in the caller's thread
        self.base_url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> EmulatorState:
        return self.app[STATE]

    def start(self, timeout: float = 30.0) -> str:
        """Bind and serve; returns `http://host:port`."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        ready: dict = {}
        started = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            try:
                self._runner, self.base_url = loop.run_until_complete(
                    _start_site(self.app, self.config.host, self.config.port))
            except BaseException as exc:  # reported to the starting thread
                ready["error"] = exc
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            # handlers still waiting (an injected delay) end here, not when garbage-collected
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=main, name="exchange-emulator", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise RuntimeError("the emulator did not start in time")
        if "error" in ready:
            raise ready["error"]
        log.debug("emulator listening on %s", self.base_url)
        return self.base_url

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread to end."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._thread = None


@contextmanager
def run_emulator(config: EmulatorConfig) -> Iterator[str]:
    """Serve the emulator in a background thread for the `with` block; yields the base URL."""
    server = EmulatorServer(config)
    try:
        yield server.start()
    finally:
        server.stop()


@contextmanager
def run_emulator_server(config: EmulatorConfig) -> Iterator[EmulatorServer]:
    """Like `run_emulator`, but yields the EmulatorServer (base_url, state) for in-process
    checks."""
    server = EmulatorServer(config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def serve_forever(config: EmulatorConfig, on_ready: Callable[[str, EmulatorState], None]) -> None:
    """Serve in the foreground until SIGINT or SIGTERM; `on_ready(base_url, state)` once bound."""
    app = create_app(config)

    async def main() -> None:
        runner, url = await _start_site(app, config.host, config.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            on_ready(url, app[STATE])
            await stop.wait()
        finally:
            await runner.cleanup()

    asyncio.run(main())
