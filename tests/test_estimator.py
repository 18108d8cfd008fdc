"""SymbolicRegressor: scikit-learn's estimator checks, fit/predict/score, the Pareto
front, sympy()/latex(), reproducibility, and clear errors for bad X and y (also in
hg.fitness)."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import sympy as sp
from readings import plain_rows, stable_rows, sympy_values
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import hybrid_gp as hg
from hybrid_gp.errors import ConfigError, DataError, UnknownNameError


def tiny(**kw) -> hg.SymbolicRegressor:
    """A budget small enough for the whole sklearn check suite to run in seconds."""
    return hg.SymbolicRegressor(**{"population_size": 30, "max_evaluations": 600,
                                   "random_state": 0, **kw})


# No expected failures: every check sklearn runs on a regressor passes. (One check,
# check_array_api_input, is skipped by sklearn itself unless SCIPY_ARRAY_API=1.)
@parametrize_with_checks([tiny()])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(42).uniform(-2, 2, size=(60, 2))
    return X, X[:, 0] * X[:, 1] + X[:, 0]


@pytest.fixture(scope="module")
def fitted(data) -> hg.SymbolicRegressor:
    X, y = data
    return hg.SymbolicRegressor(grammar="koza", population_size=60, max_evaluations=1500,
                                random_state=0).fit(X, y)


def test_fit_returns_the_estimator_with_its_fitted_attributes(data):
    X, y = data
    est = tiny(max_evaluations=100)
    assert est.fit(X, y) is est
    assert est.n_features_in_ == 2
    assert isinstance(est.program_, hg.Program)
    assert est.run_.stats["evaluations"] <= 100


def test_predict_is_the_program_on_X_and_score_is_r2(fitted, data):
    X, y = data
    pred = fitted.predict(X)
    assert pred.shape == (len(X),)
    np.testing.assert_array_equal(pred, fitted.program_.evaluate(X))
    assert fitted.score(X, y) == pytest.approx(r2_score(y, pred))


def test_the_best_program_is_the_most_accurate_end_of_the_pareto_front(fitted, data):
    X, y = data
    front = fitted.pareto_front_
    complexity = [c for c, _, _ in front]
    errors = [e for _, e, _ in front]
    assert complexity == sorted(complexity) and len(set(complexity)) == len(complexity)
    assert all(e1 > e2 for e1, e2 in itertools.pairwise(errors))
    assert front[-1][2] == fitted.program_
    for c, e, p in front:  # each entry is what its program scores on the training data
        assert c == p.size
        assert e == pytest.approx(hg.fitness([p], X, y, metric="mse")[0], rel=1e-9)


def test_sympy_and_latex_describe_the_chosen_program(fitted, data):
    X, _ = data
    expr = fitted.sympy()
    assert isinstance(expr, sp.Expr)
    assert fitted.latex() == sp.latex(expr)
    assert expr.free_symbols <= {sp.Symbol("x0", real=True), sp.Symbol("x1", real=True)}
    p = fitted.program_
    rows = plain_rows(p, X) & stable_rows(p, X)
    assert rows.any()
    values = np.asarray(sympy_values(expr, X), dtype=complex)
    # constants are rounded to 6 significant digits for reading
    np.testing.assert_allclose(values[rows].real, fitted.predict(X)[rows], rtol=1e-4,
                               atol=1e-6)


def test_sympy_speaks_the_column_names_of_a_dataframe(data):
    import pandas as pd

    X, y = data
    frame = pd.DataFrame(X, columns=["x1", "mass"])  # a name that is another x_i, too
    est = hg.SymbolicRegressor(grammar="koza", population_size=60, max_evaluations=1500,
                               random_state=0).fit(frame, y)
    plain = hg.SymbolicRegressor(grammar="koza", population_size=60, max_evaluations=1500,
                                 random_state=0).fit(X, y)
    x0, x1 = sp.Symbol("x0", real=True), sp.Symbol("x1", real=True)
    renamed = plain.sympy().xreplace({x0: sp.Symbol("x1", real=True),
                                      x1: sp.Symbol("mass", real=True)})
    assert est.sympy() == renamed
    assert "mass" in est.latex()


def test_sympy_of_a_formula_with_constants(data):
    X, y = data
    est = hg.SymbolicRegressor(population_size=40, max_evaluations=400,
                               random_state=1).fit(X, 2.5 * y - 1.0)
    p = est.program_
    rows = plain_rows(p, X) & stable_rows(p, X)
    assert rows.any()
    values = np.asarray(sympy_values(est.sympy(), X), dtype=complex)
    np.testing.assert_allclose(values[rows].real, est.predict(X)[rows], rtol=1e-4,
                               atol=1e-6, err_msg=f"{p} -> {est.sympy()}")


def test_the_same_random_state_gives_the_same_program(data):
    X, y = data
    a = tiny(population_size=30, max_evaluations=300, random_state=7).fit(X, y)
    b = tiny(population_size=30, max_evaluations=300, random_state=7).fit(X, y)
    assert a.program_ == b.program_
    assert [(c, e, str(p)) for c, e, p in a.pareto_front_] == [
        (c, e, str(p)) for c, e, p in b.pareto_front_]


def test_the_result_does_not_depend_on_n_jobs(data):
    X, y = data
    a = tiny(population_size=30, max_evaluations=300, random_state=3, n_jobs=1).fit(X, y)
    b = tiny(population_size=30, max_evaluations=300, random_state=3, n_jobs=2).fit(X, y)
    assert a.program_ == b.program_


def test_a_generator_as_random_state_is_accepted_and_reproducible(data):
    X, y = data
    a = tiny(random_state=np.random.default_rng(5)).fit(X, y)
    b = tiny(random_state=np.random.default_rng(5)).fit(X, y)
    assert a.program_ == b.program_


def test_search_settings_reach_the_run(data):
    X, y = data
    est = tiny(search={"selection": "lexicase", "islands": 2, "migration_interval": 3})
    search = est.fit(X, y).run_.config.search
    assert (search.selection, search.islands, search.migration_interval) == ("lexicase", 2, 3)
    assert est.get_params()["search"] == {"selection": "lexicase", "islands": 2,
                                          "migration_interval": 3}


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"islandz": 2}, "unknown search setting 'islandz'; did you mean 'islands'"),
        ({"population_size": 10}, r"set population_size with SymbolicRegressor\(population"),
        ([("islands", 2)], "search must be a dict of search settings, got list"),
        ({"selection": "best"}, "selection"),
    ],
)
def test_bad_search_settings_are_refused_by_fit(data, search, message):
    X, y = data
    with pytest.raises(ConfigError, match=message):
        tiny(search=search).fit(X, y)


# ---------------------------------------------------------------------- bad parameters


def refused(param: str, value: object) -> str:
    """The start of fit's message for a bad parameter: its name, then its value."""
    return rf"^{param} must be .*, got {re.escape(repr(value))}$"


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("population_size", 1), ("population_size", 0), ("population_size", 30.0),
        ("population_size", True), ("population_size", "30"), ("population_size", None),
        ("max_evaluations", 0), ("max_evaluations", -1), ("max_evaluations", "abc"),
        ("max_evaluations", 200.0), ("max_evaluations", True),
        ("generations", 0), ("generations", -2), ("generations", 1.5), ("generations", True),
        ("max_depth", 0), ("max_depth", -1), ("max_depth", 3.5), ("max_depth", None),
        ("max_size", 0), ("max_size", None), ("max_size", False),
    ],
)
def test_a_bad_count_is_refused_by_fit(data, param, value):
    X, y = data
    with pytest.raises(ConfigError, match=refused(param, value)) as err:
        tiny(**{param: value}).fit(X, y)
    assert isinstance(err.value, ValueError)  # sklearn's convention for a bad parameter
    assert "an integer >=" in str(err.value)


@pytest.mark.parametrize("value", [-1, 0, -0.5, float("nan"), "10", True])
def test_a_bad_time_budget_is_refused_by_fit(data, value):
    X, y = data
    with pytest.raises(ConfigError, match=refused("time_budget", value)):
        tiny(time_budget=value).fit(X, y)


def test_a_fit_without_any_budget_is_refused_rather_than_run_forever(data):
    X, y = data
    with pytest.raises(ConfigError, match="max_evaluations, time_budget and generations are "
                                          "all None"):
        tiny(max_evaluations=None, time_budget=None, generations=None).fit(X, y)


def test_a_population_no_larger_than_elitism_is_refused_naming_both(data):
    """A population of 2-5 leaves no children beside the 5 elites; the message says
    so in the estimator's terms, and lowering elitism (one island: migration is moot)
    makes the small population work."""
    X, y = data
    with pytest.raises(ConfigError, match=r"population_size 3 .* search\.elitism=5 .* "
                                          r"above 5"):
        hg.SymbolicRegressor(population_size=3, generations=2, max_evaluations=None).fit(X, y)
    est = hg.SymbolicRegressor(population_size=3, generations=2, max_evaluations=None,
                               search={"elitism": 1}).fit(X, y)
    assert est.run_.stats["generations"] == 2


@pytest.mark.parametrize("value", ["x", -1, 1.5, True, [1, 2]])
def test_a_bad_random_state_is_refused_by_fit(data, value):
    X, y = data
    with pytest.raises(ConfigError, match=refused("random_state", value)) as err:
        tiny(random_state=value).fit(X, y)
    assert "an integer >= 0, a numpy Generator or a numpy RandomState" in str(err.value)


def test_a_random_state_object_is_accepted_and_reproducible(data):
    X, y = data
    a = tiny(max_evaluations=200, random_state=np.random.RandomState(5)).fit(X, y)
    b = tiny(max_evaluations=200, random_state=np.random.RandomState(5)).fit(X, y)
    assert a.program_ == b.program_


@pytest.mark.parametrize("value", [0, 1.5, True, "2"])
def test_a_bad_n_jobs_is_refused_by_fit(data, value):
    X, y = data
    with pytest.raises(ConfigError, match=refused("n_jobs", value)):
        tiny(n_jobs=value).fit(X, y)


def test_numpy_integers_and_n_jobs_none_are_accepted(data):
    """What a grid search over np.arange passes, and sklearn's n_jobs=None."""
    X, y = data
    est = tiny(population_size=np.int64(30), max_evaluations=np.int64(200),
               max_depth=np.int32(8), random_state=np.int64(3), n_jobs=None).fit(X, y)
    assert est.run_.stats["evaluations"] <= 200
    assert est.run_.config.n_jobs == 1


@pytest.mark.parametrize("value", [3, None, ["koza"]])
def test_a_grammar_that_is_not_a_name_path_or_grammar_is_refused_by_fit(data, value):
    X, y = data
    with pytest.raises(ConfigError, match=refused("grammar", value)):
        tiny(grammar=value).fit(X, y)


def test_an_unknown_grammar_name_is_refused_by_fit(data):
    X, y = data
    with pytest.raises(UnknownNameError, match="unknown grammar 'nope'") as err:
        tiny(grammar="nope").fit(X, y)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("max_depth", [1, 2, 3])
def test_a_max_depth_below_the_initial_depth_lowers_the_initial_trees(data, max_depth):
    X, y = data
    # generations bounds the run: at depth 1 koza has fewer distinct functions than 200,
    # and cache hits do not count towards max_evaluations
    est = tiny(grammar="koza", max_evaluations=200, generations=10,
               max_depth=max_depth).fit(X, y)
    assert all(p.depth <= max_depth for _, _, p in est.pareto_front_)


def test_parameters_are_checked_before_the_data(data):
    X, y = data
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ConfigError, match=refused("max_evaluations", 0)):
        tiny(max_evaluations=0).fit(bad, y)


def test_init_clone_and_set_params_store_bad_parameters_and_fit_refuses_them(data):
    """sklearn: __init__ and set_params only store; the check is fit's."""
    X, y = data
    est = tiny(max_evaluations="abc", random_state="x")
    assert est.get_params()["max_evaluations"] == "abc"
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    with pytest.raises(ConfigError, match=refused("max_evaluations", "abc")):
        copy.fit(X, y)
    good = clone(tiny()).set_params(generations=0)
    assert good.get_params()["generations"] == 0
    with pytest.raises(ConfigError, match=refused("generations", 0)):
        good.fit(X, y)


# ---------------------------------------------------------------------- bad input


def test_nan_in_X_is_refused_by_fit(data):
    X, y = data
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tiny().fit(bad, y)


def test_X_and_y_of_different_lengths_are_refused_by_fit(data):
    X, y = data
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[60, 59\]"):
        tiny().fit(X, y[:-1])


def test_predict_needs_a_fit_and_the_same_columns(fitted, data):
    X, _ = data
    with pytest.raises(NotFittedError):
        tiny().predict(X)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :1])


def test_fitness_refuses_X_and_y_of_different_lengths(data):
    X, y = data
    p = hg.Program.parse("x0 * x1", grammar="koza")
    with pytest.raises(DataError, match="X has 60 rows but y has 59"):
        hg.fitness([p], X, y[:-1])


def test_fitness_refuses_nan_in_y(data):
    X, y = data
    p = hg.Program.parse("x0 * x1", grammar="koza")
    bad = y.copy()
    bad[0] = np.nan
    with pytest.raises(DataError, match="y has 1 NaN or inf"):
        hg.fitness([p], X, bad)


def test_fitness_refuses_nan_in_X(data):
    X, y = data
    p = hg.Program.parse("x0 * x1", grammar="koza")
    bad = X.copy()
    bad[2, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        hg.fitness([p], bad, y)
