#!/usr/bin/env bash
# Start a live job (paper, testnet or real money) under mpirun on the hosts of ./hostfile.
#
#   jobs/live.sh JOB [N] [live options...]      e.g.  jobs/live.sh jobs/paper.toml 2 --base-url URL
#
# Rank 0 runs on the first host with this environment: the API keys (BINANCE_API_KEY/SEC for
# --mode live, TEST_BINANCE_API_KEY/SEC for the testnet) come from it and nowhere else. The
# worker ranks are started as a section of their own with those variables emptied, so no key
# ever reaches another rank or host. HOSTFILE (default: the repository's hostfile), VENV and
# NUMBA_CACHE_DIR as in jobs/run.sh. The numba cache is warmed on this node first.
set -euo pipefail
USAGE="$0 JOB [N] [live options...]"
RANKS_DEFAULT=2
source "$(dirname "$0")/launch.sh"
hostfile=${HOSTFILE:-$PWD/hostfile}
program=("$python" -m binance_cluster live "$job" "${args[@]}")
launch=("$mpirun" -f "$hostfile" -n 1 "${program[@]}")
if [ "$n" -gt 1 ]; then
    launch+=(: -n $((n - 1)))
    for name in BINANCE_API_KEY BINANCE_API_SEC TEST_BINANCE_API_KEY TEST_BINANCE_API_SEC; do
        launch+=(-env "$name" "")
    done
    launch+=("${program[@]}")
fi
exec "${launch[@]}"
