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
from pathlib import Path

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


def warm_keys(strategies: list[str], modes, intervals) -> list[str]:
    """Names of the kernel sets a warm-up covers: strategy:mode:interval."""
    return [f"{s}:{m}:{i}" for s in strategies for m in modes for i in intervals]


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
