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
    if _truth_valued(c):
        # if(...) between truth values, used as a truth value: the Boolean ITE chain.
        # Ne(Piecewise(...), 0) would mix a condition and a number, and sympy folds
        # Ne(Piecewise((x0, x0), (x1, True)), 0) into the wrong Ne(x0, 0).
        out: sp.Basic = sp.false
        for e, cond in reversed(c.args):
            out = sp.ITE(cond, _truth(e), out)
        return out
    return sp.Ne(c, 0)


def _truth_valued(e: sp.Basic) -> bool:
    """A Boolean, or a Piecewise (from `if`) whose every value is truth-valued."""
    if isinstance(e, sp.logic.boolalg.Boolean):
        return True
    return isinstance(e, sp.Piecewise) and all(_truth_valued(v) for v, _ in e.args)


def _div(a: sp.Basic, b: sp.Basic) -> sp.Basic:
    """a / b, also for two Floats: sympy raises ZeroDivisionError on Float / Float(0)
    (Integer / 0 gives zoo, and so does this)."""
    return a * sp.Pow(b, -1)


def _guarded(guard: sp.Basic, value_if_guard: sp.Basic, value: sp.Basic) -> sp.Basic:
    return sp.Piecewise((value_if_guard, guard), (value, True))


def _nonzero(a: sp.Basic) -> sp.Basic:
    """`a` for use where the guard |a| <= EPS is known to be false.

    A Piecewise branch whose value is exactly 0, at the top of `a` or in a factor of it,
    cannot be reached there, so it becomes 1. Without this sympy distributes 1/a and
    log|a| into the branches, leaves zoo in the unreachable one, and a later
    piecewise_fold of a guard meets 0 * zoo = nan and raises "Invalid NaN comparison".
    """
    if isinstance(a, sp.Piecewise):
        return sp.Piecewise(*[(sp.Integer(1) if e == 0 else _nonzero(e), c)
                              for e, c in a.args])
    if isinstance(a, sp.Mul):
        return sp.Mul(*[_nonzero(f) for f in a.args])
    if isinstance(a, sp.Pow) and a.exp.is_positive:
        return sp.Pow(_nonzero(a.base), a.exp)
    if isinstance(a, sp.Abs):
        return sp.Abs(_nonzero(a.args[0]))
    return a


@dataclass(frozen=True)
class SympyOp:
    plain: Callable[..., sp.Basic]
    protected: Callable[..., sp.Basic]


def _plain_unless_numeric(plain: Callable[..., sp.Basic], protected: Callable[..., sp.Basic],
                          guarded: int, by_sign: bool) -> Callable[..., sp.Basic]:
    """The plain reading, except when the guarded argument (the divisor, the argument of
    log or sqrt, the base of pow) is a number: then the protected reading gives the
    value the kernels compute (log(x0 - x0) is 0 and x0 / (x0 - x0) is 1, never zoo).
    Operators read through |.| (`by_sign`) get the argument negated when sympy can
    tell it is never positive, since |a| = -a there: sqrt(-x0**2) reads sqrt(x0**2),
    which is |x0|, not I*|x0|."""

    def build(*args: sp.Basic) -> sp.Basic:
        arg = args[guarded]
        if getattr(arg, "is_number", False):
            return protected(*args)
        if by_sign and getattr(arg, "is_nonpositive", None) is True:
            return plain(*args[:guarded], -arg, *args[guarded + 1:])
        return plain(*args)

    return build


def _same(fn: Callable[..., sp.Basic]) -> SympyOp:
    return SympyOp(fn, fn)


SYMPY_BUILDERS: dict[str, SympyOp] = {
    "add": _same(lambda a, b: a + b),
    "sub": _same(lambda a, b: a - b),
    "mul": _same(lambda a, b: a * b),
    "div": SympyOp(_div,
                   lambda a, b: _guarded(sp.Abs(b) <= _EPS, sp.Integer(1),
                                         _div(a, _nonzero(b)))),
    "neg": _same(lambda a: -a),
    "abs": _same(sp.Abs),
    "square": _same(lambda a: a**2),
    "cube": _same(lambda a: a**3),
    "inv": SympyOp(lambda a: sp.Pow(a, -1),
                   lambda a: _guarded(sp.Abs(a) <= _EPS, sp.Integer(1),
                                      sp.Pow(_nonzero(a), -1))),
    "sqrt": SympyOp(sp.sqrt, lambda a: sp.sqrt(sp.Abs(a))),
    "exp": _same(sp.exp),
    "log": SympyOp(sp.log,
                   lambda a: _guarded(sp.Abs(a) <= _EPS, sp.Integer(0),
                                      sp.log(sp.Abs(_nonzero(a))))),
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

# Guarded operations read plainly, but numeric arguments get the kernels' value.
for _name, _arg in (("div", 1), ("inv", 0), ("sqrt", 0), ("log", 0), ("pow", 0)):
    _op = SYMPY_BUILDERS[_name]
    SYMPY_BUILDERS[_name] = SympyOp(
        _plain_unless_numeric(_op.plain, _op.protected, _arg, _name in ("sqrt", "log", "pow")),
        _op.protected)
