"""Unified functional hashing (after Gillard et al. 2023) and the equivalence cache.

A program's *function* is keyed by its outputs on a fixed probe: outputs are rounded to
nearest at `mantissa_bits` of mantissa, -0.0 becomes 0.0, NaN and +-inf become fixed
tokens, and the bytes are hashed with sha256 to a 64-bit int. The same algorithm keys
a GP tree, an LLM-written expression or any Python callable, so equivalent candidates
meet in one cache however they are written.

Before the numeric layer, a structural key (kernels/structural.py: commutative
arguments ordered, constant subtrees folded) catches rewrites of the same tree exactly
and for free. A hit reuses the known fitness and costs no evaluation.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .compiler import CompiledBatch, compile_batch
from .errors import ConfigError, DataError
from .evaluation import as_features, evaluate_features
from .kernels import opcodes as oc
from .kernels.structural import structural_keys
from .program import Program

if TYPE_CHECKING:
    from .problem import Problem
    from .search.scoring import Scorer, ScoreResult

DEFAULT_MANTISSA_BITS = 24
NAN_TOKEN = np.int64(0x7FF8_DEAD_BEEF_0001)
MODES = ("standard", "averaging", "forgetful", "audit")


# ---------------------------------------------------------------------- fingerprints


def quantise(values: np.ndarray, mantissa_bits: int = DEFAULT_MANTISSA_BITS) -> np.ndarray:
    """Round to nearest at `mantissa_bits` bits of mantissa (the leading bit counted, so
    53 keeps a double exactly); return int64 bit patterns.

    Equal rounded values give equal patterns (0.9999999999999999 and 1.0 agree at 24
    bits); -0.0 maps to 0.0; every NaN maps to one token; +-inf keep their own patterns.
    """
    if not 1 <= mantissa_bits <= 53:
        raise ConfigError(f"mantissa_bits must be in 1..53, got {mantissa_bits}")
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(all="ignore"):
        m, e = np.frexp(v)
        rounded = np.ldexp(np.round(m * 2.0**mantissa_bits), e - mantissa_bits)
    rounded = np.where(np.isfinite(v), rounded, v) + 0.0  # + 0.0 turns -0.0 into 0.0
    bits = rounded.view(np.int64)
    return np.where(np.isnan(v), NAN_TOKEN, bits)


def fingerprint_rows(outputs: np.ndarray, mantissa_bits: int = DEFAULT_MANTISSA_BITS
                     ) -> list[int]:
    """One 64-bit key per row of outputs (n_programs, n_probe)."""
    q = np.ascontiguousarray(quantise(np.atleast_2d(outputs), mantissa_bits))
    data, width = memoryview(q.tobytes()), q.shape[1] * 8  # row k: data[k*width:][:width]
    sha256, from_bytes = hashlib.sha256, int.from_bytes
    return [from_bytes(sha256(data[a:a + width]).digest()[:8], "little", signed=True)
            for a in range(0, len(q) * width, width)]


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


def structural_key_array(batch: CompiledBatch) -> np.ndarray:
    """(n_programs, 2) uint64 canonical keys (see kernels/structural.py)."""
    out = np.empty((batch.n_programs, 2), dtype=np.uint64)
    if batch.n_programs:
        structural_keys(batch.codes, batch.code_offsets, batch.consts, batch.const_offsets,
                        oc.ARITY, oc.COMMUTATIVE, out)
    return out


def make_probe(problem: Problem, size: int = 64, seed: int = 0,
               train_share: float = 0.5) -> np.ndarray:
    """Probe inputs (size, n_features): some of the problem's training rows (all of them
    when they fit, which rules out false merges on the training data; rows holding an
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
    evaluation_seconds: float = 0.0
    evicted: int = 0

    @property
    def hits(self) -> int:
        return self.structural_hits + self.functional_hits + self.batch_duplicates

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0

    @property
    def seconds_saved(self) -> float:
        per = self.evaluation_seconds / self.evaluations if self.evaluations else 0.0
        return self.hits * per

    def as_dict(self) -> dict[str, Any]:
        return {
            "lookups": self.lookups, "hits": self.hits, "hit_rate": round(self.hit_rate, 6),
            "structural_hits": self.structural_hits, "functional_hits": self.functional_hits,
            "batch_duplicates": self.batch_duplicates, "audited": self.audited,
            "false_merges": self.false_merges, "averaged": self.averaged,
            "forgotten": self.forgotten, "evicted": self.evicted,
        }


@dataclass
class _Entry:
    error: float
    count: int = 1  # evaluations folded into `error` (averaging mode)


@dataclass
class EquivalenceCache:
    """Fitness by function: structural key first, then the probe fingerprint.

    mode: "standard" (a hit reuses the fitness), "averaging" (noisy fitness: a hit is
    re-evaluated until k evaluations are averaged), "forgetful" (a hit is dropped with
    probability `forget_p` and re-evaluated), "audit" (a fraction `audit_rate` of hits
    is evaluated anyway; a false merge is a fitness that differs by more than
    `audit_tolerance`, relative). Memory is bounded: least recently used entries go.
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
        self._structural: OrderedDict[int, int] = OrderedDict()  # 128-bit key -> fk
        self._functional: OrderedDict[int, _Entry] = OrderedDict()

    # ---------------------------------------------------------------- pickling
    def __getstate__(self) -> dict[str, Any]:
        """Compact state for checkpoints: the tables as arrays, in LRU order."""
        state = {k: v for k, v in self.__dict__.items()
                 if k not in ("_structural", "_functional")}
        fk = np.fromiter(self._functional.keys(), dtype=np.int64, count=len(self._functional))
        entries = list(self._functional.values())
        state["_functional_arrays"] = (
            fk, np.array([e.error for e in entries], dtype=np.float64),
            np.array([e.count for e in entries], dtype=np.int64))
        mask = (1 << 64) - 1
        keys = list(self._structural.keys())
        sk = np.array([[k >> 64, k & mask] for k in keys], dtype=np.uint64).reshape(-1, 2)
        state["_structural_arrays"] = (
            sk, np.fromiter(self._structural.values(), dtype=np.int64,
                            count=len(self._structural)))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        fk, err, count = state.pop("_functional_arrays")
        sk, sv = state.pop("_structural_arrays")
        self.__dict__.update(state)
        self._functional = OrderedDict(
            (int(k), _Entry(float(e), int(c))) for k, e, c in zip(fk, err, count, strict=True))
        self._structural = OrderedDict(
            (a << 64 | b, v) for (a, b), v in zip(sk.tolist(), sv.tolist(), strict=True))

    # ---------------------------------------------------------------- lookups
    def fingerprints(self, batch: CompiledBatch, n_jobs: int = 1) -> list[int]:
        """Functional keys of a compiled batch: one kernel call on the probe."""
        outputs = evaluate_features(batch, self.probe_XT, n_jobs)
        return fingerprint_rows(outputs, self.mantissa_bits)

    def __len__(self) -> int:
        return len(self._functional)

    def keys_of(self, programs: Sequence[Program], n_jobs: int = 1) -> list[int]:
        """The functional key `score` would give each program, without scoring or
        counting anything: a known structure's key from the table, the rest from one
        kernel call on the probe."""
        if not programs:
            return []
        batch = compile_batch(programs)
        skeys = _table_keys(batch)
        keys = [self._structural.get(sk) for sk in skeys]
        unknown = [i for i, k in enumerate(keys) if k is None]
        if unknown:
            for i, fk in zip(unknown, self.fingerprints(batch.take(unknown), n_jobs),
                             strict=True):
                keys[i] = fk
        return keys  # type: ignore[return-value]

    def score(self, scorer: Scorer, programs: Sequence[Program],
              max_new: int | None = None, batch: CompiledBatch | None = None
              ) -> ScoreResult:
        """Errors for `programs`, evaluating only functions the cache has not seen (and
        the hits the mode wants re-checked). At most `max_new` real evaluations;
        programs beyond that stay NaN. `batch`, when given, is `programs` compiled.

        Runs once per generation over hundreds of children: the per-child work is kept
        to list comprehensions and bound dict methods."""
        from .search.scoring import ScoreResult

        n = len(programs)
        errors = np.full(n, np.nan)
        if not n:
            return ScoreResult(errors, 0, 0, [])
        self.stats.lookups += n
        structural, functional = self._structural, self._functional
        if batch is None:
            batch = compile_batch(programs)
        skeys = _table_keys(batch)
        known = [structural.get(sk) for sk in skeys]
        hits = [i for i, fk in enumerate(known) if fk is not None and fk in functional]
        pending = [i for i, fk in enumerate(known) if fk is None or fk not in functional]
        fkeys: list[int] = known  # type: ignore[assignment]  # pending ones filled below
        touch = structural.move_to_end
        for i in hits:
            touch(skeys[i])
        self.stats.structural_hits += len(hits)
        reason: dict[int, str] = {}  # index -> why it is evaluated
        followers: list[int] = []  # same function as an earlier program of this batch
        if pending:
            prints = self.fingerprints(batch.take(pending), scorer.n_jobs)
            new_functions: set[int] = set()
            n_structural = len(hits)
            for i, fk in zip(pending, prints, strict=True):
                fkeys[i] = fk
                if fk in functional:
                    hits.append(i)
                    self._remember_structure(skeys[i], fk)
                elif fk in new_functions:
                    followers.append(i)
                else:
                    new_functions.add(fk)
                    reason[i] = "new"
            self.stats.functional_hits += len(hits) - n_structural
        entries = [functional[fkeys[i]] for i in hits]
        touch = functional.move_to_end
        for i in hits:
            touch(fkeys[i])
        if hits:
            errors[hits] = [e.error for e in entries]
        if self.mode != "standard":  # standard mode never re-checks a hit
            for i, entry in zip(hits, entries, strict=True):
                why = self._recheck(entry)
                if why:
                    reason[i] = why
        order = [i for i in reason if reason[i] == "new"] + \
                [i for i in reason if reason[i] != "new"]
        chosen = order if max_new is None else order[:max(0, max_new)]
        for i in order[len(chosen):]:
            if reason[i] == "new":
                errors[i] = np.nan  # no budget left to score it
        if chosen:
            t0 = time.perf_counter()
            values = scorer.evaluate_now([programs[i] for i in chosen], batch.take(chosen))
            self.stats.evaluation_seconds += time.perf_counter() - t0
            self.stats.evaluations += len(chosen)
            for i, v in zip(chosen, values.tolist(), strict=True):
                errors[i] = self._record(reason[i], fkeys[i], v, errors[i])
                self._remember_structure(skeys[i], fkeys[i])
        for i in followers:
            entry = functional.get(fkeys[i])
            if entry is not None:
                errors[i] = entry.error
                self.stats.batch_duplicates += 1
                self._remember_structure(skeys[i], fkeys[i])
        n_hits = int(np.count_nonzero(~np.isnan(errors))) - len(chosen)
        return ScoreResult(errors, len(chosen), n_hits, fkeys)

    # ---------------------------------------------------------------- modes
    def _recheck(self, entry: _Entry) -> str | None:
        """Whether the mode wants this hit evaluated anyway, and why."""
        if self.mode == "audit" and self.rng.random() < self.audit_rate:
            return "audit"
        if self.mode == "forgetful" and self.rng.random() < self.forget_p:
            return "forget"
        if self.mode == "averaging" and entry.count < self.average_k:
            return "average"
        return None

    def _record(self, why: str, fk: int, value: float, cached: float) -> float:
        """Store one real evaluation; return the error to report for that program."""
        if why == "audit":
            self.stats.audited += 1
            if not _close(cached, value, self.audit_tolerance):
                self.stats.false_merges += 1
            return value
        if why == "average":
            entry = self._functional.get(fk)
            if entry is None:  # evicted by this very batch: start its mean afresh
                entry = self._functional[fk] = _Entry(value, 0)
            entry.error += (value - entry.error) / (entry.count + 1)
            entry.count += 1
            self.stats.averaged += 1
            return entry.error
        if why == "forget":
            self.stats.forgotten += 1
        self._functional[fk] = _Entry(value)
        self._functional.move_to_end(fk)
        while len(self._functional) > self.capacity:
            self._functional.popitem(last=False)
            self.stats.evicted += 1
        return value

    def _remember_structure(self, sk: int, fk: int) -> None:
        self._structural[sk] = fk
        self._structural.move_to_end(sk)
        while len(self._structural) > self.capacity:
            self._structural.popitem(last=False)


def _table_keys(batch: CompiledBatch) -> list[int]:
    """The structural keys of a batch as the 128-bit ints the structural table holds."""
    return [a << 64 | b for a, b in structural_key_array(batch).tolist()]


def _close(a: float, b: float, rtol: float) -> bool:
    if a == b or (np.isinf(a) and np.isinf(b)):
        return True
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-300)
