"""The plain-Python twin of kernels/subtrees.py, for tests.

The same plan with exact keys (a subtree's codes and its constants' bits, as a tuple)
in an OrderedDict, slots numbered as the kernel's LRU pool numbers them: free slots in
order, then the evicted entry's slot. Its planned evaluation runs the stores into their
rows with the numpy twin, then the rewritten programs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

import numpy as np

from . import opcodes as oc
from .reference import evaluate_batch, mse_batch
from .subtrees import MIN_COST, OP_COST


def _bits(v: float) -> int:
    """A constant's key: its bits, -0.0 as 0.0 and every NaN as one NaN."""
    if v != v:
        return 0x7FF8000000000000
    return int(np.float64(v + 0.0).view(np.uint64))


class SubtreePlanReference:
    """Slots keyed by subtree, least recently used first; `plan` as the kernel's."""

    def __init__(self, capacity: int, base: int):
        self.capacity, self.base = capacity, base
        self.slots: OrderedDict[Hashable, int] = OrderedDict()  # key -> slot
        self.stamp: dict[int, int] = {}
        self.born: dict[int, int] = {}
        self.batches = 0
        self.loads = self.nodes_loaded = self.stores = self.cost_loaded = 0

    def _use(self, key: Hashable, allow_new: bool) -> int:
        e = self.slots.get(key)
        if e is None or (not allow_new and self.born[e] == self.batches):
            return -1
        self.slots.move_to_end(key)
        self.stamp[e] = self.batches
        return e

    def _claim(self, key: Hashable) -> int:
        if len(self.slots) >= self.capacity:
            oldest, e = next(iter(self.slots.items()))
            if self.stamp[e] == self.batches:
                return -1
            del self.slots[oldest]
        else:
            e = len(self.slots)
        self.slots[key] = e
        self.stamp[e] = self.born[e] = self.batches
        return e

    def plan(self, programs: list[tuple[list[int], list[float]]], may_store: bool = True
             ) -> tuple[list[tuple[list[int], list[float]]],
                        list[tuple[list[int], list[float]]], list[int]]:
        """(rewritten programs, store programs, their slots) for programs given as
        (kernel codes in prefix order, constants); no new slots unless may_store."""
        self.batches += 1
        out, stores, slots = [], [], []
        for codes, consts in programs:
            tree = _Tree(codes, consts)
            whole = self._use(tree.key(0), True) if tree.cost[0] >= MIN_COST else -1
            if whole >= 0:
                self._count_load(len(codes), tree.cost[0])
                out.append(([self._load(whole)], []))
                continue
            if codes[0] < 0:
                out.append(self._emit(tree, 0, len(codes), True))
                continue
            new_codes, new_consts = [codes[0]], []
            for k in tree.children(0):
                stop, e = tree.end[k], -1
                if tree.cost[k] >= MIN_COST:
                    e = self._use(tree.key(k), True)
                    if e >= 0:
                        self._count_load(stop - k, tree.cost[k])
                    elif may_store:
                        e = self._claim(tree.key(k))
                        if e >= 0:
                            stores.append(self._emit(tree, k, stop, False))
                            slots.append(e)
                            self.stores += 1
                if e >= 0:
                    new_codes.append(self._load(e))
                else:
                    c, q = self._emit(tree, k, stop, True)
                    new_codes += c
                    new_consts += q
            out.append((new_codes, new_consts))
        return out, stores, slots

    def _count_load(self, nodes: int, cost: int) -> None:
        self.loads += 1
        self.nodes_loaded += nodes
        self.cost_loaded += cost

    def _load(self, slot: int) -> int:
        return -(self.base + slot) - 2

    def _emit(self, tree: _Tree, i: int, stop: int, allow_new: bool
              ) -> tuple[list[int], list[float]]:
        codes, consts = [], []
        k = i
        while k < stop:
            if tree.cost[k] >= MIN_COST:
                e = self._use(tree.key(k), allow_new)
                if e >= 0:
                    self._count_load(tree.end[k] - k, tree.cost[k])
                    codes.append(self._load(e))
                    k = tree.end[k]
                    continue
            codes.append(tree.codes[k])
            if tree.codes[k] == -1:
                consts.append(tree.consts[tree.first_const[k]])
            k += 1
        return codes, consts


class _Tree:
    """Subtree ends, costs and constant positions of one prefix program."""

    def __init__(self, codes: list[int], consts: list[float]):
        self.codes, self.consts = codes, consts
        n = len(codes)
        self.first_const = [sum(1 for c in codes[:i] if c == -1) for i in range(n + 1)]
        self.end, self.cost = [0] * n, [0] * n
        for i in range(n - 1, -1, -1):
            c = codes[i]
            if c < 0:
                self.end[i], self.cost[i] = i + 1, 0
                continue
            kids = self.children(i)
            self.end[i] = self.end[kids[-1]]
            self.cost[i] = int(OP_COST[c]) + sum(self.cost[k] for k in kids)

    def children(self, i: int) -> list[int]:
        kids, k = [], i + 1
        for _ in range(int(oc.ARITY[self.codes[i]])):
            kids.append(k)
            k = self.end[k]  # children lie to the right: their ends come first
        return kids

    def key(self, i: int) -> tuple:
        stop = self.end[i]
        consts = self.consts[self.first_const[i]:self.first_const[stop]]
        return tuple(self.codes[i:stop]), tuple(_bits(v) for v in consts)


def mse_planned(programs: list[tuple[list[int], list[float]]],
                stores: list[tuple[list[int], list[float]]], slots: list[int],
                extended: np.ndarray, y: np.ndarray, base: int) -> np.ndarray:
    """The stores into extended[base + slot], then the programs' mean squared errors,
    with the numpy twin."""
    def run(progs: list[tuple[list[int], list[float]]]) -> np.ndarray:
        codes = np.array([c for p in progs for c in p[0]], dtype=np.int64)
        consts = np.array([v for p in progs for v in p[1]], dtype=np.float64)
        code_off = np.cumsum([0] + [len(p[0]) for p in progs])
        const_off = np.cumsum([0] + [len(p[1]) for p in progs])
        return evaluate_batch(codes, code_off, consts, const_off, extended)

    if stores:
        extended[base + np.asarray(slots)] = run(stores)
    return mse_batch(run(programs), y)
