"""The live journal: one SQLite file (WAL) on rank 0 recording everything the live loop does.

What is written, and when:

- `intents`: every order the loop means to send, with its deterministic client id, BEFORE it
  is sent (committed and synced: a crash after the send still finds the intent);
- `answers`: every answer the exchange gave for a client id (order status, executed
  quantity, quote), and every error, AFTER the call returns; an intent sent again (it was
  not placed before a restart) gets an empty answer first, which makes its fate unknown
  until the exchange answers;
- `fills`: every trade of the account, keyed by (symbol, trade id), so recording the same
  fill twice (after a restart, from two queries) keeps one row;
- `decisions`: every decision with the bar time of the inputs it was taken on (a bar's
  decisions in one transaction, committed before any of its orders is sent);
- `refusals`: every order a risk rule refused, with the rule;
- `bars`: one row per bar handled: candle close, decision and last-order times, orders,
  equity, symbols skipped and why.

Positions and PnL are derived from fills, never from intentions (`positions`). Money is
stored as decimal text and computed in `Decimal`. The journal never holds API keys: nothing
in its interface takes one. Readers (`binance-cluster status`) open it read-only while the
loop writes (WAL).
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from binance_cluster.errors import BinanceClusterError, InputError
from binance_cluster.exchange.broker.base import OPEN_STATUSES, Fill, Order, OrderRequest

SCHEMA_VERSION = 1
ZERO = Decimal(0)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS symbols (symbol TEXT PRIMARY KEY, base_asset TEXT NOT NULL,
    quote_asset TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS intents (client_id TEXT PRIMARY KEY, symbol TEXT NOT NULL,
    side TEXT NOT NULL, type TEXT NOT NULL, quantity TEXT, quote_amount TEXT, price TEXT,
    stop_price TEXT, stop_limit_price TEXT, purpose TEXT NOT NULL, bar_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS answers (id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL, time_ms INTEGER NOT NULL, status TEXT, order_id INTEGER,
    executed_qty TEXT, cumulative_quote TEXT, error TEXT, code INTEGER);
CREATE INDEX IF NOT EXISTS answers_client ON answers (client_id, id);
CREATE TABLE IF NOT EXISTS fills (symbol TEXT NOT NULL, trade_id INTEGER NOT NULL,
    order_id INTEGER NOT NULL, side TEXT NOT NULL, price TEXT NOT NULL, qty TEXT NOT NULL,
    quote_qty TEXT NOT NULL, commission TEXT NOT NULL, commission_asset TEXT NOT NULL,
    time_ms INTEGER NOT NULL, is_maker INTEGER NOT NULL, PRIMARY KEY (symbol, trade_id));
CREATE TABLE IF NOT EXISTS decisions (id INTEGER PRIMARY KEY AUTOINCREMENT,
    bar_ms INTEGER NOT NULL, symbol TEXT NOT NULL, action TEXT NOT NULL,
    inputs_bar_ms INTEGER NOT NULL, score REAL, detail TEXT NOT NULL, time_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS refusals (id INTEGER PRIMARY KEY AUTOINCREMENT,
    bar_ms INTEGER NOT NULL, symbol TEXT NOT NULL, rule TEXT NOT NULL, detail TEXT NOT NULL,
    time_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bars (bar_ms INTEGER PRIMARY KEY, close_ms INTEGER NOT NULL,
    decided_ms INTEGER NOT NULL, last_order_ms INTEGER, orders INTEGER NOT NULL,
    equity TEXT, skipped TEXT NOT NULL);
"""

_INTENT_FIELDS = ("quantity", "quote_amount", "price", "stop_price", "stop_limit_price")


class NotAJournalError(InputError):
    """A file given as a journal that is missing, not SQLite, or of another schema version."""


class JournalConflictError(BinanceClusterError):
    """An intent re-recorded under an existing client id with different order fields."""


@dataclass(frozen=True, slots=True)
class Intent:
    """An order intent as journaled, with the latest exchange answer for its client id."""

    client_id: str
    symbol: str
    side: str
    type: str
    purpose: str
    bar_ms: int
    created_ms: int
    fields: dict
    status: str | None = None      # the latest answer's order status; None: no answer yet
    error: str | None = None       # the latest answer's error, if it was one

    @property
    def fate_known(self) -> bool:
        """Whether the exchange has answered for this client id (an order status or an error)."""
        return self.status is not None or self.error is not None


@dataclass(frozen=True, slots=True)
class Position:
    """A symbol's holding derived from its fills: quantity held, average cost, realised PnL."""

    symbol: str
    base_asset: str
    quote_asset: str
    quantity: Decimal
    cost: Decimal                  # quote paid for what is held (commissions in quote included)
    realised: Decimal              # quote PnL of what was sold
    other_fees: dict = field(default_factory=dict)   # commissions in other assets (BNB), by asset

    @property
    def avg_cost(self) -> Decimal | None:
        """Quote paid per unit held; None when nothing is held."""
        return self.cost / self.quantity if self.quantity > 0 else None


@dataclass(frozen=True, slots=True)
class BarRecord:
    """One handled bar: when its candle closed, when the loop decided and sent its last order."""

    bar_ms: int
    close_ms: int
    decided_ms: int
    last_order_ms: int | None
    orders: int
    equity: Decimal | None
    skipped: dict

    @property
    def latency_ms(self) -> int:
        """From the candle's close to the last order sent (or to the decision if none was sent)."""
        return (self.last_order_ms if self.last_order_ms is not None else self.decided_ms) - self.close_ms


def _text(value) -> str | None:
    return None if value is None else format(Decimal(value), "f")


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _now_ms() -> int:
    return int(time.time() * 1000)


class Journal:
    """The live loop's journal (see the module docstring); use as a context manager."""

    def __init__(self, path: str | Path, job: str | None = None, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if readonly:
            if not self.path.is_file():
                raise NotAJournalError(f"{self.path}: journal not found")
            uri = f"file:{self.path.absolute()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None)
        try:
            self._open(job)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise NotAJournalError(f"{self.path}: not a journal ({exc})") from None

    def _open(self, job: str | None) -> None:
        if self.readonly:
            names = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "meta" not in names:
                raise NotAJournalError(f"{self.path}: not a binance-cluster journal (no meta table)")
        else:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('created_ms', ?)", (str(_now_ms()),))
            if job is not None:
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('job', ?)", (job,))
        version = self.meta().get("schema_version")
        if version != str(SCHEMA_VERSION):
            raise NotAJournalError(f"{self.path}: journal schema version {version}, this program "
                                   f"reads version {SCHEMA_VERSION}")
        stored_job = self.meta().get("job")
        if job is not None and stored_job != job:
            raise NotAJournalError(f"{self.path}: journal of job {stored_job!r}, not {job!r}")

    def close(self) -> None:
        """Close the database (every record is already committed)."""
        self._db.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def meta(self) -> dict[str, str]:
        """The journal's metadata: schema_version, created_ms, job."""
        return dict(self._db.execute("SELECT key, value FROM meta"))

    # -- writing -------------------------------------------------------------------------------

    def record_symbol(self, symbol: str, base_asset: str, quote_asset: str) -> None:
        """The assets of a traded symbol (positions need to know which commission is base)."""
        self._db.execute("INSERT OR REPLACE INTO symbols VALUES (?, ?, ?)", (symbol, base_asset, quote_asset))

    def record_intent(self, request: OrderRequest, purpose: str, bar_ms: int,
                      time_ms: int | None = None) -> bool:
        """Journal an order before it is sent; False when the same intent is already there.

        The same decision re-derived after a restart has the same client id and fields: a
        no-op. The same client id with different fields is a JournalConflictError.
        """
        values = tuple(_text(getattr(request, name)) for name in _INTENT_FIELDS)
        row = self._db.execute("SELECT symbol, side, type, quantity, quote_amount, price, stop_price, "
                               "stop_limit_price, purpose, bar_ms FROM intents WHERE client_id = ?",
                               (request.client_id,)).fetchone()
        mine = (request.symbol, request.side, request.type, *values, purpose, int(bar_ms))
        if row is not None:
            if tuple(row) != mine:
                raise JournalConflictError(f"{self.path}: client id {request.client_id} is journaled "
                                           f"as {row}, not {mine}")
            return False
        self._db.execute("INSERT INTO intents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (request.client_id, *mine, time_ms if time_ms is not None else _now_ms()))
        return True

    def record_answer(self, order: Order, time_ms: int | None = None) -> int:
        """The exchange's view of an order after a call returns: its status (and, for an OCO
        list, each leg's under the leg's client id) and the fills it carries; returns how many
        fills were new."""
        when = time_ms if time_ms is not None else _now_ms()
        for o in (order, *order.legs):
            self._db.execute("INSERT INTO answers (client_id, time_ms, status, order_id, executed_qty, "
                             "cumulative_quote) VALUES (?, ?, ?, ?, ?, ?)",
                             (o.client_id, when, o.status, o.order_id, _text(o.executed_qty),
                              _text(o.cumulative_quote)))
        return self.record_fills(list(order.fills)) if order.fills else 0

    def record_resend(self, client_id: str, time_ms: int | None = None) -> None:
        """A journaled intent is sent again (the exchange never got it): until its next answer
        its fate is unknown again, so a crash before that answer has it queried at restart."""
        self._db.execute("INSERT INTO answers (client_id, time_ms) VALUES (?, ?)",
                         (client_id, time_ms if time_ms is not None else _now_ms()))

    def record_error(self, client_id: str, message: str, code: int = 0, time_ms: int | None = None) -> None:
        """An exchange error answered for a client id (the order was not placed)."""
        self._db.execute("INSERT INTO answers (client_id, time_ms, error, code) VALUES (?, ?, ?, ?)",
                         (client_id, time_ms if time_ms is not None else _now_ms(), message, int(code)))

    def record_fills(self, fills: list[Fill]) -> int:
        """Journal fills (each (symbol, trade id) once); returns how many were new."""
        before = self._db.total_changes
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(f.symbol, f.trade_id, f.order_id, f.side, _text(f.price), _text(f.qty),
                  _text(f.quote_qty), _text(f.commission), f.commission_asset, f.time_ms,
                  int(f.is_maker)) for f in fills])
        return self._db.total_changes - before

    @contextmanager
    def _transaction(self):
        """One transaction: committed (and synced) when the block ends, rolled back if it fails."""
        self._db.execute("BEGIN")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def record_decision(self, bar_ms: int, symbol: str, action: str, inputs_bar_ms: int,
                        score: float | None = None, detail: dict | None = None,
                        time_ms: int | None = None) -> None:
        """A decision taken at `bar_ms` on inputs whose newest bar opened at `inputs_bar_ms`."""
        self.record_decisions([(bar_ms, symbol, action, inputs_bar_ms, score, detail)], time_ms)

    def record_decisions(self, decisions: list[tuple], time_ms: int | None = None) -> None:
        """Several decisions (`record_decision`'s arguments, `bar_ms` to `detail`, as tuples)
        in one transaction: one synced commit for a bar's decisions, all kept or none."""
        when = time_ms if time_ms is not None else _now_ms()
        rows = [(int(bar_ms), symbol, action, int(inputs_bar_ms), score,
                 json.dumps(detail or {}, sort_keys=True), when)
                for bar_ms, symbol, action, inputs_bar_ms, score, detail in decisions]
        if not rows:
            return
        with self._transaction():
            self._db.executemany("INSERT INTO decisions (bar_ms, symbol, action, inputs_bar_ms, "
                                 "score, detail, time_ms) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def record_refusal(self, bar_ms: int, symbol: str, rule: str, detail: str,
                       time_ms: int | None = None) -> None:
        """An order a risk rule refused."""
        self._db.execute("INSERT INTO refusals (bar_ms, symbol, rule, detail, time_ms) VALUES (?, ?, ?, ?, ?)",
                         (int(bar_ms), symbol, rule, detail, time_ms if time_ms is not None else _now_ms()))

    def record_bar(self, bar: BarRecord) -> None:
        """One handled bar (a bar handled again after a restart replaces its row)."""
        self._db.execute("INSERT OR REPLACE INTO bars VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (bar.bar_ms, bar.close_ms, bar.decided_ms, bar.last_order_ms, bar.orders,
                          _text(bar.equity), json.dumps(bar.skipped, sort_keys=True)))

    # -- reading -------------------------------------------------------------------------------

    def intents(self) -> list[Intent]:
        """Every intent, oldest first, with its latest answer."""
        rows = self._db.execute(
            "SELECT i.client_id, i.symbol, i.side, i.type, i.purpose, i.bar_ms, i.created_ms, "
            "i.quantity, i.quote_amount, i.price, i.stop_price, i.stop_limit_price, a.status, a.error "
            "FROM intents i LEFT JOIN answers a ON a.id = "
            "(SELECT MAX(id) FROM answers WHERE client_id = i.client_id) ORDER BY i.created_ms, i.rowid")
        out = []
        for r in rows:
            fields = {name: _dec(v) for name, v in zip(_INTENT_FIELDS, r[7:12]) if v is not None}
            out.append(Intent(client_id=r[0], symbol=r[1], side=r[2], type=r[3], purpose=r[4],
                              bar_ms=r[5], created_ms=r[6], fields=fields, status=r[12], error=r[13]))
        return out

    def unknown_intents(self) -> list[Intent]:
        """Intents the exchange never answered: query them by client id, never re-send blindly."""
        return [i for i in self.intents() if not i.fate_known]

    def open_intents(self) -> list[Intent]:
        """Intents whose latest answer says the order is still open."""
        return [i for i in self.intents() if i.status in OPEN_STATUSES]

    def fills(self, symbol: str | None = None, since_ms: int | None = None) -> list[Fill]:
        """Journaled fills, oldest first (by time, then trade id)."""
        sql = "SELECT * FROM fills WHERE 1=1"
        args: list = []
        if symbol is not None:
            sql += " AND symbol = ?"
            args.append(symbol)
        if since_ms is not None:
            sql += " AND time_ms >= ?"
            args.append(int(since_ms))
        rows = self._db.execute(sql + " ORDER BY time_ms, trade_id", args)
        return [Fill(symbol=r[0], trade_id=r[1], order_id=r[2], side=r[3], price=Decimal(r[4]),
                     qty=Decimal(r[5]), quote_qty=Decimal(r[6]), commission=Decimal(r[7]),
                     commission_asset=r[8], time_ms=r[9], is_maker=bool(r[10])) for r in rows]

    def order_ids(self, client_ids) -> set[tuple[str, int]]:
        """(symbol, exchange order id) of the journaled intents `client_ids` that were placed."""
        ids = list(client_ids)
        if not ids:
            return set()
        marks = ", ".join("?" * len(ids))
        rows = self._db.execute(f"SELECT DISTINCT i.symbol, a.order_id FROM answers a JOIN intents i "
                                f"ON i.client_id = a.client_id WHERE a.order_id IS NOT NULL "
                                f"AND a.client_id IN ({marks})", ids)
        return {(r[0], int(r[1])) for r in rows}

    def last_trade_id(self, symbol: str) -> int | None:
        """The newest journaled trade id of `symbol` (where a fill query resumes)."""
        row = self._db.execute("SELECT MAX(trade_id) FROM fills WHERE symbol = ?", (symbol,)).fetchone()
        return row[0]

    def assets(self) -> dict[str, tuple[str, str]]:
        """(base, quote) asset of every recorded symbol."""
        return {r[0]: (r[1], r[2]) for r in self._db.execute("SELECT * FROM symbols")}

    def positions(self, until_ms: int | None = None) -> dict[str, Position]:
        """Every traded symbol's position derived from its fills (up to `until_ms` if given)."""
        assets = self.assets()
        out: dict[str, Position] = {}
        for symbol in sorted({f.symbol for f in self.fills()}):
            if symbol not in assets:
                raise NotAJournalError(f"{self.path}: fills of {symbol} but its assets were never recorded")
            fills = [f for f in self.fills(symbol) if until_ms is None or f.time_ms <= until_ms]
            out[symbol] = position_from_fills(symbol, *assets[symbol], fills)
        return out

    def realised_since(self, since_ms: int) -> Decimal:
        """Quote PnL realised by sells at or after `since_ms` (average-cost basis), all symbols."""
        return sum((realised_since(self.fills(symbol), symbol, base, quote, since_ms)
                    for symbol, (base, quote) in self.assets().items()), ZERO)

    def bars(self, last: int | None = None) -> list[BarRecord]:
        """Handled bars, oldest first (only the newest `last` if given)."""
        sql = "SELECT * FROM bars ORDER BY bar_ms"
        rows = list(self._db.execute(sql))
        if last is not None:
            rows = rows[-last:] if last > 0 else []
        return [BarRecord(bar_ms=r[0], close_ms=r[1], decided_ms=r[2], last_order_ms=r[3], orders=r[4],
                          equity=_dec(r[5]), skipped=json.loads(r[6])) for r in rows]

    def refusals(self) -> list[tuple[int, str, str, str]]:
        """(bar_ms, symbol, rule, detail) of every refused order, oldest first."""
        return [tuple(r) for r in self._db.execute("SELECT bar_ms, symbol, rule, detail FROM refusals ORDER BY id")]

    def decisions(self) -> list[dict]:
        """Every decision, oldest first."""
        rows = self._db.execute("SELECT bar_ms, symbol, action, inputs_bar_ms, score, detail FROM decisions "
                                "ORDER BY id")
        return [dict(bar_ms=r[0], symbol=r[1], action=r[2], inputs_bar_ms=r[3], score=r[4],
                     detail=json.loads(r[5])) for r in rows]


def realised_since(fills: list[Fill], symbol: str, base: str, quote: str, since_ms: int) -> Decimal:
    """Quote PnL realised by the sells of `fills` (one symbol's, in time order) at or after
    `since_ms`, on an average-cost basis over all of them (`position_from_fills`)."""
    before = position_from_fills(symbol, base, quote, [f for f in fills if f.time_ms < since_ms])
    return position_from_fills(symbol, base, quote, fills).realised - before.realised


def position_from_fills(symbol: str, base: str, quote: str, fills: list[Fill]) -> Position:
    """A position from fills in time order, on an average-cost basis.

    A buy adds its quantity less a commission taken in the base asset, and its quote plus a
    commission taken in quote to the cost. A sell removes its quantity (plus a base
    commission) at the average cost and realises its quote less a quote commission minus that
    cost. Commissions in a third asset (BNB) are summed in `other_fees`, not priced.
    """
    held, cost, realised = ZERO, ZERO, ZERO
    other: dict[str, Decimal] = {}
    for f in fills:
        base_fee = f.commission if f.commission_asset == base else ZERO
        quote_fee = f.commission if f.commission_asset == quote else ZERO
        if f.commission_asset not in (base, quote) and f.commission:
            other[f.commission_asset] = other.get(f.commission_asset, ZERO) + f.commission
        if f.side == "BUY":
            held += f.qty - base_fee
            cost += f.quote_qty + quote_fee
        else:
            gone = f.qty + base_fee
            basis = cost * gone / held if held > 0 else ZERO
            realised += f.quote_qty - quote_fee - basis
            held -= gone
            cost -= basis
            if held <= 0:
                cost = ZERO
    return Position(symbol=symbol, base_asset=base, quote_asset=quote, quantity=held, cost=cost,
                    realised=realised, other_fees=other)

