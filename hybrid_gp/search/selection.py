"""Parent selection over a whole generation at once (vectorised)."""

from __future__ import annotations

import numpy as np


def rank(errors: np.ndarray, complexity: np.ndarray) -> np.ndarray:
    """Rank of each individual, 0 = best: lower error first, then lower complexity
    (lexicographic parsimony). NaN errors rank as inf."""
    err = np.where(np.isnan(errors), np.inf, errors)
    order = np.lexsort((complexity, err))
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return ranks


def tournament(ranks: np.ndarray, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `n` tournament winners, each the best-ranked of `size` random entrants."""
    entrants = rng.integers(len(ranks), size=(n, size))
    return entrants[np.arange(n), np.argmin(ranks[entrants], axis=1)]
