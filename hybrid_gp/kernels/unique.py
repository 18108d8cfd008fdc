"""First occurrences of int64 keys in one pass: which members of a population compute
a function no earlier member computes (functional keys; NSGA-II keeps one of each).

An open-addressing set over a table twice the input's size; numpy's unique sorts
instead. `population.first_occurrences_reference` is the numpy twin.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .structural import _mix


@njit(cache=True, error_model="numpy", nogil=True)
def first_occurrences(keys):
    """Ascending indices i with keys[i] not in keys[:i]."""
    n = keys.shape[0]
    size = 1
    while size < 2 * n:
        size *= 2
    mask = size - 1
    table = np.empty(size, dtype=np.int64)  # index of a key's first occurrence, -1 empty
    table[:] = -1
    out = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        k = keys[i]
        j = np.int64(_mix(np.uint64(k)) & np.uint64(mask))
        while table[j] >= 0 and keys[table[j]] != k:
            j = (j + 1) & mask
        if table[j] < 0:
            table[j] = i
            out[m] = i
            m += 1
    return out[:m]
