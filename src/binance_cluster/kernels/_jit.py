"""The one place that sets numba options for every kernel.

Options are constants, never read from the environment: numba's on-disk cache is not keyed
on decorator options, so options that changed between runs would reuse stale machine code.
`fastmath` stays off so that results are bit-identical across machines and rank counts.

Importing this module also keeps two costs out of every process that runs kernels (measured
by `bench/bench_rank_memory.py`):

- numba's array-math registry, loaded at the first kernel a process compiles or loads from
  the cache, imports `scipy.linalg` when SciPy is installed (0.5 s and ~20 MB per rank), only
  to decide whether `np.convolve`/`np.correlate` may call BLAS. No kernel calls them (or any
  linear algebra), so the registry is imported here with SciPy's BLAS hidden; SciPy itself
  stays importable for whoever uses it.
- LLVM (libllvmlite.so) maps ~100 MB of its machine code into the process when it loads, and
  loading cached kernels touches most of it again, once: the kernel maps whole runs of pages
  around each one touched. `release_llvm_code` hands those clean file pages back (they stay
  in the page cache, shared by the ranks, and are mapped again on the pages LLVM runs later);
  `llvm_code_kept_out` does it continuously while kernels load.
"""

import contextlib
import ctypes
import sys
import threading
from typing import Iterator

_MADV_DONTNEED = 4


def _llvm_code_mappings() -> list[tuple[int, int]]:
    """(start, end) of libllvmlite's read-only mappings (code, constants) holding no private page."""
    spans, current = [], None
    try:
        with open("/proc/self/smaps") as f:
            for line in f:
                head = line.split()
                if "-" in head[0] and len(head) >= 5 and ":" in head[3]:
                    current = None
                    if len(head) >= 6 and head[5].endswith("libllvmlite.so") and head[1] in ("r-xp", "r--p"):
                        lo, hi = (int(x, 16) for x in head[0].split("-"))
                        current = [lo, hi, 0]
                        spans.append(current)
                elif current is not None and head[0] in ("Private_Dirty:", "Anonymous:"):
                    current[2] += int(head[1])
    except (OSError, ValueError, IndexError):
        return []
    return [(lo, hi) for lo, hi, private in spans if private == 0]


def _madvise():
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
        madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        return madvise
    except (OSError, AttributeError):
        return None


def release_llvm_code() -> int:
    """Drop this process's resident pages of LLVM's machine code; returns the bytes released.

    Only read-only, unmodified file pages are dropped (mappings with a private page are left
    alone: relocated data that would lose its writes), so nothing is lost: the kernel maps
    them again from the page cache when LLVM next runs them. Linux only; a no-op (0) elsewhere
    or when anything about the mappings is unexpected.
    """
    spans = _llvm_code_mappings()
    madvise = _madvise() if spans else None
    if madvise is None:
        return 0
    return sum(hi - lo for lo, hi in spans if madvise(lo, hi - lo, _MADV_DONTNEED) == 0)


@contextlib.contextmanager
def llvm_code_kept_out(every: float = 0.002) -> Iterator[None]:
    """Hand LLVM's code pages back every `every` seconds while the block runs (kernels load
    from the cache: ~100 MB would be mapped at once), and once more at its end."""
    spans = _llvm_code_mappings()
    madvise = _madvise() if spans else None
    done = threading.Event()

    def loop() -> None:
        while not done.wait(every):
            for lo, hi in spans:
                madvise(lo, hi - lo, _MADV_DONTNEED)

    worker = threading.Thread(target=loop, name="llvm-pages", daemon=True) if madvise else None
    if worker is not None:
        worker.start()
    try:
        yield
    finally:
        done.set()
        if worker is not None:
            worker.join()
        release_llvm_code()


# LLVM first, on its own: its start-up pages go back before numba and its modules add theirs,
# so the process never holds both at once.
import llvmlite.binding  # noqa: E402,F401

release_llvm_code()

import numba  # noqa: E402

JIT_OPTIONS = dict(nogil=True, cache=True, fastmath=False, error_model="numpy")

jit = numba.njit(**JIT_OPTIONS)


def kernel(fn):
    """Compile `fn` as a project kernel with the options above."""
    return numba.njit(**JIT_OPTIONS)(fn)


def _import_registry_without_scipy() -> None:
    """Import numba's array-math registry without the SciPy import it makes to probe BLAS."""
    blas = "scipy.linalg.cython_blas"
    if "numba.np.arraymath" in sys.modules or blas in sys.modules:
        return
    sys.modules[blas] = None  # makes `import scipy.linalg.cython_blas` raise ImportError
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        del sys.modules[blas]


_import_registry_without_scipy()
release_llvm_code()
