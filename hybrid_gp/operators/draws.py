"""A Generator-shaped view of a fixed array of uniforms.

The batch breeder (kernels/variation.py) reads its randomness from pre-drawn uniforms;
the Python operators in classic.py and generate.py take a Generator. Handing those
operators a `UniformDraws` over the same array makes them consume the numbers exactly
as the kernel does, so they are the kernel's reference twin. The mapping:
integers(n) = floor(u * n), uniform(lo, hi) = lo + (hi - lo) * u, normal = Box-Muller
on two uniforms. Past the end the array wraps around.
"""

from __future__ import annotations

import math

import numpy as np


class UniformDraws:
    """Sequential draws from one row of uniforms in [0, 1)."""

    def __init__(self, uniforms: np.ndarray):
        self.u = np.asarray(uniforms, dtype=np.float64).ravel()
        self.cursor = 0

    def _next(self) -> float:
        v = float(self.u[self.cursor % len(self.u)])
        self.cursor += 1
        return v

    def random(self, size: int | None = None) -> float | np.ndarray:
        if size is None:
            return self._next()
        return np.array([self._next() for _ in range(size)])

    def integers(self, n: int) -> int:
        return min(int(self._next() * n), n - 1)

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self._next()

    def normal(self, loc: float = 0.0, scale: float = 1.0,
               size: int | None = None) -> float | np.ndarray:
        if size is None:
            return loc + scale * self._box_muller()
        return np.array([loc + scale * self._box_muller() for _ in range(size)])

    def _box_muller(self) -> float:
        u1, u2 = self._next(), self._next()
        return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)
