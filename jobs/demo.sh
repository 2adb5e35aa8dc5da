#!/usr/bin/env bash
# The main job on the built-in demo data: set up .venv, write the synthetic demo store
# (data/demo), show it, warm the numba cache for the demo job, run it under mpirun and render
# its report (results/demo/report.html, report.pdf, figures/); the last line names the page.
# RANKS=N sets the number of MPI ranks (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash jobs/setup.sh
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$PWD/.numba_cache}
BC=.venv/bin/binance-cluster
$BC demo-data --store data/demo
$BC info --store data/demo
$BC warm-up jobs/demo.toml
.venv/bin/mpirun -n "${RANKS:-2}" $BC backtest jobs/demo.toml --out results/demo --report
