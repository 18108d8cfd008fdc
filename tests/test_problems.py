"""The problem suite: registry, pinned specs, regression targets, spec errors, entry
point plugins, and docs/problems.md."""

from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import hybrid_gp as hg
from hybrid_gp.compiler import compile_batch
from hybrid_gp.errors import ConfigError, ProblemError
from hybrid_gp.evaluation import evaluate_features
from hybrid_gp.formula import Formula, _harmonic
from hybrid_gp.problem import (
    PROBLEMS,
    Dataset,
    Problem,
    ProblemSpec,
    grid_axis,
    list_suites,
    read_suite,
    reload_problems,
)

ROOT = Path(__file__).resolve().parent.parent
SUITE_SIZES = {"nguyen": 12, "keijzer": 15, "korns": 12, "vlad": 8, "pagie": 1,
               "boolean": 5, "binpack": 2, "exp2": 1}


def _regression_names() -> list[str]:
    return [n for n in hg.list_problems() if hg.get_problem(n).kind == "regression"]


# ---------------------------------------------------------------------- registry


def test_every_suite_holds_its_problems():
    for suite, size in SUITE_SIZES.items():
        assert len(hg.list_problems(suite)) == size, suite
    assert len(hg.list_problems("feynman")) >= 20
    assert hg.list_problems("keijzer")[:3] == ["keijzer-1", "keijzer-2", "keijzer-3"]
    assert hg.list_problems("keijzer")[-1] == "keijzer-15"  # natural order
    assert set(SUITE_SIZES) | {"feynman"} <= set(list_suites())


def test_the_issue_names_exist():
    names = set(hg.list_problems())
    wanted = ({f"keijzer-{k}" for k in range(1, 16)} | {f"korns-{k}" for k in range(1, 13)}
              | {f"vlad-{k}" for k in range(1, 9)}
              | {"pagie-1", "mux-6", "mux-11", "parity-3", "parity-4", "parity-5",
                 "binpack-or", "binpack-weibull", "exp2-approx"})
    assert wanted <= names


def test_unknown_suite_lists_the_suites():
    with pytest.raises(ProblemError, match=r"unknown suite 'keizer'; expected one of: .*keijzer"):
        hg.list_problems("keizer")


def test_unknown_problem_suggests_close_names():
    with pytest.raises(KeyError, match="did you mean keijzer-1"):
        hg.get_problem("keizer-1")


def test_names_are_matched_without_regard_to_case():
    assert hg.get_problem("Feynman-I.10.7") is hg.get_problem("feynman-i.10.7")


def test_grid_axis_includes_both_ends_without_drift():
    axis = grid_axis(-1.0, 1.0, 0.1)
    assert len(axis) == 21 and axis[0] == -1.0 and axis[-1] == pytest.approx(1.0)
    assert len(grid_axis(0.05, 10.05, 2.0)) == 6


def test_sampling_follows_the_table():
    sizes = {"pagie-1": (676, None), "keijzer-1": (21, 2001), "keijzer-4": (201, 201),
             "keijzer-6": (50, 120), "keijzer-11": (20, 361_201), "keijzer-10": (100, 10_201),
             "vlad-3": (600, 5083), "vlad-5": (300, 2700), "vlad-6": (30, 93_636),
             "korns-1": (10_000, 10_000), "nguyen-1": (20, None)}
    for name, (train, test) in sizes.items():
        p = hg.get_problem(name)
        assert p.train.n_rows == train, name
        assert (p.test.n_rows if p.test is not None else None) == test, name
    pagie = hg.get_problem("pagie-1").train.X
    assert pagie.min() == -5.0 and pagie.max() == pytest.approx(5.0)
    assert not np.any(np.isclose(pagie, 0.0))


def test_specs_are_pinned_by_their_seeds():
    for name in ["keijzer-5", "korns-3", "vlad-4", "feynman-i.6.2a", "vlad-7"]:
        a, b = PROBLEMS.get(name).build(), PROBLEMS.get(name).build()
        assert np.array_equal(a.train.XT, b.train.XT) and np.array_equal(a.test.XT, b.test.XT)
        assert not np.array_equal(a.train.XT[:, :10], a.test.XT[:, :10])


def test_feynman_uses_the_ai_feynman_ranges():
    p = hg.get_problem("feynman-i.10.7")
    assert p.variables == ("m_0", "v", "c")
    assert p.domain == ((1.0, 5.0), (1.0, 2.0), (3.0, 10.0))
    lo, hi = p.train.X.min(axis=0), p.train.X.max(axis=0)
    assert np.all(lo >= [1, 1, 3]) and np.all(hi <= [5, 2, 10])


# ---------------------------------------------------------------------- targets


@pytest.mark.parametrize("name", _regression_names())
def test_targets_are_the_formula_and_its_sympy_agrees(name):
    p = hg.get_problem(name)
    assert p.formula is not None
    for data in [p.train] + ([p.test] if p.test is not None else []):
        assert np.array_equal(p.formula.evaluate(data.X), data.y)
    expr = p.formula.to_sympy()
    symbols = [sp.Symbol(f"x{k}", real=True) for k in range(p.n_features)]
    fn = sp.lambdify(symbols, expr, modules=[{"harmonic": _harmonic}, "numpy"])
    X = p.train.X[:200]
    with np.errstate(all="ignore"):
        values = np.broadcast_to(fn(*X.T), (len(X),))
    assert np.allclose(values, p.train.y[:200], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name, text", [
    ("keijzer-14", "8 / (2 + x0 * x0 + x1 * x1)"),
    ("feynman-i.12.1", "x0 * x1"),
    ("vlad-6", "6.0 * sin(x0) * cos(x1)"),
    ("nguyen-1", "x0 * x0 * x0 + x0 * x0 + x0"),
])
def test_a_program_of_the_target_recovers_it_exactly(name, text):
    p = hg.get_problem(name)
    program = hg.Program.parse(text, p.grammar)
    batch = compile_batch([program])
    assert p.error(batch)[0] < 1e-20
    if p.test is not None:
        assert p.error(batch, data=p.test)[0] < 1e-20
    assert sp.simplify(program.to_sympy() - p.formula.to_sympy()) == 0


def test_formula_knows_the_feynman_spellings():
    f = Formula.parse("ln(a) + arcsin(b) - arccos(b) + arctan(a)", ["a", "b"])
    X = np.array([[2.0, 0.5]])
    expected = np.log(2) + np.arcsin(0.5) - np.arccos(0.5) + np.arctan(2)
    assert f.evaluate(X)[0] == pytest.approx(expected)
    with pytest.raises(ProblemError, match=r"sin\(\) takes 1 argument"):
        Formula.parse("sin(a, b)", ["a", "b"])


# ---------------------------------------------------------------------- spec errors


def _build(data: dict, defaults: dict | None = None) -> hg.Problem:
    return ProblemSpec("p", "s", {"name": "p", **data}, defaults or {}, "suite.toml").build()


@pytest.mark.parametrize("data, message", [
    ({"kind": "sorting"}, r"field 'kind': expected one of \['binpack', 'boolean', 'exp2', "
                          r"'regression'\], got 'sorting'"),
    ({"formula": "x0", "train": {}, "capacity": 3}, "unknown field 'capacity' for kind "
                                                    "'regression'"),
    ({"train": {"kind": "grid", "low": 0, "high": 1, "step": 0.1}}, "field 'formula' is "
                                                                    "missing"),
    ({"formula": "gamma(x0)", "train": {}}, "unknown function 'gamma'"),
    ({"formula": "x0", "train": {"kind": "uniform", "low": 0, "high": 1, "n": 5}},
     "integer 'n' > 0 and 'seed'"),
    ({"formula": "x0", "train": {"kind": "grid", "low": 0, "high": 1, "step": 0}},
     "'step' must be > 0"),
    ({"formula": "x0 + x1", "variables": 2,
      "train": {"kind": "grid", "low": [0, 0, 0], "high": 1, "step": 0.5}},
     "'low': expected a number or a list of 2"),
    ({"formula": "x0", "variables": "one", "train": {}}, "field 'variables'"),
    ({"kind": "boolean", "function": "multiplexer", "inputs": 7}, "k \\+ 2\\^k inputs"),
    ({"kind": "boolean", "function": "majority", "inputs": 3}, "field 'function'"),
    ({"kind": "boolean", "function": "even-parity", "inputs": 3,
      "train": {"kind": "grid"}}, "every case of the truth table"),
    ({"kind": "exp2", "train": {"kind": "grid", "low": 0, "high": 2, "step": 0.5}},
     "inputs must lie in \\[0, 1\\]"),
])
def test_bad_specs_name_the_field_and_what_was_expected(data, message):
    with pytest.raises(ProblemError, match=message):
        _build(data)


def test_unknown_suite_level_field_is_refused():
    with pytest.raises(ProblemError, match=r"suite\.toml: suite: unknown field 'sed'"):
        _build({"formula": "x0", "train": {"kind": "grid", "low": 0, "high": 1, "step": 1}},
               defaults={"sed": 3})


def test_problem_names_must_be_lower_case(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[[problem]]\nname = "Mine-1"\nformula = "x0"\n')
    with pytest.raises(ProblemError, match="lower case"):
        read_suite(path)


def test_a_toml_file_is_enough_to_add_a_problem(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(textwrap.dedent("""
        suite = "mine"
        [[problem]]
        name = "mine-1"
        formula = "a * b + 1"
        variables = ["a", "b"]
        train = { kind = "uniform", low = -1.0, high = 1.0, n = 50, seed = 9 }
    """))
    (spec,) = read_suite(path)
    problem = spec.build()
    assert problem.suite == "mine" and problem.variables == ("a", "b")
    result = hg.run(problem, seed=0, max_evaluations=200, population_size=20)
    assert result.best is not None


@dataclass(frozen=True)
class SignMatch(Problem):
    """docs/problems.md's plugin example: its own error in its own metric."""

    metric: str = "wrong_sign_share"

    def error(self, batch, n_jobs=1, data=None):
        d = data or self.train
        return np.mean(np.sign(evaluate_features(batch, d.XT, n_jobs)) != d.y, axis=1)


def _sign_match() -> SignMatch:
    x = np.linspace(-2.0, 2.0, 100)
    return SignMatch(name="sign-match", grammar=hg.load_grammar("full"),
                     train=Dataset.from_arrays(x[:, None], np.sign(np.sin(3 * x))),
                     domain=((-2.0, 2.0),))


def test_a_problem_with_its_own_error_runs_without_constant_fitting():
    problem = _sign_match()
    assert not problem.squared_error_based and hg.get_problem("keijzer-4").squared_error_based
    res = hg.run(problem, max_evaluations=600, population_size=40)
    assert res.stats["fitted"] == 0 and 0 <= res.best_error < 0.5
    with pytest.raises(ConfigError, match="scores programs by its own error "
                                          r"\(wrong_sign_share\); set search.fit_share=0"):
        hg.run(problem, max_evaluations=600, fit_share=0.3)


# ---------------------------------------------------------------------- entry points

PLUGIN = '''
from dataclasses import dataclass

import numpy as np

import hybrid_gp as hg
from hybrid_gp.problem import Dataset, Problem


@dataclass(frozen=True)
class Line(Problem):
    suite: str = "plugtest"

    @classmethod
    def build(cls):
        x = np.linspace(0.0, 1.0, 11)
        return cls(name="plug-line", grammar=hg.load_grammar("arith"),
                   train=Dataset.from_arrays(x[:, None], 2 * x), domain=((0.0, 1.0),))


def factory():
    return Problem(name="plug-factory", grammar=hg.load_grammar("arith"),
                   train=Line.build().train)


def misnamed():
    return factory()
'''

ENTRY_POINTS = """
[hybrid_gp.problems]
plug-line = hgplug_mod:Line
plug-factory = hgplug_mod:factory
plug-misnamed = hgplug_mod:misnamed
plug-broken = hgplug_missing_module:thing
nguyen-1 = hgplug_mod:factory
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fake installed distribution declaring problems in the entry-point group."""
    (tmp_path / "hgplug_mod.py").write_text(PLUGIN)
    info = tmp_path / "hgplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hgplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    reload_problems()
    yield
    monkeypatch.undo()
    sys.modules.pop("hgplug_mod", None)
    reload_problems()


def test_entry_point_problems_join_the_registry(plugin):
    with pytest.warns(UserWarning) as caught:
        names = hg.list_problems()
    messages = " | ".join(str(w.message) for w in caught)
    assert "plug-broken" in messages and "cannot be loaded" in messages
    assert "'nguyen-1' already exists" in messages
    assert {"plug-line", "plug-factory", "plug-misnamed"} <= set(names)
    assert hg.list_problems("plugtest") == ["plug-line"]
    assert {"plug-line", "plug-factory"} <= set(hg.list_problems("plugins"))
    line = hg.get_problem("plug-line")
    assert line.suite == "plugtest" and line.n_features == 1
    result = hg.run("plug-line", seed=0, max_evaluations=60, population_size=12)
    assert result.best is not None
    assert hg.get_problem("nguyen-1").suite == "nguyen"  # the shipped one wins


def test_a_plugin_must_return_the_problem_it_names(plugin):
    with pytest.warns(UserWarning):
        hg.list_problems()
    with pytest.raises(ProblemError, match="named 'plug-factory'; expected the entry "
                                           "point's name 'plug-misnamed'"):
        hg.get_problem("plug-misnamed")


# ---------------------------------------------------------------------- docs


def test_docs_list_every_problem_and_suite():
    text = (ROOT / "docs" / "problems.md").read_text(encoding="utf-8")
    missing = [n for n in hg.list_problems() if f"`{n}`" not in text]
    assert not missing, f"docs/problems.md does not list {missing}"
    for suite in list_suites():
        assert f"`{suite}`" in text
