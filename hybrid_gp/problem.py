"""Problems: what to evolve, on which data, scored how, with which default budget.

problems/*.toml hold one suite each; a problem there is pinned: its formula, its
sampling with a seed, its grammar and its provenance. `Problem.from_data` wraps a
user's own X, y.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .compiler import CompiledBatch
from .errors import ProblemError
from .evaluation import as_features, as_target, get_metric, mse_features
from .formula import Formula
from .grammar import Grammar, load_grammar
from .registry import Registry, data_dir


@dataclass(frozen=True)
class Budget:
    """Default search settings a problem suggests; a run may override each."""

    population_size: int = 500
    max_evaluations: int | None = 500_000
    generations: int | None = None
    time_budget: float | None = 60.0
    target_error: float = 1e-12
    max_depth: int = 12
    max_size: int = 60


@dataclass(frozen=True)
class Dataset:
    """Feature-major inputs and targets, ready for the kernels."""

    XT: np.ndarray  # (n_features, n_rows), float64, C-contiguous
    y: np.ndarray  # (n_rows,)

    @property
    def X(self) -> np.ndarray:
        return self.XT.T

    @property
    def n_rows(self) -> int:
        return self.XT.shape[1]

    @classmethod
    def from_arrays(cls, X: np.ndarray, y: np.ndarray) -> Dataset:
        XT = as_features(X, np.dtype(np.float64), allow_nan=False)
        return cls(XT, as_target(y, XT.shape[1]))


@dataclass(frozen=True)
class Problem:
    """A regression task (other kinds subclass it and override `error`)."""

    name: str
    grammar: Grammar
    train: Dataset
    test: Dataset | None = None
    suite: str = "user"
    kind: str = "regression"
    metric: str = "mse"
    variables: tuple[str, ...] = ()
    formula: Formula | None = None
    description: str = ""
    source: str = ""
    budget: Budget = field(default_factory=Budget)
    domain: tuple[tuple[float, float], ...] = ()  # per-feature input range, for probes

    @property
    def n_features(self) -> int:
        return self.train.XT.shape[0]

    def error(self, batch: CompiledBatch, n_jobs: int = 1,
              data: Dataset | None = None) -> np.ndarray:
        """Error per program on `data` (train by default); lower is better, inf for
        programs with non-finite outputs."""
        d = data or self.train
        mse = mse_features(batch, d.XT, d.y, n_jobs)
        m = get_metric(self.metric)
        err = m.from_mse(mse, float(np.var(d.y)))
        return err if m.lower_is_better else -err

    def with_budget(self, **changes: Any) -> Problem:
        return replace(self, budget=replace(self.budget, **changes))

    @classmethod
    def from_data(cls, X: np.ndarray, y: np.ndarray, grammar: Grammar | str = "full",
                  name: str = "data", variables: Sequence[str] | None = None,
                  metric: str = "mse", test: tuple[np.ndarray, np.ndarray] | None = None,
                  budget: Budget | None = None) -> Problem:
        """A problem over the user's own arrays (finite values; y has one row per X row)."""
        train = Dataset.from_arrays(X, y)
        get_metric(metric)
        names = tuple(variables) if variables else tuple(f"x{k}" for k in
                                                         range(train.XT.shape[0]))
        if len(names) != train.XT.shape[0]:
            raise ProblemError(f"{len(names)} variable names for {train.XT.shape[0]} columns")
        lo, hi = train.XT.min(axis=1), train.XT.max(axis=1)
        return cls(name=name, grammar=load_grammar(grammar), train=train,
                   test=Dataset.from_arrays(*test) if test is not None else None,
                   metric=metric, variables=names, budget=budget or Budget(),
                   domain=tuple(zip(lo.tolist(), hi.tolist(), strict=True)))


# ---------------------------------------------------------------------- sampling specs


def sample_inputs(spec: Mapping[str, Any], n_features: int, where: str) -> np.ndarray:
    """Inputs (n_rows, n_features) from a spec: uniform {low, high, n, seed} or
    grid {low, high, step}. low/high/step may be per-variable lists."""
    kind = spec.get("kind")

    def per_var(key: str) -> np.ndarray:
        if key not in spec:
            raise ProblemError(f"{where}: field {key!r} is missing")
        v = np.asarray(spec[key], dtype=np.float64)
        if v.ndim == 0:
            v = np.full(n_features, float(v))
        if v.shape != (n_features,):
            raise ProblemError(f"{where}: field {key!r}: expected a number or a list of "
                               f"{n_features}, got {spec[key]!r}")
        return v

    low, high = per_var("low"), per_var("high")
    if kind == "uniform":
        n, seed = spec.get("n"), spec.get("seed")
        if not isinstance(n, int) or n <= 0 or not isinstance(seed, int):
            raise ProblemError(f"{where}: uniform sampling needs integer 'n' > 0 and 'seed'")
        rng = np.random.default_rng(seed)
        return rng.uniform(low, high, size=(n, n_features))
    if kind == "grid":
        step = per_var("step")
        axes = [np.arange(lo, hi + st / 2, st) for lo, hi, st in zip(low, high, step,
                                                                     strict=True)]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)
    raise ProblemError(f"{where}: field 'kind': expected 'uniform' or 'grid', got {kind!r}")


# ---------------------------------------------------------------------- suite files

_PROBLEM_FIELDS = {"name", "formula", "variables", "train", "test", "grammar", "metric",
                   "description", "budget", "source", "kind"}
_BUDGET_FIELDS = set(Budget.__dataclass_fields__)


@dataclass(frozen=True)
class ProblemSpec:
    """A problem as written in a suite file; `build()` samples its data."""

    name: str
    suite: str
    data: Mapping[str, Any]
    defaults: Mapping[str, Any]
    path: str

    def build(self) -> Problem:
        where = f"{self.path}: problem {self.name!r}"
        d = {**self.defaults, **self.data}
        unknown = set(self.data) - _PROBLEM_FIELDS
        if unknown:
            raise ProblemError(f"{where}: unknown field {sorted(unknown)[0]!r}; expected some "
                               f"of {sorted(_PROBLEM_FIELDS)}")
        kind = d.get("kind", "regression")
        if kind != "regression":
            raise ProblemError(f"{where}: field 'kind': expected 'regression', got {kind!r}")
        variables = d.get("variables", 1)
        names = ([f"x{k}" for k in range(variables)] if isinstance(variables, int)
                 else list(variables))
        formula = Formula.parse(_need(d, "formula", where), names)
        X = sample_inputs(_need(d, "train", where), len(names), f"{where}: train")
        test = None
        if "test" in d:
            Xt = sample_inputs(d["test"], len(names), f"{where}: test")
            test = Dataset.from_arrays(Xt, formula.evaluate(Xt))
        budget = _budget(d.get("budget", {}), where)
        train = Dataset.from_arrays(X, formula.evaluate(X))
        lo = np.asarray(d["train"].get("low"), dtype=float) * np.ones(len(names))
        hi = np.asarray(d["train"].get("high"), dtype=float) * np.ones(len(names))
        return Problem(
            name=self.name, grammar=load_grammar(d.get("grammar", "full")), train=train,
            test=test, suite=self.suite, metric=d.get("metric", "mse"),
            variables=tuple(f"x{k}" for k in range(len(names))), formula=formula,
            description=d.get("description", f"f = {formula.text}"),
            source=d.get("source", ""), budget=budget,
            domain=tuple(zip(lo.tolist(), hi.tolist(), strict=True)),
        )


def _need(d: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in d:
        raise ProblemError(f"{where}: field {key!r} is missing")
    return d[key]


def _budget(data: Mapping[str, Any], where: str) -> Budget:
    unknown = set(data) - _BUDGET_FIELDS
    if unknown:
        raise ProblemError(f"{where}: budget: unknown field {sorted(unknown)[0]!r}; expected "
                           f"some of {sorted(_BUDGET_FIELDS)}")
    return Budget(**data)


def read_suite(path: str | Path) -> list[ProblemSpec]:
    """The problem specs of one suite file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProblemError(f"{path}: cannot read problem suite: {exc}") from None
    suite = data.get("suite", path.stem)
    defaults = {k: v for k, v in data.items() if k not in ("suite", "problem", "about")}
    problems = data.get("problem", [])
    if not isinstance(problems, list):
        raise ProblemError(f"{path}: 'problem' must be a list of [[problem]] tables")
    specs = []
    for k, p in enumerate(problems):
        name = p.get("name") if isinstance(p, Mapping) else None
        if not isinstance(name, str):
            raise ProblemError(f"{path}: problem #{k + 1}: field 'name' is missing")
        specs.append(ProblemSpec(name, suite, p, defaults, str(path)))
    return specs


PROBLEMS: Registry[ProblemSpec] = Registry("problem")


def _load_builtin() -> None:
    for path in sorted(data_dir("problems").glob("*.toml")):
        for spec in read_suite(path):
            PROBLEMS.register(spec.name, spec, tags={spec.suite})


def list_problems(suite: str | None = None) -> list[str]:
    """Names of the shipped problems, optionally of one suite ("nguyen", ...)."""
    PROBLEMS.ensure_loaded(_load_builtin)
    names = PROBLEMS.names(tag=suite)
    if suite is not None and not names:
        suites = sorted({t for n in PROBLEMS.names() for t in PROBLEMS.tags(n)})
        raise ProblemError(f"unknown suite {suite!r}; expected one of: {', '.join(suites)}")
    return sorted(names, key=_natural)


def _natural(name: str) -> tuple[Any, ...]:
    head, _, tail = name.rpartition("-")
    return (head, int(tail)) if tail.isdigit() else (name, 0)


_BUILT: dict[str, Problem] = {}


def get_problem(name: str) -> Problem:
    """A shipped problem by name (data sampled from its pinned seed)."""
    if isinstance(name, Problem):
        return name
    PROBLEMS.ensure_loaded(_load_builtin)
    if name not in _BUILT:
        _BUILT[name] = PROBLEMS.get(name).build()
    return _BUILT[name]
