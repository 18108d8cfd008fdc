"""Batch breeding: all classic children of a generation in one Numba call.

The population comes in as flat prefix codes (primitive positions, -1 constants, -k-2
variables) with offsets; each child names its operator and parents and owns one row of
uniforms, computed as they are used from the batch's seed (operators/draws.py). Every
operator consumes its uniforms exactly as its Python twin in operators/classic.py and
generate.py does when handed `UniformDraws` over the same row, so the twins produce
identical children (tests compare them).

Grammar tables (operators/batch.py builds them): 0 primitive arity, 1 return type id,
2 argument type ids (padded), 3 minimum completion height, 4 producers of each type
(flat, primitive order) with 5 their offsets, 6 minimum height per type, 7 primitives
of the same signature (flat) with 8 their offsets, 9 constraint group mask per primitive,
10 forbidden[parent, child]. iparams: variable type, constant type (-1: none),
n_features, max_depth, max_size, mutation depth, grow buffer, constrained (0/1);
fparams: constant low, high, probability, perturbation scale.

Operator ids: 0 crossover, 1 subtree, 2 point, 3 hoist, 4 shrink, 5 constant; a failed
operator falls back to subtree mutation, then to a copy of the first parent (id 6).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .interpreter import _fetch_add
from .structural import _GOLDEN, _mix  # SplitMix64's step and finaliser

_JIT = dict(cache=True, error_model="numpy", nogil=True)
# Per-child code never allocates (breed hands it scratch arrays), so it is compiled
# without reference counting: Numba otherwise increments and decrements an atomic count
# for every array argument and slice, which cost more than the work (as in the
# interpreter; docs/kernels.md).
_HOT = dict(_JIT, _nrt=False)

CROSSOVER, SUBTREE, POINT, HOIST, SHRINK, CONSTANT, COPY = 0, 1, 2, 3, 4, 5, 6
_UNIT = 2.0**-53
# Numba compiles a jitted callee once more for every Python constant it is passed (a
# literal type), and, while inferring types, for the first value of a counter that
# starts at a constant. Numpy scalars are plain int64: these keep one compiled callee.
_ZERO, _NO_TARGET = np.int64(0), np.int64(-1)
INTERNAL_BIAS = 0.9


# ---------------------------------------------------------------------- draws


@njit(**_HOT)
def _rand(uni, cur):
    """The child's next uniform. uni = (its first counter state, the period): uniform j
    is SplitMix64 at state first + (j mod period) * golden, its top 53 bits in [0, 1)
    (operators/draws.py: ChildDraws, whose `rows` is the twin)."""
    at = cur[0]
    cur[0] += 1
    period = np.int64(uni[1])
    if at >= period:  # rows wrap; a division only then (it costs more than the mixing)
        at %= period
    z = _mix(uni[0] + np.uint64(at) * _GOLDEN)
    return np.float64(z >> np.uint64(11)) * _UNIT


@njit(**_HOT)
def _int(uni, cur, n):
    k = int(_rand(uni, cur) * n)
    return n - 1 if k >= n else k


@njit(**_HOT)
def _normal(uni, cur):
    u1 = _rand(uni, cur)
    u2 = _rand(uni, cur)
    return np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2)


# ---------------------------------------------------------------------- tree helpers


@njit(**_HOT)
def _layout(codes, n, arity, ends, depths, open_idx, open_left):
    """Subtree ends and node depths of codes[:n]; returns the tree depth."""
    top = 0
    deepest = 0
    for i in range(n):
        depths[i] = top
        if top > deepest:
            deepest = top
        c = codes[i]
        a = arity[c] if c >= 0 else 0
        if a > 0:
            open_idx[top] = i
            open_left[top] = a
            top += 1
            continue
        ends[i] = i + 1
        while top > 0:
            open_left[top - 1] -= 1
            if open_left[top - 1] > 0:
                break
            top -= 1
            ends[open_idx[top]] = i + 1
    return deepest


@njit(**_HOT)
def _allowed(prim, mask, parent, groups, forbidden):
    """Twin of constraints.allowed."""
    if groups[prim] & mask:
        return False
    return not (parent >= 0 and forbidden[parent, prim])


@njit(**_HOT)
def _walk(codes, n, target, arity, groups, forbidden, open_mask, open_prim, open_left):
    """One walk over codes[:n] with every node's constraint context (ancestor group mask,
    parent). With target >= 0: (True, mask, parent) of node `target` (twin of
    constraints.contexts). With target < 0: (valid, 0, -1), validity as in
    constraints.is_valid."""
    top = 0
    for i in range(n):
        mask = open_mask[top - 1] if top > 0 else 0
        parent = open_prim[top - 1] if top > 0 else -1
        if i == target:
            return True, mask, parent
        c = codes[i]
        if target < 0 and c >= 0 and not _allowed(c, mask, parent, groups, forbidden):
            return False, 0, -1
        a = arity[c] if c >= 0 else 0
        if a > 0:
            open_mask[top] = mask | groups[c]
            open_prim[top] = c
            open_left[top] = a
            top += 1
            continue
        while top > 0:
            open_left[top - 1] -= 1
            if open_left[top - 1] > 0:
                break
            top -= 1
    return True, 0, -1


@njit(**_HOT)
def _node_type(c, prim_ret, var_type, const_type):
    if c >= 0:
        return prim_ret[c]
    if c == -1:
        return const_type
    return var_type


@njit(**_HOT)
def _count_consts(codes, start, end):
    k = 0
    for i in range(start, end):
        if codes[i] == -1:
            k += 1
    return k


@njit(**_HOT)
def _pick_point(codes, cand, n_cand, uni, cur):
    """Twin of classic.pick_point over the candidate positions cand[:n_cand]."""
    if n_cand == 0:
        return -1
    n_int = np.int64(0)  # see _ZERO
    for m in range(n_cand):
        if codes[cand[m]] >= 0:
            n_int += 1
    want = -1  # -1: any candidate; 1: internal only; 0: leaves only
    if n_int > 0 and n_int < n_cand:
        want = 1 if _rand(uni, cur) < INTERNAL_BIAS else 0
    pool = n_cand if want == -1 else (n_int if want == 1 else n_cand - n_int)
    target = _int(uni, cur, pool)
    seen = 0
    for m in range(n_cand):
        is_int = codes[cand[m]] >= 0
        if want == -1 or (want == 1 and is_int) or (want == 0 and not is_int):
            if seen == target:
                return cand[m]
            seen += 1
    return -1


@njit(**_HOT)
def _usable(prim, left, mask, parent, constrained, prim_height, groups, forbidden):
    if prim_height[prim] > left:
        return False
    return not constrained or _allowed(prim, mask, parent, groups, forbidden)


@njit(**_HOT)
def _grow(t, max_depth, mask0, parent0, uni, cur, tables, iparams, fparams, out_codes,
          out_consts, stack_t, stack_d, stack_m, stack_p):
    """Twin of generate.random_codes(method="grow", min_depth=0, context=(mask0,
    parent0)); returns (n, n_const)."""
    prim_arity, prim_args = tables[0], tables[2]
    prim_height, producers, prod_off = tables[3], tables[4], tables[5]
    groups, forbidden = tables[9], tables[10]
    var_type, const_type, n_features = iparams[0], iparams[1], iparams[2]
    lo, hi, p_const = fparams[0], fparams[1], fparams[2]
    n = 0
    nc = 0
    stack_t[0] = t
    stack_d[0] = 0
    stack_m[0] = mask0
    stack_p[0] = parent0
    sp = 1
    while sp > 0:
        sp -= 1
        tt = stack_t[sp]
        d = stack_d[sp]
        mask = stack_m[sp]
        parent = stack_p[sp]
        left = max_depth - d
        can_var = tt == var_type and n_features > 0
        has_const = tt == const_type
        # Constraints apply unless they would leave a node needing a primitive with none.
        constrained = iparams[7] == 1
        if constrained and not can_var and not has_const:
            any_allowed = False
            for m in range(prod_off[tt], prod_off[tt + 1]):
                if _usable(producers[m], left, mask, parent, constrained, prim_height, groups,
                           forbidden):
                    any_allowed = True
                    break
            constrained = any_allowed
        n_feasible = np.int64(0)  # see _ZERO
        for m in range(prod_off[tt], prod_off[tt + 1]):
            if _usable(producers[m], left, mask, parent, constrained, prim_height, groups,
                       forbidden):
                n_feasible += 1
        n_terms = (1 if can_var else 0) + (1 if has_const else 0)
        if n_terms == 0:
            use_prim = True
        elif n_feasible == 0 or left <= 0:
            use_prim = False
        else:
            n_symbols = (n_features if can_var else 0) + (1 if has_const else 0)
            use_prim = _rand(uni, cur) < n_feasible / (n_feasible + n_symbols)
        if use_prim:
            target = _int(uni, cur, n_feasible)
            seen = 0
            chosen = -1
            for m in range(prod_off[tt], prod_off[tt + 1]):
                if _usable(producers[m], left, mask, parent, constrained, prim_height, groups,
                           forbidden):
                    if seen == target:
                        chosen = producers[m]
                        break
                    seen += 1
            out_codes[n] = chosen
            n += 1
            below = mask | groups[chosen] if iparams[7] == 1 else 0
            below_parent = chosen if iparams[7] == 1 else -1
            for a in range(prim_arity[chosen] - 1, -1, -1):
                stack_t[sp] = prim_args[chosen, a]
                stack_d[sp] = d + 1
                stack_m[sp] = below
                stack_p[sp] = below_parent
                sp += 1
        elif has_const and (not can_var or _rand(uni, cur) < p_const):
            out_codes[n] = -1
            out_consts[nc] = lo + (hi - lo) * _rand(uni, cur)
            n += 1
            nc += 1
        else:
            out_codes[n] = -_int(uni, cur, n_features) - 2
            n += 1
    return n, nc


@njit(**_HOT)
def _splice(a_codes, a_consts, a_n, i, i_end, s_codes, s_consts, s_n, s_nc,
            out_codes, out_consts):
    """a with its subtree [i, i_end) replaced by s; returns (n, n_const)."""
    c_before = _count_consts(a_codes, _ZERO, i)
    c_inside = _count_consts(a_codes, i, i_end)
    a_nc = _count_consts(a_codes, _ZERO, a_n)
    n = 0
    for k in range(i):
        out_codes[n] = a_codes[k]
        n += 1
    for k in range(s_n):
        out_codes[n] = s_codes[k]
        n += 1
    for k in range(i_end, a_n):
        out_codes[n] = a_codes[k]
        n += 1
    nc = 0
    for k in range(c_before):
        out_consts[nc] = a_consts[k]
        nc += 1
    for k in range(s_nc):
        out_consts[nc] = s_consts[k]
        nc += 1
    for k in range(c_before + c_inside, a_nc):
        out_consts[nc] = a_consts[k]
        nc += 1
    return n, nc


@njit(**_HOT)
def _limit_and_check(n, nc, child_codes, tables, iparams, sc):
    """(-1, 0) for a child over max_size or max_depth (an operator that can grow the
    tree); otherwise the grammar checks of _check."""
    a_ends, a_depths, _, _, open_idx, open_left, _ = sc
    if n > iparams[4] or _layout(child_codes, n, tables[0], a_ends, a_depths, open_idx,
                                 open_left) > iparams[3]:
        return -1, 0
    return _check(n, nc, child_codes, tables, iparams, sc)


@njit(**_HOT)
def _check(n, nc, child_codes, tables, iparams, sc):
    """(n, nc) when the child keeps the grammar's constraints, else (-1, 0)."""
    if n < 0 or iparams[7] == 0:
        return n, nc
    _, _, _, _, open_idx, open_left, cand = sc
    valid, _, _ = _walk(child_codes, n, _NO_TARGET, tables[0], tables[9], tables[10],
                        open_idx, cand, open_left)
    return (n, nc) if valid else (-1, 0)


# ---------------------------------------------------------------------- operators
# Each returns (n, n_const) of the child written to child_codes/child_consts, or (-1, 0)
# when it does not apply or the child breaks the limits.


@njit(**_HOT)
def _crossover(a_codes, a_consts, a_n, b_codes, b_consts, b_n, uni, cur, tables, iparams,
               sc, child_codes, child_consts):
    prim_arity, prim_ret = tables[0], tables[1]
    var_type, const_type, max_size = iparams[0], iparams[1], iparams[4]
    a_ends, a_depths, b_ends, b_depths, open_idx, open_left, cand = sc
    _layout(a_codes, a_n, prim_arity, a_ends, a_depths, open_idx, open_left)
    _layout(b_codes, b_n, prim_arity, b_ends, b_depths, open_idx, open_left)
    for k in range(a_n):
        cand[k] = k
    i = _pick_point(a_codes, cand, a_n, uni, cur)
    t = _node_type(a_codes[i], prim_ret, var_type, const_type)
    room = max_size - (a_n - (a_ends[i] - i))
    n_fit = np.int64(0)  # see _ZERO
    for j in range(b_n):
        if (_node_type(b_codes[j], prim_ret, var_type, const_type) == t
                and b_ends[j] - j <= room):
            cand[n_fit] = j
            n_fit += 1
    j = _pick_point(b_codes, cand, n_fit, uni, cur)
    if j < 0:
        return -1, 0
    jc = _count_consts(b_codes, _ZERO, j)
    nc_sub = _count_consts(b_codes, j, b_ends[j])
    n, nc = _splice(a_codes, a_consts, a_n, i, a_ends[i], b_codes[j:b_ends[j]],
                    b_consts[jc:jc + nc_sub], b_ends[j] - j, nc_sub, child_codes, child_consts)
    return _limit_and_check(n, nc, child_codes, tables, iparams, sc)


@njit(**_HOT)
def _subtree(a_codes, a_consts, a_n, uni, cur, tables, iparams, fparams, sc, grow_sc,
             child_codes, child_consts):
    prim_arity, prim_ret, min_height = tables[0], tables[1], tables[6]
    var_type, const_type = iparams[0], iparams[1]
    max_depth, new_depth = iparams[3], iparams[5]
    a_ends, a_depths, _, _, open_idx, open_left, cand = sc
    sub_codes, sub_consts, stack_t, stack_d, stack_m, stack_p = grow_sc
    _layout(a_codes, a_n, prim_arity, a_ends, a_depths, open_idx, open_left)
    i = _int(uni, cur, a_n)
    room = max_depth - a_depths[i]
    t = _node_type(a_codes[i], prim_ret, var_type, const_type)
    depth = min(room, new_depth)
    if depth < min_height[t]:
        return -1, 0
    mask0, parent0 = 0, -1
    if iparams[7] == 1:
        _, mask0, parent0 = _walk(a_codes, a_n, i, prim_arity, tables[9], tables[10],
                                  open_idx, cand, open_left)
    s_n, s_nc = _grow(t, depth, mask0, parent0, uni, cur, tables, iparams, fparams,
                      sub_codes, sub_consts, stack_t, stack_d, stack_m, stack_p)
    if a_n - (a_ends[i] - i) + s_n > child_codes.shape[0]:
        return -1, 0
    n, nc = _splice(a_codes, a_consts, a_n, i, a_ends[i], sub_codes, sub_consts, s_n, s_nc,
                    child_codes, child_consts)
    return _limit_and_check(n, nc, child_codes, tables, iparams, sc)


@njit(**_HOT)
def _point(a_codes, a_consts, a_n, uni, cur, tables, iparams, fparams, chosen, sc,
           child_codes, child_consts):
    prim_ret, same, same_off = tables[1], tables[7], tables[8]
    var_type, const_type, n_features = iparams[0], iparams[1], iparams[2]
    lo, hi, p_const = fparams[0], fparams[1], fparams[2]
    rate = 1.0 / a_n
    n_chosen = 0
    for i in range(a_n):
        if _rand(uni, cur) < rate:
            chosen[n_chosen] = i
            n_chosen += 1
    if n_chosen == 0:
        chosen[0] = _int(uni, cur, a_n)
        n_chosen = 1
    for k in range(a_n):
        child_codes[k] = a_codes[k]
    nc = _count_consts(a_codes, _ZERO, a_n)
    for k in range(nc):
        child_consts[k] = a_consts[k]
    changed = False
    for m in range(n_chosen):
        i = chosen[m]
        c = child_codes[i]
        if c >= 0:
            n_opt = same_off[c + 1] - same_off[c]
            if n_opt > 0:
                child_codes[i] = same[same_off[c] + _int(uni, cur, n_opt)]
                changed = True
            continue
        t = _node_type(c, prim_ret, var_type, const_type)
        has_var = t == var_type and n_features > 0
        has_const = t == const_type
        k = _count_consts(child_codes, _ZERO, i)
        if has_const and (not has_var or _rand(uni, cur) < p_const):
            value = lo + (hi - lo) * _rand(uni, cur)
            if c == -1:
                child_consts[k] = value
            else:
                child_codes[i] = -1
                for q in range(nc, k, -1):
                    child_consts[q] = child_consts[q - 1]
                child_consts[k] = value
                nc += 1
            changed = True
        elif has_var:
            new = -_int(uni, cur, n_features) - 2
            if c == -1:
                for q in range(k, nc - 1):
                    child_consts[q] = child_consts[q + 1]
                nc -= 1
            changed = changed or new != c
            child_codes[i] = new
    if not changed:
        return -1, 0
    return _check(a_n, nc, child_codes, tables, iparams, sc)


@njit(**_HOT)
def _hoist(a_codes, a_consts, a_n, uni, cur, tables, iparams, sc, child_codes, child_consts):
    prim_arity, prim_ret = tables[0], tables[1]
    var_type, const_type = iparams[0], iparams[1]
    a_ends, a_depths, _, _, open_idx, open_left, cand = sc
    _layout(a_codes, a_n, prim_arity, a_ends, a_depths, open_idx, open_left)
    n_int = np.int64(0)  # see _ZERO
    for k in range(a_n):
        if a_codes[k] >= 0:
            cand[n_int] = k
            n_int += 1
    if n_int == 0:
        return -1, 0
    i = cand[_int(uni, cur, n_int)]
    t = _node_type(a_codes[i], prim_ret, var_type, const_type)
    n_inner = np.int64(0)  # see _ZERO
    for j in range(i + 1, a_ends[i]):
        if _node_type(a_codes[j], prim_ret, var_type, const_type) == t:
            cand[n_inner] = j
            n_inner += 1
    if n_inner == 0:
        return -1, 0
    j = cand[_int(uni, cur, n_inner)]
    jc = _count_consts(a_codes, _ZERO, j)
    nc_sub = _count_consts(a_codes, j, a_ends[j])
    n, nc = _splice(a_codes, a_consts, a_n, i, a_ends[i], a_codes[j:a_ends[j]],
                    a_consts[jc:jc + nc_sub], a_ends[j] - j, nc_sub, child_codes, child_consts)
    return _check(n, nc, child_codes, tables, iparams, sc)


@njit(**_HOT)
def _shrink(a_codes, a_consts, a_n, uni, cur, tables, iparams, sc, child_codes, child_consts):
    prim_arity, prim_ret, prim_args = tables[0], tables[1], tables[2]
    a_ends, a_depths, kids, _, open_idx, open_left, cand = sc
    _layout(a_codes, a_n, prim_arity, a_ends, a_depths, open_idx, open_left)
    n_int = np.int64(0)  # see _ZERO
    for k in range(a_n):
        if a_codes[k] >= 0:
            cand[n_int] = k
            n_int += 1
    while n_int > 0:
        pos = _int(uni, cur, n_int)
        i = cand[pos]
        for q in range(pos, n_int - 1):  # list.pop(pos)
            cand[q] = cand[q + 1]
        n_int -= 1
        c = a_codes[i]
        n_match = np.int64(0)  # see _ZERO
        first_match = -1
        j = i + 1
        for arg in range(prim_arity[c]):
            if prim_args[c, arg] == prim_ret[c]:
                kids[n_match] = j
                n_match += 1
            j = a_ends[j]
        if n_match > 0:
            first_match = kids[_int(uni, cur, n_match)]
            jc = _count_consts(a_codes, _ZERO, first_match)
            end = a_ends[first_match]
            nc_sub = _count_consts(a_codes, first_match, end)
            n, nc = _splice(a_codes, a_consts, a_n, i, a_ends[i], a_codes[first_match:end],
                            a_consts[jc:jc + nc_sub], end - first_match, nc_sub,
                            child_codes, child_consts)
            return _check(n, nc, child_codes, tables, iparams, sc)
    return -1, 0


@njit(**_HOT)
def _constant(a_codes, a_consts, a_n, uni, cur, scale, mask, child_codes, child_consts):
    n = _count_consts(a_codes, _ZERO, a_n)
    if n == 0:
        return -1, 0
    any_set = False
    for k in range(n):
        mask[k] = _rand(uni, cur) < 0.5
        any_set = any_set or mask[k]
    if not any_set:
        mask[_int(uni, cur, n)] = True
    for k in range(n):
        noise = (0.0 + scale * _normal(uni, cur)) * max(1.0, abs(a_consts[k]))
        v = a_consts[k] + noise if mask[k] else a_consts[k]
        if not np.isfinite(v):
            return -1, 0
        child_consts[k] = v
    for k in range(a_n):
        child_codes[k] = a_codes[k]
    return a_n, n


# ---------------------------------------------------------------------- the batch


@njit(inline="always", **_JIT)
def _breed_range(k0, k1, at, c_at, pop_codes, pop_off, pop_consts, pop_coff, ops,
                 first, second, draws, tables, iparams, fparams, cap, out_codes, out_consts,
                 out_off, out_coff, out_op):
    """Children k0..k1-1, written end to end from out_codes[at] / out_consts[c_at];
    out_off[k + 1] / out_coff[k + 1] get where child k ends (out_off[k0] is not read).
    Inlined by Numba into its two callers: as a function of its own, LLVM optimised the
    loop twice, which cost 0.8 to 1.4 s of a first run's compile."""
    scratch_n = cap + 1
    sc = (np.empty(scratch_n, np.int64), np.empty(scratch_n, np.int64),
          np.empty(scratch_n, np.int64), np.empty(scratch_n, np.int64),
          np.empty(scratch_n, np.int64), np.empty(scratch_n, np.int64),
          np.empty(scratch_n, np.int64))
    grow_n = iparams[6]
    grow_sc = (np.empty(grow_n, np.int64), np.empty(grow_n, np.float64),
               np.empty(grow_n, np.int64), np.empty(grow_n, np.int64),
               np.empty(grow_n, np.int64), np.empty(grow_n, np.int64))
    child_codes = np.empty(cap + grow_n, np.int64)
    child_consts = np.empty(cap + grow_n, np.float64)
    chosen = np.empty(scratch_n, np.int64)
    mask = np.empty(scratch_n, np.bool_)
    cur = np.zeros(1, np.int64)
    uni = np.empty(2, np.uint64)  # child k's (first counter state, period)
    uni[1] = draws[1]
    for k in range(k0, k1):
        uni[0] = draws[0] + ((np.uint64(k) << np.uint64(32)) + np.uint64(1)) * _GOLDEN
        cur[0] = 0
        pa, pb = first[k], second[k]
        a_codes = pop_codes[pop_off[pa]:pop_off[pa + 1]]
        a_consts = pop_consts[pop_coff[pa]:pop_coff[pa + 1]]
        a_n = a_codes.shape[0]
        op = ops[k]
        n, nc = -1, 0
        for _ in range(2):  # the operator, then the subtree-mutation fallback
            if op == CROSSOVER:
                b_codes = pop_codes[pop_off[pb]:pop_off[pb + 1]]
                b_consts = pop_consts[pop_coff[pb]:pop_coff[pb + 1]]
                n, nc = _crossover(a_codes, a_consts, a_n, b_codes, b_consts, b_codes.shape[0],
                                   uni, cur, tables, iparams, sc, child_codes, child_consts)
            elif op == SUBTREE:
                n, nc = _subtree(a_codes, a_consts, a_n, uni, cur, tables, iparams, fparams,
                                 sc, grow_sc, child_codes, child_consts)
            elif op == POINT:
                n, nc = _point(a_codes, a_consts, a_n, uni, cur, tables, iparams, fparams,
                               chosen, sc, child_codes, child_consts)
            elif op == HOIST:
                n, nc = _hoist(a_codes, a_consts, a_n, uni, cur, tables, iparams, sc,
                               child_codes, child_consts)
            elif op == SHRINK:
                n, nc = _shrink(a_codes, a_consts, a_n, uni, cur, tables, iparams, sc,
                                child_codes, child_consts)
            else:
                n, nc = _constant(a_codes, a_consts, a_n, uni, cur, fparams[3], mask,
                                  child_codes, child_consts)
            if n >= 0:
                break
            op = SUBTREE  # the fallback
        if n < 0 or n > cap:
            op = COPY
            n = a_n
            nc = a_consts.shape[0]
            for q in range(n):
                child_codes[q] = a_codes[q]
            for q in range(nc):
                child_consts[q] = a_consts[q]
        for q in range(n):
            out_codes[at + q] = child_codes[q]
        for q in range(nc):
            out_consts[c_at + q] = child_consts[q]
        at += n
        c_at += nc
        out_off[k + 1] = at
        out_coff[k + 1] = c_at
        out_op[k] = op


@njit(**_JIT)
def breed(pop_codes, pop_off, pop_consts, pop_coff, ops, first, second, draws, tables,
          iparams, fparams, cap, out_codes, out_consts, out_off, out_coff, out_op):
    """Make child k (operator ops[k] on parents first[k], second[k]) and append it to
    out_codes / out_consts (flat, room for cap nodes per child; out_off / out_coff get
    the offsets); draws = (seed, period) of the children's uniforms (uint64,
    operators/draws.py). cap >= max_size and >= every parent's size."""
    out_off[0] = 0
    out_coff[0] = 0
    _breed_range(0, ops.shape[0], 0, 0, pop_codes, pop_off, pop_consts, pop_coff, ops, first,
                 second, draws, tables, iparams, fparams, cap, out_codes, out_consts, out_off,
                 out_coff, out_op)


@njit(**_JIT)
def _breed_task(counter, chunk, pop_codes, pop_off, pop_consts, pop_coff, ops, first,
                second, draws, tables, iparams, fparams, cap, out_codes, out_consts,
                out_off, out_coff, out_op):
    """One thread's share: take chunks of children until none are left; chunk k0..k1
    is written from position k0 * cap (its own room), to be moved up by _close_gaps."""
    n = ops.shape[0]
    k0 = _fetch_add(counter, chunk)
    while k0 < n:
        _breed_range(k0, min(k0 + chunk, n), k0 * cap, k0 * cap, pop_codes, pop_off,
                     pop_consts, pop_coff, ops, first, second, draws, tables, iparams,
                     fparams, cap, out_codes, out_consts, out_off, out_coff, out_op)
        k0 = _fetch_add(counter, chunk)


@njit(**_HOT)
def _close_gaps(n, chunk, cap, out_codes, out_consts, out_off, out_coff):
    """Move each chunk's children (written from k0 * cap) up behind the previous chunk's
    and shift their offsets: the layout `breed` writes directly."""
    at, c_at = 0, 0
    for k0 in range(0, n, chunk):
        k1 = min(k0 + chunk, n)
        start = k0 * cap
        end, c_end = out_off[k1], out_coff[k1]
        for q in range(end - start):
            out_codes[at + q] = out_codes[start + q]
        for q in range(c_end - start):
            out_consts[c_at + q] = out_consts[start + q]
        for k in range(k0 + 1, k1 + 1):
            out_off[k] += at - start
            out_coff[k] += c_at - start
        at, c_at = out_off[k1], out_coff[k1]


@njit(parallel=True, **_JIT)
def breed_parallel(pop_codes, pop_off, pop_consts, pop_coff, ops, first, second, draws,
                   tables, iparams, fparams, cap, out_codes, out_consts, out_off, out_coff,
                   out_op, workers, chunk):
    """As `breed`, the children shared among `workers` threads in chunks; the same
    output, since child k's draws depend on k alone."""
    out_off[0] = 0
    out_coff[0] = 0
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(workers):
        _breed_task(counter, chunk, pop_codes, pop_off, pop_consts, pop_coff, ops, first,
                    second, draws, tables, iparams, fparams, cap, out_codes, out_consts,
                    out_off, out_coff, out_op)
    _close_gaps(ops.shape[0], chunk, cap, out_codes, out_consts, out_off, out_coff)
