"""simplify(): constant folding under kernel semantics and the listed identities.

On finite inputs the simplified program computes what the original computes wherever
the original's output is finite (the identities x - x -> 0 and x * 0 -> 0 may turn a
NaN made by an overflowing subtree into 0, which the module documents); it is never
larger, stays a well-typed program of the same grammar, and folds constants with the
kernels' protected operations.
"""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from strategies import any_programs

import hybrid_gp as hg
from hybrid_gp.program import CONST, Program, check_program
from hybrid_gp.simplify import guarded_rows, orient_guards, simplify

SOME = settings(max_examples=150, deadline=None)


def P(text: str, grammar: str = "full") -> Program:
    return Program.parse(text, grammar=grammar)


def _inputs(seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).uniform(-3, 3, size=(40, 3))
    X[:4] = [[0.0, 1e-11, -0.0], [1.0, -1.0, 2.0], [-1e-12, 0.5, 0.0], [3.0, 3.0, 3.0]]
    return X


@SOME
@given(st.one_of(any_programs("full", 5), any_programs("koza", 5)), st.integers(0, 2**32 - 1))
def test_simplify_computes_the_same_function_on_finite_inputs(p, seed):
    q = simplify(p)
    X = _inputs(seed)
    with np.errstate(all="ignore"):
        before, after = hg.evaluate([p, q], X)
    finite = np.isfinite(before)
    np.testing.assert_allclose(after[finite], before[finite], rtol=1e-12, atol=1e-300)


@SOME
@given(st.one_of(any_programs("full", 5), any_programs("koza", 5), any_programs(None, 4)))
def test_simplify_is_never_larger_and_stays_a_program_of_its_grammar(p):
    q = simplify(p)
    assert q.size <= p.size
    assert q.grammar is p.grammar
    check_program(q)
    assert all(math.isfinite(c) for c in q.consts)


def test_simplify_returns_the_same_program_when_nothing_changes():
    p = P("sin(x0) * x1 + 2.5")
    assert simplify(p) is p


@pytest.mark.parametrize("text, expected", [
    ("x0 + 2.0 * 3.0", "x0 + 6.0"),
    ("x0 * log(-0.5)", f"x0 * {float(np.log(0.5))!r}"),  # log|a|, never complex
    ("x0 + sqrt(-4.0)", "x0 + 2.0"),  # sqrt|a|
    ("x0 + 3.0 / 0.0", "x0 + 1.0"),  # protected division
    ("x0 * (2.0 + log(0.0))", "x0 * 2.0"),  # protected log
    ("x0 + (-8.0) ** 0.5", f"x0 + {8.0 ** 0.5!r}"),  # pow on |a|
    ("x1 * (cos(0.0) + exp(0.0))", "x1 * 2.0"),
])
def test_constant_subtrees_fold_with_kernel_semantics(text, expected):
    q = simplify(P(text))
    assert q == P(expected), str(q)


def test_a_whole_constant_program_folds_to_its_value():
    p = P("log(-0.5) + sqrt(-4.0) * (1.0 / 0.0)")
    q = simplify(p)
    assert q.codes == (CONST,)
    assert q.consts[0] == pytest.approx(math.log(0.5) + 2.0, rel=1e-15)
    assert q.consts[0] == hg.evaluate([p], np.zeros((1, 1)))[0, 0]


def test_non_finite_constants_are_not_folded():
    p = P("x0 + exp(800.0)")  # overflows to inf: no finite constant can stand for it
    q = simplify(p)
    assert q == p


@pytest.mark.parametrize("text, expected", [
    ("(sin(x1) + x0) - (sin(x1) + x0)", "0.0"),
    ("(x0 * x2) / (x0 * x2)", "1.0"),
    ("sin(x1) + 0.0", "sin(x1)"),
    ("0.0 + sin(x1)", "sin(x1)"),
    ("sin(x1) - 0.0", "sin(x1)"),
    ("sin(x1) * 1.0", "sin(x1)"),
    ("1.0 * sin(x1)", "sin(x1)"),
    ("sin(x1) / 1.0", "sin(x1)"),
    ("sin(x1) * 0.0", "0.0"),
    ("0.0 * sin(x1)", "0.0"),
    ("neg(neg(x0 + x1))", "x0 + x1"),
    ("x2 * ((x0 - x0) + x1)", "x2 * x1"),  # rules compose bottom-up
    ("(x0 + (2.0 - 2.0)) * (3.0 - 2.0)", "x0"),
])
def test_the_listed_identities(text, expected):
    assert simplify(P(text)) == P(expected)


@pytest.mark.parametrize("text", [
    "0.0 - sin(x1)",  # not an identity: that is neg(sin(x1))
    "1.0 / x0",
    "x0 - x1",
    "neg(x0)",
    "sin(x0) / sin(x1)",
])
def test_what_is_not_an_identity_stays(text):
    assert simplify(P(text)) == P(text)


def test_rules_that_need_a_constant_are_skipped_in_a_grammar_without_constants(koza):
    """koza has no constants: x - x cannot become 0 and x / x cannot become 1."""
    for text in ("x0 - x0", "(x0 * x1) / (x0 * x1)", "sin(x0) - sin(x0) + x1"):
        p = P(text, "koza")
        assert simplify(p) == p


def test_the_identities_turn_overflow_nan_into_zero_as_documented():
    """x - x -> 0 holds for finite x; where x overflows the original is NaN."""
    p = P("exp(exp(x0)) - exp(exp(x0))")
    X = np.array([[0.5], [10.0]])
    with np.errstate(all="ignore"):
        before = hg.evaluate([p], X)[0]
        after = hg.evaluate([simplify(p)], X)[0]
    assert before[0] == after[0] == 0.0
    assert np.isnan(before[1]) and after[1] == 0.0


# ---------------------------------------------------------------- orient_guards


def _outputs(programs: list[Program], X: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return hg.evaluate(programs, X)


@SOME
@given(st.one_of(any_programs("full", 5), any_programs("koza", 5)), st.integers(0, 2**32 - 1))
def test_orient_guards_keeps_every_output_bit_for_bit(p, seed):
    X = _inputs(seed)
    q = orient_guards(p, X[5:])
    check_program(q)
    assert q.size <= p.size  # a dropped neg is the only change of size
    X[-1] = [np.nan, np.inf, -np.inf]
    a, b = _outputs([p, q], X)
    np.testing.assert_array_equal(a, b)  # NaN positions included


@pytest.mark.parametrize("text, grammar, expected", [
    ("log(x0 / x0 - x0 * x0)", "koza", "log(x0 * x0 - x0 / x0)"),
    ("log(neg(x0 + 1.0))", "full", "log(x0 + 1.0)"),
    ("sqrt(neg(neg(x0)))", "full", "sqrt(x0)"),
    ("(1.0 - x0) ** x0", "full", "(x0 - 1.0) ** x0"),
    ("x0 ** (1.0 - x0)", "full", "x0 ** (1.0 - x0)"),  # the exponent is read as is
    ("log(x0 - 1.0)", "full", "log(x0 - 1.0)"),  # already positive
    ("sin(1.0 - x0)", "full", "sin(1.0 - x0)"),  # not a guarded operator
])
def test_orient_guards_makes_guarded_arguments_positive(text, grammar, expected):
    X = np.linspace(1.5, 3.0, 20)[:, None]
    assert str(orient_guards(P(text, grammar), X)) == expected


def test_orient_guards_gives_the_plain_reading_the_kernels_value():
    """log(1 - x) on x > 1 is log|1 - x| to the kernels but complex to sympy; after
    orienting, the plain sympy reading agrees with the kernels."""
    X = np.linspace(1.5, 3.0, 20)[:, None]
    q = orient_guards(P("log(1.0 - x0) + x0"), X)
    expr = q.to_sympy()
    x0 = sorted(expr.free_symbols, key=str)[0]
    values = [complex(expr.subs(x0, float(v))) for v in X[:, 0]]
    assert all(v.imag == 0 for v in values)
    np.testing.assert_allclose([v.real for v in values], _outputs([q], X)[0], rtol=1e-12)


def test_a_run_reports_oriented_formulas():
    """hg.run hands back the best program and the front oriented for the training data."""
    res = hg.run("nguyen-7", seed=0, population_size=60, generations=5, time_budget=1e9)
    X = res.problem.train.X
    for _, _, p in res.pareto_front:
        assert str(orient_guards(p, X)) == str(p)
    assert str(orient_guards(res.best, X)) == str(res.best)


@pytest.mark.parametrize(("text", "rows"), [
    ("log(x0)", 2),  # x0 = -1 and x0 = 0
    ("sqrt(x0)", 1),
    ("x1 / x0", 1),
    ("log(x0 * x0 + 1.0)", 0),
    ("log(2.0 - 3.0) * x0", 0),  # a constant subtree is folded, as the readable form does
])
def test_guarded_rows_counts_the_rows_where_the_plain_reading_differs(text, rows):
    X = np.array([[-1.0, 1.0], [0.0, 2.0], [2.0, 3.0]])
    assert guarded_rows(Program.parse(text, "full"), X) == rows


def test_guarded_rows_counts_a_negative_base_only_where_the_power_is_not_even():
    X = np.array([[-2.0, 2.0], [-2.0, 3.0], [-2.0, 0.5], [2.0, 0.5]])
    assert guarded_rows(Program.parse("x0 ** x1", "full"), X) == 2
