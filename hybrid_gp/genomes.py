"""Genomes: a batch of programs as flat arrays, with Program objects made on demand.

A generation makes hundreds of children in one kernel call and throws most of them
away a few stages later. Holding them as arrays (prefix codes and constants with
offsets, the layout Programs and the kernels share) lets a population be bred from,
scored, selected and reordered without a Python object per child; a Program is built
only when one is asked for (the archive's entrants, semantic parents, the results)
and then kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain
from typing import TYPE_CHECKING, overload

import numpy as np

from .grammar import Grammar
from .kernels.segments import take_segments
from .program import Program

if TYPE_CHECKING:
    from .compiler import CompiledBatch


class Genomes(Sequence[Program]):
    """Programs of one grammar: program k has codes[code_offsets[k]:code_offsets[k+1]]
    (int64, Program.codes layout) and the matching slice of consts (float64). Immutable;
    `take`, `+` and `replaced` make new batches and keep the Programs already built."""

    __slots__ = ("_batch", "_made", "code_offsets", "codes", "const_offsets", "consts",
                 "grammar")

    def __init__(self, grammar: Grammar | None, codes: np.ndarray, code_offsets: np.ndarray,
                 consts: np.ndarray, const_offsets: np.ndarray,
                 made: np.ndarray | None = None):
        self.grammar = grammar
        self.codes = np.ascontiguousarray(codes, dtype=np.int64)
        self.code_offsets = np.ascontiguousarray(code_offsets, dtype=np.int64)
        self.consts = np.ascontiguousarray(consts, dtype=np.float64)
        self.const_offsets = np.ascontiguousarray(const_offsets, dtype=np.int64)
        n = len(self.code_offsets) - 1
        self._made = np.full(n, None, dtype=object) if made is None else made
        self._batch = None

    # ---------------------------------------------------------------- making
    @classmethod
    def of(cls, programs: Sequence[Program]) -> Genomes:
        """The programs as a batch (the same object when it already is one)."""
        if isinstance(programs, Genomes):
            return programs
        programs = list(programs)
        grammar = programs[0].grammar if programs else None
        for p in programs:
            if p.grammar is not grammar and p.grammar.name != grammar.name:
                raise ValueError(f"a batch of genomes holds programs of one grammar; got "
                                 f"{grammar.name!r} and {p.grammar.name!r}")
        return cls(grammar, *flatten(programs, np.int64), _objects(programs))

    def __reduce__(self) -> tuple:
        """Pickles (checkpoints, process pools) carry the arrays, not the Programs."""
        return (Genomes, (self.grammar, self.codes, self.code_offsets, self.consts,
                          self.const_offsets))

    # ---------------------------------------------------------------- as a sequence
    def __len__(self) -> int:
        return len(self.code_offsets) - 1

    @overload
    def __getitem__(self, k: int) -> Program: ...

    @overload
    def __getitem__(self, k: slice) -> Genomes: ...

    def __getitem__(self, k: int | slice) -> Program | Genomes:
        if isinstance(k, slice):
            return self.take(np.arange(len(self))[k])
        made = self._made[k]  # raises IndexError past the end, as a list does
        if made is None:
            k = int(k) % len(self)
            a, b = self.code_offsets[k], self.code_offsets[k + 1]
            c, d = self.const_offsets[k], self.const_offsets[k + 1]
            made = Program._trusted(self.grammar, tuple(self.codes[a:b].tolist()),
                                    tuple(self.consts[c:d].tolist()))
            self._made[k] = made
        return made

    def __eq__(self, other: object) -> bool:
        """Equal to Genomes or a list holding the same programs in the same order."""
        if isinstance(other, Genomes):
            return (len(self) == len(other)
                    and (self.grammar is None or other.grammar is None
                         or self.grammar.name == other.grammar.name)
                    and all(np.array_equal(getattr(self, a), getattr(other, a)) for a in
                            ("codes", "code_offsets", "consts", "const_offsets")))
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal as a list is, so unhashable as one

    def __iter__(self) -> Iterator[Program]:
        self._make_all()
        return iter(self._made.tolist())

    def _make_all(self) -> None:
        """Build every missing Program at once (one conversion to Python per array)."""
        missing = np.flatnonzero(np.equal(self._made, None))
        if not len(missing):
            return
        part = self.take(missing)
        sizes, n_consts = np.diff(part.code_offsets), np.diff(part.const_offsets)
        self._made[missing] = _objects(Program._trusted_batch(
            self.grammar, part.codes.tolist(), sizes.tolist(), part.consts.tolist(),
            n_consts.tolist()))

    # ---------------------------------------------------------------- batch operations
    @property
    def sizes(self) -> np.ndarray:
        """Node count of each program (int64)."""
        return np.diff(self.code_offsets)

    def take(self, idx: Sequence[int] | np.ndarray) -> Genomes:
        """The programs at `idx`, in that order."""
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) == len(self) and np.array_equal(idx, np.arange(len(idx))):
            return self
        codes, code_off = gather_segments(self.codes, self.code_offsets, idx)
        consts, const_off = gather_segments(self.consts, self.const_offsets, idx)
        return Genomes(self.grammar, codes, code_off, consts, const_off, self._made[idx])

    def __add__(self, other: Genomes) -> Genomes:
        if not len(other):
            return self
        if not len(self):
            return other
        return Genomes(self.grammar or other.grammar,
                       np.concatenate([self.codes, other.codes]),
                       np.concatenate([self.code_offsets,
                                       other.code_offsets[1:] + self.code_offsets[-1]]),
                       np.concatenate([self.consts, other.consts]),
                       np.concatenate([self.const_offsets,
                                       other.const_offsets[1:] + self.const_offsets[-1]]),
                       np.concatenate([self._made, other._made]))

    def replaced(self, idx: Sequence[int] | np.ndarray,
                 programs: Sequence[Program]) -> Genomes:
        """A copy with program idx[k] replaced by programs[k]."""
        idx = np.asarray(idx, dtype=np.int64)
        if not len(idx):
            return self
        order = np.arange(len(self))
        order[idx] = len(self) + np.arange(len(idx))
        return (self + Genomes.of(programs)).take(order)

    def compiled(self) -> CompiledBatch:
        """The batch as the evaluation kernels read it (computed once)."""
        if self._batch is None:
            from .compiler import compile_arrays, compile_batch  # compiler imports this module

            self._batch = (compile_batch([]) if self.grammar is None else
                           compile_arrays(self.grammar, self.codes, self.code_offsets,
                                          self.consts, self.const_offsets))
        return self._batch


def flatten(programs: Sequence[Program], code_dtype: type
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(codes, code offsets, constants, constant offsets) of the programs end to end."""
    n = len(programs)
    code_off = np.zeros(n + 1, dtype=np.int64)
    const_off = np.zeros(n + 1, dtype=np.int64)
    np.fromiter((len(p.codes) for p in programs), np.int64, n).cumsum(out=code_off[1:])
    np.fromiter((len(p.consts) for p in programs), np.int64, n).cumsum(out=const_off[1:])
    codes = np.fromiter(chain.from_iterable(p.codes for p in programs), code_dtype,
                        int(code_off[-1]))
    consts = np.fromiter(chain.from_iterable(p.consts for p in programs), np.float64,
                         int(const_off[-1]))
    return codes, code_off, consts, const_off


def _objects(programs: Sequence[Program]) -> np.ndarray:
    """A 1-D object array of the programs (a Program is a sequence of nodes, so numpy
    must not be left to guess the shape)."""
    return np.fromiter(programs, dtype=object, count=len(programs))


def gather_segments(values: np.ndarray, offsets: np.ndarray, idx: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The segments `idx` of a flat array cut by `offsets`, and their new offsets: one
    Numba loop (kernels/segments.py); `gather_segments_reference` is its twin."""
    idx = np.asarray(idx, dtype=np.int64)
    if len(idx) and not (idx.min() >= 0 and idx.max() < len(offsets) - 1):
        raise IndexError(f"segment index out of range 0..{len(offsets) - 2}")
    return take_segments(values, offsets, idx)


def gather_segments_reference(values: np.ndarray, offsets: np.ndarray, idx: np.ndarray
                              ) -> tuple[np.ndarray, np.ndarray]:
    """Numpy twin of `gather_segments`."""
    starts, lengths = offsets[idx], offsets[idx + 1] - offsets[idx]
    new_off = np.zeros(len(idx) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_off[1:])
    # position k of the result reads starts[segment of k] + (k - new_off[segment of k])
    positions = np.arange(new_off[-1], dtype=np.int64) + np.repeat(starts - new_off[:-1],
                                                                    lengths)
    return values[positions], new_off
