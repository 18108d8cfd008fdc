"""Plain-numpy twin of kernels/boolean.py: one program at a time, one numpy call per
node over the packed words, bits counted by unpacking them. Slow and obvious on
purpose; tests compare the kernel against it."""

from __future__ import annotations

import numpy as np

from . import opcodes as oc


def run_packed_reference(codes: np.ndarray, consts: np.ndarray, arity: np.ndarray,
                         words: np.ndarray) -> np.ndarray:
    """Packed output words of one program (kernel node codes, prefix order)."""
    stack: list[np.ndarray] = []
    k_const = len(consts)
    n_words = words.shape[1]
    for c in reversed(codes.tolist()):
        if c == -1:
            k_const -= 1
            fill = np.uint64(0xFFFF_FFFF_FFFF_FFFF) if consts[k_const] != 0 else np.uint64(0)
            stack.append(np.full(n_words, fill, dtype=np.uint64))
        elif c < -1:
            stack.append(words[-c - 2].copy())
        else:
            args = [stack.pop() for _ in range(int(arity[c]))]  # first argument first
            stack.append(_apply(c, args))
    return stack[0]


def _apply(op: int, args: list[np.ndarray]) -> np.ndarray:
    a = args[0]
    if op == oc.NOT:
        return np.invert(a)
    if op == oc.IF:
        return (a & args[1]) | (np.invert(a) & args[2])
    b = args[1]
    table = {oc.AND: a & b, oc.OR: a | b, oc.XOR: a ^ b,
             oc.NAND: np.invert(a & b), oc.NOR: np.invert(a | b)}
    if op not in table:
        raise ValueError(f"opcode {op} ({oc.NAMES.get(op)}) is not a logical operation")
    return table[op]


def count_bits(words: np.ndarray, n_bits: int) -> int:
    """Set bits among the first n_bits bits of the packed words (little-endian)."""
    bits = np.unpackbits(np.ascontiguousarray(words, dtype="<u8").view(np.uint8),
                         bitorder="little")
    return int(bits[:n_bits].sum())


def misses_reference(codes: np.ndarray, consts: np.ndarray, arity: np.ndarray,
                     words: np.ndarray, target: np.ndarray, n_cases: int) -> int:
    """Cases one program gets wrong."""
    out = run_packed_reference(codes, consts, arity, words)
    return count_bits(out ^ target, n_cases)
