"""Boolean problems: the k-multiplexer and even-n-parity over all 2^n input cases.

Fitness is hits over every case; the error the engine minimises is the number of
misses, so 0 means solved. Programs run on packed bits (kernels/boolean.py), 64 cases
per machine operation. Case c gives input k the value of bit k of c.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from ..compiler import CompiledBatch
from ..errors import ProblemError
from ..evaluation import resolve_jobs
from ..grammar import load_grammar
from ..kernels import boolean as kern
from ..kernels import opcodes as oc
from ..problem import Budget, Dataset, Problem, ProblemKind, read_budget

MAX_INPUTS = 24  # 16M cases: still one packed table of 2 MiB per program


def all_cases(n_inputs: int) -> np.ndarray:
    """(2^n, n) array of 0.0/1.0: row c holds the bits of c, input 0 the lowest."""
    c = np.arange(1 << n_inputs, dtype=np.int64)[:, None]
    return ((c >> np.arange(n_inputs)) & 1).astype(np.float64)


def multiplexer(X: np.ndarray, address_bits: int) -> np.ndarray:
    """Inputs 0..k-1 are the address (input 0 lowest); output = data input `address`."""
    bits = X.astype(np.int64)
    address = bits[:, :address_bits] @ (1 << np.arange(address_bits))
    return bits[np.arange(len(bits)), address_bits + address].astype(np.float64)


def even_parity(X: np.ndarray) -> np.ndarray:
    """1 where an even number of inputs are 1 (Koza's even-n-parity)."""
    return (X.astype(np.int64).sum(axis=1) % 2 == 0).astype(np.float64)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Truth values (n_cases,) -> uint64 words, case c in word c // 64, bit c % 64."""
    flat = np.asarray(bits) != 0
    n_words = max(1, -(-len(flat) // 64))
    padded = np.zeros(n_words * 64, dtype=bool)
    padded[: len(flat)] = flat
    return np.packbits(padded, bitorder="little").view("<u8").astype(np.uint64)


@dataclass(frozen=True)
class PackedCases(Dataset):
    """Every case of a truth table, as float rows (for probes and the float
    interpreter) and as packed words (for the fitness kernel)."""

    words: np.ndarray  # (n_inputs, n_words) uint64
    target: np.ndarray  # (n_words,) uint64
    last_mask: np.uint64  # valid bits of the last word

    @classmethod
    def from_truth_table(cls, X: np.ndarray, y: np.ndarray) -> PackedCases:
        base = Dataset.from_arrays(X, y)
        words = np.ascontiguousarray(np.stack([pack_bits(col) for col in base.XT]))
        n = base.n_rows
        tail = n % 64
        mask = np.uint64((1 << tail) - 1) if tail else kern.ONES
        return cls(base.XT, base.y, words, pack_bits(base.y), mask)


@dataclass(frozen=True)
class BooleanProblem(Problem):
    """A Boolean function learnt from its full truth table; error = misses."""

    kind: str = "boolean"
    metric: str = "misses"

    def error(self, batch: CompiledBatch, n_jobs: int = 1,
              data: Dataset | None = None) -> np.ndarray:
        """Cases each program gets wrong, from the packed-bit kernel."""
        cases = data or self.train
        if not isinstance(cases, PackedCases):
            raise ProblemError(f"problem {self.name!r}: Boolean fitness needs PackedCases "
                               f"data, got {type(cases).__name__}")
        return packed_misses(batch, cases, n_jobs)

    def exhaustive_inputs(self) -> np.ndarray:
        """Every case of the truth table."""
        return self.train.X

    def hits(self, batch: CompiledBatch, n_jobs: int = 1) -> np.ndarray:
        """Cases each program gets right (the classic fitness)."""
        return self.n_cases - self.error(batch, n_jobs)


def check_logical(batch: CompiledBatch) -> None:
    """Refuse batches with non-logical operations (the packed kernel has only bits)."""
    used = set(np.unique(batch.codes[batch.codes >= 0]).tolist())
    bad = sorted(used - set(kern.LOGICAL_OPS))
    if bad:
        names = ", ".join(oc.NAMES[c] for c in bad)
        raise ProblemError(f"Boolean problems take logical operations only (and, or, not, "
                           f"nand, nor, xor, if); the programs use {names}")


def packed_misses(batch: CompiledBatch, cases: PackedCases, n_jobs: int = 1) -> np.ndarray:
    """Misses per program of a compiled batch on packed cases (one kernel call)."""
    check_logical(batch)
    if batch.n_features > cases.words.shape[0]:
        raise ProblemError(f"a program uses x{batch.n_features - 1} but the problem has "
                           f"{cases.words.shape[0]} inputs")
    out = np.empty(batch.n_programs, dtype=np.uint64)
    if batch.n_programs:
        arrays = batch.arrays(np.dtype(np.float64))
        args = (arrays, cases.words, cases.target, cases.last_mask, batch.depth, out)
        jobs = resolve_jobs(n_jobs)
        if jobs > 1 and batch.n_programs > 1:
            numba.set_num_threads(jobs)
            kern.misses_batch_parallel(*args)
        else:
            kern.misses_batch_serial(*args)
    return out.astype(np.float64)


# ---------------------------------------------------------------------- suite specs

_FUNCTIONS = ("multiplexer", "even-parity")


def _address_bits(n_inputs: int, where: str) -> int:
    for k in range(1, 6):
        if k + (1 << k) == n_inputs:
            return k
    raise ProblemError(f"{where}: field 'inputs': a multiplexer has k + 2^k inputs (3, 6, "
                       f"11, 20, 37), got {n_inputs}")


def build_boolean(d: Mapping[str, Any], *, name: str, suite: str,
                  where: str) -> BooleanProblem:
    """A BooleanProblem from a suite spec: `function` and `inputs`."""
    function = d.get("function")
    if function not in _FUNCTIONS:
        raise ProblemError(f"{where}: field 'function': expected one of {list(_FUNCTIONS)}, "
                           f"got {function!r}")
    n = d.get("inputs")
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_INPUTS:
        raise ProblemError(f"{where}: field 'inputs': expected an integer in 1..{MAX_INPUTS}, "
                           f"got {n!r}")
    X = all_cases(n)
    if function == "multiplexer":
        k = _address_bits(n, where)
        y = multiplexer(X, k)
        names = tuple(f"a{i}" for i in range(k)) + tuple(f"d{i}" for i in range(1 << k))
        text = (f"{n}-multiplexer: address x0..x{k - 1}, data x{k}..x{n - 1}; "
                f"{1 << n} cases")
    else:
        y = even_parity(X)
        names = tuple(f"b{i}" for i in range(n))
        text = f"even-{n}-parity: 1 when an even number of the {n} inputs are 1; {1 << n} cases"
    for key in ("train", "test"):
        if key in d:
            raise ProblemError(f"{where}: field {key!r}: Boolean problems use every case of "
                               f"the truth table; remove it")
    budget = read_budget(d.get("budget", {}), where)
    return BooleanProblem(
        name=name, grammar=load_grammar(d.get("grammar", "boolean")),
        train=PackedCases.from_truth_table(X, y), suite=suite, variables=names,
        description=d.get("description", text), source=d.get("source", ""),
        budget=budget if "budget" in d else Budget(target_error=0.0),
        domain=((0.0, 1.0),) * n,
    )


KIND = ProblemKind("boolean", frozenset({"function", "inputs"}), build_boolean)
