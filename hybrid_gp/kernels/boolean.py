"""Numba kernel: Boolean programs on packed truth tables.

Every fitness case is one bit. Case c sits in word c // 64, bit c % 64; the column of
input k is a word array whose bit c is input k's value in case c. A program runs once
over all words, so each machine operation decides 64 cases; its output is XORed with
the packed target and the differing bits are counted (misses = cases - hits).

Node codes as in kernels/interpreter.py. Only the logical operations may appear (and,
or, not, nand, nor, xor, if); the Python wrapper (problem_kinds/boolean.py) checks
that. A constant is all-true when non-zero, as docs/semantics.md reads truth values.
Numpy twin: kernels/reference_boolean.py.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import opcodes as oc

_JIT = dict(cache=True, error_model="numpy", nogil=True)

AND, OR, NOT, NAND, NOR, XOR, IF = oc.AND, oc.OR, oc.NOT, oc.NAND, oc.NOR, oc.XOR, oc.IF
LOGICAL_OPS = (AND, OR, NOT, NAND, NOR, XOR, IF)

ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
ZERO = np.uint64(0)
_M1 = np.uint64(0x5555_5555_5555_5555)
_M2 = np.uint64(0x3333_3333_3333_3333)
_M4 = np.uint64(0x0F0F_0F0F_0F0F_0F0F)
_H01 = np.uint64(0x0101_0101_0101_0101)
_S1, _S2, _S4, _S56 = np.uint64(1), np.uint64(2), np.uint64(4), np.uint64(56)


@njit(**_JIT)
def popcount(x):
    """Set bits of one uint64 (SWAR: pairs, nibbles, bytes, then one multiply)."""
    x = x - ((x >> _S1) & _M1)
    x = (x & _M2) + ((x >> _S2) & _M2)
    x = (x + (x >> _S4)) & _M4
    return (x * _H01) >> _S56


@njit(**_JIT)
def run_packed(codes, start, end, consts, const_end, arity, words, stack):
    """Evaluate codes[start:end] on every packed case; the result is left in stack[0]."""
    n_words = words.shape[1]
    sp = 0
    kc = const_end
    for k in range(end - 1, start - 1, -1):
        c = codes[k]
        if c == -1:
            kc -= 1
            v = ONES if consts[kc] != 0 else ZERO
            top = stack[sp]
            for w in range(n_words):
                top[w] = v
            sp += 1
        elif c < -1:
            col = words[-c - 2]
            top = stack[sp]
            for w in range(n_words):
                top[w] = col[w]
            sp += 1
        elif arity[c] == 1:  # NOT, the only unary logical operation
            a = stack[sp - 1]
            for w in range(n_words):
                a[w] = ~a[w]
        elif arity[c] == 2:
            a, b = stack[sp - 1], stack[sp - 2]  # a is the first argument
            if c == AND:
                for w in range(n_words):
                    b[w] = a[w] & b[w]
            elif c == OR:
                for w in range(n_words):
                    b[w] = a[w] | b[w]
            elif c == NAND:
                for w in range(n_words):
                    b[w] = ~(a[w] & b[w])
            elif c == NOR:
                for w in range(n_words):
                    b[w] = ~(a[w] | b[w])
            elif c == XOR:
                for w in range(n_words):
                    b[w] = a[w] ^ b[w]
            sp -= 1
        else:  # IF(cond, yes, no)
            cond, yes, no = stack[sp - 1], stack[sp - 2], stack[sp - 3]
            for w in range(n_words):
                no[w] = (cond[w] & yes[w]) | (~cond[w] & no[w])
            sp -= 2


@njit(**_JIT)
def _misses_program(p, batch, words, target, last_mask, depth):
    codes, code_off, consts, const_off, arity = batch
    n_words = words.shape[1]
    stack = np.empty((depth, n_words), dtype=np.uint64)
    run_packed(codes, code_off[p], code_off[p + 1], consts, const_off[p + 1], arity, words,
               stack)
    out = stack[0]
    total = ZERO
    for w in range(n_words - 1):
        total += popcount(out[w] ^ target[w])
    total += popcount((out[n_words - 1] ^ target[n_words - 1]) & last_mask)
    return total


@njit(**_JIT)
def misses_batch_serial(batch, words, target, last_mask, depth, out):
    """out[p] = cases program p gets wrong."""
    for p in range(out.shape[0]):
        out[p] = _misses_program(p, batch, words, target, last_mask, depth)


@njit(parallel=True, **_JIT)
def misses_batch_parallel(batch, words, target, last_mask, depth, out):
    for p in prange(out.shape[0]):
        out[p] = _misses_program(p, batch, words, target, last_mask, depth)
