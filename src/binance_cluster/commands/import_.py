"""Import candle files into a store: Binance public-data klines (12 columns, no header,
`.csv` or `.zip`, open times in ms or µs) and header CSVs (open_time,open,high,low,close,volume
and optional extras by name, optionally `.gz`). Directories import every such file in them.

Symbol and interval come from the file name (BTCUSDT-1m-2024-01.zip, BTCUSDT-1m.csv.gz)
unless given. Every file is read and checked, also against the stored candles, before
anything is written: one bad file leaves the store untouched. Re-importing is a no-op.

  binance-cluster import --store data/real ../shared/data/binance-usdm-1m/
  binance-cluster import --store data/real BTCUSDT-1m-2024-01.zip BTCUSDT-1m-2024-02.zip
  binance-cluster import --store data/real prices.csv --symbol BTCUSDT --interval 1h
"""

from __future__ import annotations

from binance_cluster.table import format_table

NAME = "import"
HELP = "import Binance kline CSV/ZIP files and header CSVs into a store"

PROGRESS_MIN_FILES = 8


def add_arguments(p) -> None:
    p.add_argument("--store", default="data", help="store directory (default: data)")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="kline files (.csv, .csv.gz, .zip) or directories of them")
    p.add_argument("--symbol", default=None, help="symbol for every file (default: from the name)")
    p.add_argument("--interval", default=None,
                   help="interval for every file, e.g. 1m (default: from the name)")
    p.add_argument("--threads", type=int, default=None,
                   help="files read in parallel (default: one per core)")


def run(args) -> int:
    import threading

    from binance_cluster.candles.importer import expand_paths, import_files
    from binance_cluster.parallel import get_comm, on_root
    from binance_cluster.progress import Progress
    from binance_cluster.candles.store import CandleStore
    from binance_cluster.types import format_time_ms

    comm = get_comm()
    store = CandleStore(args.store)

    def work():
        files = expand_paths(args.files)
        lock = threading.Lock()
        with Progress(len(files), "import", enabled=len(files) >= PROGRESS_MIN_FILES,
                      unit="files") as bar:
            def done(parsed) -> None:
                with lock:  # files finish in reader threads
                    bar.update(1, note=parsed.symbol)

            return import_files(store, files, args.symbol, args.interval, args.threads,
                                on_file=done)

    summary = on_root(comm, work)  # one rank reads and writes; the others wait for the outcome
    if comm.rank != 0:
        return 0
    header = ("symbol", "interval", "files", "read", "added", "unchanged", "first (UTC)", "last (UTC)")
    table = [header] + [(s.symbol, s.interval, str(len(s.files)), f"{s.rows_read:,}",
                         f"{s.added:,}", f"{s.unchanged:,}", format_time_ms(s.first),
                         format_time_ms(s.last)) for s in summary.series]
    print(format_table(table, right=range(2, 6)))
    symbols = len({s.symbol for s in summary.series})
    print(f"{summary.files} files, {symbols} symbols: {summary.rows_read:,} rows read, "
          f"{summary.added:,} added, {summary.unchanged:,} unchanged in {summary.seconds:.2f} s "
          f"({summary.rows_per_second:,.0f} rows/s) into {store.root}")
    return 0
