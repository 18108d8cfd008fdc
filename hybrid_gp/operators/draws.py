"""Where the batch breeder's randomness comes from, and a Generator-shaped view of it.

Each child of a batch owns a row of uniforms: uniform j of child k is SplitMix64
(Steele, Lea and Flood 2014) at counter k * 2**32 + (j mod period) + 1 from the batch's
seed (`ChildDraws`). The kernel (kernels/variation.py) computes only the uniforms a
child uses, about a dozen, instead of a Generator filling every row; one seed per
batch comes from the island's stream. `ChildDraws.rows` writes the rows out.

The Python operators in classic.py and generate.py take a Generator. Handing them a
`UniformDraws` over a child's row makes them consume the numbers exactly as the kernel
does, so they are the kernel's reference twin. The mapping: integers(n) =
floor(u * n), uniform(lo, hi) = lo + (hi - lo) * u, normal = Box-Muller on two
uniforms. Past the end the row wraps around.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # SplitMix64's counter step
MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
MIX_2 = np.uint64(0x94D049BB133111EB)
UNIT = 2.0**-53  # a uniform is the top 53 bits of a mixed word times this


@dataclass(frozen=True)
class ChildDraws:
    """The uniforms of a batch of children: a seed and each row's period (rows wrap)."""

    seed: int
    period: int

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2**64 or not 1 <= self.period < 2**32:
            raise ValueError(f"ChildDraws needs 0 <= seed < 2**64 and 1 <= period < 2**32, "
                             f"got seed {self.seed}, period {self.period}")

    @classmethod
    def draw(cls, rng: np.random.Generator, period: int) -> ChildDraws:
        """A fresh batch seed from `rng` (one draw)."""
        return cls(int(rng.integers(0, 2**64, dtype=np.uint64)), period)

    def kernel_args(self) -> np.ndarray:
        """(seed, period) as the kernel takes them."""
        return np.array([self.seed, self.period], dtype=np.uint64)

    def rows(self, n: int) -> np.ndarray:
        """(n, period) uniforms: row k is child k's, as the kernel computes them."""
        k = np.arange(n, dtype=np.uint64)[:, None]
        j = np.arange(self.period, dtype=np.uint64)[None, :]
        z = np.uint64(self.seed) + ((k << np.uint64(32)) + np.uint64(1) + j) * GOLDEN
        z = (z ^ (z >> np.uint64(30))) * MIX_1
        z = (z ^ (z >> np.uint64(27))) * MIX_2
        z = z ^ (z >> np.uint64(31))
        return (z >> np.uint64(11)).astype(np.float64) * UNIT


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
