"""Deterministic client order ids: the same decision always gets the same id.

`client_order_id(job, symbol, bar_ms, intent)` hashes the job name, the symbol, the open time
of the bar the decision was taken on and the intent (entry, exit, stop, ...) into
`bc<intent>-<20 hex digits>` (at most 31 characters; Binance allows `^[a-zA-Z0-9-_]{1,36}$`).
A process that restarts and re-derives a decision re-derives its id, so the exchange (or the
broker's query-before-resend logic) recognises an order that was already sent. The two legs
of an OCO list get the list id plus `-tp` (take profit, the leg above) and `-sl` (stop loss,
the leg below).
"""

from __future__ import annotations

import hashlib
import re

from binance_cluster.exchange.broker.errors import OrderRequestError

CLIENT_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,36}$")
LEG_SUFFIXES = ("-tp", "-sl")
MAX_LIST_ID = 36 - max(len(s) for s in LEG_SUFFIXES)
_TAG_RE = re.compile(r"[^a-zA-Z0-9]")


def client_order_id(job: str, symbol: str, bar_ms: int, intent: str) -> str:
    """The id of the order `intent` for `symbol` decided on the bar opening at `bar_ms`."""
    if not job or not symbol or not intent:
        raise OrderRequestError("client order id: job, symbol and intent must not be empty")
    text = "\x1f".join((job, symbol.upper(), str(int(bar_ms)), intent))
    digest = hashlib.sha256(text.encode()).hexdigest()[:20]
    tag = _TAG_RE.sub("", intent)[:8] or "o"
    return f"bc{tag}-{digest}"


def check_client_id(client_id: str, what: str = "client_id") -> str:
    """`client_id` if Binance accepts it, else OrderRequestError naming the field."""
    if not isinstance(client_id, str) or not CLIENT_ID_RE.match(client_id):
        raise OrderRequestError(f"{what} {client_id!r} must match ^[a-zA-Z0-9-_]{{1,36}}$")
    return client_id


def leg_ids(list_id: str) -> tuple[str, str]:
    """(take-profit leg id, stop-loss leg id) of the OCO list `list_id`."""
    check_client_id(list_id, "OCO list client id")
    if len(list_id) > MAX_LIST_ID:
        raise OrderRequestError(f"OCO list client id {list_id!r} is longer than {MAX_LIST_ID} "
                                "characters (its legs add a 3-character suffix)")
    return list_id + LEG_SUFFIXES[0], list_id + LEG_SUFFIXES[1]


def list_id_of(leg_id: str) -> str | None:
    """The OCO list client id a leg id belongs to (None when `leg_id` is no leg id)."""
    for suffix in LEG_SUFFIXES:
        if leg_id.endswith(suffix) and len(leg_id) > len(suffix):
            return leg_id[:-len(suffix)]
    return None
