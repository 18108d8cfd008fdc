"""Genealogy: who came from whom, by which operator, with what change in error.

Every individual that enters a population is recorded once (id, generation, island,
operator, parents, error); parents are always earlier population members, so every
lineage is complete. Every child, kept or not, also counts towards its operator's
credit. `to_networkx` builds the DiGraph (edges parent -> child, with the operator and
the error change) of the ancestors of chosen individuals.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np

NO_PARENT = -1


@dataclass
class OperatorCredit:
    """Children an operator made, how many beat their best parent, and by how much."""

    children: int = 0
    improved: int = 0
    gain: float = 0.0  # sum of relative improvements over the best parent, in [0, 1] each

    def add(self, parent_error: float, child_error: float) -> None:
        self.children += 1
        if child_error < parent_error:
            self.improved += 1
            if math.isfinite(parent_error) and parent_error > 0:
                self.gain += (parent_error - child_error) / parent_error
            else:
                self.gain += 1.0


@dataclass
class Genealogy:
    """Append-only records, one per individual that entered a population."""

    ids: list[int] = field(default_factory=list)
    generation: list[int] = field(default_factory=list)
    island: list[int] = field(default_factory=list)
    operator: list[str] = field(default_factory=list)
    parent1: list[int] = field(default_factory=list)
    parent2: list[int] = field(default_factory=list)
    error: list[float] = field(default_factory=list)
    credit: dict[str, OperatorCredit] = field(default_factory=dict)

    def record(self, ids: Iterable[int], generation: int, island: int, operators: list[str],
               parents: list[tuple[int, ...]], errors: Iterable[float]) -> None:
        for i, op, par, err in zip(ids, operators, parents, errors, strict=True):
            self.ids.append(int(i))
            self.generation.append(generation)
            self.island.append(island)
            self.operator.append(op)
            self.parent1.append(int(par[0]) if par else NO_PARENT)
            self.parent2.append(int(par[1]) if len(par) > 1 else NO_PARENT)
            self.error.append(float(err))

    def record_columns(self, ids: np.ndarray, generation: int, island: int,
                       operators: list[str], parent1: np.ndarray, parent2: np.ndarray,
                       errors: np.ndarray) -> None:
        """`record` for a batch given as columns (parent ids NO_PARENT where there is
        none): one extension per column, not a Python step per individual."""
        n = len(ids)
        if not len(operators) == len(parent1) == len(parent2) == len(errors) == n:
            raise ValueError("record_columns: columns of different lengths")
        self.ids.extend(np.asarray(ids, dtype=np.int64).tolist())
        self.generation.extend([generation] * n)
        self.island.extend([island] * n)
        self.operator.extend(operators)
        self.parent1.extend(np.asarray(parent1, dtype=np.int64).tolist())
        self.parent2.extend(np.asarray(parent2, dtype=np.int64).tolist())
        self.error.extend(np.asarray(errors, dtype=np.float64).tolist())

    def credit_children(self, operators: list[str], parent_errors: Iterable[float],
                        child_errors: Iterable[float]) -> None:
        """Count each child towards its operator (named one per child)."""
        if not operators:
            return
        index: dict[str, int] = {}
        codes = np.array([index.setdefault(op, len(index)) for op in operators],
                         dtype=np.int64)
        self.credit_codes(codes, list(index), parent_errors, child_errors)

    def credit_codes(self, codes: np.ndarray, names: Sequence[str],
                     parent_errors: Iterable[float], child_errors: Iterable[float]) -> None:
        """Count each child towards its operator names[codes[k]], counted by bincount."""
        codes = np.asarray(codes, dtype=np.int64)
        if not len(codes):
            return
        pe = np.asarray(parent_errors, dtype=np.float64)
        ce = np.asarray(child_errors, dtype=np.float64)
        better = ce < pe
        with np.errstate(all="ignore"):
            gain = np.where(np.isfinite(pe) & (pe > 0), (pe - ce) / pe, 1.0)
        gain = np.where(better, gain, 0.0)
        n = len(names)
        children = np.bincount(codes, minlength=n).tolist()
        improved = np.bincount(codes[better], minlength=n).tolist()
        present = sorted((names[k], k) for k in range(n) if children[k])
        for op, k in present:  # the order the credit table first meets them in: by name
            c = self.credit.setdefault(op, OperatorCredit())
            c.children += children[k]
            c.improved += improved[k]
            c.gain += float(gain[codes == k].sum())  # numpy's pairwise sum, as before

    def merge(self, other: Genealogy) -> None:
        """Append another island's records (used at barriers, in island order)."""
        for name in ("ids", "generation", "island", "operator", "parent1", "parent2", "error"):
            getattr(self, name).extend(getattr(other, name))
        for op, c in other.credit.items():
            mine = self.credit.setdefault(op, OperatorCredit())
            mine.children += c.children
            mine.improved += c.improved
            mine.gain += c.gain

    def __len__(self) -> int:
        return len(self.ids)

    def credit_table(self) -> list[dict[str, Any]]:
        rows = []
        for op, c in sorted(self.credit.items()):
            rows.append({"operator": op, "children": c.children, "improved": c.improved,
                         "improved_share": c.improved / c.children if c.children else 0.0,
                         "mean_gain": c.gain / c.children if c.children else 0.0})
        return rows

    def to_networkx(self, roots: Iterable[int] | None = None) -> nx.DiGraph:
        """DiGraph of the records (edges parent -> child with `operator` and `delta`,
        the child's error minus the parent's); with `roots`, only their ancestors."""
        index = {i: k for k, i in enumerate(self.ids)}
        keep: set[int]
        if roots is None:
            keep = set(self.ids)
        else:
            keep, todo = set(), [r for r in roots if r in index]
            while todo:
                i = todo.pop()
                if i in keep:
                    continue
                keep.add(i)
                k = index[i]
                todo.extend(p for p in (self.parent1[k], self.parent2[k]) if p in index)
        g = nx.DiGraph()
        for i in keep:
            k = index[i]
            g.add_node(i, generation=self.generation[k], island=self.island[k],
                       operator=self.operator[k], error=_finite(self.error[k]))
        for i in keep:
            k = index[i]
            for p in (self.parent1[k], self.parent2[k]):
                if p in keep:
                    delta = self.error[k] - self.error[index[p]]
                    g.add_edge(p, i, operator=self.operator[k], delta=_finite(delta))
        return g

    def to_arrays(self) -> dict[str, np.ndarray]:
        ops = sorted(set(self.operator))
        code = {op: k for k, op in enumerate(ops)}
        return {
            "ids": np.asarray(self.ids, dtype=np.int64),
            "generation": np.asarray(self.generation, dtype=np.int64),
            "island": np.asarray(self.island, dtype=np.int64),
            "operator": np.asarray([code[o] for o in self.operator], dtype=np.int64),
            "operator_names": np.asarray(ops, dtype=str),
            "parent1": np.asarray(self.parent1, dtype=np.int64),
            "parent2": np.asarray(self.parent2, dtype=np.int64),
            "error": np.asarray(self.error, dtype=np.float64),
        }


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
