"""Every shipped problem runs end to end on a tiny budget: from Python for all of
them, through the `hybrid-gp` command line for one problem of each kind (in a child
process for two of them, through `cli.main` for the rest)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

import hybrid_gp as hg
from hybrid_gp.cli import main

TINY = {"max_evaluations": 100, "population_size": 20}
CLI = [sys.executable, "-c", "import sys; from hybrid_gp.cli import main; sys.exit(main())"]


@pytest.mark.parametrize("name", hg.list_problems())
def test_every_problem_runs_on_a_tiny_budget(name):
    problem = hg.get_problem(name)
    result = hg.run(name, seed=0, **TINY)
    assert result.best is not None
    assert 0 < result.stats["evaluations"] <= TINY["max_evaluations"]
    assert math.isfinite(result.best_error)
    assert (result.test_error is not None) == (problem.test is not None)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600)


def _run_args(name: str, out: Path) -> list[str]:
    return ["run", name, "--max-evals", "100", "--set", "search.population_size=20",
            "--out", str(out), "--quiet"]


@pytest.mark.parametrize("name", ["keijzer-4", "binpack-or"])
def test_cli_process_runs_a_problem_and_reports_test_error(name, tmp_path: Path):
    done = _cli(*_run_args(name, tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    assert "best:" in done.stdout and ", test " in done.stdout
    assert (tmp_path / "run" / "best.txt").is_file()


@pytest.mark.parametrize("name", ["feynman-i.12.1", "mux-6", "parity-3", "exp2-approx",
                                  "pagie-1"])
def test_cli_main_runs_each_kind(name, tmp_path: Path, capsys):
    assert main(_run_args(name, tmp_path / "run")) == 0
    printed = capsys.readouterr().out
    assert "best:" in printed
    assert (", test " in printed) == (hg.get_problem(name).test is not None)


def test_cli_list_filters_by_suite(capsys):
    assert main(["list", "--suite", "boolean"]) == 0
    header, *rows = capsys.readouterr().out.strip().splitlines()
    assert "suite" in header and "name" in header and "vars" in header and "rows" in header
    assert [r.split()[1] for r in rows] == hg.list_problems("boolean")


def test_cli_unknown_suite_is_a_usage_error(capsys):
    assert main(["list", "--suite", "nope"]) == 2
    assert "unknown suite 'nope'" in capsys.readouterr().err
