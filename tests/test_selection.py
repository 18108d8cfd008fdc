"""Selection (search/selection.py): the Numba kernels against their numpy twins and a
brute-force definition of Pareto dominance, on inputs with ties, inf and NaN; what
NSGA-II survival, tournaments and lexicase must pick."""

from __future__ import annotations

import copy
import itertools

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from hybrid_gp.search import selection as sel

SOME = settings(max_examples=100, deadline=None)

# Errors from a small pool (ties are common), with inf and NaN; small integer complexities.
ERRORS = st.sampled_from([0.0, 0.5, 1.0, 1.0, 2.5, 3.0, 1e300, np.inf, np.nan]) | \
    st.floats(0.0, 10.0)
POINTS = st.integers(1, 60).flatmap(lambda n: st.tuples(
    st.lists(ERRORS, min_size=n, max_size=n),
    st.lists(st.integers(1, 8), min_size=n, max_size=n)))


def arrays(points) -> tuple[np.ndarray, np.ndarray]:
    err, comp = points
    return np.array(err, dtype=np.float64), np.array(comp, dtype=np.float64)


def dominates(e1, c1, e2, c2) -> bool:
    return e1 <= e2 and c1 <= c2 and (e1 < e2 or c1 < c2)


def brute_fronts(err: np.ndarray, comp: np.ndarray) -> np.ndarray:
    """Peel non-dominated sets by the definition (NaN errors count as inf)."""
    e = np.where(np.isnan(err), np.inf, err)
    front = np.full(len(e), -1)
    left = set(range(len(e)))
    k = 0
    while left:
        on = {i for i in left
              if not any(dominates(e[j], comp[j], e[i], comp[i]) for j in left if j != i)}
        for i in on:
            front[i] = k
        left -= on
        k += 1
    return front


# ---------------------------------------------------------------------- fronts


@SOME
@given(POINTS)
def test_fronts_kernel_equals_its_twin_and_the_definition(points):
    err, comp = arrays(points)
    fast = sel.nondominated_fronts(err, comp)
    assert fast.tolist() == sel.nondominated_fronts_reference(err, comp).tolist()
    assert fast.tolist() == brute_fronts(err, comp).tolist()


@SOME
@given(POINTS)
def test_a_front_0_point_is_never_dominated(points):
    err, comp = arrays(points)
    e = np.where(np.isnan(err), np.inf, err)
    front = sel.nondominated_fronts(err, comp)
    for i in np.flatnonzero(front == 0):
        assert not any(dominates(e[j], comp[j], e[i], comp[i]) for j in range(len(e)))
    for i in np.flatnonzero(front > 0):  # and every later point is dominated by the front before
        assert any(dominates(e[j], comp[j], e[i], comp[i]) for j in np.flatnonzero(
            front == front[i] - 1))


@SOME
@given(POINTS, st.sampled_from(["counts", "fraction", "negative", "wide", "nan", "inf"]))
def test_the_bucket_order_is_lexsorts(points, kind):
    """Node counts go through the bucket sort; fractions, NaN, inf and spans of 2**16 or
    more through the lexsort; negative integers are buckets too."""
    err, comp = arrays(points)
    comp[0] += {"counts": 0.0, "fraction": 0.5, "negative": -20.0, "wide": 70_000.0,
                "nan": np.nan, "inf": np.inf}[kind]
    assert sel.by_complexity_then_error(err, comp).tolist() == np.lexsort((err, comp)).tolist()


def test_the_bucket_order_sorts_large_buckets_of_ties_and_nan_by_index():
    """A bucket of more than 32 points is merge-sorted: ties stay in index order, NaN
    errors come last."""
    rng = np.random.default_rng(0)
    err = rng.choice([0.5, 1.0, np.inf, np.nan], size=400)
    comp = rng.integers(3, 5, size=400).astype(np.float64)
    assert sel.by_complexity_then_error(err, comp).tolist() == np.lexsort((err, comp)).tolist()


def test_equal_points_share_a_front():
    err = np.array([1.0, 1.0, 2.0, 2.0, np.inf, np.nan])
    comp = np.array([3.0, 3.0, 1.0, 1.0, 5.0, 5.0])
    front = sel.nondominated_fronts(err, comp)
    assert front.tolist() == [0, 0, 0, 0, 1, 1]


# ---------------------------------------------------------------------- crowding


@SOME
@given(POINTS)
def test_crowding_kernel_equals_its_twin(points):
    err, comp = arrays(points)
    front = sel.nondominated_fronts(err, comp)
    fast = sel.crowding(err, comp, front)
    ref = sel.crowding_reference(err, comp, front)
    np.testing.assert_allclose(fast, ref, rtol=1e-12, atol=0)
    assert np.array_equal(np.isinf(fast), np.isinf(ref))


def test_crowding_gives_the_ends_of_each_front_infinite_distance():
    err = np.array([0.0, 1.0, 2.0, 4.0])
    comp = np.array([4.0, 3.0, 2.0, 1.0])  # one front of four
    dist = sel.crowding(err, comp, np.zeros(4, dtype=np.int64))
    assert np.isinf(dist[0]) and np.isinf(dist[3])
    assert dist[1] == pytest.approx(2 / 4 + 2 / 3)  # (2 - 0) / 4 + (4 - 2) / 3
    assert dist[2] == pytest.approx(3 / 4 + 2 / 3)


# ---------------------------------------------------------------------- NSGA-II


@SOME
@given(POINTS)
def test_nsga2_order_kernel_equals_its_twin(points):
    err, comp = arrays(points)
    assert sel.nsga2_order(err, comp).tolist() == sel.nsga2_order_reference(err, comp).tolist()


@settings(max_examples=25, deadline=None)
@given(st.integers(33, 120), st.integers(1, 3))
def test_nsga2_order_sorts_large_fronts_of_ties_like_its_twin(n, kinds):
    """Fronts over 32 points (a long staircase, many equal points, inf and NaN errors)
    take the mergesort path."""
    rng = np.random.default_rng(n * 10 + kinds)
    stairs = rng.permutation(n).astype(np.float64)  # n points, none dominating another
    ties = rng.choice([1.0, np.inf, np.nan][:kinds], n)
    err = np.concatenate([stairs, ties])
    comp = np.concatenate([n - stairs, rng.integers(1, 3, n).astype(np.float64)])
    order = rng.permutation(2 * n)
    err, comp = err[order], comp[order]
    assert sel.nsga2_order(err, comp).tolist() == sel.nsga2_order_reference(err, comp).tolist()
    np.testing.assert_array_equal(sel.crowding(err, comp, sel.nondominated_fronts(err, comp)),
                                  sel.crowding_reference(err, comp,
                                                         sel.nondominated_fronts(err, comp)))


@SOME
@given(POINTS, st.integers(1, 60))
def test_nsga2_survivors_keep_whole_fronts_first(points, mu):
    err, comp = arrays(points)
    mu = min(mu, len(err))
    keep = sel.nsga2_survivors(err, comp, mu)
    assert len(keep) == mu == len(set(keep.tolist()))
    assert keep.tolist() == sorted(keep.tolist())
    front = sel.nondominated_fronts(err, comp)
    last = front[keep].max()
    assert set(np.flatnonzero(front < last).tolist()) <= set(keep.tolist())
    assert not np.any(front[keep] > last)
    dist = sel.crowding(err, comp, front)
    cut = np.flatnonzero(front == last)
    kept_last = [i for i in cut if i in set(keep.tolist())]
    dropped = [i for i in cut if i not in set(keep.tolist())]
    if kept_last and dropped:  # the last front is cut by crowding distance
        assert dist[kept_last].min() >= dist[dropped].max()


@SOME
@given(POINTS)
def test_nsga2_ranks_order_by_front_then_crowding(points):
    err, comp = arrays(points)
    ranks = sel.nsga2_ranks(err, comp)
    assert sorted(ranks.tolist()) == list(range(len(err)))
    front = sel.nondominated_fronts(err, comp)
    dist = sel.crowding(err, comp, front)
    order = np.argsort(ranks)
    for a, b in itertools.pairwise(order):
        assert (front[a], -dist[a]) <= (front[b], -dist[b])


# ---------------------------------------------------------------------- tournament


def test_rank_is_lexicographic_parsimony_with_nan_last():
    err = np.array([1.0, np.nan, 1.0, 0.5, np.inf])
    comp = np.array([5.0, 1.0, 3.0, 9.0, 2.0])
    assert sel.rank(err, comp).tolist() == [2, 3, 1, 0, 4]  # NaN ranks as inf


@SOME
@given(st.integers(2, 40), st.integers(1, 7), st.integers(0, 2**32 - 1))
def test_tournament_picks_the_best_ranked_entrant(n_pop, size, seed):
    rng = np.random.default_rng(seed)
    ranks = rng.permutation(n_pop)
    twin = copy.deepcopy(rng)
    winners = sel.tournament(ranks, 50, size, rng)
    entrants = twin.integers(n_pop, size=(50, size))  # what the tournament drew
    for w, ent in zip(winners, entrants, strict=True):
        assert w in ent
        assert ranks[w] == ranks[ent].min()


def test_larger_tournaments_pick_better_ranks_on_average(rng):
    ranks = np.arange(100)
    means = [sel.tournament(ranks, 4000, k, rng).mean() for k in (1, 2, 4, 8)]
    assert abs(means[0] - 49.5) < 3  # size 1: uniform
    assert means[0] > means[1] > means[2] > means[3]
    # size k: the minimum of k uniform draws; its mean is about n / (k + 1)
    assert means[3] == pytest.approx(100 / 9 - 0.5, abs=1.5)


# ---------------------------------------------------------------------- lexicase


CASES = st.integers(1, 25).flatmap(lambda n_pop: st.integers(1, 12).flatmap(
    lambda n_cases: st.lists(
        st.sampled_from([0.0, 0.1, 1.0, 2.0, np.inf, np.nan]) | st.floats(0, 5),
        min_size=n_pop * n_cases, max_size=n_pop * n_cases).map(
        lambda v: np.array(v).reshape(n_pop, n_cases))))


@SOME
@given(CASES, st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_lexicase_kernel_equals_its_twin_on_the_same_uniforms(cases, n, seed):
    fast = sel.lexicase(cases, n, np.random.default_rng(seed))
    uniforms = np.random.default_rng(seed).random((n, cases.shape[1] + 1))
    assert fast.tolist() == sel.lexicase_reference(cases, n, uniforms).tolist()
    assert np.all((fast >= 0) & (fast < cases.shape[0]))


def test_lexicase_picks_the_elite_of_some_case(rng):
    """Each program is best on exactly one case: lexicase picks only those, all of
    them eventually; a program best on no case is never picked."""
    cases = np.array([[0.0, 9.0, 9.0],
                      [9.0, 0.0, 9.0],
                      [9.0, 9.0, 0.0],
                      [5.0, 5.0, 5.0]])
    picks = sel.lexicase(cases, 300, rng)
    assert set(picks.tolist()) == {0, 1, 2}


def test_lexicase_never_picks_a_program_with_only_non_finite_errors(rng):
    cases = np.array([[np.nan, np.inf], [1.0, 2.0], [2.0, 1.0], [np.inf, np.inf]])
    picks = sel.lexicase(cases, 200, rng)
    assert set(picks.tolist()) == {1, 2}


def test_case_epsilon_is_the_median_absolute_deviation():
    cases = np.array([[1.0, 0.0], [2.0, np.inf], [4.0, np.nan], [10.0, 0.0]])
    eps = sel.case_epsilon(cases)
    # column 0: median 3, deviations 2, 1, 1, 7 -> 1.5; column 1: finite 0, 0 -> 0
    assert eps.tolist() == [1.5, 0.0]


# ---------------------------------------------------------------------- archive


def _archive_one_by_one(batches) -> tuple:
    """The archive's rule applied a program at a time, in order."""
    table, best = {}, (np.inf, None, np.inf)
    for programs, errors, comp in batches:
        for p, e, c in zip(programs, errors, comp, strict=True):
            if not e < np.inf:
                continue
            if c not in table or e < table[c][0]:
                table[c] = (e, p)
            if e < best[0] or (e == best[0] and c < best[2]):
                best = (e, p, c)
    return table, best


@SOME
@given(st.lists(POINTS, min_size=1, max_size=4))
def test_the_archive_keeps_what_a_pass_in_order_keeps(batches):
    from hybrid_gp.search.archive import Archive

    archive, named, improved = Archive(), [], []
    for k, points in enumerate(batches):
        err, comp = arrays(points)
        programs = [f"batch {k} program {i}" for i in range(len(err))]  # ties stay apart
        named.append((programs, err, comp))
        before = (archive.best_error, archive.best_complexity)
        changed = archive.update(programs, err, comp)
        improved.append(changed == ((archive.best_error, archive.best_complexity) != before))
    table, (e, p, c) = _archive_one_by_one(named)
    assert archive.by_complexity == table and all(improved)
    assert (archive.best_error, archive.best, archive.best_complexity) == (e, p, c)


@SOME
@given(st.lists(POINTS, min_size=1, max_size=4))
def test_merging_only_the_changed_entries_gives_the_full_merge(batches):
    """An island's archive is merged every generation; a merge takes the entries
    changed since the last one, and ends where merging every entry each time ends."""
    from hybrid_gp.search.archive import Archive

    island, by_changes, by_all = Archive(), Archive(), Archive()
    for k, points in enumerate(batches):
        err, comp = arrays(points)
        island.update([f"batch {k} program {i}" for i in range(len(err))], err, comp)
        items = sorted(island.by_complexity.items())
        by_all.update([p for _, (_, p) in items], [e for _, (e, _) in items],
                      [c for c, _ in items])
        by_changes.merge(island)
        assert not island.changed
    assert by_changes.by_complexity == by_all.by_complexity == island.by_complexity
    assert ((by_changes.best_error, by_changes.best, by_changes.best_complexity)
            == (by_all.best_error, by_all.best, by_all.best_complexity))
