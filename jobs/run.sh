#!/usr/bin/env bash
# Run a backtest job on N ranks: warm numba's cache once, then start the ranks with mpirun.
#
#   jobs/run.sh JOB [N] [backtest options...]      e.g.  jobs/run.sh jobs/demo.toml 2
#
# N defaults to the number of cores. The venv's python and mpirun are used (VENV: default the
# repository's .venv, else /tmp/venv). The numba cache is NUMBA_CACHE_DIR (default .numba_cache
# in the repository; jobs/launch.sh sets these up for both launch scripts). Warming first
# means the ranks load compiled kernels from the cache instead of all compiling at once and
# racing on the cache files. It runs from the repository
# root, so relative paths in job files and options (store, output) are relative to it.
#
# Several hosts (a Pi cluster, an HPC allocation): pass the hostfile in MPIRUN_ARGS. The cache
# is per node (put NUMBA_CACHE_DIR on node-local disk, same path everywhere); this script warms
# the local node only, and the backtest itself lets the first rank of every other node compile
# before its neighbours start. To warm every node beforehand (one rank per node):
#   NUMBA_CACHE_DIR=/var/tmp/numba .venv/bin/mpirun -f hostfile -ppn 1 -n NODES .venv/bin/binance-cluster warm-up
#   MPIRUN_ARGS="-f hostfile" NUMBA_CACHE_DIR=/var/tmp/numba jobs/run.sh jobs/sweep_real.toml 12
# (hostfile: one "host[:slots]" per line, see ./hostfile; with Open MPI use --hostfile.)
set -euo pipefail
USAGE="$0 JOB [N] [backtest options...]"
RANKS_DEFAULT=$(nproc)
source "$(dirname "$0")/launch.sh"
if [ -n "${MPIRUN_ARGS:-}" ]; then
    # shellcheck disable=SC2086  # MPIRUN_ARGS holds several words on purpose
    exec "$mpirun" $MPIRUN_ARGS -n "$n" "$python" -m binance_cluster backtest "$job" "${args[@]}"
fi
exec "$mpirun" -n "$n" "$python" -m binance_cluster backtest "$job" "${args[@]}"
