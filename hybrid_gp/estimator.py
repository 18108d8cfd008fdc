"""SymbolicRegressor: the scikit-learn face of `hg.run`."""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from .api import make_config, run_config
from .convert import readable_sympy
from .errors import ConfigError
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
                 random_state: int | np.random.Generator | None = None, n_jobs: int = 1,
                 llm: Any = None, search: dict[str, Any] | None = None):
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
        X, y = validate_data(self, X, y, y_numeric=True, dtype=np.float64)
        budget = Budget(population_size=self.population_size,
                        max_evaluations=self.max_evaluations, generations=self.generations,
                        time_budget=self.time_budget, max_depth=self.max_depth,
                        max_size=self.max_size, target_error=0.0)
        problem = Problem.from_data(X, y, grammar=self.grammar, budget=budget)
        config = make_config(problem.name, _seed(self.random_state), n_jobs=self.n_jobs,
                             **_search_settings(self.search))
        if self.llm is not None:
            if not isinstance(self.llm, LLMConfig):
                raise ConfigError(f"llm must be a hybrid_gp.LLMConfig, got "
                                  f"{type(self.llm).__name__}")
            config = config.clone(override={"llm": self.llm})
        result = run_config(config, problem=problem)
        self.run_ = result
        self.pareto_front_ = result.pareto_front
        self.program_ = choose_by_bic(result.pareto_front, len(y), float(np.var(y)))
        if self.program_ is None:  # nothing finite was found: keep the least bad
            self.program_ = result.best
        return self

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


def _seed(random_state: int | np.random.Generator | np.random.RandomState | None) -> int:
    """An int root seed; None draws fresh entropy from the OS (not a global RNG)."""
    if random_state is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31))
    return int(random_state)
