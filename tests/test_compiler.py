"""CompiledBatch.take: a subset of a compiled batch is that subset compiled."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import hybrid_gp as hg
from hybrid_gp.compiler import compile_batch
from hybrid_gp.evaluation import as_features, evaluate_features

PROGRAMS = hg.random_programs("full", 40, 3, seed=5, min_depth=1, max_depth=5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, len(PROGRAMS) - 1), max_size=60))
def test_take_equals_compiling_the_subset(idx):
    whole = compile_batch(PROGRAMS)
    part, direct = whole.take(idx), compile_batch([PROGRAMS[i] for i in idx])
    for name in ("codes", "code_offsets", "consts", "const_offsets"):
        np.testing.assert_array_equal(getattr(part, name), getattr(direct, name))
    assert part.n_features >= direct.n_features and part.depth >= direct.depth


def test_take_everything_in_order_is_the_batch_itself():
    whole = compile_batch(PROGRAMS)
    assert whole.take(range(len(PROGRAMS))) is whole


def test_a_taken_subset_evaluates_like_those_rows_of_the_whole_batch():
    XT = as_features(np.random.default_rng(1).uniform(-2, 2, size=(50, 3)), np.float64)
    whole = compile_batch(PROGRAMS)
    idx = [7, 3, 3, 0]
    np.testing.assert_array_equal(evaluate_features(whole.take(idx), XT),
                                  evaluate_features(whole, XT)[idx])
