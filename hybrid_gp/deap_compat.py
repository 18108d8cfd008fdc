"""DEAP interoperability: the same prefix genome as deap.gp.PrimitiveTree.

`deap_pset(grammar, n_features)` builds a typed PrimitiveSet whose primitives carry
the numpy semantics of docs/semantics.md; `to_deap` / `from_deap` convert node for node,
so DEAP's own operators (cxOnePoint, mutUniform, ...) can be applied to our programs.
Our engine uses its own rng-driven operators instead: DEAP's draw from the global
`random` module.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from deap import gp

from .errors import ConversionError
from .grammar import Grammar
from .kernels.reference import apply_op
from .program import CONST, Program, var_code, var_index

_TYPES: dict[str, type] = {"float": float, "bool": bool}
_ERC_RNG = np.random.default_rng(0)  # only DEAP's own mutation operators draw from it


def deap_type(name: str) -> type:
    """The Python class DEAP uses as the tag of a grammar type."""
    if name not in _TYPES:
        _TYPES[name] = type(name, (), {})
    return _TYPES[name]


def _semantic(opcode: int, arity: int) -> Any:
    def fn(*args: Any) -> Any:
        return apply_op(opcode, [np.asarray(a, dtype=float) for a in args])

    fn.__name__ = f"op{opcode}"
    return fn


@lru_cache(maxsize=32)
def deap_pset(grammar: Grammar, n_features: int) -> gp.PrimitiveSetTyped:
    """A DEAP typed primitive set mirroring the grammar (arguments named x0, x1, ...)."""
    pset = gp.PrimitiveSetTyped(grammar.name, [deap_type(grammar.variable_type)] * n_features,
                                deap_type(grammar.output_type), prefix="x")
    for p in grammar.primitives:
        pset.addPrimitive(_semantic(p.opcode, p.arity), [deap_type(t) for t in p.arg_types],
                          deap_type(p.ret_type), name=p.name)
    c = grammar.constants
    if c.enabled:
        lo, hi = c.low, c.high
        pset.addEphemeralConstant(_erc_name(grammar), _erc_function(lo, hi),
                                  deap_type(c.type))
    return pset


def _erc_name(grammar: Grammar) -> str:
    return f"hg_erc_{grammar.name}_{abs(hash((grammar.constants.low, grammar.constants.high)))}"


@lru_cache(maxsize=32)
def _erc_function(lo: float, hi: float) -> Any:
    def draw() -> float:
        return float(_ERC_RNG.uniform(lo, hi))

    return draw


def to_deap(program: Program, n_features: int | None = None) -> gp.PrimitiveTree:
    g = program.grammar
    n = max(program.n_features_used, n_features or 0)
    pset = deap_pset(g, n)
    prims = {p.name: p for ps in pset.primitives.values() for p in ps}
    args = {t.name: t for ts in pset.terminals.values() for t in ts if not isinstance(t, type)}
    erc = next((t for ts in pset.terminals.values() for t in ts if isinstance(t, type)), None)
    nodes: list[Any] = []
    k = 0
    for c in program.codes:
        if c == CONST:
            assert erc is not None
            node = erc()
            node.value = program.consts[k]
            k += 1
            nodes.append(node)
        elif c < -1:
            nodes.append(args[f"x{var_index(c)}"])
        else:
            nodes.append(prims[g.primitives[c].name])
    return gp.PrimitiveTree(nodes)


def from_deap(tree: Any, grammar: Grammar) -> Program:
    codes: list[int] = []
    consts: list[float] = []
    for node in tree:
        if isinstance(node, gp.Primitive):
            if node.name not in grammar.index:
                raise ConversionError(f"DEAP primitive {node.name!r} is not in grammar "
                                      f"{grammar.name!r}")
            codes.append(grammar.index[node.name])
        elif isinstance(node.value, str) and node.value[:1] == "x" and node.value[1:].isdigit():
            codes.append(var_code(int(node.value[1:])))
        elif isinstance(node.value, int | float) and not isinstance(node.value, bool):
            codes.append(CONST)
            consts.append(float(node.value))
        else:
            raise ConversionError(f"DEAP terminal {node.name!r} is neither an argument x<k> "
                                  f"nor a numeric constant")
    try:
        return Program(grammar, codes, consts)
    except ValueError as exc:
        raise ConversionError(f"invalid program: {exc}") from None
