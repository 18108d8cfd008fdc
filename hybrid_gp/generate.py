"""Random typed trees: grow, full and ramped half-and-half.

Unlike DEAP's genFull/genGrow, generation never fails on a type that has terminals but
no primitives (it places a terminal early) or primitives but no terminals (it only picks
primitives that can still be completed within the depth left, using the grammar's
minimum completion heights).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .constraints import ROOT, child_context, tables
from .errors import ConfigError
from .grammar import NEVER, Grammar, completion_heights, load_grammar
from .program import CONST, Program, var_code


@dataclass(frozen=True)
class _Choices:
    prims: tuple[int, ...]  # primitive positions returning the type
    heights: tuple[int, ...]  # their minimum completion heights
    has_var: bool
    has_const: bool


def _min_heights(grammar: Grammar, with_variables: bool) -> dict[str, int]:
    """Grammar.min_height, or the same without variables (a program of 0 features)."""
    if with_variables:
        return grammar.min_height
    c = grammar.constants
    return completion_heights(grammar, {c.type} if c.enabled else set())


@lru_cache(maxsize=64)
def _choices(grammar: Grammar, with_variables: bool = True) -> dict[str, _Choices]:
    mh = _min_heights(grammar, with_variables)
    out = {}
    for t in grammar.types:
        prims = grammar.producers.get(t, ())
        heights = tuple(1 + max((mh[a] for a in grammar.primitives[i].arg_types), default=0)
                        for i in prims)
        out[t] = _Choices(prims, heights, with_variables and t == grammar.variable_type,
                          grammar.constants.enabled and t == grammar.constants.type)
    return out


def random_codes(grammar: Grammar, rng: np.random.Generator, n_features: int, *,
                 max_depth: int, min_depth: int = 0, method: str = "grow",
                 ret_type: str | None = None,
                 context: tuple[int, int] = ROOT) -> tuple[list[int], list[float]]:
    """Prefix codes and constants of one random tree (see module docstring).

    Only primitives the grammar's constraints allow are picked, given `context` (the
    constraint context of the node the tree will hang from; hybrid_gp.constraints). When
    the constraints leave a node that needs a primitive with none, they are ignored there
    (and the operator that asked for the tree rejects the result)."""
    choices = _choices(grammar, n_features > 0)
    want = ret_type or grammar.output_type
    need = _min_heights(grammar, n_features > 0)[want]
    if need >= NEVER:
        raise ConfigError(f"grammar {grammar.name!r} cannot build a tree of type {want!r} "
                          f"from {n_features} input variables: it needs at least one")
    if need > max_depth:
        raise ConfigError(f"max_depth={max_depth} is too small for grammar {grammar.name!r}: "
                          f"type {want!r} needs depth >= {need}")
    lo, hi = grammar.constants.low, grammar.constants.high
    p_const = grammar.constants.probability
    codes: list[int] = []
    consts: list[float] = []
    constrained = bool(grammar.constraints)
    if constrained:
        group_array, forbidden_array = tables(grammar)
        groups, forbidden = group_array.tolist(), forbidden_array.tolist()
    todo: list[tuple[str, int, tuple[int, int]]] = [(want, 0, context)]
    while todo:
        t, d, ctx = todo.pop()
        ch = choices[t]
        left = max_depth - d
        feasible = [i for i, h in zip(ch.prims, ch.heights, strict=True) if h <= left]
        if constrained:
            mask, parent = ctx  # constraints.allowed, with the tables looked up once
            permitted = [i for i in feasible if not (groups[i] & mask)
                         and not (parent >= 0 and forbidden[parent][i])]
            if permitted or (ch.has_var and n_features > 0) or ch.has_const:
                feasible = permitted
        can_var = ch.has_var and n_features > 0
        n_terms = int(can_var) + int(ch.has_const)
        if not n_terms:
            use_prim = True
        elif not feasible or left <= 0:
            use_prim = False
        elif d < min_depth or method == "full":
            use_prim = True
        else:  # grow: terminals and primitives in proportion to their numbers
            n_term_symbols = (n_features if can_var else 0) + int(ch.has_const)
            use_prim = rng.random() < len(feasible) / (len(feasible) + n_term_symbols)
        if use_prim:
            i = feasible[int(rng.integers(len(feasible)))]
            codes.append(i)
            below = child_context(grammar, i, ctx) if constrained else ROOT
            todo.extend((a, d + 1, below) for a in reversed(grammar.primitives[i].arg_types))
        elif ch.has_const and (not can_var or rng.random() < p_const):
            codes.append(CONST)
            consts.append(float(rng.uniform(lo, hi)))
        else:
            codes.append(var_code(int(rng.integers(n_features))))
    return codes, consts


def random_tree(grammar: Grammar, rng: np.random.Generator, n_features: int, *,
                max_depth: int, min_depth: int = 0, method: str = "grow",
                ret_type: str | None = None, context: tuple[int, int] = ROOT) -> Program:
    """One random Program (or subtree, with ret_type) by the grow or full method."""
    codes, consts = random_codes(grammar, rng, n_features, max_depth=max_depth,
                                 min_depth=min_depth, method=method, ret_type=ret_type,
                                 context=context)
    return Program._trusted(grammar, tuple(codes), tuple(consts))


def ramped_half_and_half(grammar: Grammar, rng: np.random.Generator, n: int,
                         n_features: int, min_depth: int = 2, max_depth: int = 6,
                         max_size: int | None = None) -> list[Program]:
    """Koza's initialisation: depths cycle min..max; half grow, half full.

    With `max_size`, a tree over that many nodes is grown again (grow method, at its
    depth and then shallower, below min_depth if need be) until it fits, so the
    search's size limit holds from the first generation; until the first tree that
    does not fit, the draws are exactly those made without the limit."""
    if min_depth < 0 or max_depth < min_depth:
        raise ConfigError(f"need 0 <= min_depth <= max_depth, got {min_depth}, {max_depth}")
    depths = range(min_depth, max_depth + 1)
    out = []
    for k in range(n):
        depth = depths[k % len(depths)]
        method = "full" if (k // len(depths)) % 2 else "grow"
        tree = random_tree(grammar, rng, n_features, max_depth=depth,
                           min_depth=min(min_depth, depth), method=method)
        if max_size is not None and tree.size > max_size:
            tree = _regrow_within(grammar, rng, n_features, depth, min_depth, max_size)
        out.append(tree)
    return out


_REGROW_TRIES = 8  # grow attempts per depth before trying one level shallower


def _regrow_within(grammar: Grammar, rng: np.random.Generator, n_features: int,
                   depth: int, min_depth: int, max_size: int) -> Program:
    for d in range(depth, -1, -1):
        for _ in range(_REGROW_TRIES):
            try:
                tree = random_tree(grammar, rng, n_features, max_depth=d,
                                   min_depth=min(min_depth, d), method="grow")
            except ConfigError:  # the grammar's output type needs more depth than d
                break
            if tree.size <= max_size:
                return tree
    raise ConfigError(f"max_size={max_size} is too small for grammar {grammar.name!r}: no "
                      f"random tree it can build fits in it")


def random_programs(grammar: Grammar | str, n: int, n_features: int,
                    seed: int | np.random.Generator | None = 0, min_depth: int = 2,
                    max_depth: int = 6) -> list[Program]:
    """`n` random programs by ramped half-and-half (the same seed gives the same list)."""
    g = load_grammar(grammar)
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    if n_features < 0:
        raise ConfigError(f"n_features must be >= 0, got {n_features}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return ramped_half_and_half(g, rng, n, n_features, min_depth, max_depth)
