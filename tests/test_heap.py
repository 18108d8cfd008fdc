"""lighter_collection: during a run the collector skips pre-existing objects and
scans young ones less often; afterwards everything is as before."""

from __future__ import annotations

import gc

import numpy as np

import hybrid_gp as hg
from hybrid_gp.search.heap import YOUNG_THRESHOLD, lighter_collection


def test_objects_alive_at_the_start_are_frozen_inside_and_released_after():
    assert gc.get_freeze_count() == 0
    with lighter_collection():
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0


def test_the_young_threshold_is_raised_inside_and_restored_after():
    before = gc.get_threshold()
    with lighter_collection():
        assert gc.get_threshold() == (max(before[0], YOUNG_THRESHOLD), *before[1:])
    assert gc.get_threshold() == before


def test_nested_blocks_keep_the_freeze_until_the_outer_one_ends():
    with lighter_collection():
        outer = gc.get_freeze_count()
        with lighter_collection():
            pass
        assert gc.get_freeze_count() == outer
    assert gc.get_freeze_count() == 0 and gc.get_threshold()[0] < YOUNG_THRESHOLD


def test_an_exception_still_releases_the_heap():
    try:
        with lighter_collection():
            raise RuntimeError("stop")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0


def test_cycles_made_inside_the_block_are_still_collected():
    class Node:
        pass

    with lighter_collection():
        a, b = Node(), Node()
        a.other, b.other = b, a
        alive = len([o for o in gc.get_objects() if isinstance(o, Node)])
        del a, b
        gc.collect()
        left = len([o for o in gc.get_objects() if isinstance(o, Node)])
    assert (alive, left) == (2, 0)


def test_a_run_leaves_the_collector_as_it_found_it():
    X = np.linspace(-1, 1, 20)[:, None]
    before = gc.get_threshold()
    hg.run(hg.Problem.from_data(X, X[:, 0] ** 2), seed=0, generations=2,
           population_size=20)
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == before
