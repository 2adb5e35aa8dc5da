"""Write a deterministic synthetic demo store: one-minute candles of Binance-like symbols with
volatility clustering, fat tails, intraday seasonality, correlated moves, a trending symbol
(SOLUSDT), a crashing one (LINKUSDT) and a few exchange outages. Every file is marked
synthetic in its metadata (`info` shows a *). Same arguments, same candles: re-running into
the same store changes nothing; another seed, span or end into it is refused.

  binance-cluster demo-data --store data/demo
  binance-cluster demo-data --store data/demo --symbols 12 --days 90 --seed 7 --end 2025-01-01
  mpirun -n 4 binance-cluster demo-data --store data/demo --symbols 16
"""

from __future__ import annotations

from binance_cluster.table import format_table

NAME = "demo-data"
HELP = "write a deterministic synthetic candle store for demos and tests"


def add_arguments(p) -> None:
    p.add_argument("--store", default="data/demo", help="store directory (default: data/demo)")
    p.add_argument("--symbols", type=int, default=8,
                   help="number of symbols, 1 to 16 (default: 8)")
    p.add_argument("--days", type=int, default=60, help="days of 1m candles (default: 60)")
    p.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    p.add_argument("--end", default="2025-06-01",
                   help="UTC end of the span, exclusive (default: 2025-06-01)")


def _check_store(store, spec) -> None:
    """Refuse to touch files that are not demo files of exactly this recipe."""
    from binance_cluster.errors import ConfigError

    for name in spec.names():
        if not store.has(name):
            continue
        attrs = store.attrs(name)
        path = store.path(name)
        if not attrs.get("synthetic"):
            raise ConfigError(f"{path}: holds real (non-synthetic) candles; write the demo data "
                              "into a store of its own")
        recipe = attrs.get("demo_recipe")
        if recipe != spec.recipe:
            raise ConfigError(f"{path}: holds demo data made with {recipe or 'another generator'}"
                              f", not {spec.recipe}; use another --store or the same arguments")


def run(args) -> int:
    import time

    from binance_cluster.candles import demo_data as demo
    from binance_cluster.errors import InputError
    from binance_cluster.parallel import get_comm, map_units, on_root, raise_failures
    from binance_cluster.progress import Progress
    from binance_cluster.candles.store import CandleStore
    from binance_cluster.types import format_time_ms

    comm = get_comm()
    store = CandleStore(args.store)
    started = time.perf_counter()

    def plan():
        if store.root.exists() and not store.root.is_dir():
            raise InputError(f"{store.root}: exists and is not a directory")
        spec = demo.make_spec(args.symbols, args.days, args.seed, args.end)
        _check_store(store, spec)
        return spec

    spec = on_root(comm, plan)
    cache: dict = {}

    def write(index: int):
        if "market" not in cache:
            cache["market"] = demo.market(spec)
        candles = demo.generate_symbol(spec, index, cache["market"])
        name = demo.SYMBOLS[index].name
        result = store.append(name, "1m", candles, **demo.file_attrs(spec, index))
        return demo.summarize(name, candles, result.added, demo.regime_note(spec, index))

    names = spec.names()
    with Progress(len(names), "demo-data", enabled=comm.rank == 0, unit="symbols") as bar:
        results = map_units(comm, list(range(spec.symbols)), write, names=names,
                            progress=lambda r: bar.update(1, r.name), debug=args.debug)

    def report():
        rows = [r.value for r in results if r.ok]
        seconds = time.perf_counter() - started
        header = ("symbol", "rows", "added", "first open", "last close", "change", "max dd",
                  "gaps", "regime")
        table = [header] + [(s.symbol, f"{s.rows:,}", f"{s.added:,}", f"{s.first_open:g}",
                             f"{s.last_close:g}", f"{s.last_close / s.first_open - 1:+.1%}",
                             f"{s.max_drawdown:.1%}", str(s.gaps), s.regime) for s in rows]
        print(format_table(table, right=range(1, 8)))
        added = sum(s.added for s in rows)
        total = sum(s.rows for s in rows)
        verdict = "already up to date, nothing written" if rows and added == 0 else \
            f"{added:,} candles written"
        print(f"synthetic 1m candles, seed {spec.seed}, {format_time_ms(spec.start_ms)} to "
              f"{format_time_ms(spec.end_ms)} UTC: {len(rows)} symbols, {total:,} rows, "
              f"{verdict} in {seconds:.2f} s to {store.root}")
        raise_failures(results, "symbols")

    on_root(comm, report)
    return 0
