"""Reproducible experiments: registry, command line, and the reports they write."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

import hybrid_gp as hg
from hybrid_gp.errors import RunInterrupted, UnknownNameError, UserError
from hybrid_gp.experiments import (
    EXPERIMENTS,
    _int_list,
    add_arguments,
    baselines,
    list_experiments,
    main,
    nguyen,
    run_experiment,
    run_from_args,
    ufh,
)
from hybrid_gp.experiments.common import DEFAULT_OUT, Invocation, RunLedger, reused_runs_note

REPO = Path(__file__).resolve().parent.parent


def test_registry_lists_both_experiments_and_suggests_close_names():
    assert list_experiments() == ["nguyen", "ufh"]
    with pytest.raises(UnknownNameError, match="did you mean ufh"):
        EXPERIMENTS.get("uhf")


def test_command_line_refuses_unknown_names_and_scales_with_status_2(capsys):
    assert main(["nosuch", "--out", "unused"]) == 2
    assert "unknown experiment 'nosuch'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["ufh", "--scale", "huge"])
    assert stop.value.code == 2


def test_options_an_experiment_does_not_take_are_a_usage_error(tmp_path):
    with pytest.raises(UserError, match="unknown setting"):
        run_experiment("ufh", "smoke", tmp_path, problems=("nguyen-1",))
    assert main(["nguyen", "--problems", "nguyen-99", "--out", str(tmp_path)]) == 2


def test_python_dash_m_lists_the_experiments():
    done = subprocess.run([sys.executable, "-m", "hybrid_gp.experiments", "list"],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["nguyen", "ufh"]


def test_the_cli_can_host_the_experiment_arguments_on_its_own_subparser(capsys):
    parser = argparse.ArgumentParser(prog="hybrid-gp")
    add_arguments(parser.add_subparsers(dest="command").add_parser("experiment"))
    args = parser.parse_args(["experiment", "ufh", "--scale", "paper", "--seeds", "0-2"])
    assert (args.name, args.scale, args.seeds, args.out) == ("ufh", "paper", [0, 1, 2],
                                                             DEFAULT_OUT)
    assert run_from_args(parser.parse_args(["experiment", "list"])) == 0
    assert "issue 4" in capsys.readouterr().out


def test_seed_lists_read_ranges_and_commas():
    assert _int_list("0-2,5") == [0, 1, 2, 5]


def test_the_printed_command_repeats_non_default_choices():
    inv = Invocation("nguyen", "paper", Path("out"), (0, 1), tuple(range(10)),
                     (("--budget", "5"),))
    assert inv.command() == ("hybrid-gp experiment nguyen --scale paper --seeds 0,1 "
                             "--budget 5 --out out")
    assert Invocation("ufh", "smoke", DEFAULT_OUT, (0, 1), (0, 1)).command() == (
        "hybrid-gp experiment ufh --scale smoke")


def test_ledger_resume_keeps_finished_runs_and_refuses_other_settings(tmp_path):
    path = tmp_path / "x.runs.jsonl"
    RunLedger(path, ("seed",), {"budget": 1}).add({"seed": 0, "wall": 1.5})
    assert RunLedger(path, ("seed",), {"budget": 1}, resume=True).done(seed=0) == {
        "seed": 0, "wall": 1.5}
    with pytest.raises(UserError, match="budget 1 there, 2 now"):
        RunLedger(path, ("seed",), {"budget": 2}, resume=True)
    assert RunLedger(path, ("seed",), {"budget": 1}, resume=True).done(seed=0)


def test_ledger_without_resume_sets_earlier_runs_aside_instead_of_erasing_them(tmp_path):
    path = tmp_path / "x.runs.jsonl"
    RunLedger(path, ("seed",), {"budget": 1}).add({"seed": 0, "wall": 1.5})
    fresh = RunLedger(path, ("seed",), {"budget": 1})
    assert fresh.done(seed=0) is None and fresh.set_aside is not None
    assert json.loads(fresh.set_aside.read_text().splitlines()[1]) == {"seed": 0, "wall": 1.5}
    assert RunLedger(path, ("seed",), {"budget": 1}).set_aside is None  # nothing to keep


def test_ledger_resume_survives_a_line_cut_short_and_reads_old_settings(tmp_path):
    path = tmp_path / "x.runs.jsonl"
    path.write_text(json.dumps({"settings": {"budget": 1, "problems": ["a"]}}) + "\n"
                    + json.dumps({"seed": 0}) + "\n" + '{"seed": 1, "wa')
    ledger = RunLedger(path, ("seed",), {"budget": 1}, resume=True)
    ledger.add({"seed": 1})
    assert [r["seed"] for r in ledger.records] == [0, 1]
    assert RunLedger(path, ("seed",), {"budget": 1}, resume=True).records == ledger.records


def test_ufh_smoke_writes_the_report_tables_and_plots(tmp_path):
    md = ufh.run("smoke", tmp_path, quiet=True)
    text = md.read_text()
    assert md == tmp_path / "ufh.md"
    assert "hybrid-gp experiment ufh --scale smoke --out" in text
    assert "- seeds: 0, 1" in text and "numba" in text and "cores" in text
    for header in ("| target | measured | verdict |",
                   "| problem | runs | lookups | evaluations | hits |",
                   "| formula | rows | selection |",
                   "| problem | mantissa bits | probe rows |"):
        assert header in text
    assert "| `nguyen-5` | 10000 | tournament (plain GP) |" in text
    assert "skipped, standard Nguyen run: plain GP, 5 generations" in text
    assert "≥ 2× faster end to end at 10k rows, the same run (plain GP, nguyen-5)" in text
    assert text.count("| problem | runs | lookups | evaluations | hits |") == 2
    for png in ("ufh_skipped.png", "ufh_speed.png", "ufh_collisions.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_interrupted_ufh_experiment_resumes_with_only_the_runs_it_lacks(tmp_path,
                                                                           monkeypatch):
    """Ctrl-C (a KeyboardInterrupt from the fourth timed run) keeps the finished runs;
    --resume reuses them, each part-2 group of arms whole, and runs the rest."""
    tiny = dict(skip_problems=("nguyen-1",), skip_max_evaluations=300, plain_problems=(),
                rows=(20,),
                row_generations=2, row_population=20, row_seeds=1,
                sweep_problems=("nguyen-2",), sweep_bits=(24,), sweep_probes=(16,),
                sweep_generations=2, sweep_population=20, sweep_seeds=2)
    timed, calls = ufh._timed, []

    def interrupted(config, problem):
        calls.append(problem.name)
        if len(calls) == 4:  # the second arm of part 2's first group
            raise KeyboardInterrupt
        return timed(config, problem)

    monkeypatch.setattr(ufh, "_timed", interrupted)
    with pytest.raises(RunInterrupted, match="--resume runs only the rest"):
        ufh.run("smoke", tmp_path, seeds=[0, 1], quiet=True, **tiny)
    ledger = tmp_path / "ufh.runs.jsonl"
    kept = [json.loads(line) for line in ledger.read_text().splitlines()[1:]]
    assert [r["run"] for r in kept] == ["nguyen-1 seed 0", "nguyen-1 seed 1"]
    calls.clear()
    monkeypatch.setattr(ufh, "_timed", lambda c, p: (calls.append(p.name), timed(c, p))[1])
    md = ufh.run("smoke", tmp_path, seeds=[0, 1], quiet=True, resume=True, **tiny)
    assert "nguyen-1" not in calls  # part 1 was not run again
    assert len(calls) == len(ufh.ARMS) + 2  # part 2: one group of arms; part 3: two seeds
    text = md.read_text()
    assert "2 finished runs come from an earlier session" in text
    source = kept[0]["source"]  # each record says which code made it, and when
    assert source.startswith(hg.__version__) and all(r["source"] == source for r in kept)
    assert f"2 by hybrid_gp {source}, finished {kept[0]['finished']} to " in text
    records = [json.loads(line) for line in ledger.read_text().splitlines()[1:]]
    assert records[:2] == kept and len(records) == 2 + 1 + 2


def test_a_note_on_reused_runs_counts_the_revisions_that_made_them():
    records = [{"source": "0.1.0 (git abc1234)", "finished": "2026-12-05 00:02:00 UTC"},
               {"source": "0.1.0 (git abc1234)", "finished": "2026-12-05 00:01:00 UTC"},
               {"wall": 1.0}]  # a ledger written before records were stamped
    note = reused_runs_note(records, "x.runs.jsonl")
    assert note.startswith("3 finished runs come from an earlier session")
    assert ("2 by hybrid_gp 0.1.0 (git abc1234); 1 by hybrid_gp a revision not recorded, "
            "finished 2026-12-05 00:01:00 UTC to 2026-12-05 00:02:00 UTC") in note


def test_ufh_counts_add_up_to_the_lookups():
    s = ufh.scale_settings("smoke")
    (r,) = ufh.skipped_runs(replace(s, skip_problems=("nguyen-1",),
                                    skip_max_evaluations=600), [3], quiet=True)
    assert r["hits"] == r["structural_hits"] + r["functional_hits"] + r["batch_duplicates"]
    assert r["skipped"] == pytest.approx(r["hits"] / (r["hits"] + r["evaluations"]))
    assert 0 < r["skipped"] < 1


def test_ufh_plain_gp_runs_its_generations_with_tournament_and_no_restarts(monkeypatch):
    s = replace(ufh.scale_settings("smoke"), plain_problems=("nguyen-5",),
                plain_generations=3)
    configs = []
    timed = ufh._timed
    monkeypatch.setattr(ufh, "_timed", lambda c, p: (configs.append(c), timed(c, p))[1])
    (r,) = ufh.skipped_runs(s, [0], quiet=True, plain=True)
    (config,) = configs
    assert config.search.selection == "tournament"
    assert config.search.restart_after == 0 and config.search.semantic_share == 0.0
    assert config.search.generations == 3
    assert r["lookups"] == r["hits"] + r["evaluations"] > 0


def test_ufh_speed_arms_with_tournament_are_plain_gp(monkeypatch):
    s = replace(ufh.scale_settings("smoke"), rows=(20,), row_generations=2)
    configs = []
    timed = ufh._timed
    monkeypatch.setattr(ufh, "_timed", lambda c, p: (configs.append(c), timed(c, p))[1])
    records = ufh.speed_runs(s, [0], quiet=True)
    assert len(configs) == len(records) == len(ufh.ARMS)
    for config in configs:
        assert config.search.selection == ufh.PLAIN_GP["selection"] == "tournament"
        assert config.search.restart_after == 0 and config.search.semantic_share == 0.0
    assert {r["arm"] for r in records} == set(ufh.ARMS)


def test_nguyen_tiny_budget_judges_every_method_and_writes_the_table(tmp_path):
    methods = tuple(m for m in nguyen.ALL_METHODS
                    if m == nguyen.OURS or baselines.available(m))
    md = nguyen.run("smoke", tmp_path, seeds=[0], problems=("nguyen-11",), budget=0.5,
                    methods=methods, quiet=True)
    text = md.read_text()
    assert "| problem | target | " + " | ".join(methods) + " |" in text
    assert "DSR 83.6 %, NGGP 92.4 %" in text
    assert "--seeds 0 --problems nguyen-11 --budget 0.5" in text
    lines = (tmp_path / "nguyen.runs.jsonl").read_text().splitlines()
    runs = [json.loads(line) for line in lines[1:]]
    assert sorted(r["method"] for r in runs) == sorted(methods)
    assert all(isinstance(r["exact"], bool) and r["how"] for r in runs)
    assert (tmp_path / "nguyen_recovery.png").exists()


def test_nguyen_resume_does_not_rerun_finished_runs(tmp_path):
    options = dict(seeds=[0], problems=("nguyen-1",), budget=0.5, methods=("hybrid_gp",),
                   quiet=True)
    nguyen.run("smoke", tmp_path, **options)
    first = (tmp_path / "nguyen.runs.jsonl").read_text()
    nguyen.run("smoke", tmp_path, resume=True, **options)
    assert (tmp_path / "nguyen.runs.jsonl").read_text() == first


def test_nguyen_resume_with_other_problems_keeps_the_runs_it_does_not_report(tmp_path):
    options = dict(seeds=[0], budget=0.3, methods=("hybrid_gp",), quiet=True)
    nguyen.run("smoke", tmp_path, problems=("nguyen-1",), **options)
    nguyen.run("smoke", tmp_path, problems=("nguyen-2",), resume=True, **options)
    runs = [json.loads(line) for line in
            (tmp_path / "nguyen.runs.jsonl").read_text().splitlines()[1:]]
    assert sorted(r["problem"] for r in runs) == ["nguyen-1", "nguyen-2"]
    assert "`nguyen-1`" not in (tmp_path / "nguyen.md").read_text()


def test_nguyen_interrupt_keeps_finished_runs_and_names_resume(tmp_path, monkeypatch):
    real, calls = nguyen.one_run, []

    def stop_on_the_second(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(nguyen, "one_run", stop_on_the_second)
    with pytest.raises(RunInterrupted, match=r"1 finished runs are kept .* --resume"):
        nguyen.run("smoke", tmp_path, seeds=[0, 1], problems=("nguyen-1",), budget=0.3,
                   methods=("hybrid_gp",), quiet=True)
    lines = (tmp_path / "nguyen.runs.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["seed"] == 0


def test_nguyen_refuses_baseline_seeds_that_are_not_run(tmp_path):
    with pytest.raises(UserError, match="none of the baseline seeds 7"):
        nguyen.run("smoke", tmp_path, seeds=[0, 1], problems=("nguyen-1",), budget=0.3,
                   baseline_seeds=(7,), quiet=True)


def test_experiment_out_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    assert main(["nguyen", "--out", str(tmp_path / "f")]) == 2
    assert "is a file; it must be a folder" in capsys.readouterr().err


def test_nguyen_baseline_seeds_run_the_baselines_on_those_seeds_only(tmp_path):
    if not baselines.available("gplearn"):
        pytest.skip("gplearn is not installed (the bench extra)")
    md = nguyen.run("smoke", tmp_path, seeds=[0, 1], problems=("nguyen-1",), budget=0.3,
                    methods=("hybrid_gp", "gplearn"), baseline_seeds=(1,), quiet=True)
    runs = [json.loads(line) for line in
            (tmp_path / "nguyen.runs.jsonl").read_text().splitlines()[1:]]
    assert sorted((r["method"], r["seed"]) for r in runs) == [
        ("gplearn", 1), ("hybrid_gp", 0), ("hybrid_gp", 1)]
    text = md.read_text()
    assert "--baseline-seeds 1" in text
    assert "the baselines ran on seeds 1 only" in text


def test_nguyen_refuses_negative_baseline_seeds(tmp_path):
    with pytest.raises(UserError, match="baseline_seeds"):
        nguyen.run("smoke", tmp_path, seeds=[0], problems=("nguyen-1",), budget=0.3,
                   baseline_seeds=(-1,), quiet=True)


@pytest.mark.slow
def test_nguyen_smoke_scale_covers_every_problem_seed_and_method(tmp_path):
    md = nguyen.run("smoke", tmp_path, quiet=True)
    runs = (tmp_path / "nguyen.runs.jsonl").read_text().splitlines()[1:]
    methods = [m for m in nguyen.ALL_METHODS if m == nguyen.OURS or baselines.available(m)]
    assert len(runs) == 12 * 2 * len(methods)
    assert "| **average** |" in md.read_text()


def test_ufh_recheck_arm_is_the_same_search_with_every_hit_evaluated():
    s = replace(ufh.scale_settings("smoke"), rows=(1000,), row_generations=8)
    records = {r["arm"]: r for r in ufh.speed_runs(s, [0], quiet=True)}
    on, recheck, off = records["on"], records["recheck"], records["off"]
    assert on["hits"] > 0 and off["hits"] == 0
    assert recheck["evaluations"] > on["evaluations"]
    assert recheck["generations"] == on["generations"] == off["generations"] == 8
    assert recheck["best_error"] == pytest.approx(on["best_error"], rel=1e-9)
    assert recheck["best_size"] == on["best_size"]
