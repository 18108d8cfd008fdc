"""hg.run: reproducible from its seed, honest about what it spent."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.errors import ConfigError

BUDGET = 2000


def _events(out_dir) -> list[dict]:
    lines = (out_dir / "events.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "clock"} for line in lines]


@pytest.fixture(scope="module")
def twin_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return [hg.run("nguyen-1", seed=4, max_evaluations=BUDGET, out_dir=root / name)
            for name in ("a", "b")]


def test_the_same_seed_gives_the_same_best_formula_and_events(twin_runs):
    a, b = twin_runs
    assert str(a.best) == str(b.best) and a.best == b.best
    assert a.best_error == b.best_error
    assert [(c, e, str(p)) for c, e, p in a.pareto_front] == [
        (c, e, str(p)) for c, e, p in b.pareto_front]
    events_a, events_b = _events(a.out_dir), _events(b.out_dir)
    assert len(events_a) >= 2
    assert events_a == events_b


def test_wall_clock_values_sit_only_under_clock(twin_runs):
    a, _ = twin_runs
    kinds_with_clock = set()
    for line in (a.out_dir / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        assert "wall_seconds" not in event and "elapsed" not in event
        assert "evaluations_per_second" not in event
        if "clock" in event:
            kinds_with_clock.add(event["event"])
    assert {"progress", "end"} <= kinds_with_clock


def test_stats_report_what_the_run_spent(twin_runs):
    a, _ = twin_runs
    stats = a.stats
    for key in ("evaluations", "cache_hits", "llm_calls", "llm_tokens", "llm_failures",
                "wall_seconds"):
        assert key in stats, key
    assert 0 < stats["evaluations"] <= BUDGET
    assert stats["llm_calls"] == stats["llm_tokens"] == stats["llm_failures"] == 0
    assert stats["wall_seconds"] > 0
    assert a.stop_reason in {"max_evaluations", "target_error"}
    end = json.loads((a.out_dir / "events.jsonl").read_text().splitlines()[-1])
    assert end["event"] == "end" and end["evaluations"] == stats["evaluations"]


def test_the_cache_reports_the_time_it_saved_and_cost(twin_runs):
    a, _ = twin_runs
    cache = a.stats["cache"]
    assert cache["hits"] > 0 and cache["evaluation_seconds"] > 0 and cache["hash_seconds"] > 0
    per_evaluation = cache["evaluation_seconds"] / a.stats["evaluations"]  # one island
    # both numbers are rounded to 1e-6 s
    assert cache["seconds_saved"] == pytest.approx(cache["hits"] * per_evaluation, rel=1e-3,
                                                   abs=1e-5)
    end = json.loads((a.out_dir / "events.jsonl").read_text().splitlines()[-1])
    session = ("evaluation_seconds", "seconds_saved", "hash_seconds", "subtree_stores",
               "subtree_loads", "subtree_nodes_loaded", "subtree_nodes_planned")
    assert end["clock"]["cache"] == {k: cache[k] for k in session}
    assert not set(session) & set(end["cache"])
    assert end["cache"] == {k: v for k, v in cache.items() if k not in end["clock"]["cache"]}


def test_the_run_result_matches_its_files(twin_runs):
    a, _ = twin_runs
    assert (a.out_dir / "best.txt").read_text().splitlines()[0] == str(a.best)
    error = hg.fitness([a.best], a.problem.train.X, a.problem.train.y)[0]
    assert a.best_error == pytest.approx(error, rel=1e-9)


def test_a_run_without_out_dir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = hg.run("nguyen-1", seed=4, max_evaluations=600)
    assert res.out_dir is None
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"max_evaluations": -5}, ConfigError, "max_evaluations must be a positive integer"),
        ({"max_evaluations": 2.5}, ConfigError, "max_evaluations must be a positive integer"),
        ({"time_budget": 0}, ConfigError, "time_budget must be a positive number"),
        ({"seed": -1}, ConfigError, "seed must be an integer >= 0"),
        ({"populaton_size": 30}, ConfigError,
         "unknown search setting 'populaton_size'; did you mean 'population_size'"),
        ({"zzz": 1}, ConfigError, "unknown search setting 'zzz'; valid settings: "
                                  "population_size, max_evaluations"),
    ],
)
def test_bad_run_arguments_are_refused(kwargs, error, message):
    with pytest.raises(error, match=message):
        hg.run("nguyen-1", **kwargs)


def test_numpy_numbers_are_budgets_too():
    res = hg.run("nguyen-1", max_evaluations=np.int64(200), time_budget=np.float32(60),
                 population_size=30)
    assert res.config.search.max_evaluations == 200 and res.config.search.time_budget == 60.0


def test_an_unknown_problem_suggests_a_close_name():
    with pytest.raises(KeyError, match="did you mean nguyen-1"):
        hg.run("nguyen1", max_evaluations=10)
