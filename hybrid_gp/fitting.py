"""Constant fitting (Levenberg–Marquardt) and linear scaling y ≈ a + b·f(x).

Two paths over the same forward-mode Jacobian kernel (kernels/jacobian.py):
- `fit_constants`: one program, scipy.optimize.least_squares(method="lm") with the
  kernel Jacobian; tight tolerances, for users and final polishing.
- `fit_batch`: a share of a population in one Numba call (kernels.jacobian.lm_batch_*),
  a few LM steps each, no Python per step; what the search runs every generation.
A fitted program is a new Program (new constants, so a new functional-hash key); it is
returned only when it lowers the training MSE. Only regression problems are fitted.
See docs/fitting.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np
from scipy.optimize import least_squares

from .compiler import CompiledBatch, compile_batch
from .errors import ConfigError, DataError
from .evaluation import as_features, as_target, get_metric, mse_features, resolve_jobs
from .genomes import Genomes
from .grammar import Grammar
from .kernels import jacobian as kj
from .kernels import scaling as ks
from .problem import Problem
from .program import CONST, Program, with_constants

BLOCK_ROWS = 256  # rows per block, as in evaluation.py
# LM computes the parts of a program without constants once, not once a pass
# (kernels.jacobian.fold_constant_free): the same fit to the bit, in less time.
FOLD_CONSTANT_FREE = True


# ---------------------------------------------------------------------- kernels' faces


def _batch(programs: Sequence[Program] | Program | CompiledBatch) -> CompiledBatch:
    if isinstance(programs, CompiledBatch):
        return programs
    return compile_batch([programs] if isinstance(programs, Program) else programs)


def _check(batch: CompiledBatch, XT: np.ndarray) -> None:
    if batch.n_features > XT.shape[0]:
        raise DataError(f"a program uses x{batch.n_features - 1} but X has only "
                        f"{XT.shape[0]} column(s)")


def jacobian_features(programs: Sequence[Program] | CompiledBatch,
                      XT: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outputs (n_programs, n_rows) and d output / d constant (n_consts, n_rows) on
    feature-major float64 XT; program p's rows are const_offsets[p]:const_offsets[p+1]."""
    batch = _batch(programs)
    XT = np.ascontiguousarray(XT, dtype=np.float64)
    _check(batch, XT)
    values = np.empty((batch.n_programs, XT.shape[1]))
    JT = np.empty((len(batch.consts), XT.shape[1]))
    if batch.n_programs and XT.shape[1]:
        kj.jacobian_batch(batch.arrays(np.float64), XT, values, JT, BLOCK_ROWS, batch.depth)
    return values, JT


def program_jacobian(program: Program, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outputs (n_rows,) of one program on X (n_rows, n_features) and the derivatives
    of each output with respect to each of its constants, (n_rows, n_consts)."""
    values, JT = jacobian_features([program], as_features(X, np.dtype(np.float64)))
    return values[0], JT.T


def fit_scaling(programs: Sequence[Program] | CompiledBatch, XT: np.ndarray,
                   y: np.ndarray, n_jobs: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per program, (a, b, MSE of a + b·f(x) against y) on feature-major XT; NaN, NaN,
    inf for programs with non-finite outputs. One pass over the rows."""
    batch = _batch(programs)
    _check(batch, XT)
    out = np.empty((batch.n_programs, 3))
    if batch.n_programs == 0:
        return out[:, 0], out[:, 1], out[:, 2]
    if XT.shape[1] == 0:
        raise DataError("cannot scale programs on zero rows")
    y = np.ascontiguousarray(y, dtype=np.float64)
    arrays = batch.arrays(XT.dtype)
    n_jobs = resolve_jobs(n_jobs)  # never more threads than numba was started with
    if n_jobs > 1 and batch.n_programs > 1:
        numba.set_num_threads(n_jobs)
        ks.scale_batch_parallel(arrays, XT, y, out, BLOCK_ROWS, batch.depth,
                                batch.kernel_ext)
    else:
        ks.scale_batch_serial(arrays, XT, y, out, BLOCK_ROWS, batch.depth, batch.kernel_ext)
    return out[:, 0], out[:, 1], out[:, 2]


# ---------------------------------------------------------------------- a + b * f


@lru_cache(maxsize=64)
def _scaling_codes(grammar: Grammar, type_: str) -> tuple[int, int] | None:
    """Positions of add and mul over `type_` in the grammar, if constants of that type
    exist too; None otherwise."""
    if not (grammar.constants.enabled and grammar.constants.type == type_):
        return None
    found = {}
    for i, p in enumerate(grammar.primitives):
        if p.op in ("add", "mul") and p.arg_types == (type_, type_) and p.ret_type == type_:
            found.setdefault(p.op, i)
    if len(found) < 2:
        return None
    return found["add"], found["mul"]


def can_scale(grammar: Grammar) -> bool:
    """Whether programs of this grammar can be written as a + b * program."""
    return _scaling_codes(grammar, grammar.output_type) is not None


def _need_scaling(grammar: Grammar) -> tuple[int, int]:
    codes = _scaling_codes(grammar, grammar.output_type)
    if codes is None:
        raise ConfigError(f"linear scaling needs add, mul and constants of type "
                          f"{grammar.output_type!r} in the grammar; grammar {grammar.name!r} "
                          f"lacks some of them")
    return codes


def is_scaled(program: Program) -> bool:
    """Whether the program already reads `a + b * f` (the shape `scaled_program` builds),
    so its first two constants are a scale of their own."""
    codes = _scaling_codes(program.grammar, program.grammar.output_type)
    c = program.codes
    return (codes is not None and len(c) > 4 and c[0] == codes[0] and c[1] == CONST
            and c[2] == codes[1] and c[3] == CONST)


def scaled_program(program: Program, a: float, b: float) -> Program:
    """The program `a + b * program` in its own grammar. Raises ConfigError when the
    grammar has no add, mul or constants of its output type."""
    add, mul = _need_scaling(program.grammar)
    if not (np.isfinite(a) and np.isfinite(b)):
        raise ValueError(f"a and b must be finite, got {a}, {b}")
    return Program._trusted(program.grammar, (add, CONST, mul, CONST, *program.codes),
                            (float(a), float(b), *program.consts))


# ---------------------------------------------------------------------- one program


def fit_constants(program: Program, X: np.ndarray, y: np.ndarray, *, max_iter: int = 100,
                  linear_scaling: bool = False, tol: float = 1e-12) -> tuple[Program, float]:
    """Least-squares constants for one program on (X, y): (program, its MSE).

    scipy's Levenberg–Marquardt ("trf" when there are fewer rows than parameters) with
    the kernel Jacobian, at most `max_iter` residual evaluations. With linear_scaling
    the result reads a + b * program (unless it already has that shape). The input
    program comes back unchanged when nothing lowers the MSE, or when it has no
    constants and no scaling is asked for.
    """
    XT = as_features(X, np.dtype(np.float64))
    yy = as_target(y, XT.shape[1])
    batch = compile_batch([program])
    _check(batch, XT)
    mse0 = float(mse_features(batch, XT, yy)[0])
    scale = linear_scaling and not is_scaled(program)
    if scale:
        _need_scaling(program.grammar)
    n_c = len(program.consts)
    if (n_c == 0 and not scale) or not np.isfinite(mse0):
        return program, mse0
    codes, code_off, _, const_off, arity = batch.arrays(np.float64)
    n_rows = XT.shape[1]
    values, JT = np.empty((1, n_rows)), np.empty((n_c, n_rows))
    memo: dict[str, np.ndarray] = {}

    def run(x: np.ndarray) -> None:
        if "x" not in memo or not np.array_equal(memo["x"], x):
            kj.jacobian_batch((codes, code_off, np.ascontiguousarray(x[:n_c]), const_off,
                               arity), XT, values, JT, BLOCK_ROWS, batch.depth)
            memo["x"] = x.copy()

    def residuals(x: np.ndarray) -> np.ndarray:
        run(x)
        f = values[0]
        return (x[n_c] + x[n_c + 1] * f) - yy if scale else f - yy

    def jac(x: np.ndarray) -> np.ndarray:
        run(x)
        J = JT.T * x[n_c + 1] if scale else JT.T.copy()
        if scale:
            J = np.column_stack([J, np.ones(n_rows), values[0]])
        J[~np.isfinite(J)] = 0.0
        return J

    x0 = np.array(program.consts, dtype=np.float64)
    if scale:
        a, b, _ = (v[0] for v in linear_scaling_of(batch, XT, yy))
        x0 = np.concatenate([x0, [a, b]])
    method = "lm" if n_rows >= len(x0) else "trf"
    with np.errstate(all="ignore"):
        sol = least_squares(residuals, x0, jac=jac, method=method, max_nfev=max_iter,
                            ftol=tol, xtol=tol, gtol=tol)
    if not np.all(np.isfinite(sol.x)):
        return program, mse0
    fitted = with_constants(program, sol.x[:n_c])
    if scale:
        fitted = scaled_program(fitted, sol.x[n_c], sol.x[n_c + 1])
    mse = float(mse_features(compile_batch([fitted]), XT, yy)[0])
    return (fitted, mse) if mse < mse0 else (program, mse0)


def linear_scaling_of(batch: CompiledBatch, XT: np.ndarray,
                      y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`fit_scaling` with finite (a, b): 0 and 1 where the outputs are not finite."""
    a, b, mse = fit_scaling(batch, XT, y)
    bad = ~(np.isfinite(a) & np.isfinite(b))
    return np.where(bad, 0.0, a), np.where(bad, 1.0, b), mse


# ---------------------------------------------------------------------- a population


@dataclass(frozen=True)
class FitResult:
    """What `fit_batch` did. `programs` is the input (a list, or Genomes when given
    Genomes) with the improved programs replaced; `improved` their indices and
    `errors` their new errors in the problem's units (Problem.error: lower is better);
    `tried` the indices that were fitted; `passes` the passes over the training rows
    spent (a Jacobian pass counts as one)."""

    programs: Sequence[Program]
    improved: np.ndarray
    errors: np.ndarray
    tried: np.ndarray
    passes: int


def fit_batch(programs: Sequence[Program], problem: Problem,
              indices: Sequence[int] | np.ndarray | None = None, *, max_iter: int = 10,
              linear_scaling: bool = False, max_size: int | None = None,
              max_depth: int | None = None, n_jobs: int | None = 1) -> FitResult:
    """Fit the constants of programs[indices] (all when None) on the problem's training
    data with at most `max_iter` LM steps each, in one kernel call.

    Programs without constants are skipped unless linear_scaling is on; with it, a
    program is wrapped as a + b * program unless it already has that shape or the
    wrapper would break max_size / max_depth (then only its constants are fitted).
    Problems other than regression come back unchanged. Raises ConfigError when
    linear_scaling is asked of a grammar that cannot express it. Genomes come back as
    Genomes (only the chosen programs are ever made into Program objects).
    """
    out = programs if isinstance(programs, Genomes) else list(programs)
    none = np.empty(0, dtype=np.int64)
    if problem.kind != "regression":
        return FitResult(out, none, np.empty(0), none, 0)
    if linear_scaling:
        _need_scaling(problem.grammar)
    chosen = range(len(out)) if indices is None else dict.fromkeys(int(i) for i in indices)
    todo, scale = [], []
    for i in chosen:
        p = out[i]
        s = (linear_scaling and not is_scaled(p) and can_scale(p.grammar)
             and (max_size is None or p.size + 4 <= max_size)
             and (max_depth is None or p.depth + 2 <= max_depth))
        if p.consts or s:
            todo.append(i)
            scale.append(s)
    if not todo:
        return FitResult(out, none, np.empty(0), none, 0)
    train = problem.train
    batch = compile_batch([out[i] for i in todo])
    _check(batch, train.XT)
    flags = np.array(scale, dtype=np.bool_)
    counts = np.diff(batch.const_offsets)
    shift = 2 * (np.cumsum(flags) - flags)  # a, b slots of the scaled programs before
    param_off = np.append(batch.const_offsets[:-1] + shift, batch.const_offsets[-1]
                          + 2 * int(flags.sum()))
    params = np.empty(int(param_off[-1]))
    params[np.arange(len(batch.consts)) + np.repeat(shift, counts)] = batch.consts
    passes = 0
    if flags.any():
        sub = np.flatnonzero(flags)
        a, b, _ = linear_scaling_of(compile_batch([out[todo[k]] for k in sub]),
                                    train.XT, train.y)
        params[param_off[sub + 1] - 2] = a
        params[param_off[sub + 1] - 1] = b
        passes += len(sub)
    stats = np.empty((len(todo), 3))
    jobs = resolve_jobs(n_jobs)
    args = (batch.arrays(np.float64), train.XT, train.y, np.arange(len(todo)), flags,
            params, param_off, stats, max_iter, BLOCK_ROWS, batch.depth, FOLD_CONSTANT_FREE)
    if jobs > 1 and len(todo) > 1:
        numba.set_num_threads(jobs)
        kj.lm_batch_parallel(*args)
    else:
        kj.lm_batch_serial(*args)
    passes += int(stats[:, 2].sum())
    finite = np.logical_and.reduceat(np.isfinite(params), param_off[:-1])  # no empty segment
    better = np.flatnonzero((stats[:, 1] < stats[:, 0]) & finite)
    fitted: dict[int, Program] = {}
    for k in better.tolist():
        i, p = todo[k], out[todo[k]]
        values = params[param_off[k]:param_off[k + 1]].tolist()
        if flags[k]:  # a + b * p: the fitted a, b lead the constants
            add, mul = _scaling_codes(p.grammar, p.grammar.output_type)
            fitted[i] = Program._trusted(p.grammar, (add, CONST, mul, CONST, *p.codes),
                                         (values[-2], values[-1], *values[:-2]))
        else:
            fitted[i] = Program._trusted(p.grammar, p.codes, tuple(values))
    if isinstance(out, Genomes):
        out = out.replaced(list(fitted), list(fitted.values()))
    else:
        for i, p in fitted.items():
            out[i] = p
    improved = np.array([todo[k] for k in better], dtype=np.int64)
    return FitResult(out, improved, problem_units(problem, stats[better, 1]),
                     np.array(todo, dtype=np.int64), passes)


def problem_units(problem: Problem, mse: np.ndarray) -> np.ndarray:
    """Training MSE turned into `problem.error` units (metric, sign)."""
    m = get_metric(problem.metric)
    err = m.from_mse(np.asarray(mse, dtype=np.float64), problem.train.y_var)
    return err if m.lower_is_better else -err


def pick_for_fitting(errors: np.ndarray, share: float, rng: np.random.Generator | None = None,
                     *, how: str = "best") -> np.ndarray:
    """Indices of a `share` (0..1) of the programs with finite error: the best ones
    (how="best", ties by index) or a uniform random subset (how="random", needs rng).
    At least one when share > 0 and any error is finite."""
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"share must be in [0, 1], got {share}")
    ok = np.flatnonzero(np.isfinite(errors))
    n = min(len(ok), int(np.ceil(share * len(ok))))
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if how == "best":
        return np.sort(ok[np.argsort(errors[ok], kind="stable")[:n]])
    if how == "random":
        if rng is None:
            raise ConfigError("how='random' needs an rng")
        return np.sort(rng.choice(ok, n, replace=False))
    raise ConfigError(f"how must be 'best' or 'random', got {how!r}")
