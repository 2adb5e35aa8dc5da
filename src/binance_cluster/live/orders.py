"""Sending one order intent of the live loop exactly once: the one path every order takes.

`send_intent` journals the intent (with its deterministic client id) BEFORE it is sent and the
exchange's answer, its fills or its error after. An intent the journal already holds (the same
decision re-derived after a restart, a protective order planned again) is first asked for by
its client id: when the exchange has it, that order is the answer and nothing is sent; only
when the exchange says it does not have it is it sent again, under the same id. So no order
whose fate is unknown is ever sent without asking, and a client id the exchange would accept
again once its first order is done (Binance does) is never placed twice.

Used by the loop's entries (`LiveLoop.send`) and the protective exits (`exits.carry_out`).
"""

from __future__ import annotations

from binance_cluster.errors import ExchangeError
from binance_cluster.exchange.broker.base import Broker, Order, OrderRequest
from binance_cluster.exchange.broker.errors import OrderNotFoundError, OrderStatusUnknownError
from binance_cluster.live.crash import crash_point
from binance_cluster.live.journal import Journal


def send_intent(request: OrderRequest, purpose: str, bar_ms: int, broker: Broker,
                journal: Journal) -> Order:
    """Journal `request` (decided on the bar opening at `bar_ms` for `purpose`), send it unless
    the exchange already has it, journal the answer; the exchange's order.

    Raises what the exchange answered: `OrderStatusUnknownError` (sent, but neither the answer
    nor a query came back: the intent stays unknown in the journal, and
    `reconcile.resolve_unknown` asks for it before the next bar), any other `ExchangeError`
    after journaling it as this intent's error (a refusal: not placed). A failed look-up of a
    journaled intent raises before anything is sent or journaled."""
    if not journal.record_intent(request, purpose, bar_ms):
        try:
            order = broker.query(request.symbol, request.client_id)
        except OrderNotFoundError:
            # sent again under its id: its fate unknown until the answer
            journal.record_resend(request.client_id)
        else:
            journal.record_answer(order)
            return order
    crash_point("before-send")
    try:
        order = broker.submit(request)
    except OrderStatusUnknownError:
        raise
    except ExchangeError as exc:
        journal.record_error(request.client_id, str(exc), getattr(exc, "code", 0) or 0)
        raise
    crash_point("after-send")
    journal.record_answer(order)
    return order
