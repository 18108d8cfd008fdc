"""Numba kernel: the online bin-packing simulator.

Items arrive one by one. Each open bin that still fits the item gets a priority score;
the item goes to the highest score, ties to the bin opened first; a new bin is opened
only when no open bin fits. Scores are NaN-safe: NaN counts as -inf.

Sizes and capacities are integers, so a priority function is fully described by its
scores on the grid (item size s, remaining capacity r >= s): callers evaluate the
program once on that grid and pass `scores` with `grid_index[s, r]` naming the grid
row of (s, r). Bins with equal remaining capacity are interchangeable, so the simulator
keeps, for each remaining capacity r, a min-heap of the indices of the bins at r: one
item costs one pass over the capacities r = s..C plus two heap operations, whatever
the number of bins. Numpy twin: kernels/reference_binpack.py.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_JIT = dict(cache=True, error_model="numpy", nogil=True)


@njit(**_JIT)
def _heap_push(heap, size, value):
    """Push onto the min-heap heap[:size]; returns the new size."""
    k = size
    heap[k] = value
    while k > 0:
        parent = (k - 1) >> 1
        if heap[parent] <= heap[k]:
            break
        heap[parent], heap[k] = heap[k], heap[parent]
        k = parent
    return size + 1


@njit(**_JIT)
def _heap_pop(heap, size):
    """Remove the smallest of heap[:size]; returns the new size."""
    size -= 1
    heap[0] = heap[size]
    k = 0
    while True:
        left = 2 * k + 1
        if left >= size:
            break
        child = left
        if left + 1 < size and heap[left + 1] < heap[left]:
            child = left + 1
        if heap[k] <= heap[child]:
            break
        heap[k], heap[child] = heap[child], heap[k]
        k = child
    return size


@njit(**_JIT)
def pack_instance(scores, grid_index, items, capacity, smallest, heaps, sizes):
    """Bins used to pack `items` online with the priorities `scores`.

    heaps (capacity + 1, len(items)) and sizes (capacity + 1,) are scratch space.
    Bins whose remaining capacity drops below `smallest` (the smallest item of the
    instance) can never take another item and are forgotten.
    """
    for r in range(capacity + 1):
        sizes[r] = 0
    n_bins = 0
    for i in range(items.shape[0]):
        s = items[i]
        best_r = -1
        best_score = -np.inf
        best_bin = 0
        for r in range(s, capacity + 1):
            if sizes[r] == 0:
                continue
            v = scores[grid_index[s, r]]
            if v != v:
                v = -np.inf
            b = heaps[r, 0]
            if best_r < 0 or v > best_score or (v == best_score and b < best_bin):
                best_r, best_score, best_bin = r, v, b
        if best_r < 0:  # nothing fits: open a bin
            best_bin = n_bins
            n_bins += 1
            left = capacity - s
        else:
            sizes[best_r] = _heap_pop(heaps[best_r], sizes[best_r])
            left = best_r - s
        if left >= smallest:
            sizes[left] = _heap_push(heaps[left], sizes[left], best_bin)
    return n_bins


@njit(**_JIT)
def _pack_program(scores, grid_index, items, offsets, capacity, smallest, out_row):
    longest = 0
    for k in range(offsets.shape[0] - 1):
        longest = max(longest, offsets[k + 1] - offsets[k])
    heaps = np.empty((capacity + 1, max(longest, 1)), dtype=np.int64)
    sizes = np.empty(capacity + 1, dtype=np.int64)
    for k in range(offsets.shape[0] - 1):
        out_row[k] = pack_instance(scores, grid_index, items[offsets[k]:offsets[k + 1]],
                                   capacity, smallest[k], heaps, sizes)


@njit(**_JIT)
def bins_batch_serial(scores, grid_index, items, offsets, capacity, smallest, out):
    """out[p, k] = bins program p uses on instance k; scores is (n_programs, n_grid)."""
    for p in range(scores.shape[0]):
        _pack_program(scores[p], grid_index, items, offsets, capacity, smallest, out[p])


@njit(parallel=True, **_JIT)
def bins_batch_parallel(scores, grid_index, items, offsets, capacity, smallest, out):
    for p in prange(scores.shape[0]):
        _pack_program(scores[p], grid_index, items, offsets, capacity, smallest, out[p])
