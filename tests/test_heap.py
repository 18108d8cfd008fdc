"""frozen_heap: the collector skips pre-existing objects during a run, and only then."""

from __future__ import annotations

import gc

import numpy as np

import hybrid_gp as hg
from hybrid_gp.search.heap import frozen_heap


def test_objects_alive_at_the_start_are_frozen_inside_and_released_after():
    assert gc.get_freeze_count() == 0
    with frozen_heap():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_nested_blocks_keep_the_freeze_until_the_outer_one_ends():
    with frozen_heap():
        outer = gc.get_freeze_count()
        with frozen_heap():
            pass
        assert gc.get_freeze_count() == outer
    assert gc.get_freeze_count() == 0


def test_an_exception_still_releases_the_heap():
    try:
        with frozen_heap():
            raise RuntimeError("stop")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0


def test_cycles_made_inside_the_block_are_still_collected():
    class Node:
        pass

    with frozen_heap():
        a, b = Node(), Node()
        a.other, b.other = b, a
        alive = len([o for o in gc.get_objects() if isinstance(o, Node)])
        del a, b
        gc.collect()
        left = len([o for o in gc.get_objects() if isinstance(o, Node)])
    assert (alive, left) == (2, 0)


def test_a_run_leaves_nothing_frozen():
    X = np.linspace(-1, 1, 20)[:, None]
    hg.run(hg.Problem.from_data(X, X[:, 0] ** 2), seed=0, generations=2,
           population_size=20)
    assert gc.get_freeze_count() == 0
