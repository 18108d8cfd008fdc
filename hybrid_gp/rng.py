"""Named random streams from one root seed.

`stream(seed, "search", 0)` is an independent numpy Generator for every distinct name
path, the same on every machine and Python version (names are hashed with sha256,
never Python's salted hash). Nothing here touches global random state.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _key(part: str | int) -> int:
    if isinstance(part, int):
        return part
    return int.from_bytes(hashlib.sha256(part.encode()).digest()[:4], "little")


def seed_sequence(seed: int, *names: str | int) -> np.random.SeedSequence:
    return np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(_key(n) for n in names))


def stream(seed: int, *names: str | int) -> np.random.Generator:
    """An independent Generator for the stream `names` under root `seed`."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, *names)))
