"""Show a live or paper run from its journal: positions, open orders, today's PnL, latencies.

The journal is opened read-only, so `status` can run while the live job writes.

  binance-cluster status --journal results/paper/journal.sqlite
  binance-cluster status --journal results/paper/journal.sqlite --bars 20 --json

Positions are derived from the journaled fills (average-cost basis, commissions in the asset
the exchange took them in). "Today" is the UTC day of the newest handled bar (for a replay
against the emulator, the replay's day), or of the wall clock before any bar was handled.
"""

from __future__ import annotations

import json

from binance_cluster.table import format_table

NAME = "status"
HELP = "show positions, open orders, today's PnL and latencies from a live journal"
DAY_MS = 86_400_000


def _amount(value) -> str:
    """A Decimal amount as Binance shows it: at most 8 decimals, trailing zeros cut."""
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def add_arguments(p) -> None:
    p.add_argument("--journal", required=True, help="the live job's journal file (SQLite)")
    p.add_argument("--bars", type=int, default=10, help="how many recent bars to show (default: 10)")
    p.add_argument("--json", action="store_true", help="print JSON for machines")


def run(args) -> int:
    import time

    from binance_cluster.live.journal import Journal
    from binance_cluster.types import format_time_ms

    with Journal(args.journal, readonly=True) as journal:
        bars = journal.bars(last=max(args.bars, 0))
        newest = bars[-1].bar_ms if bars else int(time.time() * 1000)
        day = newest - newest % DAY_MS
        positions = [p for p in journal.positions().values() if p.quantity != 0]
        open_orders = journal.open_intents()
        unknown = journal.unknown_intents()
        today = journal.realised_since(day)
        meta = journal.meta()
    if args.json:
        print(json.dumps({
            "job": meta.get("job"), "day_utc": format_time_ms(day)[:10], "realised_today": str(today),
            "positions": [{"symbol": p.symbol, "quantity": str(p.quantity), "avg_cost":
                           None if p.avg_cost is None else str(p.avg_cost), "realised": str(p.realised)}
                          for p in positions],
            "open_orders": [{"client_id": i.client_id, "symbol": i.symbol, "side": i.side, "type": i.type,
                             "status": i.status} for i in open_orders],
            "unanswered": [i.client_id for i in unknown],
            "bars": [{"bar": format_time_ms(b.bar_ms), "latency_ms": b.latency_ms, "orders": b.orders,
                      "equity": None if b.equity is None else str(b.equity)} for b in bars]}, indent=1))
        return 0
    print(f"journal {args.journal} (job {meta.get('job') or '?'})")
    print(f"realised PnL on {format_time_ms(day)[:10]} (UTC): {_amount(today)}")
    if positions:
        rows = [("symbol", "quantity", "avg cost", "realised")] + [
            (p.symbol, _amount(p.quantity), "-" if p.avg_cost is None else _amount(p.avg_cost),
             _amount(p.realised)) for p in positions]
        print(format_table(rows, right={1, 2, 3}))
    else:
        print("no open positions")
    if open_orders:
        rows = [("client id", "symbol", "side", "type", "status")] + [
            (i.client_id, i.symbol, i.side, i.type, i.status) for i in open_orders]
        print(format_table(rows))
    else:
        print("no open orders")
    if unknown:
        print(f"{len(unknown)} order(s) sent without an answer yet (checked at the next start): "
              + ", ".join(i.client_id for i in unknown))
    if bars:
        rows = [("bar (UTC)", "latency", "orders", "equity")] + [
            (format_time_ms(b.bar_ms), f"{b.latency_ms} ms", str(b.orders),
             "-" if b.equity is None else _amount(b.equity)) for b in bars]
        print(format_table(rows, right={1, 2, 3}))
    else:
        print("no bars handled yet")
    return 0
