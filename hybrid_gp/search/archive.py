"""The run's memory of the best programs: the best one and the Pareto front of
(complexity, error) over everything ever scored."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..program import Program
from .selection import by_complexity_then_error


@dataclass
class Archive:
    """Best error per complexity; the non-dominated ones form the front."""

    by_complexity: dict[float, tuple[float, Program]] = field(default_factory=dict)
    best_error: float = math.inf
    best: Program | None = None
    best_complexity: float = math.inf
    # Complexities whose entry changed since another archive last merged this one: a
    # merge takes only those (an island's archive is merged every generation).
    changed: dict[float, None] = field(default_factory=dict, repr=False, compare=False)

    def update(self, programs: Sequence[Program], errors: Sequence[float],
               complexity: Sequence[float]) -> bool:
        """Add scored programs; True if the best program changed. Among equal programs
        by (error, complexity) the first one counts, as in a pass in order; only each
        complexity's best of the batch reaches the Python table."""
        err = np.asarray(errors, dtype=np.float64)
        comp = np.asarray(complexity, dtype=np.float64)
        ok = np.flatnonzero(err < math.inf)  # inf and NaN never enter
        if not len(ok):
            return False
        order = ok[by_complexity_then_error(err[ok], comp[ok])]
        first = np.ones(len(order), dtype=bool)
        first[1:] = comp[order[1:]] != comp[order[:-1]]
        table = self.by_complexity
        for i, e, c in zip(order[first].tolist(), err[order[first]].tolist(),
                           comp[order[first]].tolist(), strict=True):
            old = table.get(c)
            if old is None or e < old[0]:
                table[c] = (e, programs[i])
                self.changed[c] = None
        best = ok[err[ok] == err[ok].min()]  # by error, then complexity, then index
        top = int(best[np.argmin(comp[best])])
        e, c = float(err[top]), float(comp[top])
        if e < self.best_error or (e == self.best_error and c < self.best_complexity):
            self.best_error, self.best, self.best_complexity = e, programs[top], c
            return True
        return False

    def merge(self, other: Archive) -> None:
        """Take in another archive's entries (islands' archives at a barrier): those
        changed since its last merge, which is all that can change this one."""
        changed = getattr(other, "changed", None)  # None: an archive pickled without it
        keys = other.by_complexity if changed is None else changed
        items = sorted((c, other.by_complexity[c]) for c in keys)
        other.changed = {}
        self.update([p for _, (_, p) in items], [e for _, (e, _) in items],
                    [c for c, _ in items])

    def pareto_front(self) -> list[tuple[float, float, Program]]:
        """(complexity, error, program), simplest first; each strictly more accurate
        than every simpler one."""
        front = []
        best = math.inf
        for c in sorted(self.by_complexity):
            e, p = self.by_complexity[c]
            if e < best:
                front.append((float(c), float(e), p))
                best = e
        return front


def choose_by_bic(front: list[tuple[float, float, Program]], n_rows: int,
                  y_var: float) -> Program | None:
    """The front member with the lowest Bayesian information criterion,
    n ln(MSE) + k ln(n), with k the complexity. MSEs below 1e-12 var(y) count as that
    floor, so among exact fits the simplest wins, and a fit must buy each extra unit of
    complexity with a ln(n)/n relative drop in error."""
    if not front:
        return None
    floor = max(1e-12 * y_var, 1e-300)
    n = max(n_rows, 2)
    scores = [n * math.log(max(e, floor)) + c * math.log(n) for c, e, _ in front]
    return front[int(min(range(len(front)), key=scores.__getitem__))][2]
