"""The generational engine: breed a whole generation, score it in one batch, replace.

One generation:
  rank (error, then complexity) -> tournaments pick parents (vectorised) -> each child
  is made by an operator drawn from the portfolio -> the batch of children is scored
  (cache first, then one kernel call) -> elites + children form the next generation
  -> the archive and counters are updated and one event is emitted.

All randomness comes from named streams of the run's root seed; the engine knows
operators only through the portfolio and the problem only through the Scorer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import RunConfig
from ..errors import ConfigError
from ..compiler import compile_batch
from ..evaluation import evaluate_features, resolve_jobs
from ..generate import ramped_half_and_half
from ..hashing import EquivalenceCache, make_probe
from ..operators.portfolio import Portfolio, VariationContext, classic_portfolio
from ..problem import Problem
from ..program import Program
from ..rng import stream
from .archive import Archive
from .scoring import Scorer
from .selection import lexicase, nsga2_ranks, nsga2_survivors, rank, tournament


@dataclass(frozen=True)
class Settings:
    """The config resolved against the problem's defaults: plain values for the loop."""

    population_size: int
    max_evaluations: int | None
    generations: int | None
    time_budget: float | None
    target_error: float
    max_depth: int
    max_size: int
    selection: str
    tournament_size: int
    lexicase_rows: int
    elitism: int
    init_min_depth: int
    init_max_depth: int
    mutation_depth: int
    operator_rates: dict[str, float]

    @classmethod
    def resolve(cls, config: RunConfig, problem: Problem) -> Settings:
        s, b = config.search, problem.budget

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        settings = cls(
            population_size=pick(s.population_size, b.population_size),
            max_evaluations=pick(s.max_evaluations, b.max_evaluations),
            generations=pick(s.generations, b.generations),
            time_budget=pick(s.time_budget, b.time_budget),
            target_error=pick(s.target_error, b.target_error),
            max_depth=pick(s.max_depth, b.max_depth),
            max_size=pick(s.max_size, b.max_size),
            selection=s.selection,
            tournament_size=s.tournament_size,
            lexicase_rows=s.lexicase_rows,
            elitism=s.elitism,
            init_min_depth=s.init_min_depth,
            init_max_depth=s.init_max_depth,
            mutation_depth=s.mutation_depth,
            operator_rates=s.operators.as_dict(),
        )
        settings.check()
        return settings

    def check(self) -> None:
        if self.population_size < 2:
            raise ConfigError(f"search.population_size must be >= 2, got "
                              f"{self.population_size}")
        if self.elitism >= self.population_size:
            raise ConfigError(f"search.elitism ({self.elitism}) must be smaller than "
                              f"search.population_size ({self.population_size})")
        if self.init_max_depth < self.init_min_depth:
            raise ConfigError("search.init_max_depth must be >= search.init_min_depth")
        if self.init_max_depth > self.max_depth:
            raise ConfigError(f"search.init_max_depth ({self.init_max_depth}) must be <= "
                              f"search.max_depth ({self.max_depth})")
        if not any(v > 0 for v in self.operator_rates.values()):
            raise ConfigError("search.operators: at least one rate must be > 0")


@dataclass
class Counters:
    """What the run has spent; reported in res.stats and every event."""

    generations: int = 0
    evaluations: int = 0  # real evaluations; cache hits are not counted
    cache_hits: int = 0
    children: int = 0
    variation_fallbacks: int = 0  # an operator did not apply; another made the child


@dataclass
class Population:
    programs: list[Program]
    errors: np.ndarray
    complexity: np.ndarray
    keys: list[int]  # functional keys: equal keys, equal functions

    @classmethod
    def of(cls, programs: list[Program], errors: np.ndarray, keys: list[int]) -> Population:
        return cls(programs, np.asarray(errors, dtype=np.float64),
                   np.array([p.size for p in programs], dtype=np.float64), list(keys))

    def take(self, idx: np.ndarray | list[int]) -> Population:
        idx = list(np.asarray(idx, dtype=np.int64))
        return Population([self.programs[i] for i in idx], self.errors[idx],
                          self.complexity[idx], [self.keys[i] for i in idx])

    def __add__(self, other: Population) -> Population:
        return Population(self.programs + other.programs,
                          np.concatenate([self.errors, other.errors]),
                          np.concatenate([self.complexity, other.complexity]),
                          self.keys + other.keys)

    def __len__(self) -> int:
        return len(self.programs)


@dataclass
class EngineState:
    """Everything a checkpoint must hold to resume exactly."""

    population: Population | None = None
    archive: Archive = field(default_factory=Archive)
    counters: Counters = field(default_factory=Counters)
    rng_state: dict[str, Any] | None = None
    elapsed: float = 0.0  # wall seconds spent before the current session


class Engine:
    """Generational GP over one problem with one config."""

    def __init__(self, problem: Problem, config: RunConfig,
                 emit: Callable[[dict[str, Any]], None] | None = None):
        self.problem = problem
        self.config = config
        self.settings = Settings.resolve(config, problem)
        self.n_jobs = resolve_jobs(config.n_jobs)
        self.cache = build_cache(config, problem)
        self.scorer = Scorer(problem, self.n_jobs, self.cache)
        self.portfolio: Portfolio = classic_portfolio(self.settings.operator_rates,
                                                      problem.grammar)
        self.context = VariationContext(
            grammar=problem.grammar, n_features=problem.n_features,
            max_depth=self.settings.max_depth, max_size=self.settings.max_size,
            mutation_depth=self.settings.mutation_depth)
        self.rng = stream(config.seed, "search")
        self.state = EngineState()
        self.emit = emit or (lambda event: None)
        self._session_start = time.perf_counter()

    # ------------------------------------------------------------------ clock
    @property
    def elapsed(self) -> float:
        return self.state.elapsed + time.perf_counter() - self._session_start

    # ------------------------------------------------------------------ phases
    def initialise(self) -> None:
        s = self.settings
        programs = ramped_half_and_half(
            self.problem.grammar, stream(self.config.seed, "init"), s.population_size,
            self.problem.n_features, s.init_min_depth, s.init_max_depth)
        pop = self._score(programs)
        if s.selection == "nsga2":
            pop = _unique(pop)
        self.state.population = pop
        self.state.archive.update(pop.programs, pop.errors, pop.complexity)
        self._emit_generation()

    def step(self) -> None:
        """One generation."""
        pop = self.state.population
        assert pop is not None, "initialise() first"
        s = self.settings
        elites = 0 if s.selection == "nsga2" else min(s.elitism, len(pop))
        n_children = s.population_size - elites
        first, second = self._parents(pop, n_children)
        brood = self.portfolio.breed(pop.programs, first, second, self.rng, self.context)
        self.state.counters.variation_fallbacks += brood.fallbacks
        children = self._score(brood.children)
        if s.selection == "nsga2":
            pool = _unique(pop + children)
            survivors = nsga2_survivors(pool.errors, pool.complexity, s.population_size)
            self.state.population = pool.take(survivors)
        else:
            best_first = np.argsort(rank(pop.errors, pop.complexity))
            nxt = pop.take(best_first[:elites]) + children
            if len(nxt) < s.population_size:  # the budget cut the batch short
                nxt = nxt + pop.take(best_first[elites:elites + s.population_size - len(nxt)])
            self.state.population = nxt
        self.state.archive.update(children.programs, children.errors, children.complexity)
        self.state.counters.generations += 1
        self._emit_generation()

    def _score(self, programs: list[Program]) -> Population:
        """Score a batch (cache first); drop what the evaluation budget could not pay for."""
        result = self.scorer.score(programs, self._evaluations_left())
        keep = np.flatnonzero(~np.isnan(result.errors))
        c = self.state.counters
        c.evaluations += result.evaluated
        c.cache_hits += result.cache_hits
        c.children += len(keep)
        return Population.of([programs[i] for i in keep], result.errors[keep],
                             [result.keys[i] for i in keep])

    def _parents(self, pop: Population, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the first and second parent of each of n children."""
        s = self.settings
        if s.selection == "lexicase":
            cases = self._case_errors(pop)
            return lexicase(cases, n, self.rng), lexicase(cases, n, self.rng)
        ranks = (nsga2_ranks(pop.errors, pop.complexity) if s.selection == "nsga2"
                 else rank(pop.errors, pop.complexity))
        return (tournament(ranks, n, s.tournament_size, self.rng),
                tournament(ranks, n, s.tournament_size, self.rng))

    def _case_errors(self, pop: Population) -> np.ndarray:
        """|output - y| of every program on a random subset of training rows."""
        train = self.problem.train
        n_rows = train.n_rows
        rows = (np.arange(n_rows) if n_rows <= self.settings.lexicase_rows else
                np.sort(self.rng.choice(n_rows, self.settings.lexicase_rows, replace=False)))
        XT = np.ascontiguousarray(train.XT[:, rows])
        out = evaluate_features(compile_batch(pop.programs), XT, self.n_jobs)
        with np.errstate(all="ignore"):
            return np.abs(out - train.y[rows])

    def stop_reason(self) -> str | None:
        """Why the run should stop now, or None to go on."""
        s, c = self.settings, self.state.counters
        if self.state.archive.best_error <= s.target_error:
            return "target_error"
        if s.max_evaluations is not None and c.evaluations >= s.max_evaluations:
            return "max_evaluations"
        if s.generations is not None and c.generations >= s.generations:
            return "generations"
        if s.time_budget is not None and self.elapsed >= s.time_budget:
            return "time_budget"
        return None

    def run(self) -> str:
        """Initialise if needed, then step until a budget or the target stops the run."""
        if self.state.population is None:
            self.initialise()
        while (reason := self.stop_reason()) is None:
            self.step()
        return reason

    # ------------------------------------------------------------------ helpers
    def _evaluations_left(self) -> int | None:
        if self.settings.max_evaluations is None:
            return None
        return max(0, self.settings.max_evaluations - self.state.counters.evaluations)

    def _emit_generation(self) -> None:
        pop = self.state.population
        assert pop is not None
        a, c = self.state.archive, self.state.counters
        finite = pop.errors[np.isfinite(pop.errors)]
        t = self.elapsed
        self.emit({
            "event": "generation",
            "generation": c.generations,
            "evaluations": c.evaluations,
            "cache_hits": c.cache_hits,
            "cache_hit_rate": (round(self.cache.stats.hit_rate, 6) if self.cache is not None
                               else None),
            "best_error": _num(a.best_error),
            "best_complexity": _num(a.best_complexity),
            "best": str(a.best) if a.best is not None else None,
            "median_error": _num(float(np.median(finite))) if len(finite) else None,
            "mean_size": float(np.mean(pop.complexity)),
            "clock": {"elapsed": round(t, 4),
                      "evaluations_per_second": round(c.evaluations / t, 1) if t > 0 else None},
        })

    def stats(self) -> dict[str, Any]:
        c = self.state.counters
        t = self.elapsed
        cache = self.cache.stats.as_dict() if self.cache is not None else {}
        return {
            "cache": cache,
            "evaluations": c.evaluations,
            "cache_hits": c.cache_hits,
            "generations": c.generations,
            "children": c.children,
            "variation_fallbacks": c.variation_fallbacks,
            "llm_calls": 0,
            "llm_tokens": 0,
            "llm_failures": 0,
            "best_error": _num(self.state.archive.best_error),
            "wall_seconds": t,
            "evaluations_per_second": c.evaluations / t if t > 0 else math.nan,
        }


def _unique(pop: Population) -> Population:
    """The population without repeated functions (first occurrence kept)."""
    seen: set[int] = set()
    keep = []
    for i, k in enumerate(pop.keys):
        if k not in seen:
            seen.add(k)
            keep.append(i)
    return pop if len(keep) == len(pop) else pop.take(keep)


def build_cache(config: RunConfig, problem: Problem) -> EquivalenceCache | None:
    """The run's equivalence cache, or None when the config turns it off."""
    c = config.cache
    if not c.enabled:
        return None
    probe = make_probe(problem, c.probe_size, config.seed)
    return EquivalenceCache(
        probe_XT=np.ascontiguousarray(probe.T), mode=c.mode, mantissa_bits=c.mantissa_bits,
        capacity=c.capacity, audit_rate=c.audit_rate, audit_tolerance=c.audit_tolerance,
        forget_p=c.forget_p, average_k=c.average_k, rng=stream(config.seed, "cache"))


def _num(x: float) -> float | None:
    """JSON-safe number: None for inf/NaN."""
    return float(x) if math.isfinite(x) else None
