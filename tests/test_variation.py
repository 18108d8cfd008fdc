"""The Numba batch breeder (kernels/variation.py via operators/batch.py) against its
Python twin: the classic operators of classic.py drawing from the same uniforms.

Child for child the twins must agree (codes, constants, and which operator made the
child after fallbacks); every child is a well-typed program of its grammar that keeps
the grammar's constraints and the size and depth limits.
"""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import hybrid_gp as hg
from hybrid_gp.compiler import compile_batch
from hybrid_gp.constraints import is_valid
from hybrid_gp.generate import ramped_half_and_half
from hybrid_gp.kernels import variation as kv
from hybrid_gp.operators.batch import (
    KERNEL_IDS,
    breed_children,
    breed_children_reference,
    uniforms_per_child,
)
from hybrid_gp.operators.draws import ChildDraws, UniformDraws
from hybrid_gp.program import check_program
from hybrid_gp.threads import forced

GRAMMARS = ["full", "koza", "boolean", "arith", "binpack"]
N_FEATURES = 3
OPS = np.array(sorted(KERNEL_IDS.values()), dtype=np.int64)


def _setup(name: str, rng: np.random.Generator, n_pop: int = 24, n_children: int = 150,
           max_depth: int = 7, max_size: int = 35, mutation_depth: int = 3,
           row: int | None = None):
    g = hg.load_grammar(name)
    low = g.min_height[g.output_type]
    pop = ramped_half_and_half(g, rng, n_pop, N_FEATURES, max(1, low), max(low, 5))
    pop = [p for p in pop if p.size <= max_size and p.depth <= max_depth]
    ops = rng.choice(OPS, size=n_children)
    first = rng.integers(len(pop), size=n_children)
    second = rng.integers(len(pop), size=n_children)
    width = row or uniforms_per_child(g, max_size, mutation_depth, max_depth)
    args = (pop, ops, first, second, ChildDraws.draw(rng, width), g, N_FEATURES, max_depth,
            max_size, mutation_depth)
    return g, pop, args


def _same(fast, slow) -> None:
    """The breeder's children and operators are the twin's, and the batch compiled
    from its arrays is compile_batch of those children."""
    kids, made = fast
    batch = kids.compiled()
    ref_kids, ref_made = slow
    assert len(kids) == len(ref_kids)
    for k, (a, b) in enumerate(zip(kids, ref_kids, strict=True)):
        assert (a.codes, a.consts) == (b.codes, b.consts), f"child {k} differs"
    assert made.tolist() == ref_made.tolist()
    want = compile_batch(ref_kids)
    for name in ("codes", "code_offsets", "consts", "const_offsets"):
        got, expected = getattr(batch, name), getattr(want, name)
        assert got.dtype == expected.dtype and np.array_equal(got, expected), name
    assert (batch.n_features, batch.depth) == (want.n_features, want.depth)


@pytest.mark.parametrize("name", GRAMMARS)
def test_the_batch_breeder_equals_its_python_twin(name, rng):
    g, _, args = _setup(name, rng)
    fast = breed_children(*args)
    _same(fast, breed_children_reference(*args))
    made = set(fast[1].tolist())  # every operator really made children here
    assert {kv.CROSSOVER, kv.SUBTREE, kv.POINT, kv.HOIST, kv.SHRINK} <= made
    assert (kv.CONSTANT in made) == g.constants.enabled


@pytest.mark.parametrize("name", GRAMMARS)
def test_the_twins_agree_when_the_uniforms_wrap_around(name, rng):
    _, _, args = _setup(name, rng, n_children=80, row=7)  # rows far too short: they wrap
    _same(breed_children(*args), breed_children_reference(*args))


@pytest.mark.parametrize("name", GRAMMARS)
@pytest.mark.parametrize("n_children", [65, 150, 401])
def test_threads_share_the_children_and_make_the_same_ones(name, n_children, rng):
    """breed_parallel hands chunks of children to threads and closes the gaps between
    the chunks' output: arrays, offsets and operators as one thread writes them."""
    from hybrid_gp.operators.batch import MIN_CHILDREN_PER_THREAD

    assert n_children >= 2 * MIN_CHILDREN_PER_THREAD  # so two threads are really used
    _, _, args = _setup(name, rng, n_children=n_children)
    one, made_one = breed_children(*args)
    with forced(True):
        two, made_two = breed_children(*args, n_jobs=2)
    for field in ("codes", "code_offsets", "consts", "const_offsets"):
        assert np.array_equal(getattr(one, field), getattr(two, field)), field
    assert made_one.tolist() == made_two.tolist()


@pytest.mark.parametrize("chunk", [1, 7, 100, 1000])
def test_the_parallel_breeder_closes_the_gaps_of_any_chunking(chunk, rng):
    """Chunks of one child, of a few, of about the batch and of more than the batch: the
    same output as one thread."""
    _, _, args = _setup("full", rng, n_children=100)
    one, _ = breed_children(*args)
    with forced(True):
        two, _ = breed_children(*args, n_jobs=2, chunk=chunk)
    for field in ("codes", "code_offsets", "consts", "const_offsets"):
        assert np.array_equal(getattr(one, field), getattr(two, field)), field


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(GRAMMARS), st.integers(0, 2**32 - 1), st.integers(2, 8),
       st.integers(5, 40), st.integers(0, 4))
def test_the_twins_agree_for_any_limits(name, seed, max_depth, max_size, mutation_depth):
    g = hg.load_grammar(name)
    if g.min_height[g.output_type] > max_depth:
        return
    rng = np.random.default_rng(seed)
    _, _, args = _setup(name, rng, n_pop=12, n_children=40, max_depth=max_depth,
                        max_size=max_size, mutation_depth=mutation_depth)
    if not args[0]:  # no initial tree fits these limits
        return
    _same(breed_children(*args), breed_children_reference(*args))


@pytest.mark.parametrize("name", GRAMMARS)
def test_every_child_is_valid_and_within_the_limits(name, rng):
    _, pop, args = _setup(name, rng, n_children=300, max_depth=6, max_size=25)
    kids, made = breed_children(*args)
    first = args[2]
    for k, child in enumerate(kids):
        check_program(child)
        assert is_valid(child)
        assert all(c >= -1 or -c - 2 < N_FEATURES for c in child.codes)
        if made[k] == kv.COPY:
            assert child == pop[first[k]]
        else:
            assert child.size <= 25 and child.depth <= 6


def test_fallbacks_are_reported_as_the_operator_that_made_the_child(koza, rng):
    """Koza has no constants (constant perturbation never applies) and a lone terminal
    has nothing to hoist or shrink: those children fall back to subtree mutation, or
    to a copy of the first parent when that fails too."""
    leaf = hg.Program.parse("x0", grammar=koza)
    n = 60
    for op in (kv.CONSTANT, kv.HOIST, kv.SHRINK):
        ops = np.full(n, op)
        zeros = np.zeros(n, dtype=np.int64)
        draws = ChildDraws.draw(rng, uniforms_per_child(koza, 20, 3, 5))
        args = ([leaf], ops, zeros, zeros, draws, koza, 1, 5, 20, 3)
        kids, made = breed_children(*args)
        assert set(made.tolist()) <= {kv.SUBTREE, kv.COPY}
        assert kv.SUBTREE in made.tolist()
        assert all(child == leaf for child, m in zip(kids, made, strict=True) if m == kv.COPY)
        _same((kids, made), breed_children_reference(*args))


def test_a_child_that_cannot_fit_is_a_copy_of_its_first_parent(rng):
    """With a size limit no child can meet, crossover fails, its subtree-mutation
    fallback fails too, and the child is a copy of the first parent."""
    g = hg.load_grammar("arith")
    parent = hg.Program.parse("(x0 + x1) * (x2 - x0)", grammar=g)
    other = hg.Program.parse("x1", grammar=g)
    n = 40
    ops = rng.choice([kv.CROSSOVER, kv.SUBTREE], size=n)
    first = np.zeros(n, dtype=np.int64)
    args = ([parent, other], ops, first, first + 1, ChildDraws.draw(rng, 64), g, 3, 4, 0, 2)
    kids, made = breed_children(*args)
    assert set(made.tolist()) == {kv.COPY}
    assert all(k == parent for k in kids)
    _same((kids, made), breed_children_reference(*args))


# ---------------------------------------------------------------------- UniformDraws


def test_uniform_draws_map_uniforms_as_documented():
    u = np.array([0.0, 0.25, 0.5, 0.999999, 0.75, 0.1, 0.3])
    d = UniformDraws(u)
    assert d.integers(4) == 0  # floor(0.0 * 4)
    assert d.integers(4) == 1  # floor(0.25 * 4)
    assert d.uniform(-2.0, 2.0) == 0.0  # -2 + 4 * 0.5
    assert d.integers(3) == 2  # floor(0.999999 * 3), capped at n - 1
    assert d.random() == 0.75
    z = d.normal(1.0, 2.0)  # Box-Muller on (0.1, 0.3)
    assert z == pytest.approx(1.0 + 2.0 * math.sqrt(-2 * math.log(0.9)) *
                              math.cos(2 * math.pi * 0.3))
    assert d.cursor == 7
    assert d.random() == 0.0  # past the end the row wraps around
    assert d.cursor == 8


def test_uniform_draws_stay_below_n_and_fill_arrays():
    d = UniformDraws(np.array([np.nextafter(1.0, 0.0), 0.5, 0.5]))
    assert d.integers(5) == 4
    assert d.random(size=2).tolist() == [0.5, 0.5]
    assert d.normal(size=3).shape == (3,)


@pytest.mark.parametrize("k", [0, 1, 5, 3000])
def test_uniform_draws_match_the_kernels_draws(k, rng):
    """The kernel's _int/_rand/_normal helpers, computing child k's uniforms from the
    batch seed, consume them exactly as UniformDraws over ChildDraws.rows' row k."""
    draws = ChildDraws.draw(rng, 11)
    d = UniformDraws(draws.rows(k + 1)[k])
    first = (draws.seed + ((k << 32) + 1) * int(kv._GOLDEN)) % 2**64  # as breed sets it
    u = np.array([first, draws.period], dtype=np.uint64)
    cur = np.zeros(1, dtype=np.int64)
    assert kv._int(u, cur, 7) == d.integers(7)
    assert kv._rand(u, cur) == d.random()
    assert kv._normal(u, cur) == pytest.approx(d.normal(), rel=1e-15, abs=1e-15)
    for _ in range(10):  # wraps
        assert kv._int(u, cur, 13) == d.integers(13)
    assert cur[0] == d.cursor


def test_child_draws_are_uniform_and_independent_across_children():
    """SplitMix64 rows: every value in [0, 1), means and a first-lag correlation as a
    uniform's, within and across rows, and no two rows alike."""
    rows = ChildDraws(12345, 257).rows(400)
    assert rows.min() >= 0.0 and rows.max() < 1.0
    assert abs(rows.mean() - 0.5) < 0.005 and abs(rows.var() - 1 / 12) < 0.002
    flat = rows.ravel()
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.01
    assert abs(np.corrcoef(rows[:-1, 0], rows[1:, 0])[0, 1]) < 0.15  # first uniforms
    assert len({tuple(r[:4]) for r in rows.tolist()}) == 400


def test_child_draws_refuse_a_seed_or_period_out_of_range():
    with pytest.raises(ValueError, match="period"):
        ChildDraws(1, 0)
    with pytest.raises(ValueError, match="seed"):
        ChildDraws(-1, 5)
