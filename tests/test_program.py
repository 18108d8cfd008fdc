"""Program: construction checks, shape, identity, and the pure transforms
(replace_subtree, swap_subtrees, with_constants) on fixed indices and as properties."""

from __future__ import annotations

import pickle

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from strategies import any_programs, programs

import hybrid_gp as hg
from hybrid_gp.errors import UserError
from hybrid_gp.program import (
    CONST,
    Program,
    check_program,
    replace_subtree,
    swap_subtrees,
    var_code,
    with_constants,
)

FEW = settings(max_examples=60, deadline=None)


def parse(text: str, grammar: str = "full") -> Program:
    return Program.parse(text, grammar=grammar)


def tree_depth(p: Program, i: int = 0) -> int:
    """Depth by recursion over children, independent of Program.depth's stack walk."""
    arity = p.arity(i)
    if arity == 0:
        return 0
    j, deepest = i + 1, 0
    for _ in range(arity):
        deepest = max(deepest, tree_depth(p, j))
        j = p.subtree_end(j)
    return 1 + deepest


# ---------------------------------------------------------------------- construction


def test_codes_of_a_parsed_program_follow_the_documented_layout(full):
    p = parse("sin(x0) * x1 + 2.5")
    add, mul, sin = full.index["add"], full.index["mul"], full.index["sin"]
    assert p.codes == (add, mul, sin, var_code(0), var_code(1), CONST)
    assert p.consts == (2.5,)
    assert (p.size, p.depth) == (6, 3)


def test_a_lone_terminal_has_size_one_and_depth_zero():
    assert (parse("x4").size, parse("x4").depth) == (1, 0)
    assert parse("x4").n_features_used == 5


@pytest.mark.parametrize(
    ("codes", "consts", "reason"),
    [
        ((), (), "at least one node"),
        ((0,), (), "truncated"),
        ((var_code(0), var_code(1)), (), "extra nodes"),
        ((99, var_code(0)), (), "not a primitive"),
        ((CONST,), (), "1 constant nodes but 0"),
        ((CONST,), (1.0, 2.0), "1 constant nodes but 2"),
        ((CONST,), (float("nan"),), "finite"),
    ],
)
def test_invalid_codes_are_refused_with_the_reason(full, codes, consts, reason):
    with pytest.raises(UserError, match=reason):
        Program(full, codes, consts)


def test_constants_are_refused_in_a_grammar_without_them(koza):
    with pytest.raises(UserError, match="has no constants"):
        Program(koza, (CONST,), (1.0,))


MIXED = {
    "name": "mixed-typing",
    "primitive": [
        {"name": "gt", "op": "gt", "args": ["float", "float"], "returns": "bool"},
        {"name": "ifte", "op": "if", "args": ["bool", "float", "float"], "returns": "float"},
    ],
}


def test_a_child_of_the_wrong_type_is_refused():
    mixed = hg.grammar.grammar_from_dict(MIXED)
    gt, ifte = mixed.index["gt"], mixed.index["ifte"]
    ok = Program(mixed, (ifte, gt, var_code(0), var_code(1), var_code(0), var_code(1)))
    assert ok.node_type(1) == "bool"
    with pytest.raises(UserError, match="node 1: type 'float' where 'bool' is expected"):
        Program(mixed, (ifte, var_code(0), var_code(0), var_code(1)))


# ---------------------------------------------------------------------- shape


@given(any_programs())
@FEW
def test_size_depth_and_subtrees_are_consistent(p):
    assert p.size == len(p.codes) == len(list(p))
    assert p.depth == tree_depth(p)
    assert p.subtree_end(0) == p.size
    for i in range(p.size):
        sub = p.subtree(i)
        if sub.type == p.grammar.output_type:
            check_program(sub)
        assert sub.type == p.node_type(i)
        assert sub.size == p.subtree_end(i) - i
        assert sub.depth == tree_depth(p, i)
        assert p[i].arity == p.arity(i)


def test_complexity_sums_the_grammar_costs():
    g = hg.grammar.grammar_from_dict({
        "name": "costly",
        "variable_cost": 0.5,
        "constants": {"enabled": True, "cost": 2.0},
        "primitive": [{"name": "add", "op": "add", "cost": 3.0},
                      {"name": "sin", "op": "sin", "cost": 1.5}],
    })
    p = Program.parse("sin(x0) + 1.0", grammar=g)
    assert p.complexity == pytest.approx(3.0 + 1.5 + 0.5 + 2.0)


def test_node_views_describe_each_node(full):
    p = parse("sin(x0) * -2.0")
    names = [n.name for n in p]
    assert names == ["mul", "sin", "x0", "-2.0"]
    assert p.root.arity == 2 and not p.root.is_terminal
    assert p[-1].value == -2.0 and p[-1].is_terminal
    assert p[1].args == ("float",)


# ---------------------------------------------------------------------- identity


def test_equal_programs_are_equal_and_hash_alike():
    a, b = parse("x0 + 1.5"), parse("x0 + 1.5")
    assert a == b and hash(a) == hash(b)
    assert a != parse("x0 + 1.25")
    assert a != parse("x0 - 1.5")
    assert len({a, b, parse("x1 + 1.5")}) == 2


@given(any_programs())
@FEW
def test_pickling_gives_the_same_program(p):
    q = pickle.loads(pickle.dumps(p))
    assert q == p and q.grammar is p.grammar


def test_a_program_of_a_grammar_file_pickles_by_its_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text('name = "tiny-pickle"\n[[primitive]]\nname = "add"\nop = "add"\n')
    p = Program.parse("x0 + x1", grammar=str(path))
    q = pickle.loads(pickle.dumps(p))
    assert q == p and q.grammar.source == str(path)


def test_evaluate_of_one_program_is_its_row_of_the_batch(rng):
    ps = hg.random_programs("full", 8, 2, seed=rng)
    X = rng.uniform(-2, 2, size=(30, 2))
    batch = hg.evaluate(ps, X)
    for k, p in enumerate(ps):
        np.testing.assert_array_equal(p.evaluate(X), batch[k])


# ---------------------------------------------------------------------- pure transforms


def test_replace_subtree_on_fixed_indices():
    p = parse("sin(x0) * x1 + 2.5")
    assert replace_subtree(p, 1, parse("x2")) == parse("x2 + 2.5")
    assert replace_subtree(p, 2, parse("cos(3.0)")) == parse("cos(3.0) * x1 + 2.5")
    assert replace_subtree(p, 5, parse("x0 - 1.0")) == parse("sin(x0) * x1 + (x0 - 1.0)")
    assert replace_subtree(p, 0, parse("x3")) == parse("x3")


def test_replace_subtree_keeps_the_constants_in_prefix_order():
    p = parse("(1.0 + 2.0) * (3.0 - x0) + 4.0")
    # node 5 is the subtree `3.0 - x0`; it holds constant #2 (3.0)
    assert str(p.subtree(5)) == "3.0 - x0"
    q = replace_subtree(p, 5, parse("7.0 / 8.0"))
    assert q.consts == (1.0, 2.0, 7.0, 8.0, 4.0)
    assert q == parse("(1.0 + 2.0) * (7.0 / 8.0) + 4.0")
    check_program(q)


def test_swap_subtrees_on_fixed_indices():
    a, b = parse("x0 + 1.0 * x1"), parse("sin(2.0) - x2")
    c, d = swap_subtrees(a, b, 2, 1)
    assert c == parse("x0 + sin(2.0)")
    assert d == parse("1.0 * x1 - x2")
    check_program(c)
    check_program(d)


def test_with_constants_on_a_fixed_program():
    p = parse("1.0 * x0 + 2.0")
    assert with_constants(p, [3.0, -4.0]) == parse("3.0 * x0 + -4.0")
    with pytest.raises(ValueError, match="expected 2 constants, got 1"):
        with_constants(p, [1.0])


def _same_type_pairs(a: Program, b: Program) -> list[tuple[int, int]]:
    return [(i, j) for i in range(a.size) for j in range(b.size)
            if a.node_type(i) == b.node_type(j)]


SAME_GRAMMAR_PAIRS = st.sampled_from(["arith", "full", "boolean", "koza"]).flatmap(
    lambda name: st.tuples(programs(name, 4), programs(name, 4)))


@given(SAME_GRAMMAR_PAIRS, st.data())
@FEW
def test_replacing_by_a_same_typed_subtree_gives_a_valid_program(pair, data):
    a, b = pair
    pairs = _same_type_pairs(a, b)
    i, j = data.draw(st.sampled_from(pairs))
    child = replace_subtree(a, i, b.subtree(j))
    check_program(child)
    assert child.size == a.size - (a.subtree_end(i) - i) + (b.subtree_end(j) - j)
    assert child.subtree(i) == b.subtree(j)
    assert replace_subtree(a, i, a.subtree(i)) == a


@given(SAME_GRAMMAR_PAIRS, st.data())
@FEW
def test_swapping_twice_restores_both_parents(pair, data):
    a, b = pair
    i, j = data.draw(st.sampled_from(_same_type_pairs(a, b)))
    c, d = swap_subtrees(a, b, i, j)
    check_program(c)
    check_program(d)
    assert c.size + d.size == a.size + b.size
    assert len(c.consts) + len(d.consts) == len(a.consts) + len(b.consts)
    e, f = swap_subtrees(c, d, i, j)
    assert (e, f) == (a, b)


@given(programs("full", 4), st.data())
@FEW
def test_with_constants_changes_only_the_values(p, data):
    assert with_constants(p, p.consts) == p
    new = data.draw(st.lists(st.floats(-10, 10), min_size=len(p.consts),
                             max_size=len(p.consts)))
    q = with_constants(p, new)
    check_program(q)
    assert q.codes == p.codes and q.consts == tuple(new)


@FEW
@given(st.lists(any_programs("full"), max_size=6))
def test_trusted_batch_cuts_flat_lists_into_the_same_programs(progs):
    grammar = hg.load_grammar("full")
    made = Program._trusted_batch(
        grammar, [c for p in progs for c in p.codes], [len(p.codes) for p in progs],
        [c for p in progs for c in p.consts], [len(p.consts) for p in progs])
    assert made == progs
    assert all(isinstance(m.codes, tuple) and isinstance(m.consts, tuple) for m in made)
