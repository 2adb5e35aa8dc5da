"""Resample stored candles to a longer interval and store the result beside them.

Only closed candles are written (a trailing bucket waits until its last source candle is
stored), so re-running after new source candles arrive adds exactly the new candles, and
re-running without them changes nothing. Symbols run in parallel under mpirun.

  binance-cluster resample --store data/demo --to 1h
  binance-cluster resample --store data/demo --to 1d --from 1h --symbols BTCUSDT,ETHUSDT
  mpirun -n 4 binance-cluster resample --store data/demo --to 15m
"""

from __future__ import annotations

from binance_cluster.table import format_table

from dataclasses import dataclass

NAME = "resample"
HELP = "aggregate stored candles into a longer interval (e.g. 1m to 1h)"


def add_arguments(p) -> None:
    p.add_argument("--store", default="data", help="store directory (default: data)")
    p.add_argument("--to", required=True, dest="interval", metavar="INTERVAL",
                   help="target interval: 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 1w")
    p.add_argument("--from", default="1m", dest="source", metavar="INTERVAL",
                   help="source interval (default: 1m)")
    p.add_argument("--symbols", default=None,
                   help="comma-separated symbols (default: every symbol with source candles)")


@dataclass(frozen=True, slots=True)
class Resampled:
    """One symbol's outcome: source rows read, candles added, already stored, stored in all."""

    symbol: str
    rank: int
    read: int
    added: int
    unchanged: int
    total: int


def resample_symbol(store, symbol: str, interval: str, source: str, rank: int = 0) -> Resampled:
    """Resample `symbol`'s stored `source` candles from the last stored `interval` candle on.

    Streams the source in blocks (`resample_blocks`), so memory stays flat on long series.
    """
    from binance_cluster.candles.resample import resample_blocks

    span = store.span(symbol, interval) if store.has(symbol, interval) else None
    start = None if span is None else span[1]  # re-derive the last stored candle as a check
    read = added = unchanged = 0
    with store.writer(symbol) as writer:
        for rows, candles in resample_blocks(store, symbol, interval, source, start=start):
            result = writer.append(interval, candles)
            read, added, unchanged = read + rows, added + result.added, unchanged + result.unchanged
    return Resampled(symbol, rank, read, added, unchanged, store.count(symbol, interval))


def run(args) -> int:
    import time

    from binance_cluster.errors import InputError, UnknownSymbolError
    from binance_cluster.parallel import get_comm, map_units, on_root, raise_failures
    from binance_cluster.progress import Progress
    from binance_cluster.candles.resample import plan_resample
    from binance_cluster.candles.store import CandleStore, check_symbol

    comm = get_comm()
    store = CandleStore(args.store)
    started = time.perf_counter()

    def plan():
        plan_resample(args.interval, args.source)
        if not store.root.is_dir():
            raise InputError(f"{store.root}: store directory does not exist")
        if args.symbols:
            symbols = list(dict.fromkeys(check_symbol(s.strip()) for s in args.symbols.split(",")
                                         if s.strip()))
            for symbol in symbols:
                if not store.has(symbol):
                    raise UnknownSymbolError(f"symbol {symbol} is not in the store {store.root}")
                if not store.has(symbol, args.source):
                    raise UnknownSymbolError(f"{store.path(symbol)}: symbol {symbol} has no "
                                             f"{args.source} candles to resample")
        else:
            symbols = [s for s in store.symbols() if store.has(s, args.source)]
            if not symbols:
                raise InputError(f"{store.root}: no symbol holds {args.source} candles")
        return symbols, [float(store.count(s, args.source)) for s in symbols]

    symbols, costs = on_root(comm, plan)
    with Progress(len(symbols), f"resample {args.source}->{args.interval}",
                  enabled=comm.rank == 0, unit="symbols") as bar:
        results = map_units(comm, symbols,
                            lambda s: resample_symbol(store, s, args.interval, args.source,
                                                      comm.rank),
                            costs=costs, names=symbols, progress=lambda r: bar.update(1, r.name),
                            debug=args.debug)

    def report():
        done = [r.value for r in results if r.ok]
        if done:
            header = ("symbol", "rank", f"{args.source} read", "added", "already stored",
                      f"{args.interval} total")
            table = [header] + [(r.symbol, str(r.rank), f"{r.read:,}", f"{r.added:,}",
                                 f"{r.unchanged:,}", f"{r.total:,}") for r in done]
            print(format_table(table, right=range(1, len(header))))
        added = sum(r.added for r in done)
        print(f"{len(done)} symbols: {added:,} {args.interval} candles added "
              f"({sum(r.unchanged for r in done):,} already stored) in "
              f"{time.perf_counter() - started:.2f} s")
        raise_failures(results, "symbols")

    on_root(comm, report)
    return 0
