"""Online bin packing: evolve the priority function score(item, remaining, capacity).

Items of integer size arrive one by one; each goes to the open bin that fits it with
the highest score (ties: the bin opened first), or to a new bin when none fits (the
simulator: kernels/binpack.py). Fitness is the excess of bins over the L1 lower bound
ceil(sum of sizes / capacity), in percent, averaged over seeded training instances;
separate seeded test instances measure generalisation. Best fit (score = item -
remaining) and first fit (a constant score) are the baselines.

Programs see x0 = item size, x1 = remaining capacity of the bin, x2 = bin capacity.
Because sizes are integers, a program is evaluated once per batch on the grid of
every (item, remaining >= item) pair, and the simulator looks scores up there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from ..compiler import CompiledBatch
from ..errors import ProblemError
from ..evaluation import evaluate_features, resolve_jobs
from ..grammar import load_grammar
from ..kernels import binpack as kern
from ..problem import Dataset, Problem, ProblemKind, read_budget

VARIABLES = ("item", "remaining", "capacity")


# ---------------------------------------------------------------------- instances


@dataclass(frozen=True)
class SizeDistribution:
    """Integer item sizes: "weibull" (scale * Weibull(shape), rounded, clipped to
    [low, high]) or "uniform" (uniform on the integers low..high)."""

    kind: str
    low: int
    high: int
    shape: float = 3.0
    scale: float = 45.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.kind == "weibull":
            raw = np.round(rng.weibull(self.shape, n) * self.scale)
            return np.clip(raw, self.low, self.high).astype(np.int64)
        return rng.integers(self.low, self.high + 1, size=n, dtype=np.int64)


def l1_bound(items: np.ndarray, capacity: int) -> int:
    """ceil(sum of sizes / capacity): no packing uses fewer bins."""
    return int(-(-int(np.sum(items)) // capacity))


def priority_grid(low: int, high: int, capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows (item, remaining, capacity) for every item size low..high and remaining
    capacity item..capacity, feature-major; and grid_index[s, r] -> row (-1: none)."""
    s, r = np.meshgrid(np.arange(low, high + 1), np.arange(capacity + 1), indexing="ij")
    keep = r >= s
    s, r = s[keep], r[keep]
    index = np.full((high + 1, capacity + 1), -1, dtype=np.int64)
    index[s, r] = np.arange(len(s))
    XT = np.ascontiguousarray(np.stack([s, r, np.full_like(s, capacity)]).astype(np.float64))
    return XT, index


@dataclass(frozen=True)
class Instances(Dataset):
    """Bin-packing instances (sizes concatenated, with offsets). XT is the priority
    grid (see module docstring) and y is zero: the grid is where a program is run, and
    the rows hashing probes take."""

    items: np.ndarray  # int64, all instances one after another
    offsets: np.ndarray  # int64, n_instances + 1
    capacity: int
    grid_index: np.ndarray  # (max size + 1, capacity + 1) int64

    @property
    def n_instances(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_items(self) -> int:
        return int(self.offsets[-1])

    def instance(self, k: int) -> np.ndarray:
        return self.items[self.offsets[k]:self.offsets[k + 1]]

    @property
    def l1_bounds(self) -> np.ndarray:
        return np.array([l1_bound(self.instance(k), self.capacity)
                         for k in range(self.n_instances)], dtype=np.int64)

    @property
    def smallest(self) -> np.ndarray:
        """Smallest item of each instance (bins with less room are full)."""
        return np.array([int(self.instance(k).min()) for k in range(self.n_instances)],
                        dtype=np.int64)

    @classmethod
    def draw(cls, sizes: SizeDistribution, capacity: int, n_instances: int, n_items: int,
             seed: int) -> Instances:
        """n_instances instances of n_items sizes, drawn in turn from default_rng(seed)."""
        rng = np.random.default_rng(seed)
        items = np.concatenate([sizes.sample(rng, n_items) for _ in range(n_instances)])
        offsets = np.arange(n_instances + 1, dtype=np.int64) * n_items
        XT, index = priority_grid(sizes.low, sizes.high, capacity)
        return cls(XT, np.zeros(XT.shape[1]), items, offsets, capacity, index)


# ---------------------------------------------------------------------- simulation


def bins_used(scores: np.ndarray, data: Instances, n_jobs: int = 1) -> np.ndarray:
    """Bins per (score table, instance): scores is (n_tables, n_grid_rows)."""
    scores = np.ascontiguousarray(np.atleast_2d(scores), dtype=np.float64)
    if scores.shape[1] != data.XT.shape[1]:
        raise ProblemError(f"expected {data.XT.shape[1]} scores per table (the priority "
                           f"grid), got {scores.shape[1]}")
    out = np.empty((scores.shape[0], data.n_instances), dtype=np.int64)
    args = (scores, data.grid_index, data.items, data.offsets, data.capacity,
            data.smallest, out)
    jobs = resolve_jobs(n_jobs)
    if jobs > 1 and scores.shape[0] > 1:
        numba.set_num_threads(jobs)
        kern.bins_batch_parallel(*args)
    else:
        kern.bins_batch_serial(*args)
    return out


def excess_percent(bins: np.ndarray, data: Instances) -> np.ndarray:
    """Mean over instances of 100 * (bins - L1) / L1, one value per row of `bins`."""
    l1 = data.l1_bounds.astype(np.float64)
    return np.mean(100.0 * (bins - l1) / l1, axis=1)


def best_fit_scores(data: Instances) -> np.ndarray:
    """item - remaining: the tightest bin wins."""
    return data.XT[0] - data.XT[1]


def first_fit_scores(data: Instances) -> np.ndarray:
    """A constant: every fitting bin ties, so the bin opened first wins."""
    return np.zeros(data.XT.shape[1])


@dataclass(frozen=True)
class BinPackProblem(Problem):
    """Evolve a bin-packing priority function; error = excess bins over L1, in %."""

    kind: str = "binpack"
    metric: str = "excess_pct"

    @property
    def n_cases(self) -> int:
        """Items packed per evaluation (all training instances)."""
        return _instances(self, self.train).n_items

    def exhaustive_inputs(self) -> np.ndarray:
        """The priority grid: every (item, remaining, capacity) the simulator asks about."""
        return self.train.X

    def error(self, batch: CompiledBatch, n_jobs: int = 1,
              data: Dataset | None = None) -> np.ndarray:
        """Mean excess % over the instances of `data` (train by default)."""
        d = _instances(self, data or self.train)
        scores = evaluate_features(batch, d.XT, resolve_jobs(n_jobs))
        return excess_percent(bins_used(scores, d, n_jobs), d)

    def baselines(self) -> dict[str, float]:
        """Best fit and first fit on the test instances (train when there are none)."""
        d = _instances(self, self.test or self.train)
        tables = np.stack([best_fit_scores(d), first_fit_scores(d)])
        best, first = excess_percent(bins_used(tables, d), d)
        return {"best-fit": float(best), "first-fit": float(first)}


def _instances(problem: Problem, data: Dataset) -> Instances:
    if not isinstance(data, Instances):
        raise ProblemError(f"problem {problem.name!r}: bin packing needs Instances data, "
                           f"got {type(data).__name__}")
    return data


# ---------------------------------------------------------------------- suite specs


def _int(d: Mapping[str, Any], key: str, where: str, low: int = 1) -> int:
    v = d.get(key)
    if not isinstance(v, int) or isinstance(v, bool) or v < low:
        raise ProblemError(f"{where}: field {key!r}: expected an integer >= {low}, got {v!r}")
    return v


def _sizes(spec: Any, capacity: int, where: str) -> SizeDistribution:
    where = f"{where}: sizes"
    if not isinstance(spec, Mapping):
        raise ProblemError(f"{where}: expected a table like {{ distribution = \"weibull\", "
                           f"shape = 3, scale = 45, low = 1, high = 100 }}")
    allowed = {"distribution", "low", "high", "shape", "scale"}
    if set(spec) - allowed:
        raise ProblemError(f"{where}: unknown field {sorted(set(spec) - allowed)[0]!r}; "
                           f"expected some of {sorted(allowed)}")
    kind = spec.get("distribution")
    if kind not in ("weibull", "uniform"):
        raise ProblemError(f"{where}: field 'distribution': expected 'weibull' or 'uniform', "
                           f"got {kind!r}")
    low, high = _int(spec, "low", where), _int(spec, "high", where)
    if not low <= high <= capacity:
        raise ProblemError(f"{where}: need 1 <= low <= high <= capacity ({capacity}), got "
                           f"low={low}, high={high}")
    extra = {}
    if kind == "weibull":
        for key in ("shape", "scale"):
            v = spec.get(key)
            if not isinstance(v, int | float) or isinstance(v, bool) or not v > 0:
                raise ProblemError(f"{where}: field {key!r}: expected a number > 0, got {v!r}")
            extra[key] = float(v)
    return SizeDistribution(kind, low, high, **extra)


def _instance_set(spec: Any, sizes: SizeDistribution, capacity: int, where: str) -> Instances:
    if not isinstance(spec, Mapping) or set(spec) != {"instances", "items", "seed"}:
        raise ProblemError(f"{where}: expected a table {{ instances = N, items = N, "
                           f"seed = N }}, got {spec!r}")
    return Instances.draw(sizes, capacity, _int(spec, "instances", where),
                          _int(spec, "items", where), _int(spec, "seed", where, low=0))


def build_binpack(d: Mapping[str, Any], *, name: str, suite: str,
                  where: str) -> BinPackProblem:
    """A BinPackProblem from a suite spec: capacity, sizes, train and test instances."""
    capacity = _int(d, "capacity", where)
    sizes = _sizes(d.get("sizes"), capacity, where)
    if "train" not in d:
        raise ProblemError(f"{where}: field 'train' is missing")
    train = _instance_set(d["train"], sizes, capacity, f"{where}: train")
    test = _instance_set(d["test"], sizes, capacity, f"{where}: test") if "test" in d else None
    text = (f"online bin packing, capacity {capacity}, {sizes.kind} sizes "
            f"{sizes.low}..{sizes.high}; {train.n_instances} x "
            f"{train.n_items // train.n_instances} training items")
    return BinPackProblem(
        name=name, grammar=load_grammar(d.get("grammar", "binpack")), train=train, test=test,
        suite=suite, variables=VARIABLES, description=d.get("description", text),
        source=d.get("source", ""), budget=read_budget(d.get("budget", {}), where),
        domain=((float(sizes.low), float(sizes.high)), (0.0, float(capacity)),
                (float(capacity), float(capacity))),
    )


KIND = ProblemKind("binpack", frozenset({"capacity", "sizes"}), build_binpack)
