"""Online bin packing: instances, the Numba simulator against its numpy twin, the
baselines, and (slow) a search that beats best fit."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.compiler import compile_batch
from hybrid_gp.errors import ProblemError
from hybrid_gp.evaluation import evaluate_features
from hybrid_gp.kernels.reference_binpack import pack_reference, table_priority
from hybrid_gp.problem import ProblemSpec
from hybrid_gp.problem_kinds.binpack import (
    Instances,
    SizeDistribution,
    best_fit_scores,
    bins_used,
    excess_percent,
    first_fit_scores,
    l1_bound,
)

WEIBULL = SizeDistribution("weibull", 1, 100, shape=3.0, scale=45.0)


def _instances(items: list[int], capacity: int = 100) -> Instances:
    """One hand-written instance on the grid of sizes 1..capacity."""
    small = Instances.draw(SizeDistribution("uniform", 1, capacity), capacity, 1, 1, seed=0)
    arr = np.asarray(items, dtype=np.int64)
    return Instances(small.XT, small.y, arr, np.array([0, len(arr)]), capacity,
                     small.grid_index)


def _twin_bins(scores: np.ndarray, data: Instances) -> list[int]:
    priority = table_priority(scores, data.grid_index)
    return [pack_reference(priority, data.instance(k), data.capacity)
            for k in range(data.n_instances)]


def test_best_fit_and_first_fit_on_a_hand_worked_instance():
    # 50 -> bin 0; 60 -> bin 1 (40 left); 40: best fit fills bin 1 exactly, first fit
    # takes bin 0 (10 left) and the last 50 then needs a third bin.
    data = _instances([50, 60, 40, 50])
    tables = np.stack([best_fit_scores(data), first_fit_scores(data)])
    assert bins_used(tables, data)[:, 0].tolist() == [2, 3]
    assert _twin_bins(tables[0], data) == [2] and _twin_bins(tables[1], data) == [3]
    assert l1_bound(data.items, 100) == 2
    assert excess_percent(bins_used(tables, data), data).tolist() == [0.0, 50.0]


def test_l1_bound_rounds_up():
    assert l1_bound(np.array([30, 30, 30]), 100) == 1
    assert l1_bound(np.array([60, 60]), 100) == 2
    assert l1_bound(np.array([50, 50]), 100) == 1


def test_kernel_matches_numpy_twin_on_random_programs(rng):
    data = Instances.draw(WEIBULL, 100, 3, 250, seed=int(rng.integers(1 << 30)))
    grammar = hg.load_grammar("binpack")
    programs = hg.random_programs(grammar, 80, 3, seed=rng, min_depth=1, max_depth=5)
    scores = evaluate_features(compile_batch(programs), data.XT)
    bins = bins_used(scores, data)
    for k in range(len(programs)):
        assert bins[k].tolist() == _twin_bins(scores[k], data)


def test_kernel_matches_twin_with_nan_inf_and_ties(rng):
    data = Instances.draw(SizeDistribution("uniform", 20, 100), 150, 2, 200, seed=3)
    n = data.XT.shape[1]
    tables = [
        rng.choice([np.nan, np.inf, -np.inf, 1.0, 2.0], size=n),  # specials and ties
        np.full(n, np.nan),  # all NaN: every bin ties at -inf, so first fit
        np.round(rng.normal(size=n), 1),  # many ties between different capacities
        -best_fit_scores(data),  # worst fit
    ]
    scores = np.stack(tables)
    bins = bins_used(scores, data)
    for k in range(len(tables)):
        assert bins[k].tolist() == _twin_bins(scores[k], data)
    assert bins[1].tolist() == bins_used(first_fit_scores(data), data)[0].tolist()


def test_parallel_simulation_equals_serial(rng):
    data = Instances.draw(WEIBULL, 100, 2, 300, seed=11)
    scores = rng.normal(size=(6, data.XT.shape[1]))
    assert np.array_equal(bins_used(scores, data, n_jobs=2), bins_used(scores, data))


def test_best_fit_program_scores_the_best_fit_baseline():
    problem = hg.get_problem("binpack-weibull")
    best_fit = hg.Program.parse("x0 - x1", problem.grammar)
    first_fit = hg.Program.parse("1.0", problem.grammar)
    batch = compile_batch([best_fit, first_fit])
    on_test = problem.error(batch, data=problem.test)
    baselines = problem.baselines()
    assert on_test.tolist() == [baselines["best-fit"], baselines["first-fit"]]
    assert baselines["best-fit"] < baselines["first-fit"]


def test_instances_are_pinned_by_their_seed_and_test_differs_from_train():
    a = Instances.draw(WEIBULL, 100, 2, 100, seed=5)
    b = Instances.draw(WEIBULL, 100, 2, 100, seed=5)
    assert np.array_equal(a.items, b.items)
    problem = hg.get_problem("binpack-weibull")
    assert problem.train.n_instances == 5 and problem.test.n_instances == 5
    assert problem.train.n_items == 25_000 and problem.n_cases == 25_000
    assert not np.array_equal(problem.train.items, problem.test.items)


def test_sizes_are_integers_in_range():
    items = Instances.draw(WEIBULL, 100, 1, 5000, seed=1).items
    assert items.dtype == np.int64 and items.min() >= 1 and items.max() <= 100
    assert 35 < items.mean() < 45  # 45 * Gamma(1 + 1/3) = 40.2
    uniform = hg.get_problem("binpack-or").train.items
    assert uniform.min() >= 20 and uniform.max() <= 100


def test_grid_covers_every_item_and_fitting_capacity():
    data = hg.get_problem("binpack-or").train
    s, r, c = data.XT
    assert np.all(r >= s) and np.all(c == 150)
    assert len(s) == sum(151 - size for size in range(20, 101))
    assert np.all(data.grid_index[s.astype(int), r.astype(int)] == np.arange(len(s)))


def test_bad_specs_name_the_field():
    def build(**fields):
        base = {"kind": "binpack", "capacity": 100,
                "sizes": {"distribution": "weibull", "shape": 3.0, "scale": 45.0,
                          "low": 1, "high": 100},
                "train": {"instances": 1, "items": 10, "seed": 1}}
        return ProblemSpec("bp", "binpack", {**base, **fields}, {}, "test.toml").build()

    with pytest.raises(ProblemError, match="'capacity'"):
        build(capacity=0)
    with pytest.raises(ProblemError, match="high <= capacity"):
        build(capacity=50)
    with pytest.raises(ProblemError, match="'distribution'"):
        build(sizes={"distribution": "normal", "low": 1, "high": 10})
    with pytest.raises(ProblemError, match="train"):
        build(train={"instances": 1, "items": 10})
    assert build().train.n_items == 10


@pytest.mark.slow
def test_search_beats_best_fit_on_weibull_test_instances_within_five_minutes():
    problem = hg.get_problem("binpack-weibull")
    result = hg.run(problem, seed=0, time_budget=300.0)
    assert result.test_error < problem.baselines()["best-fit"]
