"""The plain-Python twin of kernels/structural.py: the same 128-bit canonical keys, for
tests.

64-bit arithmetic is Python ints masked to 64 bits; folding uses the `math` module's
libm calls, as the kernel's scalar calls do, with its IEEE results where `math` raises
(overflow gives inf, a domain error NaN, 0 ** negative inf).
"""

from __future__ import annotations

import math

import numpy as np

from . import opcodes as oc
from . import structural as ks

_MASK = (1 << 64) - 1
_GOLDEN, _SALT_VAR = int(ks._GOLDEN), int(ks._SALT_VAR)
_SALT_CONST, _SALT_OP = int(ks._SALT_CONST), int(ks._SALT_OP)
_SALT_SECOND, _CANONICAL_NAN = int(ks._SALT_SECOND), int(ks._CANONICAL_NAN)


def mix(x: int) -> int:
    """SplitMix64's finaliser."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def combine(h: int, child: int) -> int:
    return mix(h ^ ((child + _GOLDEN + ((h << 6) & _MASK) + (h >> 2)) & _MASK))


def value_bits(v: float) -> int:
    """The double's bits, -0.0 as 0.0 and every NaN as one NaN."""
    if v != v:
        return _CANONICAL_NAN
    return int(np.float64(v + 0.0).view(np.uint64))


def _libm(f, x: float) -> float:
    try:
        return f(x)
    except OverflowError:
        return math.inf
    except ValueError:  # sin or cos of inf
        return math.nan


def _pow(a: float, b: float) -> float:
    base = abs(a)
    if base == 0.0 and b < 0:
        return math.inf
    try:
        return math.pow(base, b)
    except OverflowError:
        return math.inf


def fold(op: int, a: float, b: float, c: float) -> float:
    """Twin of structural.fold."""
    eps = oc.EPS
    table = {
        oc.ADD: lambda: a + b, oc.SUB: lambda: a - b, oc.MUL: lambda: a * b,
        oc.DIV: lambda: 1.0 if abs(b) <= eps else a / b, oc.NEG: lambda: -a,
        oc.ABS: lambda: abs(a), oc.SQUARE: lambda: a * a, oc.CUBE: lambda: a * a * a,
        oc.INV: lambda: 1.0 if abs(a) <= eps else 1.0 / a,
        oc.SQRT: lambda: math.sqrt(abs(a)), oc.EXP: lambda: _libm(math.exp, a),
        oc.LOG: lambda: 0.0 if abs(a) <= eps else _libm(math.log, abs(a)),
        oc.SIN: lambda: _libm(math.sin, a), oc.COS: lambda: _libm(math.cos, a),
        oc.TANH: lambda: math.tanh(a), oc.POW: lambda: _pow(a, b),
        oc.MIN: lambda: a if (a < b or a != a) else b,
        oc.MAX: lambda: a if (a > b or a != a) else b,
        oc.IF: lambda: b if a != 0 else c,
        oc.AND: lambda: float(a != 0 and b != 0), oc.OR: lambda: float(a != 0 or b != 0),
        oc.NOT: lambda: float(a == 0), oc.NAND: lambda: float(not (a != 0 and b != 0)),
        oc.NOR: lambda: float(not (a != 0 or b != 0)),
        oc.XOR: lambda: float((a != 0) != (b != 0)), oc.GT: lambda: float(a > b),
        oc.LT: lambda: float(a < b)}
    return table[op]() if op in table else math.nan


def structural_keys_reference(codes: np.ndarray, code_off: np.ndarray, consts: np.ndarray,
                              const_off: np.ndarray) -> list[tuple[int, int]]:
    """The (k1, k2) key of each program of a compiled batch (opcodes, -1 constants,
    -k-2 variables), walked from the end with a stack of (h1, h2, constant value)."""
    keys = []
    for p in range(len(code_off) - 1):
        stack: list[tuple[int, int, float | None]] = []  # None: not a constant
        kc = int(const_off[p + 1])
        for k in range(int(code_off[p + 1]) - 1, int(code_off[p]) - 1, -1):
            c = int(codes[k])
            if c == -1:
                kc -= 1
                v = float(consts[kc])
                bits = value_bits(v)
                stack.append((mix(bits ^ _SALT_CONST), mix((bits + _SALT_SECOND) & _MASK), v))
                continue
            if c < -1:
                v = -c - 2
                stack.append((mix(v ^ _SALT_VAR), mix(((v + _SALT_SECOND) & _MASK) ^ _SALT_VAR),
                              None))
                continue
            a = int(oc.ARITY[c])
            args = stack[-a:][::-1]  # first argument first
            del stack[-a:]
            if all(arg[2] is not None for arg in args):
                values = [arg[2] for arg in args] + [0.0] * (3 - a)
                folded = fold(c, *values)
                bits = value_bits(folded)
                stack.append((mix(bits ^ _SALT_CONST), mix((bits + _SALT_SECOND) & _MASK),
                              folded))
                continue
            x1, x2 = mix(c ^ _SALT_OP), mix((c + _SALT_SECOND) & _MASK)
            if a == 2 and oc.COMMUTATIVE[c]:
                args.sort(key=lambda arg: arg[0])  # by first hash word; stable
            for h1, h2, _ in args:
                x1, x2 = combine(x1, h1), combine(x2, h2)
            stack.append((x1, x2, None))
        keys.append(stack[0][:2])
    return keys
