"""The operator portfolio: how each child of a generation is made.

The engine sees operators only through `Portfolio.breed`. A portfolio draws one
operator per child (here by fixed rates), applies it to the tournament winners, and
falls back to subtree mutation, then to a copy of the first parent, when an operator
does not apply. The classic operators run as one batch kernel per generation; the
Python functions in classic.py are their reference twin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..compiler import CompiledBatch
from ..errors import ConfigError
from ..genomes import Genomes
from ..grammar import Grammar
from ..program import Program
from . import classic
from .batch import KERNEL_IDS, KERNEL_NAMES, breed_children, uniforms_per_child
from .draws import ChildDraws

KERNEL_ORDER = tuple(KERNEL_NAMES[k] for k in range(len(KERNEL_NAMES)))  # name by kernel id


@dataclass(frozen=True)
class VariationContext:
    """What operators need to know beyond their parents."""

    grammar: Grammar
    n_features: int
    max_depth: int
    max_size: int
    mutation_depth: int = 4


OperatorFn = Callable[[Program, Program, np.random.Generator, VariationContext],
                      Program | None]


@dataclass(frozen=True)
class Operator:
    """A named way to make one child from (up to) two parents."""

    name: str
    n_parents: int
    fn: OperatorFn


def _crossover(a: Program, b: Program, rng: np.random.Generator,
               ctx: VariationContext) -> Program | None:
    return classic.subtree_crossover(a, b, rng, max_depth=ctx.max_depth, max_size=ctx.max_size)


def _subtree(a: Program, b: Program, rng: np.random.Generator,
             ctx: VariationContext) -> Program | None:
    return classic.subtree_mutation(a, rng, n_features=ctx.n_features, max_depth=ctx.max_depth,
                                    max_size=ctx.max_size, new_depth=ctx.mutation_depth)


def _point(a: Program, b: Program, rng: np.random.Generator,
           ctx: VariationContext) -> Program | None:
    return classic.point_mutation(a, rng, n_features=ctx.n_features)


def _hoist(a: Program, b: Program, rng: np.random.Generator,
           ctx: VariationContext) -> Program | None:
    return classic.hoist_mutation(a, rng)


def _shrink(a: Program, b: Program, rng: np.random.Generator,
            ctx: VariationContext) -> Program | None:
    return classic.shrink_mutation(a, rng)


def _constant(a: Program, b: Program, rng: np.random.Generator,
              ctx: VariationContext) -> Program | None:
    return classic.constant_perturbation(a, rng)


CLASSIC: dict[str, Operator] = {
    op.name: op
    for op in [
        Operator("crossover", 2, _crossover),
        Operator("subtree", 1, _subtree),
        Operator("point", 1, _point),
        Operator("hoist", 1, _hoist),
        Operator("shrink", 1, _shrink),
        Operator("constant", 1, _constant),
    ]
}


NO_PARENT = -1


@dataclass
class Brood:
    """A generation's children and where each came from (for the genealogy), as
    arrays: child k was made by operator names[op_codes[k]] from the population members
    parent_index[k] (two columns, NO_PARENT where there is none)."""

    children: Genomes
    op_codes: np.ndarray  # int64, one per child
    parent_index: np.ndarray  # int64, (n_children, 2)
    names: list[str] = field(default_factory=lambda: list(KERNEL_ORDER))
    fallbacks: int = 0

    @classmethod
    def from_kernel(cls, children: Genomes, made_by: np.ndarray, first: np.ndarray,
                    second: np.ndarray, fallbacks: int = 0) -> Brood:
        """The batch breeder's children: kernel ids are the codes; a crossover child has
        both tournament winners as parents, the others the first."""
        made_by = np.asarray(made_by, dtype=np.int64)
        parents = np.full((len(made_by), 2), NO_PARENT, dtype=np.int64)
        parents[:, 0] = first
        crossed = made_by == KERNEL_IDS["crossover"]
        parents[crossed, 1] = np.asarray(second)[crossed]
        return cls(children, made_by, parents, list(KERNEL_ORDER), fallbacks)

    @property
    def operators(self) -> list[str]:
        """Operator name of each child."""
        return [self.names[c] for c in self.op_codes.tolist()]

    @property
    def parents(self) -> list[tuple[int, ...]]:
        """Population indices of each child's parents."""
        return [tuple(j for j in row if j != NO_PARENT) for row in self.parent_index.tolist()]

    def code_of(self, name: str) -> int:
        """The code of an operator name (a new name gets the next code)."""
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name)

    def replace(self, idx: Sequence[int], children: Sequence[Program],
                operators: Sequence[str] | str | None = None,
                parents: Sequence[tuple[int, ...]] | None = None) -> None:
        """Put children[k] in place of child idx[k] (immigrants, semantic children,
        retries, fitted constants); `operators` and `parents` name where the new ones
        came from (one name for all, or one each; None keeps the old)."""
        idx = np.asarray(idx, dtype=np.int64)
        self.children = self.children.replaced(idx, children)
        if operators is not None:
            names = [operators] * len(idx) if isinstance(operators, str) else list(operators)
            self.op_codes = self.op_codes.copy()
            self.op_codes[idx] = [self.code_of(name) for name in names]
        if parents is not None:
            rows = np.full((len(idx), 2), NO_PARENT, dtype=np.int64)
            for k, p in enumerate(parents):
                rows[k, :len(p)] = p
            self.parent_index = self.parent_index.copy()
            self.parent_index[idx] = rows

    def compiled(self) -> CompiledBatch:
        """The children as the evaluation kernels read them (no Program needed)."""
        return self.children.compiled()


@dataclass
class Portfolio:
    """Operators with fixed selection weights."""

    operators: list[Operator]
    weights: np.ndarray

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, dtype=np.float64)
        self.weights = self.weights / self.weights.sum()

    def breed(self, population: Sequence[Program], first: np.ndarray, second: np.ndarray,
              rng: np.random.Generator, ctx: VariationContext, n_jobs: int = 1) -> Brood:
        """One child per entry of `first` (indices of tournament winners), all made in
        one kernel call (operators/batch.py) on up to n_jobs threads, the same children
        for any n_jobs; `breed_children_reference` is its twin."""
        n = len(first)
        # rng.choice(len(ops), size=n, p=weights) draws exactly this, after checks of
        # p that cost more than the draw itself (weights are normalised here already).
        cdf = np.cumsum(self.weights)
        picks = (cdf / cdf[-1]).searchsorted(rng.random(n), side="right")
        requested = self._kernel_ids[picks]
        draws = ChildDraws.draw(rng, uniforms_per_child(ctx.grammar, ctx.max_size,
                                                        ctx.mutation_depth, ctx.max_depth))
        children, made_by = breed_children(
            population, requested, first, second, draws, ctx.grammar, ctx.n_features,
            ctx.max_depth, ctx.max_size, ctx.mutation_depth, n_jobs)
        return Brood.from_kernel(children, made_by, first, second,
                                 int(np.count_nonzero(made_by != requested)))

    def set_weights(self, weights: dict[str, float]) -> None:
        """New relative weights by operator name (the bandit's shares); operators
        missing from `weights` keep a tiny weight so none is ever starved."""
        w = np.array([max(weights.get(op.name, 0.0), 1e-6) for op in self.operators])
        self.weights = w / w.sum()

    @property
    def _kernel_ids(self) -> np.ndarray:
        return np.array([KERNEL_IDS[op.name] for op in self.operators], dtype=np.int64)


def classic_portfolio(rates: dict[str, float], grammar: Grammar) -> Portfolio:
    """A fixed-rate portfolio of the classic operators; operators that cannot apply to
    the grammar (constant perturbation without constants) get weight 0."""
    unknown = set(rates) - set(CLASSIC)
    if unknown:
        raise ConfigError(f"search.operators: unknown operator {sorted(unknown)[0]!r}; "
                          f"expected some of: {', '.join(CLASSIC)}")
    ops, weights = [], []
    for name, w in rates.items():
        if name == "constant" and not grammar.constants.enabled:
            continue
        if w > 0:
            ops.append(CLASSIC[name])
            weights.append(w)
    if not ops:
        raise ConfigError("search.operators: no operator with a rate > 0 applies to grammar "
                          f"{grammar.name!r}")
    return Portfolio(ops, np.array(weights))
