"""Generations per second with a slow LLM endpoint against none (issue 6's target).

The scripted OpenAI-compatible server of the test suite answers every request after
`--latency` seconds; a run with LLM share `--rate` must keep at least 80% of the
classic generation rate of the same run without LLM. Rounds alternate the two and
medians are printed. Usage: python benchmarks/bench_llm_latency.py [--latency 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from llm_server import KEY_ENV, ScriptedServer, exprs, llm_config

import hybrid_gp as hg


def generations_per_second(llm: object, generations: int, seed: int) -> tuple[float, dict]:
    t0 = time.perf_counter()
    res = hg.run("nguyen-7", seed=seed, llm=llm, generations=generations, time_budget=1e9,
                 target_error=0.0, max_evaluations=10**9)
    return res.stats["generations"] / (time.perf_counter() - t0), res.stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--generations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault(KEY_ENV, "sk-benchmark")
    hg.run("nguyen-7", seed=0, generations=3)  # compile before timing
    with ScriptedServer(default=exprs("x0 * x0", "log(x0 + x0 / x0)", delay=args.latency)
                        ) as server:
        llm = llm_config(server.base_url, rate=args.rate, timeout=args.latency + 5)
        plain, with_llm, calls = [], [], []
        for r in range(args.rounds):
            order = [("plain", None), ("llm", llm)]
            for name, cfg in (order if r % 2 == 0 else order[::-1]):
                rate, stats = generations_per_second(cfg, args.generations, seed=r)
                (plain if name == "plain" else with_llm).append(rate)
                if cfg is not None:
                    calls.append(stats["llm_calls"])
    ratio = statistics.median(with_llm) / statistics.median(plain)
    print(f"latency {args.latency:g} s, LLM share {args.rate:g}, {args.generations} "
          f"generations x {args.rounds} rounds (medians)")
    print(f"  without LLM: {statistics.median(plain):8.1f} generations/s")
    print(f"  with LLM:    {statistics.median(with_llm):8.1f} generations/s "
          f"({statistics.median(calls):.0f} calls per run)")
    print(f"  ratio {ratio:.2f} (target >= 0.80)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
