"""The admin control plane (not part of Binance): clocks, fault injection, weight limiter.

- `GET /admin/clock`; `POST /admin/clock` with any of `{"set": ms}`, `{"advance": ms}`,
  `{"speed": x}` (replay clock) and `{"server_advance": ms}` (server clock, e.g. to let a
  rate-limit window pass in a test without waiting). Resting orders are matched against the
  candles the replay clock has passed before the answer is sent.
- `GET /admin/faults`: configuration, counters per kind (in total and per endpoint), recent
  log, limiter refusals.
  `POST /admin/faults` with a FaultConfig object (`{}` turns faults off); add
  `"reset_counts": true` to zero the counters.
- `GET /admin/limits`; `POST /admin/limits` with `{"reset": true}` and/or `{"weight_limit": n}`.

Admin requests carry no weight and are never faulted.
"""

from __future__ import annotations

import json

from aiohttp import web

from binance_cluster.exchange.emulator.faults import FaultConfig
from binance_cluster.exchange.emulator.http import ApiError, RouteGroup, json_response
from binance_cluster.exchange.emulator.state import STATE, EmulatorState
from binance_cluster.errors import ConfigError
from binance_cluster.types import format_time_ms

routes = RouteGroup("admin")


async def _body(request: web.Request, allowed: set[str]) -> dict:
    text = await request.text()
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError:
        raise ApiError(400, -1130, "admin: the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, -1130, "admin: the body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ApiError(400, -1130, f"admin: unknown key(s) {', '.join(unknown)} "
                                   f"(known: {', '.join(sorted(allowed))})")
    return data


def _int(data: dict, key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ApiError(400, -1130, f"admin: {key} must be an integer number of milliseconds")
    return int(value)


def clock_state(state: EmulatorState) -> dict:
    replay = state.replay_now()
    return {"replay": replay, "replay_utc": format_time_ms(replay),
            "server": state.server_clock.now_ms(), "server_offset": state.server_clock.offset_ms,
            "speed": state.replay_clock.speed, "start": state.start_ms}


@routes.get("/admin/clock", weight=0)
async def get_clock(request: web.Request) -> web.Response:
    return json_response(clock_state(request.app[STATE]))


@routes.post("/admin/clock", weight=0)
async def post_clock(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = await _body(request, {"set", "advance", "speed", "server_advance"})
    if "set" in data and "advance" in data:
        raise ApiError(400, -1130, "admin: give either set or advance, not both")
    if "speed" in data:
        speed = data["speed"]
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or speed < 0:
            raise ApiError(400, -1130, "admin: speed must be a number >= 0")
        state.replay_clock.set_speed(float(speed))
    if "set" in data:
        state.replay_clock.set(_int(data, "set"))
    if "advance" in data:
        step = _int(data, "advance")
        if step < 0:
            raise ApiError(400, -1130, "admin: the replay clock only moves forward")
        state.replay_clock.advance(step)
    if "server_advance" in data:
        state.server_clock.advance(_int(data, "server_advance"))
    state.exchange.sync(state.replay_now())
    return json_response(clock_state(state))


def fault_state(state: EmulatorState) -> dict:
    out = state.faults.snapshot()
    out["limiter"] = state.limiter.snapshot(state.server_clock.base_ms())
    return out


@routes.get("/admin/faults", weight=0)
async def get_faults(request: web.Request) -> web.Response:
    return json_response(fault_state(request.app[STATE]))


@routes.post("/admin/faults", weight=0)
async def post_faults(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = await _body(request, set(FaultConfig.__dataclass_fields__) | {"reset_counts"})
    reset = bool(data.pop("reset_counts", False))
    try:
        config = FaultConfig.from_dict(data, "admin faults")
    except ConfigError as exc:
        raise ApiError(400, -1130, str(exc)) from None
    state.faults.configure(config)
    state.server_clock.skew_ms = config.skew_ms
    if reset:
        state.faults.reset_counts()
    return json_response(fault_state(state))


@routes.get("/admin/limits", weight=0)
async def get_limits(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return json_response(state.limiter.snapshot(state.server_clock.base_ms()))


@routes.post("/admin/limits", weight=0)
async def post_limits(request: web.Request) -> web.Response:
    state = request.app[STATE]
    data = await _body(request, {"reset", "weight_limit"})
    if "weight_limit" in data:
        limit = _int(data, "weight_limit")
        if limit < 0:
            raise ApiError(400, -1130, "admin: weight_limit must not be negative")
        state.limiter.limit = limit
    if data.get("reset"):
        state.limiter.reset()
    return json_response(state.limiter.snapshot(state.server_clock.base_ms()))
