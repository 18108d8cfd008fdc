"""The forward-mode Jacobian kernel against its numpy twin, the interpreter and central
finite differences, and its conventions at guards and kinks (docs/fitting.md).

Kernel and twin use different transcendental implementations (libm against numpy's),
so a row is only compared where five twins with every value and local derivative
jittered by 1e-14 relative agree with the plain twin to 1e-9 (outputs and every
derivative, finiteness included); elsewhere a few ULP legitimately change the result.
"""

from __future__ import annotations

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.compiler import CompiledBatch, compile_batch
from hybrid_gp.evaluation import as_features, evaluate_features
from hybrid_gp.fitting import jacobian_features, program_jacobian
from hybrid_gp.kernels import opcodes as oc
from hybrid_gp.kernels import reference_jacobian as rj
from hybrid_gp.program import with_constants

SPECIALS = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e300, -1e-300, 5e-324, 1e-10])


def with_specials(X: np.ndarray, rng: np.random.Generator, share: float = 0.08) -> np.ndarray:
    """X with NaN, +-inf, zeros and huge or tiny values in about `share` of the cells."""
    X = X.copy()
    mask = rng.random(X.shape) < share
    X[mask] = rng.choice(SPECIALS, size=int(mask.sum()))
    return X


def twin(batch: CompiledBatch, XT: np.ndarray,
         jitter: tuple[np.random.Generator, float] | None = None):
    return rj.jacobian_reference(batch.codes, batch.code_offsets, batch.consts,
                                 batch.const_offsets, XT, jitter)


def per_program(batch: CompiledBatch, values: np.ndarray, JT: np.ndarray) -> list[np.ndarray]:
    """Stack each program's output row with its derivative rows: (1 + n_c, n_rows)."""
    off = batch.const_offsets
    return [np.vstack([values[p], JT[off[p]:off[p + 1]]]) for p in range(batch.n_programs)]


def steady_rows(batch: CompiledBatch, XT: np.ndarray, plain: list[np.ndarray],
                rng: np.random.Generator) -> np.ndarray:
    """(n_programs, n_rows): rows whose outputs and derivatives survive the jitter."""
    steady = np.ones((batch.n_programs, XT.shape[1]), dtype=bool)
    with np.errstate(all="ignore"):
        for _ in range(5):
            other = per_program(batch, *twin(batch, XT, (rng, 1e-14)))
            for p, (a, b) in enumerate(zip(other, plain, strict=True)):
                same = (np.isnan(a) == np.isnan(b)) & (np.isfinite(a) == np.isfinite(b))
                near = ~np.isfinite(b) | (np.abs(a - b) <= 1e-9 * np.maximum(np.abs(b), 1e-300))
                steady[p] &= np.all(same & near, axis=0)
    return steady


def assert_matches_twin(batch: CompiledBatch, XT: np.ndarray, rng: np.random.Generator,
                        min_steady: float = 0.85) -> None:
    kernel = per_program(batch, *jacobian_features(batch, XT))
    plain = per_program(batch, *twin(batch, XT))
    steady = steady_rows(batch, XT, plain, rng)
    assert steady.mean() > min_steady
    for p in range(batch.n_programs):
        k, t = kernel[p][:, steady[p]], plain[p][:, steady[p]]
        np.testing.assert_array_equal(np.isnan(k), np.isnan(t), err_msg=f"program {p}")
        np.testing.assert_array_equal(np.isinf(k), np.isinf(t), err_msg=f"program {p}")
        np.testing.assert_allclose(k, t, rtol=1e-10, atol=1e-300, err_msg=f"program {p}")


def random_codes(rng: np.random.Generator, n: int, n_features: int,
                 max_depth: int) -> CompiledBatch:
    """Random prefix programs over every opcode (cube, inv, min, if, gt, xor ...)."""
    ops = [c for c in range(oc.N_OPCODES) if oc.ARITY[c] > 0]
    codes: list[int] = []
    consts: list[float] = []
    code_off, const_off = [0], [0]

    def grow(depth: int) -> None:
        if depth == 0 or rng.random() < 0.25:
            if rng.random() < 0.4:
                codes.append(-1)
                consts.append(float(rng.uniform(-3, 3)))
            else:
                codes.append(-2 - int(rng.integers(n_features)))
            return
        op = int(rng.choice(ops))
        codes.append(op)
        for _ in range(int(oc.ARITY[op])):
            grow(depth - 1)

    for _ in range(n):
        grow(max_depth)
        code_off.append(len(codes))
        const_off.append(len(consts))
    deepest = 1
    for p in range(n):  # the reverse-prefix walk's stack, as the kernels see it
        sp = 0
        for c in reversed(codes[code_off[p]:code_off[p + 1]]):
            sp += 1 if c < 0 else 1 - int(oc.ARITY[c])
            deepest = max(deepest, sp)
    return CompiledBatch(np.array(codes, dtype=np.int32), np.array(code_off, dtype=np.int64),
                         np.array(consts), np.array(const_off, dtype=np.int64), n_features,
                         deepest)


# ---------------------------------------------------------------------- against the twin


def test_kernel_matches_twin_on_random_full_grammar_programs_with_nan_inf_inputs(full, rng):
    programs = hg.random_programs(full, 400, 3, seed=rng, min_depth=2, max_depth=7)
    X = with_specials(rng.uniform(-4, 4, size=(120, 3)), rng)
    assert_matches_twin(compile_batch(programs), as_features(X, np.dtype(np.float64)), rng)


def test_kernel_matches_twin_on_every_opcode_across_row_blocks(rng):
    batch = random_codes(rng, 300, 3, max_depth=5)
    X = with_specials(rng.uniform(-3, 3, size=(600, 3)), rng, share=0.03)  # > 2 blocks
    assert set(range(2, oc.N_OPCODES)) <= set(batch.codes.tolist())
    assert_matches_twin(batch, as_features(X, np.dtype(np.float64)), rng, min_steady=0.8)


def test_kernel_outputs_equal_the_interpreter(full, rng):
    programs = hg.random_programs(full, 200, 2, seed=rng, min_depth=1, max_depth=5)
    XT = as_features(with_specials(rng.uniform(-2, 2, size=(300, 2)), rng),
                     np.dtype(np.float64))
    values, _ = jacobian_features(programs, XT)
    expected = evaluate_features(compile_batch(programs), XT)
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=0, equal_nan=True)


# ---------------------------------------------------------------------- finite differences


def test_derivatives_match_central_finite_differences_away_from_kinks(full, rng):
    programs = [p for p in hg.random_programs(full, 120, 2, seed=rng, min_depth=2,
                                              max_depth=5) if p.consts][:60]
    X = rng.uniform(-2, 2, size=(40, 2))
    compared = total = 0
    for p in programs:
        f, J = program_jacobian(p, X)
        for j, c in enumerate(p.consts):
            fd = []
            for h in (1e-5 * max(1.0, abs(c)), 0.5e-5 * max(1.0, abs(c))):
                up = list(p.consts)
                down = list(p.consts)
                up[j], down[j] = c + h, c - h
                with np.errstate(all="ignore"):
                    fd.append((with_constants(p, up).evaluate(X)
                               - with_constants(p, down).evaluate(X)) / (2 * h))
            scale = 1.0 + np.abs(f) + np.abs(fd[1])
            with np.errstate(all="ignore"):
                smooth = (np.isfinite(f) & np.isfinite(fd[0]) & np.isfinite(fd[1])
                          & (np.abs(fd[0] - fd[1]) <= 1e-6 * scale))
            total += len(f)
            compared += int(smooth.sum())
            np.testing.assert_allclose(J[smooth, j], fd[1][smooth], rtol=0,
                                       atol=1e-5 * scale[smooth].max(initial=1.0),
                                       err_msg=f"{p}, constant {j}")
    assert compared > 0.8 * total


# ---------------------------------------------------------------------- conventions


def jac_of(text: str, X: np.ndarray, grammar: str = "full") -> tuple[np.ndarray, np.ndarray]:
    return program_jacobian(hg.Program.parse(text, grammar=grammar),
                            np.asarray(X, dtype=float).reshape(-1, 1))


def test_guarded_div_log_and_kinked_abs_sqrt_pow_have_derivative_zero():
    x = [0.0]
    assert jac_of("1.5 / (x0 * 2.0)", x)[1].tolist() == [[0.0, 0.0]]  # div guard
    assert jac_of("log(x0 * 3.0)", x)[1].tolist() == [[0.0]]  # log guard
    assert jac_of("abs(x0 * 3.0)", x)[1].tolist() == [[0.0]]  # kink of abs
    assert jac_of("sqrt(x0 * 3.0)", x)[1].tolist() == [[0.0]]  # infinite slope of sqrt
    assert jac_of("(x0 * 2.0) ** 3.0", x)[1].tolist() == [[0.0, 0.0]]  # pow at a = 0


def test_derivatives_off_the_guards_follow_the_calculus():
    _, J = jac_of("log(x0 * 2.0) + sqrt(x0 * -3.0) + abs(x0 * -1.5)", [2.0])
    np.testing.assert_allclose(J[0], [1 / 2.0, -0.5 * 2.0 / np.sqrt(6.0), -2.0])
    _, J = jac_of("(x0 * 2.0) ** 1.5", [-2.0])  # |2x| ** 1.5 at x = -2
    np.testing.assert_allclose(J[0], [1.5 * 4.0 ** 0.5 * -1.0 * -2.0, 4.0 ** 1.5 * np.log(4.0)])


def test_min_max_and_if_pass_the_derivative_of_the_argument_they_return(rng):
    g = hg.load_grammar("binpack")
    p = hg.Program.parse("min(x0 * 2.0, x0 * 3.0) + (x0 * 5.0 if x0 > 0.5 else x0 * 7.0)",
                         grammar=g)
    X = np.array([[1.0], [-1.0]])
    _, J = program_jacobian(p, X)
    # x = 1: min picks 2x, if picks 5x; x = -1: min picks 3x, if picks 7x; gt has no say
    np.testing.assert_array_equal(J, [[1.0, 0.0, 0.0, 1.0, 0.0],
                                      [0.0, -1.0, 0.0, 0.0, -1.0]])


def test_a_zero_local_derivative_wins_over_an_infinite_inner_one():
    # At x0 = 10, exp(70.9 * x0) is finite (8e307) but its derivative in c = 70.9
    # overflows to inf; min returns 2.0, so d/dc is exactly 0 (not inf * 0 = NaN).
    f, J = jac_of("min(exp(70.9 * x0), 2.0)", [10.0], grammar="binpack")
    assert f.tolist() == [2.0]
    assert J.tolist() == [[0.0, 1.0]]


def test_program_jacobian_has_one_column_per_constant_and_none_without_constants(rng):
    X = rng.uniform(-1, 1, size=(7, 2))
    f, J = program_jacobian(hg.Program.parse("x0 * 2.0 + sin(x1 - 0.5)"), X)
    assert f.shape == (7,) and J.shape == (7, 2)
    np.testing.assert_allclose(J[:, 0], X[:, 0])
    np.testing.assert_allclose(J[:, 1], -np.cos(X[:, 1] - 0.5))
    f, J = program_jacobian(hg.Program.parse("x0 * x1"), X)
    assert J.shape == (7, 0)


@pytest.mark.parametrize("rows", [1, 255, 256, 257])
def test_block_edges_do_not_change_the_result(rows, rng):
    p = hg.Program.parse("2.0 * sin(1.5 * x0) + 0.5")
    X = rng.uniform(-3, 3, size=(rows, 1))
    _, J = program_jacobian(p, X)
    np.testing.assert_allclose(J, np.column_stack([np.sin(1.5 * X[:, 0]),
                                                   2.0 * X[:, 0] * np.cos(1.5 * X[:, 0]),
                                                   np.ones(rows)]), rtol=1e-13, atol=1e-15)
