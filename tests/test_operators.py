"""Classic operators: typed validity and limits of every child, same seed same child,
and what each operator must eventually produce from a fixed parent (the exact set of
reachable children, not one lucky draw)."""

from __future__ import annotations

import itertools

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from strategies import SHIPPED, programs

import hybrid_gp as hg
from hybrid_gp.compiler import CompiledBatch, compile_batch
from hybrid_gp.errors import ConfigError
from hybrid_gp.operators import classic
from hybrid_gp.operators.portfolio import (
    CLASSIC,
    VariationContext,
    classic_portfolio,
)
from hybrid_gp.program import Program, check_program, replace_subtree

N = 3
SOME = settings(max_examples=80, deadline=None)
SEEDS = st.integers(0, 2**32 - 1)


def parse(text: str, grammar: str) -> Program:
    return Program.parse(text, grammar=grammar)


def outcomes(op, n: int, rng: np.random.Generator) -> set[Program | None]:
    return {op(rng) for _ in range(n)}


def shape(p: Program) -> tuple[int, ...]:
    return tuple(p.arity(i) for i in range(p.size))


PAIRS = st.sampled_from(SHIPPED).flatmap(
    lambda name: st.tuples(programs(name, 4, N), programs(name, 4, N)))
LIMITS = st.tuples(st.integers(2, 6), st.integers(3, 40))  # max_depth, max_size

# ---------------------------------------------------------------------- every child


@given(PAIRS, SEEDS, LIMITS)
@SOME
def test_crossover_children_are_typed_and_within_the_limits(pair, seed, limits):
    a, b = pair
    max_depth, max_size = limits
    child = classic.subtree_crossover(a, b, np.random.default_rng(seed),
                                      max_depth=max_depth, max_size=max_size)
    if child is not None:
        check_program(child)
        assert child.depth <= max_depth and child.size <= max_size


@given(st.sampled_from(SHIPPED).flatmap(lambda name: programs(name, 4, N)), SEEDS, LIMITS,
       st.integers(0, 4))
@SOME
def test_subtree_mutation_children_are_typed_and_within_the_limits(p, seed, limits,
                                                                  new_depth):
    max_depth, max_size = limits
    child = classic.subtree_mutation(p, np.random.default_rng(seed), n_features=N,
                                     max_depth=max_depth, max_size=max_size,
                                     new_depth=new_depth)
    if child is not None:
        check_program(child)
        assert child.depth <= max_depth and child.size <= max_size


@given(st.sampled_from(SHIPPED).flatmap(lambda name: programs(name, 4, N)), SEEDS)
@SOME
def test_point_mutation_keeps_the_shape_and_changes_something(p, seed):
    child = classic.point_mutation(p, np.random.default_rng(seed), n_features=N)
    if child is not None:
        check_program(child)
        assert shape(child) == shape(p)
        assert child != p


@given(st.sampled_from(SHIPPED).flatmap(lambda name: programs(name, 4, N)), SEEDS)
@SOME
def test_hoist_and_shrink_give_smaller_typed_programs(p, seed):
    for op in (classic.hoist_mutation, classic.shrink_mutation):
        child = op(p, np.random.default_rng(seed))
        if child is not None:
            check_program(child)
            assert child.size < p.size and child.depth <= p.depth


@given(programs("full", 4, N), SEEDS, st.floats(0.01, 2.0))
@SOME
def test_constant_perturbation_changes_only_constants(p, seed, scale):
    child = classic.constant_perturbation(p, np.random.default_rng(seed), scale=scale)
    if not p.consts:
        assert child is None
        return
    assert child is not None
    assert child.codes == p.codes
    assert child.consts != p.consts
    assert all(np.isfinite(child.consts))


def _apply_all(a: Program, b: Program, rng: np.random.Generator) -> list[Program | None]:
    return [
        classic.subtree_crossover(a, b, rng, max_depth=8, max_size=40),
        classic.subtree_mutation(a, rng, n_features=N, max_depth=8, max_size=40),
        classic.point_mutation(a, rng, n_features=N),
        classic.hoist_mutation(a, rng),
        classic.shrink_mutation(a, rng),
        classic.constant_perturbation(a, rng),
    ]


@given(PAIRS, SEEDS)
@SOME
def test_the_same_seed_gives_the_same_children(pair, seed):
    a, b = pair
    first = _apply_all(a, b, np.random.default_rng(seed))
    again = _apply_all(a, b, np.random.default_rng(seed))
    assert first == again


def test_parents_are_never_changed(rng):
    a, b = parse("sin(x0) * 2.5 + x1", "full"), parse("exp(x2) - -1.0", "full")
    before = (a.codes, a.consts, b.codes, b.consts)
    for _ in range(50):
        _apply_all(a, b, rng)
    assert (a.codes, a.consts, b.codes, b.consts) == before


# ---------------------------------------------------------------------- what they produce


def test_crossover_eventually_makes_every_same_typed_swap_and_nothing_else(rng):
    a, b = parse("x0 + x1", "koza"), parse("sin(x2)", "koza")
    expected = {replace_subtree(a, i, b.subtree(j)) for i in range(3) for j in range(2)}
    # rarest child: a leaf of a (p = 0.1 / 2) with the leaf of b (p = 0.1): 1 in 200
    got = outcomes(lambda r: classic.subtree_crossover(a, b, r, max_depth=5, max_size=10),
                   4000, rng)
    assert got == expected


def test_crossover_takes_only_subtrees_of_the_right_type(rng):
    g = hg.grammar.grammar_from_dict({
        "name": "typed-crossover",
        "primitive": [
            {"name": "gt", "op": "gt", "args": ["float", "float"], "returns": "bool"},
            {"name": "ifte", "op": "if", "args": ["bool", "float", "float"],
             "returns": "float"},
            {"name": "add", "op": "add"},
        ],
    })
    a = parse("x0 if x1 > x2 else x0 + x1", g)
    b = parse("x2 if x0 > x0 else x1", g)
    # rarest: one of a's 5 leaves (p = 0.1 / 5) gets one of b's 4 float leaves
    # (p = 0.1 / 4): 1 in 2000, so 20000 draws miss it with probability e^-10
    got = outcomes(lambda r: classic.subtree_crossover(a, b, r, max_depth=6, max_size=30),
                   20000, rng)
    expected = {replace_subtree(a, i, b.subtree(j))
                for i in range(a.size) for j in range(b.size)
                if a.node_type(i) == b.node_type(j)}
    assert got == expected
    assert parse("x0 if x0 > x0 else x0 + x1", g) in got  # a bool subtree moved across


def test_crossover_refuses_children_over_the_limits(rng):
    a = parse("x0 + x1", "koza")
    b = parse("sin(cos(exp(x2)))", "koza")
    got = outcomes(lambda r: classic.subtree_crossover(a, b, r, max_depth=2, max_size=4),
                   2000, rng)
    assert None in got
    assert all(c is None or (c.depth <= 2 and c.size <= 4) for c in got)
    assert parse("exp(x2) + x1", "koza") in got


def test_subtree_mutation_eventually_makes_every_tree_that_fits(rng):
    p = parse("x0 + x1", "koza")
    g = p.grammar
    leaves = [parse("x0", g), parse("x1", g)]
    unary = [Program(g, (k, *leaf.codes)) for k in range(len(g.primitives))
             if g.arities[k] == 1 for leaf in leaves]
    binary = [Program(g, (k, *x.codes, *y.codes)) for k in range(len(g.primitives))
              if g.arities[k] == 2 for x, y in itertools.product(leaves, leaves)]
    expected = set(leaves + unary + binary)  # every koza tree of depth <= 1 over x0, x1
    # rarest child: the root replaced (1/3) by one binary tree (0.8 / 8 / 4): 1 in 120
    got = outcomes(lambda r: classic.subtree_mutation(p, r, n_features=2, max_depth=1,
                                                      max_size=10), 4000, rng)
    assert got == expected


def test_point_mutation_eventually_swaps_each_same_signature_primitive(rng):
    p = parse("x0 + x1", "arith")
    roots = {c.root.name for c in outcomes(
        lambda r: classic.point_mutation(p, r, n_features=2), 1000, rng) if c is not None}
    assert roots == {"add", "sub", "mul", "div"}
    everything = outcomes(lambda r: classic.point_mutation(p, r, n_features=2, rate=1.0),
                          1000, rng)
    assert all(c is not None and c.root.name != "add" for c in everything)
    assert {str(c) for c in everything} == {
        f"x{i} {op} x{j}" for op in "-*/" for i in (0, 1) for j in (0, 1)}


def test_point_mutation_turns_terminals_into_constants_and_back(rng):
    p = parse("x0 * 1.5", "full")
    got = outcomes(lambda r: classic.point_mutation(p, r, n_features=1), 600, rng)
    texts = {str(c) for c in got if c is not None}
    assert "x0 * x0" in texts  # the constant became a variable
    assert any(c is not None and c.codes[1] == -1 and len(c.consts) == 2 for c in got)
    assert all(c is None or shape(c) == shape(p) for c in got)


def test_hoist_eventually_makes_every_inner_subtree(rng):
    p = parse("sin(cos(x0))", "koza")
    got = outcomes(lambda r: classic.hoist_mutation(p, r), 500, rng)
    assert got == {parse("cos(x0)", "koza"), parse("x0", "koza"), parse("sin(x0)", "koza")}
    assert classic.hoist_mutation(parse("x0", "koza"), rng) is None


def test_shrink_eventually_makes_every_one_level_shrink(rng):
    p = parse("x0 + x1 * x2", "arith")
    got = outcomes(lambda r: classic.shrink_mutation(p, r), 500, rng)
    assert got == {parse(t, "arith") for t in ["x0", "x1 * x2", "x0 + x1", "x0 + x2"]}
    assert classic.shrink_mutation(parse("x0", "arith"), rng) is None


def test_constant_perturbation_eventually_moves_each_constant(rng):
    p = parse("1.0 * x0 + 100.0", "full")
    children = [classic.constant_perturbation(p, rng, scale=0.1) for _ in range(200)]
    moved = np.array([[c0 != 1.0, c1 != 100.0] for c0, c1 in (c.consts for c in children)])
    assert moved.any(axis=1).all()  # at least one constant moves every time
    assert moved.any(axis=0).all() and (~moved).any(axis=0).all()  # each moves; not always
    big = np.array([c.consts[1] - 100.0 for c in children])
    small = np.array([c.consts[0] - 1.0 for c in children])
    # sigma = scale * max(1, |c|): the constant 100 moves about 100 times further
    assert np.std(big[big != 0]) > 30 * np.std(small[small != 0])
    assert classic.constant_perturbation(parse("x0", "full"), rng) is None


# ---------------------------------------------------------------------- portfolio


def test_a_portfolio_breeds_the_same_brood_from_the_same_seed(full):
    population = hg.random_programs(full, 20, N, seed=3)
    ctx = VariationContext(grammar=full, n_features=N, max_depth=8, max_size=40)
    portfolio = classic_portfolio({name: 1.0 for name in CLASSIC}, full)
    first = np.arange(20) % 20
    second = (np.arange(20) * 7) % 20

    def breed(seed: int):
        brood = portfolio.breed(population, first, second, np.random.default_rng(seed), ctx)
        return brood.children, brood.operators, brood.parents

    assert breed(1) == breed(1)
    children, names, _ = breed(1)
    for child in children:
        check_program(child)
        assert child.depth <= 8 and child.size <= 40
    assert set(names) <= set(CLASSIC) | {"copy"}


def _same_batch(got: CompiledBatch, want: CompiledBatch) -> None:
    for name in ("codes", "code_offsets", "consts", "const_offsets"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert got.n_features >= want.n_features and got.depth >= want.depth  # upper bounds


def test_a_brood_is_compiled_from_its_arrays_with_replaced_children_spliced_in(full):
    """Brood.compiled() is what compile_batch of the children gives, however later
    stages (immigrants, semantic children, retries) replaced children, and neither
    replacing nor compiling makes a Program of an untouched child."""
    population = hg.random_programs(full, 30, N, seed=4)
    ctx = VariationContext(grammar=full, n_features=N, max_depth=8, max_size=40)
    portfolio = classic_portfolio({name: 1.0 for name in CLASSIC}, full)
    first = np.arange(30) % 30
    brood = portfolio.breed(population, first, first[::-1].copy(),
                            np.random.default_rng(5), ctx)
    bred = list(brood.children)
    brood = portfolio.breed(population, first, first[::-1].copy(),
                            np.random.default_rng(5), ctx)
    strangers = hg.random_programs(full, 30, N, seed=6, min_depth=1, max_depth=3)
    brood.replace(range(26, 30), strangers[:4], "immigrant", [()] * 4)
    brood.replace([0, 7], [strangers[10], strangers[11]], ["semantic", "semantic"],
                  [(0,), (7,)])
    batch = brood.compiled()
    assert not any(brood.children._made[1:7])  # no Program made for those
    want = bred[:]
    want[26:30] = strangers[:4]
    want[0], want[7] = strangers[10], strangers[11]
    _same_batch(batch, compile_batch(want))
    assert list(brood.children) == want
    assert brood.operators[0] == brood.operators[7] == "semantic"
    assert brood.operators[26:] == ["immigrant"] * 4 and brood.parents[26:] == [()] * 4
    assert brood.parents[0] == (0,) and brood.parents[7] == (7,)


def test_a_portfolio_refuses_unknown_or_inapplicable_operators(koza):
    with pytest.raises(ConfigError, match="unknown operator 'mutate'"):
        classic_portfolio({"mutate": 1.0}, koza)
    with pytest.raises(ConfigError, match="no operator with a rate > 0"):
        classic_portfolio({"constant": 1.0}, koza)
    portfolio = classic_portfolio({"constant": 1.0, "hoist": 1.0}, koza)
    assert [op.name for op in portfolio.operators] == ["hoist"]
