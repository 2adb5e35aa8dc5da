"""Backtest: the offline driver and what it writes.

Owns the backtest job (`job`: the TOML job file's keys, validated), the driver (`driver`:
work units, MPI orchestration, ranking), the warm-up of the numba cache for a job
(`warmup`) and the result files (`results`: summary.json, trades.csv, results.h5, with
their readers beside their writers). May import everything below the drivers: the ground
floor, `kernels`, `strategies`, `engine` and `candles`; never the exchange.
"""
