"""Numba stack interpreter over a compiled batch of programs.

A batch is four flat arrays (see hybrid_gp.compiler): node codes in prefix order with
per-program offsets, and constants with per-program offsets. A program is evaluated by
walking its prefix codes from the end with a stack of row blocks: each node runs one
tight loop over a block of rows, so the loops vectorise and the stack stays in cache.
Kernel node codes: c >= 0 is an opcode (kernels/opcodes.py), -1 a constant, -k-2
variable k. Semantics: docs/semantics.md; numpy twin: kernels/reference.py.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import opcodes as oc
from .vecmath import vcos, vexp, vlog, vsin

_JIT = dict(cache=True, error_model="numpy", nogil=True)

ADD, SUB, MUL, DIV, NEG, ABS = oc.ADD, oc.SUB, oc.MUL, oc.DIV, oc.NEG, oc.ABS
SQUARE, SQRT, EXP, LOG, SIN, COS, TANH, POW = (
    oc.SQUARE, oc.SQRT, oc.EXP, oc.LOG, oc.SIN, oc.COS, oc.TANH, oc.POW,
)
MIN, MAX, CUBE, INV = oc.MIN, oc.MAX, oc.CUBE, oc.INV
AND, OR, NOT, NAND, NOR, XOR, IF, GT, LT = (
    oc.AND, oc.OR, oc.NOT, oc.NAND, oc.NOR, oc.XOR, oc.IF, oc.GT, oc.LT,
)
EPS = oc.EPS


@njit(**_JIT)
def stack_depth(codes, start, end, arity):
    """Deepest stack the reverse-prefix walk of codes[start:end] reaches."""
    sp = 0
    deepest = 0
    for k in range(end - 1, start - 1, -1):
        c = codes[k]
        if c < 0:
            sp += 1
        else:
            sp -= arity[c] - 1
        if sp > deepest:
            deepest = sp
    return deepest


@njit(**_JIT)
def batch_stack_depth(codes, code_off, arity):
    """Deepest stack over all programs of a batch (at least 1)."""
    deepest = 1
    for p in range(code_off.shape[0] - 1):
        d = stack_depth(codes, code_off[p], code_off[p + 1], arity)
        if d > deepest:
            deepest = d
    return deepest


@njit(**_JIT)
def _unary(op, a, nb):
    if op == NEG:
        for r in range(nb):
            a[r] = -a[r]
    elif op == ABS:
        for r in range(nb):
            a[r] = abs(a[r])
    elif op == SQUARE:
        for r in range(nb):
            a[r] = a[r] * a[r]
    elif op == CUBE:
        for r in range(nb):
            a[r] = a[r] * a[r] * a[r]
    elif op == INV:
        for r in range(nb):
            v = a[r]
            a[r] = 1.0 if abs(v) <= EPS else 1.0 / v
    elif op == SQRT:
        for r in range(nb):
            a[r] = np.sqrt(abs(a[r]))
    elif op == EXP:
        vexp(a, nb)
    elif op == LOG:
        vlog(a, nb)
    elif op == SIN:
        vsin(a, nb)
    elif op == COS:
        vcos(a, nb)
    elif op == TANH:
        for r in range(nb):
            a[r] = np.tanh(a[r])
    elif op == NOT:
        for r in range(nb):
            a[r] = 0.0 if a[r] != 0 else 1.0


@njit(**_JIT)
def _binary(op, a, b, nb):
    """b[r] = op(a[r], b[r]); a is the first argument."""
    if op == ADD:
        for r in range(nb):
            b[r] = a[r] + b[r]
    elif op == SUB:
        for r in range(nb):
            b[r] = a[r] - b[r]
    elif op == MUL:
        for r in range(nb):
            b[r] = a[r] * b[r]
    elif op == DIV:
        for r in range(nb):
            d = b[r]
            b[r] = 1.0 if abs(d) <= EPS else a[r] / d
    elif op == POW:
        for r in range(nb):
            b[r] = abs(a[r]) ** b[r]
    elif op == MIN:
        for r in range(nb):
            x, y = a[r], b[r]
            b[r] = x if (x < y or x != x) else y
    elif op == MAX:
        for r in range(nb):
            x, y = a[r], b[r]
            b[r] = x if (x > y or x != x) else y
    elif op == AND:
        for r in range(nb):
            b[r] = 1.0 if (a[r] != 0 and b[r] != 0) else 0.0
    elif op == OR:
        for r in range(nb):
            b[r] = 1.0 if (a[r] != 0 or b[r] != 0) else 0.0
    elif op == NAND:
        for r in range(nb):
            b[r] = 0.0 if (a[r] != 0 and b[r] != 0) else 1.0
    elif op == NOR:
        for r in range(nb):
            b[r] = 0.0 if (a[r] != 0 or b[r] != 0) else 1.0
    elif op == XOR:
        for r in range(nb):
            b[r] = 1.0 if ((a[r] != 0) != (b[r] != 0)) else 0.0
    elif op == GT:
        for r in range(nb):
            b[r] = 1.0 if a[r] > b[r] else 0.0
    elif op == LT:
        for r in range(nb):
            b[r] = 1.0 if a[r] < b[r] else 0.0


@njit(**_JIT)
def run_block(codes, start, end, consts, const_end, arity, XT, r0, nb, stack):
    """Evaluate codes[start:end] on rows r0..r0+nb; the result is left in stack[0]."""
    sp = 0
    kc = const_end
    for k in range(end - 1, start - 1, -1):
        c = codes[k]
        if c == -1:
            kc -= 1
            v = consts[kc]
            top = stack[sp]
            for r in range(nb):
                top[r] = v
            sp += 1
        elif c < -1:
            col = XT[-c - 2]
            top = stack[sp]
            for r in range(nb):
                top[r] = col[r0 + r]
            sp += 1
        else:
            op = c
            n_args = arity[op]
            if n_args == 1:
                _unary(op, stack[sp - 1], nb)
            elif n_args == 2:
                _binary(op, stack[sp - 1], stack[sp - 2], nb)
                sp -= 1
            else:  # IF, the only ternary: if(cond, yes, no)
                cond, yes, no = stack[sp - 1], stack[sp - 2], stack[sp - 3]
                for r in range(nb):
                    no[r] = yes[r] if cond[r] != 0 else no[r]
                sp -= 2


@njit(**_JIT)
def _eval_program(p, batch, XT, out, block, depth):
    codes, code_off, consts, const_off, arity = batch
    stack = np.empty((depth, block), dtype=XT.dtype)
    row = out[p]
    for r0 in range(0, XT.shape[1], block):
        nb = min(block, XT.shape[1] - r0)
        run_block(codes, code_off[p], code_off[p + 1], consts, const_off[p + 1], arity,
                  XT, r0, nb, stack)
        top = stack[0]
        for r in range(nb):
            row[r0 + r] = top[r]


@njit(**_JIT)
def _mse_program(p, batch, XT, y, block, depth):
    codes, code_off, consts, const_off, arity = batch
    stack = np.empty((depth, block), dtype=XT.dtype)
    sse = 0.0
    for r0 in range(0, XT.shape[1], block):
        nb = min(block, XT.shape[1] - r0)
        run_block(codes, code_off[p], code_off[p + 1], consts, const_off[p + 1], arity,
                  XT, r0, nb, stack)
        top = stack[0]
        for r in range(nb):
            d = np.float64(top[r]) - y[r0 + r]
            sse += d * d
        if not np.isfinite(sse):
            return np.inf
    return sse / XT.shape[1]


# Each entry point exists twice: a serial one (no threading overhead for n_jobs=1) and
# one whose program loop is a prange. `batch` is the tuple made by hybrid_gp.compiler.


@njit(**_JIT)
def eval_batch_serial(batch, XT, out, block, depth):
    for p in range(out.shape[0]):
        _eval_program(p, batch, XT, out, block, depth)


@njit(parallel=True, **_JIT)
def eval_batch_parallel(batch, XT, out, block, depth):
    for p in prange(out.shape[0]):
        _eval_program(p, batch, XT, out, block, depth)


@njit(**_JIT)
def mse_batch_serial(batch, XT, y, out, block, depth):
    for p in range(out.shape[0]):
        out[p] = _mse_program(p, batch, XT, y, block, depth)


@njit(parallel=True, **_JIT)
def mse_batch_parallel(batch, XT, y, out, block, depth):
    for p in prange(out.shape[0]):
        out[p] = _mse_program(p, batch, XT, y, block, depth)
