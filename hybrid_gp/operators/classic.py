"""Classic GP variation operators: small functions over immutable Programs.

Each takes the rng as an argument and returns a new Program, or None when it does not
apply (no constants to perturb, no compatible node, the child would break the size or
depth limit). The random choices are made here; the tree surgery is done by the pure
transforms in hybrid_gp.program (replace_subtree, swap_subtrees, with_constants), so
those are testable on fixed indices.
"""

from __future__ import annotations

import numpy as np

from ..constraints import ROOT, contexts, is_valid
from ..generate import random_tree
from ..grammar import Grammar
from ..program import CONST, Program, replace_subtree, var_code, with_constants

INTERNAL_BIAS = 0.9  # Koza: crossover points are internal nodes 90% of the time


def node_depths(program: Program) -> list[int]:
    """Depth of every node (the root is 0), in prefix order."""
    return program.layout[1]


def _positions_of_type(program: Program, type_: str) -> list[int]:
    g = program.grammar
    if len(g.types) == 1:
        return list(range(program.size))
    return [i for i in range(program.size) if program.node_type(i) == type_]


def pick_point(program: Program, rng: np.random.Generator, candidates: list[int] | None = None,
               internal_bias: float = INTERNAL_BIAS) -> int | None:
    """A node index: internal with probability `internal_bias` when any is a candidate."""
    pool = list(range(program.size)) if candidates is None else candidates
    if not pool:
        return None
    internal = [i for i in pool if program.codes[i] >= 0]
    if internal and len(internal) < len(pool) and rng.random() < internal_bias:
        pool = internal
    elif internal and len(internal) < len(pool):
        pool = [i for i in pool if program.codes[i] < 0]
    return pool[int(rng.integers(len(pool)))]


def within_limits(p: Program, max_size: int, max_depth: int) -> bool:
    return p.size <= max_size and p.depth <= max_depth


def _valid(p: Program) -> Program | None:
    """p, or None when it breaks the grammar's constraints."""
    return p if not p.grammar.constraints or is_valid(p) else None


def subtree_crossover(a: Program, b: Program, rng: np.random.Generator, /, *,
                      max_depth: int, max_size: int) -> Program | None:
    """Replace a random subtree of `a` with a random subtree of `b` of the same type."""
    i = pick_point(a, rng)
    if i is None:
        return None
    spots = _positions_of_type(b, a.node_type(i))
    room = max_size - (a.size - (a.subtree_end(i) - i))
    fitting = [j for j in spots if b.subtree_end(j) - j <= room]
    j = pick_point(b, rng, fitting)
    if j is None:
        return None
    child = replace_subtree(a, i, b.subtree(j))
    return _valid(child) if within_limits(child, max_size, max_depth) else None


def subtree_mutation(p: Program, rng: np.random.Generator, /, *, n_features: int,
                     max_depth: int, max_size: int, new_depth: int = 4) -> Program | None:
    """Replace a random subtree by a fresh random one of the same type (grow method)."""
    i = int(rng.integers(p.size))
    room = max_depth - p.node_depth(i)
    t = p.node_type(i)
    g = p.grammar
    depth = min(room, new_depth)
    if depth < g.min_height[t]:
        return None
    context = contexts(p)[i] if g.constraints else ROOT
    sub = random_tree(g, rng, n_features, max_depth=depth, method="grow", ret_type=t,
                      context=context)
    child = replace_subtree(p, i, sub)
    return _valid(child) if within_limits(child, max_size, max_depth) else None


def _same_signature(g: Grammar, code: int) -> list[int]:
    prim = g.primitives[code]
    return [k for k, q in enumerate(g.primitives)
            if k != code and q.arg_types == prim.arg_types and q.ret_type == prim.ret_type]


def point_mutation(p: Program, rng: np.random.Generator, /, *, n_features: int,
                   rate: float | None = None) -> Program | None:
    """Swap nodes for others of the same signature: a primitive for one with the same
    argument and return types, a terminal for another terminal of its type. Each node
    changes with probability `rate` (default 1/size); at least one always does."""
    g = p.grammar
    rate = 1.0 / p.size if rate is None else rate
    chosen = [i for i in range(p.size) if rng.random() < rate] or [int(rng.integers(p.size))]
    codes = list(p.codes)
    consts = list(p.consts)
    changed = False
    for i in chosen:
        c = codes[i]
        if c >= 0:
            options = _same_signature(g, c)
            if options:
                codes[i] = options[int(rng.integers(len(options)))]
                changed = True
            continue
        t = p.node_type(i)
        has_var = t == g.variable_type and n_features > 0
        has_const = g.constants.enabled and t == g.constants.type
        k = codes[:i].count(CONST)
        if has_const and (not has_var or rng.random() < g.constants.probability):
            value = float(rng.uniform(g.constants.low, g.constants.high))
            if c == CONST:
                consts[k] = value
            else:
                codes[i] = CONST
                consts.insert(k, value)
            changed = True
        elif has_var:
            new = var_code(int(rng.integers(n_features)))
            if c == CONST:
                del consts[k]
            changed = changed or new != c
            codes[i] = new
    if not changed:
        return None
    return _valid(Program._trusted(g, tuple(codes), tuple(consts)))


def hoist_mutation(p: Program, rng: np.random.Generator, /) -> Program | None:
    """Replace a random subtree by one of its own proper subtrees of the same type."""
    internal = [i for i in range(p.size) if p.codes[i] >= 0]
    if not internal:
        return None
    i = internal[int(rng.integers(len(internal)))]
    t = p.node_type(i)
    inner = [j for j in range(i + 1, p.subtree_end(i)) if p.node_type(j) == t]
    if not inner:
        return None
    j = inner[int(rng.integers(len(inner)))]
    return _valid(replace_subtree(p, i, p.subtree(j)))


def shrink_mutation(p: Program, rng: np.random.Generator, /) -> Program | None:
    """Replace a random primitive node by one of its own arguments of the same type."""
    g = p.grammar
    internal = [i for i in range(p.size) if p.codes[i] >= 0]
    while internal:
        i = internal.pop(int(rng.integers(len(internal))))
        prim = g.primitives[p.codes[i]]
        children, j = [], i + 1
        for arg_type in prim.arg_types:
            if arg_type == prim.ret_type:
                children.append(j)
            j = p.subtree_end(j)
        if children:
            j = children[int(rng.integers(len(children)))]
            return _valid(replace_subtree(p, i, p.subtree(j)))
    return None


def constant_perturbation(p: Program, rng: np.random.Generator, /, *,
                          scale: float = 0.1) -> Program | None:
    """Add Gaussian noise, sigma = scale * max(1, |c|), to each constant with
    probability 1/2 (at least one). None if the program has no constants."""
    n = len(p.consts)
    if not n:
        return None
    values = np.asarray(p.consts)
    mask = np.array([rng.random() < 0.5 for _ in range(n)])
    if not mask.any():
        mask[int(rng.integers(n))] = True
    noise = np.array([rng.normal(0.0, scale) for _ in range(n)]) * np.maximum(1.0, np.abs(values))
    new = np.where(mask, values + noise, values)
    if not np.all(np.isfinite(new)):
        return None
    return with_constants(p, new.tolist())
