"""A least-recently-used hash table over arrays: the equivalence cache's two tables.

The cache looks up, touches and stores hundreds of keys per generation; as Python
dictionaries that bookkeeping cost more than evaluating the children on small data.
Here a whole batch of keys is one call.

Keys are 128 bits (two uint64 words; a 64-bit key uses the second word and a zero
first word). Each entry holds an int64 and a float64 value. Entries live in a pool of
parallel arrays, chained in recency order by a doubly linked list, so touching an entry,
evicting the least recently used one and inserting are O(1). An index of entry ids,
at most half full, finds them by linear probing; deleting from it shifts the rest of
the probe run back, so there are no tombstones. Live entries are always ids
0..size-1: an entry leaves only when the table is full, and the newcomer takes its id.

The semantics are those of an OrderedDict with move_to_end on a touch and popitem(last=
False) past the capacity; kernels/reference_lru.py is that twin.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .structural import _mix

_JIT = dict(cache=True, error_model="numpy", nogil=True)
# The per-key helpers never allocate, so they are compiled without reference counting:
# Numba otherwise increments and decrements an atomic count for every array passed to
# them, which made a touch cost ten times its list surgery (as in the interpreter and
# the breeder; docs/kernels.md).
_HOT = dict(_JIT, _nrt=False)

SIZE, HEAD, TAIL, CAPACITY = 0, 1, 2, 3  # fields of `meta`
_SALT = np.uint64(0xC2B2AE3D27D4EB4F)


@njit(**_HOT)
def _home(hi, lo, mask):
    return np.int64(_mix(lo ^ _mix(hi ^ _SALT)) & mask)


@njit(**_HOT)
def _find(index, keys, hi, lo):
    """(entry id or -1, the index slot holding it or the empty slot ending its run)."""
    m = len(index) - 1
    j = _home(hi, lo, np.uint64(m))
    while True:
        e = index[j]
        if e < 0:
            return e, j
        if keys[e, 0] == hi and keys[e, 1] == lo:
            return e, j
        j = (j + 1) & m


@njit(**_HOT)
def _delete_slot(index, keys, i):
    """Empty index slot i, shifting back the entries after it whose home allows."""
    m = len(index) - 1
    j = i
    while True:
        j = (j + 1) & m
        e = index[j]
        if e < 0:
            break
        k = _home(keys[e, 0], keys[e, 1], np.uint64(m))
        stays = (i < k <= j) if i <= j else (k > i or k <= j)
        if not stays:
            index[i] = e
            i = j
    index[i] = -1


@njit(**_HOT)
def _unlink(prev, nxt, meta, e):
    p, n = prev[e], nxt[e]
    if p >= 0:
        nxt[p] = n
    else:
        meta[HEAD] = n
    if n >= 0:
        prev[n] = p
    else:
        meta[TAIL] = p


@njit(**_HOT)
def _append(prev, nxt, meta, e):
    t = meta[TAIL]
    prev[e] = t
    nxt[e] = -1
    if t >= 0:
        nxt[t] = e
    else:
        meta[HEAD] = e
    meta[TAIL] = e


@njit(**_HOT)
def _touch(prev, nxt, meta, e):
    if meta[TAIL] != e:
        _unlink(prev, nxt, meta, e)
        _append(prev, nxt, meta, e)


@njit(**_JIT)
def lookup(index, keys, prev, nxt, meta, his, los, touch, out):
    """out[k] = the entry id of key k, or -1; found keys become the most recent, in
    order, when `touch`."""
    for k in range(len(his)):
        e, _ = _find(index, keys, his[k], los[k])
        out[k] = e
        if e >= 0 and touch:
            _touch(prev, nxt, meta, e)


@njit(**_JIT)
def touch_ids(prev, nxt, meta, ids):
    """Entries ids[0], ids[1], ... become the most recent, in order."""
    for k in range(len(ids)):
        _touch(prev, nxt, meta, ids[k])


@njit(**_JIT)
def put(index, keys, ivals, fvals, prev, nxt, meta, his, los, iv, fv, touch):
    """Store values under keys, in order. A known key gets the new values (and becomes
    the most recent when `touch`); a new key is appended as the most recent, evicting
    the least recent entry when the table is full. The pool must have room for the new
    keys up to the capacity. Returns the number of entries evicted."""
    evicted = 0
    for k in range(len(his)):
        hi, lo = his[k], los[k]
        e, slot = _find(index, keys, hi, lo)
        if e >= 0:
            ivals[e] = iv[k]
            fvals[e] = fv[k]
            if touch:
                _touch(prev, nxt, meta, e)
            continue
        if meta[SIZE] >= meta[CAPACITY]:
            e = meta[HEAD]
            _, old = _find(index, keys, keys[e, 0], keys[e, 1])
            _delete_slot(index, keys, old)
            _unlink(prev, nxt, meta, e)
            evicted += 1
            _, slot = _find(index, keys, hi, lo)  # the deletion may have shifted the run
        else:
            e = meta[SIZE]
            meta[SIZE] += 1
        keys[e, 0] = hi
        keys[e, 1] = lo
        ivals[e] = iv[k]
        fvals[e] = fv[k]
        index[slot] = e
        _append(prev, nxt, meta, e)
    return evicted


@njit(**_JIT)
def reindex(index, keys, size):
    """Fill an empty index with entries 0..size-1 (after the pool grew)."""
    for e in range(size):
        _, slot = _find(index, keys, keys[e, 0], keys[e, 1])
        index[slot] = e


@njit(**_JIT)
def recency_order(nxt, meta, out):
    """Entry ids from the least to the most recent."""
    e, k = meta[HEAD], 0
    while e >= 0:
        out[k] = e
        k += 1
        e = nxt[e]


class LruTable:
    """128-bit keys -> (int64, float64), least recently used entries evicted past
    `capacity`. Every method takes a batch of keys as two uint64 arrays (first and
    second word) and works through them in order."""

    def __init__(self, capacity: int, initial: int = 1024):
        if capacity < 1:
            raise ValueError(f"an LRU table needs a capacity >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.meta = np.array([0, -1, -1, self.capacity], dtype=np.int64)
        self._resize(min(self.capacity, initial))

    def _resize(self, pool: int) -> None:
        """Pool arrays for `pool` entries, the live ones kept, and a fresh index (a
        power of two at least twice the pool) holding them."""
        size = len(self)
        for name, dtype, fill, width in (("keys", np.uint64, 0, (2,)),
                                         ("ivals", np.int64, 0, ()),
                                         ("fvals", np.float64, 0, ()),
                                         ("prev", np.int64, -1, ()),
                                         ("next", np.int64, -1, ())):
            new = np.full((pool, *width), fill, dtype=dtype)
            if size:
                new[:size] = getattr(self, name)[:size]
            setattr(self, name, new)
        self.index = np.full(1 << int(2 * pool - 1).bit_length(), -1, dtype=np.int64)
        reindex(self.index, self.keys, self.meta[SIZE])

    def _reserve(self, n_new: int) -> None:
        """Grow the pool (doubling, up to the capacity) so n_new more keys fit."""
        pool = len(self.keys)
        need = min(self.capacity, len(self) + n_new)
        if need > pool:
            self._resize(min(self.capacity, max(need, 2 * pool)))

    def __len__(self) -> int:
        return int(self.meta[SIZE])

    def find(self, his: np.ndarray, los: np.ndarray, touch: bool = False) -> np.ndarray:
        """Entry ids of the keys (-1 where absent); with `touch`, found keys become the
        most recent. Ids stay valid until the next `put`."""
        his, los = _words(his, los)
        out = np.empty(len(his), dtype=np.int64)
        lookup(self.index, self.keys, self.prev, self.next, self.meta, his, los, bool(touch),
               out)
        return out

    def touch(self, ids: np.ndarray) -> None:
        """Make entries (ids from `find`, still valid) the most recent, in order: what
        `find(..., touch=True)` of their keys does, without looking them up again."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) and not (ids.min() >= 0 and ids.max() < len(self)):
            raise ValueError(f"entry ids must be in 0..{len(self) - 1}")
        touch_ids(self.prev, self.next, self.meta, ids)

    def put(self, his: np.ndarray, los: np.ndarray, ivals: np.ndarray, fvals: np.ndarray,
            touch: bool = True) -> int:
        """Store the values under the keys (see `put`); returns how many entries went."""
        his, los = _words(his, los)
        self._reserve(len(his))
        return int(put(self.index, self.keys, self.ivals, self.fvals, self.prev, self.next,
                       self.meta, his, los, np.ascontiguousarray(ivals, dtype=np.int64),
                       np.ascontiguousarray(fvals, dtype=np.float64), bool(touch)))

    def in_order(self) -> np.ndarray:
        """Live entry ids from the least to the most recently used."""
        out = np.empty(len(self), dtype=np.int64)
        recency_order(self.next, self.meta, out)
        return out


def _words(his: np.ndarray, los: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both key words as contiguous uint64 arrays of one length (one compiled signature)."""
    his = np.ascontiguousarray(his, dtype=np.uint64)
    los = np.ascontiguousarray(los, dtype=np.uint64)
    if his.shape != los.shape or his.ndim != 1:
        raise ValueError(f"key words must be two 1-D arrays of one length, got shapes "
                         f"{his.shape} and {los.shape}")
    return his, los
