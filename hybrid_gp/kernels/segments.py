"""Gathering segments of flat arrays: the programs at some indices of a batch.

A batch (Genomes, CompiledBatch) keeps each program as a segment of a flat codes array
and a flat constants array, cut by offsets. Selection and merging reorder whole
generations, so taking segments is one compiled loop over the output rather than
numpy's repeat / cumsum / fancy-index temporaries; `genomes.gather_segments` is the
numpy twin.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy", nogil=True)
def take_segments(values, offsets, idx):
    """(the segments idx[0], idx[1], ... of `values` end to end, their offsets)."""
    n = idx.shape[0]
    new_off = np.empty(n + 1, dtype=np.int64)
    new_off[0] = 0
    for k in range(n):
        i = idx[k]
        new_off[k + 1] = new_off[k] + offsets[i + 1] - offsets[i]
    out = np.empty(new_off[n], dtype=values.dtype)
    for k in range(n):
        start = offsets[idx[k]]
        for q in range(new_off[k + 1] - new_off[k]):
            out[new_off[k] + q] = values[start + q]
    return out, new_off
