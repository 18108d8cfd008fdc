"""Random tree generation: typed validity, depth limits, reproducibility, and the
grammars on which DEAP's typed genFull/genGrow raise IndexError."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from deap import gp
from hypothesis import given, settings
from strategies import SHIPPED

import hybrid_gp as hg
from hybrid_gp.deap_compat import deap_pset
from hybrid_gp.errors import ConfigError
from hybrid_gp.generate import ramped_half_and_half, random_tree
from hybrid_gp.grammar import grammar_from_dict
from hybrid_gp.program import CONST, Program, check_program, var_index

# "coef" has terminals (constants) but no primitive returns it.
COEF = {
    "name": "coef-gen",
    "constants": {"enabled": True, "type": "coef", "low": 0.5, "high": 2.0},
    "primitive": [
        {"name": "add", "op": "add", "args": ["float", "float"], "returns": "float"},
        {"name": "scale", "op": "mul", "args": ["float", "coef"], "returns": "float",
         "infix": "scale({0}, {1})"},
    ],
}
# Only `scale` makes a float: DEAP's draws are forced, so its failure is deterministic.
ONLY_SCALE = {**COEF, "name": "only-scale", "primitive": COEF["primitive"][1:]}
# "angle" has a primitive but no terminal.
ANGLE = {
    "name": "angle-gen",
    "primitive": [
        {"name": "rad", "op": "neg", "args": ["float"], "returns": "angle",
         "infix": "rad({0})"},
        {"name": "sin", "op": "sin", "args": ["angle"], "returns": "float"},
    ],
}


def leaf_depths(p: Program) -> list[int]:
    from hybrid_gp.operators.classic import node_depths

    depths = node_depths(p)
    return [d for i, d in enumerate(depths) if p.arity(i) == 0]


# ---------------------------------------------------------------------- DEAP vs ours


def test_deap_gen_full_raises_index_error_on_a_type_without_primitives():
    pset = deap_pset(grammar_from_dict(ONLY_SCALE), 1)
    # Every draw DEAP makes here has a single option, so no seeding is needed: the
    # root is scale(float, coef) and its coef argument, above the last level, must be
    # a primitive, and there is none.
    with pytest.raises(IndexError, match="tried to add a primitive of type"):
        gp.genFull(pset, 2, 2, type_=pset.ret)


def test_deap_gen_full_raises_index_error_on_a_type_without_terminals():
    pset = deap_pset(grammar_from_dict(ANGLE), 1)
    # sin -> rad -> sin -> (angle at the last level: must be a terminal; none exists)
    with pytest.raises(IndexError, match="tried to add a terminal of type"):
        gp.genFull(pset, 3, 3, type_=pset.ret)


@pytest.mark.parametrize("spec", [ONLY_SCALE, COEF, ANGLE], ids=lambda s: s["name"])
@pytest.mark.parametrize("method", ["full", "grow"])
def test_our_generator_succeeds_where_deap_raises(spec, method, rng):
    g = grammar_from_dict(spec)
    need = g.min_height[g.output_type]
    for depth in range(need, need + 5):
        for _ in range(20):
            p = random_tree(g, rng, 2, max_depth=depth, method=method)
            check_program(p)
            assert p.depth <= depth


def test_our_full_trees_use_scale_at_every_level(rng):
    g = grammar_from_dict(ONLY_SCALE)
    p = random_tree(g, rng, 1, max_depth=3, method="full")
    assert str(p).count("scale(") == 3 and p.depth == 3
    assert all(c >= 0.5 and c <= 2.0 for c in p.consts)


# ---------------------------------------------------------------------- properties

TREES = st.tuples(st.sampled_from(SHIPPED), st.integers(0, 2**32 - 1), st.integers(0, 6),
                  st.sampled_from(["grow", "full"]), st.integers(1, 5))


@given(TREES)
@settings(max_examples=150, deadline=None)
def test_random_trees_are_well_typed_and_within_the_depth_limit(args):
    name, seed, depth, method, n_features = args
    g = hg.load_grammar(name)
    depth = max(depth, g.min_height[g.output_type])
    p = random_tree(g, np.random.default_rng(seed), n_features, max_depth=depth,
                    method=method)
    check_program(p)
    assert p.depth <= depth
    assert all(var_index(c) < n_features for c in p.codes if c < -1)
    c = g.constants
    assert all(c.low <= v <= c.high for v in p.consts)


@given(st.sampled_from(["koza", "arith", "boolean", "full"]), st.integers(0, 2**32 - 1),
       st.integers(0, 5))
@settings(max_examples=80, deadline=None)
def test_full_trees_of_a_one_type_grammar_have_every_leaf_at_the_depth_limit(name, seed,
                                                                           depth):
    g = hg.load_grammar(name)
    p = random_tree(g, np.random.default_rng(seed), 3, max_depth=depth, method="full")
    assert set(leaf_depths(p)) == {depth}


@given(st.integers(0, 2**32 - 1), st.integers(0, 4), st.integers(0, 3))
@settings(max_examples=80, deadline=None)
def test_grow_respects_the_minimum_depth(seed, min_depth, extra):
    g = hg.load_grammar("koza")
    p = random_tree(g, np.random.default_rng(seed), 2, max_depth=min_depth + extra,
                    min_depth=min_depth)
    assert min(leaf_depths(p)) >= min_depth
    assert p.depth <= min_depth + extra


def test_the_same_seed_gives_the_same_programs():
    for name in SHIPPED:
        a = hg.random_programs(name, 30, 3, seed=11)
        b = hg.random_programs(name, 30, 3, seed=11)
        assert a == b
        assert a != hg.random_programs(name, 30, 3, seed=12)


def test_the_same_generator_state_gives_the_same_tree(full):
    a = random_tree(full, np.random.default_rng(5), 2, max_depth=5)
    b = random_tree(full, np.random.default_rng(5), 2, max_depth=5)
    assert a == b


def test_ramped_half_and_half_cycles_depths_and_methods(koza, rng):
    programs = ramped_half_and_half(koza, rng, 40, 2, min_depth=2, max_depth=5)
    assert len(programs) == 40
    depths = [p.depth for p in programs]
    # depths cycle 2, 3, 4, 5; the second round of each four is "full": exact depth
    for k, p in enumerate(programs):
        limit = 2 + k % 4
        assert p.depth <= limit
        if (k // 4) % 2:
            assert set(leaf_depths(p)) == {limit}
    assert max(depths) == 5 and min(depths) >= 2


def test_generation_eventually_uses_every_primitive_and_terminal(rng):
    for name in SHIPPED:
        g = hg.load_grammar(name)
        seen: set[int] = set()
        wanted = set(range(len(g.primitives))) | {-2, -3, -4}
        if g.constants.enabled:
            wanted.add(CONST)
        depth = max(4, g.min_height[g.output_type])
        for _ in range(500):
            seen.update(random_tree(g, rng, 3, max_depth=depth).codes)
            if wanted <= seen:
                break
        assert wanted <= seen, (name, wanted - seen)


def test_bad_generation_arguments_raise_config_errors(koza, full):
    with pytest.raises(ConfigError, match="needs at least one"):
        hg.random_programs("koza", 3, 0)
    for p in hg.random_programs(full, 20, 0, seed=1):  # constants only, no variables
        assert CONST in p.codes and all(c >= CONST for c in p.codes)
    with pytest.raises(ConfigError, match="n must be >= 0"):
        hg.random_programs("koza", -1, 2)
    with pytest.raises(ConfigError, match="n_features must be >= 0"):
        hg.random_programs("koza", 2, -1)
    with pytest.raises(ConfigError, match="min_depth <= max_depth"):
        hg.random_programs("koza", 2, 2, min_depth=4, max_depth=2)
    angle = grammar_from_dict(ANGLE)
    with pytest.raises(ConfigError, match="type 'angle' needs depth >= 1"):
        random_tree(angle, np.random.default_rng(0), 1, max_depth=0, ret_type="angle")
    tree = random_tree(angle, np.random.default_rng(0), 1, max_depth=1, ret_type="angle")
    assert str(tree) == "rad(x0)"


def test_ramped_half_and_half_keeps_every_tree_within_max_size():
    g = hg.load_grammar("koza")
    free = ramped_half_and_half(g, np.random.default_rng(3), 200, 2, 2, 6)
    assert max(p.size for p in free) > 15  # the limit below binds
    limited = ramped_half_and_half(g, np.random.default_rng(3), 200, 2, 2, 6, max_size=15)
    assert max(p.size for p in limited) <= 15
    assert ramped_half_and_half(g, np.random.default_rng(3), 200, 2, 2, 6,
                                max_size=10_000) == free


def test_a_max_size_below_the_minimum_depth_gives_shallower_trees():
    trees = ramped_half_and_half(hg.load_grammar("koza"), np.random.default_rng(0), 20, 2,
                                 min_depth=2, max_depth=3, max_size=2)
    assert max(p.size for p in trees) <= 2


def test_a_run_never_holds_a_program_over_max_size():
    res = hg.run("nguyen-7", max_size=9, max_evaluations=3000, population_size=60,
                 immigrants=0.1, restart_after=3)
    assert max(p.size for _, _, p in res.pareto_front) <= 9
