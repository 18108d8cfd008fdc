"""`hybrid-gp bench run`: whole runs side by side with pyoperon.

The same problem (Nguyen-7's formula on 20 rows, and on 10k rows drawn from its
domain), the same population size and the same evaluation budget, for us and for
pyoperon (when installed) in one process; rounds interleave the contenders and medians
are reported. Our rate is given twice: children made and scored per second (cache hits
included: what the search advanced by) and real evaluations per second. pyoperon's
is its evaluation count (local search turned off) per second of `fit`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..api import run
from ..problem import Budget, Problem, get_problem

KOZA_SYMBOLS = "add,sub,mul,div,sin,cos,exp,log,variable"


@dataclass
class Timing:
    seconds: list[float] = field(default_factory=list)
    evaluations: list[int] = field(default_factory=list)
    children: list[int] = field(default_factory=list)

    def rate(self, counts: list[int]) -> float:
        return statistics.median(c / s for c, s in zip(counts, self.seconds, strict=True))


def problem_with_rows(rows: int, seed: int) -> Problem:
    """Nguyen-7's formula on `rows` points from its domain (its own 20 rows for 20)."""
    base = get_problem("nguyen-7")
    if rows == base.train.n_rows:
        return base
    assert base.formula is not None
    X = np.random.default_rng(seed).uniform(0.0, 2.0, size=(rows, 1))
    return Problem.from_data(X, base.formula.evaluate(X), grammar="koza",
                             name=f"nguyen-7-{rows}rows", budget=Budget())


def ours(problem: Problem, population: int, evaluations: int, threads: int,
         seed: int) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    # Plain GP on both sides: pyoperon's local search is off, and so are our restarts
    # and semantic children (the Nguyen suite's defaults turn them on).
    res = run(problem, seed=seed, max_evaluations=evaluations, population_size=population,
              time_budget=1e9, target_error=0.0, n_jobs=threads, max_size=50,
              restart_after=0, semantic_share=0.0)
    return time.perf_counter() - t0, res.stats["evaluations"], res.stats["children"]


def operon(problem: Problem, population: int, evaluations: int, threads: int,
           seed: int) -> tuple[float, int, int] | None:
    try:
        from pyoperon.sklearn import SymbolicRegressor
    except ImportError:
        return None
    model = SymbolicRegressor(
        population_size=population, max_evaluations=evaluations, generations=10**7,
        n_threads=threads, allowed_symbols=KOZA_SYMBOLS, max_length=50,
        optimizer_iterations=0, random_state=seed)
    t0 = time.perf_counter()
    model.fit(problem.train.X, problem.train.y)
    seconds = time.perf_counter() - t0
    count = int(model.stats_["evaluation_count"])
    return seconds, count, count


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hybrid-gp bench run", description=__doc__)
    parser.add_argument("--rows", default="20,10000", help="comma-separated row counts")
    parser.add_argument("--population", type=int, default=500)
    parser.add_argument("--evaluations", type=int, default=100_000)
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows_list = [int(r) for r in args.rows.split(",")]
    threads_list = [int(t) for t in args.threads.split(",")]
    contenders = {"hybrid_gp": ours, "pyoperon": operon}
    print(f"bench run: Nguyen-7 formula, population {args.population}, "
          f"{args.evaluations:,} evaluations, {args.rounds} interleaved rounds, medians")
    warm = problem_with_rows(20, args.seed)  # compile every kernel before timing
    ours(warm, 20, 200, 1, args.seed)
    for rows in rows_list:
        problem = problem_with_rows(rows, args.seed)
        for threads in threads_list:
            timings = {name: Timing() for name in contenders}
            for r in range(args.rounds):
                order = list(contenders.items())
                if r % 2:
                    order.reverse()
                for name, fn in order:
                    out = fn(problem, args.population, args.evaluations, threads,
                             args.seed + r)
                    if out is None:
                        continue
                    timings[name].seconds.append(out[0])
                    timings[name].evaluations.append(out[1])
                    timings[name].children.append(out[2])
            _report(rows, threads, timings)
    return 0


def _report(rows: int, threads: int, timings: dict[str, Timing]) -> None:
    ours_t, op = timings["hybrid_gp"], timings["pyoperon"]
    kids, evals = ours_t.rate(ours_t.children), ours_t.rate(ours_t.evaluations)
    line = (f"rows {rows:>6} threads {threads}: hybrid_gp {kids:>10,.0f} children/s "
            f"({evals:>10,.0f} real evaluations/s)")
    if op.seconds:
        theirs = op.rate(op.evaluations)
        line += (f" | pyoperon {theirs:>10,.0f} evaluations/s | ratio children "
                 f"{kids / theirs:.2f}x, real {evals / theirs:.2f}x")
    else:
        line += " | pyoperon not installed (pip install .[bench])"
    print(line, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
