"""Vectorisable exp, log, sin, cos, tanh and pow for the Numba kernels.

Numba calls libm one element at a time (5-20 ns each, no SVML here), which made these
six operations most of an evaluation's time. Here each is range reduction plus a
polynomial, written without branches so LLVM vectorises the row loops; the few inputs
the reduction cannot handle accurately (|x| > 2**20 for sin/cos) are recomputed with
libm after the vector pass, and pow's zero, infinite or NaN arguments get IEEE pow's
rules as selects in a second vector pass. Semantics follow
docs/semantics.md (log is protected: log|a|, 0 where |a| <= EPS; pow is |a| ** b).

Accuracy (docs/kernels.md has the method and measurements), in ULP of the correctly
rounded result: exp 1.5, log 1, sin and cos 3, tanh 3, pow 1.5 (|b log|a|| up to 709).
NaN and inf inputs give what numpy gives. Arithmetic is plain IEEE
double, no fastmath flags; `fma` is LLVM's fused multiply-add (exactly rounded), used
for Horner steps and for exact products in the reductions. float32 blocks are computed
in float64 and rounded once on store.

Each function has a branch-free scalar core (`exp1`, `log1`, `tanh1`, `_sincos`,
`pow_regular`, force-inlined by LLVM) and a loop over a block, in place on one array:
`math_block(op, y, nb, ...)` for the unary ones and `pow_block`. The loops never
allocate (compiled without reference counting). `vexp(y, nb)` and friends are
standalone conveniences for tests and other callers.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

import numpy as np
from numba import njit, types
from numba.core.extending import intrinsic

from .opcodes import COS, EPS, EXP, LOG, SIN, TANH

_JIT = dict(cache=True, error_model="numpy", nogil=True)
_LOOP = dict(_JIT, _nrt=False)  # block loops: no reference counting (they never allocate)
_CORE = dict(_JIT, forceinline=True)  # scalar cores: LLVM inlines them into the loops


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma: one instruction on CPUs with FMA)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


#: LLVM's preferred vector width for the kernels' loops, in bits (see wide_vectors).
VECTOR_BITS = 512
_WIDTH_ATTRIBUTE = f'"prefer-vector-width"="{VECTOR_BITS}"'


@intrinsic
def wide_vectors(typingctx):
    """Vectorise the calling function's loops VECTOR_BITS wide where the CPU can.

    LLVM keeps to 256-bit vectors on CPUs with AVX-512 unless a function asks for
    more; asking is the function attribute "prefer-vector-width", which this sets on
    the function it is called from (it emits no code). Elementwise results do not
    change with the width: every lane computes the same operations. Where the CPU has
    no 512-bit registers LLVM uses the widest it has."""
    sig = types.none()

    def codegen(context, builder, signature, args):
        # llvmlite's attribute set accepts only keyword attributes; this one is a
        # string attribute, which its text form prints as given.
        set.add(builder.function.attributes, _WIDTH_ATTRIBUTE)
        return context.get_dummy_value()

    return sig, codegen


@njit(**_CORE)
def _bits(x):
    return np.float64(x).view(np.int64)


@njit(**_CORE)
def _float(i):
    return np.int64(i).view(np.float64)


@njit(**_CORE)
def _pow2(k):
    """2.0 ** k for -1022 <= k <= 1023, built from the exponent bits."""
    return _float((k + 1023) << 52)


# ----------------------------------------------------------------------------- exp
_SHIFT = 6755399441055744.0  # 1.5 * 2**52: (t + _SHIFT) - _SHIFT rounds t to an integer
_INV_LN2 = 1.4426950408889634
_LN2_HI = 0.6931471803691238  # ln 2 to 32 bits (0x1.62e42feep-1): k * _LN2_HI is exact
_LN2_LO = 1.9082149292705877e-10  # ln 2 - _LN2_HI
# e**r - 1 - r = r**2 (_E0 + _E1 r + ... + _E10 r**10) on |r| <= ln2/2: minimax for the
# error relative to e**r, doubles (fitted by hybrid_gp/bench/minimax.py), below
# 2**-63.8 (the Taylor series to r**13 it replaced: 2**-57.4, with one more term).
_E0, _E1, _E2, _E3 = 0.5, 0.1666666666666668, 0.041666666666666415, 0.008333333333319278
_E4, _E5, _E6 = 0.0013888888889032908, 0.00019841269891802038, 2.480158702383787e-05
_E7, _E8, _E9 = 2.7557238774128835e-06, 2.755752913262427e-07, 2.5110841979653076e-08
_E10 = 2.0837232337465285e-09
# fma(x, 1/ln2, _SHIFT_K) rounds x/ln2 to an integer k as _SHIFT does; its bits are
# bits(1.5 * 2**52) + k + 2046, and bits(1.5 * 2**52) has no bit set below bit 51, so
# the low 12 bits are k + 2046 (970 to 3071 for k in -1076..1025).
_SHIFT_K = _SHIFT + 2046


@njit(**_CORE)
def _expm1_reduced(r):
    """e**r - 1 for |r| <= ln2/2 (a little beyond is fine)."""
    q = fma(_E10, r, _E9)
    q = fma(q, r, _E8)
    q = fma(q, r, _E7)
    q = fma(q, r, _E6)
    q = fma(q, r, _E5)
    q = fma(q, r, _E4)
    q = fma(q, r, _E3)
    q = fma(q, r, _E2)
    q = fma(q, r, _E1)
    q = fma(q, r, _E0)
    return fma(r * r, q, r)


@njit(**_CORE)
def exp1(x):
    """e**x; 0 below -746 and inf above 710; NaN in, NaN out."""
    xd = np.float64(x)
    xc = -746.0 if xd < -746.0 else xd
    xc = 710.0 if xc > 710.0 else xc
    t = fma(xc, _INV_LN2, _SHIFT_K)
    kd = t - _SHIFT_K  # k = round(x / ln2)
    r = fma(-kd, _LN2_HI, xc)  # exact
    r = fma(-kd, _LN2_LO, r)
    p = 1.0 + _expm1_reduced(r)
    # 2**k as 2**floor(k/2) * 2**ceil(k/2), so that subnormal and infinite results
    # round once; the exponent fields are (k + 2046) >> 1 and the rest, from t's bits.
    tb = _bits(t)
    half = tb >> 1
    return p * _float(half << 52) * _float((tb - half) << 52)


# ----------------------------------------------------------------------------- log
_MANTISSA = 0x000FFFFFFFFFFFFF
_ONE_BITS = 0x3FF0000000000000
_SQRT2 = 1.4142135623730951
# 2/(2n+1), n = 1..10: (log(1+f) - 2s) / s on |s| <= 0.1716 to < 2**-60, s = f/(2+f).
_G1, _G2, _G3, _G4, _G5 = 2 / 3, 2 / 5, 2 / 7, 2 / 9, 2 / 11
_G6, _G7, _G8, _G9, _G10 = 2 / 13, 2 / 15, 2 / 17, 2 / 19, 2 / 21


@njit(**_CORE)
def _split(v):
    """v = 2**e * m with m in [sqrt(2)/2, sqrt(2)), for normal positive v."""
    bits = _bits(v)
    e = (bits >> 52) - 1023
    m = _float((bits & _MANTISSA) | _ONE_BITS)
    big = m > _SQRT2
    return (0.5 * m if big else m), (e + 1 if big else e)


@njit(**_CORE)
def log1(x):
    """Protected log: log|x|, 0 where |x| <= EPS; inf and NaN pass through."""
    v = abs(np.float64(x))
    m, e = _split(v)  # v > EPS is normal; other lanes are overwritten below
    f = m - 1.0  # exact
    s = f / (2.0 + f)
    z = s * s
    w = fma(_G10, z, _G9)
    w = fma(w, z, _G8)
    w = fma(w, z, _G7)
    w = fma(w, z, _G6)
    w = fma(w, z, _G5)
    w = fma(w, z, _G4)
    w = fma(w, z, _G3)
    w = fma(w, z, _G2)
    w = fma(w, z, _G1)
    hfsq = 0.5 * f * f
    ek = np.float64(e)
    t = fma(s, fma(z, w, hfsq), ek * _LN2_LO)
    out = ek * _LN2_HI + (f - (hfsq - t))  # log(1+f) = f - hfsq + s*(hfsq + R)
    out = 0.0 if v <= EPS else out
    return out if v < np.inf else v


# ------------------------------------------------------------------------ sin, cos
TRIG_LIMIT = 1048576.0  # 2**20: beyond it the reduction below loses accuracy (libm then)
_INV_PI = 0.3183098861837907
# pi/2 as 33 + 33 + 33 + 53 bits: m * _PIO2_1.._PIO2_3 are exact for |m| < 2**20.
_PIO2_1 = 1.5707963267341256  # 0x1.921fb544p+0
_PIO2_2 = 6.077100506303966e-11  # 0x1.0b4611a6p-34
_PIO2_3 = 2.0222662487111665e-21  # 0x1.3198a2ep-69
_PIO2_4 = 8.4784276603689e-32  # 0x1.b839a252049c1p-104
# Taylor coefficients of sin on |r| <= pi/2, (-1)**n / (2n+1)! for r**3 .. r**23: the
# first term left out, r**25/25!, is below 2**-67 relative there.
(_S1, _S2, _S3, _S4, _S5, _S6, _S7, _S8, _S9, _S10,
 _S11) = ((-1) ** n / math.factorial(2 * n + 1) for n in range(1, 12))


@njit(**_CORE)
def _sincos(x, quarter):
    """sin(x + quarter*pi/2) for |x| <= TRIG_LIMIT; NaN for inf/NaN; 0 for larger |x|.

    One polynomial for both: x = m pi/2 + r with m even for sin (m = 2k) and odd for
    cos (m = 2k + 1), |r| <= pi/2; then sin(x) = (-1)**k sin(r) and cos(x) =
    (-1)**(k+1) sin(r). Cheaper than picking between a sin and a cos polynomial on
    |r| <= pi/4, which computes both (about 25% less time, the same 2 ULP)."""
    xd = np.float64(x)
    near = abs(xd) <= TRIG_LIMIT
    xs = xd if near else 0.0
    kd = (fma(xs, _INV_PI, -0.5 * quarter) + _SHIFT) - _SHIFT  # round(x/pi - quarter/2)
    m = 2.0 * kd + quarter
    r = fma(-m, _PIO2_1, xs)  # the first three steps are exact (see docs/kernels.md)
    r = fma(-m, _PIO2_2, r)
    r = fma(-m, _PIO2_3, r)
    r = fma(-m, _PIO2_4, r)
    z = r * r
    p = fma(_S11, z, _S10)
    p = fma(p, z, _S9)
    p = fma(p, z, _S8)
    p = fma(p, z, _S7)
    p = fma(p, z, _S6)
    p = fma(p, z, _S5)
    p = fma(p, z, _S4)
    p = fma(p, z, _S3)
    p = fma(p, z, _S2)
    p = fma(p, z, _S1)
    v = fma(r * z, p, r)
    v = -v if (np.int64(kd) + quarter) & 1 else v
    return v if near else xd - xd


@njit(**_CORE)
def sin1(x):
    """sin(x) for |x| <= TRIG_LIMIT or non-finite x (0 for larger |x|: math_block uses libm)."""
    return _sincos(x, 0)


@njit(**_CORE)
def cos1(x):
    return _sincos(x, 1)


# ---------------------------------------------------------------------------- tanh
@njit(**_CORE)
def tanh1(x):
    """tanh x = t / (t + 2) with t = e**(2|x|) - 1, sign restored from x's sign bit."""
    xd = np.float64(x)
    y = 2.0 * abs(xd)
    y = 40.0 if y > 40.0 else y  # tanh(20) rounds to 1
    ys = y if y == y else 0.0
    kd = (ys * _INV_LN2 + _SHIFT) - _SHIFT
    r = fma(-kd, _LN2_HI, y)
    r = fma(-kd, _LN2_LO, r)
    p = _expm1_reduced(r)
    sc = _pow2(np.int64(kd))
    t = fma(sc, p, sc - 1.0)  # 2**k * (p + 1) - 1
    th = t / (t + 2.0)
    return -th if _bits(xd) < 0 else th


# ----------------------------------------------------------------------------- pow
# log|a| in double-double (the decomposition of ARM's optimized-routines pow):
# |a| = 2**k z with z in [Z0, 2 Z0), Z0 = 0x1.69555p-1 (about sqrt(2)/2), split into
# _LOG_N cells by the top 7 bits of bits(z) - bits(Z0). Each cell has a c near its
# centre with 1/c on a grid of 2**-7 (1/c > 1) or 2**-8 (1/c <= 1), so that
# r = z/c - 1 = fma(z, 1/c, -1) is exact; |r| < 0.0058, and the two cells around
# z = 1 have c = 1. Then log|a| = k ln2 + log c + log(1 + r).
_LOG_N = 128
_LOG_OFF = 0x3FE6955500000000  # bits of Z0
_EXP_MASK = -(1 << 52)  # 0xFFF0000000000000: sign and exponent bits
# ln 2 as a multiple of 2**-43 (43 bits) + the rest: k * _LN2_H43 (|k| <= 1075) and
# k * _LN2_H43 + log c, log c rounded to a multiple of 2**-43, are exact.
_LN2_H43 = round(math.log(2) * 2**43) / 2**43
with localcontext() as _ctx:
    _ctx.prec = 40
    _LN2_L43 = float(Decimal(2).ln() - Decimal(_LN2_H43))
# log(1 + r) = r - r**2/2 + r**3 (_P0 + _P1 r + ... + _P5 r**5) on the cells' r range
# [-0.005636, 0.005738]: minimax for the error relative to log(1 + r), doubles (fitted
# by hybrid_gp/bench/minimax.py), below 2**-69.5.
_P0, _P1, _P2 = 0.333333333333334, -0.24999999999998418, 0.19999999987434008
_P3, _P4, _P5 = -0.16666666823374185, 0.14286396646892802, -0.12496660379970727


def _log_table() -> tuple[np.ndarray, np.ndarray]:
    """Per cell: log c rounded to a multiple of 2**-43, with 1/c packed into the low 8
    bits of its double (which are zero: |log c| < 0.5), and the rest of log c.

    1/c = (code + 176) / 256, code the low 8 bits. log c = -log(1/c) to 40 digits with
    the decimal module; the rest is below 2**-44 and exact to 2**-97.
    """
    bits = _LOG_OFF + (np.arange(_LOG_N, dtype=np.int64) << 45)
    first = bits.view(np.float64)
    last = (bits + (1 << 45) - 1).view(np.float64)
    centre = (first + last) / 2
    invc = np.where(centre < 1.0, np.round(_LOG_N / centre) / _LOG_N,
                    np.round(2 * _LOG_N / centre) / (2 * _LOG_N))
    packed = np.empty(_LOG_N, dtype=np.int64)
    tail = np.empty(_LOG_N)
    with localcontext() as ctx:
        ctx.prec = 40
        for j in range(_LOG_N):
            exact = -Decimal(float(invc[j])).ln()
            logc = float(round(exact * 2**43)) / 2**43
            tail[j] = float(exact - Decimal(logc))
            packed[j] = np.float64(logc).view(np.int64) | (int(invc[j] * 256) - 176)
    return packed, tail


_LOG_PACKED, _LOG_TAIL = _log_table()
_MIN_NORMAL = 2.2250738585072014e-308
_TWO52 = 4503599627370496.0


@njit(**_CORE)
def _log_dd(v):
    """log(v) as hi + lo, relative error below 2**-67.5 (largest near v = 1, where log c
    is 0); v finite, > 0. Not normalised: |lo| < 1e-5 |hi|. log(1) is (0, 0)."""
    tiny = v < _MIN_NORMAL  # subnormal: scaled by 2**52, the exponent corrected below
    ix = _bits(v * _TWO52 if tiny else v) - ((52 << 52) if tiny else 0)
    tmp = ix - _LOG_OFF
    j = (tmp >> 45) & (_LOG_N - 1)
    kd = np.float64(tmp >> 52)
    z = _float(ix - (tmp & _EXP_MASK))
    ent = _LOG_PACKED[j]
    logc = _float(ent & -256)
    invc = fma(np.float64(ent & 255), 1 / 256, 176 / 256)
    r = fma(z, invc, -1.0)  # exact
    t1 = fma(kd, _LN2_H43, logc)  # exact
    ar = -0.5 * r
    ar2 = r * ar
    hi = (t1 + r) + ar2
    # t1 + r - r**2/2 - hi, rounded once: hi - t1 and r - (hi - t1) are exact (to
    # 2**-96 where t1 != 0), and fma adds -r**2/2 exactly.
    lo = fma(ar, r, r - (hi - t1)) + fma(kd, _LN2_L43, _LOG_TAIL[j])
    q = fma(ar2, fma(r, -8.0 * _P5, -8.0 * _P4), fma(r, 4.0 * _P3, 4.0 * _P2))
    q = fma(ar2, q, fma(r, -2.0 * _P1, -2.0 * _P0))  # r * ar2 * q = r**3 (_P0 + ...)
    return hi, fma(r * ar2, q, lo)


# e**(hi + lo) for pow, table-driven: x = hi + lo = (128 k + j) ln2/128 + r with
# |r| <= ln2/256, e**x = 2**k 2**(j/128) e**r. Each table entry holds the 52 mantissa
# bits of 2**(j/128) (in [1, 2)) and, in the top 12 bits, the rest of 2**(j/128)
# relative to it in units of 2**-63 (below 2**-53 in size).
_EXP_N = 128
_N_LN2 = 184.6649652337873  # 128 / ln 2
_LN2N_HI = round(math.log(2) / 128 * 2**42) / 2**42  # 35 bits: k * _LN2N_HI is exact
with localcontext() as _ctx:
    _ctx.prec = 40
    _LN2N_LO = float(Decimal(2).ln() / 128 - Decimal(_LN2N_HI))
# e**r - 1 = r + r**2 (_C0 + _C1 r) + r**4 (_C2 + _C3 r) on |r| <= 0.002709 (a little
# more than ln2/256): minimax for the error relative to e**r, doubles (fitted by
# hybrid_gp/bench/minimax.py), below 2**-65.3.
_C0, _C1 = 0.4999999999999678, 0.1666666666666814
_C2, _C3 = 0.04166668085388548, 0.008333332389767993
_SHIFT_N = _SHIFT + 2046 * 128  # as _SHIFT_K: the low bits are 128 (k + 2046) + j


def _exp_table() -> np.ndarray:
    """2**(j/128) for j < 128 to 40 digits (decimal module), packed as above."""
    out = np.empty(_EXP_N, dtype=np.int64)
    with localcontext() as ctx:
        ctx.prec = 40
        ln2 = Decimal(2).ln()
        for j in range(_EXP_N):
            v = (ln2 * j / _EXP_N).exp()
            hi = float(v)
            rest = round((v - Decimal(hi)) / Decimal(hi) * 2**63)  # |rest| <= 1024
            out[j] = (int(rest) << 52) + (int(np.float64(hi).view(np.int64)) & _MANTISSA)
    return out


_EXP_TABLE = _exp_table()


@njit(**_CORE)
def _exp_dd(hi, lo):
    """e**(hi + lo) for |lo| < 2**-16 |hi|; 0 below -746, inf above 710; NaN in, NaN
    out."""
    xc = -746.0 if hi < -746.0 else hi
    xc = 710.0 if xc > 710.0 else xc
    lo = lo if xc == hi else 0.0  # clamped: the result is 0 or inf whatever lo is
    t = fma(xc + lo, _N_LN2, _SHIFT_N)
    kd = t - _SHIFT_N  # 128 k + j
    r = fma(-kd, _LN2N_HI, xc)  # exact
    r = fma(-kd, _LN2N_LO, r) + lo
    tb = _bits(t)
    ent = _EXP_TABLE[tb & (_EXP_N - 1)]
    r2 = r * r
    u = fma(np.float64(ent >> 52), 2.0**-63, r)  # the table's rest, then e**r - 1
    u = fma(r2, fma(r, _C1, _C0), u)
    u = fma(r2 * r2, fma(r, _C3, _C2), u)
    # 2**(j/128) 2**floor(k/2) from the table's mantissa and the exponent field
    # (k + 2046) >> 1 = tb >> 8; the result rounds once when multiplied by 2**ceil(k/2).
    sc = _float((ent & _MANTISSA) + ((tb >> 8) << 52))
    return fma(sc, u, sc) * _float(((tb >> 7) - (tb >> 8)) << 52)


@njit(**_CORE)
def pow_regular(a, b):
    """|a| ** b where 0 < |a| < inf and b is finite (other lanes: `pow_special`)."""
    bd = np.float64(b)
    lh, ll = _log_dd(abs(np.float64(a)))
    yh = bd * lh
    return _exp_dd(yh, fma(bd, ll, fma(bd, lh, -yh)))


@njit(**_CORE)
def pow_is_regular(a, b):
    v = abs(a)
    return (v > 0.0) & (v < np.inf) & (abs(b) < np.inf)


@njit(**_CORE)
def pow_special(a, b):
    """|a| ** b where a is zero, inf or NaN or b is inf or NaN: C99/IEEE pow's rules
    as selects. 1 when b == 0 or |a| == 1 (NaN or not); otherwise NaN in, NaN out;
    otherwise the result is inf when |a| > 1 and b > 0 agree (inf ** 2, 0 ** -1,
    2 ** inf, 0.5 ** -inf) and 0 when they differ."""
    v = abs(np.float64(a))
    bd = np.float64(b)
    big = (v > 1.0) == (bd > 0.0)
    out = np.inf if big else 0.0
    out = np.nan if (v != v) | (bd != bd) else out
    return 1.0 if (bd == 0.0) | (v == 1.0) else out


# ------------------------------------------------------------------- block loops
# Loops in place on y[:nb] (one array, so LLVM vectorises them). where (int64) and
# value (float64), of length >= nb, are scratch: the sin/cos elements sent to libm,
# pow's saved exponents. All unary operations share one compiled function: fewer
# functions, faster first call.


@njit(**_LOOP)
def _save_far(y, nb, quarter, where, value):
    """libm's sin/cos (by quarter) of the elements beyond TRIG_LIMIT; their count."""
    wide_vectors()
    m = 0
    for r in range(nb):
        v = np.float64(y[r])
        if abs(v) > TRIG_LIMIT:
            where[m] = r
            value[m] = np.sin(v) if quarter == 0 else np.cos(v)
            m += 1
    return m


@njit(**_LOOP)
def math_block(op, y, nb, where, value):
    """y = op(y) on y[:nb] for op = opcodes EXP, LOG (protected), SIN, COS or TANH."""
    wide_vectors()
    if op == EXP:
        for r in range(nb):
            y[r] = exp1(y[r])
    elif op == LOG:
        for r in range(nb):
            y[r] = log1(y[r])
    elif op == TANH:
        for r in range(nb):
            y[r] = tanh1(y[r])
    else:  # sin(y + quarter*pi/2): sin for quarter 0, cos for quarter 1
        quarter = op - SIN
        n_far = 0
        for r in range(nb):
            n_far += abs(y[r]) > TRIG_LIMIT
        if n_far:
            _save_far(y, nb, quarter, where, value)
        for r in range(nb):
            y[r] = _sincos(y[r], quarter)
        for i in range(n_far):
            y[where[i]] = value[i]


@njit(**_LOOP)
def pow_block(a, ao, y, nb, where, value):
    """y[r] = |a[ao + r]| ** y[r] for r < nb (IEEE pow of |a|: 0 ** -1 = inf,
    nan ** 0 = 1). a must not overlap y; value (float64, >= nb) is scratch, where is
    unused. Zero, inf and NaN arguments get `pow_special` in a second vector pass,
    only where the first found any (it saves the exponents in value as it goes): no
    libm calls, no branches in the loops."""
    wide_vectors()
    x = a[ao:ao + nb]  # sliced first: indexing a[ao + r] keeps the loops scalar
    n_odd = 0
    for r in range(nb):
        u, w = x[r], y[r]
        value[r] = w
        n_odd += not pow_is_regular(u, w)
        y[r] = pow_regular(u, w)
    if n_odd:
        for r in range(nb):
            u, w = x[r], value[r]
            y[r] = y[r] if pow_is_regular(u, w) else pow_special(u, w)


# ------------------------------------------------------- standalone, in place
# For tests and callers outside the interpreter (they allocate their own scratch).


@njit(**_JIT)
def _standalone(op, y, nb):
    math_block(op, y, nb, np.empty(nb, dtype=np.int64), np.empty(nb, dtype=np.float64))


def vexp(y: np.ndarray, nb: int) -> None:
    """y[:nb] = exp(y[:nb])."""
    _standalone(EXP, y, nb)


def vlog(y: np.ndarray, nb: int) -> None:
    """y[:nb] = log|y[:nb]|, 0 where |y| <= EPS (the protected log)."""
    _standalone(LOG, y, nb)


def vsin(y: np.ndarray, nb: int) -> None:
    _standalone(SIN, y, nb)


def vcos(y: np.ndarray, nb: int) -> None:
    _standalone(COS, y, nb)


def vtanh(y: np.ndarray, nb: int) -> None:
    _standalone(TANH, y, nb)


@njit(**_JIT)
def vpow(a, y, nb):
    """y[:nb] = |a[:nb]| ** y[:nb]."""
    pow_block(a, 0, y, nb, np.empty(nb, dtype=np.int64), np.empty(nb, dtype=np.float64))
