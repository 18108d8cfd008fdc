"""Keep the garbage collector off the objects that were alive before a run.

A run allocates hundreds of thousands of short-lived objects (children, keys), so
Python's cyclic collector runs often, and each full collection walks every tracked
object in the process: the imported modules of numba, sympy and pyglove alone are about
200,000. `frozen_heap` moves those to the collector's permanent generation for the
run's duration (gc.freeze) and back afterwards (gc.unfreeze); what the run allocates is
collected as usual. It measured 4 % of a 20-row Nguyen-7 run (full collections 0.19 s
against 0.06 s of 3.2 s). Nested or concurrent runs share one freeze.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Within the block, objects that existed at its start are not scanned by the
    collector (they stay alive; garbage among them is collected after the block)."""
    global _depth
    with _lock:
        _depth += 1
        if _depth == 1:
            gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.unfreeze()
