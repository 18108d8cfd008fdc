"""The array LRU table (kernels/lru.py) against its OrderedDict twin: random batches of
lookups, touches and stores over a small key space, so that keys collide, entries are
overwritten and the capacity evicts, must leave both with the same answers, the same
values and the same recency order."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybrid_gp.kernels.lru import LruTable
from hybrid_gp.kernels.reference_lru import LruTableReference


def _table_items(t: LruTable) -> list:
    ids = t.in_order()
    return [((int(a), int(b)), int(i), float(f))
            for (a, b), i, f in zip(t.keys[ids].tolist(), t.ivals[ids].tolist(),
                                    t.fvals[ids].tolist(), strict=True)]


def _keys(rng: np.random.Generator, n: int, space: int) -> tuple[np.ndarray, np.ndarray]:
    """n keys from `space` distinct ones, some with large or zero first words."""
    pick = rng.integers(0, space, n).astype(np.uint64)
    his = np.where(pick % np.uint64(3) == 0, np.uint64(0), pick * np.uint64(0x9E3779B97F4A7C15))
    return his, pick


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(2, 120), st.integers(0, 2**32 - 1))
def test_the_table_and_its_ordered_dict_twin_agree(capacity, space, seed):
    rng = np.random.default_rng(seed)
    table, twin = LruTable(capacity, initial=2), LruTableReference(capacity)
    for _ in range(30):
        n = int(rng.integers(0, 25))
        his, los = _keys(rng, n, space)
        if rng.random() < 0.5:
            touch = bool(rng.random() < 0.5)
            ids, ref = table.find(his, los, touch), twin.find(his, los, touch)
            assert [i >= 0 for i in ids.tolist()] == [r is not None for r in ref]
            found = ids >= 0
            want = [twin.table[r][0] for r in ref if r is not None]
            assert table.ivals[ids[found]].tolist() == want
            if not touch and rng.random() < 0.5:  # touch what was found, by id
                table.touch(ids[found])
                twin.touch([r for r in ref if r is not None])
        else:
            iv = rng.integers(-5, 5, n)
            fv = rng.normal(size=n)
            touch = bool(rng.random() < 0.5)
            assert table.put(his, los, iv, fv, touch) == twin.put(his, los, iv, fv, touch)
        assert len(table) == len(twin) <= capacity
        assert _table_items(table) == twin.items()


def test_the_least_recently_used_entry_goes_first():
    table = LruTable(3)
    one = np.zeros(1, dtype=np.uint64)
    for k in (1, 2, 3):
        table.put(one * 0, one + k, [k], [float(k)])
    table.find(one * 0, one + 1, touch=True)  # 1 is now the most recent
    assert table.put(one * 0, one + 4, [4], [4.0]) == 1
    assert table.find(np.zeros(4, np.uint64), np.arange(1, 5, dtype=np.uint64)).tolist()[1] == -1
    assert [int(k) for k in table.keys[table.in_order(), 1]] == [3, 1, 4]


def test_a_lookup_without_touch_leaves_the_order_alone():
    table = LruTable(2)
    z = np.zeros(2, dtype=np.uint64)
    table.put(z, np.array([7, 8], dtype=np.uint64), [0, 0], [0.0, 0.0])
    table.find(z[:1], np.array([7], dtype=np.uint64))
    table.put(z[:1], np.array([9], dtype=np.uint64), [0], [0.0])
    assert sorted(int(k) for k in table.keys[table.in_order(), 1]) == [8, 9]


def test_touching_by_id_is_a_lookup_with_touch():
    keys = np.arange(1, 6, dtype=np.uint64)
    z = np.zeros(5, dtype=np.uint64)
    by_id, by_key = LruTable(5), LruTable(5)
    for t in (by_id, by_key):
        t.put(z, keys, np.arange(5), np.zeros(5))
    pick = np.array([3, 0, 3, 1], dtype=np.uint64) + np.uint64(1)
    by_id.touch(by_id.find(z[:4], pick))
    by_key.find(z[:4], pick, touch=True)
    assert by_id.in_order().tolist() == by_key.in_order().tolist() == [2, 4, 0, 3, 1]
    with pytest.raises(ValueError, match="entry ids"):
        by_id.touch(np.array([5]))


def test_the_pool_grows_to_the_capacity_and_no_further():
    table = LruTable(5000, initial=4)
    his = np.zeros(12_000, dtype=np.uint64)
    los = np.arange(12_000, dtype=np.uint64)
    assert table.put(his, los, np.arange(12_000), np.zeros(12_000)) == 7000
    assert len(table) == 5000 and len(table.keys) == 5000
    ids = table.find(his, los)
    assert (ids[:7000] == -1).all() and (table.ivals[ids[7000:]] == np.arange(7000, 12_000)).all()


def test_bad_keys_and_capacity_are_refused():
    with pytest.raises(ValueError, match="capacity >= 1"):
        LruTable(0)
    with pytest.raises(ValueError, match="one length"):
        LruTable(4).find(np.zeros(2, np.uint64), np.zeros(3, np.uint64))
