"""Cheap tree-level simplification: constant folding and a few identities.

Rules (applied bottom-up, each only when the grammar can express the result):
- a subtree without variables becomes one constant, computed by the kernels (so it
  follows docs/semantics.md: log(-0.5) folds to log|-0.5|, never a complex number);
- x - x -> 0, x / x -> 1 (exact under protected division), x + 0 -> x, 0 + x -> x,
  x - 0 -> x, x * 1 -> x, 1 * x -> x, x / 1 -> x, x * 0 -> 0, 0 * x -> 0, neg(neg(x)) -> x.
They hold for every finite input; with inf or NaN inputs x - x and x * 0 are NaN in
IEEE arithmetic but 0 after the rewrite, which is why the search does not apply them
to programs it scores, only to what it reports.
"""

from __future__ import annotations

import math

import numpy as np

from .compiler import compile_batch
from .evaluation import evaluate_features
from .grammar import Grammar
from .program import CONST, Program

_IDENTITY_RIGHT = {"add": 0.0, "sub": 0.0, "mul": 1.0, "div": 1.0}  # x op c -> x
_IDENTITY_LEFT = {"add": 0.0, "mul": 1.0}  # c op x -> x
_ABSORB = {"mul": 0.0}  # x * 0 -> 0, 0 * x -> 0
_SELF = {"sub": 0.0, "div": 1.0}  # x op x -> c


class _Node:
    """A small mutable tree used only while simplifying."""

    __slots__ = ("children", "code", "value")

    def __init__(self, code: int, value: float | None = None,
                 children: list[_Node] | None = None):
        self.code = code
        self.value = value
        self.children = children or []

    def key(self) -> tuple:
        return (self.code, self.value, tuple(c.key() for c in self.children))

    def is_const(self, v: float | None = None) -> bool:
        return self.code == CONST and (v is None or self.value == v)


def simplify(program: Program) -> Program:
    """An equivalent (on finite inputs), usually smaller program of the same grammar."""
    g = program.grammar
    tree = _to_tree(program)
    tree = _simplify(tree, g)
    codes: list[int] = []
    consts: list[float] = []
    _emit(tree, codes, consts)
    if codes == list(program.codes) and consts == list(program.consts):
        return program
    return Program(g, codes, consts)


def _to_tree(program: Program) -> _Node:
    arities = program.grammar.arities
    stack: list[_Node] = []
    k = len(program.consts)
    for c in reversed(program.codes):
        if c == CONST:
            k -= 1
            stack.append(_Node(c, program.consts[k]))
        elif c < -1:
            stack.append(_Node(c))
        else:
            stack.append(_Node(c, None, [stack.pop() for _ in range(arities[c])]))
    return stack[0]


def _emit(node: _Node, codes: list[int], consts: list[float]) -> None:
    codes.append(node.code)
    if node.code == CONST:
        consts.append(float(node.value))  # type: ignore[arg-type]
    for child in node.children:
        _emit(child, codes, consts)


def _has_variables(node: _Node) -> bool:
    return node.code < -1 or any(_has_variables(c) for c in node.children)


def _outputs(node: _Node, g: Grammar, XT: np.ndarray) -> np.ndarray:
    """The kernels' outputs of the subtree `node` on feature-major XT."""
    codes: list[int] = []
    consts: list[float] = []
    _emit(node, codes, consts)
    batch = compile_batch([Program._trusted(g, tuple(codes), tuple(consts))])
    return evaluate_features(batch, XT)[0]


def _constant_value(node: _Node, g: Grammar) -> float:
    return float(_outputs(node, g, np.zeros((0, 1)))[0])


def _constant(g: Grammar, value: float, ret_type: str) -> _Node | None:
    c = g.constants
    if c.enabled and c.type == ret_type and math.isfinite(value):
        return _Node(CONST, value)
    return None


def _simplify(node: _Node, g: Grammar) -> _Node:
    node.children = [_simplify(c, g) for c in node.children]
    if node.code < 0:
        return node
    prim = g.primitives[node.code]
    if node.children and not _has_variables(node):
        folded = _constant(g, _constant_value(node, g), prim.ret_type)
        if folded is not None:
            return folded
    if len(node.children) == 2 and prim.arg_types[0] == prim.arg_types[1] == prim.ret_type:
        a, b = node.children
        op = prim.op
        if op in _SELF and a.key() == b.key():
            folded = _constant(g, _SELF[op], prim.ret_type)
            if folded is not None:
                return folded
        if op in _IDENTITY_RIGHT and b.is_const(_IDENTITY_RIGHT[op]):
            return a
        if op in _IDENTITY_LEFT and a.is_const(_IDENTITY_LEFT[op]):
            return b
        if op in _ABSORB and (a.is_const(_ABSORB[op]) or b.is_const(_ABSORB[op])):
            return _Node(CONST, _ABSORB[op])
    if prim.op == "neg" and node.children[0].code >= 0 and (
            g.primitives[node.children[0].code].op == "neg"):
        return node.children[0].children[0]
    return node


_GUARDED = frozenset({"log", "sqrt", "pow"})  # their first argument is read through |.|


def orient_guards(program: Program, X: np.ndarray) -> Program:
    """The same function, with the arguments that protected operators read through |.|
    (log|a|, sqrt|a|, |a|**b; docs/semantics.md) made positive where the data allow:
    log(neg(a)) -> log(a), and log(a - b) -> log(b - a) when a - b is negative on most
    rows of X. Values are unchanged everywhere, bit for bit (|b - a| == |a - b|); what
    changes is the plain reading a person or sympy gives the formula, where log(-u) is
    complex. Reports apply it; the search does not need it."""
    g = program.grammar
    if not any(g.has_op(op) for op in _GUARDED):
        return program
    tree = _to_tree(program)
    XT = np.ascontiguousarray(np.asarray(X, dtype=np.float64).T)
    if not _orient(tree, g, XT):
        return program
    codes: list[int] = []
    consts: list[float] = []
    _emit(tree, codes, consts)
    return Program(g, codes, consts)


def _orient(node: _Node, g: Grammar, XT: np.ndarray) -> bool:
    changed = False
    for child in node.children:
        changed |= _orient(child, g, XT)
    if node.code < 0 or g.primitives[node.code].op not in _GUARDED:
        return changed
    arg = node.children[0]
    while arg.code >= 0 and g.primitives[arg.code].op == "neg":
        arg, changed = arg.children[0], True
    if (arg.code >= 0 and g.primitives[arg.code].op == "sub"
            and _mostly_negative(arg, g, XT)):
        arg.children.reverse()
        changed = True
    node.children[0] = arg
    return changed


def _mostly_negative(node: _Node, g: Grammar, XT: np.ndarray) -> bool:
    out = _outputs(node, g, XT)
    finite = out[np.isfinite(out)]
    return bool(len(finite)) and int(np.count_nonzero(finite < 0)) * 2 > len(finite)


def guarded_rows(program: Program, X: np.ndarray) -> int:
    """How many rows of X reach a guard (docs/semantics.md): a division by |b| <= EPS,
    a log of |a| <= EPS or of a < 0, a sqrt of a < 0, a pow of a negative base. On
    those rows the plain sympy reading (log(a), a/b) differs from the program's value,
    so whoever prints that reading beside the program's error should say so. Constant
    subtrees are folded first, as the readable form folds them."""
    from .kernels.opcodes import EPS

    g = program.grammar
    XT = np.ascontiguousarray(np.asarray(X, dtype=np.float64).T)
    hit = np.zeros(XT.shape[1], dtype=bool)
    stack = [_simplify(_to_tree(program), g)]
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        if node.code < 0 or not _has_variables(node):
            continue
        op = g.primitives[node.code].op
        if op not in ("div", "inv", "log", "sqrt", "pow"):
            continue
        with np.errstate(all="ignore"):
            a = _outputs(node.children[-1] if op == "div" else node.children[0], g, XT)
            if op in ("div", "inv"):
                hit |= np.abs(a) <= EPS
            elif op == "log":
                hit |= (a < 0) | (np.abs(a) <= EPS)
            elif op == "sqrt":
                hit |= a < 0
            else:
                b = _outputs(node.children[1], g, XT)
                hit |= (a < 0) & ~((np.mod(b, 2.0) == 0.0) & np.isfinite(b))
    return int(np.count_nonzero(hit))
