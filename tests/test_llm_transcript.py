"""Transcripts: stable keys, occurrence counters, record, strict replay, replay-or-live."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from llm_server import KEY_ENV, ScriptedServer, exprs, llm_config

import hybrid_gp as hg
from hybrid_gp.llm import Broker, TranscriptError, TranscriptMiss
from hybrid_gp.llm.prompts import PromptContext, ScoredProgram
from hybrid_gp.llm.transcript import (
    FORMAT,
    Occurrences,
    Transcript,
    entry_digest,
    exchange,
    request_key,
)
from hybrid_gp.operators.llm import llm_rewrite

MESSAGES = [{"role": "user", "content": "x0 + x1 — é"}]
PARAMS = {"temperature": 0.7, "max_tokens": 64}
DEAD_URL = "http://127.0.0.1:9/v1"  # nothing listens there: a replay must not need it


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-test-transcript")


def test_request_key_is_pinned():
    # sha256 of canonical JSON: a change here breaks every recorded transcript
    assert request_key("m", MESSAGES, PARAMS) == (
        "ffcd6d5a924e2ed9e664be5323cf9f2514cdced38f8bdfa5bffc76895c7eb233")


def test_request_key_ignores_dict_order_but_not_content():
    base = request_key("m", MESSAGES, PARAMS)
    assert request_key("m", [{"content": "x0 + x1 — é", "role": "user"}],
                       {"max_tokens": 64, "temperature": 0.7}) == base
    assert request_key("other", MESSAGES, PARAMS) != base
    assert request_key("m", MESSAGES, {**PARAMS, "temperature": 0.8}) != base
    assert request_key("m", [{"role": "user", "content": "x0 + x2"}], PARAMS) != base


def test_occurrences_count_repeats_per_key():
    occ = Occurrences()
    assert [occ.next("a"), occ.next("b"), occ.next("a"), occ.next("a")] == [0, 0, 1, 2]


def entry(key: str = "k", occurrence: int = 0, text: str = "EXPR: x0",
          joined: int | None = 3) -> dict:
    outcome = {"outcome": "ok", "reply": {"text": text, "usage": {"prompt_tokens": 5,
                                                                  "completion_tokens": 2}},
               "faults": {}, "attempts": 1, "latency": 0.1, "detail": ""}
    return exchange(key=key, occurrence=occurrence, seq=0, operator="llm_rewrite", model="m",
                    messages=MESSAGES, params=PARAMS, outcome=outcome, submitted=1,
                    joined=joined)


def test_written_entries_read_back(tmp_path):
    path = tmp_path / "t.jsonl"
    t = Transcript(path, read=False, write=True, fresh=True)
    t.append(entry("k", 0))
    t.append(entry("k", 1, text="EXPR: x1"))
    t.close()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["format"] == FORMAT
    back = Transcript(path, read=True, write=False)
    assert back.lookup("k", 1)["reply"]["text"] == "EXPR: x1"
    assert back.lookup("k", 2) is None


def recorded_lines(tmp_path) -> tuple[Path, list[dict]]:
    path = tmp_path / "t.jsonl"
    t = Transcript(path, read=False, write=True, fresh=True)
    t.append(entry("k", 0))
    t.append(entry("k", 1, text="EXPR: x1"))
    t.close()
    return path, [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_recorded_exchange_carries_the_digest_of_its_content(tmp_path):
    _, lines = recorded_lines(tmp_path)
    assert "digest" not in lines[0]  # the header
    for line in lines[1:]:
        assert line["digest"] == entry_digest(line) and len(line["digest"]) == 64
    assert lines[1]["digest"] != lines[2]["digest"]


def test_a_reply_edited_after_recording_is_refused_with_its_line(tmp_path):
    path, lines = recorded_lines(tmp_path)
    lines[2]["reply"]["text"] = "EXPR: x0 * x1"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    with pytest.raises(TranscriptError, match="changed after it was recorded") as info:
        Transcript(path, read=True, write=False)
    assert f"{path}:3" in str(info.value) and "delete the entry's" in str(info.value)


def test_an_edit_without_its_digest_is_replayed_on_purpose(tmp_path):
    path, lines = recorded_lines(tmp_path)
    lines[2]["reply"]["text"] = "EXPR: x0 * x1"
    del lines[2]["digest"]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    back = Transcript(path, read=True, write=False)
    assert back.lookup("k", 1)["reply"]["text"] == "EXPR: x0 * x1"
    assert back.lookup("k", 0)["reply"]["text"] == lines[1]["reply"]["text"]


def test_a_last_line_cut_short_by_a_kill_is_dropped_and_appending_goes_on(tmp_path):
    """A kill while an exchange was written leaves half a line without its newline: that
    exchange is lost, the others read back, and a resumed recording appends cleanly."""
    path = tmp_path / "t.jsonl"
    t = Transcript(path, read=False, write=True, fresh=True)
    t.append(entry("k", 0))
    t.close()
    whole = path.read_bytes()
    path.write_bytes(whole + json.dumps(entry("k", 1)).encode()[:40])
    assert Transcript(path, read=True, write=False).lookup("k", 1) is None
    again = Transcript(path, read=True, write=True)
    assert again.lookup("k", 0) is not None
    again.append(entry("k", 1, text="EXPR: x1"))
    again.close()
    assert path.read_bytes().startswith(whole)
    back = Transcript(path, read=True, write=False)
    assert back.lookup("k", 1)["reply"]["text"] == "EXPR: x1"


def test_record_refuses_to_overwrite(tmp_path):
    path = tmp_path / "t.jsonl"
    Transcript(path, read=False, write=True, fresh=True).close()
    with pytest.raises(TranscriptError, match="already exists"):
        Transcript(path, read=False, write=True, fresh=True)


def test_replay_needs_an_existing_file(tmp_path):
    with pytest.raises(TranscriptError, match="does not exist"):
        Transcript(tmp_path / "missing.jsonl", read=True, write=False)


@pytest.mark.parametrize("line, message", [
    ("{not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    ('{"type": "header", "format": "other", "version": 1}', "not a hybrid_gp"),
    ('{"type": "exchange", "key": "k"}', "lacks 'occurrence'"),
])
def test_broken_files_are_named_with_their_line(tmp_path, line, message):
    path = tmp_path / "t.jsonl"
    good = json.dumps({"type": "header", "format": FORMAT, "version": 1})
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(TranscriptError, match=message) as info:
        Transcript(path, read=True, write=False)
    assert f"{path}:2" in str(info.value)


@pytest.mark.parametrize("change, message", [
    ({"occurrence": "abc"}, "occurrence must be an integer, got 'abc'"),
    ({"joined": "soon"}, "joined must be an integer, got 'soon'"),
    ({"reply": "zzz"}, "AttributeError|str"),
    ({"reply": {"text": "x", "usage": {"prompt_tokens": None}}}, "int"),
])
def test_an_entry_with_damaged_values_is_named_with_its_line(tmp_path, change, message):
    path = tmp_path / "t.jsonl"
    good = json.dumps({"type": "header", "format": FORMAT, "version": 1})
    damaged = json.dumps({"type": "exchange", **entry("k", 0), **change})
    path.write_text(good + "\n" + damaged + "\n", encoding="utf-8")
    with pytest.raises(TranscriptError, match="a damaged entry") as info:
        Transcript(path, read=True, write=False)
    assert f"{path}:2" in str(info.value)
    assert re.search(message, str(info.value))


def rewrite_request(koza: hg.Grammar, text: str = "x0", parent_id: int = 0):
    ctx = PromptContext(grammar=koza, n_features=2, k=3)
    p = hg.Program.parse(text, grammar=koza)
    return llm_rewrite(ScoredProgram(p, 1.0, p.complexity), ctx, parent_id=parent_id)


def broker(config, koza) -> Broker:
    return Broker(config, grammar=koza, n_features=2, max_size=30, max_depth=8, seed=0)


def record(koza: hg.Grammar, path: str) -> None:
    """Record one rewrite of x0 answered by x0 + x1."""
    with ScriptedServer([exprs("x0 + x1")]) as server, \
            broker(llm_config(server.base_url, mode="record", transcript=path), koza) as b:
        b.submit(rewrite_request(koza, "x0"), 0)
        assert b.wait(10)
        b.collect(1)


@pytest.mark.llm
def test_the_same_request_twice_gets_two_samples_in_replay(koza, tmp_path):
    path = str(tmp_path / "t.jsonl")
    with ScriptedServer([exprs("x0 + x1"), exprs("sin(x1)")]) as server, \
            broker(llm_config(server.base_url, mode="record", transcript=path), koza) as b:
        assert b.submit(rewrite_request(koza), 0) == 0
        assert b.wait(10)
        b.collect(1)
        assert b.submit(rewrite_request(koza), 1) == 1  # the same prompt again
        assert b.wait(10)
        recorded = [[str(p) for p in r.programs] for r in b.collect(2)]
    assert recorded == [["sin(x1)"]]
    entries = Transcript(path, read=True, write=False).entries
    assert sorted(occ for _, occ in entries) == [0, 1]
    with broker(llm_config(DEAD_URL, mode="replay", transcript=path), koza) as b:
        b.submit(rewrite_request(koza), 0)
        first = b.collect(1)
        b.submit(rewrite_request(koza), 1)
        second = b.collect(2)
    assert [str(p) for p in first[0].programs] == ["x0 + x1"]
    assert [str(p) for p in second[0].programs] == ["sin(x1)"]


@pytest.mark.llm
def test_strict_replay_names_the_missing_request(koza, tmp_path):
    path = str(tmp_path / "t.jsonl")
    record(koza, path)
    replay = broker(llm_config(DEAD_URL, mode="replay", transcript=path), koza)
    with replay as b, pytest.raises(TranscriptMiss) as info:
        b.submit(rewrite_request(koza, "sin(x1)"), 0)
    message = str(info.value)
    assert "request #0" in message and "llm_rewrite" in message and "sin(x1)" in message
    assert "occurrence 0" in message and isinstance(info.value, hg.UserError)


@pytest.mark.llm
def test_replay_or_live_reuses_hits_and_records_misses(koza, tmp_path):
    path = str(tmp_path / "t.jsonl")
    record(koza, path)
    with ScriptedServer([exprs("cos(x0)")]) as server:
        config = llm_config(server.base_url, mode="replay-or-live", transcript=path)
        with broker(config, koza) as b:
            b.submit(rewrite_request(koza, "x0"), 0)  # recorded
            b.submit(rewrite_request(koza, "x1"), 0)  # new: asked live
            assert b.wait(10)
            results = b.collect(1)
        assert server.hits == 1
    assert [[str(p) for p in r.programs] for r in results] == [["x0 + x1"], ["cos(x0)"]]
    assert [r.replayed for r in results] == [True, False]
    assert len(Transcript(path, read=True, write=False).entries) == 2
