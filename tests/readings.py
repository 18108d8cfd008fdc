"""Numeric helpers for comparing a program with its sympy readings.

Comparisons skip only rows where the program is ill-conditioned: rows whose kernel
output moves by more than 1e-7 (relative) when inputs and constants move by 1e-12.
There a few ulps of rounding (sympy reassociates sums, lambdify prints floats with 15
digits) legitimately change the result; everywhere else the values must agree.
Guarded regions (a divisor or log argument of exactly 0) stay in: scaling an exact
zero keeps it zero.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp

from hybrid_gp.kernels.opcodes import EPS
from hybrid_gp.program import Program, with_constants


def stable_rows(p: Program, X: np.ndarray, delta: float = 1e-12) -> np.ndarray:
    """Rows with a finite kernel output that barely moves under tiny perturbations and
    where no intermediate result underflowed."""
    base = p.evaluate(X)
    ok = (np.isfinite(base) & ~underflow_rows(p, X) & ~infinite_rows(p, X)
          & ~huge_angle_rows(p, X))
    for sx, sc in itertools.product((1 + delta, 1 - delta), repeat=2):
        moved = with_constants(p, [c * sc for c in p.consts]).evaluate(X * sx)
        ok &= np.isclose(moved, base, rtol=1e-7, atol=1e-9)
    return ok


UNDERFLOWING = frozenset({"mul", "div", "pow", "exp", "square"})


def underflow_rows(p: Program, X: np.ndarray) -> np.ndarray:
    """Rows where a product, quotient, power or exp of nonzero values rounds to zero
    or a subnormal. A sympy reading may compute the same value another way round
    ((a**b)**c as a**(b*c)) and keep it normal, so such rows cannot be compared."""
    values = {i: p.subtree(i).evaluate(X) for i in range(p.size)}
    flagged = np.zeros(len(X), dtype=bool)
    for i in range(p.size):
        c = p.codes[i]
        if c < 0 or p.grammar.primitives[c].op not in UNDERFLOWING:
            continue
        children, j = [], i + 1
        while j < p.subtree_end(i):
            children.append(values[j])
            j = p.subtree_end(j)
        inputs_nonzero = np.all([np.isfinite(v) & (v != 0) for v in children], axis=0)
        tiny = np.abs(values[i]) < np.finfo(np.float64).tiny
        flagged |= inputs_nonzero & tiny
    return flagged


def infinite_rows(p: Program, X: np.ndarray) -> np.ndarray:
    """Rows where some subtree is infinite although the whole is finite. A sympy reading
    may take such a value another way round: exp(x0) ** x0 ** x2 at x0 = 0, x2 = -2 is
    1 ** inf = 1 in IEEE arithmetic, but sympy writes it exp(x0 * |x0| ** x2), which is
    exp(0 * inf) = NaN."""
    flagged = np.zeros(len(X), dtype=bool)
    with np.errstate(all="ignore"):
        for i in range(1, p.size):
            flagged |= np.isinf(p.subtree(i).evaluate(X))
    return flagged


PERIODIC = frozenset({"sin", "cos", "tan"})
HUGE_ANGLE = 1e6  # one ULP of the angle is over 1e-10 rad here


def huge_angle_rows(p: Program, X: np.ndarray) -> np.ndarray:
    """Rows where sin, cos or tan gets a huge angle. There the last bit of the angle
    decides the result, and a sympy reading may compute the angle another way round
    (square(exp(x1 / x2)) as exp(2 * x1 / x2)); scaling every input by the same
    factor, as stable_rows does, leaves a ratio like x1 / x2 unmoved, so only the
    angle itself tells."""
    flagged = np.zeros(len(X), dtype=bool)
    with np.errstate(all="ignore"):
        for i, c in enumerate(p.codes):
            if c >= 0 and p.grammar.primitives[c].op in PERIODIC:
                flagged |= ~(np.abs(p.subtree(i + 1).evaluate(X)) <= HUGE_ANGLE)
    return flagged


def _ite_as_and_or(c: sp.Basic, a: sp.Basic, b: sp.Basic) -> sp.Basic:
    return sp.And(sp.Or(sp.Not(c), a), sp.Or(c, b))


def sympy_values(expr: sp.Basic, X: np.ndarray) -> np.ndarray:
    """Lambdify over numpy, working around two gaps of sympy 1.14's numpy printer:
    an ITE inside a condition prints as a float-valued select (so it is rewritten
    with And/Or first), and zoo, which can sit in an unreachable Piecewise branch,
    cannot be printed (it becomes an argument fed NaN, which can only make a
    comparison fail)."""
    syms = [sp.Symbol(f"x{k}", real=True) for k in range(X.shape[1])]
    zoo = sp.Symbol("zoo_placeholder")
    expr = sp.sympify(expr).replace(sp.ITE, _ite_as_and_or).xreplace({sp.zoo: zoo})
    f = sp.lambdify([*syms, zoo], expr, modules="numpy")
    with np.errstate(all="ignore"):
        out = f(*X.T, np.nan)
    return np.broadcast_to(np.asarray(out), (X.shape[0],))


GUARDED = {"div", "inv", "log", "sqrt", "pow"}


def plain_rows(p: Program, X: np.ndarray) -> np.ndarray:
    """Rows where every guard of p is inactive and the plain formula is real: divisors
    above EPS, log and pow bases positive, sqrt arguments non-negative."""
    ok = np.ones(X.shape[0], dtype=bool)
    g = p.grammar
    with np.errstate(all="ignore"):
        for i, c in enumerate(p.codes):
            if c < 0 or g.primitives[c].op not in GUARDED:
                continue
            op = g.primitives[c].op
            first = i + 1
            a = p.subtree(first).evaluate(X)
            if op == "div":
                b = p.subtree(p.subtree_end(first)).evaluate(X)
                ok &= np.abs(b) > 1e3 * EPS
            elif op == "inv":
                ok &= np.abs(a) > 1e3 * EPS
            elif op == "log":
                ok &= a > 1e3 * EPS
            elif op == "sqrt":
                ok &= a >= 0
            else:  # pow
                ok &= a > 1e3 * EPS
    return ok


def assert_agree(expected: np.ndarray, got: np.ndarray, rows: np.ndarray, text: str) -> None:
    got = np.asarray(got)
    if np.iscomplexobj(got):
        assert np.allclose(got.imag[rows], 0.0, atol=1e-9), text
        got = got.real
    np.testing.assert_allclose(got[rows].astype(float), expected[rows], rtol=1e-6,
                               atol=1e-8, err_msg=text)
