"""Ground-truth formulas of problem specs: parsed by an `ast` whitelist, evaluated by
walking the tree with numpy (nothing is executed), and turned into sympy for
exact-recovery checks. Variables are x0, x1, ... (or names the spec lists).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from .errors import ProblemError


def _harmonic(x: np.ndarray) -> np.ndarray:
    """H(n) = sum_{i=1..n} 1/i for integer-valued n >= 0 (Keijzer-6)."""
    n = np.asarray(np.round(x), dtype=np.int64)
    top = int(max(n.max(initial=0), 0))
    table = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, top + 1))])
    return table[np.clip(n, 0, top)]


_NUMPY: dict[str, Callable[..., np.ndarray]] = {
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "exp": np.exp, "log": np.log,
    "sqrt": np.sqrt, "abs": np.abs, "tanh": np.tanh, "sinh": np.sinh, "cosh": np.cosh,
    "asinh": np.arcsinh, "arcsinh": np.arcsinh, "asin": np.arcsin, "acos": np.arccos,
    "atan": np.arctan, "harmonic": _harmonic, "min": np.minimum, "max": np.maximum,
    # Spellings used by the AI Feynman tables (FeynmanEquations.csv).
    "ln": np.log, "arcsin": np.arcsin, "arccos": np.arccos, "arctan": np.arctan,
}
_SYMPY: dict[str, Callable[..., sp.Expr]] = {
    "sin": sp.sin, "cos": sp.cos, "tan": sp.tan, "exp": sp.exp, "log": sp.log,
    "sqrt": sp.sqrt, "abs": sp.Abs, "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh,
    "asinh": sp.asinh, "arcsinh": sp.asinh, "asin": sp.asin, "acos": sp.acos,
    "atan": sp.atan, "harmonic": sp.harmonic, "min": sp.Min, "max": sp.Max,
    "ln": sp.log, "arcsin": sp.asin, "arccos": sp.acos, "arctan": sp.atan,
}
_BINARY_FUNCTIONS = {"min", "max"}  # every other function takes one argument
_CONSTANTS = {"pi": math.pi, "e": math.e}
_BINOPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}


@dataclass(frozen=True)
class Formula:
    """A closed-form target function f(x0, x1, ...)."""

    text: str
    variables: tuple[str, ...]
    tree: ast.expr = field(repr=False, compare=False)

    @classmethod
    def parse(cls, text: str, variables: Sequence[str]) -> Formula:
        try:
            tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as exc:
            raise ProblemError(f"formula {text!r}: invalid syntax at column {exc.offset}") from None
        f = cls(text, tuple(variables), tree)
        f._check(tree)
        return f

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            self._check(node.operand)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id not in _NUMPY or node.keywords:
                raise ProblemError(f"formula {self.text!r}: unknown function "
                                   f"{node.func.id!r}; expected one of {sorted(_NUMPY)}")
            want = 2 if node.func.id in _BINARY_FUNCTIONS else 1
            if len(node.args) != want:
                raise ProblemError(f"formula {self.text!r}: {node.func.id}() takes {want} "
                                   f"argument(s), got {len(node.args)}")
            for a in node.args:
                self._check(a)
        elif isinstance(node, ast.Name):
            if node.id not in self.variables and node.id not in _CONSTANTS:
                raise ProblemError(f"formula {self.text!r}: unknown name {node.id!r}; "
                                   f"variables are {', '.join(self.variables)}")
        elif not (isinstance(node, ast.Constant) and isinstance(node.value, int | float)):
            raise ProblemError(f"formula {self.text!r}: {type(node).__name__} is not allowed")

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        """Values on X (n_rows, n_variables)."""
        cols = {name: X[:, k] for k, name in enumerate(self.variables)}
        with np.errstate(all="ignore"):
            out = self._walk(self.tree, cols, _NUMPY, lambda v: v)
        return np.broadcast_to(np.asarray(out, dtype=np.float64), (X.shape[0],)).copy()

    def to_sympy(self) -> sp.Expr:
        syms = {name: sp.Symbol(f"x{k}", real=True) for k, name in enumerate(self.variables)}
        return self._walk(self.tree, syms, _SYMPY, sp.nsimplify)

    def _walk(self, node: ast.AST, env: dict, funcs: dict, number: Callable) -> object:
        if isinstance(node, ast.BinOp):
            a = self._walk(node.left, env, funcs, number)
            b = self._walk(node.right, env, funcs, number)
            op = _BINOPS[type(node.op)]
            if op == "add":
                return a + b
            if op == "sub":
                return a - b
            if op == "mul":
                return a * b
            if op == "div":
                return a / b
            return a**b
        if isinstance(node, ast.UnaryOp):
            v = self._walk(node.operand, env, funcs, number)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Call):
            return funcs[node.func.id](*[self._walk(a, env, funcs, number) for a in node.args])
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            return sp.pi if (node.id == "pi" and funcs is _SYMPY) else (
                sp.E if (node.id == "e" and funcs is _SYMPY) else _CONSTANTS[node.id])
        return number(node.value)  # type: ignore[attr-defined]
