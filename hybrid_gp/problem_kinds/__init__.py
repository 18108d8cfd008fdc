"""Problem kinds beyond regression, each in its own module: Boolean functions on
packed bits, online bin packing, and approximating 2^x. A suite file picks one with
`kind = "..."`; hybrid_gp.problem dispatches to the builder named here."""

from __future__ import annotations

from .binpack import KIND as BINPACK
from .boolean import KIND as BOOLEAN
from .exp2 import KIND as EXP2

KINDS = (BOOLEAN, BINPACK, EXP2)

__all__ = ["BINPACK", "BOOLEAN", "EXP2", "KINDS"]
