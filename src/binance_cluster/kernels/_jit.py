"""The one place that sets numba options for every kernel.

Options are constants, never read from the environment: numba's on-disk cache is not keyed
on decorator options, so options that changed between runs would reuse stale machine code.
`fastmath` stays off so that results are bit-identical across machines and rank counts.
"""

import numba

JIT_OPTIONS = dict(nogil=True, cache=True, fastmath=False, error_model="numpy")

jit = numba.njit(**JIT_OPTIONS)


def kernel(fn):
    """Compile `fn` as a project kernel with the options above."""
    return numba.njit(**JIT_OPTIONS)(fn)
