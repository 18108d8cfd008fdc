"""`hg.run`: one seeded run of a problem, optionally writing a run directory.

The CLI and the estimator are thin faces over `run_config`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import RunConfig, SearchConfig, to_json
from .errors import ConfigError
from .problem import Problem, get_problem
from .program import Program
from .runlog import RunLog
from .search.engine import Engine


@dataclass
class RunResult:
    """What a run found and what it spent."""

    best: Program | None
    best_error: float
    pareto_front: list[tuple[float, float, Program]]
    stats: dict[str, Any]
    out_dir: Path | None
    problem: Problem
    config: RunConfig
    stop_reason: str
    test_error: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"RunResult(best={str(self.best)!r}, error={self.best_error:.4g}, "
                f"evaluations={self.stats.get('evaluations')}, stop={self.stop_reason!r})")


def make_config(problem: str, seed: int = 0, max_evaluations: int | None = None,
                time_budget: float | None = None, n_jobs: int = 1,
                **search: Any) -> RunConfig:
    """A RunConfig from the common keyword arguments (others go to SearchConfig)."""
    _check_budget("max_evaluations", max_evaluations, int)
    _check_budget("time_budget", time_budget, (int, float))
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    try:
        return RunConfig(problem=problem, seed=int(seed), n_jobs=n_jobs, search=SearchConfig(
            max_evaluations=max_evaluations,
            time_budget=None if time_budget is None else float(time_budget), **search))
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None


def _check_budget(name: str, value: Any, types: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, types) or not value > 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


def run(problem: str | Problem, seed: int = 0, max_evaluations: int | None = None,
        time_budget: float | None = None, llm: Any = None, out_dir: str | Path | None = None,
        n_jobs: int = 1, **search: Any) -> RunResult:
    """Evolve programs for a problem (a name from `hg.list_problems()` or a Problem).

    max_evaluations counts real evaluations (cache hits are free); time_budget is in
    wall seconds; either, or the problem's target error, stops the run. With `out_dir`
    the run writes config.json, events.jsonl, best.txt and pareto.csv there.
    """
    if llm is not None:
        raise ConfigError("llm operators are not available in this build yet")
    prob = problem if isinstance(problem, Problem) else get_problem(problem)
    config = make_config(prob.name, seed, max_evaluations, time_budget, n_jobs, **search)
    return run_config(config, problem=prob, out_dir=out_dir)


def run_config(config: RunConfig, problem: Problem | None = None,
               out_dir: str | Path | None = None,
               on_event: Callable[[dict[str, Any]], None] | None = None) -> RunResult:
    """Run exactly what `config` says (what `hybrid-gp run` and `resume` call)."""
    prob = problem or get_problem(config.problem)
    log = RunLog(out_dir) if out_dir is not None else None

    def emit(event: dict[str, Any]) -> None:
        if log is not None:
            log.event(event)
        if on_event is not None:
            on_event(event)

    engine = Engine(prob, config, emit=emit)
    try:
        if log is not None:
            log.write_config(to_json(config))
        reason = engine.run()
        result = _result(engine, reason, log)
        emit({"event": "end", "stop_reason": reason, **_stable_stats(result.stats),
              "clock": {"wall_seconds": result.stats["wall_seconds"]}})
        if log is not None:
            log.write_results(result.best, result.best_error, result.pareto_front,
                              {"problem": prob.name, "seed": config.seed,
                               "stop_reason": reason, "test_error": result.test_error})
        return result
    finally:
        if log is not None:
            log.close()


def _stable_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """The stats that do not depend on the wall clock."""
    return {k: v for k, v in stats.items() if k not in ("wall_seconds", "evaluations_per_second")}


def _result(engine: Engine, reason: str, log: RunLog | None) -> RunResult:
    archive = engine.state.archive
    prob = engine.problem
    test_error = None
    if archive.best is not None and prob.test is not None:
        from .compiler import compile_batch

        test_error = float(prob.error(compile_batch([archive.best]), data=prob.test)[0])
        test_error = test_error if math.isfinite(test_error) else math.inf
    return RunResult(
        best=archive.best, best_error=archive.best_error, pareto_front=archive.pareto_front(),
        stats=engine.stats(), out_dir=log.dir if log else None, problem=prob,
        config=engine.config, stop_reason=reason, test_error=test_error)
