"""Grammar constraints (docs/grammars.md, hybrid_gp/constraints.py): how they are read,
that tree growth and every operator honour them, and the documented fallback when they
would leave a node with nothing to stand there.

Trees are checked here by an independent walker (ancestor names and parent name per
node), not by constraints.is_valid, so the tests also check is_valid itself.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import hybrid_gp as hg
from hybrid_gp.constraints import ROOT, allowed, child_context, contexts, is_valid, tables
from hybrid_gp.errors import GrammarError
from hybrid_gp.generate import ramped_half_and_half, random_tree
from hybrid_gp.kernels import variation as kv
from hybrid_gp.operators import classic
from hybrid_gp.operators.batch import KERNEL_IDS, breed_children, uniforms_per_child
from hybrid_gp.operators.draws import ChildDraws
from hybrid_gp.program import Program, check_program

SOME = settings(max_examples=60, deadline=None)
SEEDS = st.integers(0, 2**32 - 1)
N_FEATURES = 2

HEADER = """\
name = "tiny"
output = "float"
variables = "float"
"""
PRIMS = """
[[primitive]]
name = "add"
op = "add"
args = ["float", "float"]
returns = "float"
infix = "{0} + {1}"

[[primitive]]
name = "sin"
op = "sin"
args = ["float"]
returns = "float"
infix = "sin({0})"

[[primitive]]
name = "cos"
op = "cos"
args = ["float"]
returns = "float"
infix = "cos({0})"
"""


def write(tmp_path: Path, constraints: str) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(HEADER + textwrap.dedent(constraints) + PRIMS)
    return path


# ---------------------------------------------------------------------- parsing


def test_constraints_are_read_from_the_grammar_file(tmp_path):
    g = hg.load_grammar(write(tmp_path, """
        [constraints]
        no_nesting = [["sin", "cos"]]
        no_parent_child = [["add", "sin"]]
        """))
    assert g.constraints.no_nesting == (("sin", "cos"),)
    assert g.constraints.no_parent_child == (("add", "sin"),)
    assert bool(g.constraints)
    groups, forbidden = tables(g)
    assert groups[g.index["sin"]] == groups[g.index["cos"]] == 1 and groups[g.index["add"]] == 0
    assert forbidden[g.index["add"], g.index["sin"]] and forbidden.sum() == 1


def test_a_grammar_without_constraints_has_none(tmp_path):
    g = hg.load_grammar(write(tmp_path, ""))
    assert not g.constraints
    assert is_valid(Program.parse("sin(cos(x0))", grammar=g))


@pytest.mark.parametrize("body, field_name, expected", [
    ('no_nesting = [["sin", "tan"]]', "no_nesting", "unknown primitive 'tan'"),
    ('no_parent_child = [["exp", "sin"]]', "no_parent_child", "unknown primitive 'exp'"),
    ('no_parent_child = [["sin"]]', "no_parent_child", "expected a list of pairs"),
    ('no_parent_child = [["sin", "cos", "add"]]', "no_parent_child", "expected a list of pairs"),
    ('no_nesting = ["sin", "cos"]', "no_nesting", "expected a list of lists"),
    ("no_nesting = [[]]", "no_nesting", "expected a list of lists"),
    ("no_nesting = [[1, 2]]", "no_nesting", "expected a list of lists"),
    ('no_nesting = "sin"', "no_nesting", "expected a list of lists"),
    ('only_once = ["sin"]', "only_once", "unknown field"),
])
def test_a_bad_constraint_names_the_file_and_the_field(tmp_path, body, field_name, expected):
    path = write(tmp_path, f"[constraints]\n{body}\n")
    with pytest.raises(GrammarError) as err:
        hg.load_grammar(path)
    message = str(err.value)
    assert str(path) in message and "[constraints]" in message
    assert field_name in message and expected in message
    assert len(message.splitlines()) == 1


def test_constraints_that_are_not_a_table_are_refused(tmp_path):
    path = write(tmp_path, 'constraints = "none"\n')
    with pytest.raises(GrammarError, match="field 'constraints': expected a table"):
        hg.load_grammar(path)


def test_at_most_62_no_nesting_groups(tmp_path):
    groups = ", ".join(['["sin"]'] * 63)
    with pytest.raises(GrammarError, match="at most 62"):
        hg.load_grammar(write(tmp_path, f"[constraints]\nno_nesting = [{groups}]\n"))


# ---------------------------------------------------------------------- an independent check


def violations(p: Program) -> list[str]:
    """Each place where p breaks its grammar's constraints, by names."""
    g = p.grammar
    names = [g.primitives[c].name if c >= 0 else None for c in p.codes]
    groups = [set(grp) for grp in g.constraints.no_nesting]
    pairs = set(g.constraints.no_parent_child)
    out = []

    def walk(i: int, ancestors: tuple[str, ...]) -> int:
        name = names[i]
        if name is None:
            return i + 1
        parent = ancestors[-1] if ancestors else None
        if parent is not None and (parent, name) in pairs:
            out.append(f"{name} under {parent}")
        for grp in groups:
            if name in grp and grp & set(ancestors):
                out.append(f"{name} inside {sorted(grp & set(ancestors))}")
        j = i + 1
        for _ in range(g.arities[p.codes[i]]):
            j = walk(j, (*ancestors, name))
        return j

    walk(0, ())
    return out


@pytest.mark.parametrize("text, n_bad", [
    ("sin(cos(x0))", 1), ("sin(x0 + cos(x1))", 1), ("sin(x0) + cos(x1)", 0),
    ("exp(log(x0))", 1), ("log(exp(x0))", 1), ("exp(x0 + log(x0))", 0),
    ("cos(sin(cos(x0)))", 2), ("log(log(x0))", 0),
])
def test_is_valid_agrees_with_the_rules_on_examples(koza, text, n_bad):
    p = Program.parse(text, grammar=koza)
    assert len(violations(p)) == n_bad
    assert is_valid(p) == (n_bad == 0)


def test_neg_neg_is_forbidden_in_full_only_as_parent_and_child(full):
    assert not is_valid(Program.parse("neg(neg(x0))", grammar=full))
    assert is_valid(Program.parse("neg(x0 + neg(x0))", grammar=full))


def test_contexts_carry_ancestor_groups_and_parent(koza):
    p = Program.parse("sin(x0 + exp(x1))", grammar=koza)
    ctx = contexts(p)
    i = koza.index
    assert ctx[0] == ROOT
    assert ctx[1] == (1, i["sin"])  # add under sin: the trig group is in the mask
    assert ctx[2] == ctx[3] == (1, i["add"])  # x0 and exp under add, still inside sin
    assert ctx[4] == (1, i["exp"])
    assert not allowed(koza, i["cos"], ctx[3]) and allowed(koza, i["log"], ctx[1])
    assert not allowed(koza, i["log"], ctx[4])
    assert child_context(koza, i["cos"], ROOT) == (1, i["cos"])


# ---------------------------------------------------------------------- tree growth


@SOME
@given(st.sampled_from(["koza", "full"]), SEEDS, st.integers(1, 8),
       st.sampled_from(["grow", "full"]))
def test_random_trees_keep_the_constraints(name, seed, depth, method):
    g = hg.load_grammar(name)
    rng = np.random.default_rng(seed)
    for _ in range(10):
        p = random_tree(g, rng, N_FEATURES, max_depth=depth, method=method)
        assert not violations(p), (str(p), violations(p))
        assert is_valid(p)


def test_ramped_initial_populations_keep_the_constraints(koza, full, rng):
    for g in (koza, full):
        for p in ramped_half_and_half(g, rng, 400, N_FEATURES, 1, 7):
            assert not violations(p), str(p)


def test_growth_still_uses_the_constrained_primitives(koza, rng):
    """The constraints forbid placements, not primitives: sin, cos, exp and log all
    appear, and sin/cos appear below exp and log."""
    seen: set[str] = set()
    below: set[tuple[str, str]] = set()
    for p in ramped_half_and_half(koza, rng, 300, 1, 2, 6):
        names = [koza.primitives[c].name if c >= 0 else "x" for c in p.codes]
        seen.update(names)
        for k in range(1, len(names)):
            below.add((names[k - 1], names[k]))
    assert {"sin", "cos", "exp", "log"} <= seen
    assert {("exp", "sin"), ("log", "cos")} & below


# ---------------------------------------------------------------------- operators


def _classic_children(p: Program, q: Program, rng: np.random.Generator) -> list[Program]:
    kids = [
        classic.subtree_crossover(p, q, rng, max_depth=8, max_size=40),
        classic.subtree_mutation(p, rng, n_features=N_FEATURES, max_depth=8, max_size=40),
        classic.point_mutation(p, rng, n_features=N_FEATURES),
        classic.hoist_mutation(p, rng),
        classic.shrink_mutation(p, rng),
        classic.constant_perturbation(p, rng),
    ]
    return [k for k in kids if k is not None]


@pytest.mark.parametrize("name", ["koza", "full"])
def test_classic_operators_never_make_a_violating_child(name, rng):
    g = hg.load_grammar(name)
    pop = ramped_half_and_half(g, rng, 60, N_FEATURES, 1, 6)
    made = 0
    for _ in range(1500):
        p, q = pop[rng.integers(len(pop))], pop[rng.integers(len(pop))]
        for child in _classic_children(p, q, rng):
            made += 1
            assert not violations(child), str(child)
    assert made > 3000


@pytest.mark.parametrize("name", ["koza", "full"])
def test_the_batch_breeder_never_makes_a_violating_child(name, rng):
    g = hg.load_grammar(name)
    pop = ramped_half_and_half(g, rng, 60, N_FEATURES, 1, 6)
    n = 3000
    ops = rng.choice(np.array(sorted(KERNEL_IDS.values())), size=n)
    first, second = rng.integers(len(pop), size=n), rng.integers(len(pop), size=n)
    uniforms = ChildDraws.draw(rng, uniforms_per_child(g, 40, 4, 8))
    kids, made = breed_children(pop, ops, first, second, uniforms, g, N_FEATURES, 8, 40, 4)
    assert np.count_nonzero(made != kv.COPY) > n // 2
    for child in kids:
        assert not violations(child), str(child)


def test_crossover_rejects_children_that_would_break_the_constraints(koza, rng):
    """Crossing sin(x0 + x1) with cos(x1): cos(x1) may replace the whole tree, but
    never a node below sin."""
    a = Program.parse("sin(x0 + x1)", grammar=koza)
    b = Program.parse("cos(x1)", grammar=koza)
    kids = {classic.subtree_crossover(a, b, rng, max_depth=6, max_size=20) for _ in range(400)}
    kids.discard(None)
    assert Program.parse("cos(x1)", grammar=koza) in kids  # the root may be replaced
    assert all(not violations(k) for k in kids)
    assert not any("cos" in str(k) and "sin" in str(k) for k in kids)


# ---------------------------------------------------------------------- the fallback

TYPED = """\
name = "typed"
output = "float"
variables = "float"

[constraints]
no_parent_child = [["if", "gt"]]

[[primitive]]
name = "add"
op = "add"
args = ["float", "float"]
returns = "float"
infix = "{0} + {1}"

[[primitive]]
name = "gt"
op = "gt"
args = ["float", "float"]
returns = "bool"
infix = "{0} > {1}"

[[primitive]]
name = "if"
op = "if"
args = ["bool", "float", "float"]
returns = "float"
infix = "{1} if {0} else {2}"
"""


@pytest.fixture
def typed(tmp_path) -> hg.Grammar:
    path = tmp_path / "typed.toml"
    path.write_text(TYPED)
    return hg.load_grammar(path)


def test_a_node_with_no_allowed_primitive_still_grows(typed, rng):
    """The bool argument of `if` has no leaves and only `gt`, which the constraints
    forbid under `if`: the constraint is set aside there and the tree still grows."""
    for method in ("grow", "full"):
        for depth in (2, 3, 5):
            p = random_tree(typed, rng, N_FEATURES, max_depth=depth, method=method,
                            min_depth=2)
            check_program(p)
            assert p.depth <= depth
    trees = ramped_half_and_half(typed, rng, 200, N_FEATURES, 2, 5)
    assert all(p.depth <= 5 for p in trees)
    with_if = [p for p in trees if typed.index["if"] in p.codes]
    assert with_if and all(violations(p) == ["gt under if"] * p.codes.count(typed.index["if"])
                           for p in with_if)
    assert not any(is_valid(p) for p in with_if)


def test_operators_reject_the_fallback_trees_but_still_breed(typed, rng):
    """Children of the fallback keep the constraints where they can: every child of the
    batch breeder is well-typed; subtree mutation that would grow an `if` is rejected
    (is_valid), so valid parents only ever have valid mutants."""
    pop = [Program.parse(t, grammar=typed) for t in ("x0 + x1", "x1", "x0 + (x1 + x0)")]
    n = 400
    ops = np.full(n, kv.SUBTREE)
    first = rng.integers(len(pop), size=n)
    uniforms = ChildDraws.draw(rng, uniforms_per_child(typed, 30, 3, 6))
    kids, made = breed_children(pop, ops, first, first, uniforms, typed, N_FEATURES, 6, 30, 3)
    for child in kids:
        check_program(child)
        assert is_valid(child)
    assert kv.SUBTREE in made.tolist()
