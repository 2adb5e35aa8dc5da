#!/usr/bin/env bash
# Run the whole test suite (unit tests and the real-mpirun tests at 1, 2 and 3 ranks).
# Extra arguments go to pytest, e.g. `bash jobs/test.sh -k store -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash jobs/setup.sh
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$PWD/.numba_cache}
.venv/bin/binance-cluster warm-up >/dev/null 2>&1 || true
exec .venv/bin/python -m pytest -q "$@"
