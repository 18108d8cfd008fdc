"""Unified functional hashing (after Gillard et al. 2023) and the equivalence cache.

A program's *function* is keyed by its outputs on a fixed probe: outputs are rounded to
nearest at `mantissa_bits` of mantissa, -0.0 becomes 0.0, NaN and +-inf become fixed
tokens, and the bytes are hashed with sha256 to a 64-bit int (a batch's rows in one
Numba call with the CPU's SHA instructions, kernels/sha256.py, or with hashlib where
there are none: the same keys). The same algorithm keys
a GP tree, an LLM-written expression or any Python callable, so equivalent candidates
meet in one cache however they are written.

Before the numeric layer, a structural key (kernels/structural.py: commutative
arguments ordered, constant subtrees folded) catches rewrites of the same tree exactly
and for free. A hit reuses the known fitness and costs no evaluation.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .compiler import CompiledBatch, compile_batch
from .errors import ConfigError, DataError
from .evaluation import as_features, evaluate_features
from .genomes import Genomes
from .kernels import opcodes as oc
from .kernels import sha256 as sha256_kernel
from .kernels.lru import LruTable
from .kernels.quantise import quantise_bits
from .kernels.structural import structural_keys, structural_keys_parallel
from .program import Program
from .subtrees import SubtreeStore
from .threads import run_kernel, worker_threads

if TYPE_CHECKING:
    from .problem import Problem
    from .search.scoring import Scorer, ScoreResult

DEFAULT_MANTISSA_BITS = 24
NAN_TOKEN = np.int64(0x7FF8_DEAD_BEEF_0001)
MODES = ("standard", "averaging", "forgetful", "audit")


# ---------------------------------------------------------------------- fingerprints


def quantise(values: np.ndarray, mantissa_bits: int = DEFAULT_MANTISSA_BITS) -> np.ndarray:
    """Round to nearest at `mantissa_bits` bits of mantissa (the leading bit counted, so
    53 keeps a double exactly); return int64 bit patterns of the same shape.

    Equal rounded values give equal patterns (0.9999999999999999 and 1.0 agree at 24
    bits); -0.0 maps to 0.0; every NaN maps to one token; +-inf keep their own patterns.
    One Numba pass over the bits (kernels/quantise.py); `quantise_reference` is its twin.
    """
    _check_mantissa_bits(mantissa_bits)
    v = np.ascontiguousarray(values, dtype=np.float64)
    out = np.empty(v.shape, dtype=np.int64)
    quantise_bits(v.reshape(-1).view(np.int64), mantissa_bits, NAN_TOKEN, out.reshape(-1))
    return out


def quantise_reference(values: np.ndarray,
                       mantissa_bits: int = DEFAULT_MANTISSA_BITS) -> np.ndarray:
    """Numpy twin of `quantise`: frexp, rint of the scaled mantissa, ldexp."""
    _check_mantissa_bits(mantissa_bits)
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(all="ignore"):
        m, e = np.frexp(v)
        rounded = np.ldexp(np.round(m * 2.0**mantissa_bits), e - mantissa_bits)
    rounded = np.where(np.isfinite(v), rounded, v) + 0.0  # + 0.0 turns -0.0 into 0.0
    bits = rounded.view(np.int64)
    return np.where(np.isnan(v), NAN_TOKEN, bits)


def _check_mantissa_bits(mantissa_bits: int) -> None:
    if not 1 <= mantissa_bits <= 53:
        raise ConfigError(f"mantissa_bits must be in 1..53, got {mantissa_bits}")


#: Fewest rows per thread for their sha256 (about 0.35 µs each).
MIN_THREADED_HASH_ROWS = 32


def fingerprint_array(outputs: np.ndarray, mantissa_bits: int = DEFAULT_MANTISSA_BITS,
                      n_jobs: int = 1) -> np.ndarray:
    """One 64-bit key per row of outputs (n_programs, n_probe), as int64: the first 8
    bytes of the sha256 of the row's quantised values, little-endian. Hashed in one
    Numba call with the CPU's SHA instructions where it has them (kernels/sha256.py, on
    up to n_jobs threads), else row by row with hashlib (`fingerprint_array_reference`):
    the same keys."""
    if not sha256_kernel.AVAILABLE:
        return fingerprint_array_reference(outputs, mantissa_bits)
    q = quantise(np.atleast_2d(outputs), mantissa_bits)
    data = q.reshape(-1).view(np.uint8)
    out = np.empty(len(q), dtype=np.int64)
    width = q.shape[1] * 8
    run_kernel("sha256", worker_threads(n_jobs, len(q), MIN_THREADED_HASH_ROWS), len(q),
               lambda: sha256_kernel.sha256_heads(data, width, out),
               lambda workers: sha256_kernel.sha256_heads_parallel(data, width, out, workers))
    return out


def fingerprint_array_reference(outputs: np.ndarray,
                                mantissa_bits: int = DEFAULT_MANTISSA_BITS) -> np.ndarray:
    """Twin of `fingerprint_array`: hashlib's sha256 of each row."""
    q = quantise(np.atleast_2d(outputs), mantissa_bits)
    data, width = memoryview(q.tobytes()), q.shape[1] * 8  # row k: data[k*width:][:width]
    sha256 = hashlib.sha256
    heads = b"".join([sha256(data[a:a + width]).digest()[:8]
                      for a in range(0, len(q) * width, width)])
    return np.frombuffer(heads, dtype="<i8").astype(np.int64)


def fingerprint_rows(outputs: np.ndarray, mantissa_bits: int = DEFAULT_MANTISSA_BITS
                     ) -> list[int]:
    """One 64-bit key per row of outputs (n_programs, n_probe), as Python ints."""
    return fingerprint_array(outputs, mantissa_bits).tolist()


def functional_hash(obj: Program | Callable[[np.ndarray], Any], probe: np.ndarray,
                    mantissa_bits: int = DEFAULT_MANTISSA_BITS) -> int:
    """The functional key of a Program or of any callable fn(X) -> array on `probe`.

    probe: (n_probe, n_features). Programs and callables computing the same function
    on the probe (to `mantissa_bits`) get the same key.
    """
    X = np.asarray(probe, dtype=np.float64)
    if X.ndim != 2:
        raise DataError(f"probe must be 2-D (n_probe, n_features), got shape {X.shape}")
    if isinstance(obj, Program):
        out = evaluate_features(compile_batch([obj]), as_features(X, np.dtype(np.float64)))[0]
    elif callable(obj):
        with np.errstate(all="ignore"):
            out = np.asarray(obj(X), dtype=np.float64)
        out = np.broadcast_to(out, (X.shape[0],)) if out.ndim == 0 else out.reshape(-1)
        if out.shape != (X.shape[0],):
            raise DataError(f"the callable returned {out.shape[0]} values for {X.shape[0]} "
                            f"probe rows; expected one per row")
    else:
        raise TypeError(f"expected a Program or a callable, got {type(obj).__name__}")
    return fingerprint_rows(out[None, :], mantissa_bits)[0]


#: Fewest nodes per thread for structural keys (about 20 µs of work).
MIN_THREADED_KEY_NODES = 2048


def structural_key_array(batch: CompiledBatch, n_jobs: int = 1) -> np.ndarray:
    """(n_programs, 2) uint64 canonical keys (see kernels/structural.py), on up to
    n_jobs threads for a large batch (the same keys)."""
    out = np.empty((batch.n_programs, 2), dtype=np.uint64)
    args = (batch.codes, batch.code_offsets, batch.consts, batch.const_offsets, oc.ARITY,
            oc.COMMUTATIVE, out)
    if batch.n_programs:
        workers = min(worker_threads(n_jobs, len(batch.codes), MIN_THREADED_KEY_NODES),
                      batch.n_programs)
        run_kernel("structural keys", workers, len(batch.codes),
                   lambda: structural_keys(*args),
                   lambda workers: structural_keys_parallel(*args, workers))
    return out


def make_probe(problem: Problem, size: int = 64, seed: int = 0,
               train_share: float = 0.75) -> np.ndarray:
    """Probe inputs (size, n_features): some of the problem's training rows (all of them
    when they fit, which rules out false merges on the training data; else a share
    `train_share` of the probe, since only training rows can tell programs of different
    fitness apart (docs/hashing.md: at 0.5 a sweep found 18 false merges in 9,063
    audited hits on Keijzer-4, at 0.75 none in 8,723); rows holding an
    exact zero always, since protected operators switch branches there; when rows are
    sampled, also the rows holding each input's smallest and largest value, since
    some programs part only near an edge, and rows holding an exact 1 or -1, where log
    is zero) and the rest drawn uniformly from the problem's input domain. Seeded, so
    fixed for a run. A problem with a small finite input set (Boolean cases) is probed
    on all of it."""
    if size < 1:
        raise ConfigError(f"probe size must be >= 1, got {size}")
    from .rng import stream

    exhaustive = problem.exhaustive_inputs()
    if exhaustive is not None:  # every input the fitness can see: no false merges possible
        return np.ascontiguousarray(exhaustive, dtype=np.float64)
    rng = stream(seed, "probe")
    X = problem.train.X
    n_train = min(len(X), max(1, round(size * train_share)))
    if len(X) <= size:  # small data: take every row, fill the rest from the domain
        n_train = len(X)
    # Rows with an exact zero go first: there the protected operators switch branches
    # (log 0 = 0, a / 0 = 1), so exp(log(x)) and x part only on such rows.
    first = np.flatnonzero(np.any(X == 0.0, axis=1))
    if n_train < len(X):
        # Sampled rows: the rows at each input's extremes go first too. sin(sqrt(x0))
        # and abs(sin(sqrt(x0))) part only for x0 > 9.87 on Keijzer-4's [0, 10]; a
        # probe reaching 9.65 gave them one key (docs/hashing.md).
        edges = np.concatenate([X.argmin(axis=0), X.argmax(axis=0)])
        first = np.concatenate([first, np.setdiff1d(edges, first)])
        # Then rows with an exact +-1, where log is 0 and a division by it switches to
        # its protected value: 0.02 and 0.02 + (x0 - x0) / log(x0) differ only at
        # x0 = 1, and a Keijzer-4 probe without that row merged them (docs/hashing.md).
        ones = np.flatnonzero(np.any(np.abs(X) == 1.0, axis=1))
        first = np.concatenate([first, np.setdiff1d(ones, first)])
    first = first[:n_train]
    others = np.setdiff1d(np.arange(len(X)), first)
    picked = np.concatenate([first, rng.choice(others, size=n_train - len(first),
                                               replace=False)])
    rows = X[np.sort(picked)]
    n_domain = size - n_train
    if n_domain <= 0:
        return np.ascontiguousarray(rows)
    if problem.domain:
        lo = np.array([d[0] for d in problem.domain])
        hi = np.array([d[1] for d in problem.domain])
    else:
        lo, hi = X.min(axis=0), X.max(axis=0)
    return np.ascontiguousarray(np.vstack([rows, rng.uniform(lo, hi, (n_domain, X.shape[1]))]))


# ---------------------------------------------------------------------- the cache


@dataclass
class CacheStats:
    """What the cache did; reported in res.stats and events.jsonl."""

    lookups: int = 0
    structural_hits: int = 0
    functional_hits: int = 0
    batch_duplicates: int = 0  # equal functions inside one batch, evaluated once
    evaluations: int = 0
    audited: int = 0
    false_merges: int = 0
    averaged: int = 0  # hits re-evaluated to refine a noisy mean (averaging mode)
    forgotten: int = 0  # hits dropped and re-evaluated (forgetful mode)
    evaluation_seconds: float = 0.0  # wall time of the real evaluations
    hash_seconds: float = 0.0  # wall time of everything else `score` did: the cache's cost
    evicted: int = 0
    subtree_stores: int = 0  # subtree outputs kept (hybrid_gp.subtrees)
    subtree_loads: int = 0  # subtrees loaded instead of computed
    subtree_nodes_loaded: int = 0  # their nodes: node evaluations spared per row
    subtree_nodes_planned: int = 0  # nodes of the programs evaluated with the store

    @property
    def hits(self) -> int:
        return self.structural_hits + self.functional_hits + self.batch_duplicates

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0

    @property
    def seconds_saved(self) -> float:
        """An estimate: each hit valued at the mean wall time of a real evaluation."""
        per = self.evaluation_seconds / self.evaluations if self.evaluations else 0.0
        return self.hits * per

    def clock_dict(self) -> dict[str, float]:
        """The wall-clock numbers, apart from `as_dict` (events keep those under "clock",
        so that two runs with one seed write the same events)."""
        return {"evaluation_seconds": round(self.evaluation_seconds, 6),
                "seconds_saved": round(self.seconds_saved, 6),
                "hash_seconds": round(self.hash_seconds, 6)}

    def as_dict(self) -> dict[str, Any]:
        return {
            "lookups": self.lookups, "hits": self.hits, "hit_rate": round(self.hit_rate, 6),
            "structural_hits": self.structural_hits, "functional_hits": self.functional_hits,
            "batch_duplicates": self.batch_duplicates, "audited": self.audited,
            "false_merges": self.false_merges, "averaged": self.averaged,
            "forgotten": self.forgotten, "evicted": self.evicted,
            # these four depend on the session: a resumed run's store starts empty
            # (search.engine.CACHE_SESSION keeps them out of the stable stats)
            "subtree_stores": self.subtree_stores, "subtree_loads": self.subtree_loads,
            "subtree_nodes_loaded": self.subtree_nodes_loaded,
            "subtree_nodes_planned": self.subtree_nodes_planned,
        }


@dataclass
class EquivalenceCache:
    """Fitness by function: structural key first, then the probe fingerprint.

    mode: "standard" (a hit reuses the fitness), "averaging" (noisy fitness: a hit is
    re-evaluated until k evaluations are averaged), "forgetful" (a hit is dropped with
    probability `forget_p` and re-evaluated), "audit" (a fraction `audit_rate` of hits
    is evaluated anyway; a false merge is a fitness that differs by more than
    `audit_tolerance`, relative). Memory is bounded: least recently used entries go.

    Two array tables (kernels/lru.py) hold the keys: structural key (128 bits) ->
    functional key, and functional key -> (error, evaluations folded into it).
    """

    probe_XT: np.ndarray  # (n_features, n_probe), feature-major
    mode: str = "standard"
    mantissa_bits: int = DEFAULT_MANTISSA_BITS
    capacity: int = 500_000
    audit_rate: float = 0.0
    audit_tolerance: float = 1e-6
    forget_p: float = 0.0
    average_k: int = 5
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    stats: CacheStats = field(default_factory=CacheStats)
    subtree_memory_mb: float = 128.0  # subtree outputs kept on many rows; 0: none

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"cache mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.capacity < 1:
            raise ConfigError(f"cache capacity must be >= 1, got {self.capacity}")
        for name in ("audit_rate", "forget_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"cache {name} must be in [0, 1], got {getattr(self, name)}")
        if self.mode == "audit" and self.audit_rate == 0.0:
            self.audit_rate = 0.05
        if self.subtree_memory_mb < 0:
            raise ConfigError(f"cache subtree_memory_mb must be >= 0, got "
                              f"{self.subtree_memory_mb}")
        self._structural = LruTable(self.capacity)  # key -> (functional key, unused)
        self._functional = LruTable(self.capacity)  # (0, key) -> (count, error)
        self._subtrees: SubtreeStore | None = None  # made for the first problem scored
        self._subtrees_of: np.ndarray | None = None  # the data it was decided for

    # ---------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        """Compact state for checkpoints: the tables as arrays, in LRU order."""
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("_structural", "_functional", "_train_prefix", "_subtrees",
                              "_subtrees_of")}
        f, s = self._functional, self._structural
        ids = f.in_order()
        state["_functional_arrays"] = (f.keys[ids, 1].view(np.int64), f.fvals[ids],
                                       f.ivals[ids])
        ids = s.in_order()
        state["_structural_arrays"] = (s.keys[ids], s.ivals[ids])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        fk, err, count = state.pop("_functional_arrays")
        sk, sv = state.pop("_structural_arrays")
        self.__dict__.update(state)
        self.__dict__.setdefault("subtree_memory_mb", 128.0)  # checkpoints from before it
        self._subtrees = self._subtrees_of = None  # outputs are not checkpointed: they refill
        self._functional = LruTable(self.capacity)
        self._functional.put(_zeros(len(fk)), _words(fk), count, err)
        self._structural = LruTable(self.capacity)
        sk = np.asarray(sk, dtype=np.uint64).reshape(-1, 2)
        self._structural.put(sk[:, 0], sk[:, 1], sv, np.zeros(len(sv)))

    # ---------------------------------------------------------------- lookups
    def fingerprints(self, batch: CompiledBatch, n_jobs: int = 1) -> np.ndarray:
        """Functional keys (int64) of a compiled batch: one kernel call on the probe."""
        return fingerprint_array(self.probe_outputs(batch, n_jobs), self.mantissa_bits,
                                 n_jobs)

    def probe_outputs(self, batch: CompiledBatch, n_jobs: int = 1) -> np.ndarray:
        """(n_programs, n_probe) outputs of a compiled batch on the probe."""
        return evaluate_features(batch, self.probe_XT, n_jobs)

    def __len__(self) -> int:
        return len(self._functional)

    def _training_rows_first(self, problem: Problem) -> int:
        """n when the probe's first n rows are the problem's n training rows, in order
        (a small training set is probed row for row): then a new program's error can be
        read off its probe outputs. 0 otherwise."""
        known = getattr(self, "_train_prefix", None)
        if known is not None and known[0] is problem:
            return known[1]
        X = problem.train.X
        n = len(X) if (len(X) <= self.probe_XT.shape[1]
                       and np.array_equal(self.probe_XT[:, :len(X)].T, X)) else 0
        self._train_prefix = (problem, n)
        return n

    def items(self) -> list[tuple[int, float, int]]:
        """(functional key, error, evaluations folded into it), least recently used
        first."""
        f = self._functional
        ids = f.in_order()
        return list(zip(f.keys[ids, 1].view(np.int64).tolist(), f.fvals[ids].tolist(),
                        f.ivals[ids].tolist(), strict=True))

    def structures(self) -> list[tuple[int, int]]:
        """(128-bit structural key, functional key), least recently used first."""
        s = self._structural
        ids = s.in_order()
        return [(a << 64 | b, fk) for (a, b), fk in
                zip(s.keys[ids].tolist(), s.ivals[ids].tolist(), strict=True)]

    def keys_of(self, programs: Sequence[Program], n_jobs: int = 1) -> list[int]:
        """The functional key `score` would give each program, without scoring or
        counting anything (only its time joins `hash_seconds`): a known structure's key
        from the table, the rest from one kernel call on the probe."""
        if not programs:
            return []
        start = time.perf_counter()
        batch = compile_batch(programs)
        sk = structural_key_array(batch, n_jobs)
        ids = self._structural.find(sk[:, 0], sk[:, 1])
        keys = self._structural.ivals[ids]
        unknown = np.flatnonzero(ids < 0)
        if len(unknown):
            keys[unknown] = self.fingerprints(batch.take(unknown), n_jobs)
        self.stats.hash_seconds += time.perf_counter() - start
        return keys.tolist()

    def score(self, scorer: Scorer, programs: Sequence[Program],
              max_new: int | None = None, batch: CompiledBatch | None = None
              ) -> ScoreResult:
        """Errors for `programs`, evaluating only functions the cache has not seen (and
        the hits the mode wants re-checked). At most `max_new` real evaluations;
        programs beyond that stay NaN. `batch`, when given, is `programs` compiled.

        Runs once per generation over hundreds of children: each stage is one call on
        the whole batch. The tables see the same operations in the same order as an
        OrderedDict walked child by child would."""
        from .search.scoring import ScoreResult

        n = len(programs)
        errors = np.full(n, np.nan)
        if not n:
            return ScoreResult(errors, 0, 0, np.empty(0, dtype=np.int64))
        start, evaluating = time.perf_counter(), 0.0
        self.stats.lookups += n
        structural, functional = self._structural, self._functional
        if batch is None:
            batch = compile_batch(programs)
        sk = structural_key_array(batch, scorer.n_jobs)
        s_hi, s_lo = np.ascontiguousarray(sk[:, 0]), np.ascontiguousarray(sk[:, 1])
        fkeys = np.zeros(n, dtype=np.int64)
        ids = structural.find(s_hi, s_lo)
        known = np.flatnonzero(ids >= 0)
        fkeys[known] = structural.ivals[ids[known]]
        in_table = functional.find(_zeros(len(known)), _words(fkeys[known]))
        hits = known[in_table >= 0]
        hit_ids = in_table[in_table >= 0]  # functional entries of the hits, in order
        structural.touch(ids[hits])
        self.stats.structural_hits += len(hits)
        is_hit = np.zeros(n, dtype=bool)
        is_hit[hits] = True
        pending = np.flatnonzero(~is_hit)
        new = followers = np.empty(0, dtype=np.int64)
        outputs = None  # the pending programs' outputs on the probe
        if len(pending):
            outputs = self.probe_outputs(batch.take(pending), scorer.n_jobs)
            prints = fingerprint_array(outputs, self.mantissa_bits, scorer.n_jobs)
            fkeys[pending] = prints
            in_table = functional.find(_zeros(len(prints)), _words(prints))
            seen = in_table >= 0
            found = pending[seen]
            structural.put(s_hi[found], s_lo[found], prints[seen], _zeros(len(found)))
            unseen = pending[~seen]
            first = np.zeros(len(unseen), dtype=bool)  # first of its function in the batch
            first[np.unique(fkeys[unseen], return_index=True)[1]] = True
            new, followers = unseen[first], unseen[~first]
            hits = np.concatenate([hits, found])
            hit_ids = np.concatenate([hit_ids, in_table[seen]])
            self.stats.functional_hits += len(found)
        functional.touch(hit_ids)  # what a lookup of the hits' keys with touch would do
        ids = hit_ids
        errors[hits] = functional.fvals[ids]
        order = new  # new functions first, then the hits the mode re-checks
        if self.mode != "standard" and len(hits):  # standard mode never re-checks a hit
            again = np.flatnonzero(self._rechecks(functional.ivals[ids]))
            order = np.concatenate([new, hits[again]])
        chosen = order if max_new is None else order[:max(0, max_new)]
        errors[new[len(chosen):]] = np.nan  # no budget left to score them
        if len(chosen):
            t0 = time.perf_counter()
            values = self._errors_from_probe(scorer.problem, outputs, pending, chosen)
            if values is None:
                chosen_programs = (programs.take(chosen) if isinstance(programs, Genomes)
                                   else [programs[i] for i in chosen.tolist()])
                values = self._evaluate(scorer, chosen_programs, batch.take(chosen))
            evaluating = time.perf_counter() - t0
            self.stats.evaluation_seconds += evaluating
            self.stats.evaluations += len(chosen)
            errors[chosen] = self._record(len(new), fkeys[chosen], values, errors[chosen])
            structural.put(s_hi[chosen], s_lo[chosen], fkeys[chosen], _zeros(len(chosen)))
        if len(followers):
            ids = functional.find(_zeros(len(followers)), _words(fkeys[followers]))
            done = followers[ids >= 0]
            errors[done] = functional.fvals[ids[ids >= 0]]
            self.stats.batch_duplicates += len(done)
            structural.put(s_hi[done], s_lo[done], fkeys[done], _zeros(len(done)))
        n_hits = int(np.count_nonzero(~np.isnan(errors))) - len(chosen)
        self.stats.hash_seconds += time.perf_counter() - start - evaluating
        return ScoreResult(errors, len(chosen), n_hits, fkeys)

    def _evaluate(self, scorer: Scorer, programs: Sequence[Program],
                  batch: CompiledBatch) -> np.ndarray:
        """Errors by the kernels, with the subtree store where it applies: the same
        errors bit for bit, with less work."""
        problem = scorer.problem
        if self._subtrees_of is not problem.train.XT:  # decided once per dataset
            self._subtrees_of = problem.train.XT
            self._subtrees = SubtreeStore.for_problem(problem, self.subtree_memory_mb)
        store = self._subtrees
        if store is None or not len(batch.codes):
            return scorer.evaluate_now(programs, batch)
        before = store.counts.copy()
        errors = problem.error_from_mse(store.mse(batch, problem.train.y, scorer.n_jobs))
        loads, nodes, stores, _ = (store.counts - before).tolist()
        self.stats.subtree_loads += loads
        self.stats.subtree_nodes_loaded += nodes
        self.stats.subtree_stores += stores
        self.stats.subtree_nodes_planned += len(batch.codes)
        return errors

    def _errors_from_probe(self, problem: Problem, outputs: np.ndarray | None,
                           pending: np.ndarray, chosen: np.ndarray) -> np.ndarray | None:
        """The errors of the chosen programs read off their probe outputs, when the
        probe holds every training row and all of them were probed (new functions, not
        re-checked hits): the same bits as evaluating them again (`Problem.
        error_from_outputs`), without the second kernel pass. None otherwise."""
        n = self._training_rows_first(problem)
        if not n or outputs is None:
            return None
        at = np.minimum(np.searchsorted(pending, chosen), len(pending) - 1)
        if not np.array_equal(pending[at], chosen):
            return None
        return problem.error_from_outputs(outputs[at, :n])

    # ---------------------------------------------------------------- modes
    def _rechecks(self, counts: np.ndarray) -> np.ndarray:
        """Which hits (their entries averaging `counts` evaluations) the mode wants
        evaluated anyway. One draw per hit, in order: the same draws as hit by hit."""
        if self.mode == "audit":
            return self.rng.random(len(counts)) < self.audit_rate
        if self.mode == "forgetful":
            return self.rng.random(len(counts)) < self.forget_p
        if self.mode == "averaging":
            return counts < self.average_k
        return np.zeros(len(counts), dtype=bool)

    def _record(self, n_new: int, fkeys: np.ndarray, values: np.ndarray,
                cached: np.ndarray) -> np.ndarray:
        """Store real evaluations, in order; return the errors to report for them. The
        first `n_new` are new functions, the rest re-checks of hits for the mode.

        Audits compare and store nothing, and new or forgotten functions each become a
        fresh entry, so without averaging the whole batch is one table call; a running
        mean reads the entry the previous evaluation of its function wrote, so
        averaging goes in order."""
        table = self._functional
        n_new = min(n_new, len(values))
        again = len(values) - n_new
        if self.mode == "audit" and again:
            gaps = ~_close_array(cached[n_new:], values[n_new:], self.audit_tolerance)
            self.stats.audited += again
            self.stats.false_merges += int(gaps.sum())
        if self.mode == "forgetful":
            self.stats.forgotten += again
        if self.mode != "averaging" or not again:
            fresh = len(values) if self.mode != "audit" else n_new
            self.stats.evicted += table.put(_zeros(fresh), _words(fkeys[:fresh]),
                                            np.ones(fresh, dtype=np.int64), values[:fresh])
            return values
        out = np.array(values, dtype=np.float64)
        for k, (fk, value) in enumerate(zip(fkeys.tolist(), values.tolist(), strict=True)):
            key = _words(np.array([fk], dtype=np.int64))
            if k >= n_new:  # a re-check: the running mean of its function
                e = table.find(_zeros(1), key)[0]
                mean, count = (value, 0) if e < 0 else (table.fvals[e], table.ivals[e])
                mean = _running_mean(float(mean), int(count), value)  # e < 0: evicted
                self.stats.evicted += table.put(_zeros(1), key, [count + 1], [mean],
                                                touch=False)
                self.stats.averaged += 1
                out[k] = mean
            else:  # a new function: a fresh entry, the most recent
                self.stats.evicted += table.put(_zeros(1), key, [1], [value])
        return out


def _zeros(n: int) -> np.ndarray:
    """The first words of n 64-bit keys."""
    return np.zeros(n, dtype=np.uint64)


def _words(keys: np.ndarray) -> np.ndarray:
    """int64 keys as the uint64 second words of the tables' keys."""
    return np.ascontiguousarray(keys, dtype=np.int64).view(np.uint64)


def _running_mean(mean: float, count: int, value: float) -> float:
    """The mean of `count` values and one more; an infinite error keeps the mean
    infinite (inf - inf would make it NaN)."""
    if math.isinf(value) or math.isinf(mean):
        return value + mean if count else value
    return mean + (value - mean) / (count + 1)


def _close_array(a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
    """Elementwise: equal, both infinite, or within `rtol` of the larger magnitude."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        near = np.abs(a - b) <= rtol * np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-300)
    return (a == b) | (np.isinf(a) & np.isinf(b)) | near
