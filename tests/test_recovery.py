"""The exact-recovery judge: true positives, true negatives, and the text reader."""

from __future__ import annotations

import pytest
import sympy as sp

import hybrid_gp as hg
from hybrid_gp.errors import ConversionError
from hybrid_gp.recovery import formula_to_sympy, is_exact, judge, round_constants

x, y = sp.Symbol("x0", real=True), sp.Symbol("x1", real=True)


def koza(text: str) -> hg.Program:
    return hg.Program.parse(text, grammar="koza")


@pytest.mark.parametrize(("found", "target", "domain"), [
    ("log(x0 + x0 / x0) + log(x0 * x0 + x0 / x0)", sp.log(x + 1) + sp.log(x**2 + 1),
     [(0, 2)]),
    ("exp(log(x0) / (x0 / x0 + x0 / x0))", sp.sqrt(x), [(0, 4)]),
    ("exp(x1 * log(x0))", x**y, [(0, 1), (0, 1)]),
    ("sin(x0) * cos(x1) + cos(x1) * sin(x0)", 2 * sp.sin(x) * sp.cos(y), [(0, 1), (0, 1)]),
    ("x0 * (x0 * x0 + x0 + x0 / x0)", x**3 + x**2 + x, [(-1, 1)]),
    ("cos(x0) * cos(x0) + sin(x0) * sin(x0) - x0 / x0 + sin(x0)", sp.sin(x), [(-1, 1)]),
])
def test_equivalent_programs_are_judged_exact(found, target, domain):
    assert is_exact(koza(found), target, domain=domain)


@pytest.mark.parametrize(("found", "target", "domain"), [
    # A Taylor polynomial agrees with sin to ~3e-8 on [-1, 1]: close, not exact.
    (x - x**3 / 6 + x**5 / 120 - x**7 / 5040 + x**9 / 362880, sp.sin(x), [(-1, 1)]),
    # sqrt(x**2) is |x|, which is x only where x >= 0.
    (koza("exp(log(x0 * x0) / (x0 / x0 + x0 / x0))"), x, [(-1, 1)]),
    (koza("x0 * x0 * x0 + x0 * x0"), x**3 + x**2 + x, [(-1, 1)]),
    (koza("x0 / (x0 - x0)"), x, [(-1, 1)]),
])
def test_close_or_wrong_formulas_are_judged_not_exact(found, target, domain):
    assert not is_exact(found, target, domain=domain)


def test_a_taylor_approximation_passes_the_numeric_check_but_fails_the_proof():
    taylor = x - x**3 / 6 + x**5 / 120 - x**7 / 5040 + x**9 / 362880
    verdict = judge(taylor, sp.sin(x), domain=[(-1, 1)])
    assert verdict == judge(taylor, sp.sin(x), domain=[(-1, 1)])
    assert not verdict.exact and verdict.how == "not-equal"


def test_positivity_of_the_domain_decides_log_identities():
    found = sp.log(x**2)
    assert is_exact(found, 2 * sp.log(x), domain=[(0, 2)])
    assert not is_exact(found, 2 * sp.log(x), domain=[(-2, 2)])


def test_constants_within_the_tolerance_are_rounded_to_simple_rationals():
    found = formula_to_sympy("(-0.000000153828) + 0.999999880791 * (x0*x0*x0 + x0*x0 + x0)")
    verdict = judge(found, x**3 + x**2 + x, domain=[(-1, 1)])
    assert verdict.exact and verdict.how == "rounded-constants"
    assert not is_exact(found, x**3 + x**2 + x, domain=[(-1, 1)], tolerance=1e-9)
    assert round_constants(sp.Float(0.4999999) * x, 1e-6) == x / 2


def test_a_time_cap_that_expires_falls_back_to_high_precision():
    found = koza("sin(x0) * cos(x0) + sin(x0) * cos(x0)")
    verdict = judge(found, sp.sin(2 * x), domain=[(-1, 1)], time_limit=1e-6)
    assert verdict.exact and verdict.how in ("symbolic", "high-precision")


def test_too_complex_candidates_skip_sympy_and_are_still_judged():
    found = koza("x0 * (x0 * x0 + x0 + x0 / x0)")
    assert judge(found, x**3 + x**2 + x, domain=[(-1, 1)], max_ops=1).exact
    assert not judge(x**3, x**3 + x**2 + x, domain=[(-1, 1)], max_ops=1).exact


def test_text_reader_reads_gplearn_prefix_and_operon_infix():
    assert formula_to_sympy("add(mul(X0, X0), div(X1, X1))") == x**2 + 1
    assert formula_to_sympy("(2.0 * x0) ^ 2 - sin(x1)") == (2.0 * x) ** 2 - sp.sin(y)
    assert formula_to_sympy("a + b", {"a": "x0", "b": "x1"}) == x + y


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "x0.real", "lambda: 1", "[x0]", "x0 if x0 else 1",
    "foo(x0)", "sin(x0, x1)", "y + 1", "'text'",
])
def test_text_reader_refuses_anything_outside_its_whitelist(text):
    with pytest.raises(ConversionError):
        formula_to_sympy(text)


def test_unreadable_text_is_judged_invalid_not_raised():
    assert judge("open('f')", x, domain=[(-1, 1)]).how == "invalid"
