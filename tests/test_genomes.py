"""Genomes (hybrid_gp/genomes.py): a batch of programs as flat arrays behaves as the
list of its Programs under every operation a generation uses, and makes a Program
only when one is read."""

from __future__ import annotations

import pickle

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import hybrid_gp as hg
from hybrid_gp.compiler import compile_batch
from hybrid_gp.genomes import Genomes, gather_segments, gather_segments_reference
from hybrid_gp.kernels.unique import first_occurrences
from hybrid_gp.problem import get_problem
from hybrid_gp.search.population import Population, first_occurrences_reference

SOME = settings(max_examples=40, deadline=None)
PROGRAMS = {name: hg.random_programs(name, 40, 3, seed=7) for name in ("full", "koza")}


def made(g: Genomes) -> int:
    """How many Programs the batch has built so far."""
    return sum(p is not None for p in g._made)


def test_a_batch_reads_back_its_programs():
    programs = PROGRAMS["full"]
    g = Genomes.of(programs)
    assert len(g) == len(programs) and list(g) == programs and g == programs
    assert [g[k] for k in range(-3, 3)] == programs[-3:] + programs[:3]
    assert g[2:9:3] == programs[2:9:3]
    with pytest.raises(IndexError):
        g[len(programs)]


def test_programs_are_made_only_when_read_and_then_kept():
    arrays = Genomes.of(PROGRAMS["full"])
    g = Genomes(arrays.grammar, arrays.codes, arrays.code_offsets, arrays.consts,
                arrays.const_offsets)  # as the breeder hands them over: no Program yet
    part = g.take([5, 1, 5]) + g.take([0])
    assert made(g) == made(part) == 0
    first = part[0]
    assert first == PROGRAMS["full"][5] and part[0] is first and made(part) == 1
    assert part.compiled().n_programs == 4 and made(part) == 1  # compiling makes none


@SOME
@given(st.sampled_from(sorted(PROGRAMS)), st.lists(st.integers(0, 39), max_size=60),
       st.lists(st.integers(0, 39), max_size=20), st.data())
def test_take_add_and_replace_agree_with_lists(name, idx, other, data):
    programs = PROGRAMS[name]
    g = Genomes.of(programs)
    a, b = g.take(idx), g.take(other)
    assert a == [programs[i] for i in idx]
    assert a + b == [programs[i] for i in idx] + [programs[i] for i in other]
    both = list(a + b)
    where = data.draw(st.lists(st.integers(0, max(len(both) - 1, 0)), unique=True,
                               max_size=len(both)))
    new = hg.random_programs(name, len(where), 3, seed=len(where))
    want = list(both)
    for i, p in zip(where, new, strict=True):
        want[i] = p
    assert (a + b).replaced(where, new) == want


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_the_compiled_batch_is_compile_batch_of_the_programs(name):
    programs = PROGRAMS[name]
    g = Genomes.of(programs).take(np.arange(39, -1, -2))
    want = compile_batch(list(g))
    got = compile_batch(g)
    for field in ("codes", "code_offsets", "consts", "const_offsets"):
        a, b = getattr(got, field), getattr(want, field)
        assert a.dtype == b.dtype and np.array_equal(a, b), field
    assert (got.n_features, got.depth) == (want.n_features, want.depth)


def test_a_pickled_batch_carries_its_arrays_and_reads_the_same():
    g = Genomes.of(PROGRAMS["full"])
    back = pickle.loads(pickle.dumps(g))
    assert back == g and made(back) == 0 and list(back) == PROGRAMS["full"]


def test_a_batch_holds_programs_of_one_grammar():
    with pytest.raises(ValueError, match="one grammar"):
        Genomes.of([PROGRAMS["full"][0], PROGRAMS["koza"][0]])


def test_an_empty_batch_compiles_and_concatenates():
    empty = Genomes.of([])
    assert len(empty) == 0 and list(empty) == [] and compile_batch(empty).n_programs == 0
    g = Genomes.of(PROGRAMS["koza"][:3])
    assert empty + g == g + empty == PROGRAMS["koza"][:3]


def test_complexities_read_the_node_counts_without_making_programs():
    problem = get_problem("nguyen-7")
    arrays = Genomes.of(PROGRAMS["koza"])
    g = Genomes(arrays.grammar, arrays.codes, arrays.code_offsets, arrays.consts,
                arrays.const_offsets)
    assert problem.complexities(g).tolist() == problem.complexities(PROGRAMS["koza"]).tolist()
    assert made(g) == 0


def test_a_population_keeps_the_first_of_each_function_and_loads_old_pickles():
    programs = PROGRAMS["koza"][:6]
    keys = [4, 2, 4, 9, 2, 1]
    pop = Population(programs, np.arange(6.0), np.ones(6), keys, np.arange(6))
    u = pop.unique()
    assert u.keys.tolist() == [4, 2, 9, 1] and u.ids.tolist() == [0, 1, 3, 5]
    assert u.programs == [programs[i] for i in (0, 1, 3, 5)]
    old = pickle.loads(pickle.dumps(pop))
    old.__setstate__({**old.__dict__, "programs": list(programs), "keys": keys})  # as before
    assert isinstance(old.programs, Genomes) and old.keys.dtype == np.int64
    assert old.programs == programs


@SOME
@given(st.lists(st.integers(0, 6), max_size=30), st.data())
def test_gathering_segments_kernel_equals_its_twin(lengths, data):
    """Segments of any length (empty ones too), any order, repeats, int32, int64 and
    float64 values."""
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    idx = np.array(data.draw(st.lists(st.integers(0, max(len(lengths) - 1, 0)),
                                      max_size=40 if lengths else 0)), dtype=np.int64)
    for dtype in (np.int32, np.int64, np.float64):
        values = (np.arange(offsets[-1]) * 3 - 7).astype(dtype)
        got, got_off = gather_segments(values, offsets, idx)
        want, want_off = gather_segments_reference(values, offsets, idx)
        assert got.dtype == want.dtype == dtype
        assert np.array_equal(got, want) and np.array_equal(got_off, want_off)


def test_gathering_a_segment_past_the_end_is_refused():
    with pytest.raises(IndexError, match="out of range"):
        gather_segments(np.arange(4), np.array([0, 2, 4]), np.array([0, 2]))


@SOME
@given(st.lists(st.integers(-3, 3) | st.integers(-2**63, 2**63 - 1), max_size=80))
def test_first_occurrences_kernel_equals_its_twin(keys):
    keys = np.array(keys, dtype=np.int64)
    assert first_occurrences(keys).tolist() == first_occurrences_reference(keys).tolist()
