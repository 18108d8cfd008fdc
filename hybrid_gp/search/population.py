"""A population: programs with their errors, complexities, functional keys and
genealogy ids, as parallel columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..program import Program


@dataclass
class Population:
    programs: list[Program]
    errors: np.ndarray  # lower is better; inf for programs with non-finite outputs
    complexity: np.ndarray  # the Pareto front's second objective
    keys: list[int]  # functional keys: equal keys, equal functions
    ids: np.ndarray  # genealogy ids (int64)

    @classmethod
    def empty(cls) -> Population:
        return cls([], np.empty(0), np.empty(0), [], np.empty(0, dtype=np.int64))

    def take(self, idx: Sequence[int] | np.ndarray) -> Population:
        idx = np.asarray(idx, dtype=np.int64)
        at = idx.tolist()  # Python ints index lists twice as fast as numpy scalars
        programs, keys = self.programs, self.keys
        return Population([programs[i] for i in at], self.errors[idx],
                          self.complexity[idx], [keys[i] for i in at], self.ids[idx])

    def __add__(self, other: Population) -> Population:
        return Population(self.programs + other.programs,
                          np.concatenate([self.errors, other.errors]),
                          np.concatenate([self.complexity, other.complexity]),
                          self.keys + other.keys, np.concatenate([self.ids, other.ids]))

    def __len__(self) -> int:
        return len(self.programs)

    def unique(self) -> Population:
        """Without repeated functions (the first occurrence is kept)."""
        seen: set[int] = set()
        keep = []
        for i, k in enumerate(self.keys):
            if k not in seen:
                seen.add(k)
                keep.append(i)
        return self if len(keep) == len(self) else self.take(keep)

    def best(self, n: int) -> np.ndarray:
        """Indices of the n best by (error, complexity)."""
        err = np.where(np.isnan(self.errors), np.inf, self.errors)
        return np.lexsort((self.complexity, err))[:n]
