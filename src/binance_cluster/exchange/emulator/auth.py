"""Signed requests (binance-api.md sections 3.1 and 3.2): API key, timing, signature.

Checks, in the contract's recommended order; the first failure answers:

1. `X-MBX-APIKEY` missing or malformed: -2014 "API-key format invalid." (HTTP 401); not a
   configured key: -2015 "Invalid API-key, IP, or permissions for action." (HTTP 401);
2. parameters from the raw query string and the raw form body (the query wins a key sent in
   both; a key repeated inside one of them is -1101);
3. `timestamp`, then `signature` missing: -1102;
4. `timestamp` not an integer (ms, or µs when above 10^15) or `recvWindow` not a number with
   at most 3 decimals: -1100; `recvWindow` above 60000: -1102;
5. timing against the SERVER clock (wall time plus the admin offset, never the replay clock,
   and without an injected skew, so a client fooled by a skewed /time is caught):
   `timestamp < server + 1000` and `server - timestamp <= recvWindow` (default 5000), else
   -1021 with Binance's two messages (skipped with `timestamp_check=False`);
6. the signature over the raw query string concatenated with the raw body, both as sent and
   without the `signature` pair: HMAC-SHA256 hex (case-insensitive) or Ed25519 (base64,
   percent-encoded), else -1022. A value python-binance form-encodes differently from what it
   signed (a client id with `:`) therefore fails here, as on Binance.

Key verifiers (HMAC, Ed25519) and the key table are in `keys`, beside the accounts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from binance_cluster.exchange.emulator.accounts import KEY_RE, Account
from binance_cluster.exchange.emulator.http import ApiError, bad_param, missing_param
from binance_cluster.exchange.emulator.params import INT_LEGAL, INT_RE, TradeParams, merge_sources

if TYPE_CHECKING:
    from binance_cluster.exchange.emulator.state import EmulatorState

KEY_HEADER = "X-MBX-APIKEY"
MAX_RECV_WINDOW = 60_000
DEFAULT_RECV_WINDOW = 5_000
AHEAD_MS = 1_000
MICROSECONDS_FROM = 10 ** 15   # a timestamp this large is in microseconds
RECV_WINDOW_LEGAL = r"^[0-9]{1,20}(\.[0-9]{1,3})?$"
RECV_WINDOW_RE = re.compile(RECV_WINDOW_LEGAL)
AUTH_PARAMS = ("timestamp", "recvWindow", "signature")


def strip_signature(raw: str) -> str:
    """`raw` (a query string or form body) without its `signature=...` pair(s)."""
    if "signature" not in raw:
        return raw
    return "&".join(p for p in raw.split("&") if p.partition("=")[0] != "signature")


@dataclass(frozen=True, slots=True)
class Signed:
    """An authenticated request: the account and its (not yet fully read) parameters."""

    account: Account
    params: TradeParams


def _timestamp(text: str) -> int:
    if not INT_RE.match(text):
        raise bad_param("timestamp", INT_LEGAL)
    value = int(text)
    return value // 1000 if value >= MICROSECONDS_FROM else value


def _recv_window(text: str | None) -> float:
    if text is None:
        return DEFAULT_RECV_WINDOW
    if not RECV_WINDOW_RE.match(text):
        raise bad_param("recvWindow", RECV_WINDOW_LEGAL)
    value = float(text)
    if value > MAX_RECV_WINDOW:
        raise ApiError(400, -1102, f"'recvWindow' contains unexpected value. Cannot be greater "
                                   f"than {MAX_RECV_WINDOW}.")
    return value


def check_timing(timestamp: int, recv_window: float, server_ms: int) -> None:
    """-1021 unless the request is within its recvWindow of the server clock."""
    if timestamp >= server_ms + AHEAD_MS:
        raise ApiError(400, -1021, "Timestamp for this request was 1000ms ahead of the "
                                   "server's time.")
    if server_ms - timestamp > recv_window:
        raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")


async def authenticate(request: web.Request, state: "EmulatorState") -> Signed:
    """Check the API key, parameters, timing and signature of a signed request."""
    key = request.headers.get(KEY_HEADER, "")
    if not KEY_RE.match(key):
        raise ApiError(401, -2014, "API-key format invalid.")
    entry = state.exchange.keys.get(key)
    if entry is None:
        raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
    raw_query = request.raw_path.partition("?")[2]
    raw_body = (await request.read()).decode("latin-1") if request.body_exists else ""
    params = TradeParams(merge_sources(raw_query, raw_body))
    stamp_text = params.get("timestamp")
    if stamp_text is None:
        raise missing_param("timestamp")
    signature = params.get("signature")
    if signature is None:
        raise missing_param("signature")
    timestamp = _timestamp(stamp_text)
    recv_window = _recv_window(params.get("recvWindow"))
    if state.config.timestamp_check:
        check_timing(timestamp, recv_window, state.server_clock.base_ms())
    payload = (strip_signature(raw_query) + strip_signature(raw_body)).encode("latin-1",
                                                                               "replace")
    if not entry.verifier.verify(payload, signature):
        raise ApiError(400, -1022, "Signature for this request is not valid.")
    return Signed(entry.account, params)
