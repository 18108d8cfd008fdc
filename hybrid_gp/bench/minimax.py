"""Polynomial coefficients of kernels/vecmath.py: `python -m hybrid_gp.bench.minimax`.

Fits the minimax polynomials vecmath uses, with double coefficients, and prints them
with their maximum error (about 15 s). Method: on a dense Chebyshev grid of the
interval, the residual of a start polynomial is computed in mpmath (50 digits); a
linear program (scipy's HiGHS, in double: it only fits corrections, so double is
enough) finds the corrections that minimise the largest weighted residual; twice
more from the corrected polynomial. Then the coefficients are rounded to double one
at a time, lowest degree first, and the ones not yet rounded refitted after each
(a greedy form of Sollya's fpminimax). The error printed is measured afresh in
mpmath on 20,001 evenly spaced points with the rounded coefficients.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from fractions import Fraction

import mpmath
import numpy as np
from mpmath import mpf
from scipy.optimize import linprog


def _lp(residual: np.ndarray, basis: np.ndarray) -> tuple[np.ndarray, float]:
    """Corrections d minimising max |residual - basis @ d| (columns scaled first)."""
    col = np.abs(basis).max(axis=0)
    scale = np.abs(residual).max() or 1.0
    m, n = basis.shape
    ones = np.ones((m, 1))
    a_ub = np.vstack([np.hstack([-basis / col, -ones]), np.hstack([basis / col, -ones])])
    b_ub = np.concatenate([-residual / scale, residual / scale])
    cost = np.zeros(n + 1)
    cost[-1] = 1.0
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, bounds=[(None, None)] * n + [(0, None)],
                  method="highs")
    if not res.success:
        raise RuntimeError(res.message)
    return res.x[:n] * scale / col, float(res.x[-1] * scale)


def fit(f: Callable, w: Callable, lo: float, hi: float, degree: int,
        grid: int = 6000) -> list[float]:
    """Doubles c_0..c_degree minimising max |w(x) (f(x) - sum c_k x**k)| on [lo, hi]."""
    a, b = mpf(lo), mpf(hi)
    xs = [a + (b - a) * (1 - mpmath.cos(mpmath.pi * i / grid)) / 2 for i in range(grid + 1)]
    fx = [f(x) for x in xs]
    wx = [w(x) for x in xs]
    basis = np.array([[float(wv * x**k) for k in range(degree + 1)]
                      for x, wv in zip(xs, wx, strict=True)])
    c = [mpf(0)] * (degree + 1)

    def residual() -> np.ndarray:
        return np.array([float(wv * (fv - mpmath.polyval(c[::-1], x)))
                         for x, fv, wv in zip(xs, fx, wx, strict=True)])

    for first in range(degree + 2):  # first: how many are rounded already
        if first:
            c[first - 1] = mpf(float(c[first - 1]))
        free = list(range(first, degree + 1))
        for _ in range(3 if first == 0 else 2):
            if free:
                d, _ = _lp(residual(), basis[:, free])
                for k, dk in zip(free, d, strict=True):
                    c[k] += mpf(float(dk))
    return [float(v) for v in c]


def max_error(g: Callable, lo: float, hi: float, n: int = 20_000) -> float:
    """max |g(x)| on n + 1 evenly spaced points of [lo, hi], in mpmath."""
    a, b = mpf(lo), mpf(hi)
    return float(max(abs(g(a + (b - a) * i / n)) for i in range(n + 1)))


def log_r_range() -> tuple[float, float]:
    """The range of r = z/c - 1 over vecmath's log cells (at the cells' ends)."""
    from ..kernels import vecmath as vm

    ends = []
    for j in range(vm._LOG_N):
        invc = Fraction(((int(vm._LOG_PACKED[j]) & 255) + 176), 256)
        for off in (0, (1 << 45) - 1):
            z = float(np.int64(vm._LOG_OFF + (j << 45) + off).view(np.float64))
            ends.append(Fraction(z) * invc - 1)
    return float(min(ends)), float(max(ends))


def _expm1_rest(r: mpf) -> mpf:
    return mpf(1) / 2 if r == 0 else (mpmath.expm1(r) - r) / r**2


def _log1p_rest(r: mpf) -> mpf:
    return mpf(1) / 3 if r == 0 else (mpmath.log1p(r) - r + r * r / 2) / r**3


def _show(name: str, coefs: list[float], err: float) -> None:
    print(f"{name}: max error 2**{np.log2(err):.2f}")
    for k, v in enumerate(coefs):
        print(f"    {k}: {v!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hybrid_gp.bench.minimax",
                                description="fit vecmath's polynomial coefficients")
    p.add_argument("--grid", type=int, default=6000, help="grid points per fit")
    args = p.parse_args(argv)
    mpmath.mp.dps = 50

    def exp_error(c: list[float]) -> Callable:
        return lambda r: (1 + r + r * r * mpmath.polyval(c[::-1], r)) / mpmath.exp(r) - 1

    # exp1, tanh1: e**r - 1 - r = r**2 (E0 + ... + E10 r**10), |r| <= ln2/2; error
    # relative to e**r.
    h = float(mpmath.log(2) / 2) + 2.0**-30
    c = fit(_expm1_rest, lambda r: r * r / mpmath.exp(r), -h, h, 10, args.grid)
    _show("_E (exp1, |r| <= ln2/2)", c, max_error(exp_error(c), -h, h))
    # pow's exp: the same on |r| <= ln2/256 (and a little more), E0..E3.
    h = 0.002709
    c = fit(_expm1_rest, lambda r: r * r / mpmath.exp(r), -h, h, 3, args.grid)
    _show("_C (pow's exp, |r| <= 0.002709)", c, max_error(exp_error(c), -h, h))
    # pow's log: log(1 + r) - r + r**2/2 = r**3 (P0 + ... + P5 r**5) on the cells' r
    # range; error relative to log(1 + r).
    lo, hi = log_r_range()
    c = fit(_log1p_rest, lambda r: r**3 / mpmath.log1p(r) if r else mpf(0), lo, hi, 5,
            args.grid)

    def log_error(r: mpf) -> mpf:
        if r == 0:
            return mpf(0)
        return (r - r * r / 2 + r**3 * mpmath.polyval(c[::-1], r)) / mpmath.log1p(r) - 1

    _show(f"_P (pow's log, r in [{lo:.6f}, {hi:.6f}])", c, max_error(log_error, lo, hi))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
