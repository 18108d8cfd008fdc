"""Plan a batch's evaluation around subtree outputs kept from earlier batches.

A child of crossover or mutation is mostly its parent: the subtrees hanging from its
root are often whole subtrees of programs evaluated a generation or two before. When
those outputs on the training rows are kept, the child loads them instead of
computing them again. Measured on nguyen-5 at 10,000 rows, keeping the root's subtrees
of every evaluated program in 1,000 slots would have spared about half of the node
evaluations of the children the equivalence cache could not skip.

Slots are rows of an extended feature matrix: row n_features + s holds slot s, so a
load is the variable code of that row and the interpreter needs nothing new. Keys are
syntactic (the subtree's codes and constants' bits, hashed to 128 bits), so a loaded
row holds bit for bit what the subtree would compute. Slots are entries of a
kernels.lru table (entry id = slot), least recently used evicted first.

`plan` rewrites one batch: each subtree costing at least MIN_COST found in the table
becomes a load (largest first, top down); each such subtree of the root not found gets
a new slot (unless storing is paused) and a store program (the subtree itself,
loading older slots inside), which the caller evaluates into its slot before the
rewritten children. A slot used or made
in this batch (stamp == batch number) is never evicted during it, and store programs
never load a slot made in the same batch, so the stores can run in any order.
kernels/reference_subtrees.py is the plain-Python twin.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import opcodes as oc
from .interpreter import _block_sse, _fetch_add, eval_block, workspace
from .lru import CAPACITY, HEAD, SIZE, _append, _delete_slot, _find, _touch, _unlink
from .structural import _combine, _mix, _value_bits

_JIT = dict(cache=True, error_model="numpy", nogil=True)
# Per-node helpers that never allocate: no reference counting (see kernels/lru.py).
_HOT = dict(_JIT, _nrt=False)


def _op_costs() -> np.ndarray:
    """Rough cost of each opcode per row, in eighths of a nanosecond (measured at
    10,000 rows on 2 cores; a constant or a variable costs nothing)."""
    cost = np.ones(oc.N_OPCODES, dtype=np.int64)
    for names, value in ((("div", "inv"), 3), (("if",), 2), (("sqrt",), 5), (("exp",), 7),
                         (("log", "tanh"), 8), (("sin", "cos"), 9), (("pow",), 16)):
        for name in names:
            cost[oc.OPS[name].code] = value
    cost.setflags(write=False)
    return cost


#: Per-opcode cost (see _op_costs).
OP_COST = _op_costs()
#: A subtree is loaded or stored only from this cost: a slot's row is read from
#: memory, so cheaper subtrees are as fast to compute (on nguyen-5 at 10,000 rows 3
#: to 6 did equally well, 8 a little worse, and 12 lost most loads).
MIN_COST = 4
#: What a load and a store cost per row, in the same units (a row read, a row
#: written), for the store's reckoning of whether storing pays (hybrid_gp.subtrees).
LOAD_COST = 4
STORE_COST = 12

_SALT_FIRST = np.uint64(0x2545F4914F6CDD1D)
_SALT_SECOND = np.uint64(0x9E6C63D0676A9A99)
_SALT_VAR = np.uint64(0x1B873593CC9E2D51)
_SALT_CONST = np.uint64(0x85EBCA6BE6546B64)
_SALT_OP = np.uint64(0xD6E8FEB86659FD93)


@njit(**_HOT)
def node_hashes(codes, start, end, consts, const_start, arity, op_cost, h1, h2, ends, cost,
                first_const, stack, scratch, scratch_bits):
    """For every node i of codes[start:end] (i relative to start): the two words of
    its subtree's syntactic key, the end of its subtree, its cost (op_cost summed)
    and how many constants come before it (first_const has one more entry: the
    program's total)."""
    n = end - start
    kc = 0
    for i in range(n):
        first_const[i] = kc
        if codes[start + i] == -1:
            kc += 1
    first_const[n] = kc
    sp = 0
    for i in range(n - 1, -1, -1):
        c = codes[start + i]
        if c < 0:
            if c == -1:
                x = _value_bits(consts[const_start + first_const[i]], scratch,
                                scratch_bits) ^ _SALT_CONST
            else:
                x = np.uint64(-c) ^ _SALT_VAR
            h1[i] = _mix(x ^ _SALT_FIRST)
            h2[i] = _mix(_mix(x ^ _SALT_SECOND))
            ends[i] = i + 1
            cost[i] = 0
        else:
            a = arity[c]
            x = np.uint64(c) ^ _SALT_OP
            k1 = _mix(x ^ _SALT_FIRST)
            k2 = _mix(_mix(x ^ _SALT_SECOND))
            total = op_cost[c]
            for j in range(a):  # the top of the stack is the first child
                child = stack[sp - 1 - j]
                k1 = _combine(k1, h1[child])
                k2 = _combine(k2, h2[child])
                total += cost[child]
            cost[i] = total
            h1[i] = k1
            h2[i] = k2
            ends[i] = ends[stack[sp - a]]
            sp -= a
        stack[sp] = i
        sp += 1


@njit(**_HOT)
def _use(index, keys, prev, nxt, meta, stamp, born, batch_no, hi, lo, allow_new):
    """The slot holding key (hi, lo), now the most recent and stamped; -1 when absent
    or (allow_new false) made in this batch."""
    e, _ = _find(index, keys, hi, lo)
    if e < 0 or (not allow_new and born[e] == batch_no):
        return -1
    _touch(prev, nxt, meta, e)
    stamp[e] = batch_no
    return e


@njit(**_HOT)
def _claim(index, keys, prev, nxt, meta, stamp, born, batch_no, hi, lo):
    """A slot for a new key: a free one, or the least recently used when that one was
    not used in this batch; -1 when none can be had. The key must be absent."""
    if meta[SIZE] >= meta[CAPACITY]:
        e = meta[HEAD]
        if stamp[e] == batch_no:
            return -1
        _, old = _find(index, keys, keys[e, 0], keys[e, 1])
        _delete_slot(index, keys, old)
        _unlink(prev, nxt, meta, e)
    else:
        e = meta[SIZE]
        meta[SIZE] += 1
    _, at = _find(index, keys, hi, lo)
    keys[e, 0] = hi
    keys[e, 1] = lo
    index[at] = e
    _append(prev, nxt, meta, e)
    stamp[e] = batch_no
    born[e] = batch_no
    return e


@njit(**_HOT)
def _count_load(counts, nodes, cost):
    counts[0] += 1
    counts[1] += nodes
    counts[3] += cost


@njit(**_HOT)
def _emit(i, stop, start, codes, consts, const_start, h1, h2, ends, cost, first_const,
          table, batch_no, allow_new, base, out_codes, w, out_consts, wc, counts):
    """Write nodes i..stop-1 to out_codes[w:] (constants to out_consts[wc:]), each
    subtree found in the table as one load, the largest first. Returns (w, wc)."""
    index, keys, prev, nxt, meta, stamp, born = table
    k = i
    while k < stop:
        if cost[k] >= MIN_COST:
            e = _use(index, keys, prev, nxt, meta, stamp, born, batch_no, h1[k], h2[k],
                     allow_new)
            if e >= 0:
                out_codes[w] = -(base + e) - 2
                w += 1
                _count_load(counts, ends[k] - k, cost[k])
                k = ends[k]
                continue
        c = codes[start + k]
        out_codes[w] = c
        w += 1
        if c == -1:
            out_consts[wc] = consts[const_start + first_const[k]]
            wc += 1
        k += 1
    return w, wc


@njit(**_JIT)
def plan(codes, code_off, consts, const_off, arity, op_cost, base, table, batch_no,
         may_store, out_codes, out_code_off, out_consts, out_const_off,
         st_codes, st_code_off, st_consts, st_const_off, st_slots, counts):
    """Rewrite a batch around the slots in `table` (see the module docstring).

    base: the extended matrix's first slot row (the data's feature count). table:
    (index, keys, prev, next, meta, stamp, born) of a kernels.lru table whose pool has
    room for its whole capacity, plus per-slot int64 stamps. out_*: the rewritten
    programs; st_*: the store programs, st_slots the slot each fills; both sized for
    the batch's codes. may_store: whether new slots may be taken. counts: [loads, nodes
    loaded, stores, cost loaded]. Returns the number of store programs."""
    index, keys, prev, nxt, meta, stamp, born = table
    longest = 1
    for p in range(len(code_off) - 1):
        longest = max(longest, code_off[p + 1] - code_off[p])
    h1 = np.empty(longest, dtype=np.uint64)
    h2 = np.empty(longest, dtype=np.uint64)
    ends = np.empty(longest, dtype=np.int64)
    cost = np.empty(longest, dtype=np.int64)
    first_const = np.empty(longest + 1, dtype=np.int64)
    stack = np.empty(longest, dtype=np.int64)
    scratch = np.empty(1, dtype=np.float64)
    scratch_bits = scratch.view(np.uint64)
    w = wc = sw = swc = 0
    n_stores = 0
    out_code_off[0] = out_const_off[0] = st_code_off[0] = st_const_off[0] = 0
    for p in range(len(code_off) - 1):
        start, cs = code_off[p], const_off[p]
        n = code_off[p + 1] - start
        node_hashes(codes, start, code_off[p + 1], consts, cs, arity, op_cost, h1, h2, ends,
                    cost, first_const, stack, scratch, scratch_bits)
        root = codes[start]
        whole = -1
        if cost[0] >= MIN_COST:
            whole = _use(index, keys, prev, nxt, meta, stamp, born, batch_no, h1[0], h2[0],
                         True)
        if whole >= 0:
            out_codes[w] = -(base + whole) - 2
            w += 1
            _count_load(counts, n, cost[0])
        elif root < 0:
            w, wc = _emit(0, n, start, codes, consts, cs, h1, h2, ends, cost, first_const,
                          table, batch_no, True, base, out_codes, w, out_consts, wc, counts)
        else:
            out_codes[w] = root
            w += 1
            k = 1
            while k < n:  # the root's subtrees, one after another
                stop = ends[k]
                e = -1
                if cost[k] >= MIN_COST:
                    e = _use(index, keys, prev, nxt, meta, stamp, born, batch_no, h1[k],
                             h2[k], True)
                    if e >= 0:
                        _count_load(counts, stop - k, cost[k])
                    elif may_store:
                        e = _claim(index, keys, prev, nxt, meta, stamp, born, batch_no,
                                   h1[k], h2[k])
                        if e >= 0:  # its store program computes it first
                            sw, swc = _emit(k, stop, start, codes, consts, cs, h1, h2, ends,
                                            cost, first_const, table, batch_no, False, base,
                                            st_codes, sw, st_consts, swc, counts)
                            st_slots[n_stores] = e
                            n_stores += 1
                            st_code_off[n_stores] = sw
                            st_const_off[n_stores] = swc
                            counts[2] += 1
                if e >= 0:
                    out_codes[w] = -(base + e) - 2
                    w += 1
                else:
                    w, wc = _emit(k, stop, start, codes, consts, cs, h1, h2, ends,
                                  cost, first_const, table, batch_no, True, base, out_codes, w,
                                  out_consts, wc, counts)
                k = stop
        out_code_off[p + 1] = w
        out_const_off[p + 1] = wc
    return n_stores


# ------------------------------------------------------------ planned evaluation
# The store programs and the rewritten children run block by block: for each block of
# rows, the stores fill their slots' part, then every child reads it. A slot's part
# is then still in cache when the children load it, which program-by-program order
# (the whole row of a slot, then the next program) loses at many rows.


@njit(**_JIT)
def _planned_block(b, children, stores, rows, XT, y, block, ws, ext, sse_blocks, live):
    """Block b: the stores into XT[rows[q]], then each live child's sum of squared
    errors into sse_blocks[p, b] (inf when not finite)."""
    n_rows = XT.shape[1]
    r0 = b * block
    nb = min(block, n_rows - r0)
    s_codes, s_off, s_consts, s_coff, arity = stores
    c_codes, c_off, c_consts, c_coff, _ = children
    stack = ws[0]
    for q in range(rows.shape[0]):
        k = eval_block(s_codes, s_off[q], s_off[q + 1], s_consts, s_coff[q + 1], arity, XT,
                       r0, nb, ws, ext)
        src = stack[0][:nb] if k < 0 else XT[k][r0:r0 + nb]
        dest = XT[rows[q]][r0:r0 + nb]
        for r in range(nb):
            dest[r] = src[r]
    for p in range(c_off.shape[0] - 1):
        if not live[p]:
            continue
        k = eval_block(c_codes, c_off[p], c_off[p + 1], c_consts, c_coff[p + 1], arity, XT,
                       r0, nb, ws, ext)
        src, so = (stack[0], 0) if k < 0 else (XT[k], r0)
        part = _block_sse(src, so, y, r0, nb, ws[4])
        sse_blocks[p, b] = part if np.isfinite(part) else np.inf


@njit(**_JIT)
def _sum_blocks(sse_blocks, n_rows, out):
    """out[p] = the block sums added in block order, as the interpreter's mse kernels
    add them (stopping at inf), over n_rows: the same bits."""
    for p in range(out.shape[0]):
        sse = 0.0
        for b in range(sse_blocks.shape[1]):
            sse += sse_blocks[p, b]
            if sse == np.inf:
                break
        out[p] = sse / n_rows


@njit(**_JIT)
def mse_planned_serial(children, stores, rows, XT, y, out, block, depth, ext):
    """out[p] = mean squared error of child p, after the store programs filled
    XT[rows[q]] (XT: the store's extended matrix). A child whose running sum is inf
    skips its later blocks, as in mse_batch_serial."""
    ws = workspace(depth, block, XT.dtype)
    n_rows = XT.shape[1]
    n_blocks = (n_rows + block - 1) // block
    n = out.shape[0]
    sse_blocks = np.zeros((n, n_blocks), dtype=np.float64)
    live = np.ones(n, dtype=np.bool_)
    running = np.zeros(n, dtype=np.float64)
    for b in range(n_blocks):
        _planned_block(b, children, stores, rows, XT, y, block, ws, ext, sse_blocks, live)
        for p in range(n):
            if live[p]:
                running[p] += sse_blocks[p, b]
                if running[p] == np.inf:
                    live[p] = False
    _sum_blocks(sse_blocks, n_rows, out)


@njit(**_JIT)
def _planned_task(children, stores, rows, XT, y, block, depth, ext, sse_blocks, live,
                  counter):
    ws = workspace(depth, block, XT.dtype)
    b = _fetch_add(counter, 1)
    while b < sse_blocks.shape[1]:
        _planned_block(b, children, stores, rows, XT, y, block, ws, ext, sse_blocks, live)
        b = _fetch_add(counter, 1)


@njit(parallel=True, **_JIT)
def mse_planned_parallel(children, stores, rows, XT, y, out, block, depth, ext, workers=8):
    """As mse_planned_serial, the row blocks shared among threads (every child runs
    every block; the sums come out the same)."""
    n_rows = XT.shape[1]
    n_blocks = (n_rows + block - 1) // block
    n = out.shape[0]
    sse_blocks = np.zeros((n, n_blocks), dtype=np.float64)
    live = np.ones(n, dtype=np.bool_)
    counter = np.zeros(1, dtype=np.int64)
    for _ in prange(workers):
        _planned_task(children, stores, rows, XT, y, block, depth, ext, sse_blocks, live,
                      counter)
    _sum_blocks(sse_blocks, n_rows, out)
