"""Element-wise exp, log, sin, cos over a row block, in place.

These loops call libm one element at a time. They follow docs/semantics.md (log is
protected: log(|a|), 0 where |a| <= EPS).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .opcodes import EPS

_JIT = dict(cache=True, error_model="numpy", nogil=True)


@njit(**_JIT)
def vexp(a, nb):
    for r in range(nb):
        a[r] = np.exp(a[r])


@njit(**_JIT)
def vlog(a, nb):
    for r in range(nb):
        v = abs(a[r])
        a[r] = 0.0 if v <= EPS else np.log(v)


@njit(**_JIT)
def vsin(a, nb):
    for r in range(nb):
        a[r] = np.sin(a[r])


@njit(**_JIT)
def vcos(a, nb):
    for r in range(nb):
        a[r] = np.cos(a[r])
