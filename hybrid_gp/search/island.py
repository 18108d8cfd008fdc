"""An island: one population evolving on its own rng stream.

`evolve_epoch` runs an island for a few generations without looking at any other
island; it is a plain function of picklable state, so an Executor (threads here, Dask
later) may run the islands of an epoch at the same time and the run stays the same for
any number of workers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..compiler import compile_batch
from ..evaluation import evaluate_features
from ..generate import ramped_half_and_half
from ..genomes import Genomes
from ..operators.batch import KERNEL_NAMES
from ..operators.portfolio import Brood, Portfolio, VariationContext
from ..problem import Dataset, Problem
from ..program import Program
from .archive import Archive
from .genealogy import NO_PARENT, Genealogy
from .population import Population
from .scoring import Scorer
from .selection import (
    lexicase,
    nondominated_fronts,
    nsga2_ranks,
    nsga2_survivors,
    rank,
    tournament,
)


@dataclass
class IslandCounters:
    evaluations: int = 0  # real evaluations; cache hits are not counted
    cache_hits: int = 0
    children: int = 0
    variation_fallbacks: int = 0
    retried: int = 0  # children bred again because they computed a parent's function
    fitted: int = 0  # children whose constants LM improved
    fit_passes: int = 0  # passes over the training rows spent fitting


@dataclass(frozen=True)
class EpochPlan:
    """What an island may do in one epoch."""

    generations: int
    max_evaluations: int | None  # this island's share of what the budget has left
    deadline: float | None  # time.time() after which the island stops
    target_error: float


@dataclass
class Island:
    """A population with everything it needs to evolve on its own."""

    index: int
    n_islands: int
    population: Population
    rng: np.random.Generator
    scorer: Scorer
    portfolio: Portfolio
    archive: Archive = field(default_factory=Archive)
    genealogy: Genealogy = field(default_factory=Genealogy)
    counters: IslandCounters = field(default_factory=IslandCounters)
    generation: int = 0
    improved_at: int = 0  # generation of the island's last progress (restarts)
    progress_error: float = math.inf  # the best error when progress was last noted
    next_local_id: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)  # since the last barrier

    def new_ids(self, n: int) -> np.ndarray:
        """Genealogy ids unique over all islands: island index + n_islands * local id."""
        local = np.arange(self.next_local_id, self.next_local_id + n, dtype=np.int64)
        self.next_local_id += n
        return self.index + self.n_islands * local


@dataclass(frozen=True)
class IslandSettings:
    """The parts of the run settings an island reads (plain values)."""

    population_size: int
    selection: str
    tournament_size: int
    lexicase_rows: int
    elitism: int
    immigrants: float = 0.0
    init_min_depth: int = 1
    init_max_depth: int = 5
    fit_share: float = 0.0
    fit_scaling: bool = True
    fit_iterations: int = 10
    fit_rows: int = 1024
    max_size: int = 60
    max_depth: int = 12
    restart_after: int = 0
    restart_gain: float = 0.0
    restart_keep: str = "front"
    semantic_share: float = 0.0
    semantic_library: int = 50
    retry_unchanged: int = 0
    simplify_every: int = 0


def score_programs(island: Island, problem: Problem, programs: list[Program],
                   max_new: int | None) -> Population:
    """Score a batch (cache first); what the budget could not pay for is dropped."""
    result = island.scorer.score(programs, max_new)
    keep = np.flatnonzero(~np.isnan(result.errors))
    c = island.counters
    c.evaluations += result.evaluated
    c.cache_hits += result.cache_hits
    kept = Genomes.of(programs).take(keep)
    return Population(kept, result.errors[keep], problem.complexities(kept),
                      result.keys[keep], np.empty(len(keep), dtype=np.int64))


def evolve_epoch(island: Island, problem: Problem, settings: IslandSettings,
                 ctx: VariationContext, plan: EpochPlan) -> Island:
    """Run `plan.generations` generations (fewer if the island's budget, the deadline
    or the target stops it). Returns the island (changed in place; a process executor
    returns a changed copy)."""
    island.scorer.problem = problem  # pickled scorers travel without their problem
    spent_before = island.counters.evaluations
    for _ in range(plan.generations):
        left = (None if plan.max_evaluations is None
                else plan.max_evaluations - (island.counters.evaluations - spent_before))
        if left is not None and left <= 0:
            break
        if island.archive.best_error <= plan.target_error:
            break
        if plan.deadline is not None and time.time() >= plan.deadline:
            break
        step(island, problem, settings, ctx, left)
    return island


def step(island: Island, problem: Problem, s: IslandSettings, ctx: VariationContext,
         max_new: int | None) -> None:
    """One generation of one island."""
    pop = island.population
    spent_before = island.counters.evaluations
    elites = 0 if s.selection == "nsga2" else min(s.elitism, len(pop))
    n_children = s.population_size - elites
    first, second = _parents(island, problem, s, n_children)
    brood = island.portfolio.breed(pop.programs, first, second, island.rng, ctx,
                                   island.scorer.n_jobs)
    island.counters.variation_fallbacks += brood.fallbacks
    n_new = round(s.immigrants * n_children)
    if n_new:  # fresh random trees replace the last children of the brood
        fresh = ramped_half_and_half(ctx.grammar, island.rng, n_new, ctx.n_features,
                                     s.init_min_depth, s.init_max_depth, ctx.max_size)
        brood.replace(range(n_children - n_new, n_children), fresh, "immigrant", [()] * n_new)
    n_semantic = min(round(s.semantic_share * n_children), n_children - n_new)
    if n_semantic:  # semantic children replace the first children of the brood
        _semantic_children(island, problem, s, brood, first[:n_semantic])
    if s.retry_unchanged:
        _retry_unchanged(island, s, ctx, brood, first, second)
    scored = island.scorer.score(brood.children, max_new, brood.compiled())
    if s.fit_share > 0:
        _fit_children(island, problem, s, brood, scored, max_new)
    keep = np.flatnonzero(~np.isnan(scored.errors))
    c = island.counters
    c.evaluations += scored.evaluated
    c.cache_hits += scored.cache_hits
    c.children += len(keep)
    programs = brood.children.take(keep)
    children = Population(programs, scored.errors[keep], problem.complexities(programs),
                          scored.keys[keep], island.new_ids(len(keep)))
    op_codes = brood.op_codes[keep]
    n_parents = np.count_nonzero(brood.parent_index >= 0, axis=1)
    first_error, second_error = pop.errors[first], pop.errors[second]
    best_parent = np.where(n_parents == 2, np.minimum(first_error, second_error),
                           np.where(n_parents == 1, first_error, np.inf))[keep]
    island.genealogy.credit_codes(op_codes, brood.names, best_parent, children.errors)
    parents = _ParentIds(pop.ids, brood.parent_index[keep])
    operators = _OperatorNames(brood.names, op_codes)
    island.generation += 1
    if s.selection == "nsga2":
        pool = pop + children
        distinct = pool.unique_index()  # one gather of programs below, not two
        nxt = pool.take(distinct[nsga2_survivors(pool.errors[distinct],
                                                 pool.complexity[distinct],
                                                 s.population_size)])
    else:
        order = pop.best(len(pop))
        nxt = pop.take(order[:elites]) + children
        if len(nxt) < s.population_size:  # the budget cut the batch short
            nxt = nxt + pop.take(order[elites:elites + s.population_size - len(nxt)])
    _record_entrants(island, nxt, children, operators, parents)
    island.population = nxt
    island.archive.update(children.programs, children.errors, children.complexity)
    if s.restart_after:
        _note_progress(island, s.restart_gain)
        if island.generation - island.improved_at >= s.restart_after:
            _restart(island, problem, s, ctx, _left(max_new, island, spent_before))
    if s.simplify_every and island.generation % s.simplify_every == 0:
        _simplify_front(island, problem, _left(max_new, island, spent_before))
    island.events.append(generation_event(island))


SEMANTIC_ROWS = 256  # training rows (evenly spaced) semantic backpropagation works on


def _semantic_children(island: Island, problem: Problem, s: IslandSettings, brood: Brood,
                       first: np.ndarray) -> None:
    """Replace brood children 0..len(first)-1 by RDO children of their first parents
    (operators/semantic.py); where RDO finds nothing better, the classic child stays."""
    from ..operators.semantic import applies_to, rdo_children

    if not applies_to(problem.grammar):
        return
    pop = island.population
    view = fitting_view(problem, SEMANTIC_ROWS)
    XT, y = view.train.XT, view.train.y
    library = [pop.programs[i] for i in pop.best(s.semantic_library)]
    made = rdo_children([pop.programs[i] for i in first], library, XT, y, island.rng,
                        s.max_size, s.max_depth)
    done = [i for i, child in enumerate(made) if child is not None]
    brood.replace(done, [made[i] for i in done], "semantic", [(int(first[i]),) for i in done])


CLASSIC = frozenset(KERNEL_NAMES.values())  # the batch breeder's operators and "copy"


def _retry_unchanged(island: Island, s: IslandSettings, ctx: VariationContext, brood: Brood,
                     first: np.ndarray, second: np.ndarray) -> None:
    """Breed again, up to s.retry_unchanged times, the classic children whose
    functional key is a parent's: such a child would cost nothing (a cache hit) and
    teach nothing. All suspects of a round are keyed in one call on the probe and
    re-bred in one kernel call; what is still unchanged after the last round stays."""
    cache = island.scorer.cache
    pop = island.population
    classic = [code for code, name in enumerate(brood.names) if name in CLASSIC]
    todo = np.flatnonzero(np.isin(brood.op_codes, classic))
    for _ in range(s.retry_unchanged):
        if not len(todo):
            return
        keys = np.asarray(cache.keys_of(brood.children.take(todo), island.scorer.n_jobs),
                          dtype=np.int64)
        par = brood.parent_index[todo]
        same = np.zeros(len(todo), dtype=bool)
        for col in range(par.shape[1]):
            has = par[:, col] >= 0
            same |= has & (pop.keys[np.where(has, par[:, col], 0)] == keys)
        todo = todo[same]
        if not len(todo):
            return
        again = island.portfolio.breed(pop.programs, first[todo], second[todo], island.rng,
                                       ctx, island.scorer.n_jobs)
        island.counters.variation_fallbacks += again.fallbacks
        island.counters.retried += len(todo)
        brood.replace(todo, again.children, again.operators, again.parents)


def _left(max_new: int | None, island: Island, spent_before: int) -> int | None:
    """What is left of this generation's evaluation budget."""
    if max_new is None:
        return None
    return max(0, max_new - (island.counters.evaluations - spent_before))


def _simplify_front(island: Island, problem: Problem, max_new: int | None) -> None:
    """Rewrite the non-dominated programs with hybrid_gp.simplify (constant folding,
    x*1 -> x, ...); a rewrite replaces its original when it is smaller and no worse."""
    from ..simplify import simplify

    pop = island.population
    front = np.flatnonzero(nondominated_fronts(pop.errors, pop.complexity) == 0)
    rewrites = {int(i): simplify(pop.programs[i]) for i in front}
    changed = [i for i, p in rewrites.items() if p.size < pop.programs[i].size]
    if not changed:
        return
    scored = island.scorer.score([rewrites[i] for i in changed], max_new)
    island.counters.evaluations += scored.evaluated
    island.counters.cache_hits += scored.cache_hits
    better = [k for k, i in enumerate(changed)  # NaN (unscored) and worse keep the original
              if scored.errors[k] <= pop.errors[i]]
    idx = [changed[k] for k in better]
    pop.replace(idx, [rewrites[i] for i in idx], scored.errors[better],
                [problem.complexity(rewrites[i]) for i in idx], scored.keys[better])


def _note_progress(island: Island, gain: float) -> None:
    """Mark this generation as progress when the population's best error dropped by at
    least the share `gain` since progress was last noted (any drop when gain is 0)."""
    errors = island.population.errors
    best = float(np.min(errors)) if len(errors) else math.inf
    before = island.progress_error
    if best < before * (1.0 - gain) or (before == math.inf and best < math.inf):
        island.progress_error = best
        island.improved_at = island.generation


def _restart(island: Island, problem: Problem, s: IslandSettings, ctx: VariationContext,
             max_new: int | None) -> None:
    """Refill a stagnating island with fresh random trees, keeping its first
    non-dominated front (restart_keep "front") or nothing ("none"): the island searches
    a new basin while the run's archive holds the best programs found so far."""
    pop = island.population
    if s.restart_keep == "front":
        kept = pop.take(np.flatnonzero(nondominated_fronts(pop.errors, pop.complexity) == 0))
    else:
        kept = pop.take(np.empty(0, dtype=np.int64))
    fresh = ramped_half_and_half(ctx.grammar, island.rng, s.population_size - len(kept),
                                 ctx.n_features, s.init_min_depth, s.init_max_depth,
                                 ctx.max_size)
    scored = island.scorer.score(fresh, max_new)
    keep = np.flatnonzero(~np.isnan(scored.errors))
    island.counters.evaluations += scored.evaluated
    island.counters.cache_hits += scored.cache_hits
    island.improved_at = island.generation
    if len(kept) + len(keep) < 2:  # the budget paid for (almost) nothing: carry on as is
        return
    programs = Genomes.of(fresh).take(keep)
    new = Population(programs, scored.errors[keep], problem.complexities(programs),
                     scored.keys[keep], island.new_ids(len(keep)))
    island.genealogy.record(new.ids, island.generation, island.index,
                            ["restart"] * len(new), [()] * len(new), new.errors)
    island.archive.update(new.programs, new.errors, new.complexity)
    island.population = (kept + new).unique()
    errors = island.population.errors
    island.progress_error = float(np.min(errors)) if len(errors) else math.inf
    island.events.append({"event": "restart", "island": island.index,
                          "generation": island.generation, "kept": len(kept)})


def _fit_children(island: Island, problem: Problem, s: IslandSettings, brood: Brood,
                  scored: Any, max_new: int | None) -> None:
    """Fit the constants (and a linear scaling) of the best share of the children; a
    fitted child replaces its unfitted self when the fit lowers its error. Fitted
    programs are new programs: they go through the cache with their own keys."""
    from ..fitting import fit_batch, pick_for_fitting

    idx = pick_for_fitting(scored.errors, s.fit_share)
    if not len(idx):
        return
    fr = fit_batch(brood.children, fitting_view(problem, s.fit_rows), idx,
                   max_iter=s.fit_iterations,
                   linear_scaling=s.fit_scaling, max_size=s.max_size, max_depth=s.max_depth,
                   n_jobs=island.scorer.n_jobs)
    island.counters.fit_passes += fr.passes
    if not len(fr.improved):
        return
    fitted = [fr.programs[i] for i in fr.improved]
    left = None if max_new is None else max(0, max_new - scored.evaluated)
    again = island.scorer.score(fitted, left)
    won = [k for k, i in enumerate(fr.improved.tolist())
           if not np.isnan(again.errors[k]) and again.errors[k] < scored.errors[i]]
    idx = fr.improved[won]
    brood.replace(idx, [fitted[k] for k in won])
    scored.errors[idx] = again.errors[won]
    scored.keys[idx] = again.keys[won]
    island.counters.fitted += len(won)
    scored.evaluated += again.evaluated
    scored.cache_hits += again.cache_hits


def fitting_view(problem: Problem, max_rows: int) -> Problem:
    """The problem with at most `max_rows` evenly spaced training rows: constants are
    fitted there (the cost of Levenberg-Marquardt grows with the rows) and the fitted
    programs are then scored on all the data."""
    n = problem.train.n_rows
    if n <= max_rows:
        return problem
    key = (id(problem), max_rows)
    if _FIT_VIEWS.get(key, (None,))[0] is not problem:
        rows = np.linspace(0, n - 1, max_rows).round().astype(np.int64)
        train = Dataset(np.ascontiguousarray(problem.train.XT[:, rows]), problem.train.y[rows])
        _FIT_VIEWS[key] = (problem, replace(problem, train=train))
    return _FIT_VIEWS[key][1]


_FIT_VIEWS: dict[tuple[int, int], tuple[Problem, Problem]] = {}


class _ParentIds:
    """Genealogy ids of the parents of kept children (rows of population indices, -1
    for none), built only for the children that enter the population."""

    def __init__(self, ids: np.ndarray, parent_index: np.ndarray):
        self.ids, self.parent_index = ids, parent_index

    def columns(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(first parent ids, second parent ids) of kept children `rows`: a row's
        parents in column order, those present first, NO_PARENT after them."""
        idx = self.parent_index[rows]
        has = idx >= 0
        first = np.where(has[:, 0], idx[:, 0], idx[:, 1])
        second = np.where(has[:, 0] & has[:, 1], idx[:, 1], NO_PARENT)
        return (np.where(first >= 0, self.ids[np.maximum(first, 0)], NO_PARENT),
                np.where(second >= 0, self.ids[np.maximum(second, 0)], NO_PARENT))


class _OperatorNames:
    """Operator names of kept children, looked up only for those that enter."""

    def __init__(self, names: list[str], codes: np.ndarray):
        self.names, self.codes = names, codes

    def of(self, rows: np.ndarray) -> list[str]:
        names = self.names
        return [names[c] for c in self.codes[rows].tolist()]


def _record_entrants(island: Island, new: Population, children: Population,
                     operators: _OperatorNames, parents: _ParentIds) -> None:
    """Add to the genealogy the children that made it into the new population."""
    # Children's ids are fresh (island.new_ids: ascending, in no older population), so
    # the entrants are the children whose id is in the new population.
    kids = children.ids
    if not len(kids):
        return
    at = np.minimum(np.searchsorted(kids, new.ids), len(kids) - 1)
    rows = np.unique(at[kids[at] == new.ids])
    if not len(rows):
        return
    first, second = parents.columns(rows)
    island.genealogy.record_columns(kids[rows], island.generation, island.index,
                                    operators.of(rows), first, second,
                                    children.errors[rows])


def _parents(island: Island, problem: Problem, s: IslandSettings,
             n: int) -> tuple[np.ndarray, np.ndarray]:
    pop = island.population
    if s.selection == "lexicase":
        cases = case_errors(pop, problem, s.lexicase_rows, island.rng)
        return lexicase(cases, n, island.rng), lexicase(cases, n, island.rng)
    ranks = (nsga2_ranks(pop.errors, pop.complexity) if s.selection == "nsga2"
             else rank(pop.errors, pop.complexity))
    return (tournament(ranks, n, s.tournament_size, island.rng),
            tournament(ranks, n, s.tournament_size, island.rng))


def case_errors(pop: Population, problem: Problem, max_rows: int,
                rng: np.random.Generator) -> np.ndarray:
    """|output - y| of every program on (a random subset of) the training rows."""
    train = problem.train
    rows = (np.arange(train.n_rows) if train.n_rows <= max_rows
            else np.sort(rng.choice(train.n_rows, max_rows, replace=False)))
    XT = np.ascontiguousarray(train.XT[:, rows])
    out = evaluate_features(compile_batch(pop.programs), XT, 1)
    with np.errstate(all="ignore"):
        return np.abs(out - train.y[rows])


def generation_event(island: Island) -> dict[str, Any]:
    """The island's numbers after a generation (no wall-clock values)."""
    pop, a, c = island.population, island.archive, island.counters
    finite = np.sort(pop.errors[np.isfinite(pop.errors)])
    half = len(finite) // 2  # the median as np.median gives it, without its overhead
    median = None
    if len(finite):
        median = finite[half] if len(finite) % 2 else (finite[half - 1] + finite[half]) / 2
    keys = np.sort(pop.keys)
    return {
        "event": "generation", "island": island.index, "generation": island.generation,
        "island_evaluations": c.evaluations, "island_cache_hits": c.cache_hits,
        "best_error": _num(a.best_error), "best_complexity": _num(a.best_complexity),
        "median_error": None if median is None else _num(float(median)),
        "mean_complexity": float(np.mean(pop.complexity)) if len(pop) else None,
        "unique_functions": int(len(keys) and 1 + np.count_nonzero(keys[1:] != keys[:-1])),
    }


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
