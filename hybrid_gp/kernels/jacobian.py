"""Forward-mode derivatives of program outputs with respect to their constants.

The walk is the interpreter's (reverse prefix, a stack of row blocks), with one addition:
beside each value slot, the derivative rows of the constants inside that slot's subtree.
Subtrees on the stack are disjoint and each holds a contiguous run of constants, so a
single array D (n_consts, block) holds every derivative row: row j belongs to the slot
whose range [lo, hi) contains j. A node costs (constants below it) x rows, not
(all constants) x rows.

Conventions (docs/fitting.md): each op's local derivative follows docs/semantics.md;
where a guard is active (div or inv by |b| <= EPS, log or pow of |a| <= EPS) or at a
kink (abs and sqrt at 0) it is 0; min/max/if pass the derivative of the argument they return;
comparisons and logic ops have derivative 0. Chaining uses a strong zero: a local
derivative of exactly 0 gives 0 even when the inner derivative is inf or NaN.

The Levenberg–Marquardt kernel below fits the constants of many programs in one call:
each pass over the rows accumulates JᵀJ and Jᵀr block by block, so the Jacobian is
never stored. The numpy twin of the Jacobian kernel sits at the end of this module;
the LM kernel's twin is in tests/test_fitting.py.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import opcodes as oc
from .vecmath import math_block, pow_block, wide_vectors

_JIT = dict(cache=True, error_model="numpy", nogil=True)
_HOT = dict(_JIT, _nrt=False)  # per-node code never allocates: no reference counting

ADD, SUB, MUL, DIV, NEG, ABS = oc.ADD, oc.SUB, oc.MUL, oc.DIV, oc.NEG, oc.ABS
SQUARE, SQRT, EXP, LOG, SIN, COS, TANH, POW = (
    oc.SQUARE, oc.SQRT, oc.EXP, oc.LOG, oc.SIN, oc.COS, oc.TANH, oc.POW,
)
MIN, MAX, CUBE, INV = oc.MIN, oc.MAX, oc.CUBE, oc.INV
AND, OR, NOT, NAND, NOR, XOR, IF, GT, LT = (
    oc.AND, oc.OR, oc.NOT, oc.NAND, oc.NOR, oc.XOR, oc.IF, oc.GT, oc.LT,
)
EPS = oc.EPS
# Numba types a Python int constant passed to another jitted function as a literal and
# compiles that function once more for it. These numpy scalars have the types of the
# run-time values of the other calls (opcodes are read from int32 codes), so every
# call shares one compiled function.
_LOG, _SIN, _COS = np.int32(LOG), np.int32(SIN), np.int32(COS)
_ZERO = np.int64(0)  # an offset of 0 (jac_block's first constant, pow_block's rows)


@njit(**_HOT)
def _sign(v):
    """1, -1, 0 (at 0) or NaN (at NaN)."""
    if v > 0:
        return 1.0
    if v < 0:
        return -1.0
    return 0.0 if v == 0 else v


@njit(**_HOT)
def _copy(x, y, nb):
    wide_vectors()
    for r in range(nb):
        y[r] = x[r]


@njit(**_HOT)
def _scale(y, s, nb):
    """y *= s (s = 0 writes zeros, whatever y held)."""
    wide_vectors()
    if s == 0:
        for r in range(nb):
            y[r] = 0.0
    else:
        for r in range(nb):
            y[r] *= s


@njit(**_HOT)
def _local1(op, a, d, nb, want, where, value):
    """a[r] = op(a[r]) in place; when `want`, d[r] = d op / d a at the old a[r].
    exp, log, sin, cos and tanh go through vecmath's block loops, as in the
    interpreter (where, value: its scratch)."""
    wide_vectors()
    if op == NEG:
        for r in range(nb):
            a[r] = -a[r]
            d[r] = -1.0
    elif op == ABS:
        for r in range(nb):
            v = a[r]
            a[r] = abs(v)
            d[r] = _sign(v)
    elif op == SQUARE:
        for r in range(nb):
            v = a[r]
            a[r] = v * v
            d[r] = 2.0 * v
    elif op == CUBE:
        for r in range(nb):
            v = a[r]
            a[r] = v * v * v
            d[r] = 3.0 * v * v
    elif op == INV:
        for r in range(nb):
            v = a[r]
            w = 1.0 if abs(v) <= EPS else 1.0 / v
            a[r] = w
            d[r] = 0.0 if abs(v) <= EPS else -w * w
    elif op == SQRT:
        for r in range(nb):
            v = a[r]
            w = np.sqrt(abs(v))
            a[r] = w
            d[r] = 0.0 if v == 0 else _sign(v) * 0.5 / w
    elif op == LOG:
        if want:
            for r in range(nb):
                v = a[r]
                d[r] = 0.0 if abs(v) <= EPS else 1.0 / v
        math_block(_LOG, a, nb, where, value)
    elif op in (SIN, COS):
        if want:  # d = cos(a) for sin, -sin(a) for cos
            _copy(a, d, nb)
            math_block(_COS if op == SIN else _SIN, d, nb, where, value)
            if op == COS:
                for r in range(nb):
                    d[r] = -d[r]
        math_block(op, a, nb, where, value)
    elif op in (EXP, TANH):
        math_block(op, a, nb, where, value)
        if want:
            for r in range(nb):
                w = a[r]
                d[r] = w if op == EXP else 1.0 - w * w
    else:  # NOT
        for r in range(nb):
            a[r] = 0.0 if a[r] != 0 else 1.0
            d[r] = 0.0


@njit(**_HOT)
def _local2(op, a, b, da, db, nb, want, where, value):
    """b[r] = op(a[r], b[r]); when `want`, da[r], db[r] the partial derivatives at the
    old values. pow goes through vecmath's pow_block, as in the interpreter."""
    wide_vectors()
    if op == ADD:
        for r in range(nb):
            b[r] = a[r] + b[r]
    elif op == SUB:
        for r in range(nb):
            b[r] = a[r] - b[r]
    elif op == MUL:
        if want:
            for r in range(nb):
                da[r] = b[r]
                db[r] = a[r]
        for r in range(nb):
            b[r] = a[r] * b[r]
    elif op == DIV:
        for r in range(nb):
            x, y = a[r], b[r]
            guard = abs(y) <= EPS
            v = 1.0 if guard else x / y
            b[r] = v
            da[r] = 0.0 if guard else 1.0 / y
            db[r] = 0.0 if guard else -v / y
    elif op == POW:  # guarded like log where |a| <= EPS: both partials 0 there
        if want:
            _copy(b, da, nb)  # the exponent, before pow_block overwrites it
            _copy(a, db, nb)
            math_block(_LOG, db, nb, where, value)  # log|a|, 0 where |a| <= EPS
        pow_block(a, _ZERO, b, nb, where, value)
        if want:
            for r in range(nb):
                x, v = a[r], b[r]
                flat = abs(x) <= EPS
                da[r] = 0.0 if flat else da[r] * v / x
                db[r] = 0.0 if flat else v * db[r]
    elif op in (MIN, MAX):
        for r in range(nb):
            x, y = a[r], b[r]
            first = (x < y if op == MIN else x > y) or x != x
            b[r] = x if first else y
            da[r] = 1.0 if first else 0.0
            db[r] = 0.0 if first else 1.0
    else:  # logic and comparisons: flat, derivative 0
        for r in range(nb):
            x, y = a[r], b[r]
            if op == AND:
                v = 1.0 if (x != 0 and y != 0) else 0.0
            elif op == OR:
                v = 1.0 if (x != 0 or y != 0) else 0.0
            elif op == NAND:
                v = 0.0 if (x != 0 and y != 0) else 1.0
            elif op == NOR:
                v = 0.0 if (x != 0 or y != 0) else 1.0
            elif op == XOR:
                v = 1.0 if ((x != 0) != (y != 0)) else 0.0
            elif op == GT:
                v = 1.0 if x > y else 0.0
            else:  # LT
                v = 1.0 if x < y else 0.0
            b[r] = v
            da[r] = 0.0
            db[r] = 0.0


@njit(**_HOT)
def _chain(D, lo, hi, d, nb):
    """D[j] *= d for the constants lo..hi of one slot (strong zero: d == 0 gives 0)."""
    wide_vectors()
    for j in range(lo, hi):
        row = D[j]
        for r in range(nb):
            g = d[r]
            row[r] = 0.0 if g == 0 else row[r] * g


@njit(**_JIT)
def jac_workspace(depth, block, n_c):
    """Scratch for jac_block: (stack (depth, block), D (n_c, block), two rows of local
    derivatives, the constant range [lo, hi) of each slot, and vecmath's scratch)."""
    return (np.empty((depth, block)), np.empty((max(n_c, 1), block)),
            np.empty((2, block)), np.empty(depth, dtype=np.int64),
            np.empty(depth, dtype=np.int64), np.empty(block, dtype=np.int64),
            np.empty(block))


@njit(**_HOT)
def jac_block(codes, start, end, consts, c0, n_c, arity, XT, r0, nb, work):
    """Evaluate codes[start:end], whose constants are consts[c0:c0 + n_c], on rows
    r0..r0+nb: the value is left in stack[0] and d value / d consts[c0 + j] in D[j]
    (work from `jac_workspace`, float64)."""
    wide_vectors()
    stack, D, scratch, lo, hi, where, value = work
    sp = 0
    kc = n_c
    da, db = scratch[0], scratch[1]
    for k in range(end - 1, start - 1, -1):
        c = codes[k]
        if c == -1:
            kc -= 1
            v = consts[c0 + kc]
            top, row = stack[sp], D[kc]
            for r in range(nb):
                top[r] = v
                row[r] = 1.0
            lo[sp], hi[sp] = kc, kc + 1
            sp += 1
        elif c < -1:
            col, top = XT[-c - 2][r0:r0 + nb], stack[sp]  # sliced first: vectorises
            for r in range(nb):
                top[r] = col[r]
            lo[sp], hi[sp] = kc, kc
            sp += 1
        else:
            n_args = arity[c]
            if n_args == 1:
                s = sp - 1
                want = lo[s] < hi[s]
                _local1(c, stack[s], da, nb, want, where, value)
                if want:
                    _chain(D, lo[s], hi[s], da, nb)
            elif n_args == 2:
                s, t = sp - 1, sp - 2
                want = lo[s] < hi[t]  # constants below either argument
                _local2(c, stack[s], stack[t], da, db, nb, want, where, value)
                if want and c == SUB:
                    for j in range(lo[t], hi[t]):
                        _scale(D[j], -1.0, nb)
                elif want and c != ADD:
                    _chain(D, lo[s], hi[s], da, nb)
                    _chain(D, lo[t], hi[t], db, nb)
                lo[t] = lo[s]
                sp -= 1
            else:  # IF, the only ternary: if(cond, yes, no)
                cond, yes, no = stack[sp - 1], stack[sp - 2], stack[sp - 3]
                for r in range(nb):
                    pick = cond[r] != 0
                    no[r] = yes[r] if pick else no[r]
                    da[r] = 1.0 if pick else 0.0
                    db[r] = 0.0 if pick else 1.0
                for j in range(lo[sp - 1], hi[sp - 1]):
                    _scale(D[j], 0.0, nb)
                _chain(D, lo[sp - 2], hi[sp - 2], da, nb)
                _chain(D, lo[sp - 3], hi[sp - 3], db, nb)
                lo[sp - 3] = lo[sp - 1]
                sp -= 2


@njit(**_JIT)
def jacobian_batch(batch, XT, values, JT, block, depth):
    """Outputs (n_programs, n_rows) into `values` and the derivatives of program p with
    respect to its constants into JT[const_off[p]:const_off[p + 1]] (n_consts, n_rows)."""
    codes, code_off, consts, const_off, arity = batch
    n_rows = XT.shape[1]
    most = 1
    for p in range(values.shape[0]):
        most = max(most, const_off[p + 1] - const_off[p])
    work = jac_workspace(depth, block, most)
    stack, D = work[0], work[1]
    for p in range(values.shape[0]):
        c0, n_c = const_off[p], const_off[p + 1] - const_off[p]
        for r0 in range(0, n_rows, block):
            nb = min(block, n_rows - r0)
            jac_block(codes, code_off[p], code_off[p + 1], consts, c0, n_c, arity, XT, r0,
                      nb, work)
            _copy(stack[0], values[p, r0:r0 + nb], nb)  # loops, not slice assignments
            for j in range(n_c):  # (see lm_program)
                _copy(D[j], JT[c0 + j, r0:r0 + nb], nb)


# ---------------------------------------------------------------------- constant-free parts


@njit(**_JIT)
def _subtree_spans(codes, start, end, arity, stop, has_const):
    """For each position k of codes[start:end] (prefix order): stop[k], one past the last
    code of the subtree rooted there, and has_const[k], whether that subtree holds a
    constant."""
    for k in range(end - start - 1, -1, -1):
        c = codes[start + k]
        if c < 0:
            stop[k] = k + 1
            has_const[k] = c == -1
        else:
            e, h = k + 1, False
            for _ in range(arity[c]):
                h = h or has_const[e]
                e = stop[e]
            stop[k] = e
            has_const[k] = h


@njit(**_JIT)
def fold_constant_free(codes, start, end, consts, arity, XT, block, work):
    """codes[start:end] with each largest subtree that holds an operation but no constant
    replaced by a variable code, and the matrix those codes read: the rows of XT the
    program reads, then each such subtree's outputs. Returns (codes, matrix, number of
    subtrees replaced).

    Levenberg–Marquardt walks a program once per pass with new constants; its parts
    without constants give the same outputs every time, so they are computed once here,
    by jac_block itself on the same row blocks: the folded program's outputs and
    derivatives are the original's bit for bit. `work` is a jac_workspace deep enough
    for the whole program; `consts` is not read (the subtrees hold none)."""
    n = end - start
    stop = np.empty(n, dtype=np.int64)
    has_const = np.empty(n, dtype=np.bool_)
    _subtree_spans(codes, start, end, arity, stop, has_const)
    row_of = np.full(XT.shape[0], -1, dtype=np.int64)
    n_used, n_folded, n_out, k = 0, 0, 0, 0
    while k < n:
        c = codes[start + k]
        if c >= 0 and not has_const[k]:
            n_folded += 1
            k = stop[k]
        else:
            if c < -1 and row_of[-c - 2] < 0:
                row_of[-c - 2] = n_used
                n_used += 1
            k += 1
        n_out += 1
    out = codes[start:start + n_out].copy()
    n_rows = XT.shape[1]
    M = np.empty((n_used + n_folded, n_rows))
    for v in range(XT.shape[0]):
        if row_of[v] >= 0:
            _copy(XT[v], M[row_of[v]], n_rows)
    slot, i, k = n_used, 0, 0
    while k < n:
        c = codes[start + k]
        if c >= 0 and not has_const[k]:
            for r0 in range(0, n_rows, block):
                nb = min(block, n_rows - r0)
                jac_block(codes, start + k, start + stop[k], consts, _ZERO, _ZERO, arity,
                          XT, r0, nb, work)
                _copy(work[0][0], M[slot, r0:r0 + nb], nb)
            out[i] = -slot - 2
            slot += 1
            k = stop[k]
        else:
            out[i] = -row_of[-c - 2] - 2 if c < -1 else c
            k += 1
        i += 1
    return out, M, n_folded


# ---------------------------------------------------------------------- Levenberg–Marquardt


@njit(**_JIT)
def _normal_equations(codes, start, end, params, n_c, scale, arity, XT, y, block,
                      work, A, g, want):
    """SSE of r = a + b * f(x; c) - y at params = (c, [a, b]) and, when `want`,
    A = JᵀJ and g = Jᵀr. Without `scale`, a = 0 and b = 1 and there is no (a, b).
    Returns inf as soon as the SSE is not finite."""
    stack, D, scratch = work[0], work[1], work[2]
    k = n_c + 2 if scale else n_c
    sa = params[n_c] if scale else 0.0
    sb = params[n_c + 1] if scale else 1.0
    if want:
        A[:k, :k] = 0.0
        g[:k] = 0.0
    sse = 0.0
    n_rows = XT.shape[1]
    for r0 in range(0, n_rows, block):
        nb = min(block, n_rows - r0)
        jac_block(codes, start, end, params, _ZERO, n_c, arity, XT, r0, nb, work)
        f, res = stack[0], scratch[0]
        for r in range(nb):
            e = (sa + sb * f[r]) - y[r0 + r]
            res[r] = e
            sse += e * e
        if not np.isfinite(sse):
            return np.inf
        if not want:
            continue
        if scale:
            for j in range(n_c):
                _scale(D[j], sb, nb)
        for j in range(n_c):
            Dj = D[j]
            acc = 0.0
            for r in range(nb):
                acc += Dj[r] * res[r]
            g[j] += acc
            for m in range(j, n_c):
                Dm = D[m]
                acc = 0.0
                for r in range(nb):
                    acc += Dj[r] * Dm[r]
                A[j, m] += acc
        if scale:
            ia, ib = n_c, n_c + 1
            for j in range(n_c):
                Dj = D[j]
                s1, sf = 0.0, 0.0
                for r in range(nb):
                    s1 += Dj[r]
                    sf += Dj[r] * f[r]
                A[j, ia] += s1
                A[j, ib] += sf
            s1, sf, sff, sr, sfr = 0.0, 0.0, 0.0, 0.0, 0.0
            for r in range(nb):
                s1 += 1.0
                sf += f[r]
                sff += f[r] * f[r]
                sr += res[r]
                sfr += f[r] * res[r]
            A[ia, ia] += s1
            A[ia, ib] += sf
            A[ib, ib] += sff
            g[ia] += sr
            g[ib] += sfr
    if want:
        for j in range(k):
            for m in range(j):
                A[j, m] = A[m, j]
    return sse


@njit(**_JIT)
def _solve_damped(A, g, lam, M, step, k):
    """step = -(A + lam * diag(max(A_ii, floor)))⁻¹ g by Cholesky; False if that fails."""
    top = 0.0
    for i in range(k):
        top = max(top, A[i, i])
    floor = 1e-12 * top
    for i in range(k):
        for j in range(k):
            M[i, j] = A[i, j]
        M[i, i] += lam * max(A[i, i], floor)
    for j in range(k):  # M = L Lᵀ, L in the lower triangle
        s = M[j, j]
        for m in range(j):
            s -= M[j, m] * M[j, m]
        if not s > 0 or not np.isfinite(s):
            return False
        M[j, j] = np.sqrt(s)
        for i in range(j + 1, k):
            t = M[i, j]
            for m in range(j):
                t -= M[i, m] * M[j, m]
            M[i, j] = t / M[j, j]
    for i in range(k):  # L z = -g
        t = -g[i]
        for m in range(i):
            t -= M[i, m] * step[m]
        step[i] = t / M[i, i]
    for i in range(k - 1, -1, -1):  # Lᵀ step = z
        t = step[i]
        for m in range(i + 1, k):
            t -= M[m, i] * step[m]
        step[i] = t / M[i, i]
    ok = True
    for i in range(k):
        ok = ok and np.isfinite(step[i])
    return ok


LM_LAMBDA0 = 1e-3  # initial damping, relative to diag(JᵀJ)
LM_LAMBDA_MAX = 1e16  # give up when a step fails this damped
LM_FTOL = 1e-12  # stop when one accepted step lowers the SSE by less than this share


@njit(**_JIT)
def _all_finite(A, g, k):
    for i in range(k):
        if not np.isfinite(g[i]):
            return False
        for j in range(k):
            if not np.isfinite(A[i, j]):
                return False
    return True


@njit(**_JIT)
def lm_program(codes, start, end, params, n_c, scale, arity, XT, y, max_iter, block,
               depth, fold):
    """Levenberg–Marquardt on params = (c, [a, b]) in place; at most max_iter steps (each
    one pass over the rows, accepted or not). Returns (SSE at the start, SSE at the end,
    passes over the rows). Without `scale` the start is the program as it is; with it,
    the SSE at the start is that of the program alone (a = 0, b = 1, one extra pass).
    With `fold`, the parts without constants are computed once (fold_constant_free);
    the result is the same to the bit."""
    work = jac_workspace(depth, block, n_c)
    steps_codes, steps_start, steps_end, steps_XT = codes, start, end, XT
    if fold and (scale or n_c > 0):
        folded, M, n_folded = fold_constant_free(codes, start, end, params, arity, XT,
                                                 block, work)
        if n_folded > 0:
            steps_codes, steps_start, steps_end, steps_XT = folded, _ZERO, folded.shape[0], M
    return _lm_steps(steps_codes, steps_start, steps_end, params, n_c, scale, arity,
                     steps_XT, y, max_iter, block, work)


@njit(**_JIT)
def _lm_steps(codes, start, end, params, n_c, scale, arity, XT, y, max_iter, block, work):
    """lm_program's steps on `work` (a jac_workspace deep enough for codes)."""
    k = n_c + 2 if scale else n_c
    A, A2 = np.empty((k, k)), np.empty((k, k))
    g, g2 = np.empty(k), np.empty(k)
    M, step, trial = np.empty((k, k)), np.empty(k), np.empty(k)
    passes = 0
    sse0 = np.inf
    # Flags go to _normal_equations as run-time bools (`passes > 0`, `scale`), never as
    # the constants True/False: Numba would compile it once per constant pattern.
    # Copies are loops: a slice assignment compiles Numba's shape-mismatch error
    # message (string formatting, about 2 s of a first call).
    if scale:
        for i in range(n_c):
            trial[i] = params[i]
        trial[n_c], trial[n_c + 1] = 0.0, 1.0
        sse0 = _normal_equations(codes, start, end, trial, n_c, scale, arity, XT, y, block,
                                 work, A, g, passes > 0)
        passes += 1
    sse = _normal_equations(codes, start, end, params, n_c, scale, arity, XT, y, block,
                            work, A, g, passes >= 0)
    passes += 1
    if not scale:
        sse0 = sse
    if k == 0 or not np.isfinite(sse) or not _all_finite(A, g, k):
        return sse0, sse, passes
    yy = 0.0
    for r in range(y.shape[0]):
        yy += y[r] * y[r]
    lam = LM_LAMBDA0
    for _ in range(max_iter):
        if sse <= 1e-28 * yy:
            break
        if not _solve_damped(A, g, lam, M, step, k):
            lam *= 10.0
            if lam > LM_LAMBDA_MAX:
                break
            continue
        for i in range(k):
            trial[i] = params[i] + step[i]
        new = _normal_equations(codes, start, end, trial, n_c, scale, arity, XT, y, block,
                                work, A2, g2, passes >= 0)
        passes += 1
        if new < sse and _all_finite(A2, g2, k):
            for i in range(k):
                params[i] = trial[i]
            A, A2 = A2, A
            g, g2 = g2, g
            gain = sse - new
            sse = new
            lam = max(lam * 0.1, 1e-15)
            if gain <= LM_FTOL * (sse + gain):
                break
        else:
            lam *= 10.0
            if lam > LM_LAMBDA_MAX:
                break
    return sse0, sse, passes


@njit(**_JIT)
def _lm_one(i, batch, XT, y, which, scale, params, param_off, out, max_iter, block,
            depth, fold):
    codes, code_off, _, const_off, arity = batch
    p = which[i]
    n_c = const_off[p + 1] - const_off[p]
    seg = params[param_off[i]:param_off[i + 1]]
    sse0, sse, passes = lm_program(codes, code_off[p], code_off[p + 1], seg, n_c,
                                   scale[i], arity, XT, y, max_iter, block, depth, fold)
    n = XT.shape[1]
    out[i, 0], out[i, 1], out[i, 2] = sse0 / n, sse / n, passes


@njit(**_JIT)
def lm_batch_serial(batch, XT, y, which, scale, params, param_off, out, max_iter, block,
                    depth, fold):
    """Fit programs which[i] of a batch: params[param_off[i]:param_off[i + 1]] holds their
    constants (then a, b when scale[i]) and is updated in place; out[i] = (MSE before,
    MSE after, passes over the rows). `fold`: see lm_program."""
    for i in range(which.shape[0]):
        _lm_one(i, batch, XT, y, which, scale, params, param_off, out, max_iter, block,
                depth, fold)


@njit(parallel=True, **_JIT)
def lm_batch_parallel(batch, XT, y, which, scale, params, param_off, out, max_iter, block,
                      depth, fold):
    for i in prange(which.shape[0]):
        _lm_one(i, batch, XT, y, which, scale, params, param_off, out, max_iter, block,
                depth, fold)
