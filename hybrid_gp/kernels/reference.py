"""Plain-numpy twin of the Numba kernels.

Slow and obvious on purpose: one numpy call per node, whole columns at a time. Tests
compare the kernels against it on random programs, NaN and inf included. Both follow
docs/semantics.md.
"""

from __future__ import annotations

import numpy as np

from . import opcodes as oc


def apply_op(op: int, args: list[np.ndarray]) -> np.ndarray:
    """Apply one kernel operation to argument columns (first argument first)."""
    with np.errstate(all="ignore"):
        a = args[0] if args else None
        b = args[1] if len(args) > 1 else None
        if op == oc.ADD:
            return a + b
        if op == oc.SUB:
            return a - b
        if op == oc.MUL:
            return a * b
        if op == oc.DIV:
            return np.where(np.abs(b) <= oc.EPS, np.ones_like(a), a / b)
        if op == oc.NEG:
            return -a
        if op == oc.ABS:
            return np.abs(a)
        if op == oc.SQUARE:
            return a * a
        if op == oc.CUBE:
            return a * a * a
        if op == oc.INV:
            return np.where(np.abs(a) <= oc.EPS, np.ones_like(a), 1.0 / a)
        if op == oc.SQRT:
            return np.sqrt(np.abs(a))
        if op == oc.EXP:
            return np.exp(a)
        if op == oc.LOG:
            absa = np.abs(a)
            return np.where(absa <= oc.EPS, np.zeros_like(a), np.log(absa))
        if op == oc.SIN:
            return np.sin(a)
        if op == oc.COS:
            return np.cos(a)
        if op == oc.TANH:
            return np.tanh(a)
        if op == oc.POW:
            return np.power(np.abs(a), b)
        if op == oc.MIN:
            return np.minimum(a, b)
        if op == oc.MAX:
            return np.maximum(a, b)
        one, zero = np.ones_like(a), np.zeros_like(a)
        if op == oc.AND:
            return np.where((a != 0) & (b != 0), one, zero)
        if op == oc.OR:
            return np.where((a != 0) | (b != 0), one, zero)
        if op == oc.NOT:
            return np.where(a != 0, zero, one)
        if op == oc.NAND:
            return np.where((a != 0) & (b != 0), zero, one)
        if op == oc.NOR:
            return np.where((a != 0) | (b != 0), zero, one)
        if op == oc.XOR:
            return np.where((a != 0) != (b != 0), one, zero)
        if op == oc.IF:
            return np.where(a != 0, b, args[2])
        if op == oc.GT:
            return np.where(a > b, one, zero)
        if op == oc.LT:
            return np.where(a < b, one, zero)
    raise ValueError(f"unknown opcode {op}")


def evaluate_batch(
    codes: np.ndarray,
    code_offsets: np.ndarray,
    consts: np.ndarray,
    const_offsets: np.ndarray,
    XT: np.ndarray,
) -> np.ndarray:
    """Evaluate every program of a compiled batch on XT (n_features, n_rows)."""
    n_programs = len(code_offsets) - 1
    out = np.empty((n_programs, XT.shape[1]), dtype=XT.dtype)
    for p in range(n_programs):
        stack: list[np.ndarray] = []
        k_const = const_offsets[p + 1]
        for k in range(code_offsets[p + 1] - 1, code_offsets[p] - 1, -1):
            c = int(codes[k])
            if c == -1:
                k_const -= 1
                stack.append(np.full(XT.shape[1], consts[k_const], dtype=XT.dtype))
            elif c <= -2:
                stack.append(XT[-c - 2].copy())
            else:
                op = c
                arity = int(oc.ARITY[op])
                args = [stack.pop() for _ in range(arity)]
                stack.append(apply_op(op, args).astype(XT.dtype, copy=False))
        out[p] = stack[0]
    return out


def mse_batch(outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean squared error per row of outputs; inf where any output is not finite."""
    with np.errstate(all="ignore"):
        err = np.mean((outputs - y) ** 2, axis=1, dtype=np.float64)
    bad = ~np.all(np.isfinite(outputs), axis=1) | ~np.isfinite(err)
    err[bad] = np.inf
    return err


def batch_stack_depth(codes: np.ndarray, code_off: np.ndarray, arity: np.ndarray) -> int:
    """Twin of interpreter.batch_stack_depth: in the reverse-prefix walk a terminal
    pushes a slot and an operation of arity a pops a - 1, so the depth after node k is
    the sum of those changes from k to the end of its program."""
    if len(codes) == 0:
        return 1
    change = np.where(codes < 0, 1, 1 - arity[np.maximum(codes, 0)]).astype(np.int64)
    suffix = np.append(np.cumsum(change[::-1])[::-1], 0)  # suffix[k] = sum(change[k:])
    ends = np.repeat(code_off[1:], np.diff(code_off))  # one past each node's program
    return max(1, int((suffix[:-1] - suffix[ends]).max()))
