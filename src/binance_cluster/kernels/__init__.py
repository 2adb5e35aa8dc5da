"""numba kernels: pure functions over numpy arrays and scalars, no I/O."""
