"""Scoring stage: children in, errors out, counting only real evaluations.

The whole batch is compiled once and scored in one kernel call. The equivalence cache
(hybrid_gp.hashing) plugs in here: known functions reuse their fitness and cost no
evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..compiler import CompiledBatch, compile_batch
from ..problem import Problem
from ..program import Program


@dataclass
class ScoreResult:
    errors: np.ndarray  # one per program; NaN where not scored (budget ran out)
    evaluated: int  # real evaluations spent
    cache_hits: int  # programs whose error came from the cache
    keys: np.ndarray  # int64 functional key of each program (hash(program) without a cache)


class Scorer:
    """Scores programs on a problem's training data."""

    def __init__(self, problem: Problem, n_jobs: int = 1, cache: object | None = None):
        self.problem = problem
        self.n_jobs = n_jobs
        self.cache = cache

    def __getstate__(self) -> dict:
        """Checkpoints leave the problem (and its data) out; Engine.attach puts it back."""
        return {"n_jobs": self.n_jobs, "cache": self.cache, "problem": None}

    def score(self, programs: Sequence[Program], max_new: int | None = None,
              batch: CompiledBatch | None = None) -> ScoreResult:
        """Errors of `programs`; at most `max_new` real evaluations (the rest stay NaN).
        `batch`, when given, is `programs` already compiled (by the batch breeder)."""
        n = len(programs)
        errors = np.full(n, np.nan)
        if self.cache is not None:
            return self.cache.score(self, programs, max_new, batch)
        todo = list(range(n)) if max_new is None else list(range(min(n, max_new)))
        if todo:
            batch = (compile_batch([programs[i] for i in todo]) if batch is None
                     else batch.take(todo))
            errors[todo] = self.problem.error(batch, self.n_jobs)
        keys = np.fromiter((hash(p) for p in programs), dtype=np.int64, count=n)
        return ScoreResult(errors, len(todo), 0, keys)

    def evaluate_now(self, programs: Sequence[Program],
                     batch: CompiledBatch | None = None) -> np.ndarray:
        """Errors of every program by the kernels, no cache (used by the cache itself).
        `batch`, when given, is `programs` already compiled."""
        if not programs:
            return np.empty(0)
        return self.problem.error(compile_batch(programs) if batch is None else batch, self.n_jobs)
