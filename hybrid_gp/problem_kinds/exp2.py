"""Approximating 2^x on [0, 1] (after AutoNumerics-Zero): two objectives, the maximum
relative error and the number of operations that touch x.

The error the engine minimises is max |p(x) - 2^x| / 2^x over a fine grid of [0, 1];
the complexity objective of the Pareto front is `operation_count`, so the front trades
accuracy for operations. The reference point is the degree-5 minimax polynomial in
Horner form (10 operations), computed here by the Remez exchange algorithm.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..compiler import CompiledBatch
from ..errors import ProblemError
from ..evaluation import evaluate_features, resolve_jobs
from ..formula import Formula
from ..grammar import Grammar, load_grammar
from ..problem import Dataset, Problem, ProblemKind, read_budget, sample_inputs
from ..program import CONST, Program

BASELINE_DEGREE = 5


def target(x: np.ndarray) -> np.ndarray:
    return np.exp2(x)


def max_relative_error(outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """max over columns of |out - y| / |y|, per row of outputs; inf if any is not finite."""
    with np.errstate(all="ignore"):
        rel = np.abs(outputs - y) / np.abs(y)
    worst = np.max(rel, axis=1) if rel.shape[1] else np.zeros(rel.shape[0])
    return np.where(np.all(np.isfinite(outputs), axis=1), worst, np.inf)


def operation_count(program: Program) -> int:
    """Operations whose operands depend on x: constant subtrees would be folded into
    one constant, so they cost nothing (AutoNumerics-Zero's count)."""
    arities = program.grammar.arities
    touches: list[bool] = []  # per node, in reverse prefix order, as a stack
    count = 0
    for c in reversed(program.codes):
        if c == CONST:
            touches.append(False)
        elif c < -1:
            touches.append(True)
        else:
            args = [touches.pop() for _ in range(arities[c])]
            hit = any(args)
            count += hit
            touches.append(hit)
    return count


# ---------------------------------------------------------------------- minimax baseline


def minimax_polynomial(f: Callable[[np.ndarray], np.ndarray], degree: int, low: float,
                       high: float, *, relative: bool = True, grid: int = 100_001,
                       max_iter: int = 50) -> tuple[np.ndarray, float]:
    """Coefficients (lowest power first) of the polynomial of `degree` that minimises
    the maximum (relative) error to f on [low, high], by the Remez exchange algorithm;
    and that error, measured on a `grid`-point mesh."""
    n = degree
    k = np.arange(n + 2)
    ref = (low + high) / 2 - (high - low) / 2 * np.cos(np.pi * k / (n + 1))  # Chebyshev
    dense = np.linspace(low, high, grid)
    fd = f(dense)
    weight = np.abs(fd) if relative else np.ones_like(fd)
    worst = np.inf
    for _ in range(max_iter):
        fx = f(ref)
        wx = np.abs(fx) if relative else np.ones_like(fx)
        system = np.hstack([np.vander(ref, n + 1, increasing=True),
                            -((-1.0) ** k * wx)[:, None]])
        solution = np.linalg.solve(system, fx)
        coeffs, level = solution[:-1], abs(solution[-1])
        err = (np.polynomial.polynomial.polyval(dense, coeffs) - fd) / weight
        worst = float(np.max(np.abs(err)))
        floor = 16 * np.finfo(np.float64).eps * float(np.max(np.abs(fd) / weight))
        if worst - level <= 1e-6 * worst or worst <= floor:  # converged, or exact
            return coeffs, worst
        ref = _alternating_extrema(dense, err, n + 2)
    raise ArithmeticError(f"Remez exchange did not converge in {max_iter} iterations "
                          f"(error {worst:.3g})")


def _alternating_extrema(x: np.ndarray, err: np.ndarray, count: int) -> np.ndarray:
    """The largest |err| of each run of equal sign; keeps the `count` that alternate
    around the global maximum."""
    sign = np.sign(err)
    cuts = np.flatnonzero(sign[1:] != sign[:-1]) + 1
    runs = np.split(np.arange(len(x)), cuts)
    peaks = np.array([r[np.argmax(np.abs(err[r]))] for r in runs])
    while len(peaks) > count:  # drop the smaller end run
        peaks = peaks[1:] if abs(err[peaks[0]]) < abs(err[peaks[-1]]) else peaks[:-1]
    if len(peaks) < count:
        raise ArithmeticError(f"found {len(peaks)} alternating extrema, need {count}")
    return x[peaks]


def horner_program(coeffs: np.ndarray, grammar: Grammar) -> Program:
    """c0 + x*(c1 + x*(c2 + ...)) in a grammar with add and mul: 2*degree operations."""
    text = repr(float(coeffs[-1]))
    for c in coeffs[-2::-1]:
        text = f"{float(c)!r} + x0 * ({text})"
    return Program.parse(text, grammar)


# ---------------------------------------------------------------------- the problem


@dataclass(frozen=True)
class Exp2Problem(Problem):
    """Approximate 2^x on [0, 1]; error = max relative error, complexity = operations."""

    kind: str = "exp2"
    metric: str = "max_rel_error"

    def error(self, batch: CompiledBatch, n_jobs: int = 1,
              data: Dataset | None = None) -> np.ndarray:
        d = data or self.train
        outputs = evaluate_features(batch, d.XT, resolve_jobs(n_jobs))
        return max_relative_error(outputs, d.y)

    def complexity(self, program: Program) -> float:
        return float(operation_count(program))

    def minimax_baseline(self) -> Program:
        """The degree-5 minimax polynomial (relative error) in Horner form."""
        coeffs, _ = minimax_polynomial(target, BASELINE_DEGREE, 0.0, 1.0)
        return horner_program(coeffs, self.grammar)

    def baselines(self) -> dict[str, float]:
        """The minimax polynomial's max relative error on the test grid."""
        from ..compiler import compile_batch

        p = self.minimax_baseline()
        err = self.error(compile_batch([p]), data=self.test or self.train)[0]
        return {f"minimax-degree-{BASELINE_DEGREE}": float(err)}


def build_exp2(d: Mapping[str, Any], *, name: str, suite: str, where: str) -> Exp2Problem:
    """An Exp2Problem from a suite spec: train and test grids on [0, 1]."""
    def data(key: str) -> Dataset:
        X = sample_inputs(d[key], 1, f"{where}: {key}")
        if X.min() < 0 or X.max() > 1:
            raise ProblemError(f"{where}: {key}: inputs must lie in [0, 1]")
        return Dataset.from_arrays(X, target(X[:, 0]))

    if "train" not in d:
        raise ProblemError(f"{where}: field 'train' is missing")
    return Exp2Problem(
        name=name, grammar=load_grammar(d.get("grammar", "exp2")), train=data("train"),
        test=data("test") if "test" in d else None, suite=suite, variables=("x",),
        formula=Formula.parse("2**x", ["x"]),
        description=d.get("description", "approximate 2^x on [0, 1]: max relative error "
                                         "vs operations touching x"),
        source=d.get("source", ""), budget=read_budget(d.get("budget", {}), where),
        domain=((0.0, 1.0),),
    )


KIND = ProblemKind("exp2", frozenset(), build_exp2)
