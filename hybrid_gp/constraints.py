"""The grammar's search-space constraints as tables, and checks over programs.

A node's *context* is (mask, parent): the OR of the no-nesting groups of its ancestors
and the primitive directly above it (-1 at the root). A primitive may stand at a node
when none of its groups is in the mask and (parent, primitive) is not a forbidden pair.
Tree growth only picks allowed primitives; operators check the children they make.
The batch breeder (kernels/variation.py) reads the same tables.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .grammar import Grammar
from .program import Program

ROOT = (0, -1)  # the context of a root: no ancestors, no parent


@lru_cache(maxsize=64)
def tables(grammar: Grammar) -> tuple[np.ndarray, np.ndarray]:
    """(group mask per primitive, forbidden[parent, child] matrix)."""
    index = grammar.index
    n = len(grammar.primitives)
    groups = np.zeros(n, dtype=np.int64)
    for g, members in enumerate(grammar.constraints.no_nesting):
        for name in members:
            groups[index[name]] |= np.int64(1) << g
    forbidden = np.zeros((n, n), dtype=np.bool_)
    for parent, child in grammar.constraints.no_parent_child:
        forbidden[index[parent], index[child]] = True
    return groups, forbidden


def allowed(grammar: Grammar, prim: int, context: tuple[int, int]) -> bool:
    """Whether primitive `prim` may stand at a node with this context."""
    if not grammar.constraints:
        return True
    groups, forbidden = tables(grammar)
    mask, parent = context
    return not (int(groups[prim]) & mask) and not (parent >= 0 and forbidden[parent, prim])


def child_context(grammar: Grammar, prim: int, context: tuple[int, int]) -> tuple[int, int]:
    """The context of the arguments of a node holding `prim`."""
    if not grammar.constraints:
        return ROOT
    groups, _ = tables(grammar)
    return (context[0] | int(groups[prim]), prim)


def contexts(program: Program) -> list[tuple[int, int]]:
    """The context of every node, in prefix order."""
    g = program.grammar
    arities = g.arities
    out: list[tuple[int, int]] = []
    open_nodes: list[list] = []  # [context for my children, children still to come]
    for c in program.codes:
        ctx = open_nodes[-1][0] if open_nodes else ROOT
        out.append(ctx)
        a = arities[c] if c >= 0 else 0
        if a:
            open_nodes.append([child_context(g, c, ctx), a])
            continue
        while open_nodes:
            open_nodes[-1][1] -= 1
            if open_nodes[-1][1]:
                break
            open_nodes.pop()
    return out


def is_valid(program: Program) -> bool:
    """Whether every primitive of the program is allowed where it stands."""
    g = program.grammar
    if not g.constraints:
        return True
    return all(c < 0 or allowed(g, c, ctx)
               for c, ctx in zip(program.codes, contexts(program), strict=True))
