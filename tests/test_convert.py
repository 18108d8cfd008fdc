"""Converters: sympy in both readings, from_sympy, JSON, PyGlove and DEAP.

Numeric comparisons with sympy use tests/readings.py: they skip only ill-conditioned
rows, and keep the rows where guards are on (a divisor or log argument of exactly 0).
"""

from __future__ import annotations

import functools
import itertools

import hypothesis.strategies as st
import numpy as np
import pyglove as pg
import pytest
import sympy as sp
from deap import gp
from hypothesis import assume, given, settings
from readings import assert_agree, plain_rows, stable_rows, sympy_values
from strategies import LOGIC, NUMERIC, programs, seeded_programs

import hybrid_gp as hg
from hybrid_gp.convert import from_json, readable_sympy, to_json
from hybrid_gp.deap_compat import deap_pset
from hybrid_gp.errors import ConversionError
from hybrid_gp.program import Program

N = 3  # features
SOME = settings(max_examples=60, deadline=None)


def inputs(rng: np.random.Generator, low: float = -3.0, high: float = 3.0) -> np.ndarray:
    """Random rows plus rows that switch guards on: zeros, equal columns, tiny values."""
    X = rng.uniform(low, high, size=(40, N))
    special = np.array([
        [0.0, 0.0, 0.0], [0.0, 1.5, -2.0], [1.5, 0.0, 0.5], [-2.0, 0.5, 0.0],
        [1.25, 1.25, 1.25], [-0.5, -0.5, 2.0], [1e-11, -1e-11, 3e-11], [2.0, 2.0, 0.0],
    ])
    return np.vstack([X, special]) if low < 0 else X


# ---------------------------------------------------------------------- sympy: protected

NUMERIC_PROGRAMS = st.sampled_from(NUMERIC).flatmap(lambda name: programs(name, 4, N))


@given(NUMERIC_PROGRAMS)
@SOME
def test_protected_sympy_agrees_with_evaluate_everywhere(p):
    X = inputs(np.random.default_rng(len(p.codes)))
    rows = stable_rows(p, X)
    expected = p.evaluate(X)
    assert_agree(expected, sympy_values(p.to_sympy(protected=True), X), rows, str(p))


@given(seeded_programs("full", 5, N))
@settings(max_examples=30, deadline=None)
def test_protected_sympy_agrees_on_grown_programs(p):
    X = inputs(np.random.default_rng(p.size))
    assert_agree(p.evaluate(X), sympy_values(p.to_sympy(protected=True), X),
                 stable_rows(p, X), str(p))


@pytest.mark.parametrize(
    ("text", "row", "value"),
    [
        ("x0 / x1", [2.0, 0.0, 0.0], 1.0),
        ("x0 / (x1 - x2)", [2.0, 0.5, 0.5], 1.0),
        ("x0 / x1", [2.0, 1e-11, 0.0], 1.0),
        ("log(x0)", [0.0, 0.0, 0.0], 0.0),
        ("log(x0)", [-np.e, 0.0, 0.0], 1.0),
        ("sqrt(x0)", [-4.0, 0.0, 0.0], 2.0),
        ("x0 ** x1", [-2.0, 3.0, 0.0], 8.0),
        ("log(x0 / x1)", [3.0, 0.0, 0.0], 0.0),
        ("log(x0 / x1)", [3.0, 1.0, 0.0], np.log(3.0)),
    ],
)
def test_protected_sympy_follows_the_guards(text, row, value):
    p = Program.parse(text, grammar="full")
    X = np.array([row])
    assert p.evaluate(X)[0] == pytest.approx(value)
    assert float(sympy_values(p.to_sympy(protected=True), X)[0]) == pytest.approx(value)


TRUTH_TABLE = np.array(list(itertools.product([0.0, 1.0], repeat=N)))


@given(st.sampled_from(LOGIC).flatmap(lambda name: programs(name, 4, N)))
@SOME
def test_boolean_sympy_agrees_with_evaluate_on_the_whole_truth_table(p):
    expr = p.to_sympy(protected=True)
    # Substitution, not lambdify: sympy 1.14's numpy printer turns a nested ITE
    # condition, ITE(ITE(x0, x0, x1), ...), into select([x0, ...]).
    syms = [sp.Symbol(f"x{k}", real=True) for k in range(N)]
    got = np.array([float(bool(expr.subs(dict(zip(syms, map(bool, row), strict=True)))))
                    for row in TRUTH_TABLE])
    np.testing.assert_array_equal(got, p.evaluate(TRUTH_TABLE), err_msg=str(p))
    assert p.to_sympy() == expr  # logic has one reading


# ---------------------------------------------------------------------- sympy: plain


@given(NUMERIC_PROGRAMS)
@SOME
def test_plain_sympy_agrees_where_the_guards_are_inactive(p):
    X = inputs(np.random.default_rng(p.size), 0.05, 3.0)
    rows = stable_rows(p, X) & plain_rows(p, X)
    assume(rows.any())
    assert_agree(p.evaluate(X), sympy_values(p.to_sympy(), X), rows, str(p))


def test_plain_sympy_is_the_formula_a_person_writes():
    x0, x1 = sp.symbols("x0 x1", real=True)
    p = Program.parse("log(x0) / x1 + sqrt(x0) - x0 ** x1", grammar="full")
    assert sp.simplify(p.to_sympy() - (sp.log(x0) / x1 + sp.sqrt(x0) - x0**x1)) == 0
    assert not p.to_sympy().has(sp.Piecewise, sp.Abs)
    assert p.to_sympy(protected=True).has(sp.Piecewise, sp.Abs)


@pytest.mark.parametrize(
    ("text", "plain"),
    [("sqrt(neg(x0 * x0))", "Abs(x0)"), ("log(neg(x0 * x0))", "log(x0**2)"),
     ("neg(square(x0)) ** x1", "Abs(x0)**(2*x1)")],
)
def test_a_guarded_argument_that_is_never_positive_reads_as_its_absolute_value(text, plain):
    """sqrt, log and pow read their argument through |.|; where sympy can tell it is
    never positive, the plain reading negates it instead of going complex."""
    p = Program.parse(text, grammar="full")
    expr = sp.simplify(p.to_sympy())
    assert not expr.has(sp.I)
    assert str(expr) == plain
    X = inputs(np.random.default_rng(0), 0.05, 3.0)
    assert_agree(p.evaluate(X), sympy_values(expr, X), stable_rows(p, X), text)


def test_a_guarded_argument_of_unknown_sign_keeps_its_plain_reading():
    assert str(Program.parse("sqrt(neg(x0))", grammar="full").to_sympy()) == "sqrt(-x0)"


def test_a_huge_constant_subtree_is_folded_as_the_kernels_compute_it():
    """Hypothesis found it: sympy chased exp(exp(sqrt(1.3e309))) exactly and raised
    OverflowError (or ran for minutes); the kernels give inf."""
    p = Program.parse("exp(exp(sqrt((-7.750600010371454e-227) ** (-1.3672399911942308))))"
                      " + x0", grammar="full")
    assert p.evaluate(np.ones((1, N)))[0] == np.inf
    assert p.to_sympy(protected=True) == sp.oo
    assert p.to_sympy() == sp.oo


def test_from_sympy_reads_the_real_parts_sympy_writes_for_abs_of_exp():
    """Hypothesis found it: sympy writes |exp(sin(log(x0)))| for a real x0 of unknown
    sign as exp(sin(log|x0|) * cosh(arg(x0))); arg of our (real, positive where the
    plain reading holds) values is 0."""
    X = np.array([[0.5, 1.0, 1.0], [2.0, 1.0, 1.0], [3.0, 1.0, 1.0]])
    for text, angle in [("abs(exp(sin(log(x0))))", "arg"), ("abs(exp(sqrt(x0)))", "atan2")]:
        p = Program.parse(text, grammar="full")
        assert angle in str(p.to_sympy())
        q = Program.from_sympy(p.to_sympy(), grammar="full")
        np.testing.assert_allclose(q.evaluate(X), p.evaluate(X), rtol=1e-12)


@given(programs("full", 4, N))
@SOME
def test_from_sympy_of_to_sympy_computes_the_same_function(p):
    X = inputs(np.random.default_rng(p.size), 0.05, 3.0)
    rows = stable_rows(p, X) & plain_rows(p, X)
    assume(rows.any())  # else a guard is on everywhere: the plain reading is not p
    expr = p.to_sympy()
    # A constant subtree that overflows (exp(exp(9.0))) has no formula with finite
    # constants; from_sympy refuses it by name (test below).
    assume(not expr.has(sp.oo, -sp.oo, sp.nan, sp.zoo))
    q = Program.from_sympy(expr, grammar="full")
    rows &= stable_rows(q, X) & plain_rows(q, X)
    assume(rows.any())
    assert_agree(p.evaluate(X), q.evaluate(X), rows, f"{p}  ->  {q}")


def test_constants_folded_with_an_infinite_argument_follow_the_kernels():
    """exp(exp(9.0)) overflows to inf in the kernels; inf ** 0 is 1 there, which sympy
    would leave as oo**0.0."""
    p = Program.parse("exp(exp(square(3.0))) ** 0.0", grammar="full")
    assert p.to_sympy() == sp.Float(1.0)
    q = Program.from_sympy(p.to_sympy(), grammar="full")
    X = np.linspace(0.5, 2.0, 12).reshape(-1, 1) * np.ones((1, N))
    np.testing.assert_array_equal(q.evaluate(X), p.evaluate(X))


def test_from_sympy_refuses_a_formula_with_an_infinite_constant():
    p = Program.parse("x0 ** exp(exp(square(3.0)))", grammar="full")
    assert p.to_sympy().has(sp.oo)
    with pytest.raises(ConversionError, match="constant oo is not finite"):
        Program.from_sympy(p.to_sympy(), grammar="full")


@pytest.mark.parametrize(
    ("text", "grammar"),
    [("x0 * x0 + x0", "koza"), ("sin(x0) / x1 - cos(x2)", "koza"),
     ("exp(x0 - x1) * log(x2)", "koza"), ("x0 / (x1 + x2) - x1 * x2", "arith")],
)
def test_from_sympy_rebuilds_programs_of_grammars_without_constants(text, grammar, rng):
    p = Program.parse(text, grammar=grammar)
    q = Program.from_sympy(p.to_sympy(), grammar=grammar)
    X = rng.uniform(0.5, 2.0, size=(30, N))
    np.testing.assert_allclose(q.evaluate(X), p.evaluate(X), rtol=1e-12)


def test_from_sympy_of_boolean_expressions():
    x0, x1, x2 = sp.symbols("x0 x1 x2", real=True)
    expr = sp.Or(sp.And(x0, x1), sp.Not(x2))
    p = Program.from_sympy(expr, grammar="boolean")
    t = TRUTH_TABLE.astype(bool)
    want = (t[:, 0] & t[:, 1]) | ~t[:, 2]
    np.testing.assert_array_equal(p.evaluate(TRUTH_TABLE), want.astype(float))


def test_from_sympy_refuses_what_the_grammar_cannot_express():
    x0 = sp.Symbol("x0", real=True)
    with pytest.raises(ConversionError, match="tan"):
        Program.from_sympy(sp.tan(x0), grammar="full")
    with pytest.raises(ConversionError, match="no constants"):
        Program.from_sympy(2 * x0, grammar="koza")
    with pytest.raises(ConversionError, match="unknown symbol 'y'"):
        Program.from_sympy(sp.Symbol("y") + x0, grammar="full")
    with pytest.raises(ConversionError, match=r"Program\.parse"):
        Program.from_sympy("x0 + 1", grammar="full")


@given(programs("full", 3, N))
@settings(max_examples=25, deadline=None)
def test_readable_sympy_is_never_complex(p):
    """Real numbers or the real infinities the kernel computes (0 ** -1 is +inf); never
    i, complex infinity or NaN."""
    expr = readable_sympy(p)
    assert not expr.has(sp.I, sp.zoo, sp.nan), f"{p} -> {expr}"
    assert all(n.is_extended_real for n in expr.atoms(sp.Number)), f"{p} -> {expr}"


def test_readable_sympy_keeps_a_tiny_constant_that_zero_would_make_infinite():
    """Hypothesis found log(5.6e-133 / x0): tidying the constant to 0 gave log(0) = zoo.
    Constants below 1e-12 still read as 0 where that leaves a finite formula."""
    kept = readable_sympy(Program.parse("log(5.571988586602747e-133 / x0)", grammar="full"))
    assert not kept.has(sp.zoo, sp.nan, sp.I) and kept.has(sp.log)
    assert sp.Symbol("x0", real=True) in kept.free_symbols
    assert readable_sympy(Program.parse("x0 + 1e-15", grammar="full")) == sp.Symbol(
        "x0", real=True)


def test_readable_sympy_folds_a_negative_log_with_the_kernel_meaning():
    expr = readable_sympy(Program.parse("log(-0.15) * x0", grammar="full"))
    x0 = sp.Symbol("x0", real=True)
    assert not expr.has(sp.I)
    assert float(expr.subs(x0, 1.0)) == pytest.approx(np.log(0.15), rel=1e-5)


# ---------------------------------------------------------------------- JSON


@given(programs(max_depth=4))
@SOME
def test_json_round_trip(p):
    text = p.to_json()
    assert Program.from_json(text) == p
    assert Program.from_json(text, grammar=p.grammar) == p
    assert from_json(to_json(p)).consts == p.consts


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "not valid JSON"),
        ('{"format": "other"}', "expected a JSON object with format"),
        ('{"format": "hybrid_gp.program", "version": 9}', "unsupported program JSON version"),
        ('{"format": "hybrid_gp.program", "version": 1, "grammar": "full", "prefix": 3}',
         "field 'prefix'"),
        ('{"format": "hybrid_gp.program", "version": 1, "grammar": "full",'
         ' "prefix": ["add", "x0", "tan"]}', r"prefix\[2\] = 'tan'"),
        ('{"format": "hybrid_gp.program", "version": 1, "grammar": "full",'
         ' "prefix": ["add", "x0"]}', "invalid program"),
    ],
)
def test_bad_json_is_refused_with_the_reason(text, reason):
    with pytest.raises(ConversionError, match=reason):
        Program.from_json(text)


# ---------------------------------------------------------------------- PyGlove


@given(programs(max_depth=4))
@SOME
def test_pyglove_round_trip_including_pyglove_json(p):
    node = p.to_pyglove()
    assert Program.from_pyglove(node, grammar=p.grammar) == p
    again = pg.from_json_str(pg.to_json_str(node))
    assert pg.eq(again, node)
    assert Program.from_pyglove(again, grammar=p.grammar) == p


def test_a_symbolic_edit_changes_the_program():
    node = Program.parse("x0 + 1.5", grammar="full").to_pyglove()
    edited = node.clone(deep=True)
    edited.rebind({"args[1].value": 2.5, "op": "mul"})
    assert Program.from_pyglove(edited, grammar="full") == Program.parse("x0 * 2.5")
    assert Program.from_pyglove(node, grammar="full") == Program.parse("x0 + 1.5")


def test_pyglove_nodes_the_grammar_cannot_hold_are_refused():
    node = Program.parse("x0 + 1.5", grammar="full").to_pyglove()
    bad = node.clone(deep=True)
    bad.rebind({"op": "tan"})
    with pytest.raises(ConversionError, match="no primitive 'tan'"):
        Program.from_pyglove(bad, grammar="full")
    with pytest.raises(ConversionError, match="invalid program"):
        Program.from_pyglove(node, grammar="koza")


# ---------------------------------------------------------------------- DEAP


@given(programs(max_depth=4))
@SOME
def test_deap_round_trip(p):
    tree = p.to_deap(N)
    assert isinstance(tree, gp.PrimitiveTree)
    assert len(tree) == p.size and tree.height == p.depth
    assert Program.from_deap(tree, grammar=p.grammar) == p


# DEAP's operators draw from the global `random` module; there is no rng argument to
# pass. Hypothesis' st.random_module() seeds it per example (and restores it after),
# so these stay reproducible and shrinkable without the test seeding it by hand.
@given(st.random_module(), programs("full", 4, N), programs("full", 4, N))
@SOME
def test_deap_crossover_on_to_deap_trees_gives_trees_from_deap_accepts(_, a, b):
    assume(a.size > 1 and b.size > 1)
    c, d = gp.cxOnePoint(a.to_deap(N), b.to_deap(N))
    for child in (c, d):
        p = Program.from_deap(child, grammar="full")
        assert str(p.to_deap(N)) == str(child)
    assert c.height >= 0 and len(c) + len(d) == a.size + b.size


@given(st.random_module(), st.sampled_from(["full", "koza", "boolean"]).flatmap(
    lambda name: programs(name, 4, N)))
@SOME
def test_deap_uniform_mutation_on_to_deap_trees_gives_trees_from_deap_accepts(_, p):
    pset = deap_pset(p.grammar, N)
    expr = functools.partial(gp.genGrow, min_=0, max_=2)
    (child,) = gp.mutUniform(p.to_deap(N), expr=expr, pset=pset)
    q = Program.from_deap(child, grammar=p.grammar)
    assert str(q.to_deap(N)) == str(child)


def deap_values(tree: gp.PrimitiveTree, pset: gp.PrimitiveSetTyped,
                X: np.ndarray) -> np.ndarray:
    """Evaluate a DEAP tree by walking it (DEAP's gp.compile would eval a string)."""
    stack: list[np.ndarray] = []
    for node in reversed(tree):
        if isinstance(node, gp.Primitive):
            args = [stack.pop() for _ in range(node.arity)]
            stack.append(pset.context[node.name](*args))
        elif isinstance(node.value, str):
            stack.append(X[:, int(node.value[1:])])
        else:
            stack.append(np.full(len(X), float(node.value)))
    return np.broadcast_to(np.asarray(stack[0], dtype=float), (len(X),))


def test_the_deap_primitive_set_carries_the_kernel_semantics(rng):
    X = rng.uniform(-2, 2, size=(25, N))
    X[0] = 0.0
    for p in hg.random_programs("full", 30, N, seed=rng):
        pset = deap_pset(p.grammar, N)
        np.testing.assert_allclose(deap_values(p.to_deap(N), pset, X), p.evaluate(X),
                                   rtol=1e-12, equal_nan=True, err_msg=str(p))


def test_from_deap_refuses_foreign_nodes():
    pset = gp.PrimitiveSet("other", 1)
    pset.addPrimitive(np.tan, 1, name="tan")
    tree = gp.PrimitiveTree([pset.primitives[pset.ret][0], pset.terminals[pset.ret][0]])
    with pytest.raises(ConversionError, match="'tan' is not in grammar"):
        Program.from_deap(tree, grammar="full")
