"""`write_report` on real run directories: finished, with islands, interrupted then
resumed, from a CSV file and with LLM operators. The plots are drawn from the run's
data and the summary's numbers are the run's stats."""

from __future__ import annotations

import json
import re
import shutil
import signal
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from llm_server import KEY_ENV, ScriptedServer, exprs, llm_config

import hybrid_gp as hg
from hybrid_gp.api import make_config, run_config
from hybrid_gp.config import DataSource, to_json
from hybrid_gp.convert import readable_sympy
from hybrid_gp.errors import RunInterrupted, UserError
from hybrid_gp.report import (
    ANNOTATED,
    LLM_COLOR,
    best_lineage,
    error_figure,
    load_run,
    operators_figure,
    pareto_figure,
    summary_markdown,
    write_report,
)

PNGS = ["error.png", "pareto.png", "operators.png", "lineage.png"]


def events(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's header; fails on anything that is not a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", path
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[hg.RunResult, list[Path]]:
    res = hg.run("nguyen-1", seed=0, max_evaluations=3000,
                 out_dir=tmp_path_factory.mktemp("run") / "r")
    return res, write_report(res.out_dir)


@pytest.fixture(scope="module")
def islands(tmp_path_factory: pytest.TempPathFactory) -> hg.RunResult:
    return hg.run("nguyen-7", seed=1, max_evaluations=3000, islands=2, migration_interval=2,
                  out_dir=tmp_path_factory.mktemp("run") / "r")


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run stopped by SIGINT after generation 2 (as Ctrl-C stops it), reported, then
    resumed to its end and reported again."""
    out = tmp_path_factory.mktemp("run") / "r"
    config = make_config("nguyen-7", seed=2, max_evaluations=3000, checkpoint_every=1)

    def interrupt(event: dict[str, Any]) -> None:
        if event["event"] == "progress" and event["generation"] == 2:
            signal.raise_signal(signal.SIGINT)

    with pytest.raises(RunInterrupted):
        run_config(config, out_dir=out, on_event=interrupt)
    partial = {"paths": write_report(out), "summary": (out / "summary.md").read_text(),
               "events": events(out), "run": load_run(out)}
    return {"out": out, "partial": partial, "resumed": hg.resume(out)}


def test_the_report_writes_four_valid_pngs_and_a_summary(finished):
    _, paths = finished
    assert [p.name for p in paths] == [*PNGS, "summary.md"]
    for path in paths[:4]:
        width, height = png_size(path)
        assert width >= 600 and height >= 300
        assert path.stat().st_size > 10_000  # drawn, not an empty canvas
    summary = paths[-1].read_text()
    for name in PNGS:
        assert f"]({name})" in summary


def test_the_summary_numbers_are_the_run_stats(finished):
    res, paths = finished
    summary = paths[-1].read_text()
    stats = res.stats
    assert f"| stop reason | {res.stop_reason} |" in summary
    assert f"| generations | {stats['generations']} |" in summary
    assert f"| evaluations | {stats['evaluations']} of 3000 |" in summary
    cache = stats["cache"]
    assert (f"| cache hit rate | {cache['hit_rate']:.1%} ({cache['hits']} hits of "
            f"{cache['lookups']} lookups) |") in summary
    assert (f"| cache time | about {cache['seconds_saved']:.2f} s of evaluation saved; "
            f"{cache['hash_seconds']:.2f} s spent hashing and looking up |") in summary
    assert f"train error (mse): {res.best_error:.6g}" in summary
    assert f"as evolved: `{res.best}`" in summary
    assert f"`{readable_sympy(res.best)}`" in summary
    for row in stats["operators"]:
        assert f"| {row['operator']} | {row['children']} | {row['improved']} |" in summary


def test_the_error_plot_is_drawn_from_the_generation_events(finished):
    res, _ = finished
    ax = error_figure(load_run(res.out_dir)).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"median", "best"}
    gen_events = [e for e in events(res.out_dir) if e["event"] == "generation"]
    assert list(lines["best"].get_xdata()) == [e["generation"] for e in gen_events]
    assert list(lines["best"].get_ydata()) == [e["best_error"] for e in gen_events]
    assert list(lines["median"].get_ydata()) == [e["median_error"] for e in gen_events]
    assert lines["best"].get_ydata()[-1] == res.best_error
    assert ax.get_yscale() == "log"


def test_with_islands_each_island_has_a_median_line_and_best_is_over_all(islands):
    res = islands
    run = load_run(res.out_dir)
    ax = error_figure(run).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"median, island 0", "median, island 1", "best"}
    gen_events = [e for e in events(res.out_dir) if e["event"] == "generation"]
    for k in (0, 1):
        mine = [e for e in gen_events if e["island"] == k]
        assert list(lines[f"median, island {k}"].get_ydata()) == [e["median_error"] for e in mine]
    by_gen: dict[int, float] = {}
    for e in gen_events:
        by_gen[e["generation"]] = min(by_gen.get(e["generation"], 1e300), e["best_error"])
    assert list(lines["best"].get_ydata()) == [by_gen[g] for g in sorted(by_gen)]
    assert lines["best"].get_ydata()[-1] == res.best_error
    assert "| islands | 2 |" in summary_markdown(run)


def test_the_pareto_plot_and_table_are_the_runs_front(finished):
    res, paths = finished
    ax = pareto_figure(load_run(res.out_dir)).axes[0]
    points = next(line for line in ax.get_lines() if line.get_marker() == "o")
    assert list(points.get_xdata()) == [c for c, _, _ in res.pareto_front]
    assert list(points.get_ydata()) == [e for _, e, _ in res.pareto_front]
    named = len(res.pareto_front) if len(res.pareto_front) <= ANNOTATED else ANNOTATED + 1
    assert len(ax.texts) == named
    table = paths[-1].read_text().split("## Pareto front")[1].split("##")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`" in line]
    assert [float(r.split("|")[1]) for r in rows] == [c for c, _, _ in res.pareto_front]
    assert [r.split("|")[2].strip() for r in rows] == [f"{e:.6g}" for _, e, _ in
                                                        res.pareto_front]


def test_the_operator_plot_shows_children_and_share_improved(finished):
    res, _ = finished
    left, right = operators_figure(load_run(res.out_dir)).axes
    credit = res.stats["operators"]
    assert [t.get_text() for t in left.get_yticklabels()] == [r["operator"] for r in credit]
    assert [bar.get_width() for bar in left.patches] == [r["children"] for r in credit]
    shares = [bar.get_width() for bar in right.patches]
    assert shares == pytest.approx([100 * r["improved_share"] for r in credit], abs=1e-4)


def test_the_lineage_ends_at_the_best_program_and_starts_in_the_first_generation(finished):
    res, paths = finished
    run = load_run(res.out_dir)
    line = best_lineage(run.genealogy)
    nodes = [run.genealogy.nodes[n] for n in line]
    assert nodes[-1]["error"] == res.best_error
    assert nodes[0]["operator"] == "init" and nodes[0]["generation"] == 0
    gens = [n["generation"] for n in nodes]
    assert gens == sorted(gens)
    assert "## How the best was found" in paths[-1].read_text()


def test_an_unfinished_run_is_reported_from_its_events_and_checkpoint(interrupted):
    partial = interrupted["partial"]
    assert [p.name for p in partial["paths"]] == [*PNGS, "summary.md"]
    summary = partial["summary"]
    assert "**Not finished**: no end event yet" in summary
    assert "come from the checkpoint at generation 2" in summary
    last = [e for e in partial["events"] if e["event"] == "progress"][-1]
    assert last["generation"] == 2
    assert f"| evaluations | {last['evaluations']} of 3000 |" in summary
    assert f"train error (mse): {last['best_error']:.6g}" in summary
    assert partial["run"].end is None and partial["run"].front


def test_a_resumed_run_is_reported_with_its_final_stats(interrupted):
    res, out = interrupted["resumed"], interrupted["out"]
    run = load_run(out)
    summary = summary_markdown(run)
    assert f"Finished: stop reason **{res.stop_reason}**" in summary
    assert f"| evaluations | {res.stats['evaluations']} of 3000 |" in summary
    assert f"train error (mse): {res.best_error:.6g}" in summary
    best = error_figure(run).axes[0].get_lines()[-1]
    assert list(best.get_xdata()) == list(range(res.stats["generations"] + 1))


def test_a_last_line_still_being_written_is_skipped(interrupted, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(interrupted["out"], copy)
    complete = load_run(copy)
    with open(copy / "events.jsonl", "a") as fh:
        fh.write('{"event": "generation", "isl')
    assert load_run(copy).generations == complete.generations


def test_a_directory_that_is_not_a_run_is_refused(tmp_path):
    missing = re.escape("is not a run directory: config.json is missing")
    with pytest.raises(UserError, match=missing):
        write_report(tmp_path / "nothing")
    with pytest.raises(UserError, match=missing):
        write_report(tmp_path)


def test_a_run_with_no_events_yet_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(to_json(make_config("nguyen-1")))
    with pytest.raises(UserError, match=re.escape("no events yet: events.jsonl is missing")):
        write_report(tmp_path)
    (tmp_path / "events.jsonl").write_text("")
    with pytest.raises(UserError, match=re.escape("events.jsonl holds no generation event")):
        write_report(tmp_path)
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "summary.md").exists()


def test_a_csv_run_reads_its_grammar_and_column_names_from_config_data(tmp_path):
    rows = [f"{x / 10},{(x / 10) ** 2 + 1}" for x in range(-20, 21)]
    (tmp_path / "quad.csv").write_text("u,y\n" + "\n".join(rows) + "\n")
    source = DataSource(path=str(tmp_path / "quad.csv"), target="y", grammar="koza")
    config = make_config("quad", seed=0, max_evaluations=1000).clone(override={"data": source})
    res = run_config(config, out_dir=tmp_path / "r")
    run = load_run(tmp_path / "r")
    assert run.grammar.name == "koza" and run.variables == ("u",)
    assert run.readable(str(res.best)) == str(readable_sympy(res.best, ["u"]))
    assert f"`{readable_sympy(res.best, ['u'])}`" in summary_markdown(run)


@pytest.mark.llm
def test_llm_operators_are_highlighted_and_their_calls_counted(tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-test-not-a-real-key")
    joined: list[dict[str, Any]] = []

    def wait_for_a_reply(event: dict[str, Any]) -> None:
        """Replies join at the first barrier after they arrive: until one has joined,
        give the endpoint a moment at each barrier (a wait, not a timed assertion)."""
        if event["event"] == "llm_call":
            joined.append(event)
        elif event["event"] == "progress" and not joined:
            time.sleep(0.2)

    with ScriptedServer(default=exprs("x0 * x0 + x0", "sin(x0) + x0")) as server:
        config = make_config("nguyen-2", seed=3, population_size=30, generations=10).clone(
            override={"llm": llm_config(server.base_url, rate=0.2)})
        res = run_config(config, out_dir=tmp_path / "r", on_event=wait_for_a_reply)
    stats = res.stats
    assert stats["llm_results"] > 0
    run = load_run(res.out_dir)
    left, _ = operators_figure(run).axes
    colors = {t.get_text(): bar.get_facecolor()
              for t, bar in zip(left.get_yticklabels(), left.patches, strict=True)}
    llm_ops = [op for op in colors if op.startswith("llm_")]
    assert llm_ops and all(colors[op][:3] == pytest.approx(_rgb(LLM_COLOR)) for op in llm_ops)
    llm = summary_markdown(run).split("## LLM")[1]
    assert f"| calls | {stats['llm_calls']} |" in llm
    assert f"| tokens | {stats['llm_tokens']} |" in llm
    per_op = [line.split("|") for line in llm.splitlines() if line.startswith("| llm_")]
    assert sum(int(cells[2]) for cells in per_op) == stats["llm_results"]
    assert sum(int(cells[4]) for cells in per_op) == stats["llm_accepted"]


def _rgb(hex_color: str) -> tuple[float, float, float]:
    return tuple(int(hex_color[k:k + 2], 16) / 255 for k in (1, 3, 5))
