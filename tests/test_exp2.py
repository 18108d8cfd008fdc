"""exp2-approx: the relative-error objective, the operation count and the minimax
baseline."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.compiler import compile_batch
from hybrid_gp.problem_kinds.exp2 import (
    horner_program,
    max_relative_error,
    minimax_polynomial,
    operation_count,
    target,
)


@pytest.fixture(scope="module")
def problem() -> hg.Problem:
    return hg.get_problem("exp2-approx")


def test_error_is_the_maximum_relative_error(problem):
    line = hg.Program.parse("1.0 + x0", problem.grammar)
    x = problem.train.X[:, 0]
    expected = np.max(np.abs(1.0 + x - 2.0**x) / 2.0**x)
    assert problem.error(compile_batch([line]))[0] == pytest.approx(expected, rel=1e-12)


def test_non_finite_outputs_score_inf(problem):
    overflow = hg.Program.parse("1e300 * 1e300 * x0", problem.grammar)
    assert problem.error(compile_batch([overflow])).tolist() == [np.inf]
    assert max_relative_error(np.array([[1.0, np.nan]]), np.ones(2)).tolist() == [np.inf]


def test_operation_count_skips_constant_subtrees(problem):
    g = problem.grammar
    assert operation_count(hg.Program.parse("x0", g)) == 0
    assert operation_count(hg.Program.parse("(1.0 + 2.0) * x0", g)) == 1
    assert operation_count(hg.Program.parse("x0 * x0 + 0.5 / 0.25", g)) == 2
    assert problem.complexity(hg.Program.parse("(0.5 - 0.25) * x0 + x0", g)) == 2.0


def test_minimax_polynomial_equioscillates_below_the_published_bound():
    coeffs, worst = minimax_polynomial(target, 5, 0.0, 1.0)
    x = np.linspace(0.0, 1.0, 200_001)
    rel = (np.polynomial.polynomial.polyval(x, coeffs) - target(x)) / target(x)
    assert np.max(np.abs(rel)) == pytest.approx(worst, rel=1e-6)
    assert 7.0e-8 < worst < 8.3e-8  # ../shared/BENCHMARKS.md quotes 8.3e-8
    # Seven alternating extrema of equal size (degree + 2): sample the sign pattern.
    signs = np.sign(rel[np.abs(rel) > 0.999 * worst])
    assert np.count_nonzero(np.diff(signs)) == 6


def test_minimax_is_better_than_the_taylor_polynomial():
    _, worst = minimax_polynomial(target, 5, 0.0, 1.0)
    ln2 = np.log(2.0)
    taylor = [ln2**k / np.prod(np.arange(1, k + 1)) for k in range(6)]
    x = np.linspace(0.0, 1.0, 10_001)
    taylor_error = np.max(np.abs(np.polynomial.polynomial.polyval(x, taylor) / target(x) - 1))
    assert worst < taylor_error / 10


def test_minimax_recovers_a_polynomial_exactly():
    coeffs, worst = minimax_polynomial(lambda x: 1 + 2 * x - x**3, 3, -1.0, 1.0,
                                       relative=False)
    assert np.allclose(coeffs, [1, 2, 0, -1]) and worst < 1e-12


def test_baseline_is_a_ten_operation_program_with_its_error(problem):
    baseline = problem.minimax_baseline()
    assert operation_count(baseline) == 10
    (name, value), = problem.baselines().items()
    assert name == "minimax-degree-5"
    assert value == pytest.approx(
        problem.error(compile_batch([baseline]), data=problem.test)[0])
    assert value < 8.3e-8


def test_horner_program_evaluates_the_polynomial(problem):
    coeffs = np.array([0.5, -1.0, 0.25])
    p = horner_program(coeffs, problem.grammar)
    x = np.linspace(0, 1, 11)
    assert np.allclose(p.evaluate(x[:, None]), np.polynomial.polynomial.polyval(x, coeffs))
