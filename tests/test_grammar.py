"""Grammars: the shipped files, the coverage of every primitive, and errors for bad
grammar files that name the file, the primitive and the field."""

from __future__ import annotations

import pytest

import hybrid_gp as hg
from hybrid_gp.errors import GrammarError, UnknownNameError
from hybrid_gp.generate import random_tree
from hybrid_gp.grammar import grammar_from_dict, read_grammar_file
from hybrid_gp.kernels import opcodes as oc
from hybrid_gp.kernels.reference import apply_op
from hybrid_gp.program import Program
from hybrid_gp.sympy_ops import SYMPY_BUILDERS

CORE = ["arith", "boolean", "full", "koza"]
SHIPPED = hg.list_grammars()


def test_the_core_grammars_are_shipped():
    assert set(CORE) <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_grammar_loads_by_name_and_by_path(name):
    g = hg.load_grammar(name)
    assert g.name == name and g.primitives
    again = hg.load_grammar(g.source)
    assert [p.name for p in again.primitives] == [p.name for p in g.primitives]


def test_an_unknown_grammar_name_suggests_a_close_match():
    with pytest.raises(UnknownNameError, match="did you mean koza"):
        hg.load_grammar("kozza")
    with pytest.raises(KeyError):
        hg.load_grammar("kozza")


@pytest.mark.parametrize("name", SHIPPED)
def test_every_primitive_has_an_opcode_a_numpy_twin_a_sympy_mapping_and_a_printer(name, rng):
    g = hg.load_grammar(name)
    for prim in g.primitives:
        info = oc.OPS[prim.op]
        assert prim.opcode == info.code and prim.arity == info.arity
        args = [rng.uniform(-2, 2, 5) for _ in range(prim.arity)]
        assert apply_op(prim.opcode, args).shape == (5,)
        assert prim.sympy in SYMPY_BUILDERS
    # printer: random trees until every primitive has been printed and parsed back
    unseen = set(range(len(g.primitives)))
    for k in range(2000):
        p = random_tree(g, rng, 3, max_depth=max(3, g.min_height[g.output_type]),
                        method="full" if k % 2 else "grow")
        assert Program.parse(str(p), grammar=g) == p, str(p)
        unseen -= set(p.codes)
        if not unseen:
            break
    assert not unseen, [g.primitives[i].name for i in unseen]


def test_min_heights_of_a_typed_grammar():
    g = grammar_from_dict(COEF)
    assert g.min_height == {"float": 0, "coef": 0}
    h = grammar_from_dict(ANGLE)
    assert h.min_height["angle"] == 1


# A type with terminals but no primitives (DEAP's genFull fails on it: test_generate.py).
COEF = {
    "name": "coef-demo",
    "constants": {"enabled": True, "type": "coef", "low": 0.5, "high": 2.0},
    "primitive": [
        {"name": "add", "op": "add", "args": ["float", "float"], "returns": "float"},
        {"name": "scale", "op": "mul", "args": ["float", "coef"], "returns": "float",
         "infix": "scale({0}, {1})"},
    ],
}
# A type with primitives but no terminals.
ANGLE = {
    "name": "angle-demo",
    "primitive": [
        {"name": "add", "op": "add"},
        {"name": "rad", "op": "neg", "args": ["float"], "returns": "angle",
         "infix": "rad({0})"},
        {"name": "sin", "op": "sin", "args": ["angle"], "returns": "float"},
    ],
}


# ---------------------------------------------------------------------- bad grammar files

GOOD = """\
name = "bad-demo"
[[primitive]]
name = "add"
op = "add"
args = ["float", "float"]
returns = "float"
infix = "{0} + {1}"

[[primitive]]
name = "sine"
op = "sin"
args = ["float"]
returns = "float"
infix = "sin({0})"
"""

# (what to replace in GOOD, with what, the field the message must name)
BAD_PRIMITIVE_FIELDS = [
    ('op = "sin"', 'op = "sine_op"', "op"),
    ('args = ["float"]\n', 'args = ["float", "float"]\n', "args"),
    ('args = ["float"]\n', 'args = "float"\n', "args"),
    ('infix = "sin({0})"', 'infix = "sin({1})"', "infix"),
    ('infix = "sin({0})"', 'infix = "sin({0}"', "infix"),
    ('infix = "sin({0})"', 'infix = "sin({0})"\nsympy = "sinus"', "sympy"),
    ('infix = "sin({0})"', 'infix = "sin({0})"\ncost = -1', "cost"),
    ('infix = "sin({0})"', 'infix = "sin({0})"\ncost = "cheap"', "cost"),
    ('infix = "sin({0})"', 'infix = "sin({0})"\naliases = "sn({0})"', "aliases"),
    ('infix = "sin({0})"', 'infix = "sin({0})"\naliases = ["sn({1})"]', "infix"),
    ('infix = "sin({0})"', 'infix = "sin({0})"\ncolour = "red"', "colour"),
    ('returns = "float"\ninfix = "sin', 'returns = 3\ninfix = "sin', "returns"),
]


def _write(tmp_path, text: str):
    path = tmp_path / "bad-demo.toml"
    path.write_text(text)
    return path


def test_the_unbroken_file_loads(tmp_path):
    g = hg.load_grammar(str(_write(tmp_path, GOOD)))
    assert [p.name for p in g.primitives] == ["add", "sine"]


@pytest.mark.parametrize(("old", "new", "field"), BAD_PRIMITIVE_FIELDS)
def test_a_bad_primitive_field_is_named_with_the_file_and_the_primitive(tmp_path, old, new,
                                                                       field):
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(GrammarError) as info:
        hg.load_grammar(str(path))
    message = str(info.value)
    assert str(path) in message
    assert "'sine'" in message
    assert f"'{field}'" in message


def test_a_primitive_without_a_name_is_named_by_its_position(tmp_path):
    path = _write(tmp_path, GOOD.replace('name = "sine"\n', ""))
    with pytest.raises(GrammarError, match=r"primitive #2: field 'name' is missing") as info:
        read_grammar_file(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace('name = "sine"', 'name = "add"'), "'add' is defined twice"),
        (GOOD.replace('name = "bad-demo"', 'name = "bad-demo"\ncolour = 1'),
         "unknown field 'colour'"),
        (GOOD.replace('name = "bad-demo"\n', ""), "field 'name' is missing"),
        (GOOD + '[constants]\nenabled = true\nlow = 2.0\nhigh = 1.0\n', "'low' must be <="),
        (GOOD + '[constants]\nenabled = true\nprobability = 2.0\n', "'probability'"),
        (GOOD + '[constants]\nenabled = "yes"\n', "field 'enabled'"),
        ('name = "bad-demo"\n', "field 'primitive'"),
        (GOOD + "[[primitive\n", "not valid TOML"),
        (GOOD.replace('returns = "float"\ninfix = "sin', 'returns = "angle"\ninfix = "sin')
         .replace('args = ["float"]', 'args = ["angle"]')
         .replace('args = ["float", "float"]', 'args = ["float", "angle"]'),
         "type 'angle' can never be completed"),
    ],
)
def test_a_bad_grammar_file_is_named_in_the_error(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(GrammarError) as info:
        hg.load_grammar(str(path))
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_a_missing_grammar_file_is_named(tmp_path):
    path = tmp_path / "nowhere.toml"
    with pytest.raises(GrammarError, match="cannot read grammar file") as info:
        hg.load_grammar(str(path))
    assert str(path) in str(info.value)


def test_grammar_errors_are_value_errors():
    with pytest.raises(ValueError):
        grammar_from_dict({"name": "x", "primitive": [{"name": "f", "op": "nope"}]})


def test_primitive_lookup_by_name_lists_what_exists(koza):
    assert koza.primitive("sin").op == "sin"
    with pytest.raises(KeyError, match="has no primitive 'tan'; it has: add, sub"):
        koza.primitive("tan")


def test_opmap_is_read_only_and_maps_positions_to_opcodes(full):
    assert full.opmap.tolist() == [p.opcode for p in full.primitives]
    with pytest.raises(ValueError):
        full.opmap[0] = 0
