"""Semantic backpropagation (operators/semantic.py): inversions, desired outputs,
libraries and the RDO child, then the operator inside a run."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from strategies import any_programs

import hybrid_gp as hg
from hybrid_gp.operators.semantic import (
    _COEF_FRACTIONS,
    _combine,
    _linear_candidate,
    _ops,
    applies_to,
    build_library,
    desired_outputs,
    invert,
    rdo_child,
    subtree_outputs,
)
from hybrid_gp.program import Program, check_program, var_code

SOME = settings(max_examples=100, deadline=None)
X = np.random.default_rng(3).uniform(0.1, 1.0, size=(24, 2))
XT = np.ascontiguousarray(X.T)


def P(text: str, grammar: str = "koza") -> Program:
    return Program.parse(text, grammar=grammar)


def _apply(op: str, k: int, arg: np.ndarray, other: np.ndarray | None) -> np.ndarray:
    """The kernels' value of `op` with argument k set to `arg` (the other one fixed)."""
    g = hg.load_grammar("full")
    args = [var_code(0)] if other is None else [var_code(k), var_code(1 - k)]
    program = Program(g, [g.index[op], *args])
    cols = [arg] if other is None else [arg, other]
    with np.errstate(all="ignore"):
        return hg.evaluate([program], np.column_stack(cols))[0]


@SOME
@given(st.sampled_from(["add", "sub", "mul", "div", "neg", "exp", "log", "sqrt", "square",
                        "sin", "cos", "tanh"]),
       st.integers(0, 1), st.integers(0, 2**32 - 1))
def test_an_inverted_argument_gives_back_the_desired_output(op, k, seed):
    """Wherever invert() returns a value, putting it in as the argument makes the node
    output what was desired (to rounding)."""
    rng = np.random.default_rng(seed)
    binary = op in ("add", "sub", "mul", "div")
    other = rng.uniform(-3, 3, 50) if binary else None
    k = k if binary else 0
    current = rng.uniform(-3, 3, 50)
    desired = _apply(op, k, rng.uniform(-3, 3, 50), other)  # reachable outputs
    arg = invert(op, k, desired, other, current)
    ok = np.isfinite(arg)
    assert ok.mean() > 0.5  # most reachable outputs invert
    got = _apply(op, k, arg[ok], None if other is None else other[ok])
    np.testing.assert_allclose(got, desired[ok], rtol=1e-7, atol=1e-9)


def test_many_valued_inverses_take_the_branch_nearest_the_present_argument():
    current = np.array([0.1, 3.0, 7.0, -2.0])
    arg = invert("sin", 0, np.sin(current), None, current)
    np.testing.assert_allclose(arg, current, atol=1e-12)
    arg = invert("cos", 0, np.cos(current), None, current)
    np.testing.assert_allclose(arg, current, atol=1e-12)
    assert invert("log", 0, np.array([0.0]), None, np.array([-5.0]))[0] == -1.0  # log|x|


def test_operators_without_an_inverse_say_so():
    assert invert("abs", 0, np.ones(3), None, np.ones(3)) is None


def test_desired_outputs_undo_the_path_from_the_root():
    """In x0 * x0 + sin(x1) with target y, sin(x1) should output y - x0**2 and x1
    should output arcsin of that."""
    parent = P("x0 * x0 + sin(x1)")
    y = X[:, 0] ** 2 + np.sin(X[:, 1] ** 2)
    out = subtree_outputs([parent], XT)[0]
    np.testing.assert_allclose(desired_outputs(parent, 4, out, y), np.sin(X[:, 1] ** 2),
                               rtol=1e-12)
    np.testing.assert_allclose(desired_outputs(parent, 5, out, y), X[:, 1] ** 2, rtol=1e-9)


@SOME
@given(st.one_of(any_programs("full", 4), any_programs("koza", 4)))
def test_subtree_outputs_are_the_outputs_of_each_subtree(p):
    Xp = np.random.default_rng(0).uniform(-2, 2, size=(9, 3))
    out = subtree_outputs([p, P("x1 - x0", "full")], np.ascontiguousarray(Xp.T))[0]
    with np.errstate(all="ignore"):
        want = hg.evaluate([p.subtree(i) for i in range(p.size)], Xp)
    np.testing.assert_array_equal(out, want)


def test_a_library_keeps_one_smallest_subtree_per_function():
    programs = [P("(x0 + x0) * x1"), P("x1 * (x0 + x0)"), P("x0 + x0 + x0 / x0")]
    lib = build_library(programs, subtree_outputs(programs, XT))
    keys = {np.round(r, 12).tobytes() for r in lib.outputs}
    assert len(keys) == len(lib.sources)  # distinct functions
    texts = [str(lib.subtree(j)) for j in range(len(lib.sources))]
    assert "x0" in texts and "x0 + x0" in texts and "x0 / x0" in texts
    assert sum(t in ("(x0 + x0) * x1", "x1 * (x0 + x0)") for t in texts) == 1


def test_rdo_puts_the_missing_piece_where_it_belongs():
    """The target is x0*x0 + x1*x1; the parent x0*x0 + x1 needs x1*x1 at node 4, and
    the library has it: every RDO child that picks node 4 is the target."""
    parent = P("x0 * x0 + x1")
    y = X[:, 0] ** 2 + X[:, 1] ** 2
    donors = [P("x1 * x1 - x0")]
    lib = build_library(donors, subtree_outputs(donors, XT))
    out = subtree_outputs([parent], XT)[0]
    children = {str(rdo_child(parent, out, y, lib, np.random.default_rng(s), 40, 12))
                for s in range(30)}
    assert "x0 * x0 + x1 * x1" in children
    for text in children - {"None"}:
        child = P(text)
        check_program(child)
        before = np.mean((hg.evaluate([parent], X)[0] - y) ** 2)
        after = np.mean((hg.evaluate([child], X)[0] - y) ** 2)
        assert after < before  # a child only replaces what fits worse


def test_rdo_fits_a_constant_where_the_grammar_has_constants():
    parent = P("x0 * x0 + x1", "full")
    y = X[:, 0] ** 2 + 2.5
    out = subtree_outputs([parent], XT)[0]
    lib = build_library([parent], [out])
    children = [rdo_child(parent, out, y, lib, np.random.default_rng(s), 40, 12)
                for s in range(30)]
    fitted = [c for c in children if c is not None and str(c) == "x0 * x0 + 2.5"]
    assert fitted  # the seeds that pick node 4 (x1) fit the constant 2.5 there
    np.testing.assert_allclose(hg.evaluate(fitted[:1], X)[0], y, rtol=1e-12)


def test_rdo_respects_the_size_limit_and_the_grammar_constraints():
    parent = P("x0 + sin(x1)")
    y = X[:, 0] + np.sin(np.cos(X[:, 1]))  # would need sin(cos(.)), which koza forbids
    donors = [P("cos(x1) * x0")]
    lib = build_library(donors, subtree_outputs(donors, XT))
    out = subtree_outputs([parent], XT)[0]
    for s in range(20):
        child = rdo_child(parent, out, y, lib, np.random.default_rng(s), 4, 12)
        assert child is None or (child.size <= 4 and "sin(cos" not in str(child))


def test_a_library_with_rows_holds_the_monomials_of_every_variable():
    lib = build_library([P("sin(x0)")], subtree_outputs([P("sin(x0)")], XT), XT)
    texts = {str(lib.subtree(j)) for j in range(len(lib.sources))}
    assert {"x0 * x0 * x0", "x1 * x1 * (x1 * x1)", "x0 * x1", "sin(x0)"} <= texts
    assert lib.unit is not None and lib.norms is not None
    with_constants = [P("sin(x0)", "full")]
    lib = build_library(with_constants, subtree_outputs(with_constants, XT), XT)
    assert {str(lib.subtree(j)) for j in range(len(lib.sources))} == {"sin(x0)", "x0"}


@SOME
@given(st.sampled_from(_COEF_FRACTIONS), st.sampled_from(_COEF_FRACTIONS),
       st.sampled_from(["x0", "x1 * x1", "sin(x0) - x1"]), st.sampled_from(["x1", "x0 * x1"]))
def test_a_linear_combination_is_built_without_constants(a, b, s, t):
    """c1 * s + c2 * t: the kernels compute it (to rounding) and the plain sympy
    reading simplifies to it exactly."""
    import sympy

    g = hg.load_grammar("koza")
    combo = _combine(g, _ops(g), var_code(0), [(a, P(s)), (b, P(t))])
    check_program(combo)
    assert not combo.consts
    want = float(a) * hg.evaluate([P(s)], X)[0] + float(b) * hg.evaluate([P(t)], X)[0]
    np.testing.assert_allclose(hg.evaluate([combo], X)[0], want, rtol=1e-12, atol=1e-12)
    exact = sympy.Rational(a.numerator, a.denominator) * P(s).to_sympy() + sympy.Rational(
        b.numerator, b.denominator) * P(t).to_sympy()
    assert sympy.simplify(combo.to_sympy() - exact) == 0


def test_linear_rdo_builds_a_half_from_variables():
    """Nguyen-12's x1**2/2 - x1 at the node of sin(x1): no library subtree fits alone,
    1/2 * (x1 * x1) - x1 does, exactly."""
    parent = P("x0 * x0 * (x0 * x0 - x0) + sin(x1)")
    y = X[:, 0] ** 4 - X[:, 0] ** 3 + X[:, 1] ** 2 / 2 - X[:, 1]
    out = subtree_outputs([parent], XT)[0]
    lib = build_library([parent], [out], XT)
    d = desired_outputs(parent, parent.size - 2, out, y)
    err, sub = _linear_candidate(lib, lib.outputs, d, True, 30, 10)
    assert err < 1e-28
    child = P(str(parent).replace("sin(x1)", f"({sub})"))
    np.testing.assert_allclose(hg.evaluate([child], X)[0], y, rtol=1e-12, atol=1e-14)


def test_rdo_only_runs_on_single_type_grammars():
    assert applies_to(hg.load_grammar("koza")) and applies_to(hg.load_grammar("full"))
    typed = [g for g in hg.list_grammars() if len(hg.load_grammar(g).types) > 1]
    assert typed and not any(applies_to(hg.load_grammar(g)) for g in typed)


@pytest.mark.parametrize("problem", ["nguyen-4", "keijzer-4"])
def test_a_run_with_semantic_children_is_valid_and_repeatable(problem):
    kw = dict(seed=2, population_size=60, generations=8, time_budget=1e9, semantic_share=0.3)
    a, b = hg.run(problem, **kw), hg.run(problem, **kw)
    ops = {o["operator"]: o for o in a.stats["operators"]}
    assert ops["semantic"]["children"] > 0
    assert str(a.best) == str(b.best) and a.best_error == b.best_error
    for _, _, p in a.pareto_front:
        check_program(p)
