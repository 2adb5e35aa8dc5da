"""Show what a candle store holds: per symbol and interval the rows, first and last candle
(UTC), gaps (count and largest) and file size.

  binance-cluster info --store data/demo
  binance-cluster info --store data/demo --json
"""

from __future__ import annotations

from binance_cluster.table import format_table

import json

NAME = "info"
HELP = "show the symbols, intervals, spans and gaps of a store"


def add_arguments(p) -> None:
    p.add_argument("--store", default="data", help="store directory (default: data)")
    p.add_argument("--symbols", default=None, help="comma-separated symbols (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON for machines")


def run(args) -> int:
    from binance_cluster.errors import InputError
    from binance_cluster.candles.store import CandleStore
    from binance_cluster.types import format_duration_ms, format_time_ms

    store = CandleStore(args.store)
    if not store.root.is_dir():
        raise InputError(f"{store.root}: store directory does not exist")
    symbols = args.symbols.split(",") if args.symbols else store.symbols()
    rows = [info for symbol in symbols for info in store.describe(symbol)]
    if args.json:
        print(json.dumps([{
            "symbol": r.symbol, "interval": r.interval, "rows": r.rows,
            "first": r.first, "last": r.last, "first_utc": format_time_ms(r.first),
            "last_utc": format_time_ms(r.last), "gaps": r.gaps,
            "largest_gap_ms": r.largest_gap_ms, "file_bytes": r.file_bytes,
            "synthetic": r.synthetic} for r in rows], indent=1))
        return 0
    if not rows:
        print(f"{store.root}: empty store")
        return 0
    header = ("symbol", "interval", "rows", "first (UTC)", "last (UTC)", "gaps", "largest gap", "size")
    table = [header] + [(
        r.symbol + (" *" if r.synthetic else ""), r.interval, f"{r.rows:,}", format_time_ms(r.first),
        format_time_ms(r.last), str(r.gaps), format_duration_ms(r.largest_gap_ms) if r.gaps else "-",
        f"{r.file_bytes / 1e6:.1f} MB") for r in rows]
    print(format_table(table, right={2, *range(5, len(header))}))
    total = sum(r.rows for r in rows)
    print(f"{len(set(r.symbol for r in rows))} symbols, {total:,} rows"
          + ("  (* synthetic data)" if any(r.synthetic for r in rows) else ""))
    return 0
