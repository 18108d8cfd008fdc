"""The fast path of the portfolio: classic children of a whole generation in one
Numba call (kernels/variation.py), handed on as Genomes (flat arrays)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import chain

import numpy as np

from ..constraints import tables as constraint_tables
from ..genomes import Genomes
from ..grammar import Grammar
from ..kernels import variation as kv
from ..program import Program
from ..threads import run_kernel, worker_threads
from .draws import ChildDraws, UniformDraws

#: Operator name -> kernel id, for the operators the batch breeder implements.
KERNEL_IDS = {"crossover": kv.CROSSOVER, "subtree": kv.SUBTREE, "point": kv.POINT,
              "hoist": kv.HOIST, "shrink": kv.SHRINK, "constant": kv.CONSTANT}
KERNEL_NAMES = {v: k for k, v in KERNEL_IDS.items()} | {kv.COPY: "copy"}
PERTURBATION_SCALE = 0.1
#: Fewest children per thread worth a thread: a child takes about a microsecond, and
#: starting the threads a few.
MIN_CHILDREN_PER_THREAD = 32


@lru_cache(maxsize=32)
def grammar_tables(grammar: Grammar) -> tuple[tuple[np.ndarray, ...], dict[str, int]]:
    """The typed grammar as arrays for the kernel, and the type -> id map."""
    types = {t: k for k, t in enumerate(sorted(grammar.types))}
    prims = grammar.primitives
    width = max((p.arity for p in prims), default=0) or 1
    arity = np.array([p.arity for p in prims], dtype=np.int64)
    ret = np.array([types[p.ret_type] for p in prims], dtype=np.int64)
    args = np.full((len(prims), width), -1, dtype=np.int64)
    for i, p in enumerate(prims):
        args[i, :p.arity] = [types[t] for t in p.arg_types]
    mh = grammar.min_height
    height = np.array([1 + max((mh[t] for t in p.arg_types), default=0) for p in prims],
                      dtype=np.int64)
    producers, prod_off = _flatten([list(grammar.producers.get(t, ())) for t in
                                    sorted(grammar.types)])
    min_height = np.array([mh[t] for t in sorted(grammar.types)], dtype=np.int64)
    same, same_off = _flatten([
        [k for k, q in enumerate(prims) if k != i and q.arg_types == p.arg_types
         and q.ret_type == p.ret_type] for i, p in enumerate(prims)])
    groups, forbidden = constraint_tables(grammar)
    return (arity, ret, args, height, producers, prod_off, min_height, same, same_off,
            groups, forbidden), types


def _flatten(groups: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    off = np.zeros(len(groups) + 1, dtype=np.int64)
    np.cumsum([len(g) for g in groups], out=off[1:])
    return np.array(list(chain.from_iterable(groups)), dtype=np.int64), off


def grow_capacity(grammar: Grammar, depth: int) -> int:
    """Most nodes a grown tree of this depth can have."""
    width = max((p.arity for p in grammar.primitives), default=1)
    return sum(width**d for d in range(depth + 1)) if width > 1 else depth + 1


def breed_children(population: Sequence[Program], ops: np.ndarray, first: np.ndarray,
                   second: np.ndarray, draws: ChildDraws, grammar: Grammar,
                   n_features: int, max_depth: int, max_size: int,
                   mutation_depth: int, n_jobs: int = 1, chunk: int | None = None
                   ) -> tuple[Genomes, np.ndarray]:
    """Children k = operator ops[k] (kernel ids) on population[first[k]], [second[k]],
    each drawing from its row of `draws`. Returns the children as Genomes (straight from the
    breeder's arrays: no Program is made unless one is read, and scoring them needs no
    compile_batch) and the kernel id that made each (after fallbacks). A population
    given as Genomes is read as it is; a list of Programs is flattened first. With
    n_jobs > 1 and enough children, threads share them, `chunk` children at a time
    (default: an eighth of a thread's share, at least 16): the same children, since
    each draws from its own row."""
    n = len(ops)
    tables, types = grammar_tables(grammar)
    c = grammar.constants
    parents = Genomes.of(population)
    sizes = parents.sizes
    cap = max(max_size, int(sizes.max()) if len(sizes) else 1)
    grow_n = grow_capacity(grammar, min(mutation_depth, max_depth))
    iparams = np.array([types[grammar.variable_type],
                        types[c.type] if c.enabled else -1, n_features, max_depth, max_size,
                        mutation_depth, grow_n, int(bool(grammar.constraints))],
                       dtype=np.int64)
    fparams = np.array([c.low, c.high, c.probability, PERTURBATION_SCALE], dtype=np.float64)
    out_codes = np.empty(n * cap, dtype=np.int64)
    out_consts = np.empty(n * cap, dtype=np.float64)
    code_off = np.zeros(n + 1, dtype=np.int64)
    const_off = np.zeros(n + 1, dtype=np.int64)
    out_op = np.empty(n, dtype=np.int64)
    if n:
        # Contiguous arrays of fixed dtypes: one compiled signature (and one cache entry).
        args = (parents.codes, parents.code_offsets, parents.consts, parents.const_offsets,
                np.ascontiguousarray(ops, dtype=np.int64),
                np.ascontiguousarray(first, dtype=np.int64),
                np.ascontiguousarray(second, dtype=np.int64),
                draws.kernel_args(), tables, iparams, fparams, cap,
                out_codes, out_consts, code_off, const_off, out_op)
        run_kernel("breed", worker_threads(n_jobs, n, MIN_CHILDREN_PER_THREAD), n,
                   lambda: kv.breed(*args),
                   lambda workers: kv.breed_parallel(*args, workers,
                                                     chunk or max(16, n // (8 * workers))))
    children = Genomes(grammar, out_codes[:code_off[-1]].copy(), code_off,
                       out_consts[:const_off[-1]].copy(), const_off)
    return children, out_op


def uniforms_per_child(grammar: Grammar, max_size: int, mutation_depth: int,
                       max_depth: int) -> int:
    """Period of a child's uniforms (ChildDraws): more than any operator uses, so a
    child never sees a uniform twice; rows wrap if ever exceeded."""
    return 3 * (max_size + grow_capacity(grammar, min(mutation_depth, max_depth))) + 16


def breed_children_reference(population: Sequence[Program], ops: np.ndarray,
                             first: np.ndarray, second: np.ndarray, draws: ChildDraws,
                             grammar: Grammar, n_features: int, max_depth: int, max_size: int,
                             mutation_depth: int) -> tuple[list[Program], np.ndarray]:
    """The Python twin of `breed_children`: the classic operators of classic.py, each
    drawing from `UniformDraws` over its row of `draws.rows`, with the same fallbacks."""
    from .portfolio import CLASSIC, VariationContext

    ctx = VariationContext(grammar, n_features, max_depth, max_size, mutation_depth)
    children, made_by = [], []
    rows = draws.rows(len(ops))
    for k, op_id in enumerate(np.asarray(ops).tolist()):
        uniforms = UniformDraws(rows[k])
        a, b = population[int(first[k])], population[int(second[k])]
        name = KERNEL_NAMES[op_id]
        child = CLASSIC[name].fn(a, b, uniforms, ctx)
        if child is None:
            name = "subtree"
            child = CLASSIC[name].fn(a, b, uniforms, ctx)
        if child is None:
            name, child = "copy", a
        children.append(child)
        made_by.append(KERNEL_IDS.get(name, kv.COPY))
    return children, np.array(made_by, dtype=np.int64)
