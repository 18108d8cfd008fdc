"""Time the first kernel calls of a fresh process (run by `hybrid-gp bench eval`).

`python -m hybrid_gp.bench.first_call` prints one JSON line: the wall and CPU seconds
of the first hg.evaluate and hg.fitness calls (the package is already imported).
With an empty NUMBA_CACHE_DIR that is the cold compile; run again on the same
directory, the warm-cache load.
"""

from __future__ import annotations

import json
import time


def main() -> None:
    import numpy as np

    import hybrid_gp as hg

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
