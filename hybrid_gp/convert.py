"""Converters between Program and sympy / JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy as sp

from .errors import ConversionError
from .grammar import Grammar, Primitive, load_grammar
from .program import CONST, Program, var_code, var_index
from .sympy_ops import SYMPY_BUILDERS

JSON_FORMAT = "hybrid_gp.program"
JSON_VERSION = 1


# ---------------------------------------------------------------------- to sympy


def symbols(n: int, variables: Sequence[str] | None = None) -> list[sp.Symbol]:
    names = list(variables) if variables else [f"x{k}" for k in range(n)]
    return [sp.Symbol(name, real=True) for name in names[:n]]


def to_sympy(program: Program, protected: bool = False,
             variables: Sequence[str] | None = None) -> sp.Expr:
    """The program as a sympy expression.

    protected=False gives the plain formula (a/b, log(a)); protected=True reproduces
    the kernels' guards exactly (docs/semantics.md).
    """
    n = max(program.n_features_used, len(variables) if variables else 0)
    syms = symbols(n, variables)
    g = program.grammar
    stack: list[Any] = []
    k_const = len(program.consts)
    for c in reversed(program.codes):
        if c == CONST:
            k_const -= 1
            stack.append(sp.Float(program.consts[k_const]))
        elif c < -1:
            stack.append(syms[var_index(c)])
        else:
            prim = g.primitives[c]
            args = [stack.pop() for _ in range(prim.arity)]
            folded = _fold_constants(prim, args, protected)
            if folded is not None:
                stack.append(folded)
                continue
            op = SYMPY_BUILDERS[prim.sympy]
            stack.append((op.protected if protected else op.plain)(*args))
    return stack[0]


_TAME = 1e300  # beyond this sympy's exact arithmetic can take minutes (exp(exp(1e154)))


def _fold_constants(prim: Primitive, args: list[Any], protected: bool) -> Any | None:
    """A numeric operation on numbers, computed as the kernels compute it: always in
    the protected reading (which equals the kernels), and in the plain reading where
    the result is not finite or huge, which sympy would chase symbolically, or an
    argument is not finite, where sympy's rules are not IEEE's (it leaves oo**0.0
    unevaluated; the kernels give 1). None: leave it to sympy."""
    if not args or prim.ret_type != "float" or any(t != "float" for t in prim.arg_types):
        return None
    if not all(isinstance(a, sp.Number) for a in args):
        return None
    from .kernels.reference import apply_op

    numbers = [float(a) for a in args]
    value = float(apply_op(prim.opcode, [np.array([v]) for v in numbers])[0])
    tame = math.isfinite(value) and abs(value) <= _TAME and all(map(math.isfinite, numbers))
    if not protected and tame:
        return None
    if math.isnan(value):
        return sp.nan
    if math.isinf(value):
        return sp.oo if value > 0 else -sp.oo
    return sp.Float(value)


# ---------------------------------------------------------------------- from sympy


class _FromSympy:
    def __init__(self, grammar: Grammar, variables: Sequence[str] | None):
        self.g = grammar
        self.codes: list[int] = []
        self.consts: list[float] = []
        self.names = {name: k for k, name in enumerate(variables)} if variables else None

    def prim(self, mapping: str, want: str) -> Primitive | None:
        for p in self.g.primitives:
            if p.sympy == mapping and p.ret_type == want:
                return p
        return None

    def emit(self, mapping: str, args: Sequence[Any], want: str, expr: Any) -> None:
        p = self.prim(mapping, want)
        if p is None:
            raise ConversionError(f"{expr} needs {mapping!r}, which grammar {self.g.name!r} "
                                  f"does not have")
        self.codes.append(self.g.index[p.name])
        for a, t in zip(args, p.arg_types, strict=True):
            self.build(a, t)

    def fold(self, mapping: str, args: Sequence[Any], want: str, expr: Any) -> None:
        """Left fold of an n-ary sympy node into binary primitives."""
        if len(args) == 1:
            return self.build(args[0], want)
        p = self.prim(mapping, want)
        if p is None:
            raise ConversionError(f"{expr} needs {mapping!r}, which grammar {self.g.name!r} "
                                  f"does not have")
        self.codes.extend([self.g.index[p.name]] * (len(args) - 1))
        self.build(args[0], p.arg_types[0])
        for a in args[1:]:
            self.build(a, p.arg_types[1])
            # prefix order of a left fold: op op a0 a1 a2 ... is right for a chain of
            # binary nodes whose first argument is the running result.
        return None

    def build(self, e: Any, want: str) -> None:
        if isinstance(e, sp.Symbol):
            return self.variable(e, want)
        if e.is_Number or e in (sp.pi, sp.E) or isinstance(e, sp.NumberSymbol):
            return self.constant(e, want)
        if isinstance(e, sp.Add):
            return self.add(e, want)
        if isinstance(e, sp.Mul):
            return self.mul(e, want)
        if isinstance(e, sp.Pow):
            return self.power(e, want)
        if isinstance(e, sp.exp):
            return self.emit("exp", e.args, want, e)
        if isinstance(e, sp.re):  # our values are real: sympy's re() of them is the value
            return self.build(e.args[0], want)
        simple = {sp.sin: "sin", sp.cos: "cos", sp.tanh: "tanh", sp.log: "log", sp.Abs: "abs"}
        for cls, name in simple.items():
            if isinstance(e, cls):
                return self.emit(name, e.args, want, e)
        nary = {sp.Min: "min", sp.Max: "max", sp.And: "and", sp.Or: "or", sp.Xor: "xor"}
        for cls, name in nary.items():
            if isinstance(e, cls):
                return self.fold(name, list(e.args), want, e)
        if isinstance(e, sp.Not):
            return self.emit("not", e.args, want, e)
        if isinstance(e, sp.Nand | sp.Nor) and len(e.args) == 2:
            return self.emit("nand" if isinstance(e, sp.Nand) else "nor", e.args, want, e)
        if isinstance(e, sp.ITE):
            return self.emit("if", e.args, want, e)
        if isinstance(e, sp.Piecewise) and len(e.args) == 2 and e.args[1][1] == sp.true:
            (a, cond), (b, _) = e.args
            return self.emit("if", [cond, a, b], want, e)
        if isinstance(e, sp.StrictGreaterThan | sp.StrictLessThan):
            return self.emit("gt" if isinstance(e, sp.StrictGreaterThan) else "lt",
                             [e.lhs, e.rhs], want, e)
        raise ConversionError(f"cannot express {e} (a sympy {type(e).__name__}) in grammar "
                              f"{self.g.name!r}")

    def variable(self, e: sp.Symbol, want: str) -> None:
        name = e.name
        if self.names is not None:
            k = self.names.get(name)
        else:
            k = int(name[1:]) if name[:1] == "x" and name[1:].isdigit() else None
        if k is None:
            raise ConversionError(f"unknown symbol {name!r}; expected x0, x1, ...")
        if self.g.variable_type != want:
            raise ConversionError(f"variable {name!r} has type {self.g.variable_type!r} "
                                  f"where {want!r} is expected")
        self.codes.append(var_code(k))

    def constant(self, e: Any, want: str) -> None:
        c = self.g.constants
        if not c.enabled or c.type != want:
            raise ConversionError(f"constant {e}: grammar {self.g.name!r} has no constants "
                                  f"of type {want!r}")
        value = float(e)
        if value != value or abs(value) == float("inf"):
            raise ConversionError(f"constant {e} is not finite")
        self.codes.append(CONST)
        self.consts.append(value)

    def add(self, e: sp.Add, want: str) -> None:
        terms = list(e.as_ordered_terms())
        pos = [t for t in terms if not _negative(t)]
        neg = [-t for t in terms if _negative(t)]
        has_sub = self.prim("sub", want) is not None
        if not neg or not has_sub:
            return self.fold("add", terms, want, e)
        if not pos:  # -(a + b + ...)
            return self.build(sp.Mul(-1, sp.Add(*neg), evaluate=False), want)
        sub = self.prim("sub", want)
        assert sub is not None
        self.codes.extend([self.g.index[sub.name]] * len(neg))
        self.fold("add", pos, want, e)
        for t in neg:
            self.build(t, want)
        return None

    def mul(self, e: sp.Mul, want: str) -> None:
        coeff, factors = e.as_coeff_mul()
        if coeff == -1 and self.prim("neg", want) is not None:
            self.codes.append(self.g.index[self.prim("neg", want).name])  # type: ignore[union-attr]
            return self.build(sp.Mul(*factors), want)
        num = [f for f in factors if not _reciprocal(f)]
        den = [1 / f for f in factors if _reciprocal(f)]
        if coeff != 1:
            num.insert(0, coeff)
        if den and self.prim("div", want) is not None:
            div = self.prim("div", want)
            assert div is not None
            self.codes.append(self.g.index[div.name])
            if num:
                self.fold("mul", num, want, e)
            else:
                self.constant(sp.Integer(1), want)
            return self.fold("mul", den, want, e)
        return self.fold("mul", num + [1 / d for d in den], want, e)

    def power(self, e: sp.Pow, want: str) -> None:
        base, ex = e.args
        if ex == 2 and self.prim("square", want):
            return self.emit("square", [base], want, e)
        if ex == 3 and self.prim("cube", want):
            return self.emit("cube", [base], want, e)
        if ex == sp.Rational(1, 2) and self.prim("sqrt", want):
            return self.emit("sqrt", [base], want, e)
        if ex == -1 and self.prim("inv", want):
            return self.emit("inv", [base], want, e)
        if ex == -1 and self.prim("div", want) and self.g.constants.enabled:
            return self.emit("div", [sp.Integer(1), base], want, e)
        if ex.is_Integer and 2 <= int(ex) <= 8 and self.prim("mul", want) is not None:
            return self.fold("mul", [base] * int(ex), want, e)
        div = self.prim("div", want)
        if (ex.is_Integer and -8 <= int(ex) <= -2 and div is not None
                and self.g.constants.enabled and self.prim("mul", want) is not None):
            # 1 / (base * base ...): sympy would fold `1 / Mul(...)` straight back into
            # this Pow, so emit the division node by hand.
            self.codes.append(self.g.index[div.name])
            self.constant(sp.Integer(1), div.arg_types[0])
            return self.fold("mul", [base] * -int(ex), div.arg_types[1], e)
        return self.emit("pow", [base, ex], want, e)


def _negative(term: Any) -> bool:
    coeff, _ = term.as_coeff_mul()
    return bool(coeff.is_negative)


def _reciprocal(factor: Any) -> bool:
    return isinstance(factor, sp.Pow) and factor.args[1].is_negative is True


def from_sympy(expr: Any, grammar: Grammar, variables: Sequence[str] | None = None) -> Program:
    """Build a Program of `grammar` computing the sympy expression `expr`.

    Raises ConversionError naming the sub-expression the grammar cannot express.
    """
    if isinstance(expr, str):
        raise ConversionError("from_sympy takes a sympy expression; for text use "
                              "Program.parse")
    expr = sp.sympify(expr) if isinstance(expr, int | float) else expr
    if isinstance(expr, sp.Basic):
        expr = _real_parts(expr)
    b = _FromSympy(grammar, variables)
    b.build(expr, grammar.output_type)
    return Program(grammar, b.codes, b.consts)


def _real_parts(expr: Any) -> Any:
    """Our values are real: sympy's re(z) of them is z, and im(z) and arg(z) are 0
    (the plain reading holds where log and sqrt arguments are positive, so arg is 0
    there; sympy also writes arg(x) as atan2(0, x)). Sympy writes |exp(sin(log(x)))|
    as exp(sin(log|x|) * cosh(arg(x))) for a real x that may be negative; this turns
    it back into something a grammar has."""
    if not expr.has(sp.re, sp.im, sp.arg, sp.atan2):
        return expr

    def zero_angle(e: Any) -> bool:  # arg(z), and arg as sympy also writes it
        return isinstance(e, sp.im | sp.arg) or (isinstance(e, sp.atan2) and e.args[0] == 0)

    return expr.replace(zero_angle, lambda e: sp.Integer(0)) \
               .replace(lambda e: isinstance(e, sp.re), lambda e: e.args[0])


# ---------------------------------------------------------------------- JSON


def to_json(program: Program) -> str:
    """Self-describing JSON: the grammar name, the text, and the prefix node list."""
    g = program.grammar
    prefix: list[Any] = []
    k = 0
    for c in program.codes:
        if c == CONST:
            prefix.append({"const": program.consts[k]})
            k += 1
        elif c < -1:
            prefix.append(f"x{var_index(c)}")
        else:
            prefix.append(g.primitives[c].name)
    return json.dumps({"format": JSON_FORMAT, "version": JSON_VERSION, "grammar": g.name,
                       "text": str(program), "prefix": prefix})


def from_json(text: str, grammar: Grammar | None = None) -> Program:
    """Read `to_json` output. With `grammar`, its primitives must cover the program's."""
    try:
        data = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ConversionError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
        raise ConversionError(f"expected a JSON object with format {JSON_FORMAT!r}")
    if data.get("version") != JSON_VERSION:
        raise ConversionError(f"unsupported program JSON version {data.get('version')!r}; "
                              f"expected {JSON_VERSION}")
    g = grammar or load_grammar(str(data.get("grammar")))
    prefix = data.get("prefix")
    if not isinstance(prefix, list):
        raise ConversionError("field 'prefix': expected a list of node names")
    codes: list[int] = []
    consts: list[float] = []
    for k, tok in enumerate(prefix):
        if isinstance(tok, dict) and set(tok) == {"const"}:
            codes.append(CONST)
            consts.append(float(tok["const"]))
        elif isinstance(tok, str) and tok in g.index:
            codes.append(g.index[tok])
        elif isinstance(tok, str) and tok[:1] == "x" and tok[1:].isdigit():
            codes.append(var_code(int(tok[1:])))
        else:
            raise ConversionError(f"prefix[{k}] = {tok!r}: not a primitive of grammar "
                                  f"{g.name!r}, a variable x<k> or {{'const': value}}")
    try:
        return Program(g, codes, consts)
    except ValueError as exc:
        raise ConversionError(f"invalid program: {exc}") from None


# ---------------------------------------------------------------------- readable form

SIMPLIFY_MAX_OPS = 12  # sympy.simplify takes seconds beyond this (8 s at 19 operations)


def readable_sympy(program: Program, variables: Sequence[str] | None = None) -> sp.Expr:
    """The plain formula of the program after constant folding with the kernel
    semantics (hybrid_gp.simplify), simplified by sympy when it is small enough to do
    quickly; constants tidied (see `_tidy`). `variables` names x0, x1, ... (say, the
    columns of the user's data)."""
    from .simplify import simplify

    # zoo can only come from pow(0, negative), which the kernels compute as +inf.
    expr = to_sympy(simplify(program), variables=variables).xreplace({sp.zoo: sp.oo})
    try:
        if sp.count_ops(expr) <= SIMPLIFY_MAX_OPS:
            expr = sp.simplify(expr)
    except (RecursionError, TypeError, ValueError, ZeroDivisionError):
        pass
    tidied = expr.xreplace({f: _tidy(f) for f in expr.atoms(sp.Float)})
    if tidied.has(sp.zoo, sp.nan, sp.I):  # a tiny constant made 0 under a log or a division
        tidied = expr.xreplace({f: _tidy(f, keep_tiny=True) for f in expr.atoms(sp.Float)})
    return tidied


def _tidy(f: sp.Float, keep_tiny: bool = False) -> sp.Expr:
    """A constant as a person would write it: fitting noise below 1e-12 is 0, values
    within 1e-9 of an integer are that integer, the rest keep 6 significant digits.
    With `keep_tiny` no nonzero constant becomes 0 (where 0 would leave a log of 0 or a
    division by 0)."""
    v = float(f)
    if keep_tiny and v != 0 and abs(v) <= 1e-9:
        return sp.Float(f, 6)
    if abs(v) < 1e-12:
        return sp.Integer(0)
    if abs(v - round(v)) <= 1e-9 * max(1.0, abs(v)):
        return sp.Integer(round(v))
    return sp.Float(f, 6)
