"""The run's memory of the best programs: the best one and the Pareto front of
(complexity, error) over everything ever scored."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..program import Program


@dataclass
class Archive:
    """Best error per complexity; the non-dominated ones form the front."""

    by_complexity: dict[float, tuple[float, Program]] = field(default_factory=dict)
    best_error: float = math.inf
    best: Program | None = None
    best_complexity: float = math.inf

    def update(self, programs: Sequence[Program], errors: Sequence[float],
               complexity: Sequence[float]) -> bool:
        """Add scored programs; True if the best program changed."""
        improved = False
        table = self.by_complexity
        for p, e, c in zip(programs, errors, complexity, strict=True):
            if not e < math.inf:  # inf and NaN never enter
                continue
            old = table.get(c)
            if old is None or e < old[0]:
                table[c] = (e, p)
            if e < self.best_error or (e == self.best_error and c < self.best_complexity):
                self.best_error, self.best, self.best_complexity = e, p, c
                improved = True
        return improved

    def pareto_front(self) -> list[tuple[float, float, Program]]:
        """(complexity, error, program), simplest first; each strictly more accurate
        than every simpler one."""
        front = []
        best = math.inf
        for c in sorted(self.by_complexity):
            e, p = self.by_complexity[c]
            if e < best:
                front.append((c, e, p))
                best = e
        return front
