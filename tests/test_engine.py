"""The engine (search/engine.py, island.py, genealogy.py, archive.py): islands are
independent, so the run is the same for any n_jobs and any Executor; migration moves
programs; budgets stop exactly; every selection scheme and the bandit portfolio run
and improve; the genealogy is complete and its files agree with the stats.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.api import make_config, run_config
from hybrid_gp.program import check_program
from hybrid_gp.runlog import read_genealogy
from hybrid_gp.search.engine import Engine
from hybrid_gp.search.genealogy import NO_PARENT

PROBLEM = "nguyen-7"
BASE = dict(population_size=40, islands=3, migration_interval=2, migration_size=3,
            target_error=0.0)


def config(seed: int = 1, max_evaluations: int | None = 3000, n_jobs: int = 1, **kw: Any):
    return make_config(PROBLEM, seed=seed, max_evaluations=max_evaluations, n_jobs=n_jobs,
                       **(BASE | kw))


def without_clock(events: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "clock"} for e in events]


def fingerprint(res, events) -> tuple:
    front = [(c, e, str(p)) for c, e, p in res.pareto_front]
    return str(res.best), res.best_error, front, without_clock(events)


def run_with_events(cfg, **kw) -> tuple[Any, list[dict]]:
    events: list[dict] = []
    res = run_config(cfg, on_event=events.append, **kw)
    return res, events


@pytest.fixture(scope="module")
def serial():
    return run_with_events(config())


# ---------------------------------------------------------------------- determinism


def test_the_same_seed_gives_the_same_run_for_n_jobs_1_and_2(serial):
    parallel = run_with_events(config(n_jobs=2))
    assert fingerprint(*parallel) == fingerprint(*serial)
    assert parallel[0].stats["evaluations"] == serial[0].stats["evaluations"]


def test_one_island_with_constant_fitting_is_the_same_for_n_jobs_1_and_2():
    """One island: the kernels (and the constant fitting) themselves use n_jobs threads."""
    runs = [run_with_events(make_config("keijzer-5", seed=0, max_evaluations=1500,
                                        n_jobs=n_jobs, population_size=60, target_error=0.0))
            for n_jobs in (1, 2)]
    assert runs[0][0].stats["fitted"] > 0
    assert runs[0][0].stats["evaluations"] == 1500  # refitted children are paid for too
    assert fingerprint(*runs[0]) == fingerprint(*runs[1])


def test_wall_clock_values_are_only_under_clock(serial):
    _, events = serial
    kinds = {e["event"] for e in events}
    assert {"generation", "progress", "end"} <= kinds
    for e in events:
        for key, value in e.items():
            assert key == "clock" or "second" not in key, (key, value)


class SerialExecutor(Executor):
    """The simplest Executor: runs each call at once in the caller's thread."""

    def __init__(self) -> None:
        self.calls = 0

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self.calls += 1
        f: Future = Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # handed to the caller through the future
            f.set_exception(exc)
        return f


def engine_result(engine: Engine) -> tuple:
    reason = engine.run()
    a = engine.state.archive
    return reason, str(a.best), a.best_error, [(c, e, str(p)) for c, e, p in a.pareto_front()]


def test_a_custom_executor_gives_the_same_result(serial):
    res, _ = serial
    problem = hg.get_problem(PROBLEM)
    expected = ("max_evaluations", str(res.best), res.best_error,
                [(c, e, str(p)) for c, e, p in res.pareto_front])
    custom = SerialExecutor()
    assert engine_result(Engine(problem, config(), executor=custom)) == expected
    assert custom.calls > 0 and custom.calls % 3 == 0  # one call per island per epoch
    with ThreadPoolExecutor(3) as pool:
        assert engine_result(Engine(problem, config(), executor=pool)) == expected


def test_a_process_pool_executor_gives_the_same_result(serial):
    res, _ = serial
    with ProcessPoolExecutor(2) as pool:
        got = engine_result(Engine(hg.get_problem(PROBLEM), config(), executor=pool))
    assert got[1:3] == (str(res.best), res.best_error)


# ---------------------------------------------------------------------- migration


def test_migrants_move_to_the_next_island_in_the_ring():
    engine = Engine(hg.get_problem(PROBLEM), config(seed=2, max_evaluations=None,
                                                    generations=40))
    engine.initialise()
    islands = engine.state.islands
    n = len(islands)
    moved = 0
    improving = 0
    for _ in range(6):
        engine._epoch()
        outgoing = [isl.population.take(isl.population.best(3)) for isl in islands]
        best_before = [float(np.min(isl.population.errors)) for isl in islands]
        keys_before = [set(isl.population.keys) for isl in islands]
        engine._barrier()
        for k, isl in enumerate(islands):
            incoming = outgoing[(k - 1) % n]
            ids = set(isl.population.ids.tolist())
            for mid, err, key in zip(incoming.ids.tolist(), incoming.errors.tolist(),
                                     incoming.keys, strict=True):
                moved += mid in ids
                if err < best_before[k] and key not in keys_before[k]:
                    improving += 1  # a new function better than any there: it must survive
                    assert mid in ids
            assert len(set(isl.population.keys)) == len(isl.population)  # no duplicates
    assert moved > 0 and improving > 0
    origins = {int(i) % n for isl in islands for i in isl.population.ids}
    assert origins == set(range(n))


def test_a_single_island_runs_one_generation_per_epoch():
    res, events = run_with_events(config(islands=1, max_evaluations=800))
    assert {e["island"] for e in events if e["event"] == "generation"} == {0}
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["generation"] for e in progress] == [e["epoch"] for e in progress]
    assert res.stats["evaluations"] == 800


# ---------------------------------------------------------------------- budgets


@pytest.mark.parametrize("budget", [1000, 2501])
def test_max_evaluations_is_spent_exactly_when_it_binds(budget):
    res, events = run_with_events(config(max_evaluations=budget))
    assert res.stop_reason == "max_evaluations"
    assert res.stats["evaluations"] == budget
    progress = [e["evaluations"] for e in events if e["event"] == "progress"]
    assert progress == sorted(progress) and progress[-1] == budget


@pytest.mark.parametrize("keep", ["front", "none"])
def test_restarts_spend_no_more_than_the_evaluation_budget(keep):
    """A restart scores a fresh population in the same generation as the children: it
    gets what the children left of the budget, never more."""
    res, events = run_with_events(config(max_evaluations=2345, restart_after=1,
                                         restart_gain=0.9, restart_keep=keep))
    assert any(e["event"] == "restart" for e in events)
    assert res.stats["evaluations"] == 2345 and res.stop_reason == "max_evaluations"


def test_a_budget_smaller_than_the_initial_population_is_still_exact():
    res, _ = run_with_events(config(max_evaluations=50))
    assert res.stats["evaluations"] == 50 and res.stop_reason == "max_evaluations"


@pytest.mark.parametrize("islands, interval", [(1, 1), (3, 3)])
def test_generations_stop_the_run_at_exactly_that_generation(islands, interval):
    res, events = run_with_events(config(max_evaluations=None, generations=7, islands=islands,
                                         migration_interval=interval))
    assert res.stop_reason == "generations" and res.stats["generations"] == 7
    gens = [e for e in events if e["event"] == "generation"]
    for k in range(islands):
        assert [e["generation"] for e in gens if e["island"] == k] == list(range(8))


def test_target_error_stops_the_run_early():
    res, events = run_with_events(make_config("nguyen-1", seed=0, max_evaluations=200_000,
                                              population_size=60, target_error=1e-3))
    assert res.stop_reason == "target_error"
    assert res.best_error <= 1e-3
    assert res.stats["evaluations"] < 200_000
    assert events[-1]["event"] == "end" and events[-1]["stop_reason"] == "target_error"


def test_a_search_that_reaches_nothing_new_stops_as_stalled():
    """Three-node programs over koza's set are soon all known; cache hits cost no
    evaluation budget, so only the stall stop ends this run."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (50, 2))
    problem = hg.Problem.from_data(X, X[:, 0] * X[:, 1] + X[:, 0], grammar="koza")
    cfg = make_config(problem.name, max_evaluations=2000, max_size=3, population_size=30,
                      init_max_depth=1, mutation_depth=1, stall_generations=20)
    res, events = run_with_events(cfg, problem=problem)
    assert res.stop_reason == "stall_generations"
    assert res.stats["evaluations"] < 2000
    last_new = max(e["generation"] for e in events if e["event"] == "progress"
                   and e["evaluations"] < res.stats["evaluations"]) + 1
    assert res.stats["generations"] - last_new == 20


def test_a_max_depth_below_the_initial_depth_lowers_the_initial_trees():
    res = hg.run("nguyen-1", max_depth=3, max_evaluations=600, population_size=40)
    assert max(p.depth for _, _, p in res.pareto_front) <= 3


# ---------------------------------------------------------------------- selection schemes


def _initial_best(events: list[dict]) -> float:
    return next(e["best_error"] for e in events if e["event"] == "progress")


@pytest.mark.parametrize("selection", ["nsga2", "tournament", "lexicase"])
def test_every_selection_scheme_runs_and_improves_on_the_initial_best(selection):
    res, events = run_with_events(config(seed=3, selection=selection, islands=1,
                                         population_size=60, max_evaluations=4000))
    assert res.stop_reason == "max_evaluations" and res.stats["evaluations"] == 4000
    assert res.best_error < _initial_best(events)
    assert math.isfinite(res.best_error)
    front = res.pareto_front
    assert front and front[-1][1] == res.best_error


def test_the_bandit_portfolio_runs_and_its_shares_change():
    weights: list[np.ndarray] = []
    problem = hg.get_problem(PROBLEM)
    holder: dict[str, Engine] = {}

    def on_event(event: dict) -> None:
        if event["event"] == "progress":
            weights.append(holder["e"].state.islands[0].portfolio.weights.copy())

    engine = Engine(problem, config(portfolio="bandit", islands=1, max_evaluations=3000),
                    emit=on_event)
    holder["e"] = engine
    assert engine.run() == "max_evaluations"
    assert engine.bandit is not None
    arms = engine.bandit.arms
    # copies (failed variation) and semantic children (a fixed share outside the
    # portfolio) are no arm's trials
    credit = engine.state.genealogy.credit
    assert {k: a.trials for k, a in arms.items() if a.trials} == {
        op: c.children for op, c in credit.items() if op not in ("copy", "semantic")}
    distinct = {tuple(np.round(w, 12)) for w in weights}
    assert len(distinct) > len(weights) // 2  # a new draw at (nearly) every barrier
    for w in weights:
        assert w.sum() == pytest.approx(1.0)
    first, last = np.mean(weights[:5], axis=0), np.mean(weights[-5:], axis=0)
    assert not np.allclose(first, last, atol=0.01)


# ---------------------------------------------------------------------- genealogy


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("engine") / "run"
    res = hg.run(PROBLEM, seed=5, max_evaluations=2500, out_dir=out, **BASE)
    return res, out


def test_every_recorded_child_has_recorded_parents():
    engine = Engine(hg.get_problem(PROBLEM), config(max_evaluations=2000))
    engine.run()
    g = engine.state.genealogy
    ids = set(g.ids)
    assert len(ids) == len(g.ids)  # each individual recorded once
    for i, op, p1, p2 in zip(g.ids, g.operator, g.parent1, g.parent2, strict=True):
        if op == "init":
            assert p1 == p2 == NO_PARENT
            continue
        assert p1 in ids, (i, op, p1)
        assert p2 == NO_PARENT or p2 in ids
        assert (p2 != NO_PARENT) == (op == "crossover")
    final = {int(i) for isl in engine.state.islands for i in isl.population.ids}
    assert final <= ids


def test_record_columns_keeps_the_records_record_keeps():
    from hybrid_gp.search.genealogy import Genealogy
    from hybrid_gp.search.island import _ParentIds

    pop_ids = np.array([10, 11, 12, 13])
    parent_index = np.array([[0, 2], [3, NO_PARENT], [NO_PARENT, NO_PARENT], [NO_PARENT, 1]])
    rows = np.array([0, 1, 2, 3])
    by_row, by_column = Genealogy(), Genealogy()
    parents = [tuple(int(pop_ids[j]) for j in r if j >= 0) for r in parent_index.tolist()]
    by_row.record([7, 8, 9, 6], 3, 1, ["crossover", "mutation", "immigrant", "x"], parents,
                  [0.5, np.inf, 1.0, 2.0])
    first, second = _ParentIds(pop_ids, parent_index).columns(rows)
    by_column.record_columns(np.array([7, 8, 9, 6]), 3, 1,
                             ["crossover", "mutation", "immigrant", "x"], first, second,
                             np.array([0.5, np.inf, 1.0, 2.0]))
    assert by_column == by_row
    assert by_column.parent1 == [10, 13, NO_PARENT, 11]
    assert by_column.parent2 == [12, NO_PARENT, NO_PARENT, NO_PARENT]
    with pytest.raises(ValueError, match="different lengths"):
        by_column.record_columns(np.array([1]), 0, 0, [], first[:1], second[:1], [0.0])


def test_genealogy_json_loads_and_its_edges_carry_operator_and_delta(run_dir):
    _, out = run_dir
    graph = read_genealogy(out)
    assert graph.number_of_nodes() > 0 and graph.is_directed()
    for node, data in graph.nodes(data=True):
        if data["operator"] == "init":
            assert graph.in_degree(node) == 0
        else:
            assert graph.in_degree(node) >= 1  # its parents were kept as ancestors
    for parent, child, data in graph.edges(data=True):
        assert data["operator"] == graph.nodes[child]["operator"]
        pe, ce = graph.nodes[parent]["error"], graph.nodes[child]["error"]
        if pe is not None and ce is not None:
            assert data["delta"] == pytest.approx(ce - pe)
    raw = json.loads((out / "genealogy.json").read_text())
    assert {"nodes", "edges"} <= set(raw)


def _operator_rows(out) -> list[dict]:
    with open(out / "operators.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_operators_csv_counts_every_bred_child(run_dir):
    """operators.csv counts the children each operator bred, as stats["operators"]."""
    res, out = run_dir
    rows = _operator_rows(out)
    assert [r["operator"] for r in rows] == [r["operator"] for r in res.stats["operators"]]
    for r in rows:
        assert 0 <= int(r["improved"]) <= int(r["children"])
        assert float(r["improved_share"]) == pytest.approx(
            int(r["improved"]) / int(r["children"]), abs=1e-6)


def test_operators_csv_sums_match_stats_children(run_dir):
    res, out = run_dir
    assert sum(int(r["children"]) for r in _operator_rows(out)) == res.stats["children"]


@pytest.mark.parametrize("option", [{"immigrants": 0.2}, {"restart_after": 3},
                                    {"simplify_every": 2}])
def test_search_options_run_and_keep_programs_valid(option):
    res = hg.run("keijzer-1", seed=0, population_size=40, generations=12, time_budget=1e9,
                 **option)
    assert res.stats["generations"] == 12
    for _, _, p in res.pareto_front:
        check_program(p)
    assert res.best_error < np.inf


def _restarts(out: Path) -> list[dict]:
    lines = (out / "events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "restart"]


def test_a_restart_keeps_the_front_and_is_recorded(tmp_path):
    res = hg.run("nguyen-1", seed=0, population_size=30, generations=20, time_budget=1e9,
                 target_error=0.0, restart_after=2, restart_gain=0.0, restart_keep="front",
                 out_dir=tmp_path / "r")
    restarts = _restarts(tmp_path / "r")
    assert restarts and all(e["kept"] >= 1 for e in restarts)
    assert res.best_error < np.inf


def test_a_fresh_restart_keeps_nothing_but_the_run_keeps_its_best(tmp_path):
    """restart_keep="none": the island starts again from random trees; the run's best
    error never gets worse, since the archive holds it."""
    res = hg.run("nguyen-4", seed=1, population_size=30, generations=30, time_budget=1e9,
                 target_error=0.0, restart_after=3, restart_gain=0.5, restart_keep="none",
                 out_dir=tmp_path / "r")
    restarts = _restarts(tmp_path / "r")
    assert restarts and all(e["kept"] == 0 for e in restarts)
    lines = (tmp_path / "r" / "events.jsonl").read_text().splitlines()
    best = [e["best_error"] for e in map(json.loads, lines) if e["event"] == "progress"]
    assert all(b <= a for a, b in itertools.pairwise(best))
    assert res.best_error == best[-1]


def test_progress_for_restarts_is_a_relative_drop_of_the_best_error():
    from hybrid_gp.search.island import Island, _note_progress
    from hybrid_gp.search.population import Population

    def island_at(errors: list[float], generation: int, progress: float) -> Island:
        programs = hg.random_programs("koza", len(errors), 1, seed=0)
        pop = Population(programs, np.array(errors), np.ones(len(errors)),
                         list(range(len(errors))), np.arange(len(errors)))
        return Island(index=0, n_islands=1, population=pop, rng=np.random.default_rng(0),
                      scorer=None, portfolio=None, generation=generation,
                      progress_error=progress)

    small = island_at([0.995, 2.0], 7, 1.0)  # a 0.5 % drop
    _note_progress(small, 0.01)
    assert (small.improved_at, small.progress_error) == (0, 1.0)
    big = island_at([0.98, 2.0], 7, 1.0)  # a 2 % drop
    _note_progress(big, 0.01)
    assert (big.improved_at, big.progress_error) == (7, 0.98)
    any_drop = island_at([0.995], 4, 1.0)
    _note_progress(any_drop, 0.0)
    assert any_drop.improved_at == 4
    first = island_at([5.0], 2, np.inf)  # the first finite best is progress
    _note_progress(first, 0.5)
    assert first.progress_error == 5.0


def test_restart_settings_default_to_the_problem_and_are_checked():
    from hybrid_gp.config import RunConfig
    from hybrid_gp.errors import ConfigError
    from hybrid_gp.problem import get_problem
    from hybrid_gp.search.engine import Settings

    nguyen = Settings.resolve(RunConfig(problem="nguyen-1"), get_problem("nguyen-1"))
    assert (nguyen.restart_after, nguyen.restart_gain, nguyen.restart_keep) == (30, 0.01, "none")
    keijzer = Settings.resolve(RunConfig(problem="keijzer-1"), get_problem("keijzer-1"))
    assert keijzer.restart_after == 0
    mine = RunConfig(problem="nguyen-1").rebind({"search.restart_after": 0}, skip_notification=True)
    assert Settings.resolve(mine, get_problem("nguyen-1")).restart_after == 0
    bad = get_problem("nguyen-1").with_budget(restart_keep="half")
    with pytest.raises(ConfigError, match="restart_keep"):
        Settings.resolve(RunConfig(problem="nguyen-1"), bad)


# ---------------------------------------------------------------------- retry unchanged


def test_a_child_computing_its_parents_function_is_bred_again():
    from hybrid_gp.search.island import _retry_unchanged

    engine = Engine(hg.get_problem(PROBLEM), config(islands=1, retry_unchanged=8))
    engine.initialise()
    island = engine.state.islands[0]
    pop, s = island.population, engine.settings.island
    first = np.arange(6, dtype=np.int64)
    second = first[::-1].copy()
    brood = island.portfolio.breed(pop.programs, first, second, island.rng, engine.context)
    # Children 0 and 1 compute their parent's function (a failed variation's copy, a
    # point mutation that changed nothing); child 2 is a copy too, but not a classic
    # child (an immigrant), so it stays.
    brood.replace([0, 1, 2], [pop.programs[0], pop.programs[1], pop.programs[2]],
                  ["copy", "point", "immigrant"], [(0,), (1,), ()])
    _retry_unchanged(island, s, engine.context, brood, first, second)
    keys = island.scorer.cache.keys_of(brood.children)
    for i in (0, 1):
        assert keys[i] not in {pop.keys[p] for p in brood.parents[i]}
        assert brood.parents[i][0] == first[i]  # bred again from the same parents
    assert brood.children[2] == pop.programs[2] and brood.operators[2] == "immigrant"
    assert island.counters.retried >= 2


def test_runs_with_retries_are_repeatable_and_count_them():
    a = run_config(config(retry_unchanged=3))
    b = run_config(config(retry_unchanged=3))
    assert a.stats["retried"] > 0
    assert str(a.best) == str(b.best) and a.stats["evaluations"] == b.stats["evaluations"]
    assert a.stats["retried"] == b.stats["retried"]
    assert run_config(config()).stats["retried"] == 0


def test_retries_need_the_cache():
    cfg = config(retry_unchanged=2).clone(override={"cache.enabled": False})
    from hybrid_gp.errors import ConfigError

    with pytest.raises(ConfigError, match="retry_unchanged compares functional keys"):
        run_config(cfg)
