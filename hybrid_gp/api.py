"""`hg.run`: one seeded run of a problem, optionally writing a run directory.

The CLI and the estimator are thin faces over `run_config` and `resume`.
"""

from __future__ import annotations

import difflib
import math
import numbers
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .config import RunConfig, SearchConfig, coerce_object, from_json, to_json
from .errors import ConfigError, RunInterrupted, UserError
from .problem import Problem, get_problem
from .program import Program
from .runlog import (
    BEST,
    CONFIG,
    RunLog,
    finished,
    load_checkpoint,
    save_checkpoint,
    truncate_events,
    write_genealogy,
)
from .search.engine import CACHE_CLOCK, CACHE_SESSION, Engine, Settings


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
    check_budget("max_evaluations", max_evaluations, numbers.Integral)
    check_budget("time_budget", time_budget, numbers.Real)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    check_search_names(search)
    defaults = SearchConfig()
    search = {k: coerce_object(defaults, k, v) for k, v in search.items()}
    try:
        return RunConfig(problem=problem, seed=int(seed), n_jobs=n_jobs, search=SearchConfig(
            max_evaluations=None if max_evaluations is None else int(max_evaluations),
            time_budget=None if time_budget is None else float(time_budget), **search))
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(str(exc).splitlines()[0]) from None


def search_settings() -> list[str]:
    """The names SearchConfig accepts (hg.run's keyword arguments beyond its own)."""
    return [str(k) for k in SearchConfig.__schema__.fields]


def check_search_names(search: dict[str, Any]) -> None:
    """Refuse an unknown search setting, naming the nearest valid one (a misspelling
    would otherwise surface as pyglove's message about SearchConfig.__init__)."""
    valid = search_settings()
    for name in search:
        if name not in valid:
            near = difflib.get_close_matches(name, valid, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ConfigError(f"unknown search setting {name!r}; {hint}valid settings: "
                              f"{', '.join(valid)}")


def check_budget(name: str, value: Any, types: Any) -> None:
    """Refuse a budget that is not a positive number of `types` (None means unset; a
    bool is not a number here, though Python counts it as an int)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, types) or not value > 0:
        what = "integer" if types is numbers.Integral else "number"
        raise ConfigError(f"{name} must be a positive {what}, got {value!r}")


def run(problem: str | Problem, seed: int = 0, max_evaluations: int | None = None,
        time_budget: float | None = None, llm: Any = None, out_dir: str | Path | None = None,
        n_jobs: int = 1, **search: Any) -> RunResult:
    """Evolve programs for a problem (a name from `hg.list_problems()` or a Problem).

    max_evaluations counts real evaluations (cache hits are free); time_budget is in
    wall seconds; either, or the problem's target error, stops the run. Other keyword
    arguments set SearchConfig fields (population_size=..., islands=...). With
    `out_dir` the run writes config.json, events.jsonl, best.txt, pareto.csv,
    genealogy.json and checkpoints there, and can be resumed with `hg.resume`.
    """
    prob = problem if isinstance(problem, Problem) else get_problem(problem)
    config = make_config(prob.name, seed, max_evaluations, time_budget, n_jobs, **search)
    if llm is not None:
        config = config.clone(override={"llm": llm})
    return run_config(config, problem=prob, out_dir=out_dir)


def problem_for(config: RunConfig) -> Problem:
    """The problem a config names: a shipped one, or the user's CSV file."""
    data = getattr(config, "data", None)
    if data is not None:
        from .data import file_digest, problem_from_csv

        if data.sha256 is not None and file_digest(data.path) != data.sha256:
            raise UserError(f"{data.path} has changed since this run started (its sha256 "
                            f"differs from the one in {CONFIG}); going on would mix two "
                            f"datasets: restore the file, or start a new run on it")
        return problem_from_csv(data.path, data.target, drop_nan=data.drop_nan,
                                grammar=data.grammar)
    return get_problem(config.problem)


def run_config(config: RunConfig, problem: Problem | None = None,
               out_dir: str | Path | None = None,
               on_event: Callable[[dict[str, Any]], None] | None = None,
               resume: bool = False) -> RunResult:
    """Run exactly what `config` says (what `hybrid-gp run` and `resume` call)."""
    prob = problem or problem_for(config)
    if out_dir is not None and not resume and (Path(out_dir) / CONFIG).exists():
        what = ("a finished run;" if finished(out_dir) else
                "a run; resume it (hg.resume / hybrid-gp resume) or")
        raise UserError(f"{out_dir} already holds {what} choose another directory")
    Settings.resolve(config, prob)  # a bad setting fails before the run directory exists
    if config.llm is not None and not resume:
        from .llm.broker import preflight

        preflight(config.llm)  # likewise a missing API key or transcript
    log = RunLog(out_dir) if out_dir is not None else None

    def emit(event: dict[str, Any]) -> None:
        if log is not None:
            log.event(event)
        if on_event is not None:
            on_event(event)

    checkpoint = (lambda eng: _checkpoint(eng, log)) if log is not None else None
    state = None
    if resume and log is not None:
        log.close()
        state = load_checkpoint(log.dir)
        truncate_events(log.dir, state.events_written if state is not None else 0)
        log = RunLog(log.dir)
    engine = Engine(prob, config, emit=emit, checkpoint=checkpoint, resuming=resume)
    if state is not None:
        engine.attach(state)
    try:
        if log is not None and not resume:
            log.write_config(to_json(config))
        with _stop_on_signals(engine, enabled=log is not None):
            reason = engine.run()
        if reason == "interrupted":
            assert log is not None
            _checkpoint(engine, log)
            raise RunInterrupted(f"stopped at generation {engine.state.generation}; the "
                                 f"checkpoint is saved: `hybrid-gp resume {log.dir}` goes on")
        result = _result(engine, reason, log)
        clock = {"wall_seconds": result.stats["wall_seconds"]}
        cache = result.stats.get("cache") or {}
        if cache:
            clock["cache"] = {k: cache[k] for k in CACHE_CLOCK + CACHE_SESSION}
        emit({"event": "end", "stop_reason": reason, **_stable_stats(result.stats),
              "clock": clock})
        if log is not None:
            _write_outputs(engine, result, log)
        return result
    finally:
        if log is not None:
            log.close()


def resume(run_dir: str | Path,
           on_event: Callable[[dict[str, Any]], None] | None = None) -> RunResult:
    """Continue a run from its directory's last checkpoint (or from the start if it
    never wrote one). The run ends exactly as an uninterrupted run would."""
    path = Path(run_dir)
    config_path = path / CONFIG
    if not config_path.exists():
        raise UserError(f"{path} holds no run: {CONFIG} is missing")
    end = finished(path)
    if end is not None:
        raise UserError(f"{path} holds a finished run (stopped by {end.get('stop_reason')} "
                        f"after {end.get('generations')} generations): nothing to resume; "
                        f"its best program is in {path / BEST}")
    config = from_json(config_path.read_text(encoding="utf-8"))
    return run_config(config, out_dir=path, on_event=on_event, resume=True)


def _checkpoint(engine: Engine, log: RunLog) -> None:
    """Save the state with the wall time spent so far (the live state keeps counting
    from its own session start, so nothing is counted twice)."""
    base = engine.state.elapsed
    engine.state.elapsed = engine.elapsed
    try:
        save_checkpoint(log.dir, engine.state)
    finally:
        engine.state.elapsed = base


@contextmanager
def _stop_on_signals(engine: Engine, enabled: bool) -> Iterator[None]:
    """SIGINT/SIGTERM ask the engine to stop at the next barrier (then it checkpoints);
    a second SIGINT stops at once."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, frame: Any) -> None:
        if engine.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        engine.stop_requested = True

    old = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


_SESSION_STATS = ("wall_seconds", "evaluations_per_second", "llm_resent")


def _stable_stats(stats: dict[str, Any]) -> dict[str, Any]:
    """The stats that depend on neither the wall clock nor how often the run was
    interrupted (requests sent again after a resume, the subtree store's work)."""
    stable = {k: v for k, v in stats.items() if k not in _SESSION_STATS}
    if stable.get("cache"):
        stable["cache"] = {k: v for k, v in stable["cache"].items()
                           if k not in CACHE_CLOCK + CACHE_SESSION}
    return stable


def _write_outputs(engine: Engine, result: RunResult, log: RunLog) -> None:
    prob = result.problem
    log.write_results(result.best, result.best_error, result.pareto_front,
                      {"problem": prob.name, "seed": result.config.seed,
                       "stop_reason": result.stop_reason, "test_error": result.test_error})
    roots = [int(i) for island in engine.state.islands for i in island.population.ids]
    graph = engine.state.genealogy.to_networkx(roots)
    write_genealogy(log.dir, graph, engine.state.genealogy.credit_table())


def _result(engine: Engine, reason: str, log: RunLog | None) -> RunResult:
    archive = engine.state.archive
    prob = engine.problem
    test_error = None
    if archive.best is not None and prob.test is not None:
        from .compiler import compile_batch

        test_error = float(prob.error(compile_batch([archive.best]), data=prob.test)[0])
        test_error = test_error if math.isfinite(test_error) else math.inf
    best, front = archive.best, archive.pareto_front()
    if prob.kind == "regression":  # plain readings without log(-u) (values unchanged)
        from .simplify import orient_guards

        X = prob.train.X
        best = orient_guards(best, X) if best is not None else None
        front = [(c, e, orient_guards(p, X)) for c, e, p in front]
    return RunResult(
        best=best, best_error=archive.best_error, pareto_front=front,
        stats=engine.stats(), out_dir=log.dir if log else None, problem=prob,
        config=engine.config, stop_reason=reason, test_error=test_error)
