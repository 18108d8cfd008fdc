"""`hybrid-gp bench eval`: evaluation throughput against DEAP, numpy and pyoperon.

The same random trees (hg.random_programs, full grammar) and the same data go to every
evaluator in one process. Rounds are interleaved (each round times every evaluator
once, in a rotating order) and medians are reported, so a machine whose load changes
during the run penalises everyone alike. Throughput is node-evaluations per second:
nodes in the trees (terminals included) times rows, divided by the time of one run.

With two threads, the output says whether the second core was free: our CPU time over
wall time (2.0 when both threads ran all along) and the CPU time other processes used
meanwhile, read from /proc/stat where there is one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version

import numba
import numpy as np

from .. import generate
from ..argtypes import OneLineParser, non_negative_int, positive_int
from ..evaluation import MIN_THREADED_WORK
from ..kernels import opcodes as oc
from ..program import Program
from . import contenders as cont
from .args import check_threads, fail, writable_file
from .load import timed

TRANSCENDENTAL = ("exp", "log", "sin", "cos", "tanh", "pow")


@dataclass
class Timings:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    others: list[float | None] = field(default_factory=list)  # other processes' CPU s

    @property
    def median(self) -> float:
        return float(np.median(self.wall))

    def cpu_per_wall(self) -> float:
        return float(np.sum(self.cpu) / np.sum(self.wall))

    def other_cores(self) -> float | None:
        if any(o is None for o in self.others):
            return None
        return float(np.sum(self.others) / np.sum(self.wall))  # type: ignore[arg-type]


def _time_once(ev: cont.Evaluator, threads: int, t: Timings) -> None:
    _, wall, cpu, others = timed(lambda: ev.run(threads))
    t.wall.append(wall)
    t.cpu.append(cpu)
    t.others.append(others)


def _agreement(ours: np.ndarray | None, theirs: np.ndarray | None, rtol: float) -> str:
    """Share of outputs equal within rtol where both are finite, and of equal
    finite/non-finite pattern."""
    if ours is None or theirs is None:
        return "n/a"
    a, b = ours.astype(np.float64), theirs.astype(np.float64)
    fa, fb = np.isfinite(a), np.isfinite(b)
    both = fa & fb
    with np.errstate(all="ignore"):
        close = np.abs(a[both] - b[both]) <= rtol * np.maximum(np.abs(b[both]), 1e-300)
    return (f"{np.mean(close):.2%} within {rtol:g} relative where both finite, "
            f"{np.mean(fa == fb):.2%} same finite pattern")


def describe(programs: Sequence[Program]) -> str:
    g = programs[0].grammar
    names = [oc.NAMES[g.primitives[c].opcode] for p in programs for c in p.codes if c >= 0]
    nodes = sum(p.size for p in programs)
    share = sum(n in TRANSCENDENTAL for n in names) / nodes
    return (f"{len(programs)} trees, mean {nodes / len(programs):.1f} nodes, "
            f"{share:.0%} of nodes transcendental ({', '.join(TRANSCENDENTAL)})")


def bench_rows(programs: Sequence[Program], n_rows: int, args: argparse.Namespace,
               rng: np.random.Generator) -> dict:
    """Time every evaluator on n_rows rows; print the table; return the figures."""
    X = rng.uniform(-3.0, 3.0, size=(n_rows, args.features))
    threads = tuple(args.threads)
    evs = [cont.kernel(programs, X, "float64", threads),
           cont.kernel(programs, X, "float32", threads)]
    if cont.pyoperon_available() and not args.no_pyoperon:
        evs.append(cont.operon(programs, X, threads))
    evs.append(cont.deap_compiled(programs, X))
    evs.append(cont.numpy_per_node(programs, X))
    evs.append(cont.kernel(programs, X, "float64", (1,), compile_each=True))
    evs.append(cont.kernel(programs, X, "float64", (1,), compile_each=True,
                           from_programs=True))
    evs.append(cont.deap_compiled(programs, X, compile_each=True))
    runs = [(ev, t) for ev in evs for t in ev.threads]
    timings = {(ev.name, t): Timings() for ev, t in runs}
    for ev, t in runs:  # warm-up (JIT, caches); the slow numpy ones need none
        if ev.name.startswith(("hybrid_gp", "pyoperon")):
            ev.run(t)
    for r in range(args.rounds):
        for ev, t in runs[r % len(runs):] + runs[:r % len(runs)]:
            _time_once(ev, t, timings[(ev.name, t)])

    def reference(ev: cont.Evaluator, t: int) -> float:
        """The median of the evaluator of ours that `ev` is compared with."""
        same = timings.get((ev.baseline, t)) or timings[(ev.baseline, 1)]
        return same.median

    print(f"\nn = {n_rows} rows")
    print(f"  {'evaluator':26s}{'threads':>4s}{'median s':>11s}{'G node-evals/s':>16s}"
          f"{'hybrid_gp float64 is':>24s}")
    rows = []
    for ev, t in runs:
        med = timings[(ev.name, t)].median
        rate = ev.nodes * n_rows / med / 1e9
        ratio = med / reference(ev, t) * (sum(p.size for p in programs) / ev.nodes)
        note = f" ({ev.skipped} trees it cannot express left out)" if ev.skipped else ""
        versus = "" if ev.baseline == "hybrid_gp float64" else f" (vs {ev.baseline})"
        print(f"  {ev.name:26s}{t:4d}{med:11.4f}{rate:16.3f}{ratio:21.2f}x faster"
              f"{versus}{note}")
        rows.append({"evaluator": ev.name, "threads": t, "seconds": med,
                     "g_node_evals_per_s": rate, "hybrid_gp_speedup": ratio,
                     "compared_with": ev.baseline})
    figures = {"rows": n_rows, "table": rows}
    if 2 in threads:
        for name in ("hybrid_gp float64", "pyoperon"):
            if name.startswith("hybrid_gp") and evs[0].nodes * n_rows < MIN_THREADED_WORK:
                print(f"  second thread, {name}: not used (under "
                      f"evaluation.MIN_THREADED_WORK = {MIN_THREADED_WORK} node-evals)")
            elif (name, 2) in timings:
                t1, t2 = timings[(name, 1)], timings[(name, 2)]
                others = t2.other_cores()
                free = "unknown" if others is None else ("yes" if others < 0.25 else "no")
                print(f"  second thread, {name}: {t1.median / t2.median:.2f}x; "
                      f"cpu/wall {t2.cpu_per_wall():.2f}; other processes used "
                      f"{'?' if others is None else f'{others:.2f}'} cores -> "
                      f"second core free: {free}")
                figures[f"second_thread_{name}"] = {
                    "speedup": t1.median / t2.median, "cpu_per_wall": t2.cpu_per_wall(),
                    "other_cores": others, "free": free}
    ours = evs[0].outputs()
    for ev in evs[1:]:
        rtol = 1e-3 if ev.name == "pyoperon" or ev.name.endswith("float32") else 1e-9
        print(f"  outputs vs {ev.name}: {_agreement(ours, ev.outputs(), rtol)}")
    return figures


FIRST_CALL_REPEATS = 3  # fresh caches; the median and the range are printed


def compile_times(repeats: int = FIRST_CALL_REPEATS) -> dict:
    """First-call times in fresh processes, `repeats` times: cold (an empty cache
    directory of its own), then warm (a second process on that directory), then the
    floor: a one-line cached kernel's warm first call on the same directory
    (first_call --floor). One figure of a few seconds on a shared machine can be off
    by half a second, so the median is the figure and the range is printed beside it."""
    out: dict[str, list[dict]] = {"cold": [], "warm": [], "floor": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, NUMBA_CACHE_DIR=cache)
            for label, flags in (("cold", []), ("warm", []), (None, ["--floor"]),
                                 ("floor", ["--floor"])):
                proc = subprocess.run(
                    [sys.executable, "-m", "hybrid_gp.bench.first_call", *flags], env=env,
                    capture_output=True, text=True, check=True)
                if label is not None:  # the floor kernel's cold run only fills the cache
                    out[label].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def _spread(runs: list[dict], key: str, digits: int) -> str:
    """'median s (min-max over n runs)' of one first-call figure."""
    values = sorted(r[key] for r in runs)
    text = f"{float(np.median(values)):.{digits}f} s"
    if len(values) > 1:
        text += f" ({values[0]:.{digits}f}-{values[-1]:.{digits}f}, {len(values)} runs)"
    return text


def _above(ours: list[dict], floor: list[dict]) -> str:
    """Median of our warm first call minus the floor's, repeat by repeat (each pair ran
    one after the other on the same cache directory)."""
    gaps = [o["evaluate_s"] - f["floor_s"] for o, f in zip(ours, floor, strict=True)]
    return f"{float(np.median(gaps)):.3f} s"


def _targets(figures: list[dict], compiled: dict | None) -> None:
    def rate(fig: dict, name: str, t: int) -> float | None:
        return next((r["g_node_evals_per_s"] for r in fig["table"]
                     if r["evaluator"] == name and r["threads"] == t), None)

    def speedup(fig: dict, name: str) -> float | None:
        return next((r["hybrid_gp_speedup"] for r in fig["table"]
                     if r["evaluator"] == name and r["threads"] == 1), None)

    def seconds(fig: dict, name: str) -> float:
        return next(r["seconds"] for r in fig["table"]
                    if r["evaluator"] == name and r["threads"] == 1)

    print("\ntargets (issue 3; timings, not tests):")
    big = [f for f in figures if f["rows"] >= 1000]
    per_thread = ", ".join(f"{rate(f, 'hybrid_gp float64', 1):.2f} (n={f['rows']})" for f in big)
    print(f"  >= 1.0 G node-evals/s per thread at n >= 1k, float64: {per_thread or 'n/a'}")
    one_k = [f for f in figures if f["rows"] == 1000]
    deap = speedup(one_k[0], cont.DEAP_COMPILING) if one_k else None
    objects = seconds(one_k[0], cont.DEAP_COMPILING) / seconds(
        one_k[0], cont.OURS_COMPILING_PROGRAMS) if one_k else None
    bare = speedup(one_k[0], "DEAP numpy, precompiled") if one_k else None
    print(f"  >= 8x DEAP compile+numpy at n = 1k: "
          f"{'n/a' if deap is None else f'{deap:.1f}x'} compiling the batch from the "
          f"flat arrays children are bred into and evaluating it, as a GP run does; "
          f"{'n/a' if objects is None else f'{objects:.1f}x'} compiling Program objects "
          f"instead; {'n/a' if bare is None else f'{bare:.1f}x'} evaluating trees "
          f"compiled beforehand")
    vs_op = [f"{s:.2f}x (n={f['rows']})" for f in figures
             for s in [speedup(f, "pyoperon")] if s is not None]
    print(f"  hybrid_gp / pyoperon speed, one thread, >= 0.6x (goal 1.0x): "
          f"{', '.join(vs_op) or 'n/a'}")
    second = [f.get("second_thread_hybrid_gp float64") for f in figures]
    text = ", ".join(f"{s['speedup']:.2f}x (n={f['rows']}, core free: {s['free']})"
                     for f, s in zip(figures, second, strict=True) if s)
    print(f"  >= 1.8x from the second thread when it is free: {text or 'n/a'}")
    worst = min(speedup(f, "numpy per node") or np.inf for f in figures)
    print(f"  never slower than numpy per node: slowest ratio {worst:.1f}x")
    if compiled:
        c, w = compiled["cold"], compiled["warm"]
        print(f"  cold first call <= 5 s: evaluate {_spread(c, 'evaluate_s', 2)} wall, "
              f"{_spread(c, 'evaluate_cpu_s', 2)} cpu; then fitness "
              f"{_spread(c, 'fitness_s', 2)}")
        print(f"  warm-cache first call <= 0.5 s: evaluate {_spread(w, 'evaluate_s', 3)}, "
              f"fitness {_spread(w, 'fitness_s', 3)}")
        if compiled.get("floor"):
            f = compiled["floor"]
            print(f"    beside it, any cached Numba kernel's first call here (a one-line "
                  f"kernel, numba's import included): {_spread(f, 'floor_s', 3)}; ours "
                  f"above that floor: {_above(w, f)}")


def build_parser() -> argparse.ArgumentParser:
    """The options of `hybrid-gp bench eval`; every number is checked as it is parsed."""
    p = OneLineParser(
        prog="hybrid-gp bench eval",
        description="Evaluation throughput of hybrid_gp's kernels against DEAP "
                    "compile+numpy, numpy one op per node and pyoperon (if installed).")
    p.add_argument("--rows", type=positive_int, nargs="+", default=[100, 1000, 10000, 100000],
                   help="data sizes to time (default: 100 1000 10000 100000)")
    p.add_argument("--trees", type=positive_int, default=1000,
                   help="random trees (default 1000)")
    p.add_argument("--rounds", type=positive_int, default=5,
                   help="interleaved rounds (default 5)")
    p.add_argument("--threads", type=positive_int, nargs="+", default=[1, 2],
                   help="thread counts for the threaded evaluators (default: 1 2)")
    p.add_argument("--features", type=positive_int, default=2, help="input columns (default 2)")
    p.add_argument("--depth", type=non_negative_int, nargs=2, default=[4, 8],
                   metavar=("MIN", "MAX"),
                   help="tree depths for hg.random_programs, MIN <= MAX (default 4 8)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--quick", action="store_true",
                   help="a short run: 300 trees, 100 and 1000 rows, 3 rounds, no compile "
                        "timing")
    p.add_argument("--no-pyoperon", action="store_true", help="leave pyoperon out")
    p.add_argument("--no-compile", action="store_true",
                   help="skip timing the first call in fresh processes")
    p.add_argument("--json", metavar="FILE", type=writable_file,
                   help="also write the figures to FILE (checked to be writable up front)")
    return p


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """What argparse's per-value types cannot check: MIN <= MAX and the thread pool."""
    low, high = args.depth
    if low > high:
        fail(parser, "--depth", "MIN <= MAX", f"'{low} {high}'")
    check_threads(parser, args.threads)
    if 1 not in args.threads:
        args.threads = [1, *args.threads]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; usage errors exit with status 2 before any timing."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.trees, args.rows, args.rounds = min(args.trees, 300), [100, 1000], 3
        args.no_compile = True
    _check(args, parser)
    programs = generate.random_programs("full", args.trees, args.features, seed=args.seed,
                                        min_depth=args.depth[0], max_depth=args.depth[1])
    pyop = (f"pyoperon {version('pyoperon')}" if cont.pyoperon_available()
            else "pyoperon not installed")
    print(f"hybrid-gp bench eval: {describe(programs)}; full grammar, depth "
          f"{args.depth[0]}-{args.depth[1]}, {args.features} features, X ~ U(-3, 3); "
          f"medians of {args.rounds} interleaved rounds")
    print(f"machine: {os.cpu_count()} cores; numba {numba.__version__} "
          f"({numba.config.NUMBA_NUM_THREADS} threads); deap {version('deap')}; {pyop}")
    rng = np.random.default_rng(args.seed)
    figures = [bench_rows(programs, n, args, rng) for n in args.rows]
    compiled = None if args.no_compile else compile_times()
    _targets(figures, compiled)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"figures": figures, "compile": compiled, "args": vars(args)}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
