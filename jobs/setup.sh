#!/usr/bin/env bash
# Create ./.venv (if missing) and install binance-cluster with its test tools into it.
# Everything comes from PyPI, MPI included (the mpich wheel provides mpirun).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import binance_cluster, pytest, talib" 2>/dev/null \
   || [ setup.cfg -nt .venv/.installed ]; then
  echo "setup: installing binance-cluster and its dependencies into .venv"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e '.[test]'
  touch .venv/.installed
fi
