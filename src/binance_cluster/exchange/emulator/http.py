"""HTTP plumbing shared by every route group: Binance error answers, JSON bodies, parameters.

Handlers raise `ApiError(status, code, msg)`; the request pipeline turns it into the
Binance error body `{"code": .., "msg": ..}` with the contract's HTTP status. `Params` reads
query-string (and, for the trading half, form-body) parameters the way Binance validates
them: -1102 for a missing mandatory parameter, -1100 for a malformed number, -1101 for a
duplicated key and -1104 for parameters no handler read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

from aiohttp import web

JSON_TYPE = "application/json;charset=UTF-8"
INT_RE = re.compile(r"^[0-9]{1,20}$")


class ApiError(Exception):
    """An error answer: HTTP status, Binance error code and message."""

    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None):
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = dict(headers or {})


def json_response(payload: Any = None, status: int = 200, text: str | None = None,
                  headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer with Binance's content type; `text` is used as-is when already encoded."""
    body = text if text is not None else json.dumps(payload, separators=(",", ":"))
    resp = web.Response(text=body, status=status, headers=headers)
    resp.headers["Content-Type"] = JSON_TYPE
    return resp


def error_response(err: ApiError) -> web.Response:
    """The JSON error body of `err`."""
    return json_response({"code": err.code, "msg": err.msg}, status=err.status,
                         headers=err.headers)


def bad_param(name: str, legal: str) -> ApiError:
    """-1100 for a parameter with characters outside its legal range."""
    return ApiError(400, -1100, f"Illegal characters found in parameter '{name}'; "
                                f"legal range is '{legal}'.")


def missing_param(name: str) -> ApiError:
    """-1102 for a mandatory parameter that was not sent."""
    return ApiError(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                "or malformed.")


def invalid_value(name: str) -> ApiError:
    """-1130 for a parameter whose value is well-formed but not acceptable."""
    return ApiError(400, -1130, f"Data sent for parameter '{name}' is not valid.")


class Params:
    """The parameters of one request, read by name; remembers what was read."""

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self._values: dict[str, str] = {}
        self._sent = 0
        for key, value in pairs:
            self._sent += 1
            if key in self._values:
                raise ApiError(400, -1101, f"Duplicate values for parameter '{key}'.")
            self._values[key] = value
        self._read: set[str] = set()

    @classmethod
    def of(cls, request: web.Request) -> "Params":
        """Query-string parameters of `request`."""
        return cls(request.query.items())

    def has(self, name: str) -> bool:
        """Whether `name` was sent with a non-empty value."""
        return self._values.get(name, "") != ""

    def get(self, name: str, required: bool = False, default: str | None = None) -> str | None:
        """The raw value of `name`; -1102 when required and missing."""
        self._read.add(name)
        value = self._values.get(name, "")
        if value == "":
            if required:
                raise missing_param(name)
            return default
        return value

    def integer(self, name: str, required: bool = False,
                default: int | None = None) -> int | None:
        """An integer parameter; -1100 when it is not an integer."""
        value = self.get(name, required)
        if value is None:
            return default
        if not INT_RE.match(value):
            raise bad_param(name, "^[0-9]{1,20}$")
        return int(value)

    def json_list(self, name: str) -> list[str] | None:
        """A JSON array of strings such as `symbols=["BTCUSDT","ETHUSDT"]`; -1100 when malformed."""
        value = self.get(name)
        if value is None:
            return None
        try:
            items = json.loads(value)
        except ValueError:
            items = None
        if not isinstance(items, list) or not items or not all(isinstance(s, str) for s in items):
            raise bad_param(name, '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$')
        return items

    def finish(self) -> None:
        """Raise -1104 when parameters were sent that no one read (typos are caught early)."""
        unread = [k for k in self._values if k not in self._read]
        if unread:
            read = self._sent - len(unread)
            raise ApiError(400, -1104, f"Not all sent parameters were read; read '{read}' "
                                       f"parameter(s) but was sent '{self._sent}'.")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Weight = int | Callable[[web.Request], int]


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: method, path, handler and its request weight (a number or a function)."""

    method: str
    path: str
    handler: Handler
    weight: Weight = 1

    def weight_of(self, request: web.Request) -> int:
        return self.weight(request) if callable(self.weight) else int(self.weight)


class RouteGroup:
    """The routes of one part of the API (market data, admin, trading); `create_app` adds them."""

    def __init__(self, name: str):
        self.name = name
        self.routes: list[Route] = []

    def route(self, method: str, path: str, weight: Weight = 1) -> Callable[[Handler], Handler]:
        """Decorator registering `handler` for `method path` with its weight."""
        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method.upper(), path, handler, weight))
            return handler
        return register

    def get(self, path: str, weight: Weight = 1) -> Callable[[Handler], Handler]:
        return self.route("GET", path, weight)

    def post(self, path: str, weight: Weight = 1) -> Callable[[Handler], Handler]:
        return self.route("POST", path, weight)

    def put(self, path: str, weight: Weight = 1) -> Callable[[Handler], Handler]:
        return self.route("PUT", path, weight)

    def delete(self, path: str, weight: Weight = 1) -> Callable[[Handler], Handler]:
        return self.route("DELETE", path, weight)
