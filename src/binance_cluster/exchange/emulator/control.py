"""A small client for the emulator's admin endpoints (tests, benchmarks, broker tests)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request


class EmulatorControl:
    """Set the clocks, faults and limits of an emulator at `base_url`."""

    def __init__(self, base_url: str, timeout: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode() or "{}")
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            raise RuntimeError(f"admin {method} {path}: HTTP {exc.code}: {detail}") from None

    def clock(self) -> dict:
        """`{"replay", "server", "speed", ...}`."""
        return self._call("GET", "/admin/clock")

    def set_replay(self, ms: int) -> dict:
        return self._call("POST", "/admin/clock", {"set": int(ms)})

    def advance_replay(self, ms: int) -> dict:
        return self._call("POST", "/admin/clock", {"advance": int(ms)})

    def set_speed(self, speed: float) -> dict:
        return self._call("POST", "/admin/clock", {"speed": speed})

    def advance_server(self, ms: int) -> dict:
        """Move the server clock (rate-limit windows, /time) forward without waiting."""
        return self._call("POST", "/admin/clock", {"server_advance": int(ms)})

    def set_faults(self, reset_counts: bool = True, **config) -> dict:
        """Replace the fault configuration (no arguments: faults off)."""
        return self._call("POST", "/admin/faults", dict(config, reset_counts=reset_counts))

    def faults(self) -> dict:
        """Fault configuration, counters, recent log and limiter refusals."""
        return self._call("GET", "/admin/faults")

    def limits(self, reset: bool = False, weight_limit: int | None = None) -> dict:
        body: dict = {}
        if reset:
            body["reset"] = True
        if weight_limit is not None:
            body["weight_limit"] = int(weight_limit)
        return self._call("POST", "/admin/limits", body) if body else \
            self._call("GET", "/admin/limits")
