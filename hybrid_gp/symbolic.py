"""PyGlove views of programs, for users who edit programs symbolically.

`Program.to_pyglove()` gives a tree of `Apply`, `Var` and `Const` objects: typed,
queryable (`pg.query`), rebindable, JSON round-trippable. It is a view at the edge:
the search never builds these (a PyGlove node costs 40-480 us; a tuple 0.03 us).
"""

# No `from __future__ import annotations`: PyGlove reads the field annotations.
from typing import Any

import pyglove as pg

from .config import stable_name
from .errors import ConversionError
from .grammar import Grammar
from .program import CONST, Program, var_code, var_index


@stable_name("hybrid_gp.symbolic.Expr")
class Expr(pg.Object):
    """Base of the symbolic program nodes."""



@stable_name("hybrid_gp.symbolic.Var")
class Var(Expr):
    """Input column x{index}."""

    index: pg.typing.Annotated[pg.typing.Int(min_value=0), "column index"]


@stable_name("hybrid_gp.symbolic.Const")
class Const(Expr):
    """A numeric constant."""

    value: float


@stable_name("hybrid_gp.symbolic.Apply")
class Apply(Expr):
    """A primitive of the grammar applied to arguments."""

    op: pg.typing.Annotated[str, "primitive name in the grammar"]
    args: pg.typing.Annotated[pg.typing.List(pg.typing.Object(Expr)), "arguments, in order"]


def to_pyglove(program: "Program") -> Expr:
    g = program.grammar
    stack: list[Expr] = []
    k = len(program.consts)
    for c in reversed(program.codes):
        if c == CONST:
            k -= 1
            stack.append(Const(value=program.consts[k]))
        elif c < -1:
            stack.append(Var(index=var_index(c)))
        else:
            prim = g.primitives[c]
            stack.append(Apply(op=prim.name, args=[stack.pop() for _ in range(prim.arity)]))
    return stack[0]


def from_pyglove(node: Any, grammar: Grammar) -> Program:
    codes: list[int] = []
    consts: list[float] = []
    todo = [node]
    while todo:
        n = todo.pop()
        if isinstance(n, Apply):
            if n.op not in grammar.index:
                raise ConversionError(f"grammar {grammar.name!r} has no primitive {n.op!r}")
            codes.append(grammar.index[n.op])
            todo.extend(reversed(list(n.args)))
        elif isinstance(n, Var):
            codes.append(var_code(n.index))
        elif isinstance(n, Const):
            codes.append(CONST)
            consts.append(float(n.value))
        else:
            raise ConversionError(f"expected Apply, Var or Const, got {type(n).__name__}")
    try:
        return Program(grammar, codes, consts)
    except ValueError as exc:
        raise ConversionError(f"invalid program: {exc}") from None
