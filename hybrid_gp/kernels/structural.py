"""Structural canonical keys of a compiled batch: the exact, cheap layer of the hash.

Two programs get the same 128-bit key when they are the same tree up to the order of
the arguments of commutative operations and up to folding of constant subtrees (a
subtree without variables is replaced by its value, computed here with scalar libm
calls following docs/semantics.md; the key only needs equal subtrees to fold equally,
so the last bit may differ from the vectorised interpreter's). Associativity and
algebra are left to the numeric fingerprint. One pass over the codes per program; no
Python per node. It does not call the interpreter, so it compiles in about a second.
kernels/reference_structural.py is the plain-Python twin (the same keys, tested).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import opcodes as oc

_JIT = dict(cache=True, error_model="numpy", nogil=True)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_SALT_VAR = np.uint64(0xA0761D6478BD642F)
_SALT_CONST = np.uint64(0xE7037ED1A0B428DB)
_SALT_OP = np.uint64(0x8EBC6AF09C88C6E3)
_SALT_SECOND = np.uint64(0x589965CC75374CC3)
_CANONICAL_NAN = np.uint64(0x7FF8000000000000)


@njit(**_JIT)
def _mix(x):
    """splitmix64 finaliser: a bijective avalanche of 64 bits."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


@njit(**_JIT)
def _value_bits(v, scratch, scratch_bits):
    """Bits of a float64 with -0.0 -> 0.0 and every NaN -> one NaN (scratch: one
    float64 and its uint64 view, so no allocation per constant)."""
    if v != v:
        return _CANONICAL_NAN
    scratch[0] = v + 0.0
    return scratch_bits[0]


@njit(**_JIT)
def fold(op, a, b, c):
    """One operation on scalars (first argument a), with the semantics of
    docs/semantics.md."""
    if op == oc.ADD:
        return a + b
    if op == oc.SUB:
        return a - b
    if op == oc.MUL:
        return a * b
    if op == oc.DIV:
        return 1.0 if abs(b) <= oc.EPS else a / b
    if op == oc.NEG:
        return -a
    if op == oc.ABS:
        return abs(a)
    if op == oc.SQUARE:
        return a * a
    if op == oc.CUBE:
        return a * a * a
    if op == oc.INV:
        return 1.0 if abs(a) <= oc.EPS else 1.0 / a
    if op == oc.SQRT:
        return np.sqrt(abs(a))
    if op == oc.EXP:
        return np.exp(a)
    if op == oc.LOG:
        return 0.0 if abs(a) <= oc.EPS else np.log(abs(a))
    if op == oc.SIN:
        return np.sin(a)
    if op == oc.COS:
        return np.cos(a)
    if op == oc.TANH:
        return np.tanh(a)
    if op == oc.POW:
        return abs(a) ** b
    if op == oc.MIN:
        return a if (a < b or a != a) else b
    if op == oc.MAX:
        return a if (a > b or a != a) else b
    if op == oc.IF:
        return b if a != 0 else c
    ta, tb = a != 0, b != 0
    if op == oc.AND:
        return 1.0 if (ta and tb) else 0.0
    if op == oc.OR:
        return 1.0 if (ta or tb) else 0.0
    if op == oc.NOT:
        return 0.0 if ta else 1.0
    if op == oc.NAND:
        return 0.0 if (ta and tb) else 1.0
    if op == oc.NOR:
        return 0.0 if (ta or tb) else 1.0
    if op == oc.XOR:
        return 1.0 if ta != tb else 0.0
    if op == oc.GT:
        return 1.0 if a > b else 0.0
    if op == oc.LT:
        return 1.0 if a < b else 0.0
    return np.nan


@njit(**_JIT)
def _combine(h, child):
    return _mix(h ^ (child + _GOLDEN + (h << np.uint64(6)) + (h >> np.uint64(2))))


@njit(**_JIT)
def structural_keys(codes, code_off, consts, const_off, arity, commutative, out):
    """out[p] = (k1, k2): the 128-bit canonical key of program p."""
    _keys_of(0, out.shape[0], codes, code_off, consts, const_off, arity, commutative, out)


@njit(parallel=True, **_JIT)
def structural_keys_parallel(codes, code_off, consts, const_off, arity, commutative, out,
                             workers):
    """As structural_keys, the programs split into `workers` equal runs (keys cost
    about the same per node, and a batch's programs are of similar sizes)."""
    n = out.shape[0]
    for w in prange(workers):
        _keys_of(w * n // workers, (w + 1) * n // workers, codes, code_off, consts,
                 const_off, arity, commutative, out)


@njit(**_JIT)
def _keys_of(p0, p1, codes, code_off, consts, const_off, arity, commutative, out):
    """Keys of programs p0..p1-1."""
    longest = 0
    for p in range(p0, p1):
        longest = max(longest, code_off[p + 1] - code_off[p])
    # One stack for the whole run (an allocation per program cost more than its keys).
    h1 = np.empty(longest, dtype=np.uint64)
    h2 = np.empty(longest, dtype=np.uint64)
    is_const = np.empty(longest, dtype=np.bool_)
    value = np.empty(longest, dtype=np.float64)  # the value of constant entries
    scratch = np.empty(1, dtype=np.float64)
    scratch_bits = scratch.view(np.uint64)
    for p in range(p0, p1):
        start, end = code_off[p], code_off[p + 1]
        sp = 0
        kc = const_off[p + 1]
        for k in range(end - 1, start - 1, -1):
            c = codes[k]
            if c == -1:
                kc -= 1
                value[sp] = consts[kc]
                bits = _value_bits(consts[kc], scratch, scratch_bits)
                h1[sp] = _mix(bits ^ _SALT_CONST)
                h2[sp] = _mix(bits + _SALT_SECOND)
                is_const[sp] = True
                sp += 1
                continue
            if c < -1:
                v = np.uint64(-c - 2)
                h1[sp] = _mix(v ^ _SALT_VAR)
                h2[sp] = _mix((v + _SALT_SECOND) ^ _SALT_VAR)
                is_const[sp] = False
                sp += 1
                continue
            a = arity[c]
            top = sp - 1  # first argument
            bottom = sp - a  # last argument
            all_const = True
            for j in range(bottom, sp):
                all_const = all_const and is_const[j]
            if all_const:
                x = value[top]
                y = value[top - 1] if a > 1 else 0.0
                z = value[top - 2] if a > 2 else 0.0
                folded = fold(c, x, y, z)
                bits = _value_bits(folded, scratch, scratch_bits)
                x1 = _mix(bits ^ _SALT_CONST)
                x2 = _mix(bits + _SALT_SECOND)
                value[bottom] = folded
            else:
                x1 = _mix(np.uint64(c) ^ _SALT_OP)
                x2 = _mix(np.uint64(c) + _SALT_SECOND)
                if a == 2 and commutative[c]:
                    lo, hi = (top, bottom) if h1[top] <= h1[bottom] else (bottom, top)
                    x1 = _combine(_combine(x1, h1[lo]), h1[hi])
                    x2 = _combine(_combine(x2, h2[lo]), h2[hi])
                else:
                    for j in range(top, bottom - 1, -1):  # first argument first
                        x1 = _combine(x1, h1[j])
                        x2 = _combine(x2, h2[j])
            sp = bottom
            h1[sp] = x1
            h2[sp] = x2
            is_const[sp] = all_const
            sp += 1
        out[p, 0] = h1[0]
        out[p, 1] = h2[0]
