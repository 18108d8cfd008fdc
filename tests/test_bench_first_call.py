"""`hybrid-gp bench eval` times the first call in fresh processes several times: each
cold run gets an empty cache directory of its own, its warm run reuses that one, and
the printout gives the median with the range."""

from __future__ import annotations

import json
import subprocess

import pytest

from hybrid_gp.bench import eval as bench_eval


def test_each_repeat_compiles_into_its_own_cache_and_loads_from_it(monkeypatch):
    calls: list[tuple[str, str]] = []

    def fake_run(cmd, env, **kwargs):
        assert cmd[-1] == "hybrid_gp.bench.first_call"
        directory = env["NUMBA_CACHE_DIR"]
        label = "warm" if any(d == directory for d, _ in calls) else "cold"
        calls.append((directory, label))
        seconds = 4.0 if label == "cold" else 0.4
        line = json.dumps({k: seconds for k in ("evaluate_s", "evaluate_cpu_s",
                                                "fitness_s", "fitness_cpu_s")})
        return subprocess.CompletedProcess(cmd, 0, stdout=line + "\n", stderr="")

    monkeypatch.setattr(bench_eval.subprocess, "run", fake_run)
    out = bench_eval.compile_times(repeats=3)
    assert [label for _, label in calls] == ["cold", "warm"] * 3
    assert len({d for d, _ in calls}) == 3
    assert len(out["cold"]) == len(out["warm"]) == 3
    assert {r["evaluate_s"] for r in out["cold"]} == {4.0}


@pytest.mark.parametrize(("values", "expected"), [
    ([4.41, 4.02, 5.33], "4.41 s (4.02-5.33, 3 runs)"),
    ([0.713], "0.71 s"),
])
def test_first_call_figures_print_the_median_and_the_range(values, expected):
    runs = [{"evaluate_s": v} for v in values]
    assert bench_eval._spread(runs, "evaluate_s", 2) == expected
