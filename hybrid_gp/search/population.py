"""A population: programs with their errors, complexities, functional keys and
genealogy ids, as parallel columns. The programs are Genomes (flat arrays; a Program
object is made only when one is read), so selecting, merging and breeding a
generation costs no Python object per child."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..genomes import Genomes
from ..kernels.unique import first_occurrences
from ..program import Program


@dataclass
class Population:
    programs: Genomes  # any sequence of Programs is taken and turned into Genomes
    errors: np.ndarray  # lower is better; inf for programs with non-finite outputs
    complexity: np.ndarray  # the Pareto front's second objective
    keys: np.ndarray  # int64 functional keys: equal keys, equal functions
    ids: np.ndarray  # genealogy ids (int64)

    def __post_init__(self) -> None:
        self.programs = Genomes.of(self.programs)
        self.keys = np.asarray(self.keys, dtype=np.int64)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Checkpoints written when programs were a list and keys a list load too."""
        self.__dict__.update(state)
        self.__post_init__()

    @classmethod
    def empty(cls) -> Population:
        return cls(Genomes.of([]), np.empty(0), np.empty(0), np.empty(0, dtype=np.int64),
                   np.empty(0, dtype=np.int64))

    def take(self, idx: Sequence[int] | np.ndarray) -> Population:
        idx = np.asarray(idx, dtype=np.int64)
        return Population(self.programs.take(idx), self.errors[idx], self.complexity[idx],
                          self.keys[idx], self.ids[idx])

    def __add__(self, other: Population) -> Population:
        return Population(self.programs + other.programs,
                          np.concatenate([self.errors, other.errors]),
                          np.concatenate([self.complexity, other.complexity]),
                          np.concatenate([self.keys, other.keys]),
                          np.concatenate([self.ids, other.ids]))

    def __len__(self) -> int:
        return len(self.programs)

    def unique(self) -> Population:
        """Without repeated functions (the first occurrence is kept)."""
        first = self.unique_index()
        return self if len(first) == len(self) else self.take(first)

    def unique_index(self) -> np.ndarray:
        """Ascending indices of the first member of each function (one Numba pass,
        kernels/unique.py)."""
        return first_occurrences(self.keys)

    def replace(self, idx: Sequence[int], programs: Sequence[Program], errors: Sequence[float],
                complexity: Sequence[float], keys: Sequence[int]) -> None:
        """Put programs[k] (with its error, complexity and key) in place of member idx[k];
        the genealogy ids stay."""
        idx = np.asarray(idx, dtype=np.int64)
        self.programs = self.programs.replaced(idx, programs)
        self.errors[idx] = errors
        self.complexity[idx] = complexity
        self.keys[idx] = keys

    def best(self, n: int) -> np.ndarray:
        """Indices of the n best by (error, complexity)."""
        err = np.where(np.isnan(self.errors), np.inf, self.errors)
        return np.lexsort((self.complexity, err))[:n]


def first_occurrences_reference(keys: np.ndarray) -> np.ndarray:
    """Numpy twin of kernels.unique.first_occurrences."""
    return np.sort(np.unique(np.asarray(keys, dtype=np.int64), return_index=True)[1])
