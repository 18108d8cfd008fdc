"""Plain-numpy twin of kernels/binpack.py: the textbook simulation, one array of bin
capacities in opening order and an argmax per item. Slow and obvious on purpose; tests
compare the kernel against it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Priority = Callable[[int, np.ndarray, int], np.ndarray]


def pack_reference(priority: Priority, items: np.ndarray, capacity: int) -> int:
    """Bins used when each item goes to the open bin that fits it with the highest
    priority(item, remaining capacities, capacity) (NaN counts as -inf; ties go to the
    bin opened first), or to a new bin when none fits."""
    remaining = np.empty(len(items), dtype=np.int64)
    n_bins = 0
    for s in np.asarray(items, dtype=np.int64).tolist():
        fits = np.flatnonzero(remaining[:n_bins] >= s)
        if len(fits) == 0:
            remaining[n_bins] = capacity - s
            n_bins += 1
            continue
        scores = np.asarray(priority(s, remaining[fits], capacity), dtype=np.float64)
        scores = np.broadcast_to(scores, fits.shape)
        scores = np.where(np.isnan(scores), -np.inf, scores)
        best = fits[int(np.argmax(scores))]  # argmax: the first of equal maxima
        remaining[best] -= s
    return n_bins


def table_priority(scores: np.ndarray, grid_index: np.ndarray) -> Priority:
    """A priority function that looks its scores up in a grid table (the kernel's
    input), so kernel and twin can be fed the same program."""

    def priority(s: int, r: np.ndarray, capacity: int) -> np.ndarray:
        return scores[grid_index[s, r]]

    return priority
