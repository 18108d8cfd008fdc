"""Exact-recovery judge: does a found formula compute the target function exactly?

Cheap checks come first. A numeric comparison on random points of the input domain
(complex arithmetic, so the plain reading's principal branches count) rejects almost
every wrong answer in microseconds. Then sympy must prove `simplify(f - target) == 0`,
under a size limit and a time cap (sympy can hang), with variables declared positive
where the domain is >= 0 (Nguyen-7, -8 and -11 need it). A candidate with float
constants is tried again with each constant rounded to a simple rational within the
tolerance. If sympy runs out of time, or cannot simplify a difference that is
numerically zero, 50-digit arithmetic on random rational points decides: a difference
below 1e-40 everywhere counts as exact, and `Verdict.how` says so.

`formula_to_sympy` reads other systems' formula text (pyoperon, gplearn) through an
`ast` whitelist; nothing is evaluated.
"""

from __future__ import annotations

import ast
import math
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from .errors import ConversionError

__all__ = ["Verdict", "formula_to_sympy", "is_exact", "judge", "round_constants"]

HIGH_PRECISION_DIGITS = 50
HIGH_PRECISION_ZERO = 1e-40
HIGH_PRECISION_TIME = 10.0  # seconds the 50-digit fallback gets at least


@dataclass(frozen=True)
class Verdict:
    """The judge's answer and how it was reached.

    how: "identical", "symbolic", "rounded-constants", "high-precision" (exact);
    "numeric-mismatch", "not-equal", "timeout", "too-complex", "invalid" (not exact).
    """

    exact: bool
    how: str


def is_exact(candidate: Any, target: sp.Expr, *, tolerance: float = 1e-6,
             domain: Sequence[tuple[float, float]] | None = None,
             time_limit: float = 10.0) -> bool:
    """True when `candidate` (a Program, a sympy expression or formula text) equals
    `target` as a function on `domain` (per-variable (low, high); [-1, 1] if None).

    Constants within `tolerance` (relative) of a rational with a denominator up to 12
    count as that rational. Uses the plain sympy reading of a Program.
    """
    return judge(candidate, target, tolerance=tolerance, domain=domain,
                 time_limit=time_limit).exact


def judge(candidate: Any, target: sp.Expr, *, tolerance: float = 1e-6,
          domain: Sequence[tuple[float, float]] | None = None, time_limit: float = 10.0,
          max_ops: int = 400, n_points: int = 64, seed: int = 0) -> Verdict:
    """`is_exact` with the reason. `time_limit` caps each sympy attempt (the 50-digit
    fallback gets at least 10 s); `max_ops` bounds what sympy is asked to simplify;
    `seed` fixes the random test points."""
    try:
        cand = _as_sympy(candidate)
    except ConversionError:
        return Verdict(False, "invalid")
    target = sp.sympify(target)
    cand, target, n_vars = _common_symbols(cand, target, domain)
    if cand.has(sp.zoo, sp.nan, sp.oo, -sp.oo, sp.I):
        return Verdict(False, "invalid")
    if cand == target:
        return Verdict(True, "identical")
    bounds = _bounds(domain, n_vars)
    rng = np.random.default_rng(seed)
    symbols = _ordered_symbols(cand, target)
    points = _draw_points(rng, bounds, symbols, n_points)
    if not _numerically_close(cand, target, points, max(1e-9, 10.0 * tolerance)):
        return Verdict(False, "numeric-mismatch")
    versions = [(cand, "symbolic")]
    if cand.has(sp.Float):
        versions.append((round_constants(cand, tolerance), "rounded-constants"))
    if sp.count_ops(cand) + sp.count_ops(target) > max_ops:
        return _high_precision(versions[-1][0], target, symbols, bounds, rng, time_limit,
                               fallback="too-complex")
    timed_out = False
    for version, how in versions:
        try:
            with _time_cap(time_limit):
                if _symbolic_zero(version - target):
                    return Verdict(True, how)
        except _Timeout:
            timed_out = True
    return _high_precision(versions[-1][0], target, symbols, bounds, rng, time_limit,
                           fallback="timeout" if timed_out else "not-equal")


# ---------------------------------------------------------------------- preparation


def _as_sympy(candidate: Any) -> sp.Expr:
    from .program import Program

    if isinstance(candidate, Program):
        return candidate.to_sympy()
    if isinstance(candidate, str):
        return formula_to_sympy(candidate)
    if isinstance(candidate, sp.Basic):
        return candidate
    if isinstance(candidate, int | float):
        return sp.sympify(candidate)
    raise ConversionError(f"expected a Program, a sympy expression or text, got "
                          f"{type(candidate).__name__}")


def _var_index(name: str) -> int | None:
    return int(name[1:]) if name[:1] in "xX" and name[1:].isdigit() else None


def _common_symbols(cand: sp.Expr, target: sp.Expr,
                    domain: Sequence[tuple[float, float]] | None
                    ) -> tuple[sp.Expr, sp.Expr, int]:
    """Both expressions over the same real symbols (matched by name), positive where
    the domain of that variable is >= 0."""
    names = sorted({s.name for s in cand.free_symbols | target.free_symbols})
    indices = [_var_index(n) for n in names]
    n_vars = max([i + 1 for i in indices if i is not None] + [len(domain or ())])
    fresh = {}
    for name, k in zip(names, indices, strict=True):
        positive = (domain is not None and k is not None and k < len(domain)
                    and domain[k][0] >= 0)
        fresh[name] = sp.Symbol(name, positive=True) if positive else sp.Symbol(name, real=True)

    def rebind(e: sp.Expr) -> sp.Expr:
        return e.xreplace({s: fresh[s.name] for s in e.free_symbols})

    return rebind(cand), rebind(target), n_vars


def _bounds(domain: Sequence[tuple[float, float]] | None, n: int) -> list[tuple[float, float]]:
    given = [(float(lo), float(hi)) for lo, hi in (domain or ())]
    return given + [(-1.0, 1.0)] * (n - len(given))


def _ordered_symbols(*exprs: sp.Expr) -> list[sp.Symbol]:
    return sorted(set().union(*(e.free_symbols for e in exprs)), key=lambda s: s.name)


def _draw_points(rng: np.random.Generator, bounds: list[tuple[float, float]],
                 symbols: list[sp.Symbol], n: int) -> dict[sp.Symbol, np.ndarray]:
    points = {}
    for s in symbols:
        k = _var_index(s.name)
        lo, hi = bounds[k] if k is not None and k < len(bounds) else (-1.0, 1.0)
        if s.is_positive:
            lo = max(lo, 1e-3 * (hi - lo))  # keep clear of the boundary at 0
        points[s] = rng.uniform(lo, hi, n)
    return points


# ---------------------------------------------------------------------- numeric layer

_NUMPY_FUNCS: dict[type, Callable[[np.ndarray], np.ndarray]] = {
    sp.exp: np.exp, sp.log: np.log, sp.sin: np.sin, sp.cos: np.cos, sp.tan: np.tan,
    sp.tanh: np.tanh, sp.sinh: np.sinh, sp.cosh: np.cosh, sp.asin: np.arcsin,
    sp.acos: np.arccos, sp.atan: np.arctan, sp.asinh: np.arcsinh, sp.Abs: np.abs,
}


class _Unsupported(Exception):
    """The numeric walker does not know a node; the numeric check is skipped."""


def _numeric(e: sp.Basic, env: Mapping[sp.Symbol, np.ndarray]) -> np.ndarray | complex:
    """Complex values of `e` on the points in `env` (principal branches)."""
    if e.is_Symbol:
        return env[e].astype(np.complex128)
    if e.is_Number or isinstance(e, sp.NumberSymbol):
        return complex(e)
    if isinstance(e, sp.Add):
        return sum((_numeric(a, env) for a in e.args), start=0j)
    if isinstance(e, sp.Mul):
        out: Any = 1 + 0j
        for a in e.args:
            out = out * _numeric(a, env)
        return out
    if isinstance(e, sp.Pow):
        return np.power(_numeric(e.base, env), _numeric(e.exp, env))
    fn = _NUMPY_FUNCS.get(type(e))
    if fn is not None and len(e.args) == 1:
        return fn(_numeric(e.args[0], env))
    raise _Unsupported(type(e).__name__)


def _numerically_close(cand: sp.Expr, target: sp.Expr, points: Mapping[sp.Symbol, np.ndarray],
                       rtol: float) -> bool:
    """False only when the two differ somewhere the target is finite; True when they
    agree or the check cannot be made."""
    n = len(next(iter(points.values()))) if points else 1
    try:
        with np.errstate(all="ignore"):
            c = np.broadcast_to(_numeric(cand, points), (n,))
            t = np.broadcast_to(_numeric(target, points), (n,))
    except (_Unsupported, TypeError, ValueError, OverflowError):
        return True
    ok = np.isfinite(t)
    if ok.sum() < max(1, n // 4):
        return True  # the target is not finite on the domain: leave it to sympy
    c, t = c[ok], t[ok]
    if not np.all(np.isfinite(c)):
        return False
    return bool(np.all(np.abs(c - t) <= rtol * (1.0 + np.abs(t))))


def _high_precision(cand: sp.Expr, target: sp.Expr, symbols: list[sp.Symbol],
                    bounds: list[tuple[float, float]], rng: np.random.Generator,
                    time_limit: float, fallback: str, n_points: int = 24) -> Verdict:
    """Exact when the difference is below 1e-40 at 50 digits on random rational points."""
    if cand.has(sp.Float):
        return Verdict(False, fallback)  # a float constant is never exact at 50 digits
    diff = cand - target
    drawn = _draw_points(rng, bounds, symbols, n_points)
    try:
        with _time_cap(max(time_limit, HIGH_PRECISION_TIME)):
            for i in range(n_points):
                subs = {s: sp.Rational(Fraction(float(drawn[s][i])).limit_denominator(10**6))
                        for s in symbols}
                t = complex(target.evalf(HIGH_PRECISION_DIGITS, subs=subs))
                if not (math.isfinite(t.real) and math.isfinite(t.imag)):
                    continue
                d = complex(diff.evalf(HIGH_PRECISION_DIGITS, subs=subs))
                if not abs(d) <= HIGH_PRECISION_ZERO * (1.0 + abs(t)):
                    return Verdict(False, fallback)
    except _Timeout:
        return Verdict(False, "timeout")
    except (TypeError, ValueError):
        return Verdict(False, fallback)
    return Verdict(True, "high-precision")


# ---------------------------------------------------------------------- symbolic layer


def _symbolic_zero(diff: sp.Expr) -> bool:
    """Cheapest rewrites first; simplify last."""
    if diff == 0:
        return True
    if sp.expand(diff) == 0:
        return True
    if sp.simplify(diff) == 0:
        return True
    rewritten = sp.expand_log(sp.powsimp(sp.expand_power_exp(diff)))
    return sp.simplify(rewritten) == 0


def round_constants(expr: sp.Expr, tolerance: float = 1e-6,
                    max_denominator: int = 12) -> sp.Expr:
    """Replace each float constant by the simplest rational (denominator up to
    `max_denominator`) within `tolerance` relative (absolute below 1), else keep it."""
    mapping = {}
    for f in expr.atoms(sp.Float):
        value = float(f)
        near = Fraction(value).limit_denominator(max_denominator)
        if abs(value - float(near)) <= tolerance * max(1.0, abs(value)):
            mapping[f] = sp.Rational(near.numerator, near.denominator)
    return expr.xreplace(mapping) if mapping else expr


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so sympy's `except Exception` lets it by."""


@contextmanager
def _time_cap(seconds: float) -> Iterator[None]:
    """Interrupt the block after `seconds` (SIGALRM; in the main thread on Unix only,
    elsewhere the block runs uncapped and `max_ops` is the only guard)."""
    usable = (hasattr(signal, "setitimer") and seconds > 0
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL if previous is None else previous)


# ---------------------------------------------------------------------- formula text

_FUNCTIONS: dict[str, tuple[int, Callable[..., sp.Expr]]] = {
    "add": (2, lambda a, b: a + b), "sub": (2, lambda a, b: a - b),
    "mul": (2, lambda a, b: a * b), "div": (2, lambda a, b: a / b),
    "pow": (2, lambda a, b: a**b), "neg": (1, lambda a: -a), "inv": (1, lambda a: 1 / a),
    "square": (1, lambda a: a**2), "cube": (1, lambda a: a**3), "sqrt": (1, sp.sqrt),
    "exp": (1, sp.exp), "log": (1, sp.log), "sin": (1, sp.sin), "cos": (1, sp.cos),
    "tan": (1, sp.tan), "tanh": (1, sp.tanh), "abs": (1, sp.Abs),
}
_MAX_TEXT = 20_000
_MAX_DEPTH = 200


def formula_to_sympy(text: str, variables: Mapping[str, str] | None = None) -> sp.Expr:
    """Read formula text into sympy without evaluating it.

    Accepts infix (+ - * / ** and ^ for power, unary minus), numbers, the functions
    add sub mul div pow neg inv square cube sqrt exp log sin cos tan tanh abs (so both
    pyoperon's infix and gplearn's prefix `add(X0, mul(X0, X1))` read), and names
    x0, x1, ... or X0, X1, ... (0-based). `variables` renames others (name -> "xK").
    Anything else raises ConversionError.
    """
    if len(text) > _MAX_TEXT:
        raise ConversionError(f"formula text of {len(text)} characters is too long")
    try:
        tree = ast.parse(text.strip().replace("^", "**"), mode="eval").body
    except SyntaxError as exc:
        raise ConversionError(f"cannot read formula {text[:60]!r}: {exc.msg}") from None
    return _read(tree, dict(variables or {}), 0)


def _read(node: ast.AST, names: dict[str, str], depth: int) -> sp.Expr:
    if depth > _MAX_DEPTH:
        raise ConversionError("formula is nested too deeply")
    ops: dict[type, Callable[[sp.Expr, sp.Expr], sp.Expr]] = {
        ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
        ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
        ast.Pow: lambda a, b: a**b}
    if isinstance(node, ast.BinOp) and type(node.op) in ops:
        return ops[type(node.op)](_read(node.left, names, depth + 1),
                                  _read(node.right, names, depth + 1))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _read(node.operand, names, depth + 1)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        spec = _FUNCTIONS.get(node.func.id.lower())
        if spec is None or len(node.args) != spec[0]:
            raise ConversionError(f"unknown function {node.func.id}() with "
                                  f"{len(node.args)} argument(s)")
        return spec[1](*[_read(a, names, depth + 1) for a in node.args])
    if isinstance(node, ast.Name):
        name = names.get(node.id, node.id)
        k = _var_index(name)
        if k is None:
            raise ConversionError(f"unknown name {node.id!r}; expected x0, x1, ...")
        return sp.Symbol(f"x{k}", real=True)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return sp.Integer(node.value) if isinstance(node.value, int) else sp.Float(node.value)
    raise ConversionError(f"{type(node).__name__} is not allowed in a formula")
