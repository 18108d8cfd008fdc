"""Checkpoints and resume (docs/search.md): a CLI run killed with SIGKILL after a
checkpoint, or stopped with SIGTERM/SIGINT, and then resumed, ends exactly as the
uninterrupted run with the same seed and evaluation budget: the same events (without
"clock"), best.txt, pareto.csv, genealogy.json and operators.csv.

Each CLI call spends seconds importing and loading kernels, so the default suite runs
two interrupted CLI runs at once (SIGKILL, then resumed by hg.resume in process;
SIGTERM, then resumed by `hybrid-gp resume`); SIGINT with a CLI resume is marked slow.
Runs are signalled as soon as their checkpoint exists and enough generations have
passed (polling, never a sleep as an assertion).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import hybrid_gp as hg
import hybrid_gp.api
from hybrid_gp.errors import RunInterrupted, UserError

# Nguyen-12 with restarts and semantic children on (its suite's defaults), a problem no
# run solves early, so every run is still going when it is signalled.
RUN = ["run", "nguyen-12", "--seed", "3", "--max-evals", "6000", "--time-budget", "100000",
       "--set", "search.checkpoint_every=3", "--set", "search.population_size=100",
       "--set", "search.target_error=0", "--set", "search.max_size=20", "--quiet"]
FILES = ["best.txt", "pareto.csv", "genealogy.json", "operators.csv"]
MIN_EVENTS = 40  # events written before the signal: the run is well under way
POLL_TIMEOUT = 240.0


def exe() -> list[str]:
    found = shutil.which("hybrid-gp") or str(Path(sys.executable).parent / "hybrid-gp")
    return [found]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "HYBRID_GP_DEBUG"}
    root = str(Path(__file__).resolve().parents[1])
    e["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [e.get("PYTHONPATH")])])
    return e


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([*exe(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env(), cwd=cwd)


def finish(proc: subprocess.Popen) -> Finished:
    out, err = proc.communicate(timeout=POLL_TIMEOUT)
    return Finished(proc.returncode, out, err)


def ready(run_dir: Path) -> bool:
    """A checkpoint exists and the run has written MIN_EVENTS events."""
    if not (run_dir / "checkpoint" / "state.pkl").exists():
        return False
    try:
        with open(run_dir / "events.jsonl", "rb") as fh:
            return fh.read().count(b"\n") >= MIN_EVENTS
    except FileNotFoundError:
        return False


@dataclass
class Runs:
    reference: Path
    interrupted: dict[str, Path]
    signalled: dict[str, Finished]  # how each interrupted run ended
    finished_files: dict[str, list[str]]  # result files each had before its resume
    resumed: dict[str, Finished]
    no_config: Finished | None = None


SIGNALS = {"sigkill": signal.SIGKILL, "sigint": signal.SIGINT, "sigterm": signal.SIGTERM}


def reference_run(root: Path) -> Path:
    """The uninterrupted run, in process. It also compiles (or loads) every kernel, so
    the subprocesses find Numba's cache instead of all compiling at once. Its
    config.json is the one `hybrid-gp run` writes for RUN (a test checks so)."""
    out = root / "reference"
    if not out.exists():
        hg.run("nguyen-12", seed=3, max_evaluations=6000, time_budget=100000,
               checkpoint_every=3, population_size=100, target_error=0, max_size=20,
               out_dir=out)
    return out


def interrupt_and_resume(root: Path, names: list[str], in_process: set[str],
                         no_config: bool = False) -> Runs:
    """Start a CLI run per name, send its signal once it is well under way, then resume
    each: with `hybrid-gp resume`, or with hg.resume for the names in `in_process`."""
    reference = reference_run(root)
    procs = {name: start([*RUN, "--out", str(root / name)], root) for name in names}
    if no_config:
        (root / "empty").mkdir()
        usage = start(["resume", str(root / "empty")], root)
    pending = dict(procs)
    deadline = time.monotonic() + POLL_TIMEOUT
    while pending and time.monotonic() < deadline:
        for name, proc in list(pending.items()):
            if proc.poll() is not None:  # ended before it could be signalled
                del pending[name]
            elif ready(root / name):
                os.kill(proc.pid, SIGNALS[name])
                del pending[name]
        time.sleep(0.005)
    for proc in pending.values():
        proc.kill()
    signalled = {name: finish(proc) for name, proc in procs.items()}
    files = {name: sorted(f for f in FILES if (root / name / f).exists()) for name in names}
    cli = {name: start(["resume", str(root / name), "--quiet"], root)
           for name in names if name not in in_process}
    resumed = {}
    for name in sorted(in_process):
        hg.resume(root / name)
        resumed[name] = Finished(0, "", "")
    resumed |= {name: finish(proc) for name, proc in cli.items()}
    return Runs(reference, {n: root / n for n in names}, signalled, files, resumed,
                finish(usage) if no_config else None)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """SIGKILL (resumed in process by hg.resume) and SIGTERM (resumed by the CLI)."""
    return interrupt_and_resume(tmp_path_factory.mktemp("resume"), ["sigkill", "sigterm"],
                                in_process={"sigkill"}, no_config=True)


def events(run_dir: Path) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "clock"} for line in lines]


def same_end(run_dir: Path, reference: Path) -> None:
    assert events(run_dir) == events(reference)
    for name in FILES:
        assert (run_dir / name).read_text() == (reference / name).read_text(), name


def test_the_reference_has_the_config_the_cli_writes(runs):
    ref = json.loads((runs.reference / "config.json").read_text())
    for d in runs.interrupted.values():
        assert json.loads((d / "config.json").read_text()) == ref


# ---------------------------------------------------------------------- SIGKILL


def test_a_run_killed_with_sigkill_was_killed_after_a_checkpoint(runs):
    assert runs.signalled["sigkill"].returncode == -signal.SIGKILL
    assert runs.finished_files["sigkill"] == []
    assert (runs.interrupted["sigkill"] / "checkpoint" / "state.pkl").exists()


def test_a_killed_run_resumes_to_exactly_the_uninterrupted_end(runs):
    same_end(runs.interrupted["sigkill"], runs.reference)


# ---------------------------------------------------------------------- SIGINT / SIGTERM


def check_signalled(runs: Runs, name: str) -> None:
    ended = runs.signalled[name]
    assert ended.returncode == 130, ended.stderr
    d = runs.interrupted[name]
    lines = ended.stderr.strip().splitlines()
    assert len(lines) == 1 and f"hybrid-gp resume {d}" in lines[0]
    assert (d / "checkpoint" / "state.pkl").exists()
    assert runs.finished_files[name] == []  # it stopped before writing any result


def test_sigterm_stops_the_run_with_status_130_and_a_resume_hint(runs):
    check_signalled(runs, "sigterm")


def test_a_run_stopped_by_sigterm_resumes_with_the_cli_to_exactly_the_same_end(runs):
    resumed = runs.resumed["sigterm"]
    assert resumed.returncode == 0, resumed.stderr
    same_end(runs.interrupted["sigterm"], runs.reference)


@pytest.mark.slow
def test_sigint_stops_the_run_with_status_130_and_resumes_to_the_same_end(tmp_path):
    runs = interrupt_and_resume(tmp_path, ["sigint"], in_process=set())
    check_signalled(runs, "sigint")
    assert runs.resumed["sigint"].returncode == 0, runs.resumed["sigint"].stderr
    same_end(runs.interrupted["sigint"], runs.reference)


# ---------------------------------------------------------------------- mistakes


def test_resuming_a_directory_without_a_run_is_a_usage_error(runs):
    ended = runs.no_config
    assert ended is not None and ended.returncode == 2
    lines = ended.stderr.strip().splitlines()
    assert len(lines) == 1 and "config.json" in lines[0]
    assert lines[0].startswith("hybrid-gp resume: error:")


def test_hg_resume_of_a_directory_without_a_run_raises_user_error(tmp_path):
    with pytest.raises(UserError, match=r"config\.json is missing"):
        hg.resume(tmp_path)


def test_hg_run_into_an_existing_run_directory_raises_user_error(tmp_path):
    out = tmp_path / "run"
    hg.run("nguyen-1", seed=0, max_evaluations=300, population_size=30, out_dir=out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(UserError, match="already holds a finished run"):
        hg.run("nguyen-1", seed=1, max_evaluations=300, population_size=30, out_dir=out)
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before  # nothing was touched


def test_hg_resume_of_a_finished_run_refuses_and_changes_nothing(tmp_path):
    out = tmp_path / "run"
    hg.run("nguyen-1", seed=2, max_evaluations=1500, population_size=40,
           checkpoint_every=2, target_error=0.0, out_dir=out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(UserError, match=r"holds a finished run .* nothing to resume"):
        hg.resume(out)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_a_run_killed_while_writing_its_outputs_resumes_to_the_same_end(tmp_path):
    """The last output (operators.csv) missing means the run did not finish: resume
    goes on from the last checkpoint and writes the same results again."""
    out = tmp_path / "run"
    first = hg.run("nguyen-1", seed=2, max_evaluations=1500, population_size=40,
                   checkpoint_every=2, target_error=0.0, out_dir=out)
    before = {name: (out / name).read_text() for name in FILES}
    (out / "operators.csv").unlink()
    again = hg.resume(out)
    assert str(again.best) == str(first.best) and again.best_error == first.best_error
    assert again.stats["evaluations"] == first.stats["evaluations"]
    assert {name: (out / name).read_text() for name in FILES} == before


def test_a_damaged_checkpoint_is_a_user_error(tmp_path):
    out = tmp_path / "run"
    hg.run("nguyen-1", seed=2, max_evaluations=600, population_size=40, checkpoint_every=1,
           target_error=0.0, out_dir=out)
    (out / "operators.csv").unlink()
    (out / "checkpoint" / "state.pkl").write_bytes(b"Iabc\n.")
    with pytest.raises(UserError,
                       match=r"cannot read the checkpoint \(ValueError: .*\); it is damaged"):
        hg.resume(out)


def test_a_run_that_never_checkpointed_resumes_from_the_start(tmp_path):
    """Without a checkpoint, resume starts over (events cut to none) and ends the same."""
    out = tmp_path / "run"
    first = hg.run("nguyen-1", seed=4, max_evaluations=1200, population_size=40,
                   checkpoint_every=0, target_error=0.0, out_dir=out)
    assert not (out / "checkpoint").exists()
    before = events(out)
    files = {name: (out / name).read_text() for name in FILES}
    for name in FILES:
        (out / name).unlink()
    with open(out / "events.jsonl", "a") as fh:  # as if killed in the middle of a line
        fh.write('{"event": "generation", "isl')
    again = hg.resume(out)
    assert str(again.best) == str(first.best)
    assert events(out) == before
    assert {name: (out / name).read_text() for name in FILES} == files


@pytest.mark.parametrize("islands", [1, 3])
def test_an_interrupted_run_with_constant_fitting_resumes_to_the_same_end(tmp_path, islands):
    """In process: SIGINT (sent to this process from an event callback, so the handler
    the run installs receives it) stops a run of a grammar with constants (their fitting
    on) at a barrier; hg.resume then ends exactly as the uninterrupted run."""
    kw = dict(seed=6, max_evaluations=2500, population_size=50, checkpoint_every=4,
              target_error=0.0, islands=islands, migration_interval=2)
    ref = hg.run("keijzer-4", out_dir=tmp_path / "reference", **kw)
    assert ref.stats["fitted"] > 0  # the fitting really ran
    seen = []

    def interrupt(event: dict) -> None:
        seen.append(event)
        if event["event"] == "progress" and event["generation"] == 10:
            os.kill(os.getpid(), signal.SIGINT)

    config = hg.api.make_config("keijzer-4", **kw)
    out = tmp_path / "interrupted"
    with pytest.raises(RunInterrupted, match="hybrid-gp resume"):
        hg.api.run_config(config, out_dir=out, on_event=interrupt)
    assert (out / "checkpoint" / "state.pkl").exists() and not (out / "best.txt").exists()
    assert seen[-1]["generation"] < 20
    hg.resume(out)
    same_end(out, tmp_path / "reference")
