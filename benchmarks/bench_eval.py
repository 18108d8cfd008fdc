"""Evaluation throughput benchmark: `python benchmarks/bench_eval.py [--quick] ...`.

The code lives in the package (hybrid_gp/bench/eval.py, also `hybrid-gp bench eval`);
this script only calls it.
"""

import sys

from hybrid_gp.bench.eval import main

if __name__ == "__main__":
    sys.exit(main())
