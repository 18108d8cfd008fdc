"""Plain-numpy twin of kernels/jacobian.py: outputs and derivatives with respect to the
constants, one numpy call per node, following the same conventions (docs/fitting.md)."""

from __future__ import annotations

import numpy as np

from . import opcodes as oc
from .opcodes import (
    ABS,
    ADD,
    AND,
    COS,
    CUBE,
    DIV,
    EPS,
    EXP,
    GT,
    IF,
    INV,
    LOG,
    LT,
    MAX,
    MIN,
    MUL,
    NAND,
    NEG,
    NOR,
    NOT,
    OR,
    POW,
    SIN,
    SQRT,
    SQUARE,
    SUB,
    TANH,
    XOR,
)
from .reference import apply_op


def local_partials(op: int, args: list[np.ndarray], value: np.ndarray) -> list[np.ndarray]:
    """d op / d argument for each argument column, at `args` (value = op(args)); the
    same conventions as the kernel."""
    a = args[0]
    b = args[1] if len(args) > 1 else None
    one, zero = np.ones_like(a), np.zeros_like(a)
    with np.errstate(all="ignore"):
        if op == ADD:
            return [one, one]
        if op == SUB:
            return [one, -one]
        if op == MUL:
            return [b, a]
        if op == DIV:
            guard = np.abs(b) <= EPS
            return [np.where(guard, 0.0, 1.0 / b), np.where(guard, 0.0, -value / b)]
        if op == POW:
            flat = np.abs(a) <= EPS
            return [np.where(flat, 0.0, b * value / a),
                    np.where(flat, 0.0, value * np.log(np.abs(a)))]
        if op in (MIN, MAX):
            first = ((a < b) if op == MIN else (a > b)) | (a != a)
            return [np.where(first, 1.0, 0.0), np.where(first, 0.0, 1.0)]
        if op == IF:
            pick = a != 0
            return [zero, np.where(pick, 1.0, 0.0), np.where(pick, 0.0, 1.0)]
        if op in (AND, OR, NAND, NOR, XOR, GT, LT):
            return [zero, zero]
        if op == NEG:
            return [-one]
        if op == ABS:
            return [np.sign(a)]
        if op == SQUARE:
            return [2.0 * a]
        if op == CUBE:
            return [3.0 * a * a]
        if op == INV:
            return [np.where(np.abs(a) <= EPS, 0.0, -value * value)]
        if op == SQRT:
            return [np.where(a == 0, 0.0, np.sign(a) * 0.5 / value)]
        if op == EXP:
            return [value]
        if op == LOG:
            return [np.where(np.abs(a) <= EPS, 0.0, 1.0 / a)]
        if op == SIN:
            return [np.cos(a)]
        if op == COS:
            return [-np.sin(a)]
        if op == TANH:
            return [1.0 - value * value]
        if op == NOT:
            return [zero]
    raise ValueError(f"unknown opcode {op}")


def jacobian_reference(codes: np.ndarray, code_offsets: np.ndarray, consts: np.ndarray,
                       const_offsets: np.ndarray, XT: np.ndarray,
                       jitter: tuple[np.random.Generator, float] | None = None,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Twin of `jacobian_batch`: (values (n_programs, n_rows), JT (n_consts, n_rows)).

    Each stack entry is a column and a dict {constant index: derivative column} over the
    constants of its subtree; values come from kernels.reference.apply_op. `jitter`
    (rng, rel) multiplies every value and local derivative by 1 + U(-rel, rel): tests
    use it to find the rows where a few ULP of libm difference change the result.
    """
    n_rows = XT.shape[1]

    def wobble(col: np.ndarray) -> np.ndarray:
        if jitter is None:
            return col
        rng, rel = jitter
        return col * (1.0 + rel * rng.uniform(-1.0, 1.0, col.shape))

    values = np.empty((len(code_offsets) - 1, n_rows))
    JT = np.zeros((int(const_offsets[-1]), n_rows))
    with np.errstate(all="ignore"):
        for p in range(len(code_offsets) - 1):
            stack: list[tuple[np.ndarray, dict[int, np.ndarray]]] = []
            kc = int(const_offsets[p + 1])
            for k in range(code_offsets[p + 1] - 1, code_offsets[p] - 1, -1):
                c = int(codes[k])
                if c == -1:
                    kc -= 1
                    stack.append((wobble(np.full(n_rows, consts[kc])),
                                  {kc: np.ones(n_rows)}))
                elif c < -1:
                    stack.append((XT[-c - 2].astype(np.float64), {}))
                else:
                    args = [stack.pop() for _ in range(int(oc.ARITY[c]))]
                    cols = [v for v, _ in args]
                    value = wobble(apply_op(c, cols))
                    ders: dict[int, np.ndarray] = {}
                    for (_, inner), d in zip(args, local_partials(c, cols, value),
                                             strict=True):
                        d = wobble(d)
                        for j, col in inner.items():
                            ders[j] = np.where(d == 0, 0.0, col * d)
                    stack.append((value, ders))
            values[p], ders = stack[0]
            for j, col in ders.items():
                JT[j] = col
    return values, JT
