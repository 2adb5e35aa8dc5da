"""numba's on-disk kernel cache: where it is and whether an earlier warm-up filled it.

numba loads a cached kernel in ~0.1 s but compiles one in seconds, and ranks compiling the
same kernel at once race on the cache files. A stamp written after a warm-up on this host
records which kernel sets (strategy:mode:interval) are cached for the current kernel sources,
numba, Python and machine; any change to those makes the stamp stale.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import socket
import time
from pathlib import Path
from typing import Callable

from binance_cluster.fileio import atomic_write

log = logging.getLogger(__name__)

KERNELS_DIR = Path(__file__).resolve().parent


def _cache_dir() -> Path | None:
    """Where numba keeps this project's kernel cache (NUMBA_CACHE_DIR, else beside the sources)."""
    from numba.core import config as numba_config

    if numba_config.CACHE_DIR:
        return Path(numba_config.CACHE_DIR)
    here = KERNELS_DIR / "__pycache__"
    return here if os.access(here.parent, os.W_OK) else None


def _sources_stamp() -> list:
    """What invalidates the cache: numba, Python, the machine and every kernel source file."""
    import numba

    files = sorted(KERNELS_DIR.glob("*.py"))
    return [numba.__version__, platform.python_version(), platform.machine(),
            [(f.name, f.stat().st_mtime_ns, f.stat().st_size) for f in files]]


def _stamp_path() -> Path | None:
    """The stamp of this host and this checkout: two checkouts sharing one NUMBA_CACHE_DIR
    (numba keys its files on the source path) keep one stamp each instead of voiding each
    other's."""
    where = _cache_dir()
    if where is None:
        return None
    checkout = hashlib.sha1(str(KERNELS_DIR).encode()).hexdigest()[:10]
    return where / f"binance-cluster-warm-{socket.gethostname()}-{checkout}.json"


def warm_keys(strategies: list[str], modes, intervals, model_kinds=()) -> list[str]:
    """Names of the kernel sets a warm-up covers: strategy:mode:interval, and model:KIND for
    the prediction kernels of each model kind a strategy's models are of."""
    return [f"{s}:{m}:{i}" for s in strategies for m in modes for i in intervals] + \
        [f"model:{k}" for k in model_kinds]


def is_warm(keys: list[str]) -> bool:
    """Whether the stamp says an earlier warm-up on this host cached every kernel set in `keys`."""
    path = _stamp_path()
    try:
        stamp = json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return False
    return bool(stamp) and stamp.get("sources") == json.loads(json.dumps(_sources_stamp())) \
        and set(keys) <= set(stamp.get("warm", []))


def mark_warm(keys: list[str]) -> None:
    """Record that `keys` are cached for the current kernel sources (best effort)."""
    path = _stamp_path()
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sources = _sources_stamp()
        old = json.loads(path.read_text()) if path.exists() else {}
        warm = set(keys)
        if old.get("sources") == json.loads(json.dumps(sources)):
            warm |= set(old.get("warm", []))
        atomic_write(path, json.dumps({"sources": sources, "warm": sorted(warm)}))
    except (OSError, ValueError) as exc:
        log.debug("cannot write the warm-up stamp %s: %s", path, exc)


def load_once_per_node(comm, keys: list[str], what: str, compile_: Callable[[], bool],
                       load: Callable[[], None]) -> None:
    """Get a job's kernels compiled and loaded on every rank of `comm` before its work starts.

    With several ranks, the first rank of each node compiles (`compile_`, which returns
    whether it succeeded) unless the stamp says `keys` are cached, while the others sleep;
    then every rank that did not compile loads them from the cache (`load`). Rank 0 logs
    (stderr) when its node compiles, and how long it took. LLVM's code pages, which loading
    maps by the hundred megabytes, are handed back as it goes (`llvm_code_kept_out`).
    """
    from binance_cluster.kernels._jit import llvm_code_kept_out, release_llvm_code
    from binance_cluster.parallel import node_leader, quiet_barrier

    release_llvm_code()  # what the imports touched: loading touches its own pages again
    leader = node_leader(comm) if comm.size > 1 else True
    compiled_here = False
    if leader and not is_warm(keys):
        started = time.perf_counter()
        if comm.rank == 0:
            log.info("compiling the numba kernels of %s into this host's cache "
                     "(once; `warm-up JOB` does it ahead) ...", what)
        compiled_here = compile_()
        if comm.rank == 0:
            log.info("kernels ready in %.1f s", time.perf_counter() - started)
    if comm.size > 1:
        quiet_barrier(comm)
    if not compiled_here:
        with llvm_code_kept_out():
            load()
    release_llvm_code()
