"""Accuracy and special values of the vectorisable math (kernels/vecmath.py).

The reference is numpy in x87 extended precision (64-bit mantissa) where the platform
has it, else mpmath on a smaller sample. Error is in ULP of the correctly rounded
double. The bounds asserted are the ones docs/kernels.md documents.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import llvmlite.binding as llvm
import mpmath
import numpy as np
import pytest
from numba import njit

from hybrid_gp.kernels import vecmath as vm
from hybrid_gp.kernels.opcodes import EPS

ULP_BOUND = {"exp": 1.5, "log": 1.0, "sin": 3.0, "cos": 3.0, "tanh": 3.0, "pow": 1.5}
EXTENDED = np.finfo(np.longdouble).nmant >= 63

SPECIALS = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324,
                     2.2250738585072014e-308, -2.2250738585072014e-308, 1e-10, -1e-10,
                     np.nextafter(1e-10, 1), 1.0, -1.0, 709.782712893384,
                     709.7827128933841, -745.1332191019411, -745.1332191019412, -708.4,
                     20.0, -20.0, 1e300, -1e300, np.pi / 2, np.pi, 2.0**20, -2.0**20,
                     np.nextafter(2.0**20, np.inf), 1e22, 1.7976931348623157e308])


def _block(name: str, x: np.ndarray) -> np.ndarray:
    y = x.copy()
    getattr(vm, "v" + name)(y, len(y))
    return y


def _numpy(name: str, x: np.ndarray) -> np.ndarray:
    """What the numpy twin computes (protected log)."""
    with np.errstate(all="ignore"):
        if name == "log":
            m = np.abs(x)
            return np.where(m <= EPS, 0.0 * x, np.log(m)).astype(x.dtype)
        return getattr(np, name)(x)


def _extended(name: str, x: np.ndarray) -> np.ndarray:
    xl = x.astype(np.longdouble)
    with np.errstate(all="ignore"):
        if name == "log":
            return np.where(np.abs(xl) <= EPS, np.longdouble(0), np.log(np.abs(xl)))
        return getattr(np, name)(xl)


_MP: dict[str, Callable] = {"exp": mpmath.exp, "sin": mpmath.sin, "cos": mpmath.cos,
                            "tanh": mpmath.tanh, "log": lambda v: mpmath.log(abs(v))}


def _ulp_error(name: str, x: np.ndarray, ours: np.ndarray) -> np.ndarray:
    if EXTENDED:
        ref = _extended(name, x)
        r64 = ref.astype(np.float64)
        return (np.abs(ours.astype(np.longdouble) - ref)
                / np.spacing(np.abs(r64)).astype(np.longdouble)).astype(np.float64)
    with mpmath.workdps(40):
        out = []
        for xi, oi in zip(x, ours, strict=True):
            ref = _MP[name](mpmath.mpf(float(xi)))
            out.append(float(abs(mpmath.mpf(float(oi)) - ref)
                             / np.spacing(abs(float(ref)))))
        return np.array(out)


def _sample(rng: np.random.Generator, name: str, n: int) -> np.ndarray:
    def logu(lo: float, hi: float) -> np.ndarray:
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n)) * rng.choice([-1, 1], n)

    if name == "exp":
        parts = [rng.uniform(-745.1, 709.7, n), rng.uniform(-1, 1, n), logu(1e-300, 1)]
    elif name == "log":
        parts = [logu(1.1e-10, 1e308), rng.uniform(0.5, 2, n), 1 + logu(1e-15, 1e-3)]
    elif name in ("sin", "cos"):
        near_pole = np.pi / 2 * rng.integers(-2**19, 2**19, n) + logu(1e-12, 1e-6)
        parts = [rng.uniform(-10, 10, n), logu(1e-300, 2.0**20), near_pole]
    else:
        parts = [rng.uniform(-25, 25, n), logu(1e-300, 1), rng.uniform(-1, 1, n)]
    x = np.concatenate(parts)
    return x if EXTENDED else rng.choice(x, 3000, replace=False)


@pytest.mark.parametrize("name", ["exp", "log", "sin", "cos", "tanh"])
def test_ulp_error_is_within_the_documented_bound(rng, name):
    x = _sample(rng, name, 60_000)
    ours = _block(name, x)
    with np.errstate(all="ignore"):
        fin = np.isfinite(_numpy(name, x))
    err = _ulp_error(name, x[fin], ours[fin])
    worst = x[fin][np.argmax(err)]
    assert err.max() <= ULP_BOUND[name], f"{name}({worst!r}): {err.max():.2f} ULP"


@pytest.mark.parametrize("name", ["exp", "log", "sin", "cos", "tanh"])
def test_special_values_match_numpy(name):
    ours = _block(name, SPECIALS)
    theirs = _numpy(name, SPECIALS)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs))
    inf = np.isinf(theirs)
    np.testing.assert_array_equal(ours[inf], theirs[inf])
    fin = np.isfinite(theirs)
    np.testing.assert_allclose(ours[fin], theirs[fin], rtol=4e-16, atol=5e-324)


def test_log_is_protected_below_eps_and_keeps_inf_and_nan():
    x = np.array([0.0, -0.0, 5e-324, 1e-300, 1e-10, -1e-10, np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal(_block("log", x),
                                  [0, 0, 0, 0, 0, 0, np.inf, np.inf, np.nan])


def test_exp_overflows_and_underflows_like_numpy_with_subnormal_results():
    x = np.array([709.78, 709.79, 710.0, 1e4, -708.0, -740.0, -745.0, -745.2, -1e4])
    ours = _block("exp", x)
    theirs = _numpy("exp", x)
    np.testing.assert_array_equal(np.isinf(ours), np.isinf(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=3e-16, atol=5e-324)
    assert ours[6] > 0 and ours[6] < 2.2250738585072014e-308  # a subnormal result


def test_trig_beyond_the_reduction_limit_uses_libm_exactly(rng):
    far = np.exp(rng.uniform(np.log(2.0**20), np.log(1e300), 500)) * rng.choice([-1, 1], 500)
    x = rng.permutation(np.concatenate([far, rng.uniform(-3, 3, 500)]))
    is_far = np.abs(x) > vm.TRIG_LIMIT
    for name in ("sin", "cos"):
        ours = _block(name, x)
        np.testing.assert_array_equal(ours[is_far], getattr(np, name)(x[is_far]))
        assert _ulp_error(name, x[~is_far], ours[~is_far]).max() <= ULP_BOUND[name]


def test_float32_blocks_are_the_float64_result_rounded(rng):
    x64 = np.concatenate([rng.uniform(-80, 80, 5000), rng.uniform(-1e4, 1e4, 5000)])
    x32 = x64.astype(np.float32)
    for name in ("exp", "log", "sin", "cos", "tanh"):
        ours = _block(name, x32)
        assert ours.dtype == np.float32
        with np.errstate(over="ignore"):
            expect = _numpy(name, x32.astype(np.float64)).astype(np.float32)
        fin = np.isfinite(expect)
        np.testing.assert_array_equal(np.isfinite(ours), fin)
        gap = np.abs(ours[fin].astype(np.float64) - expect[fin])
        assert np.all(gap <= np.spacing(np.abs(expect[fin])))  # at most 1 float32 ULP


# ------------------------------------------------------------------------- pow
def _pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = b.copy()
    vm.vpow(a, out, len(out))
    return out


def test_pow_ulp_error_is_within_the_bound_up_to_overflow(rng):
    n = 40_000
    a = np.concatenate([np.exp(rng.uniform(-690, 690, n)), rng.uniform(0.25, 4, n),
                        1 + rng.normal(0, 1e-3, n), -rng.uniform(0.1, 10, n),
                        rng.uniform(1e-320, 1e-310, n)])  # subnormal bases too
    y = rng.uniform(-700, 700, len(a))  # target b * log|a|
    b = y / np.log(np.abs(a))
    ours = _pow(a, b)
    if EXTENDED:
        ref = np.power(np.abs(a.astype(np.longdouble)), b.astype(np.longdouble))
        r64 = ref.astype(np.float64)
        fin = np.isfinite(r64) & (r64 != 0)
        err = (np.abs(ours[fin].astype(np.longdouble) - ref[fin])
               / np.spacing(np.abs(r64[fin])).astype(np.longdouble)).astype(np.float64)
    else:
        fin = np.isfinite(ours)
        err = np.abs(ours[fin] - np.power(np.abs(a[fin]), b[fin])) / np.spacing(ours[fin])
        err = np.maximum(err - 1, 0)  # numpy's own pow is within 1 ULP
    assert err.max() <= ULP_BOUND["pow"]


def test_pow_special_arguments_follow_ieee_pow_of_abs_a():
    vals = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -3.0, np.inf, -np.inf, np.nan, 5e-324,
                     1e308])
    a, b = (m.ravel() for m in np.meshgrid(vals, vals))
    ours = _pow(a, b)
    with np.errstate(all="ignore"):
        theirs = np.power(np.abs(a), b)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=4e-16, atol=5e-324)
    assert _pow(np.array([np.nan]), np.array([0.0]))[0] == 1.0  # nan ** 0 = 1
    assert _pow(np.array([-1.0]), np.array([np.nan]))[0] == 1.0  # |-1| ** nan = 1
    assert _pow(np.array([0.0]), np.array([-1.0]))[0] == np.inf


def test_pow_of_one_is_one_for_any_finite_exponent(rng):
    b = np.concatenate([rng.normal(0, 1e300, 100), rng.normal(0, 1, 100)])
    np.testing.assert_array_equal(_pow(np.ones_like(b), b), np.ones_like(b))


# ------------------------------------------------------------- building blocks
def test_fma_rounds_once():
    a = 1.0 + 2.0**-30
    b = 1.0 - 2.0**-30

    @vm.njit
    def fused(x, y, z):
        return vm.fma(x, y, z)

    assert fused(a, b, -1.0) == -(2.0**-60)  # a * b - 1 rounds to 0 without fma
    assert a * b - 1.0 == 0.0


def test_pi_over_2_split_has_short_exact_parts():
    parts = [vm._PIO2_1, vm._PIO2_2, vm._PIO2_3, vm._PIO2_4]
    with mpmath.workprec(300):
        total = sum(mpmath.mpf(p) for p in parts)
        assert abs(total - mpmath.pi / 2) < mpmath.mpf(2) ** -150
    for p in parts[:3]:  # 33 significant bits: k * part is exact for |k| < 2**20
        mant = int(mpmath.mpf(p) * 2 ** (32 - mpmath.floor(mpmath.log(p, 2))))
        assert mpmath.mpf(mant) == mpmath.mpf(p) * 2 ** (32 - mpmath.floor(mpmath.log(p, 2)))


def test_ln2_split_and_log_table_are_exact_to_double_double():
    with mpmath.workprec(200):
        assert abs(mpmath.mpf(vm._LN2_HI) + vm._LN2_LO - mpmath.log(2)) < mpmath.mpf(2)**-84
        assert abs(mpmath.mpf(vm._LN2_H43) + vm._LN2_L43 - mpmath.log(2)) < mpmath.mpf(2)**-95
        for j in range(vm._LOG_N):
            logc = mpmath.mpf(_logc_hi(j)) + mpmath.mpf(vm._LOG_TAIL[j])
            assert abs(logc + mpmath.log(mpmath.mpf(_invc(j)))) < mpmath.mpf(2)**-96
    assert vm._LN2_H43 * 2**43 == int(vm._LN2_H43 * 2**43) < 2**53 / 1075  # k * it exact


def _invc(j: int) -> float:
    return ((int(vm._LOG_PACKED[j]) & 255) + 176) / 256


def _logc_hi(j: int) -> float:
    return float(np.int64(int(vm._LOG_PACKED[j]) & -256).view(np.float64))


def test_log_cells_give_exact_r_and_c_is_1_around_1():
    """z/c - 1 is a double for the first, last and random z of every cell (so
    fma(z, 1/c, -1) is exact), |r| < 0.0058, log c is a multiple of 2**-43, and
    the cells either side of z = 1 have c = 1 and log c = 0 exactly."""
    rng = np.random.default_rng(5)
    for j in range(vm._LOG_N):
        first = vm._LOG_OFF + (j << 45)
        offsets = [0, 1, (1 << 45) - 2, (1 << 45) - 1, *rng.integers(0, 1 << 45, 200)]
        invc = Fraction(_invc(j))
        for off in offsets:
            z = float(np.int64(first + int(off)).view(np.float64))
            r = Fraction(z) * invc - 1
            assert Fraction(float(r)) == r and abs(r) < 0.0058
        logc = _logc_hi(j)
        assert logc * 2**43 == int(logc * 2**43)
    for z in (np.nextafter(1.0, 0.0), 1.0):
        j = ((int(np.float64(z).view(np.int64)) - vm._LOG_OFF) >> 45) & (vm._LOG_N - 1)
        assert _invc(j) == 1.0 and _logc_hi(j) == 0.0 and vm._LOG_TAIL[j] == 0.0


def test_exp_table_holds_two_to_the_j_over_128():
    with mpmath.workprec(200):
        for j in range(vm._EXP_N):
            ent = int(vm._EXP_TABLE[j])
            hi = float(np.int64((ent & vm._MANTISSA) | vm._ONE_BITS).view(np.float64))
            value = mpmath.mpf(hi) * (1 + mpmath.mpf(ent >> 52) * mpmath.mpf(2)**-63)
            assert abs(value / mpmath.power(2, mpmath.mpf(j) / 128) - 1) < mpmath.mpf(2)**-63.9
        assert abs(mpmath.mpf(vm._LN2N_HI) + vm._LN2N_LO - mpmath.log(2) / 128) < mpmath.mpf(2)**-95
    assert vm._LN2N_HI * 2**42 == int(vm._LN2N_HI * 2**42) < 2**53 / 2**18  # k * it exact


@njit(cache=False)
def _log_dd_all(v: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> None:
    for i in range(v.shape[0]):
        hi[i], lo[i] = vm._log_dd(v[i])


def test_pow_log_is_double_double_to_2_to_the_minus_67_5(rng):
    """pow's log|a| as hi + lo, relative error (|b log|a|| up to 709 multiplies it):
    worst near a = 1, where log c = 0 and log|a| is small."""
    v = np.concatenate([1 + rng.uniform(-0.012, 0.012, 3000), np.exp(rng.uniform(-744, 709, 1000)),
                        rng.uniform(0.69, 1.43, 1000), rng.uniform(5e-324, 2.2e-308, 200)])
    hi, lo = np.empty_like(v), np.empty_like(v)
    _log_dd_all(v, hi, lo)
    with mpmath.workprec(150):
        worst = max(abs((mpmath.mpf(h) + mpmath.mpf(t)) / mpmath.log(mpmath.mpf(x)) - 1)
                    for x, h, t in zip(v, hi, lo, strict=True) if x != 1.0)
    assert worst < mpmath.mpf(2) ** -67.5
    one, hi, lo = np.ones(1), np.empty(1), np.empty(1)
    _log_dd_all(one, hi, lo)
    assert hi[0] == 0.0 and lo[0] == 0.0  # so 1 ** b = 1 exactly


def test_minimax_fitter_on_a_small_case_and_the_log_r_range():
    """bench/minimax.py (which fitted vecmath's coefficients) on a quick case: e**x on
    |x| <= 0.01 by degree 3 gets the near-Chebyshev error, about 2 (0.005)**4 / 4!."""
    from hybrid_gp.bench import minimax

    with mpmath.workdps(30):
        c = minimax.fit(mpmath.exp, lambda x: 1 / mpmath.exp(x), -0.01, 0.01, 3, grid=300)
        err = minimax.max_error(
            lambda x: mpmath.polyval(c[::-1], x) / mpmath.exp(x) - 1, -0.01, 0.01, 2000)
    assert 5.1e-11 < err < 5.4e-11 and abs(c[1] - 1) < 1e-9
    lo, hi = minimax.log_r_range()
    assert -0.005637 < lo < -0.005635 and 0.005737 < hi < 0.005738


@njit(cache=False)
def _exp_wide(y: np.ndarray) -> None:
    vm.wide_vectors()
    for r in range(y.shape[0]):
        y[r] = vm.exp1(y[r])


@njit(cache=False)
def _exp_default_width(y: np.ndarray) -> None:
    for r in range(y.shape[0]):
        y[r] = vm.exp1(y[r])


def test_wide_vectors_sets_the_width_attribute_and_widens_the_loop_on_avx512():
    y = np.zeros(8)
    _exp_wide(y)
    sig = _exp_wide.signatures[0]
    assert f'"prefer-vector-width"="{vm.VECTOR_BITS}"' in _exp_wide.inspect_llvm(sig)
    if llvm.get_host_cpu_features().get("avx512f", False):
        assert "zmm" in _exp_wide.inspect_asm(sig)


def test_vector_width_does_not_change_results(rng):
    # 1003 elements: full vectors of either width plus a scalar remainder.
    x = np.concatenate([rng.uniform(-750.0, 750.0, 1003 - len(SPECIALS)), SPECIALS])
    wide, narrow = x.copy(), x.copy()
    _exp_wide(wide)
    _exp_default_width(narrow)
    assert np.array_equal(wide.view(np.int64), narrow.view(np.int64))
