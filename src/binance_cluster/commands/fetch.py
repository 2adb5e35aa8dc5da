"""Download klines from Binance's public API (or a local exchange-sim) into a store.

Resumes after the last stored candle of each symbol, pages 1000 candles per request, never
stores the still-open candle, honours the exchange's weight limit and Retry-After, retries
network errors and 5xx answers with capped backoff, and warns about gaps the exchange itself
has. All symbols are checked against exchangeInfo before anything is downloaded. Under
mpirun the symbols are split among ranks and each rank writes only its own symbols' files.

  binance-cluster fetch --store data/spot --symbols BTCUSDT,ETHUSDT --start 2024-01-01
  binance-cluster fetch --store data/copy --symbols BTCUSDT --interval 1h \\
      --start 2025-05-04 --end 2025-06-01 --base-url http://127.0.0.1:8765
  mpirun -n 4 binance-cluster fetch --store data/spot --symbols BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT \\
      --start 2024-01-01
"""

from __future__ import annotations

from binance_cluster.table import format_table

import json

NAME = "fetch"
HELP = "download klines from Binance (or exchange-sim) into a store, resuming and rate-limited"


def add_arguments(p) -> None:
    p.add_argument("--store", required=True, help="store directory (created when missing)")
    p.add_argument("--symbols", required=True, help="comma-separated symbols, e.g. BTCUSDT,ETHUSDT")
    p.add_argument("--interval", default="1m", help="kline interval (default: 1m)")
    p.add_argument("--start", required=True,
                   help="first candle to fetch, UTC (YYYY-MM-DD[THH:MM] or ms); a symbol "
                        "already stored resumes after its last candle")
    p.add_argument("--end", default=None, help="stop before this UTC time (default: now)")
    p.add_argument("--base-url", default="https://api.binance.com",
                   help="exchange base URL (default: https://api.binance.com)")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds before a request is abandoned and retried (default: 10)")
    p.add_argument("--attempts", type=int, default=6,
                   help="tries per request on network errors and 5xx (default: 6)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _summary_rows(outcome) -> list[dict]:
    from binance_cluster.types import format_time_ms

    rows = []
    for result in outcome.results:
        r = result.value
        if r is None:
            rows.append({"symbol": result.name, "ok": False, "error": result.error,
                         "rank": result.rank})
            continue
        rows.append({"symbol": r.symbol, "ok": True, "interval": r.interval, "added": r.added,
                     "first": r.first, "last": r.last, "first_utc": format_time_ms(r.first),
                     "last_utc": format_time_ms(r.last), "stored_rows": r.stored_rows,
                     "gaps": r.gaps, "missing": r.missing, "largest_gap": r.largest_gap,
                     "requests": r.requests, "retries": r.retries,
                     "rate_limit_waits": r.rate_limit_waits, "throttle_waits": r.throttle_waits,
                     "rank": r.rank, "pid": r.pid, "seconds": round(r.seconds, 3)})
    return rows


def _print_table(rows: list[dict]) -> None:
    header = ("symbol", "new", "first new (UTC)", "last new (UTC)", "stored", "gaps (missing)",
              "requests", "retries", "waits", "rank")
    table = [header]
    for r in rows:
        if not r["ok"]:
            table.append((r["symbol"], "FAILED", "-", "-", "-", "-", "-", "-", "-", str(r["rank"])))
            continue
        table.append((r["symbol"], f"{r['added']:,}", r["first_utc"], r["last_utc"],
                      f"{r['stored_rows']:,}",
                      f"{r['gaps']} ({r['missing']})" if r["gaps"] else "-",
                      str(r["requests"]), str(r["retries"]),
                      str(r["rate_limit_waits"] + r["throttle_waits"]), str(r["rank"])))
    print(format_table(table, right=set(range(len(header))) - {0, 2, 3}))


def run(args) -> int:
    from binance_cluster.errors import ConfigError, UnitError
    from binance_cluster.candles.fetch import FetchConfig, run_fetch
    from binance_cluster.exchange.transport import RetryPolicy
    from binance_cluster.parallel import get_comm, on_root
    from binance_cluster.types import parse_time_ms

    symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip())
    if args.attempts < 1:
        raise ConfigError("--attempts must be at least 1")
    config = FetchConfig(
        store=args.store, symbols=symbols, interval=args.interval,
        start_ms=parse_time_ms(args.start, "--start"),
        end_ms=parse_time_ms(args.end, "--end") if args.end else None,
        base_url=args.base_url, timeout_s=args.timeout, retry=RetryPolicy(attempts=args.attempts))
    comm = get_comm()
    outcome = run_fetch(config, comm, show_progress=not args.no_progress, debug=args.debug)
    if comm.rank == 0:
        rows = _summary_rows(outcome)
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            _print_table(rows)
            total = sum(r["added"] for r in rows if r["ok"])
            print(f"{len(rows)} symbols, {total:,} new candles, {comm.size} rank(s)")

    def check() -> None:
        failed = outcome.failures
        if failed:
            lines = [f"{r.name}: {r.error.splitlines()[0] if r.error else 'failed'}"
                     for r in failed]
            raise UnitError(f"fetch: {len(failed)} of {len(outcome.results)} symbols failed\n"
                            + "\n".join(lines))

    on_root(comm, check)
    return 0
