"""Numba stack interpreter over a compiled batch of programs.

A batch is flat arrays (see hybrid_gp.compiler): node codes in prefix order with
per-program offsets, and constants with per-program offsets. A program is evaluated by
walking its prefix codes from the end with a stack of row blocks: each node runs one
tight loop over a block of rows, so the loops vectorise and the stack stays in cache.
Kernel node codes: c >= 0 is an opcode (kernels/opcodes.py), -1 a constant, -k-2
variable k. Semantics: docs/semantics.md; numpy twin: kernels/reference.py.

Slot s of the stack lives in row s of a (depth, block) array, except that a variable
is not copied: its slot refers to the column XT[k] until an operation needs a row.
An operation writes its result in place into the row of its last argument (copying a
variable there first); a binary operation reads its first argument from its row or
straight from XT. In place on one array is deliberate: LLVM does not vectorise
y[r] = f(x[r]) when x and y are separate arguments that may be the same memory. The
per-node code never allocates and is compiled without reference counting (_nrt=False),
which otherwise cost more than the work. docs/kernels.md has the measurements.

Batches run one program (or one row range of a program) per work item; the parallel
kernels hand items to threads dynamically from an atomic counter, so uneven program
sizes do not leave a thread idle. Results do not depend on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.core.extending import intrinsic

from . import opcodes as oc
from .vecmath import math_block, pow_block, wide_vectors

_JIT = dict(cache=True, error_model="numpy", nogil=True)
_INLINE = dict(_JIT, inline="always")
_HOT = dict(_JIT, _nrt=False)  # per-node code: no reference counting (never allocates)

ADD, SUB, MUL, DIV, NEG, ABS = oc.ADD, oc.SUB, oc.MUL, oc.DIV, oc.NEG, oc.ABS
SQUARE, SQRT, EXP, LOG, SIN, COS, TANH, POW = (
    oc.SQUARE, oc.SQRT, oc.EXP, oc.LOG, oc.SIN, oc.COS, oc.TANH, oc.POW,
)
MIN, MAX, CUBE, INV = oc.MIN, oc.MAX, oc.CUBE, oc.INV
AND, OR, NOT, NAND, NOR, XOR, IF, GT, LT = (
    oc.AND, oc.OR, oc.NOT, oc.NAND, oc.NOR, oc.XOR, oc.IF, oc.GT, oc.LT,
)
EPS = oc.EPS


@njit(**_JIT)
def stack_depth(codes, start, end, arity):
    """Deepest stack the reverse-prefix walk of codes[start:end] reaches."""
    sp = 0
    deepest = 0
    for k in range(end - 1, start - 1, -1):
        c = codes[k]
        if c < 0:
            sp += 1
        else:
            sp -= arity[c] - 1
        if sp > deepest:
            deepest = sp
    return deepest


@njit(**_JIT)
def batch_stack_depth(codes, code_off, arity):
    """Deepest stack over all programs of a batch (at least 1): the walk of
    `stack_depth` per program (numpy twin: reference.batch_stack_depth; this takes a
    tenth of its time, which was a sixth of compiling a batch)."""
    deepest = 1
    for p in range(code_off.shape[0] - 1):
        deepest = max(deepest, stack_depth(codes, code_off[p], code_off[p + 1], arity))
    return deepest


# ------------------------------------------------------------------ node loops
# All in place on a stack row y (one array: LLVM vectorises the loop); the first
# argument of a binary operation may be a row or an XT column (a, read at ao + r).


@njit(**_INLINE)
def _unary(op, y, nb, where, value, ext):
    """y = op(y) on y[:nb] (where, value: scratch for vecmath); ext: see eval_block."""
    wide_vectors()
    if op == NEG:
        for r in range(nb):
            y[r] = -y[r]
    elif op == ABS:
        for r in range(nb):
            y[r] = abs(y[r])
    elif op == SQUARE:
        for r in range(nb):
            y[r] = y[r] * y[r]
    elif op == SQRT:
        for r in range(nb):
            y[r] = np.sqrt(abs(y[r]))
    elif op in (EXP, LOG, SIN, COS, TANH):
        math_block(op, y, nb, where, value)
    elif ext is not None:
        _unary_extended(op, y, nb)


@njit(**_HOT)
def _unary_extended(op, y, nb):
    """CUBE, INV and NOT (compiled only for batches that use them)."""
    wide_vectors()
    if op == CUBE:
        for r in range(nb):
            y[r] = y[r] * y[r] * y[r]
    elif op == INV:
        for r in range(nb):
            v = y[r]
            y[r] = 1.0 if abs(v) <= EPS else 1.0 / v
    elif op == NOT:
        for r in range(nb):
            y[r] = 0.0 if y[r] != 0 else 1.0


@njit(**_INLINE)
def _binary(op, a, ao, y, nb, where, value, ext):
    """y[r] = op(a[ao + r], y[r]) for r < nb: the result replaces the second argument
    (ext: see eval_block).

    The first argument is sliced to x = a[ao:ao + nb] before the loops: indexing
    a[ao + r] in them kept LLVM from vectorising them (0.4 against 0.1 ns per element)."""
    wide_vectors()
    x = a[ao:ao + nb]
    if op == ADD:
        for r in range(nb):
            y[r] = x[r] + y[r]
    elif op == SUB:
        for r in range(nb):
            y[r] = x[r] - y[r]
    elif op == MUL:
        for r in range(nb):
            y[r] = x[r] * y[r]
    elif op == DIV:
        for r in range(nb):
            d = y[r]
            y[r] = 1.0 if abs(d) <= EPS else x[r] / d
    elif op == POW:
        pow_block(a, ao, y, nb, where, value)  # slices a itself
    elif ext is not None:
        _binary_extended(op, x, y, nb)


@njit(**_HOT)
def _binary_extended(op, x, y, nb):
    """MIN, MAX, the Boolean operations and comparisons on x and y[:nb] (compiled
    only for batches that use them)."""
    wide_vectors()
    if op == MIN:
        for r in range(nb):
            u, v = x[r], y[r]
            y[r] = u if (u < v or u != u) else v
    elif op == MAX:
        for r in range(nb):
            u, v = x[r], y[r]
            y[r] = u if (u > v or u != u) else v
    elif op == AND:
        for r in range(nb):
            y[r] = 1.0 if (x[r] != 0 and y[r] != 0) else 0.0
    elif op == OR:
        for r in range(nb):
            y[r] = 1.0 if (x[r] != 0 or y[r] != 0) else 0.0
    elif op == NAND:
        for r in range(nb):
            y[r] = 0.0 if (x[r] != 0 and y[r] != 0) else 1.0
    elif op == NOR:
        for r in range(nb):
            y[r] = 0.0 if (x[r] != 0 or y[r] != 0) else 1.0
    elif op == XOR:
        for r in range(nb):
            y[r] = 1.0 if ((x[r] != 0) != (y[r] != 0)) else 0.0
    elif op == GT:
        for r in range(nb):
            y[r] = 1.0 if x[r] > y[r] else 0.0
    elif op == LT:
        for r in range(nb):
            y[r] = 1.0 if x[r] < y[r] else 0.0


@njit(**_HOT)
def _select(c, co, t, to, y, nb):
    """y[r] = t[to + r] if c[co + r] != 0 else y[r] (the ternary IF, into its third
    argument); arguments sliced first, as in _binary."""
    wide_vectors()
    cond, yes = c[co:co + nb], t[to:to + nb]
    for r in range(nb):
        y[r] = yes[r] if cond[r] != 0 else y[r]


@njit(**_HOT)
def _copy(x, xo, y, nb):
    wide_vectors()
    src = x[xo:xo + nb]
    for r in range(nb):
        y[r] = src[r]


# ------------------------------------------------------------------ one block
@njit(**_HOT)
def eval_block(codes, start, end, consts, const_end, arity, XT, r0, nb, ws, ext):
    """Evaluate codes[start:end] on rows r0..r0+nb with the workspace ws.

    ext is None when the codes use only the arithmetic and transcendental opcodes
    (below oc.EXTENDED_FROM), True otherwise (CompiledBatch.kernel_ext). Numba drops the branches
    under `ext is not None` when compiling for a None argument, so the code of MIN,
    MAX, CUBE, INV, IF and the Boolean operations is compiled only for batches that use
    them: a first call of a regression batch compiles 1.7 s less (docs/kernels.md).

    ws = (stack, lazy, where, value, diff) as made by `workspace`. Returns k >= 0 when
    the program is the lone variable xk (its values are XT[k, r0:r0+nb], nothing was
    copied), else -1 with the result in stack[0, :nb].
    """
    wide_vectors()
    stack, lazy, where, value, _ = ws
    sp = 0
    kc = const_end
    for k in range(end - 1, start - 1, -1):
        c = codes[k]
        if c < -1:
            lazy[sp] = -c - 2
            sp += 1
        elif c == -1:
            kc -= 1
            v = consts[kc]
            top = stack[sp]
            for r in range(nb):
                top[r] = v
            lazy[sp] = -1
            sp += 1
        else:
            n_args = arity[c]
            last = sp - n_args  # the result goes into the row of the last argument
            if lazy[last] >= 0:
                _copy(XT[lazy[last]], r0, stack[last], nb)
                lazy[last] = -1
            if n_args == 1:
                _unary(c, stack[last], nb, where, value, ext)
            else:
                a = sp - 1
                first, fo = (stack[a], 0) if lazy[a] < 0 else (XT[lazy[a]], r0)
                if n_args == 2:
                    _binary(c, first, fo, stack[last], nb, where, value, ext)
                elif ext is not None:  # IF, the only ternary: if(cond, yes, no)
                    b = sp - 2
                    yes, yo = (stack[b], 0) if lazy[b] < 0 else (XT[lazy[b]], r0)
                    _select(first, fo, yes, yo, stack[last], nb)
            sp = last + 1
    return lazy[0]


@njit(**_INLINE)
def workspace(depth, block, dtype):
    """Scratch for eval_block: a (depth, block) stack of dtype, the variable index of
    each slot, and libm scratch (int64 and float64 rows) and a float64 row for errors."""
    return (np.empty((depth, block), dtype=dtype), np.empty(depth, dtype=np.int64),
            np.empty(block, dtype=np.int64), np.empty(block, dtype=np.float64),
            np.empty(block, dtype=np.float64))


@njit(**_JIT)
def run_block(codes, start, end, consts, const_end, arity, XT, r0, nb, stack, ext):
    """Evaluate codes[start:end] on rows r0..r0+nb; the result is left in stack[0]."""
    width = stack.shape[1]
    ws = (stack, np.empty(stack.shape[0], dtype=np.int64), np.empty(width, dtype=np.int64),
          np.empty(width, dtype=np.float64), np.empty(0, dtype=np.float64))
    k = eval_block(codes, start, end, consts, const_end, arity, XT, r0, nb, ws, ext)
    if k >= 0:
        _copy(XT[k], r0, stack[0], nb)


# ------------------------------------------------------------ rows of a program
@njit(**_INLINE)
def _eval_rows(p, batch, XT, out, row0, row1, block, ws, ext):
    """out[p, row0:row1] = program p on those rows, block by block."""
    wide_vectors()
    codes, code_off, consts, const_off, arity = batch
    stack = ws[0]
    dest = out[p]
    for r0 in range(row0, row1, block):
        nb = min(block, row1 - r0)
        k = eval_block(codes, code_off[p], code_off[p + 1], consts, const_off[p + 1],
                       arity, XT, r0, nb, ws, ext)
        src = stack[0][:nb] if k < 0 else XT[k][r0:r0 + nb]
        part = dest[r0:r0 + nb]
        for r in range(nb):
            part[r] = src[r]


@njit(**_HOT)
def _block_sse(src, so, y, r0, nb, diff):
    """Sum of (src[so + r] - y[r0 + r])**2 over r < nb, in float64, eight lanes wide."""
    wide_vectors()
    out, want = src[so:so + nb], y[r0:r0 + nb]
    for r in range(nb):
        d = np.float64(out[r]) - want[r]
        diff[r] = d * d
    n8 = nb - nb % 8
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    for r in range(0, n8, 8):
        s0 += diff[r]
        s1 += diff[r + 1]
        s2 += diff[r + 2]
        s3 += diff[r + 3]
        s4 += diff[r + 4]
        s5 += diff[r + 5]
        s6 += diff[r + 6]
        s7 += diff[r + 7]
    for r in range(n8, nb):
        s0 += diff[r]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(**_JIT)
def mse_of_outputs(outputs, n_rows, y, block, out):
    """out[p] = the mean squared error mse_batch_serial gives program p, from its
    outputs on the rows (outputs[p, :n_rows]): the same block sums in the same order,
    so the same bits."""
    diff = np.empty(block, dtype=np.float64)
    for p in range(outputs.shape[0]):
        src = outputs[p]
        sse = 0.0
        for r0 in range(0, n_rows, block):
            part = _block_sse(src, r0, y, r0, min(block, n_rows - r0), diff)
            if not np.isfinite(part):
                part = np.inf
            sse += part
            if sse == np.inf:
                break
        out[p] = sse / n_rows


@njit(**_INLINE)
def _sse_rows(p, batch, XT, y, row0, row1, block, ws, per_block, b0, ext):
    """Sum of squared errors of program p on rows row0:row1 (inf once not finite).

    Block sums are added in block order; with per_block given (non-empty) they are
    also stored there from index b0, for a caller that splits rows among threads.
    """
    codes, code_off, consts, const_off, arity = batch
    stack = ws[0]
    sse = 0.0
    i = b0
    for r0 in range(row0, row1, block):
        nb = min(block, row1 - r0)
        k = eval_block(codes, code_off[p], code_off[p + 1], consts, const_off[p + 1],
                       arity, XT, r0, nb, ws, ext)
        src, so = (stack[0], 0) if k < 0 else (XT[k], r0)
        part = _block_sse(src, so, y, r0, nb, ws[4])
        if not np.isfinite(part):
            part = np.inf
        if per_block.shape[0] > 0:
            per_block[i] = part
            i += 1
        sse += part
        if sse == np.inf:
            break
    return sse


# ----------------------------------------------------------- work distribution
@intrinsic
def _fetch_add(typingctx, counter, step):
    """Atomically counter[0] += step; returns the old value (counter: int64 array)."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None
    sig = types.int64(counter, types.int64)

    def codegen(context, builder, signature, args):
        arr = context.make_array(signature.args[0])(context, builder, args[0])
        step_value = context.cast(builder, args[1], signature.args[1], types.int64)
        return builder.atomic_rmw("add", arr.data, step_value, "monotonic")

    return sig, codegen


@njit(**_JIT)
def _plan(n_programs, n_rows, block, workers):
    """(parts per program, items per chunk): split rows only when programs are few."""
    n_blocks = (n_rows + block - 1) // block
    parts = 1
    if n_programs < 4 * workers:
        parts = min(n_blocks, (4 * workers + n_programs - 1) // max(n_programs, 1))
        parts = max(parts, 1)
    n_items = n_programs * parts
    chunk = max(1, n_items // (16 * workers))
    return parts, chunk


@njit(**_JIT)
def _part_rows(part, parts, n_rows, block):
    """Rows [row0, row1) and first block index of one part; parts split on blocks."""
    n_blocks = (n_rows + block - 1) // block
    b0 = part * n_blocks // parts
    b1 = (part + 1) * n_blocks // parts
    return b0 * block, min(b1 * block, n_rows), b0


# ------------------------------------------------------------------ entry points
# Each exists twice: a serial one (no threading overhead for n_jobs=1) and a parallel
# one. `batch` is the tuple made by hybrid_gp.compiler. The parallel ones start
# `workers` tasks (give the number of threads: extra tasks find the queue empty).


@njit(**_JIT)
def eval_batch_serial(batch, XT, out, block, depth, ext):
    """out[p] = program p on every column of XT (feature-major), p < out.shape[0]."""
    ws = workspace(depth, block, XT.dtype)
    n_rows = XT.shape[1]
    for p in range(out.shape[0]):
        _eval_rows(p, batch, XT, out, 0, n_rows, block, ws, ext)


@njit(**_JIT)
def _eval_task(batch, XT, out, block, depth, ext, counter, parts, chunk):
    """One thread's share: take chunks of work items until none are left."""
    ws = workspace(depth, block, XT.dtype)
    n_rows = XT.shape[1]
    n_items = out.shape[0] * parts
    i0 = _fetch_add(counter, chunk)
    while i0 < n_items:
        for i in range(i0, min(i0 + chunk, n_items)):
            p, part = i // parts, i % parts
            row0, row1, _ = _part_rows(part, parts, n_rows, block)
            _eval_rows(p, batch, XT, out, row0, row1, block, ws, ext)
        i0 = _fetch_add(counter, chunk)


@njit(parallel=True, **_JIT)
def eval_batch_parallel(batch, XT, out, block, depth, ext, workers=8):
    """As eval_batch_serial, with the work shared among threads."""
    parts, chunk = _plan(out.shape[0], XT.shape[1], block, workers)
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(workers):
        _eval_task(batch, XT, out, block, depth, ext, counter, parts, chunk)


@njit(**_JIT)
def mse_batch_serial(batch, XT, y, out, block, depth, ext):
    """out[p] = mean squared error of program p against y (float64); inf if any output
    is not finite."""
    ws = workspace(depth, block, XT.dtype)
    none = np.empty(0, dtype=np.float64)
    n_rows = XT.shape[1]
    for p in range(out.shape[0]):
        out[p] = _sse_rows(p, batch, XT, y, 0, n_rows, block, ws, none, 0, ext) / n_rows


@njit(**_JIT)
def _mse_task(batch, XT, y, out, block, depth, ext, counter, parts, chunk, per_block):
    """One thread's share: take chunks of work items until none are left."""
    ws = workspace(depth, block, XT.dtype)
    none = np.empty(0, dtype=np.float64)
    n_rows = XT.shape[1]
    n_items = out.shape[0] * parts
    i0 = _fetch_add(counter, chunk)
    while i0 < n_items:
        for i in range(i0, min(i0 + chunk, n_items)):
            p, part = i // parts, i % parts
            row0, row1, b0 = _part_rows(part, parts, n_rows, block)
            if parts == 1:
                out[p] = _sse_rows(p, batch, XT, y, row0, row1, block, ws, none, 0,
                                   ext) / n_rows
            else:
                _sse_rows(p, batch, XT, y, row0, row1, block, ws, per_block[p], b0, ext)
        i0 = _fetch_add(counter, chunk)


@njit(parallel=True, **_JIT)
def mse_batch_parallel(batch, XT, y, out, block, depth, ext, workers=8):
    """As mse_batch_serial, with the work shared among threads; the same result."""
    n_rows = XT.shape[1]
    parts, chunk = _plan(out.shape[0], n_rows, block, workers)
    n_blocks = (n_rows + block - 1) // block
    # Rows split among threads: block sums are kept and added in order afterwards.
    # Blocks skipped after an early stop keep 0; their program's sum is inf anyway.
    per_block = np.zeros((out.shape[0] if parts > 1 else 0, n_blocks), dtype=np.float64)
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(workers):
        _mse_task(batch, XT, y, out, block, depth, ext, counter, parts, chunk, per_block)
    if parts > 1:
        for p in range(out.shape[0]):
            sse = 0.0
            for b in range(n_blocks):
                sse += per_block[p, b]
                if sse == np.inf:
                    break
            out[p] = sse / n_rows
