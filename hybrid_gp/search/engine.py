"""The engine: islands evolving in epochs, with barriers in between.

One epoch: every island runs `migration_interval` generations on its own (in parallel
through an Executor when n_jobs > 1; a single island runs one generation per epoch).
At each barrier, in island order: archives merge, migrants move along the ring,
LLM replies join, events are written, budgets are checked and, every so often, a
checkpoint is saved. Everything an island does depends only on its own state, so the
same seed gives the same run for any n_jobs, and a run resumed from a checkpoint ends
exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..config import RunConfig
from ..errors import ConfigError
from ..evaluation import resolve_jobs
from ..generate import ramped_half_and_half
from ..hashing import EquivalenceCache, make_probe
from ..kernels.warmup import ensure_compiled
from ..operators.bandit import Bandit
from ..operators.portfolio import VariationContext, classic_portfolio
from ..problem import Problem
from ..program import Program
from ..rng import stream
from ..subtrees import SubtreeStore
from .archive import Archive
from .genealogy import Genealogy
from .heap import lighter_collection
from .island import (
    EpochPlan,
    Island,
    IslandSettings,
    evolve_epoch,
    generation_event,
    score_programs,
)
from .llm_bridge import LLMBook, LLMBridge
from .scoring import Scorer
from .selection import nsga2_survivors


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
    immigrants: float
    init_min_depth: int
    init_max_depth: int
    mutation_depth: int
    operator_rates: dict[str, float]
    restart_after: int
    restart_gain: float
    restart_keep: str
    semantic_share: float
    semantic_library: int
    retry_unchanged: int
    simplify_every: int
    fit_share: float
    fit_scaling: bool
    fit_iterations: int
    fit_rows: int
    portfolio: str
    islands: int
    migration_interval: int
    migration_size: int
    checkpoint_every: int
    checkpoint_seconds: float
    stall_generations: int

    @classmethod
    def resolve(cls, config: RunConfig, problem: Problem) -> Settings:
        s, b = config.search, problem.budget

        def pick(value: Any, default: Any) -> Any:
            return default if value is None else value

        max_depth = pick(s.max_depth, b.max_depth)
        settings = cls(
            population_size=pick(s.population_size, b.population_size),
            max_evaluations=pick(s.max_evaluations, b.max_evaluations),
            generations=pick(s.generations, b.generations),
            time_budget=pick(s.time_budget, b.time_budget),
            target_error=pick(s.target_error, b.target_error),
            max_depth=max_depth,
            max_size=pick(s.max_size, b.max_size),
            selection=s.selection,
            tournament_size=s.tournament_size,
            lexicase_rows=s.lexicase_rows,
            elitism=s.elitism,
            immigrants=s.immigrants,
            # The initial trees are 5 deep by default: a smaller max_depth lowers them
            # too, rather than failing over init_max_depth, a setting often left alone.
            init_min_depth=min(s.init_min_depth, max_depth),
            init_max_depth=min(s.init_max_depth, max_depth),
            mutation_depth=s.mutation_depth,
            operator_rates=s.operators.as_dict(),
            restart_after=pick(s.restart_after, b.restart_after),
            restart_gain=pick(s.restart_gain, b.restart_gain),
            restart_keep=pick(s.restart_keep, b.restart_keep),
            semantic_share=(pick(s.semantic_share, b.semantic_share)
                            if problem.kind == "regression" else 0.0),
            semantic_library=s.semantic_library,
            retry_unchanged=s.retry_unchanged,
            simplify_every=s.simplify_every,
            fit_share=(pick(s.fit_share, 0.3 if problem.grammar.constants.enabled
                            and problem.squared_error_based else 0.0)
                       if problem.kind == "regression" else 0.0),
            fit_scaling=s.fit_scaling,
            fit_iterations=s.fit_iterations,
            fit_rows=s.fit_rows,
            portfolio=s.portfolio,
            islands=s.islands,
            migration_interval=s.migration_interval if s.islands > 1 else 1,
            migration_size=s.migration_size,
            checkpoint_every=s.checkpoint_every,
            checkpoint_seconds=s.checkpoint_seconds,
            stall_generations=s.stall_generations,
        )
        settings.check()
        settings.check_fitting(problem)
        if settings.retry_unchanged and not config.cache.enabled:
            raise ConfigError("search.retry_unchanged compares functional keys, which the "
                              "equivalence cache computes: set cache.enabled=True or "
                              "search.retry_unchanged=0")
        return settings

    def check(self) -> None:
        if self.population_size < 2:
            raise ConfigError(f"search.population_size must be >= 2, got "
                              f"{self.population_size}")
        if self.elitism >= self.population_size:
            raise ConfigError(
                f"population_size {self.population_size} leaves no room for children: "
                f"every generation keeps its search.elitism={self.elitism} best programs "
                f"unchanged; use a population above {self.elitism}, or lower search.elitism")
        if self.init_max_depth < self.init_min_depth:
            raise ConfigError("search.init_max_depth must be >= search.init_min_depth")
        if self.islands > 1 and self.migration_size >= self.population_size:
            raise ConfigError(f"search.migration_size ({self.migration_size}) must be smaller "
                              f"than each island's population ({self.population_size})")
        if self.restart_after < 0 or not 0.0 <= self.restart_gain < 1.0:
            raise ConfigError(f"restarts: expected restart_after >= 0 and 0 <= restart_gain "
                              f"< 1, got {self.restart_after} and {self.restart_gain}")
        if self.restart_keep not in ("front", "none"):
            raise ConfigError(f"restart_keep: expected 'front' or 'none', got "
                              f"{self.restart_keep!r}")
        if not 0.0 <= self.semantic_share <= 1.0:
            raise ConfigError(f"semantic_share: expected a share in [0, 1], got "
                              f"{self.semantic_share}")
        if not any(v > 0 for v in self.operator_rates.values()):
            raise ConfigError("search.operators: at least one rate must be > 0")

    def check_fitting(self, problem: Problem) -> None:
        from ..fitting import can_scale

        if self.fit_share > 0 and not problem.squared_error_based:
            raise ConfigError(f"search.fit_share: constant fitting minimises squared error, "
                              f"but problem {problem.name!r} scores programs by its own "
                              f"error ({problem.metric}); set search.fit_share=0")
        if self.fit_share > 0 and self.fit_scaling and not can_scale(problem.grammar):
            raise ConfigError(f"search.fit_scaling needs add, mul and constants, which grammar "
                              f"{problem.grammar.name!r} lacks; set search.fit_scaling=False "
                              f"or search.fit_share=0")

    @property
    def island(self) -> IslandSettings:
        """The settings an island reads."""
        return IslandSettings(**{f: getattr(self, f) for f in IslandSettings.__dataclass_fields__})


@dataclass
class EngineState:
    """Everything a checkpoint holds to resume exactly."""

    islands: list[Island] = field(default_factory=list)
    archive: Archive = field(default_factory=Archive)
    genealogy: Genealogy = field(default_factory=Genealogy)
    epochs: int = 0
    elapsed: float = 0.0  # wall seconds spent in earlier sessions
    events_written: int = 0  # lines of events.jsonl this state accounts for
    checkpointed_at: int = 0  # generation of the last checkpoint
    evaluations_seen: int = 0  # evaluations at the last barrier where they grew
    evaluated_at: int = 0  # the generation of that barrier (for the stall stop)
    llm: LLMBook = field(default_factory=LLMBook)
    bandit: Bandit | None = None
    bandit_rng: np.random.Generator | None = None

    @property
    def generation(self) -> int:
        return self.islands[0].generation if self.islands else 0

    @property
    def evaluations(self) -> int:
        return sum(i.counters.evaluations for i in self.islands)

    @property
    def cache_hits(self) -> int:
        return sum(i.counters.cache_hits for i in self.islands)


class Engine:
    """Evolution of one problem under one config."""

    def __init__(self, problem: Problem, config: RunConfig,
                 emit: Callable[[dict[str, Any]], None] | None = None,
                 executor: Executor | None = None,
                 checkpoint: Callable[[Engine], None] | None = None,
                 resuming: bool = False):
        self.problem = problem
        self.resuming = resuming  # continues an earlier session (hg.resume)
        self.config = config
        self.settings = Settings.resolve(config, problem)
        self.n_jobs = resolve_jobs(config.n_jobs)
        self.context = VariationContext(
            grammar=problem.grammar, n_features=problem.n_features,
            max_depth=self.settings.max_depth, max_size=self.settings.max_size,
            mutation_depth=self.settings.mutation_depth)
        self.state = EngineState()
        self.emit = emit or (lambda event: None)
        self.checkpoint = checkpoint
        self.stop_requested = False
        self._executor = executor
        self._own_executor: Executor | None = None
        self._session_start = time.perf_counter()
        self._last_checkpoint = -float("inf")  # a checkpoint's state does not depend on it
        self._best_text: tuple[Program | None, str | None] = (None, None)
        self.llm_bridge: LLMBridge | None = None
        if self.settings.portfolio == "bandit" or config.llm is not None:
            self.state.bandit = self._new_bandit()
            self.state.bandit_rng = stream(config.seed, "bandit")

    @property
    def bandit(self) -> Bandit | None:
        return self.state.bandit

    def _new_bandit(self) -> Bandit:
        bandit = Bandit()
        for name, rate in self.settings.operator_rates.items():
            if rate > 0 and (name != "constant" or self.problem.grammar.constants.enabled):
                bandit.add_arm(name)
        if self.config.llm is not None:
            for name, w in self.config.llm.operators.as_dict().items():
                if w > 0:
                    bandit.add_arm(name, is_llm=True)
        return bandit

    # ------------------------------------------------------------------ setup
    @property
    def elapsed(self) -> float:
        return self.state.elapsed + time.perf_counter() - self._session_start

    @property
    def kernel_jobs(self) -> int:
        """Threads inside each kernel call: all of n_jobs for one island; with several
        islands the islands themselves run in parallel and each kernel uses one."""
        return self.n_jobs if self.settings.islands == 1 else 1

    def _new_island(self, k: int) -> Island:
        s = self.settings
        cache = build_cache(self.config, self.problem, k, s.islands)
        return Island(
            index=k, n_islands=s.islands, population=None,  # type: ignore[arg-type]
            rng=stream(self.config.seed, "search", k),
            scorer=Scorer(self.problem, self.kernel_jobs, cache),
            portfolio=classic_portfolio(s.operator_rates, self.problem.grammar))

    def initialise(self) -> None:
        s = self.settings
        for k in range(s.islands):
            island = self._new_island(k)
            programs = ramped_half_and_half(
                self.problem.grammar, stream(self.config.seed, "init", k), s.population_size,
                self.problem.n_features, s.init_min_depth, s.init_max_depth, s.max_size)
            pop = score_programs(island, self.problem, programs, self._share_of_budget(k))
            pop.ids = island.new_ids(len(pop))
            if s.selection == "nsga2":
                pop = pop.unique()
            island.population = pop
            island.genealogy.record(pop.ids, 0, k, ["init"] * len(pop), [()] * len(pop),
                                    pop.errors)
            island.archive.update(pop.programs, pop.errors, pop.complexity)
            island.events.append(generation_event(island))
            self.state.islands.append(island)
        self._barrier()

    def attach(self, state: EngineState) -> None:
        """Continue from a checkpointed state (scorers get this engine's problem back)."""
        for island in state.islands:
            island.scorer.problem = self.problem
            island.scorer.n_jobs = self.kernel_jobs
        self.state = state
        self._session_start = time.perf_counter()

    def _stores_subtrees(self) -> bool:
        """Whether the cache will keep subtree outputs (hybrid_gp.subtrees)."""
        c = self.config.cache
        return c.enabled and SubtreeStore.slots_for(self.problem, c.subtree_memory_mb) > 0

    # ------------------------------------------------------------------ the loop
    def run(self) -> str:
        """Evolve until a budget, the target or a stop request ends the run."""
        with lighter_collection():
            return self._run()

    def _run(self) -> str:
        try:
            if self.config.llm is not None and self.llm_bridge is None:
                self.llm_bridge = LLMBridge(self.config.llm, self)
            if not self.state.islands:
                # A first run on a machine compiles the kernels it needs in parallel.
                ensure_compiled(("evaluation", "variation", "selection")
                                + (("fitting",) if self.settings.fit_share > 0 else ())
                                + (("subtrees",) if self._stores_subtrees() else ())
                                + (("threads",) if self.kernel_jobs > 1 else ()))
                self.initialise()
            while (reason := self.stop_reason()) is None:
                self._epoch()
                self._barrier()
            return reason
        finally:
            if self.llm_bridge is not None:
                self.llm_bridge.close()
            if self._own_executor is not None:
                self._own_executor.shutdown(wait=True)
                self._own_executor = None

    def stop_reason(self) -> str | None:
        s, st = self.settings, self.state
        if self.stop_requested:
            return "interrupted"
        if st.archive.best_error <= s.target_error:
            return "target_error"
        if s.max_evaluations is not None and st.evaluations >= s.max_evaluations:
            return "max_evaluations"
        if s.generations is not None and st.generation >= s.generations:
            return "generations"
        if s.time_budget is not None and self.elapsed >= s.time_budget:
            return "time_budget"
        if s.stall_generations and st.generation - st.evaluated_at >= s.stall_generations:
            return "stall_generations"
        return None

    def _epoch(self) -> None:
        s = self.settings
        n_gen = s.migration_interval
        if s.generations is not None:
            n_gen = min(n_gen, s.generations - self.state.generation)
        deadline = (time.time() + s.time_budget - self.elapsed
                    if s.time_budget is not None else None)
        plans = [EpochPlan(n_gen, self._share_of_budget(k), deadline, s.target_error)
                 for k in range(s.islands)]
        args = (self.problem, s.island, self.context)
        executor = self._islands_executor()
        if executor is None:
            for island, plan in zip(self.state.islands, plans, strict=True):
                evolve_epoch(island, *args, plan)
        else:
            futures = [executor.submit(evolve_epoch, island, *args, plan)
                       for island, plan in zip(self.state.islands, plans, strict=True)]
            self.state.islands = [f.result() for f in futures]
        self.state.epochs += 1

    def _islands_executor(self) -> Executor | None:
        if self.settings.islands == 1:
            return None
        if self._executor is not None:
            return self._executor
        if self.n_jobs > 1:
            if self._own_executor is None:
                self._own_executor = ThreadPoolExecutor(min(self.n_jobs, self.settings.islands))
            return self._own_executor
        return None

    def _share_of_budget(self, k: int) -> int | None:
        """Island k's share of the evaluations left (split evenly, remainder first)."""
        s = self.settings
        if s.max_evaluations is None:
            return None
        left = max(0, s.max_evaluations - self.state.evaluations)
        return left // s.islands + (1 if k < left % s.islands else 0)

    # ------------------------------------------------------------------ barriers
    def _barrier(self) -> None:
        st = self.state
        if st.evaluations != st.evaluations_seen:
            st.evaluations_seen, st.evaluated_at = st.evaluations, st.generation
        llm_share = self._adapt_portfolio()
        if self.llm_bridge is not None:
            for event in self.llm_bridge.barrier(st.llm, llm_share):
                self._emit(event)
        for island in st.islands:
            st.archive.merge(island.archive)
            st.genealogy.merge(island.genealogy)
            island.genealogy = Genealogy()
            for event in island.events:
                self._emit(event)
            island.events = []
        if self.settings.islands > 1 and self.settings.migration_size > 0:
            self._migrate()
        self._emit(self._progress_event())
        every = self.settings.checkpoint_every
        waited = time.perf_counter() - self._last_checkpoint
        if (self.checkpoint is not None and every
                and st.generation - st.checkpointed_at >= every
                and waited >= self.settings.checkpoint_seconds):
            st.checkpointed_at = st.generation
            self.checkpoint(self)
            self._last_checkpoint = time.perf_counter()

    def _adapt_portfolio(self) -> float:
        """Credit the bandit with the islands' children since the last barrier and set
        the next epoch's operator shares; returns the LLM share."""
        llm = self.config.llm
        bandit = self.state.bandit
        if bandit is None or self.settings.portfolio == "fixed":
            return llm.rate if llm is not None else 0.0
        for island in self.state.islands:
            for op, c in island.genealogy.credit.items():
                if op in bandit.arms and op not in bandit.llm:
                    bandit.credit(op, c.children, c.improved, float(c.children))
        assert self.state.bandit_rng is not None
        shares = bandit.shares(self.state.bandit_rng, llm.min_share if llm else 0.0,
                               llm.max_share if llm else 0.0)
        classic = {k: v for k, v in shares.items() if k not in bandit.llm}
        for island in self.state.islands:
            island.portfolio.set_weights(classic)
        return sum(v for k, v in shares.items() if k in bandit.llm)

    def _migrate(self) -> None:
        """Ring migration: the best of island k join island k + 1."""
        islands = self.state.islands
        m = self.settings.migration_size
        emigrants = [isl.population.take(isl.population.best(m)) for isl in islands]
        for k, island in enumerate(islands):
            incoming = emigrants[(k - 1) % len(islands)]
            pool = (island.population + incoming).unique()
            if self.settings.selection == "nsga2":
                keep = nsga2_survivors(pool.errors, pool.complexity,
                                       self.settings.population_size)
            else:
                keep = np.sort(pool.best(self.settings.population_size))
            island.population = pool.take(keep)

    def _emit(self, event: dict[str, Any]) -> None:
        self.state.events_written += 1
        self.emit(event)

    def _progress_event(self) -> dict[str, Any]:
        st, a = self.state, self.state.archive
        t = self.elapsed
        return {
            "event": "progress", "generation": st.generation, "epoch": st.epochs,
            "evaluations": st.evaluations, "cache_hits": st.cache_hits,
            "best_error": _num(a.best_error), "best_complexity": _num(a.best_complexity),
            "best": self._text_of_best(),
            "clock": {"elapsed": round(t, 4),
                      "evaluations_per_second": round(st.evaluations / t, 1) if t > 0
                      else None},
        }

    def _text_of_best(self) -> str | None:
        """The archive's best program as text, printed once per best program (the
        progress event of every generation carries it; the best rarely changes)."""
        best = self.state.archive.best
        if best is None:
            return None
        if self._best_text[0] is not best:
            self._best_text = (best, str(best))
        return self._best_text[1]

    # ------------------------------------------------------------------ results
    def stats(self) -> dict[str, Any]:
        st = self.state
        t = self.elapsed
        cache: dict[str, Any] = {}
        for island in st.islands:
            c = island.scorer.cache
            if c is not None:
                for key, value in (c.stats.as_dict() | c.stats.clock_dict()).items():
                    if key != "hit_rate":
                        cache[key] = cache.get(key, 0) + value
        if cache:
            cache["hit_rate"] = cache["hits"] / cache["lookups"] if cache["lookups"] else 0.0
            for key in CACHE_CLOCK:
                cache[key] = round(cache[key], 6)
        llm = {"llm_calls": 0, "llm_tokens": 0, "llm_failures": 0}
        if self.llm_bridge is not None:
            llm.update(self.llm_bridge.stats(st.llm))
        return {
            "evaluations": st.evaluations,
            "cache_hits": st.cache_hits,
            "generations": st.generation,
            "children": sum(i.counters.children for i in st.islands),
            "variation_fallbacks": sum(i.counters.variation_fallbacks for i in st.islands),
            "retried": sum(i.counters.retried for i in st.islands),
            "fitted": sum(i.counters.fitted for i in st.islands),
            "fit_passes": sum(i.counters.fit_passes for i in st.islands),
            **llm,
            "cache": cache,
            "operators": st.genealogy.credit_table(),
            "best_error": _num(st.archive.best_error),
            "wall_seconds": t,
            "evaluations_per_second": st.evaluations / t if t > 0 else math.nan,
        }


#: The cache's wall-clock numbers in res.stats["cache"] (CacheStats.clock_dict): in
#: events.jsonl they sit under the end event's "clock".
CACHE_CLOCK = ("evaluation_seconds", "seconds_saved", "hash_seconds")
#: The subtree store's counts, which depend on the session as the clock does (a
#: resumed run starts with an empty store); they sit under "clock" too.
CACHE_SESSION = ("subtree_stores", "subtree_loads", "subtree_nodes_loaded",
                 "subtree_nodes_planned")


def build_cache(config: RunConfig, problem: Problem, island: int = 0,
                n_islands: int = 1) -> EquivalenceCache | None:
    """An island's equivalence cache (the same probe on every island, so migrants'
    keys stay valid), or None when the config turns the cache off."""
    c = config.cache
    if not c.enabled:
        return None
    probe = make_probe(problem, c.probe_size, config.seed)
    return EquivalenceCache(
        probe_XT=np.ascontiguousarray(probe.T), mode=c.mode, mantissa_bits=c.mantissa_bits,
        capacity=max(1, c.capacity // n_islands), audit_rate=c.audit_rate,
        audit_tolerance=c.audit_tolerance, forget_p=c.forget_p, average_k=c.average_k,
        subtree_memory_mb=c.subtree_memory_mb / n_islands, rng=stream(config.seed, "cache", island))


def _num(x: float) -> float | None:
    """JSON-safe number: None for inf/NaN."""
    return float(x) if math.isfinite(x) else None
