"""Selection over a whole generation at once.

- `tournament`: rank by (error, complexity) — lexicographic parsimony — and take the
  best of k random entrants (vectorised).
- `nsga2_*`: non-dominated fronts on (error, complexity) with crowding distance
  (Deb et al. 2002): survivors of parents + children, and binary tournaments on
  (front, crowding).
- `lexicase`: epsilon-lexicase (La Cava et al. 2016) on per-case errors, epsilon per
  case = median absolute deviation; a Numba kernel with its numpy twin.
"""

from __future__ import annotations

import warnings

import numpy as np
from numba import njit


def rank(errors: np.ndarray, complexity: np.ndarray) -> np.ndarray:
    """Rank of each individual, 0 = best: lower error first, then lower complexity
    (lexicographic parsimony). NaN errors rank as inf."""
    err = np.where(np.isnan(errors), np.inf, errors)
    order = np.lexsort((complexity, err))
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return ranks


def tournament(ranks: np.ndarray, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `n` tournament winners, each the best-ranked of `size` random entrants."""
    entrants = rng.integers(len(ranks), size=(n, size))
    return entrants[np.arange(n), np.argmin(ranks[entrants], axis=1)]


# ---------------------------------------------------------------------- NSGA-II


@njit(cache=True, nogil=True)
def _fronts_2d(err, comp, order):
    """Front of each point by one sweep in (complexity, error) order: a point joins the
    first front whose last point does not dominate it (binary search: the fronts' last
    errors increase with the front number)."""
    n = err.shape[0]
    front = np.empty(n, dtype=np.int64)
    tail_err = np.empty(n, dtype=np.float64)
    tail_comp = np.empty(n, dtype=np.float64)
    n_fronts = 0
    for idx in order:
        e, c = err[idx], comp[idx]
        lo, hi = 0, n_fronts
        while lo < hi:  # first front whose tail does not dominate (e, c)
            mid = (lo + hi) // 2
            te, tc = tail_err[mid], tail_comp[mid]
            dominated = te <= e and not (te == e and tc == c)
            if dominated:
                lo = mid + 1
            else:
                hi = mid
        front[idx] = lo
        tail_err[lo] = e
        tail_comp[lo] = c
        if lo == n_fronts:
            n_fronts += 1
    return front


def nondominated_fronts(errors: np.ndarray, complexity: np.ndarray) -> np.ndarray:
    """Front number of each point (0 = non-dominated) for minimising both objectives.
    Points equal in both objectives share a front; inf errors are allowed. One Numba
    sweep; `nondominated_fronts_reference` is its numpy twin."""
    return _sweep(errors, complexity)[1]


def _sweep(errors: np.ndarray, complexity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the (complexity, error, index) order, the front of each point)."""
    err = np.where(np.isnan(errors), np.inf, errors).astype(np.float64)
    comp = np.asarray(complexity, dtype=np.float64)
    order = by_complexity_then_error(err, comp)
    return order, _fronts_2d(err, comp, order)


def by_complexity_then_error(err: np.ndarray, comp: np.ndarray) -> np.ndarray:
    """np.lexsort((err, comp)): indices by complexity, then error (NaN last), then index.
    When the complexities are node counts (integers spanning fewer than 2**16 values),
    one Numba pass buckets them by complexity and sorts each bucket by error: about a
    quarter of the time of numpy's two stable argsorts; otherwise the lexsort itself."""
    err = np.ascontiguousarray(err, dtype=np.float64)
    comp = np.ascontiguousarray(comp, dtype=np.float64)
    order = np.empty(len(err), dtype=np.int64)
    if len(err) and _bucket_sort(err, comp, order):
        return order
    return np.lexsort((err, comp))


@njit(cache=True, error_model="numpy", nogil=True)
def _bucket_sort(err, comp, order):
    """order = lexsort((err, comp)) by a counting sort on integral complexities and
    _sort_by within each; False (order untouched) when they are not small integers."""
    n = comp.shape[0]
    lo, hi = comp[0], comp[0]
    for i in range(n):
        c = comp[i]
        if not (c == np.floor(c) and abs(c) < 2.0**53):  # NaN, inf or a fraction
            return False
        lo, hi = min(lo, c), max(hi, c)
    if hi - lo >= 65536:
        return False
    width = np.int64(hi - lo) + 1
    start = np.zeros(width + 1, dtype=np.int64)
    for i in range(n):
        start[np.int64(comp[i] - lo) + 1] += 1
    for b in range(width):
        start[b + 1] += start[b]
    members = np.empty(n, dtype=np.int64)  # each bucket's points by index
    fill = start[:width].copy()
    for i in range(n):
        b = np.int64(comp[i] - lo)
        members[fill[b]] = i
        fill[b] += 1
    for b in range(width):
        if start[b + 1] > start[b]:
            _sort_by(members[start[b]:start[b + 1]], err, order[start[b]:start[b + 1]],
                     _FORWARD)
    return True


def nondominated_fronts_reference(errors: np.ndarray, complexity: np.ndarray) -> np.ndarray:
    """Numpy twin of `nondominated_fronts`: peel one front at a time."""
    err = np.where(np.isnan(errors), np.inf, errors)
    front = np.full(len(err), -1, dtype=np.int64)
    remaining = np.lexsort((err, complexity))  # by complexity, then error
    k = 0
    while len(remaining):
        # In this order a point is dominated exactly when an earlier point has an error
        # no larger, unless that point is its equal in both objectives.
        errs = err[remaining]
        comp = complexity[remaining]
        best_before = np.minimum.accumulate(np.concatenate([[np.inf], errs[:-1]]))
        on = errs < best_before
        on[0] = True
        tie = np.zeros(len(remaining), dtype=bool)
        tie[1:] = (errs[1:] == errs[:-1]) & (comp[1:] == comp[:-1])
        for m in np.flatnonzero(tie):  # ascending, so runs of ties follow their head
            on[m] = on[m] or on[m - 1]
        front[remaining[on]] = k
        remaining = remaining[~on]
        k += 1
    return front


# Directions for _sort_by as numpy ints: Python constants would be literal types, and
# Numba compiles a callee once more for each literal it is passed.
_FORWARD, _BACKWARD = np.int64(0), np.int64(1)


@njit(cache=True, error_model="numpy", nogil=True)
def _before(a, ia, b, ib):
    """Whether (a, index ia) sorts before (b, index ib): by value, NaN last as numpy
    sorts, then by index (what a stable sort of an index-ordered list gives)."""
    if a == b or (a != a and b != b):
        return ia < ib
    if a != a:
        return False
    if b != b:
        return True
    return a < b


@njit(cache=True, error_model="numpy", nogil=True)
def _sort_by(members, key, out, reverse):
    """out = members sorted by (key[i], i), a total order, so any correct sort gives the
    same result. Fronts are small, so insertion sort (nearly free on the nearly sorted
    orders the callers pass); a large one (ties, inf errors) is merged bottom-up. Plain
    loops: Numba's own sorts cost seconds of compile time on a first run."""
    m = members.shape[0]
    for k in range(m):  # members as given, or reversed: the insertion sort's start
        out[k] = members[m - 1 - k] if reverse == _BACKWARD else members[k]
    if m <= 32:
        for k in range(1, m):
            x = out[k]
            j = k
            while j > 0 and _before(key[x], x, key[out[j - 1]], out[j - 1]):
                out[j] = out[j - 1]
                j -= 1
            out[j] = x
        return
    src, dst = out, np.empty(m, dtype=out.dtype)
    in_out = True  # whether src is `out`
    width = 1
    while width < m:
        for lo in range(0, m, 2 * width):
            mid, hi = min(lo + width, m), min(lo + 2 * width, m)
            i, j = lo, mid
            for k in range(lo, hi):
                if j >= hi or (i < mid and not _before(key[src[j]], src[j],
                                                       key[src[i]], src[i])):
                    dst[k] = src[i]
                    i += 1
                else:
                    dst[k] = src[j]
                    j += 1
        src, dst = dst, src
        in_out = not in_out
        width *= 2
    if not in_out:
        for k in range(m):
            out[k] = src[k]


@njit(cache=True, error_model="numpy", nogil=True)
def _add_crowding(values, members, reverse, by_value, dist):
    """Add one objective's crowding terms to the points of one front (size > 2)."""
    m = members.shape[0]
    _sort_by(members, values, by_value, reverse)
    lo, hi = values[by_value[0]], values[by_value[m - 1]]
    span = hi - lo
    dist[by_value[0]] = np.inf
    dist[by_value[m - 1]] = np.inf
    if span > 0 and np.isfinite(span):
        for k in range(1, m - 1):
            dist[by_value[k]] += (values[by_value[k + 1]] - values[by_value[k - 1]]) / span


@njit(cache=True, error_model="numpy", nogil=True)
def _crowding_and_order(err, comp, front, sweep):
    """Crowding distance of every point within its front (inf at the front's ends, non-
    finite errors as the largest float), and all points ordered by (front, larger
    distance, index). One pass per front: NSGA-II's survivors and tournament ranks
    without the per-objective lexsorts of the whole pool. `sweep` lists the points in
    any order; in `_sweep`'s (complexity, error) order a front's points come sorted by
    complexity and reversed by error (within a front, equal in one objective means
    equal in both), which makes the sorts here nearly free."""
    n = front.shape[0]
    n_fronts = 0
    for i in range(n):
        n_fronts = max(n_fronts, front[i] + 1)
    start = np.zeros(n_fronts + 1, dtype=np.int64)
    for i in range(n):
        start[front[i] + 1] += 1
    for f in range(n_fronts):
        start[f + 1] += start[f]
    members = np.empty(n, dtype=np.int64)  # each front's points, in `sweep` order
    fill = start[:n_fronts].copy()
    for i in sweep:
        members[fill[front[i]]] = i
        fill[front[i]] += 1
    big = np.finfo(np.float64).max
    crowd_err = np.empty(n, dtype=np.float64)
    for i in range(n):
        crowd_err[i] = err[i] if np.isfinite(err[i]) else big
    dist = np.zeros(n, dtype=np.float64)
    work = np.empty(n, dtype=np.int64)
    for f in range(n_fronts):
        a, b = start[f], start[f + 1]
        if b - a <= 2:
            for k in range(a, b):
                dist[members[k]] = np.inf
        else:
            _add_crowding(crowd_err, members[a:b], _BACKWARD, work[a:b], dist)
            _add_crowding(comp, members[a:b], _FORWARD, work[a:b], dist)
    negated = -dist
    order = np.empty(n, dtype=np.int64)
    for f in range(n_fronts):
        a, b = start[f], start[f + 1]
        _sort_by(members[a:b], negated, order[a:b], _FORWARD)
    return dist, order


def crowding(errors: np.ndarray, complexity: np.ndarray, front: np.ndarray) -> np.ndarray:
    """Crowding distance within each front (inf at the front's ends); Numba, one pass
    per front, `crowding_reference` is its numpy twin."""
    front = np.asarray(front, dtype=np.int64)
    return _crowding_and_order(np.asarray(errors, dtype=np.float64),
                               np.asarray(complexity, dtype=np.float64), front,
                               np.arange(len(front)))[0]


def crowding_reference(errors: np.ndarray, complexity: np.ndarray,
                       front: np.ndarray) -> np.ndarray:
    """Numpy twin of `crowding`."""
    err = np.where(np.isfinite(errors), errors, np.finfo(float).max)
    dist = np.zeros(len(err))
    for f in np.unique(front):
        idx = np.flatnonzero(front == f)
        if len(idx) <= 2:
            dist[idx] = np.inf
            continue
        for values in (err[idx], complexity[idx].astype(float)):
            order = idx[np.argsort(values, kind="stable")]
            v = np.sort(values)
            span = v[-1] - v[0]
            dist[order[0]] = dist[order[-1]] = np.inf
            if span > 0 and np.isfinite(span):
                dist[order[1:-1]] += (v[2:] - v[:-2]) / span
    return dist


def nsga2_order(errors: np.ndarray, complexity: np.ndarray) -> np.ndarray:
    """All points, best first: by front, then larger crowding distance, then index
    (what `np.lexsort((-crowding, front))` gives; `nsga2_order_reference` is the twin
    built from the numpy twins)."""
    sweep, front = _sweep(errors, complexity)
    return _crowding_and_order(np.asarray(errors, dtype=np.float64),
                               np.asarray(complexity, dtype=np.float64), front, sweep)[1]


def nsga2_order_reference(errors: np.ndarray, complexity: np.ndarray) -> np.ndarray:
    """Numpy twin of `nsga2_order`."""
    front = nondominated_fronts_reference(errors, complexity)
    dist = crowding_reference(errors, complexity, front)
    return np.lexsort((-dist, front))


def nsga2_survivors(errors: np.ndarray, complexity: np.ndarray, mu: int) -> np.ndarray:
    """Indices of the `mu` survivors: whole fronts first, the last one by crowding."""
    return np.sort(nsga2_order(errors, complexity)[:mu])


def nsga2_ranks(errors: np.ndarray, complexity: np.ndarray) -> np.ndarray:
    """Rank for tournaments: front first, then larger crowding distance."""
    order = nsga2_order(errors, complexity)
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return ranks


# ---------------------------------------------------------------------- lexicase


def case_epsilon(case_errors: np.ndarray) -> np.ndarray:
    """Median absolute deviation of each case's errors over the population."""
    e = np.where(np.isfinite(case_errors), case_errors, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a case non-finite for everyone
        med = np.nanmedian(e, axis=0)
        eps = np.nanmedian(np.abs(e - med), axis=0)
    return np.nan_to_num(eps, nan=0.0)


@njit(cache=True, nogil=True)
def _lexicase(case_errors, eps, n, uniforms):
    n_pop, n_cases = case_errors.shape
    out = np.empty(n, dtype=np.int64)
    alive = np.empty(n_pop, dtype=np.int64)
    order = np.empty(n_cases, dtype=np.int64)
    for k in range(n):
        u = uniforms[k]
        for c in range(n_cases):  # Fisher-Yates shuffle of the cases
            order[c] = c
        for c in range(n_cases - 1, 0, -1):
            j = min(int(u[c] * (c + 1)), c)
            order[c], order[j] = order[j], order[c]
        n_alive = n_pop
        for m in range(n_pop):
            alive[m] = m
        for c in range(n_cases):
            if n_alive <= 1:
                break
            case = order[c]
            best = np.inf
            for m in range(n_alive):
                v = case_errors[alive[m], case]
                if v < best:
                    best = v
            limit = best + eps[case]
            kept = 0
            for m in range(n_alive):
                if case_errors[alive[m], case] <= limit:
                    alive[kept] = alive[m]
                    kept += 1
            if kept > 0:
                n_alive = kept
        out[k] = alive[min(int(u[n_cases] * n_alive), n_alive - 1)]
    return out


def lexicase(case_errors: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` parents by epsilon-lexicase over case_errors (n_pop, n_cases); non-finite
    errors never pass a case."""
    e = np.where(np.isfinite(case_errors), case_errors, np.inf)
    eps = case_epsilon(case_errors)
    uniforms = rng.random((n, e.shape[1] + 1))
    return _lexicase(np.ascontiguousarray(e), eps, n, uniforms)


def lexicase_reference(case_errors: np.ndarray, n: int, uniforms: np.ndarray) -> np.ndarray:
    """Plain-numpy twin of the kernel, drawing from the same uniforms."""
    e = np.where(np.isfinite(case_errors), case_errors, np.inf)
    eps = case_epsilon(case_errors)
    n_pop, n_cases = e.shape
    out = np.empty(n, dtype=np.int64)
    for k in range(n):
        u = uniforms[k]
        order = list(range(n_cases))
        for c in range(n_cases - 1, 0, -1):
            j = min(int(u[c] * (c + 1)), c)
            order[c], order[j] = order[j], order[c]
        alive = np.arange(n_pop)
        for case in order:
            if len(alive) <= 1:
                break
            v = e[alive, case]
            keep = alive[v <= v.min() + eps[case]]
            if len(keep):
                alive = keep
        out[k] = alive[min(int(u[n_cases] * len(alive)), len(alive) - 1)]
    return out
