# Sourced by jobs/run.sh and jobs/live.sh (not run on its own): reads `JOB [N]` from the
# script's arguments, moves to the repository root and finds the venv.
#
# In:  "$@" of the script, USAGE (its usage line), RANKS_DEFAULT (N when not given).
# Out: job (absolute path), n, args (the remaining options), python and mpirun of VENV
#      (default the repository's .venv, else /tmp/venv), NUMBA_CACHE_DIR exported (default
#      .numba_cache in the repository), the numba cache warmed for the job on this node.
if [ $# -lt 1 ]; then
    echo "usage: $USAGE" >&2
    exit 2
fi
job=$(realpath "$1")
shift
n=$RANKS_DEFAULT
if [ $# -ge 1 ] && [[ $1 =~ ^[0-9]+$ ]]; then
    n=$1
    shift
fi
args=("$@")
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ -z "${VENV:-}" ]; then
    if [ -x .venv/bin/python ]; then VENV=$PWD/.venv; else VENV=/tmp/venv; fi
fi
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$PWD/.numba_cache}
python=$VENV/bin/python
mpirun=$VENV/bin/mpirun
if [ ! -x "$python" ]; then
    echo "$0: no python at $python (set VENV to the project's virtualenv)" >&2
    exit 2
fi
"$python" -m binance_cluster warm-up "$job"
