"""Compile every numba kernel of the backtest path once and store it in numba's cache.

Run it once per node before `mpirun` starts the ranks, so that they load compiled code from
the cache instead of all compiling at once (seconds each, and racing on the cache files).
The cache lives beside the sources, or under NUMBA_CACHE_DIR (put it on node-local disk).

  binance-cluster warm-up
  binance-cluster warm-up --strategies sma_cross --intervals 1m,5m
  NUMBA_CACHE_DIR=/local/numba binance-cluster warm-up && mpirun -n 8 binance-cluster backtest jobs/demo.toml
  mpirun -f hostfile -ppn 1 -n NODES binance-cluster warm-up      # every node of a cluster
"""

from __future__ import annotations

NAME = "warm-up"
HELP = "compile and cache every numba kernel once (run before mpirun)"


def add_arguments(p) -> None:
    p.add_argument("--strategies", default=None, help="comma-separated strategies (default: all)")
    p.add_argument("--intervals", default="1m",
                   help="comma-separated intervals to warm resampling for (default: 1m)")


def run(args) -> int:
    import time

    from binance_cluster.backtest.warmup import warm_up
    from binance_cluster.parallel import get_comm, node_leader, quiet_barrier
    from binance_cluster.strategies.registry import get_strategy
    from binance_cluster.types import interval_ms

    strategies = args.strategies.split(",") if args.strategies else None
    for name in strategies or []:
        get_strategy(name)
    intervals = tuple(args.intervals.split(","))
    for interval in intervals:
        interval_ms(interval)
    comm = get_comm()
    started = time.perf_counter()
    # one rank per node compiles into that node's cache: `mpirun -ppn 1 -n NODES ...` warms all
    if node_leader(comm):
        done = warm_up(strategies, intervals=intervals)
    quiet_barrier(comm)
    if comm.rank == 0:
        print(f"warmed {len(done)} strategy/interval pairs in {time.perf_counter() - started:.2f} s"
              f" ({', '.join(done)})")
    return 0
