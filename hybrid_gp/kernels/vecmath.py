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
# Taylor coefficients 1/n!, n = 2..13: e^r - 1 - r on |r| <= ln2/2 to < 2**-60 relative.
_F2, _F3, _F4, _F5 = 1 / 2, 1 / 6, 1 / 24, 1 / 120
_F6, _F7, _F8, _F9 = 1 / 720, 1 / 5040, 1 / 40320, 1 / 362880
_F10, _F11, _F12, _F13 = 1 / 3628800, 1 / 39916800, 1 / 479001600, 1 / 6227020800


@njit(**_CORE)
def _expm1_reduced(r):
    """e**r - 1 for |r| <= ln2/2 (a little beyond is fine)."""
    q = fma(_F13, r, _F12)
    q = fma(q, r, _F11)
    q = fma(q, r, _F10)
    q = fma(q, r, _F9)
    q = fma(q, r, _F8)
    q = fma(q, r, _F7)
    q = fma(q, r, _F6)
    q = fma(q, r, _F5)
    q = fma(q, r, _F4)
    q = fma(q, r, _F3)
    q = fma(q, r, _F2)
    return fma(r * r, q, r)


@njit(**_CORE)
def _exp_dd(hi, lo):
    """e**(hi + lo) for |lo| << |hi|; 0 below -746 and inf above 710; NaN in, NaN out."""
    xc = -746.0 if hi < -746.0 else hi
    xc = 710.0 if xc > 710.0 else xc
    lo = lo if xc == hi else 0.0  # clamped: the result is 0 or inf whatever lo is
    xs = xc if xc == xc else 0.0  # keeps the integer conversion defined for NaN
    kd = (xs * _INV_LN2 + _SHIFT) - _SHIFT
    r = fma(-kd, _LN2_HI, xc)  # exact
    r = fma(-kd, _LN2_LO, r) + lo
    p = 1.0 + _expm1_reduced(r)
    k = np.int64(kd)  # -1076..1025: split in two so subnormal and inf results round once
    k1 = k >> 1
    return p * _pow2(k1) * _pow2(k - k1)


@njit(**_CORE)
def exp1(x):
    return _exp_dd(np.float64(x), 0.0)


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
def _log_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1/c and log(c) (as hi + lo) for the _LOG_N cells of width 1/180, c = (127 + j)/180.

    1/c is 180 / (127 + j) rounded once, which is what `_log_dd` computes by division
    (a division is cheaper than a table gather here); log(c) = -log(1/c) of that
    double, to 40 digits with the decimal module. Cell 53 has c = 1 exactly (1/c = 1,
    log c = 0), so log|a| keeps its relative accuracy for a near 1.
    """
    inv = 180.0 / (127.0 + np.arange(_LOG_N, dtype=np.float64))
    hi = np.empty(_LOG_N)
    lo = np.empty(_LOG_N)
    with localcontext() as ctx:
        ctx.prec = 40
        for j in range(_LOG_N):
            exact = -Decimal(float(inv[j])).ln()
            hi[j] = float(exact)
            lo[j] = float(exact - Decimal(hi[j]))
    return inv, hi, lo


_LOG_LO = 1.0 - 53.5 / 180  # cells [_LOG_LO + j/180, _LOG_LO + (j+1)/180) cover [0.7, 1.42)
_LOG_N = 130
_INVC, _LOGC_HI, _LOGC_LO = _log_table()
_MIN_NORMAL = 2.2250738585072014e-308
_TWO52 = 4503599627370496.0


@njit(**_CORE)
def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(**_CORE)
def _log_dd(v):
    """log(v) as hi + lo with relative error below about 2**-62; v finite, > 0."""
    tiny = v < _MIN_NORMAL
    v = v * _TWO52 if tiny else v
    m, e = _split(v)
    e = e - 52 if tiny else e
    j = np.int64((m - _LOG_LO) * 180.0)
    j = 0 if j < 0 else (_LOG_N - 1 if j > _LOG_N - 1 else j)
    invc = 180.0 / (127.0 + np.float64(j))  # = _INVC[j], without a gather
    ph = m * invc
    pl = fma(m, invc, -ph)  # m * invc = ph + pl exactly
    rh0 = ph - 1.0  # exact
    r = rh0 + pl
    rl = pl - (r - rh0)  # r + rl = m/c - 1 exactly; |r| < 0.004
    r2 = r * r
    r2l = fma(r, r, -r2)
    q = fma(-1 / 8, r, 1 / 7)  # log(1+r) = r - r**2/2 + r**3 * q(r), to r**8
    q = fma(q, r, -1 / 6)
    q = fma(q, r, 1 / 5)
    q = fma(q, r, -1 / 4)
    q = fma(q, r, 1 / 3)
    ek = np.float64(e)
    a1, e1 = _two_sum(ek * _LN2_HI, _LOGC_HI[j])
    a2, e2 = _two_sum(a1, r)
    a3, e3 = _two_sum(a2, -0.5 * r2)
    lo = (e1 + e2 + e3 + ek * _LN2_LO + _LOGC_LO[j] + rl - 0.5 * r2l - r * rl
          + r2 * r * q)
    hi = a3 + lo
    return hi, lo - (hi - a3)


@njit(**_CORE)
def pow_regular(a, b):
    """|a| ** b where 0 < |a| < inf and b is finite (other lanes: `pow_special`)."""
    v = abs(np.float64(a))
    bd = np.float64(b)
    lh, ll = _log_dd(v)
    yh = bd * lh
    yl = fma(bd, lh, -yh) + bd * ll
    out = _exp_dd(yh, yl)
    return 1.0 if v == 1.0 else out


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
    unused. Zero, inf and NaN arguments get `pow_special` in a second vector pass
    (the exponents are saved first): no libm calls, no branches in the loops."""
    wide_vectors()
    x = a[ao:ao + nb]  # sliced first: indexing a[ao + r] keeps the loops scalar
    n_odd = 0
    for r in range(nb):
        n_odd += not pow_is_regular(x[r], y[r])
    if n_odd:
        for r in range(nb):
            value[r] = y[r]
    for r in range(nb):
        y[r] = pow_regular(x[r], y[r])
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
