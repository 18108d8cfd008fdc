"""Hypothesis strategies for random programs, shared by the core-slice tests.

Two flavours:
- `programs(grammar)`: a recursive strategy over the grammar's typed primitives. It
  builds the prefix codes itself, so a failing example shrinks toward a lone terminal.
- `seeded_programs(grammar)`: draws a seed, a depth and a method and calls
  hybrid_gp.generate.random_tree, so the trees are the ones the search starts from.
"""

from __future__ import annotations

from functools import cache

import hypothesis.strategies as st
import numpy as np

import hybrid_gp as hg
from hybrid_gp.generate import random_tree
from hybrid_gp.program import CONST, Program, var_code

SHIPPED = tuple(hg.list_grammars())  # every grammar in grammars/, boolean ones included
LOGIC = tuple(n for n in SHIPPED if hg.load_grammar(n).output_type == "bool")
NUMERIC = tuple(n for n in SHIPPED if n not in LOGIC)
N_FEATURES = 3


def grammar(name: str) -> hg.Grammar:
    return hg.load_grammar(name)


@cache
def _typed(g: hg.Grammar, type_: str, depth: int, n_features: int) -> st.SearchStrategy:
    """(codes, consts) of a tree returning `type_` with at most `depth` levels below it."""
    leaves = []
    if type_ == g.variable_type and n_features:
        leaves.append(st.integers(0, n_features - 1).map(lambda k: ((var_code(k),), ())))
    c = g.constants
    if c.enabled and type_ == c.type:
        values = st.floats(c.low, c.high, allow_nan=False, allow_infinity=False)
        leaves.append(values.map(lambda v: ((CONST,), (v,))))
    branches = []
    if depth > 0:
        for i in g.producers.get(type_, ()):
            prim = g.primitives[i]
            if any(g.min_height[a] > depth - 1 for a in prim.arg_types):
                continue
            args = [_typed(g, a, depth - 1, n_features) for a in prim.arg_types]
            branches.append(st.tuples(*args).map(lambda kids, i=i: _join(i, kids)))
    return st.one_of(*leaves, *branches)


def _join(code: int, kids: tuple) -> tuple[tuple[int, ...], tuple[float, ...]]:
    codes: tuple[int, ...] = (code,)
    consts: tuple[float, ...] = ()
    for kc, kv in kids:
        codes += kc
        consts += kv
    return codes, consts


def programs(grammar_name: str | None = None, max_depth: int = 4,
             n_features: int = N_FEATURES) -> st.SearchStrategy[Program]:
    """Random well-typed programs of one shipped grammar (or of any, when None)."""
    if grammar_name is None:
        return st.sampled_from(SHIPPED).flatmap(
            lambda name: programs(name, max_depth, n_features))
    g = grammar(grammar_name)
    return _typed(g, g.output_type, max_depth, n_features).map(
        lambda cc: Program(g, cc[0], cc[1]))


def seeded_programs(grammar_name: str | None = None, max_depth: int = 5,
                    n_features: int = N_FEATURES) -> st.SearchStrategy[Program]:
    """Programs grown by hybrid_gp.generate.random_tree from a drawn seed and depth."""
    names = st.sampled_from(SHIPPED) if grammar_name is None else st.just(grammar_name)

    def grow(name: str, seed: int, depth: int, method: str) -> Program:
        g = grammar(name)
        depth = max(depth, g.min_height[g.output_type])
        return random_tree(g, np.random.default_rng(seed), n_features, max_depth=depth,
                           method=method)

    return st.builds(grow, names, st.integers(0, 2**32 - 1), st.integers(0, max_depth),
                     st.sampled_from(["grow", "full"]))


def any_programs(grammar_name: str | None = None, max_depth: int = 4,
                 n_features: int = N_FEATURES) -> st.SearchStrategy[Program]:
    """Either flavour."""
    return st.one_of(programs(grammar_name, max_depth, n_features),
                     seeded_programs(grammar_name, max_depth + 1, n_features))
