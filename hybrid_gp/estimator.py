"""SymbolicRegressor: the scikit-learn face of `hg.run`."""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np
import sympy as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .api import check_budget, make_config, run_config
from .config import RunConfig
from .convert import readable_sympy
from .errors import ConfigError
from .grammar import Grammar, load_grammar
from .llm.config import LLMConfig
from .problem import Budget, Problem
from .search.archive import choose_by_bic


class SymbolicRegressor(RegressorMixin, BaseEstimator):
    """Find a formula y ~ f(X) by genetic programming (and LLM rewrites, with `llm`).

    Parameters are stored as given; `fit` validates them. `max_evaluations` counts
    real evaluations (cache hits are free); `time_budget` is in seconds. With
    random_state fixed, the result does not depend on n_jobs.

    `program_` is chosen from the Pareto front by the Bayesian information criterion
    (hybrid_gp.search.archive.choose_by_bic): the most accurate program unless a
    simpler one is almost as good.

    Fitted attributes: `program_` (the chosen Program), `pareto_front_` (list of
    (complexity, error, Program), simplest first), `run_` (the RunResult),
    `n_features_in_`, `feature_names_in_` (when X has column names).

    `search` takes any other setting `hg.run` takes as a keyword (a dict such as
    {"selection": "lexicase", "islands": 4, "fit_share": 0.2}; the list is
    hybrid_gp.api.search_settings()); the budget and size settings above are set
    through their own parameters.
    """

    def __init__(self, *, grammar: str = "full", population_size: int = 500,
                 max_evaluations: int | None = 100_000, time_budget: float | None = None,
                 generations: int | None = None, max_depth: int = 12, max_size: int = 60,
                 random_state: int | np.random.Generator | np.random.RandomState | None = None,
                 n_jobs: int | None = 1, llm: Any = None, search: dict[str, Any] | None = None):
        self.grammar = grammar
        self.population_size = population_size
        self.max_evaluations = max_evaluations
        self.time_budget = time_budget
        self.generations = generations
        self.max_depth = max_depth
        self.max_size = max_size
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.llm = llm
        self.search = search

    def fit(self, X: Any, y: Any) -> SymbolicRegressor:
        """Search for a formula y ~ f(X). Every parameter is checked first, before X and
        y are read: a bad one raises a ValueError (ConfigError; UnknownNameError for an
        unknown grammar) naming it, its value and what was expected."""
        grammar, config = self._checked_config()
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        budget = Budget(population_size=int(self.population_size),
                        max_evaluations=_int_or_none(self.max_evaluations),
                        generations=_int_or_none(self.generations),
                        time_budget=(None if self.time_budget is None
                                     else float(self.time_budget)),
                        max_depth=int(self.max_depth), max_size=int(self.max_size),
                        target_error=0.0)
        problem = Problem.from_data(X, y, grammar=grammar, name=_PROBLEM, budget=budget)
        result = run_config(config, problem=problem)
        self.run_ = result
        self.pareto_front_ = result.pareto_front
        self.program_ = choose_by_bic(result.pareto_front, len(y), float(np.var(y)))
        if self.program_ is None:  # nothing finite was found: keep the least bad
            self.program_ = result.best
        return self

    def _checked_config(self) -> tuple[Grammar, RunConfig]:
        """Check every constructor parameter (sklearn wants __init__ to only store them,
        so this runs at fit) and build the run's config; no data is touched yet."""
        _check_count("population_size", self.population_size, minimum=2)
        _check_count("max_evaluations", self.max_evaluations, optional=True)
        check_budget("time_budget", self.time_budget, numbers.Real)
        _check_count("generations", self.generations, optional=True)
        if self.max_evaluations is None and self.time_budget is None and self.generations is None:
            raise ConfigError("max_evaluations, time_budget and generations are all None: "
                              "set at least one, or the search never stops")
        _check_count("max_depth", self.max_depth)
        _check_count("max_size", self.max_size)
        _check_random_state(self.random_state)
        n_jobs = self.n_jobs
        if n_jobs is not None and (isinstance(n_jobs, bool)
                                   or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0):
            raise ConfigError(f"n_jobs must be a non-zero integer (-1: all cores) or None, got "
                              f"{n_jobs!r}")
        if self.llm is not None and not isinstance(self.llm, LLMConfig):
            raise ConfigError(f"llm must be a hybrid_gp.LLMConfig, got "
                              f"{type(self.llm).__name__}")
        if not isinstance(self.grammar, str | os.PathLike | Grammar):
            raise ConfigError(f"grammar must be a grammar name (hybrid_gp.list_grammars()), a "
                              f".toml path or a hybrid_gp.Grammar, got {self.grammar!r}")
        grammar = load_grammar(self.grammar)  # an unknown name fails here, naming it
        search = _search_settings(self.search)
        config = make_config(_PROBLEM, _seed(self.random_state),
                             n_jobs=1 if n_jobs is None else int(n_jobs), **search)
        if self.llm is not None:
            config = config.clone(override={"llm": self.llm})
        return grammar, config

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "program_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.program_.evaluate(X)

    def sympy(self) -> sp.Expr:
        """The chosen program as a simplified sympy expression, in the column names of
        the X it was fitted on when X had them (x0, x1, ... otherwise)."""
        check_is_fitted(self, "program_")
        expr = readable_sympy(self.program_)
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return expr
        rename = {}
        for s in expr.free_symbols:
            if s.name[:1] == "x" and s.name[1:].isdigit() and int(s.name[1:]) < len(names):
                rename[s] = sp.Symbol(str(names[int(s.name[1:])]), real=True)
        return expr.xreplace(rename)

    def latex(self) -> str:
        return sp.latex(self.sympy())

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


_PROBLEM = "data"  # the name of the problem a fit makes of X and y

_OWN = ("population_size", "max_evaluations", "generations", "time_budget", "max_depth",
        "max_size")


def _search_settings(search: Any) -> dict[str, Any]:
    """The `search` parameter checked: a dict of search settings other than the ones
    the estimator has parameters for."""
    if search is None:
        return {}
    if not isinstance(search, dict):
        raise ConfigError(f"search must be a dict of search settings, got "
                          f"{type(search).__name__}")
    for name in search:
        if name in _OWN:
            raise ConfigError(f"set {name} with SymbolicRegressor({name}=...), not "
                              f"through search")
    return dict(search)


def _check_count(name: str, value: Any, minimum: int = 1, optional: bool = False) -> None:
    """Refuse a count that is not an integer >= minimum (or None, when optional). A bool
    is not a count, though Python calls it an int; numpy integers are (grid searches
    pass them)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        expected = f"an integer >= {minimum}" + (" or None" if optional else "")
        raise ConfigError(f"{name} must be {expected}, got {value!r}")


def _check_random_state(value: Any) -> None:
    """Refuse a random_state `_seed` cannot turn into a root seed."""
    if value is None or isinstance(value, np.random.Generator | np.random.RandomState):
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ConfigError(f"random_state must be None, an integer >= 0, a numpy Generator or "
                          f"a numpy RandomState, got {value!r}")


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _seed(random_state: int | np.random.Generator | np.random.RandomState | None) -> int:
    """An int root seed; None draws fresh entropy from the OS (not a global RNG)."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31))
    return int(random_state)
