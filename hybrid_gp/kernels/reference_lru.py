"""The plain-Python twin of kernels/lru.py: the same table as an OrderedDict, for tests."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np


class LruTableReference:
    """128-bit keys -> [int64, float64] with LruTable's methods and semantics; entry
    ids are the keys themselves (find returns None where absent)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.table: OrderedDict[tuple[int, int], list] = OrderedDict()

    def __len__(self) -> int:
        return len(self.table)

    def find(self, his: np.ndarray, los: np.ndarray, touch: bool = False) -> list:
        out = []
        for key in zip(np.asarray(his, np.uint64).tolist(), np.asarray(los, np.uint64).tolist(),
                       strict=True):
            found = key in self.table
            out.append(key if found else None)
            if found and touch:
                self.table.move_to_end(key)
        return out

    def touch(self, ids: list) -> None:
        for key in ids:
            self.table.move_to_end(key)

    def put(self, his: np.ndarray, los: np.ndarray, ivals: np.ndarray, fvals: np.ndarray,
            touch: bool = True) -> int:
        evicted = 0
        for hi, lo, i, f in zip(np.asarray(his, np.uint64).tolist(),
                                np.asarray(los, np.uint64).tolist(),
                                np.asarray(ivals).tolist(), np.asarray(fvals).tolist(),
                                strict=True):
            key = (hi, lo)
            if key in self.table:
                self.table[key] = [i, f]
                if touch:
                    self.table.move_to_end(key)
                continue
            self.table[key] = [i, f]
            while len(self.table) > self.capacity:
                self.table.popitem(last=False)
                evicted += 1
        return evicted

    def items(self) -> list[tuple[tuple[int, int], int, float]]:
        """(key, int value, float value) from the least to the most recently used."""
        return [(k, v[0], v[1]) for k, v in self.table.items()]
