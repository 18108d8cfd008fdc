"""Subtree outputs kept between generations, so children skip the parts they share.

The equivalence cache skips children whose whole function is known. The children it
cannot skip are still mostly made of their parents: crossover and mutation change one
subtree and keep the rest. `SubtreeStore` keeps the outputs of the subtrees hanging from
the root of every evaluated program (on the training rows, in a memory budget) and
rewrites each new batch so that known subtrees are loaded, not computed
(kernels/subtrees.py). The outputs are bit for bit those of the subtree, so every error
is the one a plain evaluation gives; only the work changes. It pays where evaluation
is most of a generation: on many rows (SUBTREE_MIN_ROWS).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from .compiler import CompiledBatch, _finish
from .evaluation import _threads_and_work, block_rows
from .kernels import opcodes as oc
from .kernels import subtrees as kern
from .kernels.lru import LruTable
from .threads import run_kernel

if TYPE_CHECKING:
    from .problem import Problem

#: Fewer training rows than this: no store (evaluating a subtree is then about as
#: cheap as planning around it).
SUBTREE_MIN_ROWS = 1000
#: Batches over which storing must pay, and how long it pauses when it does not.
RECKON_BATCHES = 8
PAUSE_BATCHES = 16
#: Slots at most, and at least for a store to be made at all.
MAX_SLOTS = 4096
MIN_SLOTS = 64


class SubtreeStore:
    """Slots of subtree outputs on the rows of one feature matrix XT (float64,
    feature-major): row XT.shape[0] + s of `extended` holds slot s."""

    def __init__(self, XT: np.ndarray, capacity: int):
        if capacity < 1:
            raise ValueError(f"a subtree store needs a capacity >= 1, got {capacity}")
        n_features, n_rows = XT.shape
        self.source = XT
        self.capacity = int(capacity)
        self.extended = np.empty((n_features + self.capacity, n_rows), dtype=np.float64)
        self.extended[:n_features] = XT
        self._lru = LruTable(self.capacity, initial=self.capacity)
        self.stamp = np.full(self.capacity, -1, dtype=np.int64)
        self.born = np.full(self.capacity, -1, dtype=np.int64)
        self.batches = 0
        self.counts = np.zeros(4, dtype=np.int64)  # loads, nodes loaded, stores, cost loaded
        self.storing = True  # whether new subtrees are stored (see _reckon)
        self._pause_left = 0
        self._window: deque[int] = deque(maxlen=RECKON_BATCHES)

    @staticmethod
    def slots_for(problem: Problem, memory_mb: float) -> int:
        """The slots a store for the problem's training rows gets within `memory_mb`;
        0 where it cannot help or cannot be used: few rows, a budget under MIN_SLOTS
        slots, or an error the kernels do not compute themselves (a subclass's own)."""
        XT = problem.train.XT
        if (not problem.squared_error_based or XT.dtype != np.float64
                or XT.shape[1] < SUBTREE_MIN_ROWS):
            return 0
        slots = min(MAX_SLOTS, int(memory_mb * 2**20) // (8 * XT.shape[1]))
        return slots if slots >= MIN_SLOTS else 0

    @classmethod
    def for_problem(cls, problem: Problem, memory_mb: float) -> SubtreeStore | None:
        """A store for the problem's training rows within `memory_mb`, or None where
        `slots_for` gives none."""
        slots = cls.slots_for(problem, memory_mb)
        return cls(problem.train.XT, slots) if slots else None

    @property
    def loads(self) -> int:
        return int(self.counts[0])

    @property
    def nodes_loaded(self) -> int:
        return int(self.counts[1])

    @property
    def stores(self) -> int:
        return int(self.counts[2])

    def plan(self, batch: CompiledBatch) -> tuple[CompiledBatch, CompiledBatch, np.ndarray]:
        """(the batch with known subtrees loaded, the store programs, their slots).
        The slots it hands out count as filled from then on: the store programs must
        be evaluated into them before anything else is planned (`mse` does both)."""
        self.batches += 1
        n, size = batch.n_programs, len(batch.codes)
        out = (np.empty(size, dtype=np.int32), np.empty(n + 1, dtype=np.int64),
               np.empty(len(batch.consts), dtype=np.float64), np.empty(n + 1, dtype=np.int64))
        most = n * int(oc.ARITY.max())  # a store per subtree of a root at most
        st = (np.empty(size, dtype=np.int32), np.empty(most + 1, dtype=np.int64),
              np.empty(len(batch.consts), dtype=np.float64),
              np.empty(most + 1, dtype=np.int64))
        slots = np.empty(most, dtype=np.int64)
        lru = self._lru
        table = (lru.index, lru.keys, lru.prev, lru.next, lru.meta, self.stamp, self.born)
        before = self.counts.copy()
        n_stores = kern.plan(batch.codes, batch.code_offsets, batch.consts,
                             batch.const_offsets, oc.ARITY, kern.OP_COST,
                             self.source.shape[0], table, self.batches, self.storing,
                             *out, *st, slots, self.counts)
        self._reckon(self.counts - before)
        return _cut(out, n), _cut(st, n_stores), slots[:n_stores]

    def _reckon(self, batch_counts: np.ndarray) -> None:
        """Whether storing pays, from counts alone (so a run stays the same on any
        machine). Loads save their subtrees' cost and cost a row read each; a store
        costs a row written. Where the last RECKON_BATCHES batches that stored lost
        more than they saved (children rarely share costly subtrees: fitted constants,
        say), storing pauses for PAUSE_BATCHES batches, loads from the slots kept go on,
        and then it is tried again."""
        loads, _, stores, saved = batch_counts.tolist()
        if not self.storing:
            self._pause_left -= 1
            if self._pause_left <= 0:
                self.storing = True
            return
        self._window.append(saved - kern.LOAD_COST * loads - kern.STORE_COST * stores)
        if len(self._window) == self._window.maxlen and sum(self._window) < 0:
            self.storing, self._pause_left = False, PAUSE_BATCHES
            self._window.clear()

    def clear(self) -> None:
        """Forget every slot (the counts stay)."""
        self._lru = LruTable(self.capacity, initial=self.capacity)
        self.stamp[:] = -1
        self.born[:] = -1

    def mse(self, batch: CompiledBatch, y: np.ndarray, n_jobs: int = 1) -> np.ndarray:
        """`mse_features(batch, source, y)`, bit for bit, with known subtrees loaded
        and the root's new subtrees stored on the way."""
        children, stores, slots = self.plan(batch)
        out = np.empty(children.n_programs, dtype=np.float64)
        if not children.n_programs:
            return out
        rows = self.source.shape[0] + slots
        n_rows = self.extended.shape[1]
        block = block_rows(n_rows)
        depth = max(children.depth, stores.depth)
        ext = True if (children.kernel_ext or stores.kernel_ext) else None
        kids, news = children.arrays(np.float64), stores.arrays(np.float64)
        threads, work = _threads_and_work(children, n_rows, n_jobs)
        try:
            run_kernel("mse-planned", threads, work + len(stores.codes) * n_rows,
                       lambda: kern.mse_planned_serial(kids, news, rows, self.extended, y,
                                                       out, block, depth, ext),
                       lambda workers: kern.mse_planned_parallel(
                           kids, news, rows, self.extended, y, out, block, depth, ext,
                           workers))
        except BaseException:  # the new slots may be unfilled: forget every slot
            self.clear()
            raise
        return out


def _cut(arrays: tuple[np.ndarray, ...], n: int) -> CompiledBatch:
    """A CompiledBatch of the first n programs of plan's output arrays."""
    codes, code_off, consts, const_off = arrays
    code_off, const_off = code_off[:n + 1], const_off[:n + 1]
    return _finish(codes[:code_off[n]], code_off, consts[:const_off[n]], const_off)
