"""The LLM operators inside the real engine, through the real openai client, against
the scripted server: record then offline replay is the same run; equivalent proposals
are caught by the functional hash; injected code never runs; the call budget is exact;
a dying endpoint leaves a normal end."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llm_server import KEY_ENV, Action, ScriptedServer, exprs, llm_config

import hybrid_gp as hg
import hybrid_gp.api
from hybrid_gp.errors import UserError
from hybrid_gp.runlog import load_checkpoint

pytestmark = pytest.mark.llm

_PARENT = re.compile(r"Program to improve:\n  (.*?)    \(")


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-not-a-real-key")


def proposals(marker: Path):
    """Replies built from the prompt's parent: a rearrangement (same function), a new
    program, garbage and an injection attempt."""

    def answer(body: dict[str, Any]) -> Action:
        found = _PARENT.search(body["messages"][-1]["content"])
        parent = found.group(1) if found else "x0"
        return exprs(f"x0 * 0 + ({parent})" if "*" in parent else f"({parent}) * 1",
                     f"({parent}) + x0 * x0", "x0 +* 2",
                     f"__import__('os').system('touch {marker}')")

    return answer


def run(tmp_path: Path, name: str, llm: Any, problem: str = "nguyen-2",
        **search: Any) -> hg.RunResult:
    settings = {"population_size": 40, "generations": 25, "time_budget": 600.0, **search}
    return hg.run(problem, seed=3, llm=llm, out_dir=tmp_path / name, **settings)


def events(result: hg.RunResult) -> list[dict[str, Any]]:
    lines = (result.out_dir / "events.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "clock"} for line in lines]


def test_record_then_replay_offline_is_the_same_run(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    transcript = tmp_path / "calls.jsonl"
    with ScriptedServer(script=proposals(marker)) as server:
        url = server.base_url
        recorded = run(tmp_path, "record", llm_config(url, mode="record",
                                                      transcript=str(transcript), rate=0.2))
    # The server is gone: the replay must not need it.
    replayed = run(tmp_path, "replay", llm_config(url, mode="replay",
                                                  transcript=str(transcript), rate=0.2))
    assert recorded.stats["llm_calls"] > 0
    assert str(replayed.best) == str(recorded.best)
    assert replayed.best_error == recorded.best_error
    assert events(replayed) == events(recorded)
    stable = ("llm_calls", "llm_tokens", "llm_accepted", "llm_dedup_hits", "evaluations",
              "cache_hits")
    assert {k: replayed.stats[k] for k in stable} == {k: recorded.stats[k] for k in stable}
    assert not marker.exists()


def test_equivalent_proposals_are_cache_hits_and_rejections_are_counted(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    with ScriptedServer(script=proposals(marker)) as server:
        res = run(tmp_path, "live", llm_config(server.base_url, rate=0.2))
    stats = res.stats
    assert stats["llm_accepted"] > 0
    assert stats["llm_dedup_hits"] > 0  # the rearranged parent is a known function
    # every reply that joined carried "x0 +* 2" and the injection text (requests still
    # waiting when the run ended count as calls, not as replies)
    rejections = stats["llm_rejections"]
    assert rejections["unparsable"] == rejections["unknown_primitive"] == stats["llm_results"] > 0
    assert not marker.exists()
    kinds = {e["event"] for e in events(res)}
    assert "llm_call" in kinds


def test_the_call_budget_stops_at_exactly_its_cap(tmp_path: Path) -> None:
    with ScriptedServer(script=proposals(tmp_path / "PWNED")) as server:
        res = run(tmp_path, "capped", llm_config(server.base_url, rate=0.5, max_calls=3))
    assert server.hits == 3
    assert res.stats["llm_calls"] == 3


def test_a_dying_endpoint_leaves_a_normal_end(tmp_path: Path, capfd) -> None:
    server = ScriptedServer(script=proposals(tmp_path / "PWNED")).start()
    url = server.base_url
    server.stop()  # nothing listens: every request is refused
    # semantic children off: with them the classic operators alone solve nguyen-2
    # before generation 25, and this run must outlive the endpoint
    res = run(tmp_path, "dead", llm_config(url, rate=0.2, retries=0), semantic_share=0.0)
    assert res.stop_reason == "generations"
    assert res.stats["llm_disabled"]
    assert res.best is not None
    assert "Traceback" not in capfd.readouterr().err


def test_the_estimator_uses_llm_operators(tmp_path: Path) -> None:
    X = np.random.default_rng(0).uniform(-1, 1, size=(40, 1))
    y = X[:, 0] ** 3 + X[:, 0]
    with ScriptedServer(script=proposals(tmp_path / "PWNED")) as server:
        est = hg.SymbolicRegressor(grammar="koza", population_size=40, generations=15,
                                   max_evaluations=None, random_state=0,
                                   llm=llm_config(server.base_url, rate=0.3)).fit(X, y)
    assert est.run_.stats["llm_calls"] > 0
    assert est.score(X, y) > 0.5


def test_the_estimator_refuses_an_llm_that_is_not_a_config() -> None:
    X = np.zeros((5, 1))
    with pytest.raises(hg.UserError, match="LLMConfig"):
        hg.SymbolicRegressor(llm="gpt-4o").fit(X, X[:, 0])


def test_setup_mistakes_are_refused_before_the_run_directory_exists(tmp_path: Path,
                                                                     monkeypatch) -> None:
    existing = tmp_path / "old.jsonl"
    existing.write_text('{"type": "header"}\n')
    cases = [
        (llm_config("http://127.0.0.1:9/v1", mode="record", transcript=str(existing)),
         "already exists"),
        (llm_config("http://127.0.0.1:9/v1", mode="replay",
                    transcript=str(tmp_path / "none.jsonl")), "does not exist"),
    ]
    for k, (llm, message) in enumerate(cases):
        with pytest.raises(UserError, match=message):
            run(tmp_path, f"r{k}", llm)
        assert not (tmp_path / f"r{k}").exists()
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(UserError, match=KEY_ENV):
        run(tmp_path, "nokey", hg.LLMConfig(model="m", api_key_env=KEY_ENV))
    assert not (tmp_path / "nokey").exists()


def test_every_llm_operator_weight_zero_is_refused() -> None:
    from hybrid_gp.llm.config import LLMOperatorRates

    off = LLMOperatorRates(**{str(k): 0.0 for k in LLMOperatorRates.__schema__.fields})
    with pytest.raises(UserError, match=r"llm\.operators: every weight is 0"):
        llm_config("http://127.0.0.1:9/v1", operators=off)


def test_a_recorded_batch_gives_each_seed_its_own_transcript(tmp_path: Path) -> None:
    from hybrid_gp.cli import main

    transcript = tmp_path / "calls.jsonl"
    with ScriptedServer(script=proposals(tmp_path / "PWNED")) as server:
        code = main(["run", "nguyen-2", "--runs", "2", "--max-evals", "1500", "--quiet",
                     "--out", str(tmp_path / "batch"), "--llm-model", "scripted-model",
                     "--llm-base-url", server.base_url, "--llm-rate", "0.2",
                     "--llm-mode", "record", "--llm-transcript", str(transcript),
                     "--set", f"llm.api_key_env={KEY_ENV}"])
    assert code == 0
    assert (tmp_path / "calls.seed0.jsonl").exists() and (tmp_path / "calls.seed1.jsonl").exists()


def test_a_resumed_run_counts_the_calls_of_the_session_before(tmp_path: Path) -> None:
    """max_calls holds across a resume: the checkpoint carries what was spent."""
    with ScriptedServer(script=proposals(tmp_path / "PWNED")) as server:
        llm = llm_config(server.base_url, rate=0.2, max_calls=4)
        first = run(tmp_path, "run", llm, checkpoint_every=1, checkpoint_seconds=0.0)
        sent = server.hits
        assert first.stats["llm_calls"] == 4 and sent >= 4
        (tmp_path / "run" / "operators.csv").unlink()  # as if killed at the very end
        again = hg.resume(tmp_path / "run")
        assert server.hits == sent
    assert again.stats["llm_calls"] == 4



def interrupt_at(tmp_path: Path, name: str, llm: Any, at: int) -> Path:
    """Stop a nguyen-12 run (never solved in 25 generations: it is still going) with
    SIGINT at generation `at`, sent from an event callback as Ctrl-C would be; returns
    its directory, which holds the checkpoint."""
    import os
    import signal

    from hybrid_gp.errors import RunInterrupted

    def interrupt(event: dict[str, Any]) -> None:
        if event["event"] == "progress" and event["generation"] == at:
            os.kill(os.getpid(), signal.SIGINT)

    config = hg.api.make_config("nguyen-12", seed=3, population_size=40, generations=25,
                                time_budget=600.0, checkpoint_every=1,
                                checkpoint_seconds=0.0, semantic_share=0.0)
    out = tmp_path / name
    with pytest.raises(RunInterrupted):
        hg.api.run_config(config.clone(override={"llm": llm}), out_dir=out,
                          on_event=interrupt)
    assert not (out / "best.txt").exists()
    return out


def test_an_interrupted_replay_resumes_to_exactly_the_uninterrupted_replay(tmp_path: Path) -> None:
    """Requests in flight at the checkpoint are answered from the transcript at their
    recorded generation; the rng, counters and spending continue where they were."""
    transcript = tmp_path / "calls.jsonl"
    with ScriptedServer(script=proposals(tmp_path / "PWNED")) as server:
        run(tmp_path, "record", llm_config(server.base_url, mode="record",
                                           transcript=str(transcript), rate=0.3),
            "nguyen-12", semantic_share=0.0)
    replay = llm_config("http://127.0.0.1:9/v1", mode="replay", transcript=str(transcript),
                        rate=0.3)
    whole = run(tmp_path, "whole", replay, "nguyen-12", semantic_share=0.0)
    resumed = hg.resume(interrupt_at(tmp_path, "resumed", replay, at=8))
    assert whole.stats["llm_calls"] > 3 and whole.stats["generations"] == 25
    assert events(resumed) == events(whole)
    assert str(resumed.best) == str(whole.best)
    assert resumed.stats["llm_resent"] == 0


def test_an_interrupted_recording_resumes_and_its_transcript_replays_the_resumed_run(
        tmp_path: Path) -> None:
    """Resuming a 'record' run appends to its transcript (a fresh recording refuses an
    existing file); what the first session recorded is not asked again."""
    transcript = tmp_path / "calls.jsonl"
    with ScriptedServer(script=proposals(tmp_path / "PWNED")) as server:
        record = llm_config(server.base_url, mode="record", transcript=str(transcript),
                            rate=0.3)
        out = interrupt_at(tmp_path, "resumed", record, at=8)
        in_flight = len(load_checkpoint(out).llm.broker.in_flight)
        resumed = hg.resume(out)
        asked = server.hits
    # Only requests in flight at the stop are sent again (those whose reply the first
    # session did not record); everything else comes from the transcript.
    assert in_flight > 0 and resumed.stats["llm_resent"] <= in_flight
    assert asked <= resumed.stats["llm_calls"] + resumed.stats["llm_resent"]
    replay = llm_config("http://127.0.0.1:9/v1", mode="replay", transcript=str(transcript),
                        rate=0.3)
    replayed = run(tmp_path, "replayed", replay, "nguyen-12", semantic_share=0.0)
    assert events(replayed) == events(resumed)
    assert str(replayed.best) == str(resumed.best)


def test_resuming_a_recording_without_its_transcript_is_refused(tmp_path: Path) -> None:
    transcript = tmp_path / "calls.jsonl"
    with ScriptedServer(script=proposals(tmp_path / "PWNED")) as server:
        out = interrupt_at(tmp_path, "run", llm_config(
            server.base_url, mode="record", transcript=str(transcript), rate=0.3), at=4)
    transcript.unlink()
    with pytest.raises(UserError, match=r"calls\.jsonl is missing"):
        hg.resume(out)


def test_a_killed_recording_resumes_from_its_transcript_to_the_same_end(tmp_path: Path) -> None:
    """As if killed with SIGKILL after generation 10: the checkpoint is older than the
    transcript, which holds the replies of the lost generations. The resumed session
    takes them from the file at their recorded generations, so it needs no endpoint
    and ends as the uninterrupted recording did."""
    import shutil

    out, saved = tmp_path / "run", tmp_path / "saved-checkpoint"

    def keep(event: dict[str, Any]) -> None:
        if event["event"] == "progress" and event["generation"] == 10:
            shutil.copytree(out / "checkpoint", saved)

    transcript = tmp_path / "calls.jsonl"
    config = hg.api.make_config("nguyen-12", seed=3, population_size=40, generations=25,
                                checkpoint_every=1, checkpoint_seconds=0.0,
                                semantic_share=0.0)
    with ScriptedServer(script=proposals(tmp_path / "PWNED")) as server:
        record = llm_config(server.base_url, mode="record", transcript=str(transcript),
                            rate=0.3)
        whole = hg.api.run_config(config.clone(override={"llm": record}), out_dir=out,
                                  on_event=keep)
    never_joined = [e for e in map(json.loads, transcript.read_text().splitlines()[1:])
                    if e["joined"] is None]
    assert all(e["stopped"] == 25 for e in never_joined)
    assert whole.stats["llm_pending"] == len(never_joined) > 0  # waiting at the end
    killed = tmp_path / "killed"
    shutil.copytree(out, killed)
    shutil.rmtree(killed / "checkpoint")
    shutil.copytree(saved, killed / "checkpoint")
    for name in ("best.txt", "pareto.csv", "genealogy.json", "operators.csv"):
        (killed / name).unlink()
    assert load_checkpoint(killed).generation <= 10
    again = hg.resume(killed)  # the server is gone
    assert events(again) == events(whole)
    assert again.stats["llm_resent"] == 0 and again.stats["llm_faults"] == whole.stats[
        "llm_faults"]


def test_a_recording_killed_before_its_first_checkpoint_resumes_from_the_start(
        tmp_path: Path) -> None:
    """As if killed with SIGKILL mid-run (at the first generation from 3 on whose
    transcript holds a reply: when replies arrive depends on timing) in a run that
    never checkpoints: resume starts over, takes what the transcript already holds from
    it, asks the rest, and the finished transcript replays the resumed run."""
    import shutil

    out, transcript = tmp_path / "run", tmp_path / "calls.jsonl"
    kept = tmp_path / "kept"

    def keep(event: dict[str, Any]) -> None:
        if (event["event"] == "progress" and event["generation"] >= 3
                and not kept.exists() and len(transcript.read_text().splitlines()) > 1):
            shutil.copytree(out, kept / "run")
            shutil.copy(transcript, kept / "calls.jsonl")

    config = hg.api.make_config("nguyen-12", seed=3, population_size=40, generations=25,
                                checkpoint_every=0, semantic_share=0.0)
    with ScriptedServer(script=proposals(tmp_path / "PWNED")) as server:
        record = llm_config(server.base_url, mode="record", transcript=str(transcript),
                            rate=0.3)
        hg.api.run_config(config.clone(override={"llm": record}), out_dir=out, on_event=keep)
        assert kept.exists()  # a reply was recorded before the end
        shutil.rmtree(out)
        shutil.copytree(kept / "run", out)
        shutil.copy(kept / "calls.jsonl", transcript)
        assert not (out / "checkpoint").exists() and len(transcript.read_text().splitlines()) > 1
        resumed = hg.resume(out)
    replay = llm_config("http://127.0.0.1:9/v1", mode="replay", transcript=str(transcript),
                        rate=0.3)
    replayed = run(tmp_path, "replayed", replay, "nguyen-12", semantic_share=0.0,
                   checkpoint_every=0)
    assert events(replayed) == events(resumed)


def test_resuming_with_a_transcript_that_lost_entries_is_refused(tmp_path: Path) -> None:
    """The checkpoint knows which requests were recorded; a cut file could not replay."""
    transcript = tmp_path / "calls.jsonl"
    with ScriptedServer(script=proposals(tmp_path / "PWNED")) as server:
        out = interrupt_at(tmp_path, "run", llm_config(
            server.base_url, mode="record", transcript=str(transcript), rate=0.3), at=8)
        lines = transcript.read_text().splitlines()
        transcript.write_text("\n".join([lines[0], *lines[2:]]) + "\n")  # one exchange cut
        with pytest.raises(UserError, match=r"lacks 1 of the \d+ requests"):
            hg.resume(out)
