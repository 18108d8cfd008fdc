"""A one-line cached Numba kernel: the floor under any cached kernel's first call.

The first call of a cached Numba function in a fresh process pays for importing numba
and setting up its compiler's target (which imports scipy.linalg, when scipy is
installed, to see whether BLAS is there), then loads the machine code from the cache.
`hybrid-gp bench eval` times this kernel's first call beside ours, in processes started
the same way, so the part of our first call that is ours can be read off.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def add_one(x):
    return x + 1.0
