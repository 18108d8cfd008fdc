"""`hybrid-gp` as a user runs it: one subprocess per call. User mistakes exit with
status 2 and one line on stderr, never a traceback.

Every call takes about two seconds to start, so the module fixture launches them all
at once and each test checks its own call's result.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import hybrid_gp as hg


@dataclass
class Call:
    returncode: int
    stdout: str
    stderr: str
    out_dir: Path


def _calls(root: Path) -> dict[str, list[str]]:
    taken = root / "taken"
    taken.mkdir()
    (taken / "config.json").write_text("{}")
    return {
        "list": ["list"],
        "run": ["run", "nguyen-1", "--max-evals", "3000", "--quiet"],
        "unknown-problem": ["run", "nosuch"],
        "negative-budget": ["run", "nguyen-1", "--max-evals", "-5"],
        "unknown-field": ["run", "nguyen-1", "--max-evals", "10", "--set", "search.bogus=1"],
        "taken": ["run", "nguyen-1", "--max-evals", "10"],
    }


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Call]:
    root = tmp_path_factory.mktemp("cli")
    exe = shutil.which("hybrid-gp") or str(Path(sys.executable).parent / "hybrid-gp")
    env = {k: v for k, v in os.environ.items() if k != "HYBRID_GP_DEBUG"}
    running = {}
    for name, args in _calls(root).items():
        out_dir = root / name
        if args[0] == "run":
            args = [*args, "--out", str(out_dir)]
        proc = subprocess.Popen([exe, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=root)
        running[name] = (proc, out_dir)
    results = {}
    for name, (proc, out_dir) in running.items():
        stdout, stderr = proc.communicate(timeout=300)
        results[name] = Call(proc.returncode, stdout, stderr, out_dir)
    return results


def _names(stdout: str) -> list[str]:
    return [line.split()[1] for line in stdout.splitlines()[1:] if line.strip()]


def test_list_prints_every_shipped_problem(cli):
    assert cli["list"].returncode == 0, cli["list"].stderr
    assert sorted(_names(cli["list"].stdout)) == sorted(hg.list_problems())


def test_run_writes_the_run_directory(cli):
    call = cli["run"]
    assert call.returncode == 0, call.stderr
    out_dir = call.out_dir
    assert {p.name for p in out_dir.iterdir()} >= {"config.json", "events.jsonl", "best.txt",
                                                   "pareto.csv"}
    config = json.loads((out_dir / "config.json").read_text())
    assert config["problem"] == "nguyen-1" and config["seed"] == 0
    assert config["search"]["max_evaluations"] == 3000
    events = [json.loads(line) for line in (out_dir / "events.jsonl").read_text().splitlines()]
    assert events[0]["event"] == "generation" and events[-1]["event"] == "end"
    assert events[-1]["evaluations"] <= 3000
    best_text = (out_dir / "best.txt").read_text().splitlines()[0]
    best = hg.Program.parse(best_text, grammar="koza")
    with open(out_dir / "pareto.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    complexity = [float(r["complexity"]) for r in rows]
    assert complexity == sorted(complexity)
    assert hg.Program.parse(rows[-1]["program"], grammar="koza") == best
    assert f"program: {best_text}" in call.stdout


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("unknown-problem", "unknown problem 'nosuch'"),
        ("negative-budget", "--max-evals: expected a positive integer, got '-5'"),
        ("unknown-field", "search has no field 'bogus'"),
        ("taken", "already holds a run"),
    ],
)
def test_user_mistakes_exit_2_with_one_line_and_no_traceback(cli, name, expected):
    call = cli[name]
    assert call.returncode == 2, (call.stdout, call.stderr)
    assert "Traceback" not in call.stderr + call.stdout
    lines = call.stderr.strip().splitlines()
    assert len(lines) == 1, call.stderr
    assert expected in lines[0]


@pytest.mark.parametrize("name", ["unknown-problem", "negative-budget", "unknown-field"])
def test_a_refused_run_writes_nothing(cli, name):
    assert not cli[name].out_dir.exists()


def test_an_existing_run_is_left_alone(cli):
    taken = cli["taken"].out_dir
    assert (taken / "config.json").read_text() == "{}"
    assert sorted(p.name for p in taken.iterdir()) == ["config.json"]
