"""Program text: print/parse round trip, error positions and reasons, the `ast`
whitelist (nothing is ever executed), aliases and negative constants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import SHIPPED, programs, seeded_programs

import hybrid_gp as hg
from hybrid_gp.program import CONST, Program, var_code
from hybrid_gp.syntax import MAX_TEXT

ROUND_TRIP = settings(max_examples=150, deadline=None)


def parse(text: str, grammar: str = "full", **kw) -> Program:
    return Program.parse(text, grammar=grammar, **kw)


# ---------------------------------------------------------------------- round trip


@given(programs(max_depth=5))
@ROUND_TRIP
def test_printing_then_parsing_gives_the_same_tree(p):
    text = str(p)
    q = Program.parse(text, grammar=p.grammar)
    assert q == p, text
    assert q.codes == p.codes and q.consts == p.consts


@given(seeded_programs(max_depth=6))
@ROUND_TRIP
def test_grown_programs_of_every_shipped_grammar_round_trip(p):
    assert Program.parse(str(p), grammar=p.grammar) == p, str(p)


@given(programs("boolean", max_depth=5))
@settings(max_examples=60, deadline=None)
def test_boolean_programs_round_trip_with_their_python_precedence(p):
    assert Program.parse(str(p), grammar="boolean") == p, str(p)


@given(programs("full", max_depth=3))
@settings(max_examples=60, deadline=None)
def test_printing_with_variable_names_round_trips_with_those_names(p):
    from hybrid_gp.syntax import to_text

    names = ["alpha", "beta", "gamma"]
    text = to_text(p, names)
    assert Program.parse(text, grammar="full", variables=names) == p, text


def test_constants_print_exactly():
    values = [0.1, -0.1, 1e-300, -5e-324, 2.0**-1074, 123456789.123456789, -0.0, 4.9999999]
    for v in values:
        p = Program(hg.load_grammar("full"), (CONST,), (v,))
        q = parse(str(p))
        assert q.consts[0] == v and str(q.consts[0]) == str(v)


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "grammar", "position", "reason"),
    [
        ("sin(x0) + foo(x1)", "full", (1, 11), "unknown function 'foo' with 1 argument"),
        ("x0 + y", "full", (1, 6), "unknown name 'y'"),
        ("x0 + 1.0", "koza", (1, 6), "grammar 'koza' has no constants"),
        ("x0 +", "full", (1, 5), "invalid syntax"),
        ("x0 + (x1", "full", (1, 6), "'(' was never closed"),
        ("x0 x1", "full", (1, 4), "invalid syntax"),
        ("x0 < x1", "full", (1, 1), "operation grammar 'full' does not have"),
        ("sin(x0, x1)", "full", (1, 1), "unknown function 'sin' with 2 argument"),
        ("x0 + x1", "boolean", (1, 1), "operation grammar 'boolean' does not have"),
        ("x0 and 1.0", "boolean", (1, 8), "grammar 'boolean' has no constants"),
        ("x007", "full", (1, 1), "unknown name 'x007'"),
        ("  x0 * bar(x0)", "full", (1, 8), "unknown function 'bar'"),
        ("\n\nx0 * bar(x0)", "full", (3, 6), "unknown function 'bar'"),
    ],
)
def test_parse_errors_name_the_position_and_the_reason(text, grammar, position, reason):
    with pytest.raises(hg.ParseError) as info:
        parse(text, grammar)
    err = info.value
    assert err.position == position
    assert reason in err.reason
    assert f"at {position[0]}:{position[1]}" in str(err)
    assert err.text == text


def test_columns_count_characters_not_bytes():
    with pytest.raises(hg.ParseError) as info:
        parse("α + foo(β)", "koza", variables=["α", "β"])
    assert info.value.position == (1, 5)


def test_a_parse_error_is_a_value_error():
    with pytest.raises(ValueError):
        parse("sin(")


@pytest.mark.parametrize("text", ["", "   \n  ", 42, None])
def test_empty_or_non_text_input_is_refused(text):
    with pytest.raises(hg.ParseError):
        parse(text)


def test_type_errors_name_the_types():
    g = hg.grammar.grammar_from_dict({
        "name": "typed-syntax",
        "primitive": [
            {"name": "gt", "op": "gt", "args": ["float", "float"], "returns": "bool"},
            {"name": "ifte", "op": "if", "args": ["bool", "float", "float"],
             "returns": "float"},
        ],
    })
    assert parse("x0 if x0 > x1 else x1", g) == Program(
        g, (1, 0, var_code(0), var_code(1), var_code(0), var_code(1)))
    with pytest.raises(hg.ParseError, match="'bool' where 'float' is expected"):
        parse("x0 > x1", g)
    with pytest.raises(hg.ParseError, match="variable 'x0' has type 'float' where 'bool'"):
        parse("x0 if x0 else x1", g)


def test_too_long_or_too_deep_text_is_refused_cleanly():
    with pytest.raises(hg.ParseError, match="at most"):
        parse("x0 + " * (MAX_TEXT // 5 + 1) + "x0")
    with pytest.raises(hg.ParseError):
        parse("sin(" * 2000 + "x0" + ")" * 2000)
    with pytest.raises(hg.ParseError):
        parse("-" * 5000 + "x0")


# ---------------------------------------------------------------------- whitelist


@pytest.mark.parametrize(
    "text",
    [
        "x0.real",
        "x0.__class__",
        "(lambda: 1.0)()",
        "(lambda x: x)(x0)",
        "x0[0]",
        "[x for x in x0]",
        "{x: 1 for x in x0}",
        "sum(x for x in x0)",
        "(x0 := 1.0)",
        "f'{x0}'",
        "'text'",
        "b'x'",
        "True",
        "None",
        "1j",
        "[x0]",
        "(x0, x1)",
        "{x0}",
        "sin(*x0)",
        "sin(x=x0)",
        "x0 if True else x1",
        "np.linalg.norm(x0)",
        "os.system('ls')",
        "open('/etc/passwd').read()",
    ],
)
def test_python_outside_the_whitelist_is_refused(text):
    with pytest.raises(hg.ParseError):
        parse(text)


@pytest.mark.parametrize(
    "template",
    [
        "__import__('os').system('touch {path}')",
        "exec(\"open('{path}', 'w')\")",
        "eval(\"__import__('os').system('touch {path}')\")",
        "sin(__import__('os').system('touch {path}'))",
        "open('{path}', 'w')",
    ],
)
def test_code_in_program_text_never_runs(tmp_path, template):
    marker = tmp_path / "ran"
    text = template.format(path=marker)
    for grammar in SHIPPED:
        with pytest.raises(hg.ParseError):
            parse(text, grammar)
    assert not marker.exists()


# ---------------------------------------------------------------------- aliases


def test_minus_x_is_neg(full):
    assert parse("-x0") == Program(full, (full.index["neg"], var_code(0)))
    assert str(parse("-x0")) == "neg(x0)"
    assert parse("-sin(x0)") == parse("neg(sin(x0))")


def test_numpy_and_math_prefixes_are_dropped():
    for prefix in ["np.", "numpy.", "math.", "sympy.", ""]:
        assert parse(f"{prefix}sin(x0) + {prefix}exp(x1)") == parse("sin(x0) + exp(x1)")


def test_powers_become_products_in_a_grammar_without_pow(koza, rng):
    assert parse("x0**2", "koza") == parse("x0 * x0", "koza")
    assert parse("x0**3", "koza") == parse("x0 * x0 * x0", "koza")
    assert parse("(x0 + x1)**2", "koza") == parse("(x0 + x1) * (x0 + x1)", "koza")
    with pytest.raises(hg.ParseError):
        parse("x0**5", "koza")


def test_powers_compute_the_power_in_the_full_grammar(rng):
    X = rng.uniform(-3, 3, size=(50, 1))
    np.testing.assert_allclose(parse("x0**2").evaluate(X), X[:, 0] ** 2, rtol=1e-12)
    np.testing.assert_allclose(parse("x0 ** 0.5").evaluate(X), np.sqrt(np.abs(X[:, 0])),
                               rtol=1e-12)


def test_aliases_of_the_full_grammar(full):
    assert parse("fabs(x0)") == parse("abs(x0)")
    assert parse("np.abs(x0)") == parse("abs(x0)")


def test_boolean_chains_are_read_left_to_right():
    assert parse("x0 and x1 and x2", "boolean") == parse("(x0 and x1) and x2", "boolean")
    assert parse("x0 or x1 or x2", "boolean") == parse("(x0 or x1) or x2", "boolean")
    assert str(parse("x0 and (x1 or x2)", "boolean")) == "x0 and (x1 or x2)"


# ---------------------------------------------------------------------- negative constants


def test_a_negative_literal_is_one_constant(full):
    p = parse("-2.5")
    assert p.codes == (CONST,) and p.consts == (-2.5,)
    assert parse("+2.5").consts == (2.5,)
    assert parse("x0 * -2.5") == Program(full, (full.index["mul"], var_code(0), CONST), (-2.5,))


def test_neg_of_a_constant_stays_neg(full):
    neg = full.index["neg"]
    p = parse("neg(2.5)")
    assert p == Program(full, (neg, CONST), (2.5,))
    assert parse("neg(-2.5)") == Program(full, (neg, CONST), (-2.5,))
    assert parse("- -2.5") == Program(full, (neg, CONST), (-2.5,))
    for q in [p, parse("neg(-2.5)"), Program(full, (neg, neg, CONST), (-1.0,))]:
        assert parse(str(q)) == q


def test_negative_constant_under_a_power_prints_with_parentheses(full):
    p = Program(full, (full.index["pow"], CONST, var_code(0)), (-2.0,))
    assert parse(str(p)) == p
    q = Program(full, (full.index["pow"], var_code(0), CONST), (-2.0,))
    assert parse(str(q)) == q
