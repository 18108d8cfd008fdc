"""`hybrid-gp run` and `resume` in process: --runs batches, finished runs, changed data
files, --set paths that would misreport the run, and what the result lines print."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from hybrid_gp.cli import main


def _csv(path: Path, y_scale: float = 1.0) -> Path:
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (60, 2))
    y = y_scale * (X[:, 0] ** 2 + X[:, 1])
    rows = "".join(f"{a:.17g},{b:.17g},{c:.17g}\n" for (a, b), c in zip(X, y, strict=True))
    path.write_text("speed,mass,y\n" + rows)
    return path


def test_a_batch_resume_reads_finished_seeds_back_and_runs_the_missing_ones(tmp_path, capsys):
    out = tmp_path / "batch"
    args = ["run", "nguyen-5", "--runs", "2", "--max-evals", "800", "--out", str(out),
            "--quiet"]
    assert main(args) == 0
    seed1 = (out / "seed1" / "best.txt").read_text()
    shutil.rmtree(out / "seed1")  # as if interrupted before the second run began
    capsys.readouterr()
    assert main(["resume", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "nguyen-5 seed 0: finished earlier" in printed
    assert "nguyen-5 seed 1: stopped by max_evaluations" in printed
    assert "evaluation time saved about" in printed  # what the cache saved and cost
    assert "2 runs: median train error" in printed
    assert (out / "seed1" / "best.txt").read_text() == seed1


def test_report_of_a_batch_reports_every_seed(tmp_path, capsys):
    out = tmp_path / "batch"
    assert main(["run", "nguyen-1", "--runs", "2", "--max-evals", "300", "--out", str(out),
                 "--quiet"]) == 0
    assert main(["report", str(out)]) == 0
    assert all((out / f"seed{s}" / "summary.md").exists() for s in (0, 1))


def test_running_a_batch_again_into_its_folder_is_refused(tmp_path, capsys):
    out = tmp_path / "batch"
    args = ["run", "nguyen-1", "--runs", "2", "--max-evals", "300", "--out", str(out),
            "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    assert f"{out} already holds a batch of runs; `hybrid-gp resume {out}` finishes it" in (
        capsys.readouterr().err)


def test_the_median_of_two_runs_is_their_mean(tmp_path, capsys):
    out = tmp_path / "batch"
    assert main(["run", "nguyen-5", "--runs", "2", "--max-evals", "600", "--out", str(out),
                 "--quiet"]) == 0
    errors = []
    for s in (0, 1):
        head = (out / f"seed{s}" / "best.txt").read_text().splitlines()[1]
        errors.append(float(head.split()[2].rstrip(";")))
    assert f"median train error {np.mean(errors):.3g}" in capsys.readouterr().out


def test_resuming_a_finished_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "nguyen-1", "--max-evals", "300", "--out", str(out), "--quiet"]) == 0
    events = (out / "events.jsonl").read_text()
    assert main(["resume", str(out)]) == 2
    assert "holds a finished run" in capsys.readouterr().err
    assert (out / "events.jsonl").read_text() == events


def test_resume_refuses_a_data_file_that_changed(tmp_path, capsys):
    data, out = _csv(tmp_path / "d.csv"), tmp_path / "run"
    assert main(["run", "--data", str(data), "--target", "y", "--max-evals", "300",
                 "--out", str(out), "--quiet"]) == 0
    (out / "operators.csv").unlink()  # not finished: a resume would go on
    _csv(data, y_scale=3.0)
    assert main(["resume", str(out), "--quiet"]) == 2
    assert "has changed since this run started" in capsys.readouterr().err


def test_a_data_run_prints_its_formula_in_the_column_names(tmp_path, capsys):
    data = _csv(tmp_path / "d.csv")
    assert main(["run", "--data", str(data), "--target", "y", "--max-evals", "5000",
                 "--quiet", "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    assert "variables: x0 = speed, x1 = mass" in printed
    best = next(line for line in printed.splitlines() if line.startswith("best: "))
    assert "speed" in best and "x0" not in best


@pytest.mark.parametrize(("assignment", "message"), [
    ("problem=nguyen-2", "--set problem: give the problem as `hybrid-gp run PROBLEM`"),
    ("seed=5", "--set seed: use --seed"),
    ("data.target=a", "--set data.target: use --data, --target"),
])
def test_set_refuses_the_fields_that_name_the_run(tmp_path, capsys, assignment, message):
    out = tmp_path / "run"
    assert main(["run", "nguyen-1", "--set", assignment, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_set_operators_takes_a_dict(tmp_path):
    out = tmp_path / "run"
    assert main(["run", "nguyen-1", "--max-evals", "300", "--out", str(out), "--quiet",
                 "--set", 'search.operators={"crossover": 1.0, "subtree": 0}']) == 0
    config = (out / "config.json").read_text()
    assert '"crossover": 1.0' in config and '"subtree": 0.0' in config


def test_an_empty_out_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "nguyen-1", "--out", ""])
    assert stop.value.code == 2
    assert "--out: expected a folder, got ''" in capsys.readouterr().err


def test_the_report_of_a_data_run_names_the_columns(tmp_path, capsys):
    from hybrid_gp.report import write_report

    data, out = _csv(tmp_path / "d.csv"), tmp_path / "run"
    assert main(["run", "--data", str(data), "--target", "y", "--max-evals", "5000",
                 "--quiet", "--out", str(out)]) == 0
    write_report(out)
    summary = (out / "summary.md").read_text()
    assert "speed" in summary and "mass" in summary


def test_a_setting_the_engine_refuses_leaves_no_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "nguyen-1", "--set", "search.elitism=600", "--out", str(out)]) == 2
    assert "search.elitism=600 best programs" in capsys.readouterr().err
    assert not out.exists()
