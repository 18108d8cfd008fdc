"""Constant fitting: scipy LM on one program, the batch LM kernel and its numpy twin,
linear scaling as a program, and the rules on what is (not) fitted."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.compiler import compile_batch
from hybrid_gp.errors import ConfigError
from hybrid_gp.fitting import (
    fit_batch,
    fit_constants,
    fit_scaling,
    is_scaled,
    pick_for_fitting,
    problem_units,
    scaled_program,
)
from hybrid_gp.kernels import jacobian as kj
from hybrid_gp.kernels import reference_jacobian as rj

SINE = "2.5 * sin(1.7 * x0) + 0.3"
NEAR = "2.3 * sin(1.62 * x0) + 0.5"  # a start near SINE's constants


def sine_data(rng: np.random.Generator, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    X = rng.uniform(-3, 3, size=(n, 1))
    return X, 2.5 * np.sin(1.7 * X[:, 0]) + 0.3


def parse(text: str, grammar: str = "full") -> hg.Program:
    return hg.Program.parse(text, grammar=grammar)


def lm_twin(codes: np.ndarray, consts: np.ndarray, XT: np.ndarray, y: np.ndarray,
            scale: bool, ab: tuple[float, float] = (0.0, 1.0),
            max_iter: int = 10) -> tuple[np.ndarray, float, float, int]:
    """Numpy twin of kernels.jacobian.lm_program for one program (codes mapped to
    opcodes), step by step: (fitted params, MSE before, MSE after, passes)."""
    n_c = len(consts)
    code_off = np.array([0, len(codes)])
    const_off = np.array([0, n_c])

    def normal(params: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        f, JT = rj.jacobian_reference(codes, code_off, params[:n_c], const_off, XT)
        f = f[0]
        sa, sb = (params[n_c], params[n_c + 1]) if scale else (0.0, 1.0)
        with np.errstate(all="ignore"):
            res = (sa + sb * f) - y
            sse = float(np.sum(res * res))
            J = (np.vstack([sb * JT, np.ones_like(f), f]) if scale else JT).T
            return (sse if np.isfinite(sse) else np.inf), J.T @ J, J.T @ res

    params = np.concatenate([consts, ab]) if scale else np.array(consts, dtype=float)
    k = len(params)
    passes = 0
    if scale:
        sse0 = normal(np.concatenate([consts, [0.0, 1.0]]))[0]
        passes += 1
    sse, A, g = normal(params)
    passes += 1
    if not scale:
        sse0 = sse
    n = XT.shape[1]
    if k == 0 or not np.isfinite(sse) or not (np.all(np.isfinite(A)) and np.all(np.isfinite(g))):
        return params, sse0 / n, sse / n, passes
    yy = float(y @ y)
    lam = kj.LM_LAMBDA0
    for _ in range(max_iter):
        if sse <= 1e-28 * yy:
            break
        diag = np.diag(A)
        M = A + np.diag(lam * np.maximum(diag, 1e-12 * diag.max()))
        try:
            np.linalg.cholesky(M)
            step = np.linalg.solve(M, -g)
            ok = bool(np.all(np.isfinite(step)))
        except np.linalg.LinAlgError:
            ok = False
        if not ok:
            lam *= 10.0
            if lam > kj.LM_LAMBDA_MAX:
                break
            continue
        new, A2, g2 = normal(params + step)
        passes += 1
        if new < sse and np.all(np.isfinite(A2)) and np.all(np.isfinite(g2)):
            params, A, g = params + step, A2, g2
            gain, sse = sse - new, new
            lam = max(lam * 0.1, 1e-15)
            if gain <= kj.LM_FTOL * (sse + gain):
                break
        else:
            lam *= 10.0
            if lam > kj.LM_LAMBDA_MAX:
                break
    return params, sse0 / n, sse / n, passes


# ---------------------------------------------------------------------- one program


def test_fit_constants_recovers_the_constants_of_a_sine_from_a_nearby_start(rng):
    X, y = sine_data(rng)
    fitted, mse = fit_constants(parse(NEAR), X, y)
    np.testing.assert_allclose(fitted.consts, [2.5, 1.7, 0.3], rtol=0, atol=1e-8)
    assert mse < 1e-20
    assert fitted.codes == parse(NEAR).codes


def test_fit_constants_with_scaling_writes_a_plus_b_times_the_program(rng):
    X = rng.uniform(-2, 2, size=(30, 1))
    y = 3 * X[:, 0] ** 2 - 2
    fitted, mse = fit_constants(parse("x0 * x0"), X, y, linear_scaling=True)
    assert is_scaled(fitted)
    np.testing.assert_allclose(fitted.consts, [-2.0, 3.0], atol=1e-10)
    assert mse < 1e-20
    np.testing.assert_allclose(fitted.evaluate(X), y, atol=1e-9)


def test_a_program_without_constants_comes_back_untouched(rng):
    X, y = sine_data(rng)
    p = parse("sin(x0) * x0")
    fitted, mse = fit_constants(p, X, y)
    assert fitted is p
    assert mse == pytest.approx(np.mean((np.sin(X[:, 0]) * X[:, 0] - y) ** 2))
    result = fit_batch([p], hg.Problem.from_data(X, y))
    assert result.programs[0] is p and len(result.tried) == 0 and result.passes == 0


def test_an_optimal_program_is_not_replaced(rng):
    X, y = sine_data(rng)
    exact = parse(SINE)
    fitted, _ = fit_constants(exact, X, y)
    assert fitted is exact or fitted.consts == pytest.approx(exact.consts, abs=1e-14)


def test_fewer_rows_than_constants_still_fit(rng):
    X = np.array([[0.5], [1.5]])
    y = np.array([1.0, 2.0])
    _, mse = fit_constants(parse("1.0 * x0 + 0.1 * sin(x0) + 0.2"), X, y)
    assert mse < 1e-12


def test_scaled_program_needs_add_mul_and_constants_and_names_the_grammar():
    with pytest.raises(ConfigError, match="arith"):
        scaled_program(parse("x0 * x1", grammar="arith"), 1.0, 2.0)
    p = scaled_program(parse("sin(x0)"), -0.5, 2.0)
    assert str(p) == "-0.5 + 2.0 * sin(x0)" and parse(str(p)) == p
    assert is_scaled(p) and not is_scaled(parse("sin(x0) + 1.0"))


def test_a_scaled_program_is_rescaled_through_its_own_constants(rng):
    X = rng.uniform(-2, 2, size=(30, 1))
    y = 3 * X[:, 0] ** 2 - 2
    start = scaled_program(parse("x0 * x0"), 0.0, 1.0)
    fitted, mse = fit_constants(start, X, y, linear_scaling=True)
    assert fitted.size == start.size and mse < 1e-20


# ---------------------------------------------------------------------- a population


def test_fit_batch_recovers_the_sine_constants_too(rng):
    X, y = sine_data(rng)
    result = fit_batch([parse(NEAR)], hg.Problem.from_data(X, y), max_iter=40)
    np.testing.assert_allclose(result.programs[0].consts, [2.5, 1.7, 0.3], rtol=0, atol=1e-8)
    assert result.improved.tolist() == [0] and result.errors[0] < 1e-20


def test_fit_batch_errors_are_what_the_problem_scores(full, rng):
    X = rng.uniform(-2, 2, size=(50, 2))
    y = np.sin(X[:, 0]) * 2 + X[:, 1] ** 2
    for metric in ("mse", "r2"):
        problem = hg.Problem.from_data(X, y, metric=metric)
        programs = hg.random_programs(full, 60, 2, seed=rng)
        before = problem.error(compile_batch(programs))
        result = fit_batch(programs, problem, linear_scaling=True)
        assert len(result.improved) > 0
        fitted = [result.programs[i] for i in result.improved]
        np.testing.assert_allclose(result.errors, problem.error(compile_batch(fitted)),
                                   rtol=1e-9, atol=1e-12)
        assert np.all(result.errors < before[result.improved])
        untouched = np.setdiff1d(np.arange(60), result.improved)
        assert all(result.programs[i] is programs[i] for i in untouched)


def test_fit_batch_only_touches_the_chosen_indices(full, rng):
    X, y = sine_data(rng)
    programs = [p for p in hg.random_programs(full, 40, 1, seed=rng) if p.consts][:10]
    result = fit_batch(programs, hg.Problem.from_data(X, y), indices=[1, 4])
    assert set(result.tried.tolist()) == {1, 4}
    assert set(result.improved.tolist()) <= {1, 4}


def test_fit_batch_leaves_problems_other_than_regression_unchanged():
    problem = hg.get_problem("parity-3")
    programs = hg.random_programs(problem.grammar, 5, problem.n_features, seed=1)
    result = fit_batch(programs, problem)
    assert result.programs == programs and result.passes == 0


def test_fit_batch_does_not_wrap_past_max_size(rng):
    X = rng.uniform(-2, 2, size=(30, 1))
    y = 3 * X[:, 0] ** 2 - 2
    p = parse("x0 * x0 + 0.5")
    result = fit_batch([p], hg.Problem.from_data(X, y), linear_scaling=True,
                       max_size=p.size + 3)
    assert result.programs[0].size == p.size
    result = fit_batch([p], hg.Problem.from_data(X, y), linear_scaling=True,
                       max_size=p.size + 4)
    assert result.programs[0].size == p.size + 4


def test_fit_batch_refuses_scaling_a_grammar_without_constants(rng):
    X = rng.uniform(-2, 2, size=(10, 2))
    problem = hg.Problem.from_data(X, X[:, 0], grammar="arith")
    with pytest.raises(ConfigError, match="arith"):
        fit_batch([parse("x0 * x1", grammar="arith")], problem, linear_scaling=True)


def test_parallel_and_serial_fit_batch_agree(full, rng):
    X, y = sine_data(rng)
    programs = hg.random_programs(full, 40, 1, seed=rng)
    one = fit_batch(programs, hg.Problem.from_data(X, y), linear_scaling=True, n_jobs=1)
    two = fit_batch(programs, hg.Problem.from_data(X, y), linear_scaling=True, n_jobs=2)
    assert one.programs == two.programs
    np.testing.assert_array_equal(one.errors, two.errors)


@pytest.mark.parametrize("scale", [False, True])
def test_lm_kernel_matches_its_numpy_twin_on_random_programs(full, rng, scale):
    programs = [p for p in hg.random_programs(full, 120, 2, seed=rng, min_depth=2,
                                              max_depth=5) if p.consts][:40]
    X = rng.uniform(-2, 2, size=(50, 2))
    X[3, 1] = np.nan  # a program reading x1 has no finite SSE and is left alone
    y = np.sin(X[:, 0]) * 2.5 + 0.7 * X[:, 0] ** 2 - 1
    batch = compile_batch(programs)
    XT = np.ascontiguousarray(X.T)
    a, b, _ = fit_scaling(batch, XT, y)
    for k in range(len(programs)):
        lo, hi = batch.const_offsets[k], batch.const_offsets[k + 1]
        codes = batch.codes[batch.code_offsets[k]:batch.code_offsets[k + 1]]
        ab = (a[k], b[k]) if np.isfinite(a[k]) else (0.0, 1.0)
        params = np.concatenate([batch.consts[lo:hi], ab]) if scale else batch.consts[lo:hi]
        params = params.copy()
        got = kj.lm_program(codes, 0, len(codes), params, hi - lo, scale, batch.arrays(
            np.float64)[4], XT, y, 8, 256, batch.depth, True)
        _, mse0, mse1, _ = lm_twin(codes, batch.consts[lo:hi], XT, y, scale, ab, 8)
        n = X.shape[0]
        assert got[0] / n == pytest.approx(mse0, rel=1e-9), str(programs[k])
        assert got[1] / n == pytest.approx(mse1, rel=1e-6), str(programs[k])


def _lm(program_index, batch, XT, y, scale, fold):
    lo, hi = batch.const_offsets[program_index], batch.const_offsets[program_index + 1]
    codes = batch.codes[batch.code_offsets[program_index]:batch.code_offsets[program_index + 1]]
    params = np.concatenate([batch.consts[lo:hi], (0.3, 1.2)]) if scale else \
        batch.consts[lo:hi].copy()
    result = kj.lm_program(codes, 0, len(codes), params, hi - lo, scale,
                           batch.arrays(np.float64)[4], XT, y, 8, 256, batch.depth, fold)
    return result, params


@pytest.mark.parametrize("scale", [False, True])
def test_lm_with_constant_free_parts_folded_is_the_same_fit_to_the_bit(full, rng, scale):
    programs = hg.random_programs(full, 150, 3, seed=rng, min_depth=2, max_depth=7)
    X = rng.uniform(-3, 3, size=(700, 3))  # blocks of 256 rows and a short last one
    X[5, 0], X[9, 1], X[11, 2] = np.nan, np.inf, -np.inf  # some programs lose every row
    y = np.cos(X[:, 0]) * X[:, 1] + 0.5 * X[:, 2]
    batch = compile_batch(programs)
    XT = np.ascontiguousarray(X.T)
    folded_any = 0
    for k, program in enumerate(programs):
        if not (scale or program.consts):
            continue
        plain, plain_params = _lm(k, batch, XT, y, scale, False)
        folded, folded_params = _lm(k, batch, XT, y, scale, True)
        assert np.array_equal(plain, folded, equal_nan=True), str(program)
        assert np.array_equal(plain_params, folded_params, equal_nan=True), str(program)
        folded_any += kj.fold_constant_free(
            batch.codes, batch.code_offsets[k], batch.code_offsets[k + 1], batch.consts,
            batch.arrays(np.float64)[4], XT, 256,
            kj.jac_workspace(batch.depth, 256, len(program.consts)))[2] > 0
    assert folded_any > 20  # most random programs have parts without constants


def test_folding_keeps_the_constants_and_reads_the_variables_it_needs(full):
    program = parse("1.5 * sin(x2 * x0) + exp(x2) * 2.5 - 0.5 * x2", "full")
    batch = compile_batch([program])
    X = np.random.default_rng(0).uniform(-2, 2, size=(300, 3))
    XT = np.ascontiguousarray(X.T)
    codes, M, n_folded = kj.fold_constant_free(
        batch.codes, 0, len(batch.codes), batch.consts, batch.arrays(np.float64)[4], XT, 256,
        kj.jac_workspace(batch.depth, 256, 3))
    assert n_folded == 2  # sin(x2 * x0) and exp(x2); x2 alone is a variable already
    assert np.count_nonzero(codes == -1) == 3
    assert len(M) == 1 + 2  # x2 (read by 0.5 * x2), then the two folded parts
    np.testing.assert_array_equal(M[0], X[:, 2])
    np.testing.assert_array_equal(M[1], hg.evaluate(parse("sin(x2 * x0)"), X).ravel())
    np.testing.assert_array_equal(M[2], hg.evaluate(parse("exp(x2)"), X).ravel())


def test_fitting_never_raises_the_error(full, rng):
    X = rng.uniform(-3, 3, size=(40, 2))
    y = np.exp(0.3 * X[:, 0]) - X[:, 1]
    problem = hg.Problem.from_data(X, y)
    programs = hg.random_programs(full, 200, 2, seed=rng)
    result = fit_batch(programs, problem, max_iter=5, linear_scaling=True)
    assert np.all(problem.error(compile_batch(result.programs))
                  <= problem.error(compile_batch(programs)))


# ---------------------------------------------------------------------- choosing


def test_pick_for_fitting_takes_the_best_share_or_a_random_one(rng):
    errors = np.array([5.0, np.inf, 1.0, 3.0, np.nan, 2.0, 4.0])
    assert pick_for_fitting(errors, 0.4).tolist() == [2, 5]  # ceil(0.4 * 5 finite)
    got = pick_for_fitting(errors, 0.4, rng, how="random")
    assert len(got) == 2 and set(got.tolist()) <= {0, 2, 3, 5, 6}
    assert pick_for_fitting(errors, 0.0).tolist() == []
    with pytest.raises(ConfigError):
        pick_for_fitting(errors, 1.5)


def test_problem_units_negate_r2_as_problem_error_does(rng):
    X = rng.uniform(-1, 1, size=(20, 1))
    problem = hg.Problem.from_data(X, X[:, 0] * 2, metric="r2")
    p = parse("x0 * 1.5")
    mse = np.mean((1.5 * X[:, 0] - 2 * X[:, 0]) ** 2)
    np.testing.assert_allclose(problem_units(problem, np.array([mse])),
                               problem.error(compile_batch([p])))
