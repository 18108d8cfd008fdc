"""The linear-scaling kernel (kernels/scaling.py) against its numpy twin and by hand."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.compiler import compile_batch
from hybrid_gp.errors import DataError
from hybrid_gp.evaluation import as_features, evaluate_features
from hybrid_gp.fitting import fit_scaling
from hybrid_gp.kernels.scaling import scaling_reference

SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, 1e300, -1e-300, 1e-10])


def features(X: np.ndarray) -> np.ndarray:
    return as_features(X, np.dtype(np.float64))


def test_scaling_x0_squared_to_3x0_squared_minus_2_gives_a_minus_2_b_3_and_no_error(rng):
    X = rng.uniform(-2, 2, size=(50, 1))
    y = 3 * X[:, 0] ** 2 - 2
    a, b, mse = fit_scaling([hg.Program.parse("x0 * x0")], features(X), y)
    np.testing.assert_allclose([a[0], b[0]], [-2.0, 3.0], rtol=1e-12)
    assert mse[0] <= 1e-25


def test_kernel_matches_twin_on_random_programs_with_nan_inf_inputs(full, rng):
    programs = hg.random_programs(full, 500, 3, seed=rng, min_depth=1, max_depth=6)
    X = rng.uniform(-3, 3, size=(700, 3))  # several row blocks
    y = np.sin(X[:, 0]) * 2 + X[:, 1]
    mask = rng.random(X.shape) < 0.002
    X[mask] = rng.choice(SPECIALS, size=int(mask.sum()))
    XT = features(X)
    a, b, mse = fit_scaling(programs, XT, y)
    twin = scaling_reference(evaluate_features(compile_batch(programs), XT), y)
    finite = np.isfinite(twin[:, 2])
    assert 0.2 < finite.mean() < 1.0  # both kinds of program are covered
    np.testing.assert_array_equal(np.isfinite(mse), finite)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(twin[:, 0]))
    np.testing.assert_array_equal(np.isnan(b), np.isnan(twin[:, 1]))
    # b is cov/var: compare it relative to the size of y / the spread of f
    with np.errstate(all="ignore"):
        spread = np.std(evaluate_features(compile_batch(programs), XT), axis=1)
        np.testing.assert_allclose(b[finite] * spread[finite], twin[finite, 1] * spread[finite],
                                   rtol=1e-8, atol=1e-9 * np.std(y))
    np.testing.assert_allclose(a[finite], twin[finite, 0], rtol=1e-8, atol=1e-8 * np.std(y))
    np.testing.assert_allclose(mse[finite], twin[finite, 2], rtol=1e-8, atol=1e-10 * np.var(y))


def test_a_constant_program_gets_b_zero_and_the_mean_of_y(rng):
    X = rng.uniform(-1, 1, size=(30, 1))
    y = rng.normal(size=30)
    a, b, mse = fit_scaling([hg.Program.parse("2.5"), hg.Program.parse("x0 - x0 + 1e8")],
                            features(X), y)
    np.testing.assert_array_equal(b, [0.0, 0.0])
    np.testing.assert_allclose(a, [y.mean(), y.mean()], rtol=1e-13)
    np.testing.assert_allclose(mse, [y.var(), y.var()], rtol=1e-12)


def test_a_program_with_non_finite_outputs_gets_nan_scale_and_inf_error(rng):
    X = rng.uniform(1, 2, size=(20, 1))
    X[7, 0] = np.inf
    a, b, mse = fit_scaling([hg.Program.parse("exp(x0)")], features(X), np.zeros(20))
    assert np.isnan(a[0]) and np.isnan(b[0]) and mse[0] == np.inf


def test_a_large_offset_does_not_cancel_the_variance(rng):
    # Over 8 row blocks, sum(f²) - n·mean(f)² would keep no digit of var(f) here.
    X = rng.uniform(0, 1, size=(2000, 1))
    y = 4.0 * X[:, 0] + 1.0
    p = hg.Program.parse("x0 + 1e8")
    a, b, _ = fit_scaling([p], features(X), y)
    f = p.evaluate(X) - 1e8  # exact: every output lies in [1e8, 1e8 + 1]
    exact = np.sum((f - f.mean()) * (y - y.mean())) / np.sum((f - f.mean()) ** 2)
    np.testing.assert_allclose(b, [exact], rtol=1e-11)
    np.testing.assert_allclose(a, [y.mean() - exact * (f.mean() + 1e8)], rtol=1e-11)


def test_parallel_and_serial_kernels_agree(full, rng):
    programs = hg.random_programs(full, 60, 2, seed=rng)
    X = rng.uniform(-2, 2, size=(300, 2))
    y = X[:, 0] * X[:, 1]
    one = fit_scaling(programs, features(X), y, n_jobs=1)
    two = fit_scaling(programs, features(X), y, n_jobs=2)
    for u, v in zip(one, two, strict=True):
        np.testing.assert_array_equal(u, v)


def test_zero_rows_are_refused():
    with pytest.raises(DataError):
        fit_scaling([hg.Program.parse("x0")], np.empty((1, 0)), np.empty(0))


def test_more_jobs_than_numba_threads_are_clamped_not_an_error():
    """A user whose environment pins NUMBA_NUM_THREADS=1 and asks for n_jobs=2 gets one
    thread, not numba's "number of threads must be between 1 and 1"."""
    script = (
        "import numpy as np, hybrid_gp as hg\n"
        "from hybrid_gp.evaluation import as_features\n"
        "from hybrid_gp.fitting import fit_scaling\n"
        "X = np.linspace(-1, 1, 40).reshape(-1, 2)\n"
        "ps = [hg.Program.parse('x0 * x1'), hg.Program.parse('x0 + x1')]\n"
        "a, b, mse = fit_scaling(ps, as_features(X, np.dtype(np.float64)), X[:, 0], n_jobs=2)\n"
        "assert np.isfinite(mse).all()\n"
        "print('ok')\n")
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
