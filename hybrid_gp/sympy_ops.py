"""Sympy meaning of each operation, in two readings (docs/semantics.md).

`plain`: the formula a person writes (a/b, log(a), sqrt(a)); used for reports,
simplification and exact-recovery checks. `protected`: exactly what the kernels compute
(guards as Piecewise, Abs inside log/sqrt/pow); it agrees with `evaluate` everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from .kernels.opcodes import EPS

_EPS = sp.Float(EPS)


def _truth(c: sp.Basic) -> sp.Basic:
    """A sympy condition for a value used as a truth value (non-zero is true)."""
    if isinstance(c, sp.logic.boolalg.Boolean):
        return c
    return sp.Ne(c, 0)


def _guarded(guard: sp.Basic, value_if_guard: sp.Basic, value: sp.Basic) -> sp.Basic:
    return sp.Piecewise((value_if_guard, guard), (value, True))


@dataclass(frozen=True)
class SympyOp:
    plain: Callable[..., sp.Basic]
    protected: Callable[..., sp.Basic]


def _same(fn: Callable[..., sp.Basic]) -> SympyOp:
    return SympyOp(fn, fn)


SYMPY_BUILDERS: dict[str, SympyOp] = {
    "add": _same(lambda a, b: a + b),
    "sub": _same(lambda a, b: a - b),
    "mul": _same(lambda a, b: a * b),
    "div": SympyOp(lambda a, b: a / b,
                   lambda a, b: _guarded(sp.Abs(b) <= _EPS, sp.Integer(1), a / b)),
    "neg": _same(lambda a: -a),
    "abs": _same(sp.Abs),
    "square": _same(lambda a: a**2),
    "cube": _same(lambda a: a**3),
    "inv": SympyOp(lambda a: 1 / a,
                   lambda a: _guarded(sp.Abs(a) <= _EPS, sp.Integer(1), 1 / a)),
    "sqrt": SympyOp(sp.sqrt, lambda a: sp.sqrt(sp.Abs(a))),
    "exp": _same(sp.exp),
    "log": SympyOp(sp.log,
                   lambda a: _guarded(sp.Abs(a) <= _EPS, sp.Integer(0), sp.log(sp.Abs(a)))),
    "sin": _same(sp.sin),
    "cos": _same(sp.cos),
    "tanh": _same(sp.tanh),
    "pow": SympyOp(lambda a, b: a**b, lambda a, b: sp.Abs(a) ** b),
    "min": _same(sp.Min),
    "max": _same(sp.Max),
    "and": _same(lambda a, b: sp.And(_truth(a), _truth(b))),
    "or": _same(lambda a, b: sp.Or(_truth(a), _truth(b))),
    "not": _same(lambda a: sp.Not(_truth(a))),
    "nand": _same(lambda a, b: sp.Nand(_truth(a), _truth(b))),
    "nor": _same(lambda a, b: sp.Nor(_truth(a), _truth(b))),
    "xor": _same(lambda a, b: sp.Xor(_truth(a), _truth(b))),
    "if": _same(lambda c, a, b: sp.Piecewise((a, _truth(c)), (b, True))),
    "gt": _same(lambda a, b: sp.StrictGreaterThan(a, b)),
    "lt": _same(lambda a, b: sp.StrictLessThan(a, b)),
}
