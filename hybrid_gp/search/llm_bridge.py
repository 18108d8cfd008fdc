"""The engine's side of the LLM: at every barrier, join the replies that arrived and
send new requests.

Joined programs go through the island's functional-hash cache like any child (LLMs
often propose an equivalent form; those hits are counted apart as llm_dedup_hits), then
compete for a place in the island's population. Requests pick parents by tournament on
an island chosen round-robin, and show the model that island's elites and the latest
rejections. All choices draw from the run's "llm" stream, and replies join at
generations the broker decides (recorded in the transcript), so a replay is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..llm.broker import Broker, BrokerState
from ..llm.config import LLMConfig
from ..llm.prompts import PromptContext, ScoredProgram, problem_summary
from ..operators.bandit import TOKENS_PER_UNIT
from ..operators.llm import LLM_OPERATORS
from ..rng import stream
from .population import Population
from .selection import nsga2_ranks, nsga2_survivors, rank, tournament

if TYPE_CHECKING:
    from .engine import Engine
    from .island import Island


@dataclass
class LLMBook:
    """Picklable bookkeeping of the LLM side (part of the engine state)."""

    pending: dict[int, tuple[int, float]] = field(default_factory=dict)  # seq: island, error
    dedup_hits: int = 0  # accepted LLM programs whose function the cache already knew
    evaluated: int = 0  # accepted LLM programs that cost a real evaluation
    next_island: int = 0
    broker: BrokerState | None = None  # the broker at the last barrier
    rng: np.random.Generator | None = None  # the run's "llm" stream

    def stats(self) -> dict[str, Any]:
        return {"llm_dedup_hits": self.dedup_hits, "llm_evaluated": self.evaluated}


class LLMBridge:
    """Owns the broker for one LLMConfig; the engine calls `barrier` once per barrier."""

    def __init__(self, config: LLMConfig, engine: Engine):
        self.config = config
        self.engine = engine
        p = engine.problem
        book = engine.state.llm
        state = getattr(book, "broker", None)  # None in a new run
        self.broker = Broker(config, grammar=p.grammar, n_features=p.n_features,
                             max_size=engine.settings.max_size,
                             max_depth=engine.settings.max_depth, seed=engine.config.seed,
                             resumed=engine.resuming, state=state)
        if state is not None:
            self.broker.restore(state)
        if getattr(book, "rng", None) is None:
            book.rng = stream(engine.config.seed, "llm")
        self.rng = book.rng  # checkpointed with the book: a resume draws on where it was
        self.weights = {k: v for k, v in config.operators.as_dict().items() if v > 0}
        self.summary = problem_summary(p.n_features, p.train.n_rows, p.metric, p.domain)

    def close(self) -> None:
        self.broker.close()

    def stats(self, book: LLMBook) -> dict[str, Any]:
        return {**self.broker.stats(), **book.stats()}

    # ------------------------------------------------------------------ joins
    def barrier(self, book: LLMBook, share: float) -> list[dict[str, Any]]:
        """Join arrived replies, then submit new requests. Returns events to write."""
        eng = self.engine
        generation = eng.state.generation
        events: list[dict[str, Any]] = []
        for result in self.broker.collect(generation):
            island_index, parent_error = book.pending.pop(result.seq, (0, math.inf))
            self._join(book, eng.state.islands[island_index], result, parent_error)
        events.extend(self.broker.take_events())  # one llm_call per joined request
        if self.broker.active and self.broker.capacity() > 0 and share > 0:
            self._submit(book, share, generation)
        book.broker = self.broker.state()
        return events

    def _join(self, book: LLMBook, island: Island, result: Any, parent_error: float) -> None:
        programs = list(result.programs)
        if not programs:
            self._credit(result, 0, 0)
            return
        problem = self.engine.problem
        scored = island.scorer.score(programs, None)
        book.dedup_hits += scored.cache_hits
        book.evaluated += scored.evaluated
        island.counters.evaluations += scored.evaluated
        island.counters.cache_hits += scored.cache_hits
        keep = np.flatnonzero(~np.isnan(scored.errors))
        kids = Population([programs[i] for i in keep], scored.errors[keep],
                          np.array([problem.complexity(programs[i]) for i in keep], dtype=float),
                          [scored.keys[i] for i in keep], island.new_ids(len(keep)))
        improved = int(np.count_nonzero(kids.errors < parent_error))
        self._credit(result, len(kids), improved)
        island.genealogy.credit_children([result.operator] * len(kids),
                                         [parent_error] * len(kids), kids.errors)
        before = set(island.population.ids.tolist())
        pool = (island.population + kids).unique()
        s = self.engine.settings
        if s.selection == "nsga2":
            keep_idx = nsga2_survivors(pool.errors, pool.complexity, s.population_size)
        else:
            keep_idx = np.sort(pool.best(s.population_size))
        island.population = pool.take(keep_idx)
        entered = [k for k, i in enumerate(kids.ids.tolist())
                   if i in set(island.population.ids.tolist()) - before]
        island.genealogy.record(kids.ids[entered], island.generation, island.index,
                                [result.operator] * len(entered),
                                [tuple(result.parent_ids)] * len(entered), kids.errors[entered])
        island.archive.update(kids.programs, kids.errors, kids.complexity)

    def _credit(self, result: Any, children: int, improved: int) -> None:
        bandit = self.engine.bandit
        if bandit is None:
            return
        k = max(self.config.k, 1)
        cost = max(children, 1) * (1.0 + result.tokens / (k * TOKENS_PER_UNIT))
        bandit.credit(result.operator, max(children, 1), improved, cost)

    # ------------------------------------------------------------------ requests
    def _submit(self, book: LLMBook, share: float, generation: int) -> None:
        eng = self.engine
        s = eng.settings
        children_per_epoch = s.population_size * s.islands * s.migration_interval
        wanted = math.ceil(share * children_per_epoch / max(self.config.k, 1))
        n = min(wanted, self.broker.capacity())
        names = sorted(self.weights)
        w = np.array([self.weights[x] for x in names], dtype=float)
        for _ in range(n):
            island = eng.state.islands[book.next_island % len(eng.state.islands)]
            book.next_island += 1
            op = LLM_OPERATORS[names[int(self.rng.choice(len(names), p=w / w.sum()))]]
            parents = self._parents(island, op.n_parents)
            pop = island.population
            ctx = self._context(island)
            scored = tuple(ScoredProgram(pop.programs[i], float(pop.errors[i]),
                                         float(pop.complexity[i])) for i in parents)
            ids = tuple(int(pop.ids[i]) for i in parents)
            seq = self.broker.submit(op.request(scored, ids, ctx), generation)
            if seq is None:
                break
            book.pending[seq] = (island.index, float(min(pop.errors[i] for i in parents)))

    def _parents(self, island: Island, n: int) -> list[int]:
        pop = island.population
        s = self.engine.settings
        ranks = (nsga2_ranks(pop.errors, pop.complexity) if s.selection == "nsga2"
                 else rank(pop.errors, pop.complexity))
        return [int(i) for i in tournament(ranks, n, s.tournament_size, self.rng)]

    def _context(self, island: Island) -> PromptContext:
        pop = island.population
        p = self.engine.problem
        elites = tuple(ScoredProgram(pop.programs[i], float(pop.errors[i]),
                                     float(pop.complexity[i]))
                       for i in pop.best(self.config.prompt_elites))
        return PromptContext(
            grammar=p.grammar, n_features=p.n_features, description=self.summary,
            metric=p.metric, max_size=self.engine.settings.max_size,
            max_depth=self.engine.settings.max_depth, k=self.config.k, elites=elites,
            failures=self.broker.recent_failures(self.config.prompt_failures))
