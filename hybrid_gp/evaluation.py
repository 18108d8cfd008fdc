"""Batch evaluation: validation in Python, the work in one kernel call per batch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from .compiler import CompiledBatch, compile_batch
from .errors import DataError, UserError
from .kernels import interpreter as kern
from .program import Program
from .threads import run_kernel

#: Rows per kernel block (docs/kernels.md): large enough that a node's loop hides its
#: dispatch, small enough that the evaluation stack (depth x block) stays in L1/L2.
BLOCK_ROWS = 1024


def block_rows(n_rows: int) -> int:
    """Rows per block for n_rows: BLOCK_ROWS, or n_rows rounded up to 8 if fewer."""
    return max(8, min(BLOCK_ROWS, -(-n_rows // 8) * 8))


#: Below this many node evaluations (about 20 µs on one core) a batch runs on one
#: thread whatever n_jobs says: waking a second thread (2 µs with OpenMP) and sharing
#: out the programs costs more than it saves. Measured on 2 cores with the second free,
#: threads gave 1.5x at 40k node evaluations and 2x from 300k (docs/kernels.md).
MIN_THREADED_WORK = 32_768


def _threads_and_work(batch: CompiledBatch, n_rows: int, n_jobs: int) -> tuple[int, int]:
    """(threads the batch may use, its node evaluations): more than one only with
    enough work split over several programs or row blocks (threads.run_kernel then
    runs it threaded only while that is faster)."""
    work = len(batch.codes) * n_rows
    if n_jobs > 1 and (batch.n_programs > 1 or n_rows > BLOCK_ROWS) and \
            work >= MIN_THREADED_WORK:
        return min(n_jobs, numba.config.NUMBA_NUM_THREADS), work
    return 1, work


@dataclass(frozen=True)
class Metric:
    """A fitness metric computed from the kernels' mean squared error."""

    name: str
    lower_is_better: bool
    description: str

    def from_mse(self, mse: np.ndarray, y_var: float) -> np.ndarray:
        with np.errstate(all="ignore"):
            if self.name == "mse":
                return mse
            if self.name == "rmse":
                return np.sqrt(mse)
            nmse = mse / y_var if y_var > 0 else np.where(mse == 0, 0.0, np.inf)
            if self.name == "nmse":
                return nmse
            return np.where(np.isfinite(nmse), 1.0 - nmse, -np.inf)  # r2


METRICS = {
    m.name: m
    for m in [
        Metric("mse", True, "mean squared error"),
        Metric("rmse", True, "root mean squared error"),
        Metric("nmse", True, "mean squared error divided by the variance of y"),
        Metric("r2", False, "coefficient of determination, 1 - NMSE"),
    ]
}


def get_metric(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise UserError(f"unknown metric {name!r}; expected one of: "
                        f"{', '.join(METRICS)}") from None


def resolve_dtype(dtype: str | np.dtype | type) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise UserError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return dt


def resolve_jobs(n_jobs: int | None) -> int:
    """sklearn's convention: None or 1 -> 1, -1 -> all cores, -2 -> all but one."""
    if n_jobs is None:
        return 1
    if not isinstance(n_jobs, int | np.integer) or n_jobs == 0:
        raise UserError(f"n_jobs must be a non-zero integer, got {n_jobs!r}")
    cores = os.cpu_count() or 1
    jobs = int(n_jobs) if n_jobs > 0 else max(1, cores + 1 + int(n_jobs))
    return max(1, min(jobs, numba.config.NUMBA_NUM_THREADS))


def as_features(X: np.ndarray, dtype: np.dtype, allow_nan: bool = True) -> np.ndarray:
    """Validate X (n_rows, n_features) and return it feature-major: (n_features, n_rows)."""
    try:
        arr = np.asarray(X, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DataError(f"X must be a numeric array: {exc}") from None
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise DataError(f"X must be 2-D (n_rows, n_features), got shape {arr.shape}")
    if not allow_nan and not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.all(np.isfinite(arr), axis=1)))
        raise DataError(f"X has {bad} row(s) with NaN or inf; expected finite values")
    return np.ascontiguousarray(arr.T)


def _as_batch(programs: Sequence[Program] | Program | CompiledBatch) -> CompiledBatch:
    if isinstance(programs, CompiledBatch):
        return programs
    if isinstance(programs, Program):
        programs = [programs]
    if not all(isinstance(p, Program) for p in programs):
        raise UserError("programs must be a sequence of hybrid_gp.Program")
    return compile_batch(programs)


def _check_features(batch: CompiledBatch, XT: np.ndarray) -> None:
    if batch.n_features > XT.shape[0]:
        raise DataError(f"a program uses x{batch.n_features - 1} but X has only "
                        f"{XT.shape[0]} column(s)")


def evaluate_features(batch: CompiledBatch, XT: np.ndarray, n_jobs: int = 1,
                      out: np.ndarray | None = None) -> np.ndarray:
    """Kernel call on feature-major XT; returns (n_programs, n_rows) in XT's dtype.

    XT is float64 or float32 (the kernels compute in that dtype; exp, log, sin, cos,
    tanh and pow round a float64 result). n_jobs > 1 shares programs, or for few
    programs row blocks, among that many threads; the result is the same. out, if
    given, is a C-contiguous array of that shape and dtype to write into (it saves the
    page faults of a fresh large array).
    """
    _check_features(batch, XT)
    shape = (batch.n_programs, XT.shape[1])
    if out is None:
        out = np.empty(shape, dtype=XT.dtype)
    elif out.shape != shape or out.dtype != XT.dtype or not out.flags.c_contiguous:
        raise DataError(f"out must be a C-contiguous {XT.dtype} array of shape {shape}, "
                        f"got {out.dtype} {out.shape}")
    if batch.n_programs == 0 or XT.shape[1] == 0:
        return out
    arrays = batch.arrays(XT.dtype)
    block = block_rows(XT.shape[1])
    run_kernel("evaluate", *_threads_and_work(batch, XT.shape[1], n_jobs),
               lambda: kern.eval_batch_serial(arrays, XT, out, block, batch.depth,
                                              batch.kernel_ext),
               lambda workers: kern.eval_batch_parallel(arrays, XT, out, block, batch.depth,
                                                        batch.kernel_ext, workers))
    return out


def mse_features(batch: CompiledBatch, XT: np.ndarray, y: np.ndarray,
                 n_jobs: int = 1) -> np.ndarray:
    """Mean squared error per program (inf where any output is not finite).

    y is float64; errors are summed in float64 whatever XT's dtype, in the same order
    for any n_jobs, so the result does not depend on it.
    """
    _check_features(batch, XT)
    out = np.empty(batch.n_programs, dtype=np.float64)
    if batch.n_programs == 0:
        return out
    if XT.shape[1] == 0:
        raise DataError("cannot score programs on zero rows")
    arrays = batch.arrays(XT.dtype)
    block = block_rows(XT.shape[1])
    run_kernel("mse", *_threads_and_work(batch, XT.shape[1], n_jobs),
               lambda: kern.mse_batch_serial(arrays, XT, y, out, block, batch.depth,
                                             batch.kernel_ext),
               lambda workers: kern.mse_batch_parallel(arrays, XT, y, out, block, batch.depth,
                                                       batch.kernel_ext, workers))
    return out


def mse_from_outputs(outputs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """What `mse_features` gives, from outputs already computed on y's rows
    (outputs[:, :len(y)], float64): bit for bit, since the sums are the kernel's."""
    n_rows = len(y)
    if outputs.ndim != 2 or outputs.shape[1] < n_rows or not n_rows:
        raise DataError(f"outputs must be (n_programs, >= {n_rows}) for {n_rows} target "
                        f"values, got shape {outputs.shape}")
    out = np.empty(outputs.shape[0], dtype=np.float64)
    if outputs.shape[0]:
        kern.mse_of_outputs(np.ascontiguousarray(outputs, dtype=np.float64), n_rows,
                            np.ascontiguousarray(y, dtype=np.float64), block_rows(n_rows),
                            out)
    return out


def evaluate(programs: Sequence[Program] | Program, X: np.ndarray, n_jobs: int | None = 1,
             dtype: str = "float64") -> np.ndarray:
    """Outputs of every program on every row of X: shape (n_programs, n_rows).

    One kernel call for the whole batch. NaN and inf inputs are allowed and propagate
    as docs/semantics.md says.
    """
    dt = resolve_dtype(dtype)
    return evaluate_features(_as_batch(programs), as_features(X, dt), resolve_jobs(n_jobs))


def as_target(y: np.ndarray, n_rows: int) -> np.ndarray:
    try:
        arr = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"y must be numeric: {exc}") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"y must be 1-D, got shape {arr.shape}")
    if len(arr) != n_rows:
        raise DataError(f"X has {n_rows} rows but y has {len(arr)}; expected the same number")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"y has {int(np.count_nonzero(~np.isfinite(arr)))} NaN or inf "
                        f"value(s); expected finite values")
    return np.ascontiguousarray(arr)


def fitness(programs: Sequence[Program] | Program, X: np.ndarray, y: np.ndarray,
            metric: str = "mse", n_jobs: int | None = 1, dtype: str = "float64") -> np.ndarray:
    """Fitness of every program on (X, y): shape (n_programs,).

    metric: mse, rmse, nmse (lower is better) or r2 (higher is better). A program with
    any non-finite output scores inf (or -inf for r2).
    """
    m = get_metric(metric)
    XT = as_features(X, resolve_dtype(dtype), allow_nan=False)  # scoring needs real data
    yy = as_target(y, XT.shape[1])
    mse = mse_features(_as_batch(programs), XT, yy, resolve_jobs(n_jobs))
    return m.from_mse(mse, float(np.var(yy)))
