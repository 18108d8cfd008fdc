"""Time the first kernel calls of a fresh process (run by `hybrid-gp bench eval`).

`python -m hybrid_gp.bench.first_call` prints one JSON line: the wall and CPU seconds
of the first hg.evaluate and hg.fitness calls (the package is already imported).
With an empty NUMBA_CACHE_DIR that is the cold compile; run again on the same
directory, the warm-cache load. With `--floor` it times instead the first call of a
one-line cached kernel (bench/floor_kernel.py): what any cached Numba kernel's first
call costs here, numba's import included.
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    import numpy as np

    import hybrid_gp as hg

    if "--floor" in sys.argv[1:]:
        t0, c0 = time.perf_counter(), time.process_time()
        from .floor_kernel import add_one

        add_one(np.ones(3))
        print(json.dumps({"floor_s": time.perf_counter() - t0,
                          "floor_cpu_s": time.process_time() - c0}))
        return

    programs = hg.random_programs("full", 50, 2, seed=0)
    X = np.random.default_rng(0).uniform(-3, 3, (100, 2))
    result = {}
    for name, call in [("evaluate", lambda: hg.evaluate(programs, X)),
                       ("fitness", lambda: hg.fitness(programs, X, X[:, 0]))]:
        t0, c0 = time.perf_counter(), time.process_time()
        call()
        result[f"{name}_s"] = time.perf_counter() - t0
        result[f"{name}_cpu_s"] = time.process_time() - c0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
