"""Start-up reconciliation: bring the journal up to date with the exchange before trading.

Run on rank 0 when a live job starts (first start or restart after a crash), before any new
decision:

1. every intent whose fate is unknown (journaled, then the process died before the answer)
   is queried by its client id, never re-sent blindly: an order the exchange has is journaled
   with its status and fills; one it does not have is journaled as not placed (the decision
   that made it may send it again, under the same client id);
2. every intent last seen open (a resting limit, an OCO protecting a position) is queried
   again: it may have filled while the bot was down; its fills are journaled;
3. the account's open orders that the journal never intended are reported, never touched
   (a person may trade the same account);
4. each traded symbol's position derived from the journal is compared with the account's
   balance of its base asset; a journal holding more than the account is a mismatch.

Then `live.exits` gives every open position its protective order back (`journal_holdings`,
`resting_exits`, `restore`), on the journal this pass brought up to date.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from binance_cluster.exchange.broker.base import Broker, Order
from binance_cluster.exchange.broker.errors import OrderNotFoundError
from binance_cluster.exchange.broker.ids import list_id_of
from binance_cluster.live.journal import Journal

log = logging.getLogger(__name__)

NOT_PLACED = "not on the exchange at start-up"


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """What the start-up check found and journaled."""

    resolved: tuple[tuple[str, str], ...] = ()     # (client id, status) of unknown intents found
    not_placed: tuple[str, ...] = ()               # unknown intents the exchange never received
    refreshed: tuple[tuple[str, str], ...] = ()    # (client id, status) of open intents re-queried
    new_fills: int = 0
    foreign_orders: tuple[Order, ...] = ()         # open orders the journal never intended
    mismatches: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        """One line for the job's output: what the start-up check found."""
        return (f"reconciled with the exchange: {len(self.resolved)} unanswered order(s) found, "
                f"{len(self.not_placed)} never placed, {len(self.refreshed)} open order(s) changed, "
                f"{self.new_fills} fill(s) journaled, {len(self.foreign_orders)} foreign order(s), "
                f"{len(self.mismatches)} mismatch(es)")

    def lines(self) -> list[str]:
        """One log line per finding."""
        out = [f"{cid}: sent before the restart, the exchange has it {status}" for cid, status in self.resolved]
        out += [f"{cid}: journaled but never placed (may be sent again with the same id)" for cid in self.not_placed]
        out += [f"{cid}: was open, now {status}" for cid, status in self.refreshed]
        out += [f"{o.symbol} {o.client_id}: open order not placed by this job (left alone)"
                for o in self.foreign_orders]
        out += list(self.mismatches)
        if self.new_fills:
            out.append(f"{self.new_fills} fill(s) journaled")
        return out


def resolve_unknown(journal: Journal, broker: Broker) -> tuple[list, list, int]:
    """Step 1: query every intent whose fate is unknown by its client id and journal what the
    exchange says; returns ((client id, status) found, client ids never placed, new fills).
    The live loop runs it before every bar too: a submit whose outcome the broker could not
    establish (`OrderStatusUnknownError`) is left unknown, never taken for refused."""
    resolved, not_placed = [], []
    fills = 0
    for intent in journal.unknown_intents():
        try:
            order = broker.query(intent.symbol, intent.client_id)
        except OrderNotFoundError:
            journal.record_error(intent.client_id, NOT_PLACED, -2013)
            not_placed.append(intent.client_id)
            continue
        fills += journal.record_answer(order)
        resolved.append((intent.client_id, order.status))
    return resolved, not_placed, fills


def reconcile(journal: Journal, broker: Broker, symbols: list[str]) -> Reconciliation:
    """Query what the journal does not know yet, journal it, and report the rest (see above)."""
    resolved, not_placed, fills = resolve_unknown(journal, broker)
    refreshed = []
    for intent in journal.open_intents():
        order = broker.query(intent.symbol, intent.client_id)
        fills += journal.record_answer(order)
        if order.status != intent.status:
            refreshed.append((intent.client_id, order.status))
    known = {i.client_id for i in journal.intents()}
    foreign = []
    for symbol in symbols:
        for order in broker.open_orders(symbol):
            if order.client_id not in known and list_id_of(order.client_id) not in known:
                foreign.append(order)
    balances = broker.balances()
    mismatches = []
    for symbol, position in journal.positions().items():
        balance = balances.get(position.base_asset)
        held = balance.total if balance is not None else Decimal(0)
        if position.quantity > held:
            mismatches.append(f"{symbol}: the journal holds {position.quantity.normalize():f} "
                              f"{position.base_asset}, the account {held.normalize():f}")
    result = Reconciliation(tuple(resolved), tuple(not_placed), tuple(refreshed), fills, tuple(foreign),
                            tuple(mismatches))
    for line in result.lines():
        log.warning("reconcile: %s", line)
    return result
