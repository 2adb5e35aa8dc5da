"""Compile every numba kernel of the backtest path once and store it in numba's cache.

Run it once per node before `mpirun` starts the ranks, so that they load compiled code from
the cache instead of all compiling at once (seconds each, and racing on the cache files).
The cache lives beside the sources, or under NUMBA_CACHE_DIR (put it on node-local disk).

  binance-cluster warm-up                       # every strategy, both modes (slow when cold)
  binance-cluster warm-up jobs/demo.toml        # exactly what that job runs: its strategy, mode,
                                                # interval and risk settings (fast); for a model
                                                # strategy its model kinds, and a train job's
                                                # training kernels
  binance-cluster warm-up --strategies sma_cross --intervals 1m,5m
  NUMBA_CACHE_DIR=/local/numba binance-cluster warm-up && mpirun -n 8 binance-cluster backtest jobs/demo.toml
  mpirun -f hostfile -ppn 1 -n NODES binance-cluster warm-up      # every node of a cluster
"""

from __future__ import annotations

NAME = "warm-up"
HELP = "compile and cache every numba kernel once (run before mpirun)"


def add_arguments(p) -> None:
    p.add_argument("job", nargs="?", default=None,
                   help="a backtest job file: warm only what it runs (its store must exist)")
    p.add_argument("--strategies", default=None, help="comma-separated strategies (default: all)")
    p.add_argument("--intervals", default="1m",
                   help="comma-separated intervals to warm resampling for (default: 1m)")


def run(args) -> int:
    import time

    from binance_cluster.backtest.warmup import warm_up_in_parallel
    from binance_cluster.parallel import get_comm, node_leader, quiet_barrier
    from binance_cluster.strategies.registry import get_strategy
    from binance_cluster.types import interval_ms

    kinds, train_job = None, None
    if args.job is not None:
        from binance_cluster.backtest.driver import model_kinds
        from binance_cluster.backtest.job import load_job
        from binance_cluster.errors import ConfigError
        from binance_cluster.jobfile import read_toml

        if args.strategies:
            raise ConfigError("warm-up: give a job file or --strategies, not both")
        job = load_job(args.job)
        strategies, modes, intervals, risks = [job.strategy], (job.mode,), (job.interval,), [job.risk]
        if "train" in read_toml(args.job):  # a train job: its kind's training kernels too
            from binance_cluster.ml.job import load_train_job

            train_job = load_train_job(args.job)
        kinds = model_kinds(job, () if train_job is None else (train_job.spec.kind,))
    else:
        from binance_cluster.ml.models import MODEL_KINDS

        strategies = args.strategies.split(",") if args.strategies else None
        for name in strategies or []:
            get_strategy(name)
        intervals = tuple(args.intervals.split(","))
        for interval in intervals:
            interval_ms(interval)
        modes, risks, kinds = ("sweep", "portfolio"), None, tuple(MODEL_KINDS)
    comm = get_comm()
    started = time.perf_counter()
    # one rank per node compiles into that node's cache: `mpirun -ppn 1 -n NODES ...` warms all
    if node_leader(comm):
        if comm.rank == 0:
            print(f"warming the kernels of {', '.join(strategies or ['every strategy'])} "
                  f"({', '.join(modes)}): loaded from numba's cache, or compiled once ...", flush=True)
        done = warm_up_in_parallel(strategies, modes=modes, intervals=intervals, risks=risks,
                                   model_kinds=kinds)
        if train_job is not None:
            from binance_cluster.ml.train import warm_up_training

            warm_up_training(train_job)
            print(f"warmed the training kernels of {train_job.spec.kind} models", flush=True)
    quiet_barrier(comm)
    if comm.rank == 0:
        print(f"warmed {len(done)} strategy/interval pairs in {time.perf_counter() - started:.2f} s"
              f" ({', '.join(done)})")
    return 0
