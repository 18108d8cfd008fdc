"""Problems: what to evolve, on which data, scored how, with which default budget.

problems/*.toml hold one suite each; a problem there is pinned: its target (a formula,
a Boolean function, a packing distribution ...), its sampling with a seed, its grammar
and its provenance. `kind` picks how a spec is built and scored: "regression" here,
the others in hybrid_gp.problem_kinds. Third-party packages add problems through the
entry-point group "hybrid_gp.problems". `Problem.from_data` wraps a user's own X, y.
"""

from __future__ import annotations

import re
import tomllib
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .compiler import CompiledBatch
from .errors import ProblemError
from .evaluation import (
    METRICS,
    as_features,
    as_target,
    get_metric,
    mse_features,
    mse_from_outputs,
)
from .formula import Formula
from .genomes import Genomes
from .grammar import Grammar, load_grammar
from .registry import Registry, data_dir

if TYPE_CHECKING:
    from .program import Program

ENTRY_POINT_GROUP = "hybrid_gp.problems"


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
    restart_after: int = 0  # 0: islands never restart
    restart_gain: float = 0.0  # relative drop of the best error that counts as progress
    restart_keep: str = "front"  # what a restart keeps: "front" or "none"
    semantic_share: float = 0.0  # share of children made by semantic backpropagation


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

    @cached_property
    def y_var(self) -> float:
        """Variance of y (NMSE and R2 divide by it), computed once: errors are converted
        with it every generation."""
        return float(np.var(self.y))

    @classmethod
    def from_arrays(cls, X: np.ndarray, y: np.ndarray) -> Dataset:
        XT = as_features(X, np.dtype(np.float64), allow_nan=False)
        return cls(XT, as_target(y, XT.shape[1]))


@dataclass(frozen=True)
class Problem:
    """A regression task. Other kinds subclass it and override `error` (and `n_cases`,
    `complexity`, `baselines` where they mean something else)."""

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

    @property
    def n_cases(self) -> int:
        """Fitness cases one evaluation looks at (here: training rows)."""
        return self.train.n_rows

    @property
    def squared_error_based(self) -> bool:
        """Whether `error` is this class's own, in a built-in metric (MSE, RMSE, NMSE,
        R2): constant fitting, which minimises squared error and converts it into the
        metric, needs that. A subclass with its own `error` is its own judge."""
        return type(self).error is Problem.error and self.metric in METRICS

    def error(self, batch: CompiledBatch, n_jobs: int = 1,
              data: Dataset | None = None) -> np.ndarray:
        """Error per program on `data` (train by default); lower is better, inf for
        programs with non-finite outputs."""
        d = data or self.train
        return self.error_from_mse(mse_features(batch, d.XT, d.y, n_jobs), d)

    def error_from_mse(self, mse: np.ndarray, data: Dataset | None = None) -> np.ndarray:
        """The built-in error from mean squared errors on `data` (train by default):
        the metric, its sign turned so that lower is better."""
        d = data or self.train
        m = get_metric(self.metric)
        err = m.from_mse(mse, d.y_var)
        return err if m.lower_is_better else -err

    def error_from_outputs(self, outputs: np.ndarray) -> np.ndarray | None:
        """`error` on the training data from the programs' outputs on its rows
        (outputs[:, k] for training row k, float64), the same bits as `error`; None
        when this problem's error is not the built-in one (a subclass's own) or its
        data are not float64. The cache uses it when its probe holds every training
        row, so a new child's error costs no second evaluation."""
        d = self.train
        if type(self).error is not Problem.error or d.XT.dtype != np.float64:
            return None
        return self.error_from_mse(mse_from_outputs(outputs, d.y))

    def exhaustive_inputs(self) -> np.ndarray | None:
        """Every input row the fitness depends on, when that set is finite and small
        (rows, n_features); None when it is not (regression). A functional hash probed
        on these rows cannot merge two programs of different fitness."""
        return None

    def complexity(self, program: Program) -> float:
        """The second objective of the Pareto front (here: the number of nodes)."""
        return float(program.size)

    def complexities(self, programs: Sequence[Program]) -> np.ndarray:
        """`complexity` of each program as float64; node counts in one pass when the
        complexity is the node count (a generation asks for hundreds)."""
        n = len(programs)
        if type(self).complexity is Problem.complexity:
            if isinstance(programs, Genomes):  # read off the offsets: no Program made
                return programs.sizes.astype(np.float64)
            return np.fromiter((len(p.codes) for p in programs), np.float64, n)
        return np.fromiter((self.complexity(p) for p in programs), np.float64, n)

    def baselines(self) -> dict[str, float]:
        """Named reference scores in the units of `error` (on the test data when there
        is some), for reports to print beside a run's result. None for regression."""
        return {}

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
        g = load_grammar(grammar)
        _check_truth_values(g, names, train.XT, train.y)
        _check_scale(train.y)
        lo, hi = train.XT.min(axis=1), train.XT.max(axis=1)
        return cls(name=name, grammar=g, train=train,
                   test=Dataset.from_arrays(*test) if test is not None else None,
                   metric=metric, variables=names, budget=budget or Budget(),
                   domain=tuple(zip(lo.tolist(), hi.tolist(), strict=True)))


def _check_scale(y: np.ndarray) -> None:
    """Squared errors of a target near 1e300 overflow float64, so every program would
    score inf and nothing could be compared: ask for a rescaled target instead."""
    with np.errstate(over="ignore", invalid="ignore"):
        spread = float(np.mean(np.square(y - np.mean(y))))
    if not np.isfinite(spread):
        raise ProblemError(f"target values reach {float(np.max(np.abs(y))):.3g}; their "
                           f"squared errors overflow float64 (its largest value is about "
                           f"1.8e308): rescale the target")


def _check_truth_values(g: Grammar, names: Sequence[str], XT: np.ndarray,
                        y: np.ndarray) -> None:
    """A grammar over truth values reads any nonzero number as true, so on real-valued
    data every program collapses to a handful of functions: refuse that up front."""
    columns = ([(f"column {n!r}", XT[k]) for k, n in enumerate(names)]
               if g.variable_type == "bool" else [])
    if g.output_type == "bool":
        columns.append(("the target", y))
    for name, values in columns:
        other = values[(values != 0.0) & (values != 1.0)]
        if len(other):
            raise ProblemError(
                f"grammar {g.name!r} works on truth values (0 or 1), but {name} holds "
                f"{other[0]:g}; use a grammar over numbers (full, koza, arith) or 0/1 data")


# ---------------------------------------------------------------------- sampling specs


def grid_axis(low: float, high: float, step: float) -> np.ndarray:
    """low, low + step, ... up to high inclusive (computed by index, so no drift)."""
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step}")
    n = int(np.floor((high - low) / step + 1e-9)) + 1
    return low + step * np.arange(max(n, 0))


def sample_inputs(spec: Mapping[str, Any], n_features: int, where: str) -> np.ndarray:
    """Inputs (n_rows, n_features) from a spec: uniform {low, high, n, seed} or
    grid {low, high, step} (the Cartesian product over variables). low/high/step may
    be per-variable lists."""
    if not isinstance(spec, Mapping):
        raise ProblemError(f"{where}: expected a table like {{ kind = \"uniform\", low = -1, "
                           f"high = 1, n = 20, seed = 1 }}, got {spec!r}")
    kind = spec.get("kind")

    def per_var(key: str) -> np.ndarray:
        if key not in spec:
            raise ProblemError(f"{where}: field {key!r} is missing")
        try:
            v = np.asarray(spec[key], dtype=np.float64)
        except (TypeError, ValueError):
            v = np.empty(0)
        if v.ndim == 0:
            v = np.full(n_features, float(v))
        if v.shape != (n_features,):
            raise ProblemError(f"{where}: field {key!r}: expected a number or a list of "
                               f"{n_features}, got {spec[key]!r}")
        return v

    low, high = per_var("low"), per_var("high")
    if np.any(low > high):
        raise ProblemError(f"{where}: field 'low' must be <= 'high' for every variable")
    if kind == "uniform":
        n, seed = spec.get("n"), spec.get("seed")
        if not isinstance(n, int) or n <= 0 or not isinstance(seed, int):
            raise ProblemError(f"{where}: uniform sampling needs integer 'n' > 0 and 'seed'")
        rng = np.random.default_rng(seed)
        return rng.uniform(low, high, size=(n, n_features))
    if kind == "grid":
        step = per_var("step")
        if np.any(step <= 0):
            raise ProblemError(f"{where}: field 'step' must be > 0")
        axes = [grid_axis(lo, hi, st) for lo, hi, st in zip(low, high, step, strict=True)]
        mesh = np.meshgrid(*axes, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)
    raise ProblemError(f"{where}: field 'kind': expected 'uniform' or 'grid', got {kind!r}")


def spec_range(spec: Mapping[str, Any], n_features: int) -> tuple[tuple[float, float], ...]:
    """Per-variable (low, high) of a sampling spec (already validated)."""
    lo = np.asarray(spec["low"], dtype=float) * np.ones(n_features)
    hi = np.asarray(spec["high"], dtype=float) * np.ones(n_features)
    return tuple(zip(lo.tolist(), hi.tolist(), strict=True))


# ---------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class ProblemKind:
    """How specs of one `kind` are built: the fields they may have beyond the common
    ones, and the builder `build(fields, name=, suite=, where=) -> Problem`."""

    name: str
    fields: frozenset[str]
    build: Callable[..., Problem]


COMMON_FIELDS = frozenset({"name", "kind", "grammar", "description", "source", "budget",
                           "train", "test", "metric"})


def need_field(d: Mapping[str, Any], key: str, where: str) -> Any:
    """d[key], or a ProblemError naming the missing field."""
    if key not in d:
        raise ProblemError(f"{where}: field {key!r} is missing")
    return d[key]


def read_budget(data: Any, where: str) -> Budget:
    """A Budget from a spec's [budget] table; unknown fields are refused."""
    if not isinstance(data, Mapping):
        raise ProblemError(f"{where}: budget: expected a table, got {data!r}")
    unknown = set(data) - _BUDGET_FIELDS
    if unknown:
        raise ProblemError(f"{where}: budget: unknown field {sorted(unknown)[0]!r}; expected "
                           f"some of {sorted(_BUDGET_FIELDS)}")
    return Budget(**data)


_BUDGET_FIELDS = set(Budget.__dataclass_fields__)


def build_regression(d: Mapping[str, Any], *, name: str, suite: str, where: str) -> Problem:
    """A regression problem: y = formula(inputs sampled as `train` / `test` say)."""
    variables = d.get("variables", 1)
    if isinstance(variables, int) and variables > 0:
        names = [f"x{k}" for k in range(variables)]
    elif (isinstance(variables, list) and variables
          and all(isinstance(v, str) and v.isidentifier() for v in variables)):
        names = list(variables)
    else:
        raise ProblemError(f"{where}: field 'variables': expected a count or a list of "
                           f"names, got {variables!r}")
    formula = Formula.parse(need_field(d, "formula", where), names)
    train_spec = need_field(d, "train", where)
    X = sample_inputs(train_spec, len(names), f"{where}: train")
    train = Dataset.from_arrays(X, formula.evaluate(X))
    test = None
    if "test" in d:
        Xt = sample_inputs(d["test"], len(names), f"{where}: test")
        test = Dataset.from_arrays(Xt, formula.evaluate(Xt))
    metric = d.get("metric", "mse")
    get_metric(metric)
    return Problem(
        name=name, grammar=load_grammar(d.get("grammar", "full")), train=train, test=test,
        suite=suite, metric=metric, variables=tuple(names), formula=formula,
        description=d.get("description", f"f = {formula.text}"),
        source=d.get("source", ""), budget=read_budget(d.get("budget", {}), where),
        domain=spec_range(train_spec, len(names)),
    )


REGRESSION = ProblemKind("regression", frozenset({"formula", "variables"}), build_regression)


def problem_kinds() -> dict[str, ProblemKind]:
    """Every kind a suite file may name."""
    from .problem_kinds import KINDS

    return {REGRESSION.name: REGRESSION, **{k.name: k for k in KINDS}}


# ---------------------------------------------------------------------- suite files


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
        kinds = problem_kinds()
        kind_name = d.get("kind", "regression")
        if kind_name not in kinds:
            raise ProblemError(f"{where}: field 'kind': expected one of "
                               f"{sorted(kinds)}, got {kind_name!r}")
        kind = kinds[kind_name]
        allowed = COMMON_FIELDS | kind.fields
        for table, label in ((self.data, where), (self.defaults, f"{self.path}: suite")):
            unknown = set(table) - allowed
            if unknown:
                raise ProblemError(f"{label}: unknown field {sorted(unknown)[0]!r} for kind "
                                   f"{kind_name!r}; expected some of {sorted(allowed)}")
        return kind.build(d, name=self.name, suite=self.suite, where=where)


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
        if name != name.lower() or " " in name:
            raise ProblemError(f"{path}: problem {name!r}: names are lower case without "
                               f"spaces (like 'nguyen-7')")
        specs.append(ProblemSpec(name, suite, p, defaults, str(path)))
    return specs


# ---------------------------------------------------------------------- entry points


@dataclass(frozen=True)
class PluginSpec:
    """A problem another package registers in the entry-point group
    "hybrid_gp.problems". The entry point names the problem and points at a Problem
    instance, a Problem subclass with a `build()` classmethod, or a function of no
    arguments that returns a Problem."""

    name: str
    suite: str
    target: Any
    entry_point: str  # "name = module:attr", for messages

    def build(self) -> Problem:
        where = f"entry point {self.entry_point!r} (group {ENTRY_POINT_GROUP})"
        obj = self.target
        try:
            if isinstance(obj, Problem):
                problem = obj
            elif isinstance(obj, type) and issubclass(obj, Problem):
                if not callable(getattr(obj, "build", None)):
                    raise ProblemError(f"{where}: {obj.__name__} needs a classmethod "
                                       f"build() that returns the problem")
                problem = obj.build()
            elif callable(obj):
                problem = obj()
            else:
                raise ProblemError(f"{where}: expected a Problem, a Problem subclass or a "
                                   f"function returning one, got {type(obj).__name__}")
        except ProblemError:
            raise
        except Exception as exc:
            raise ProblemError(f"{where}: building the problem failed: "
                               f"{type(exc).__name__}: {exc}") from exc
        if not isinstance(problem, Problem):
            raise ProblemError(f"{where}: expected a Problem, got {type(problem).__name__}")
        if problem.name != self.name:
            raise ProblemError(f"{where}: the problem is named {problem.name!r}; expected "
                               f"the entry point's name {self.name!r}")
        return problem


def _plugin_specs() -> list[PluginSpec]:
    specs = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        label = f"{ep.name} = {ep.value}"
        try:
            target = ep.load()
        except Exception as exc:  # a broken plugin must not hide the shipped problems
            warnings.warn(f"problem entry point {label!r} (group {ENTRY_POINT_GROUP}) cannot "
                          f"be loaded and is skipped: {type(exc).__name__}: {exc}",
                          stacklevel=3)
            continue
        suite = getattr(target, "suite", None)
        specs.append(PluginSpec(ep.name, suite if isinstance(suite, str) else "plugins",
                                target, label))
    return specs


# ---------------------------------------------------------------------- registry

PROBLEMS: Registry[ProblemSpec | PluginSpec] = Registry("problem")
_BUILT: dict[str, Problem] = {}


def _load_all() -> None:
    for path in sorted(data_dir("problems").glob("*.toml")):
        for spec in read_suite(path):
            PROBLEMS.register(spec.name, spec, tags={spec.suite})
    for plugin in _plugin_specs():
        if plugin.name in PROBLEMS:
            warnings.warn(f"problem entry point {plugin.entry_point!r} is skipped: a problem "
                          f"named {plugin.name!r} already exists", stacklevel=3)
            continue
        PROBLEMS.register(plugin.name, plugin, tags={plugin.suite, "plugins"})


def reload_problems() -> None:
    """Forget every problem and read the suites and entry points again (after
    installing a plugin into a running interpreter)."""
    PROBLEMS.__init__(PROBLEMS.kind)  # in place: other modules hold this object
    _BUILT.clear()


def list_problems(suite: str | None = None) -> list[str]:
    """Names of the shipped (and plugged-in) problems, optionally of one suite."""
    PROBLEMS.ensure_loaded(_load_all)
    names = PROBLEMS.names(tag=suite)
    if suite is not None and not names:
        raise ProblemError(f"unknown suite {suite!r}; expected one of: "
                           f"{', '.join(list_suites())}")
    return sorted(names, key=_natural)


def list_suites() -> list[str]:
    """Names of the suites (nguyen, keijzer, ..., plugins when a plugin is installed)."""
    PROBLEMS.ensure_loaded(_load_all)
    return sorted({t for n in PROBLEMS.names() for t in PROBLEMS.tags(n)})


def _natural(name: str) -> tuple[Any, ...]:
    """Sort key that orders digit runs by value: nguyen-2 before nguyen-10."""
    return tuple(int(part) if k % 2 else part
                 for k, part in enumerate(re.split(r"(\d+)", name)))


def get_problem(name: str | Problem) -> Problem:
    """A problem by name (data sampled from its pinned seeds); names are matched
    without regard to case."""
    if isinstance(name, Problem):
        return name
    PROBLEMS.ensure_loaded(_load_all)
    if name not in PROBLEMS and isinstance(name, str) and name.lower() in PROBLEMS:
        name = name.lower()
    if name not in _BUILT:
        _BUILT[name] = PROBLEMS.get(name).build()
    return _BUILT[name]
