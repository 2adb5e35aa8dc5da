"""The emulator's aiohttp application: route groups and the request pipeline.

`create_app(config)` builds the shared state and registers route groups (market data,
trading and admin by default, or `groups=`) and the background matcher that fills resting
orders while the replay clock runs. Every `/api/` request passes the pipeline:

1. weight: the route's weight is counted in the minute window of the server clock; over the
   limit the answer is 429 (then 418 for clients that keep going) with `Retry-After`;
2. faults: an injected 5xx / 429 / 418 replaces the answer, a delay is waited out first, and a
   drop runs the handler but never answers (the connection is closed);
3. the handler; an `ApiError` becomes the Binance error body with its HTTP status.

Every answer, errors included, carries `X-MBX-USED-WEIGHT-1M` and `X-Replay-Time`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Iterable

from aiohttp import web

from binance_cluster.exchange.emulator import admin, market, trading
from binance_cluster.exchange.emulator.config import EmulatorConfig
from binance_cluster.exchange.emulator.faults import STATUS_5XX
from binance_cluster.exchange.emulator.http import ApiError, Route, RouteGroup, error_response
from binance_cluster.exchange.emulator.state import STATE, EmulatorState
from binance_cluster.exchange.transport import REPLAY_TIME_HEADER, WEIGHT_HEADER

log = logging.getLogger(__name__)

DEFAULT_GROUPS: list[RouteGroup] = [market.routes, trading.routes, admin.routes]
ROUTES = web.AppKey("binance_cluster_emulator_routes", dict)
API_PREFIX = "/api/"


def _route_of(request: web.Request) -> Route | None:
    resource = request.match_info.route.resource
    if resource is None:
        return None
    return request.app[ROUTES].get((request.method, resource.canonical))


def _http_error(exc: web.HTTPException, request: web.Request) -> ApiError:
    if exc.status == 404:
        return ApiError(404, -1000, f"Unknown path {request.path}.")
    if exc.status == 405:
        return ApiError(405, -1000, f"Method {request.method} is not allowed for {request.path}.")
    return ApiError(exc.status, -1000, exc.reason or "Request failed.")


def _rate_limit_error(status: int, retry_after: int, limit: int, banned_until: int) -> ApiError:
    headers = {"Retry-After": str(retry_after)}
    if status == 418:
        return ApiError(418, -1003, f"Way too much request weight used; IP banned until "
                                    f"{banned_until}. Please use WebSocket Streams for live "
                                    "updates to avoid bans.", headers)
    return ApiError(429, -1003, f"Too much request weight used; current limit is {limit} "
                                "request weight per 1 MINUTE. Please use WebSocket Streams for "
                                "live updates to avoid polling the API.", headers)


async def _run(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        return error_response(_http_error(exc, request))
    except Exception:  # a bug in a handler: answer like Binance's internal error, log it
        log.exception("emulator: %s %s failed", request.method, request.path)
        return error_response(ApiError(500, -1000, "An unknown error occurred while processing "
                                                    "the request."))


@web.middleware
async def pipeline(request: web.Request, handler) -> web.StreamResponse:
    """Weight accounting, fault injection and Binance error bodies for every request."""
    state: EmulatorState = request.app[STATE]
    if not request.path.startswith(API_PREFIX):
        response = await _run(request, handler)
        response.headers[REPLAY_TIME_HEADER] = str(state.replay_now())
        return response
    route = _route_of(request)
    weight = route.weight_of(request) if route is not None else 1
    now = state.server_clock.base_ms()
    verdict = state.limiter.admit(weight, now)
    headers = {WEIGHT_HEADER: str(verdict.used), REPLAY_TIME_HEADER: str(state.replay_now())}
    if verdict.status != 200:
        log.info("rate limit: %d for %s %s (used weight %d of %d)", verdict.status,
                 request.method, request.path, verdict.used, state.limiter.limit)
        response = error_response(_rate_limit_error(verdict.status, verdict.retry_after,
                                                    state.limiter.limit, verdict.banned_until))
        response.headers.update(headers)
        return response
    fault = state.faults.draw(request.method, request.path) if route is not None else None
    response = await _faulted_or_run(state, request, handler, fault, now)
    response.headers.update(headers)
    return response


async def _faulted_or_run(state: EmulatorState, request: web.Request, handler, fault: str | None,
                          now: int) -> web.StreamResponse:
    cfg = state.faults.config
    method, path = request.method, request.path
    if fault == "5xx":
        state.faults.record(fault, method, path, f"HTTP {cfg.status_5xx}")
        code, msg = STATUS_5XX[cfg.status_5xx]
        return error_response(ApiError(cfg.status_5xx, code, msg))
    if fault in ("429", "418"):
        state.faults.record(fault, method, path, f"Retry-After {cfg.retry_after}")
        return error_response(_rate_limit_error(int(fault), cfg.retry_after, state.limiter.limit,
                                                now + cfg.retry_after * 1000))
    if fault == "delay":
        state.faults.record(fault, method, path, f"{cfg.delay_s:g} s")
        await request.read()  # the request has fully arrived: it still runs if the client gives up

        async def late() -> web.StreamResponse:
            await asyncio.sleep(cfg.delay_s)
            return await _run(request, handler)

        # aiohttp cancels a handler whose client disconnected; the exchange would not
        return await asyncio.shield(asyncio.ensure_future(late()))
    response = await _run(request, handler)
    if fault == "drop":
        state.faults.record(fault, method, path, "handled, answer dropped")
        if request.transport is not None:
            request.transport.close()  # aiohttp then finds nothing to write the answer to
    return response


def create_app(config: EmulatorConfig,
               groups: Iterable[RouteGroup] | None = None) -> web.Application:
    """The emulator application for `config` with the given route groups (default: all)."""
    state = EmulatorState(config)
    app = web.Application(middlewares=[pipeline])
    app[STATE] = state
    table: dict[tuple[str, str], Route] = {}
    for group in (DEFAULT_GROUPS if groups is None else groups):
        for route in group.routes:
            key = (route.method, route.path)
            if key in table:
                raise ValueError(f"route {route.method} {route.path} registered twice")
            app.router.add_route(route.method, route.path, route.handler)
            table[key] = route
    app[ROUTES] = table
    app.cleanup_ctx.append(trading.matcher)
    return app
