"""Compile a batch of Programs into the flat arrays the kernels read.

Programs already store prefix node codes, so compiling is one concatenation plus a
table lookup that turns primitive positions into kernel opcodes. Programs of different
grammars may share a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .genomes import Genomes, flatten, gather_segments
from .grammar import Grammar
from .kernels import opcodes as oc
from .kernels.interpreter import batch_stack_depth
from .program import Program


@dataclass(frozen=True)
class CompiledBatch:
    """Kernel input: node codes (prefix) and constants, each with offsets per program."""

    codes: np.ndarray  # int32; c >= 0 opcode, -1 constant, -k-2 variable k
    code_offsets: np.ndarray  # int64, n_programs + 1
    consts: np.ndarray  # float64
    const_offsets: np.ndarray  # int64, n_programs + 1
    n_features: int  # 1 + highest variable index used (0 if none)
    depth: int  # deepest evaluation stack over the batch

    @property
    def n_programs(self) -> int:
        return len(self.code_offsets) - 1

    @cached_property
    def kernel_ext(self) -> bool | None:
        """The interpreter kernels' `ext` argument: None when every opcode is below
        oc.EXTENDED_FROM (arithmetic, exp, log, sin, cos, tanh, pow), True when the
        batch uses MIN, MAX, CUBE, INV, IF or a Boolean operation. With None the kernels
        are compiled without the code of those (kernels/interpreter.py, eval_block)."""
        extended = len(self.codes) and int(self.codes.max()) >= oc.EXTENDED_FROM
        return True if extended else None

    def take(self, idx: Sequence[int] | np.ndarray) -> CompiledBatch:
        """The programs at `idx`, in that order, without compiling them again. The
        feature count and stack depth stay the batch's (upper bounds suffice)."""
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) == self.n_programs and np.array_equal(idx, np.arange(len(idx))):
            return self
        codes, code_off = gather_segments(self.codes, self.code_offsets, idx)
        consts, const_off = gather_segments(self.consts, self.const_offsets, idx)
        return CompiledBatch(codes, code_off, consts, const_off, self.n_features, self.depth)

    def arrays(self, dtype: np.dtype) -> tuple[np.ndarray, ...]:
        """The tuple the kernels take, with constants in the evaluation dtype."""
        return (self.codes, self.code_offsets, self.consts.astype(dtype, copy=False),
                self.const_offsets, oc.ARITY)


def compile_batch(programs: Sequence[Program]) -> CompiledBatch:
    """Concatenate the programs' codes and constants; map primitives to opcodes."""
    if isinstance(programs, Genomes):  # already flat
        return programs.compiled()
    codes, code_off, consts, const_off = flatten(programs, np.int32)
    grammars = {id(p.grammar): p.grammar for p in programs}
    if len(grammars) == 1:
        return compile_arrays(next(iter(grammars.values())), codes, code_off, consts,
                              const_off)
    for k, p in enumerate(programs):  # mixed grammars: each segment with its own table
        seg = codes[code_off[k]:code_off[k + 1]]
        prim = seg >= 0
        seg[prim] = p.grammar.opmap[seg[prim]]
    return _finish(codes, code_off, consts, const_off)


def compile_arrays(grammar: Grammar, codes: np.ndarray, code_off: np.ndarray,
                   consts: np.ndarray, const_off: np.ndarray) -> CompiledBatch:
    """The batch of programs of one grammar given as flat arrays, as Program codes are
    (primitive positions, -1 constant, -k-2 variable k) with offsets: what a batch
    breeder makes, compiled without a round trip through Programs."""
    low = min(int(codes.min()), 0) if len(codes) else 0
    # One gather through a table that maps terminals to themselves and primitive
    # positions to opcodes (half the time of masking the primitives).
    table = np.concatenate([np.arange(low, 0, dtype=np.int32), grammar.opmap])
    return _finish(table[codes - low], code_off, consts, const_off, low)


def _finish(codes: np.ndarray, code_off: np.ndarray, consts: np.ndarray,
            const_off: np.ndarray, low: int | None = None) -> CompiledBatch:
    """The batch of mapped codes; `low` is their smallest code when the caller knows."""
    if low is None:
        low = int(codes.min()) if len(codes) else 0
    n_features = -low - 1 if low < -1 else 0
    depth = int(batch_stack_depth(codes, code_off, oc.ARITY)) if len(code_off) > 1 else 1
    return CompiledBatch(codes, code_off, consts, const_off, n_features, depth)
