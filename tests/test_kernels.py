"""The Numba interpreter against its numpy twin (kernels/reference.py).

Outputs must have the same finite/non-finite pattern (NaN and inf inputs included) and
agree to 1e-12 relative wherever the output is well-conditioned. A row of a program is
ill-conditioned when perturbing every node's result by up to 1e-14 relative (about 50
ULP; five random tries) moves its output by more than 1e-12 relative or changes
whether it is finite: there a few-ULP difference in exp, log, sin, ... legitimately changes the
output (sin of a huge argument, say), and nothing is compared. Such rows are rare;
the tests check so.
"""

from __future__ import annotations

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp import evaluation
from hybrid_gp.compiler import CompiledBatch, compile_batch
from hybrid_gp.errors import DataError, UserError
from hybrid_gp.evaluation import BLOCK_ROWS, as_features, evaluate_features, mse_features
from hybrid_gp.kernels import interpreter as ki
from hybrid_gp.kernels import opcodes as oc
from hybrid_gp.kernels import reference as ref
from hybrid_gp.threads import forced


def _with_specials(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """X with NaN, +-inf, zeros and huge values sprinkled over about 8% of cells."""
    X = X.copy()
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e300, -1e-300, 5e-324, 1e-10])
    mask = rng.random(X.shape) < 0.08
    X[mask] = rng.choice(specials, size=int(mask.sum()))
    return X


def _perturbed_twin(batch: CompiledBatch, XT: np.ndarray, rng: np.random.Generator,
                    rel: float, in_float32_range: np.ndarray | None = None) -> np.ndarray:
    """The twin with every node's result (constants too) multiplied by (1 + u*rel),
    u ~ U(-1, 1).

    in_float32_range, if given (bool, programs x rows), is cleared where some node's
    value leaves [1e-30, 1e30] in magnitude (zero aside): float32 under- or overflows
    on the way there.
    """
    out = np.empty((batch.n_programs, XT.shape[1]))
    with np.errstate(all="ignore"):
        for p in range(batch.n_programs):
            stack: list[np.ndarray] = []
            kc = batch.const_offsets[p + 1]
            for k in range(batch.code_offsets[p + 1] - 1, batch.code_offsets[p] - 1, -1):
                c = int(batch.codes[k])
                if c == -1:
                    kc -= 1
                    v = np.full(XT.shape[1], batch.consts[kc])
                    stack.append(v * (1.0 + rel * rng.uniform(-1, 1, v.shape)))
                elif c < -1:
                    stack.append(XT[-c - 2].astype(np.float64))
                else:
                    args = [stack.pop() for _ in range(int(oc.ARITY[c]))]
                    v = ref.apply_op(c, args)
                    if in_float32_range is not None:
                        m = np.abs(v)
                        in_float32_range[p] &= (m == 0) | ((m >= 1e-30) & (m <= 1e30))
                    stack.append(v * (1.0 + rel * rng.uniform(-1, 1, v.shape)))
            out[p] = stack[0]
    return out


def _steady(batch: CompiledBatch, XT: np.ndarray, twin: np.ndarray,
            rng: np.random.Generator, rel: float, cond: float) -> np.ndarray:
    """Rows where five perturbed twins keep the pattern and stay within cond."""
    steady = np.ones(twin.shape, dtype=bool)
    with np.errstate(all="ignore"):
        scale = np.maximum(np.abs(twin), 1e-300)
        for _ in range(5):
            other = _perturbed_twin(batch, XT, rng, rel)
            steady &= np.isfinite(other) == np.isfinite(twin)
            steady &= np.isnan(other) == np.isnan(twin)
            steady &= ~np.isfinite(twin) | (np.abs(other - twin) <= cond * scale)
    return steady


def _compare(kernel: np.ndarray, twin: np.ndarray, steady: np.ndarray, rtol: float) -> None:
    assert kernel.shape == twin.shape
    assert steady.mean() > 0.85  # the comparison covers most outputs
    np.testing.assert_array_equal(np.isfinite(kernel)[steady], np.isfinite(twin)[steady])
    np.testing.assert_array_equal(np.isnan(kernel)[steady], np.isnan(twin)[steady])
    close = steady & np.isfinite(twin)
    with np.errstate(all="ignore"):
        err = np.abs(kernel.astype(np.float64) - twin) / np.maximum(np.abs(twin), 1e-300)
    worst = np.unravel_index(np.argmax(np.where(close, err, 0)), err.shape)
    assert err[close].max() <= rtol, f"program {worst[0]}, row {worst[1]}"


def _check_against_twin(batch: CompiledBatch, XT: np.ndarray, rng: np.random.Generator,
                        n_jobs: int = 1) -> None:
    twin = _twin(batch, XT)
    _compare(evaluate_features(batch, XT, n_jobs), twin,
             _steady(batch, XT, twin, rng, 1e-14, 1e-12), 1e-12)


def _twin(batch: CompiledBatch, XT: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return ref.evaluate_batch(batch.codes, batch.code_offsets, batch.consts,
                                  batch.const_offsets, XT)


def test_kernel_matches_twin_on_random_full_grammar_programs_with_nan_inf_inputs(full, rng):
    programs = hg.random_programs(full, 1000, 3, seed=rng, min_depth=2, max_depth=7)
    X = _with_specials(rng.uniform(-4, 4, size=(150, 3)), rng)
    _check_against_twin(compile_batch(programs), as_features(X, np.dtype(np.float64)), rng)


def _random_codes(rng: np.random.Generator, n: int, n_features: int,
                  max_depth: int) -> CompiledBatch:
    """Random prefix programs over every opcode (cube, inv, xor, if, ... included)."""
    ops = [c for c in range(oc.N_OPCODES) if oc.ARITY[c] > 0]
    codes: list[int] = []
    consts: list[float] = []
    code_off, const_off = [0], [0]

    def grow(depth: int) -> None:
        if depth == max_depth or (depth > 0 and rng.random() < 0.3):
            if rng.random() < 0.3:
                codes.append(-1)
                consts.append(float(rng.choice([0.0, 1.0, -2.5, 1e-12, rng.normal()])))
            else:
                codes.append(-int(rng.integers(n_features)) - 2)
            return
        op = int(rng.choice(ops))
        codes.append(op)
        for _ in range(int(oc.ARITY[op])):
            grow(depth + 1)

    for _ in range(n):
        grow(0)
        code_off.append(len(codes))
        const_off.append(len(consts))
    c = np.array(codes, dtype=np.int32)
    off = np.array(code_off, dtype=np.int64)
    depth = int(ki.batch_stack_depth(c, off, oc.ARITY))
    return CompiledBatch(c, off, np.array(consts), np.array(const_off, dtype=np.int64),
                         n_features, depth)


def test_kernel_matches_twin_on_every_opcode(rng):
    batch = _random_codes(rng, 400, 3, max_depth=5)
    X = _with_specials(rng.uniform(-3, 3, size=(70, 3)), rng)
    X[::5, 0] = np.round(X[::5, 0])  # exact 0/1 truth values for the logical ops
    _check_against_twin(batch, as_features(X, np.dtype(np.float64)), rng)


def test_kernel_ext_marks_the_batches_that_use_opcodes_beyond_pow(full, rng):
    """Only batches with MIN ... LT get the kernels' extended code (ext=True); a
    subset without them is evaluated by the kernels compiled without it."""
    assert compile_batch(hg.random_programs(full, 200, 2, seed=rng)).kernel_ext is None
    batch = _random_codes(rng, 200, 3, max_depth=4)
    assert batch.kernel_ext is True
    codes = [batch.codes[batch.code_offsets[p]:batch.code_offsets[p + 1]]
             for p in range(batch.n_programs)]
    basic = [p for p, c in enumerate(codes) if c.max() <= oc.POW]
    extended = [p for p, c in enumerate(codes) if c.max() > oc.POW]
    assert basic and extended
    assert batch.take(basic).kernel_ext is None and batch.take(extended).kernel_ext
    XT = as_features(_with_specials(rng.uniform(-3, 3, size=(40, 3)), rng),
                     np.dtype(np.float64))
    for part in (basic, extended, basic[:5] + extended[:5]):
        _check_against_twin(batch.take(part), XT, rng)


@pytest.mark.parametrize("n_rows", [1, 7, BLOCK_ROWS - 1, BLOCK_ROWS, 2 * BLOCK_ROWS + 3])
def test_block_edges_give_the_same_outputs(full, rng, n_rows):
    programs = hg.random_programs(full, 60, 2, seed=rng, min_depth=2, max_depth=5)
    X = _with_specials(rng.uniform(-3, 3, size=(n_rows, 2)), rng)
    _check_against_twin(compile_batch(programs), as_features(X, np.dtype(np.float64)), rng)


def test_a_lone_variable_and_a_lone_constant_are_evaluated(full, rng):
    X = rng.normal(size=(20, 2))
    out = hg.evaluate([hg.Program.parse("x1", grammar=full),
                       hg.Program.parse("2.5", grammar=full)], X)
    np.testing.assert_array_equal(out[0], X[:, 1])
    np.testing.assert_array_equal(out[1], np.full(20, 2.5))


def test_run_block_leaves_the_result_in_stack_row_zero(full, rng):
    X = rng.normal(size=(9, 2))
    XT = as_features(X, np.dtype(np.float64))
    for text, expect in [("x1", X[2:8, 1]), ("x0 * x1", X[2:8, 0] * X[2:8, 1])]:
        b = compile_batch([hg.Program.parse(text, grammar=full)])
        codes, _, consts, _, arity = b.arrays(np.float64)
        stack = np.full((b.depth, 8), np.nan)
        ki.run_block(codes, 0, len(codes), consts, len(consts), arity, XT, 2, 6, stack,
                     b.kernel_ext)
        np.testing.assert_array_equal(stack[0, :6], expect)


def test_run_block_folds_a_constant_subtree_without_rows(full):
    """No features, one row."""
    b = compile_batch([hg.Program.parse("exp(1.5) * 2.0", grammar=full)])
    codes, _, consts, _, arity = b.arrays(np.float64)
    stack = np.empty((b.depth + 1, 1))
    ki.run_block(codes, 0, len(codes), consts, len(consts), arity, np.empty((0, 1)), 0, 1,
                 stack, b.kernel_ext)
    assert stack[0, 0] == pytest.approx(np.exp(1.5) * 2.0, rel=1e-15)


def test_parallel_equals_serial_for_outputs_and_mse(full, rng, monkeypatch):
    monkeypatch.setattr(evaluation, "MIN_THREADED_WORK", 0)  # threads even for this
    programs = hg.random_programs(full, 300, 2, seed=rng, min_depth=2, max_depth=6)
    X = _with_specials(rng.uniform(-3, 3, size=(700, 2)), rng)
    y = rng.normal(size=700)
    batch = compile_batch(programs)
    XT = as_features(X, np.dtype(np.float64))
    with forced(True):
        outputs, mse = evaluate_features(batch, XT, 2), mse_features(batch, XT, y, 2)
    np.testing.assert_array_equal(outputs, evaluate_features(batch, XT, 1))
    np.testing.assert_array_equal(mse, mse_features(batch, XT, y, 1))


def test_few_programs_on_many_rows_split_rows_among_threads_with_the_same_result(
        full, rng, monkeypatch):
    monkeypatch.setattr(evaluation, "MIN_THREADED_WORK", 0)
    programs = [hg.Program.parse(t, grammar=full) for t in
                ["sin(x0) * x1 + 2.5", "exp(x0) - log(x1)", "x0"]]
    n = 5 * BLOCK_ROWS + 17
    X = rng.uniform(-3, 3, size=(n, 2))
    y = rng.normal(size=n)
    batch = compile_batch(programs)
    XT = as_features(X, np.dtype(np.float64))
    for jobs in (2, 3):
        with forced(True):
            outputs, mse = evaluate_features(batch, XT, jobs), mse_features(batch, XT, y, jobs)
        np.testing.assert_array_equal(outputs, evaluate_features(batch, XT, 1))
        np.testing.assert_array_equal(mse, mse_features(batch, XT, y, 1))
    X[n - 3, 1] = np.inf  # a non-finite output in the last block: inf however split
    XT = as_features(X, np.dtype(np.float64))
    assert np.isinf(mse_features(batch, XT, y, 2)[1])


def test_kernel_mse_matches_the_twin_mse(full, rng):
    programs = hg.random_programs(full, 300, 2, seed=rng, min_depth=2, max_depth=6)
    X = _with_specials(rng.uniform(-3, 3, size=(300, 2)), rng)
    y = rng.normal(size=300)
    batch = compile_batch(programs)
    XT = as_features(X, np.dtype(np.float64))
    ours = mse_features(batch, XT, y)
    twin = ref.mse_batch(_twin(batch, XT), y)
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(twin))
    fin = np.isfinite(twin)
    np.testing.assert_allclose(ours[fin], twin[fin], rtol=1e-9)


def test_float32_agrees_with_float64_to_float32_precision(full, rng):
    programs = hg.random_programs(full, 400, 2, seed=rng, min_depth=2, max_depth=6)
    X = rng.uniform(-3, 3, size=(200, 2))
    batch = compile_batch(programs)
    XT64 = as_features(X.astype(np.float32), np.dtype(np.float64))  # the same inputs
    out32 = hg.evaluate(programs, X.astype(np.float32), dtype="float32")
    assert out32.dtype == np.float32
    out64 = evaluate_features(batch, XT64)
    # where a 1e-6 wobble at every node moves the output by < 1e-5, float32 (6e-8 per
    # node) must stay within 1e-4 of float64
    in_range = np.ones(out64.shape, dtype=bool)
    perturbed = _perturbed_twin(batch, XT64, rng, 1e-6, in_range)
    with np.errstate(all="ignore"):
        scale = np.maximum(np.abs(out64), 1e-30)
        steady = (np.abs(perturbed - out64) <= 1e-5 * scale) & np.isfinite(out64) & in_range
        err = np.abs(out32 - out64) / scale
    assert steady.mean() > 0.5
    assert err[steady].max() <= 1e-4


def test_float32_fitness_sums_the_float32_outputs_in_float64(full, rng):
    programs = hg.random_programs(full, 50, 2, seed=rng, min_depth=2, max_depth=4)
    X = rng.uniform(-1, 1, size=(3000, 2))
    y = 1e4 + rng.normal(size=3000)  # a float32 sum would be off by ~1e-4 relative
    out32 = hg.evaluate(programs, X, dtype="float32")
    with np.errstate(all="ignore"):
        expect = ref.mse_batch(out32.astype(np.float64), y)
    fin = np.isfinite(expect)
    got = hg.fitness(programs, X, y, dtype="float32")
    np.testing.assert_array_equal(np.isfinite(got), fin)
    np.testing.assert_allclose(got[fin], expect[fin], rtol=1e-12)


def test_n_jobs_choices_give_the_same_result(full, rng):
    programs = hg.random_programs(full, 40, 2, seed=rng)
    X = rng.normal(size=(100, 2))
    base = hg.evaluate(programs, X)
    for jobs in (None, 2, -1):
        with forced(True):  # threads whatever the timings say (hybrid_gp/threads.py)
            np.testing.assert_array_equal(hg.evaluate(programs, X, n_jobs=jobs), base)


@pytest.mark.parametrize("n_jobs", [0, 1.5, "2"])
def test_bad_n_jobs_is_a_user_error_naming_n_jobs(full, rng, n_jobs):
    programs = hg.random_programs(full, 3, 2, seed=rng)
    with pytest.raises(UserError, match="n_jobs"):
        hg.evaluate(programs, rng.normal(size=(5, 2)), n_jobs=n_jobs)


def test_bad_dtype_is_a_user_error_naming_dtype(full, rng):
    programs = hg.random_programs(full, 3, 2, seed=rng)
    with pytest.raises(UserError, match="dtype"):
        hg.evaluate(programs, rng.normal(size=(5, 2)), dtype="int32")


def test_out_of_the_wrong_shape_is_refused(full, rng):
    batch = compile_batch(hg.random_programs(full, 3, 2, seed=rng))
    XT = as_features(rng.normal(size=(5, 2)), np.dtype(np.float64))
    with pytest.raises(DataError, match="out must be"):
        evaluate_features(batch, XT, out=np.empty((3, 4)))
    out = np.empty((3, 5))
    assert evaluate_features(batch, XT, out=out) is out


def test_batch_stack_depth_is_the_deepest_stack_of_the_reverse_prefix_walk(full):
    programs = [hg.Program.parse(t, grammar=full) for t in
                ["x0", "x0 + (x1 * (x0 - x1))", "((x0 - x1) * x1) + x0", "sin(cos(x0))"]]
    assert [compile_batch([p]).depth for p in programs] == [1, 2, 4, 1]
    assert compile_batch(programs).depth == 4


def test_batch_stack_depth_matches_its_twin_on_random_batches(rng):
    """Every opcode's arity, empty batches and programs of one terminal included."""
    for size in (0, 1, 5, 300):
        batch = _random_codes(rng, size, 3, max_depth=int(rng.integers(0, 7)))
        want = ref.batch_stack_depth(batch.codes, batch.code_offsets, oc.ARITY)
        assert ki.batch_stack_depth(batch.codes, batch.code_offsets, oc.ARITY) == want
