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
        floor = cmd[-1] == "--floor"
        assert cmd[cmd.index("-m") + 1] == "hybrid_gp.bench.first_call"
        directory = env["NUMBA_CACHE_DIR"]
        seen = [label for d, label in calls if d == directory]
        label = ("floor " if floor else "") + ("warm" if any(
            (lab.startswith("floor")) == floor for lab in seen) else "cold")
        calls.append((directory, label))
        seconds = (4.0 if label.endswith("cold") else 0.5) - (0.25 if floor else 0.0)
        keys = (("floor_s", "floor_cpu_s") if floor else
                ("evaluate_s", "evaluate_cpu_s", "fitness_s", "fitness_cpu_s"))
        line = json.dumps({k: seconds for k in keys})
        return subprocess.CompletedProcess(cmd, 0, stdout=line + "\n", stderr="")

    monkeypatch.setattr(bench_eval.subprocess, "run", fake_run)
    out = bench_eval.compile_times(repeats=3)
    assert [label for _, label in calls] == ["cold", "warm", "floor cold", "floor warm"] * 3
    assert len({d for d, _ in calls}) == 3
    assert len(out["cold"]) == len(out["warm"]) == len(out["floor"]) == 3
    assert {r["evaluate_s"] for r in out["cold"]} == {4.0}
    assert {r["floor_s"] for r in out["floor"]} == {0.25}  # the floor's warm runs only
    assert bench_eval._above(out["warm"], out["floor"]) == "0.250 s"


def test_the_floor_kernel_first_call_runs_in_a_fresh_process(tmp_path):
    import os
    import sys

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    for _ in range(2):  # cold, then from the cache
        proc = subprocess.run([sys.executable, "-m", "hybrid_gp.bench.first_call", "--floor"],
                              env=env, capture_output=True, text=True, check=True)
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert set(out) == {"floor_s", "floor_cpu_s"} and out["floor_s"] > 0
    assert any(p.suffix == ".nbi" for p in tmp_path.rglob("*"))


def test_the_floor_kernel_agrees_with_its_numpy_twin():
    import numpy as np

    from hybrid_gp.bench.floor_kernel import add_one

    x = np.array([np.nan, np.inf, -np.inf, -1.0, 0.0, 1.5e308, 2.0**-1074])
    np.testing.assert_array_equal(add_one(x), x + 1.0)


@pytest.mark.parametrize(("values", "expected"), [
    ([4.41, 4.02, 5.33], "4.41 s (4.02-5.33, 3 runs)"),
    ([0.713], "0.71 s"),
])
def test_first_call_figures_print_the_median_and_the_range(values, expected):
    runs = [{"evaluate_s": v} for v in values]
    assert bench_eval._spread(runs, "evaluate_s", 2) == expected
