"""What the command line prints: the progress line of a run and its result."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def progress(label: str, quiet: bool) -> Iterator[Callable[[dict[str, Any]], None] | None]:
    """The on_event callback of a progress line (None when quiet), closed after."""
    line = None if quiet else _Progress(label)
    try:
        yield line.update if line else None
    finally:
        if line:
            line.close()


class _Progress:
    """One status line on stderr: redrawn in place on a terminal, else every 2 s."""

    def __init__(self, label: str):
        self.label = label
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def update(self, event: dict[str, Any]) -> None:
        if event.get("event") != "progress":
            return
        now = time.monotonic()
        if not self.tty and now - self.last < 2.0:
            return
        self.last = now
        rate = event["clock"].get("evaluations_per_second") or 0.0
        best = event["best_error"]
        line = (f"{self.label} | gen {event['generation']:>5} | best {_fmt(best)} | "
                f"size {event['best_complexity'] or 0:>4.0f} | {event['evaluations']:>9,} evals "
                f"| {rate / 1000:7.1f}k evals/s")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _fmt(x: float | None) -> str:
    return "     inf" if x is None else f"{x:8.2e}"


def print_result(result: Any) -> None:
    from .convert import readable_sympy

    s = result.stats
    p = result.problem
    print(f"{p.name} seed {result.config.seed}: stopped by {result.stop_reason} after "
          f"{s['generations']} generations, {s['evaluations']:,} evaluations "
          f"({s['cache_hits']:,} cache hits) in {s['wall_seconds']:.1f} s")
    if result.best is None:
        print("  no program was scored")
        return
    metric = p.metric
    named = p.variables and any(v != f"x{k}" for k, v in enumerate(p.variables))
    print(f"best: {readable_sympy(result.best, p.variables if named else None)}")
    if p.kind == "regression":
        from .simplify import guarded_rows

        rows = guarded_rows(result.best, p.train.X)
        if rows:
            print(f"  note: on {rows} of {p.train.n_rows} training rows this plain formula "
                  f"differs from the program, whose guarded /, log, sqrt and ** "
                  f"(docs/semantics.md) give the error below; the program line is exact")
    print(f"  train {metric} {result.best_error:.3g}, size {result.best.size}"
          + (f", test {metric} {result.test_error:.3g}" if result.test_error is not None
             else ""))
    print(f"  program: {result.best}")
    if named:
        print("  variables: " + ", ".join(f"x{k} = {v}" for k, v in enumerate(p.variables)))
    for name, value in p.baselines().items():
        print(f"  baseline {name}: {value:.4g}")
    cache = s.get("cache")
    if cache and cache.get("lookups"):
        print(f"  cache: {cache['hits']:,} of {cache['lookups']:,} programs scored were hits "
              f"({cache['hit_rate']:.1%}); evaluation time saved about "
              f"{cache['seconds_saved']:.2g} s, hashing cost {cache['hash_seconds']:.2g} s")
        if cache.get("subtree_nodes_planned"):
            share = cache["subtree_nodes_loaded"] / cache["subtree_nodes_planned"]
            print(f"  subtree store: {share:.0%} of the evaluated programs' nodes were "
                  f"loaded from {cache['subtree_stores']:,} stored subtrees, not computed")
    if result.out_dir is not None:
        print(f"  run directory: {result.out_dir}")


def print_summary(errors: list[float], target_error: float) -> None:
    solved = sum(e <= target_error for e in errors)
    print(f"\n{len(errors)} runs: median train error {statistics.median(errors):.3g}; "
          f"{solved} reached the target error")
