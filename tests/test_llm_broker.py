"""The broker against a scripted OpenAI-compatible endpoint, through the real openai client:
non-blocking submits, acceptance and rejection counts, dedup, exact budget caps, record
then offline replay of a whole (small) run, a dying endpoint, and secrets kept out."""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from llm_server import (
    KEY_ENV,
    Action,
    ScriptedServer,
    drop,
    empty,
    exprs,
    llm_config,
    malformed,
    reply,
    status,
    wait_until,
)

import hybrid_gp as hg
from hybrid_gp.llm import Broker, LLMConfig, LLMResult
from hybrid_gp.llm.prompts import PromptContext, ScoredProgram
from hybrid_gp.operators.classic import subtree_mutation
from hybrid_gp.operators.llm import llm_crossover, llm_rewrite
from hybrid_gp.rng import stream

pytestmark = pytest.mark.llm

TESTS = Path(__file__).parent
DEAD_URL = "http://127.0.0.1:9/v1"


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = f"sk-test-{secrets.token_hex(12)}"
    monkeypatch.setenv(KEY_ENV, key)
    return key


@pytest.fixture(autouse=True)
def _key(api_key: str) -> None:
    """Every test runs with a fresh fake key in the environment."""


def make_broker(config: LLMConfig, grammar: hg.Grammar, seed: int = 0) -> Broker:
    return Broker(config, grammar=grammar, n_features=2, max_size=30, max_depth=8, seed=seed)


def rewrite(grammar: hg.Grammar, text: str = "x0", parent_id: int = 0, k: int = 3):
    p = hg.Program.parse(text, grammar=grammar)
    ctx = PromptContext(grammar=grammar, n_features=2, k=k)
    return llm_rewrite(ScoredProgram(p, 1.0, p.complexity), ctx, parent_id=parent_id)


def llm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "hybrid-gp-llm"]


# ---------------------------------------------------------------------- non-blocking


def test_submit_returns_while_replies_are_held(koza):
    with ScriptedServer(default=exprs("x0 + x1")) as server:
        server.hold()
        with make_broker(llm_config(server.base_url), koza) as broker:
            seqs = [broker.submit(rewrite(koza, parent_id=i), 0) for i in range(3)]
            assert seqs == [0, 1, 2]
            wait_until(lambda: server.hits == 3)  # requests reach the endpoint at once ...
            assert broker.collect(1) == []  # ... but no reply has come back yet
            assert broker.pending == 3
            server.release()
            assert broker.wait(10)
            results = broker.collect(2)
    assert [r.seq for r in results] == [0, 1, 2]
    assert [r.parent_ids for r in results] == [(0,), (1,), (2,)]
    assert all(r.submitted == 0 and r.joined == 2 for r in results)


def test_concurrency_limits_requests_in_flight(koza):
    with ScriptedServer(default=exprs("x1")) as server:
        server.hold()
        config = llm_config(server.base_url, concurrency=2, max_pending=5)
        with make_broker(config, koza) as broker:
            for i in range(5):
                assert broker.submit(rewrite(koza, parent_id=i), 0) is not None
            assert broker.capacity() == 0
            assert broker.submit(rewrite(koza), 0) is None  # too many pending
            wait_until(lambda: server.hits == 2)
            time.sleep(0.1)
            assert server.hits == 2  # the others wait for a slot
            server.release()
            assert broker.wait(10)
            assert len(broker.collect(1)) == 5
            assert broker.capacity() == 5


# ---------------------------------------------------------------------- counts


def test_acceptance_rejection_and_fault_counts(koza, tmp_path):
    marker = tmp_path / f"PWNED_{secrets.token_hex(6)}"
    script = [
        exprs("x0 * x1", "sin(x0) + x1", "x1 + sin(x0)"),  # 3 accepted
        exprs("x0 + x1 +", "foo(x1)", f"__import__('os').system('touch {marker}')"),  # 3 bad
        exprs("x0", "x0 * x0", "x0 * x0"),  # parent again, then a duplicate line
        reply("I would rather explain: the data looks quadratic."),  # no EXPR line
        status(500), status(500), status(500),  # one request fails after 2 retries
    ]
    with ScriptedServer(script) as server:
        config = llm_config(server.base_url, concurrency=1, max_pending=5)
        with make_broker(config, koza) as broker:
            for i in range(5):
                broker.submit(rewrite(koza, "x0", parent_id=i), 0)
                assert broker.wait(10)  # one at a time: the script order is the seq order
            results = broker.collect(1)
            stats = broker.stats()
            events = broker.take_events()
    assert [len(r.programs) for r in results] == [3, 0, 1, 0, 0]
    assert [r.fault for r in results] == [None, None, None, "malformed", "server_error"]
    assert dict(results[1].rejections) == {"unparsable": 2, "unknown_primitive": 1}
    assert dict(results[2].rejections) == {"duplicate": 2}
    assert stats["llm_calls"] == 5 and stats["llm_results"] == 5
    assert stats["llm_accepted"] == 4 and stats["llm_candidates"] == 9
    assert stats["llm_failures"] == 2
    assert {k: v for k, v in stats["llm_rejections"].items() if v} == {
        "unparsable": 2, "unknown_primitive": 1, "duplicate": 2}
    assert {k: v for k, v in stats["llm_faults"].items() if v} == {
        "malformed": 1, "server_error": 3}
    assert stats["llm_system_fingerprints"] == ["fp_scripted_1"]
    assert [e["event"] for e in events] == ["llm_call"] * 5
    assert events[0]["programs"] == ["x0 * x1", "sin(x0) + x1", "x1 + sin(x0)"]
    assert not marker.exists()


def test_failed_proposals_feed_later_prompts(koza):
    with ScriptedServer([exprs("x0 ^ 2", "bar(x1)", "x1")]) as server, \
            make_broker(llm_config(server.base_url), koza) as broker:
        broker.submit(rewrite(koza), 0)
        assert broker.wait(10)
        broker.collect(1)
        failures = broker.recent_failures(5)
    assert [t for t, _ in failures] == ["x0 ^ 2", "bar(x1)"]
    assert failures[1][1].startswith("unknown_primitive:")


# ---------------------------------------------------------------------- budget


def test_the_call_budget_stops_at_exactly_its_cap(koza):
    with ScriptedServer(default=exprs("x0 + x1")) as server:
        with make_broker(llm_config(server.base_url, max_calls=3), koza) as broker:
            sent = [broker.submit(rewrite(koza, parent_id=i), 0) for i in range(6)]
            assert broker.wait(10)
            broker.collect(1)
            assert not broker.active and broker.capacity() == 0
            events = broker.take_events()
            stats = broker.stats()
        assert server.hits == 3
    assert sent == [0, 1, 2, None, None, None]
    assert stats["llm_calls"] == 3 and stats["llm_budget_exhausted"] == "calls"
    assert [e for e in events if e["event"] == "llm_budget_exhausted"] == [
        {"event": "llm_budget_exhausted", "generation": 0, "model": "scripted-model",
         "cap": "calls", "calls": 3}]


def test_the_token_budget_never_goes_over(koza):
    with ScriptedServer(default=exprs("x0 + x1", usage=(900, 100))) as server:
        config = llm_config(server.base_url, max_tokens=5000, max_reply_tokens=100)
        with make_broker(config, koza) as broker:
            for generation in range(20):
                broker.collect(generation)
                while broker.capacity() and broker.submit(rewrite(koza), generation) is not None:
                    pass
                assert broker.wait(10)
            broker.collect(20)
            stats = broker.stats()
        hits = server.hits
    assert stats["llm_tokens"] <= 5000
    assert stats["llm_tokens"] == 1000 * hits == 1000 * stats["llm_calls"]
    assert stats["llm_budget_exhausted"] == "tokens"
    # the next request would have crossed the cap: its prompt bound + 100 did not fit
    assert 5000 - stats["llm_tokens"] < 1000 + 2 * 900


def test_the_dollar_budget_uses_the_price_table(koza):
    prices = {"scripted-model": [1000.0, 2000.0]}  # USD per 1M tokens: 1e-3 and 2e-3
    with ScriptedServer(default=exprs("x1", usage=(5, 5))) as server:
        config = llm_config(server.base_url, max_usd=0.5, prices=prices, max_reply_tokens=5,
                            concurrency=1, max_pending=1)
        with make_broker(config, koza) as broker:
            for generation in range(500):
                broker.collect(generation)
                if not broker.active:
                    break
                broker.submit(rewrite(koza, parent_id=generation), generation)
                assert broker.wait(10)
            stats = broker.stats()
    assert stats["llm_usd"] <= 0.5
    assert stats["llm_usd"] == pytest.approx(stats["llm_calls"] * 0.015)
    assert stats["llm_budget_exhausted"] == "usd"


# ---------------------------------------------------------------------- faults


def test_a_dead_endpoint_disables_the_llm_with_one_warning(koza, caplog):
    server = ScriptedServer().start()
    url = server.base_url
    server.stop()
    caplog.set_level(logging.WARNING, logger="hybrid_gp.llm")
    config = llm_config(url, failures_to_disable=3, retries=1)
    with make_broker(config, koza) as broker:
        for generation in range(6):
            broker.collect(generation)
            while broker.capacity():
                broker.submit(rewrite(koza), generation)
            broker.wait(10)
        stats = broker.stats()
        events = broker.take_events()
        assert not broker.active
    warnings = [r for r in caplog.records if r.name == "hybrid_gp.llm"]
    assert len(warnings) == 1 and "no longer used" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()
    assert stats["llm_disabled"] and "connection" in stats["llm_disabled"]
    assert stats["llm_faults"]["connection"] >= 6
    assert sum(e["event"] == "llm_disabled" for e in events) == 1
    assert not llm_threads()


def test_a_bad_request_counts_toward_disabling_but_not_at_once(koza):
    with ScriptedServer(default=status(400)) as server:
        config = llm_config(server.base_url, failures_to_disable=2, max_pending=1)
        with make_broker(config, koza) as broker:
            broker.submit(rewrite(koza), 0)
            broker.wait(10)
            broker.collect(1)
            assert broker.active
            broker.submit(rewrite(koza, "x1"), 1)
            broker.wait(10)
            broker.collect(2)
            assert not broker.active and "client_error" in (broker.disabled or "")
        assert server.hits == 2


@pytest.mark.parametrize("action", [empty, malformed], ids=["empty", "malformed"])
def test_replies_that_are_empty_or_malformed_in_a_row_disable_the_llm(koza, action):
    with ScriptedServer(default=action()) as server:
        config = llm_config(server.base_url, failures_to_disable=2, max_pending=1)
        with make_broker(config, koza) as broker:
            for generation in range(4):
                broker.collect(generation)
                if broker.active:
                    broker.submit(rewrite(koza, parent_id=generation), generation)
                    broker.wait(10)
            assert not broker.active and action.__name__ in (broker.disabled or "")
        assert server.hits == 2


def test_closing_counts_an_arrived_reply_as_spent_and_a_waiting_one_as_cancelled(koza):
    with ScriptedServer(script=[exprs("x1", usage=(7, 3)), exprs("x1", delay=5.0)]) as server:
        broker = make_broker(llm_config(server.base_url, concurrency=1, max_pending=2), koza)
        broker.submit(rewrite(koza), 0)
        assert broker.wait(10)  # arrived, never collected
        broker.submit(rewrite(koza, "x1"), 0)  # still waiting at close
        wait_until(lambda: server.hits == 2)
        broker.close()
        stats = broker.stats()
    assert stats["llm_tokens"] == 10
    assert stats["llm_faults"]["cancelled"] == 1


def test_a_refused_key_disables_at_once(koza):
    with ScriptedServer(default=status(401)) as server:
        with make_broker(llm_config(server.base_url), koza) as broker:
            broker.submit(rewrite(koza), 0)
            broker.wait(10)
            broker.collect(1)
            assert not broker.active and "HTTP 401" in (broker.disabled or "")
        assert server.hits == 1


@pytest.mark.slow
def test_the_endpoint_dying_mid_run_leaves_a_normal_end(koza):
    """A subprocess runs a small loop whose endpoint dies; stderr gets one line (slow:
    most of its time is the subprocess importing numba, sklearn and openai)."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        import hybrid_gp as hg
        from hybrid_gp.llm import Broker
        from hybrid_gp.llm.prompts import PromptContext, ScoredProgram
        from hybrid_gp.operators.llm import llm_rewrite
        from llm_server import ScriptedServer, exprs, llm_config

        g = hg.load_grammar("koza")
        p = hg.Program.parse("x0", grammar=g)
        ctx = PromptContext(grammar=g, n_features=2)
        server = ScriptedServer(default=exprs("x0 + x1", delay=0.05)).start()
        config = llm_config(server.base_url, retries=1, failures_to_disable=2)
        broker = Broker(config, grammar=g, n_features=2, max_size=30, max_depth=8)
        for generation in range(40):
            if generation == 5:
                server.stop()
            broker.collect(generation)
            while broker.capacity():
                broker.submit(llm_rewrite(ScoredProgram(p, 1.0, 1.0), ctx,
                                          parent_id=generation), generation)
            broker.wait(5)
        stats = broker.stats()
        broker.close()
        print("done", stats["llm_results"] > 0, stats["llm_disabled"] is not None)
    """)
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env=env, cwd=TESTS.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done True True"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "no longer used" in lines[0] and "Traceback" not in proc.stderr


def test_close_cancels_what_is_pending_and_stops_the_thread(koza, tmp_path):
    path = tmp_path / "t.jsonl"
    with ScriptedServer(default=exprs("x1")) as server:
        server.hold()
        broker = make_broker(llm_config(server.base_url, mode="record", transcript=str(path)),
                             koza)
        broker.submit(rewrite(koza), 0)
        assert llm_threads()
        broker.close()
        broker.close()  # twice is fine
        assert not llm_threads()
        assert broker.submit(rewrite(koza), 1) is None
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[1]["outcome"] == "cancelled" and lines[1]["joined"] is None


# ---------------------------------------------------------------------- a small run


X = stream(0, "llm-test", "X").uniform(-1.0, 1.0, size=(32, 2))
Y = X[:, 0] * X[:, 1] + np.sin(X[:, 0])
PROBE = stream(0, "llm-test", "probe").uniform(-2.0, 2.0, size=(16, 2))
_PARENT = re.compile(r"Program to improve:\n  (.*?)    \(")


def proposals(marker: Path, delays: np.random.Generator):
    """Replies built from the prompt's parent: a new program, an equivalent
    rearrangement, the target, garbage and an injection attempt."""

    def answer(body: dict[str, Any]) -> Action:
        user = body["messages"][-1]["content"]
        found = _PARENT.search(user)
        parent = found.group(1) if found else "x0"
        return exprs(f"({parent}) + x1", f"x1 + ({parent})", "x0 * x1 + sin(x0)", "x0 +* 2",
                     f"__import__('os').system('touch {marker}')",
                     delay=float(delays.uniform(0.0, 0.03)))

    return answer


def functional_key(p: hg.Program) -> bytes:
    out = hg.evaluate([p], PROBE)[0]
    with np.errstate(over="ignore", invalid="ignore"):
        return np.round(out, 9).tobytes()


def mini_run(config: LLMConfig, grammar: hg.Grammar, *, seed: int = 0, generations: int = 12,
             pace: float = 0.0, wait_every: int = 0, server: ScriptedServer | None = None,
             stop_server_at: int | None = None) -> dict[str, Any]:
    """A miniature generational loop wired the way the engine uses the broker.

    Every `wait_every` generations it waits for the replies in flight (a no-op in a
    replay), so some replies surely join; the others join whenever they arrive."""
    rng = stream(seed, "mini")
    pop = hg.random_programs(grammar, 16, 2, seed=seed, min_depth=1, max_depth=3)
    errors = hg.fitness(pop, X, Y)
    seen = {functional_key(p) for p in pop}
    log: dict[str, Any] = {"history": [], "events": [], "dedup_hits": 0, "llm_children": 0}
    with Broker(config, grammar=grammar, n_features=2, max_size=30, max_depth=8,
                seed=seed) as broker:
        for generation in range(generations):
            if stop_server_at == generation and server is not None:
                server.stop()
            if wait_every and generation % wait_every == 0:
                broker.wait(10)
            results: list[LLMResult] = broker.collect(generation)
            llm_kids = [p for r in results for p in r.programs]
            picks = rng.integers(len(pop), size=8)
            classic = [subtree_mutation(pop[i], rng, n_features=2, max_depth=6, max_size=30,
                                        new_depth=2) or pop[i] for i in picks]
            fresh = []
            for origin, kid in [("llm", k) for k in llm_kids] + [("gp", k) for k in classic]:
                key = functional_key(kid)
                if key in seen:
                    log["dedup_hits"] += origin == "llm"
                    continue
                seen.add(key)
                fresh.append(kid)
                log["llm_children"] += origin == "llm"
            if fresh:
                pop = pop + fresh
                errors = np.concatenate([errors, hg.fitness(fresh, X, Y)])
                order = sorted(range(len(pop)), key=lambda i: (errors[i], pop[i].size,
                                                               str(pop[i])))[:16]
                pop, errors = [pop[i] for i in order], errors[order]
            elites = tuple(ScoredProgram(pop[i], float(errors[i]), pop[i].complexity)
                           for i in range(3))
            ctx = PromptContext(grammar=grammar, n_features=2, metric="mse", k=5,
                                elites=elites, failures=broker.recent_failures(3))
            for _ in range(min(2, broker.capacity())):
                i, j = (int(v) for v in rng.integers(len(pop), size=2))
                a = ScoredProgram(pop[i], float(errors[i]), pop[i].complexity)
                b = ScoredProgram(pop[j], float(errors[j]), pop[j].complexity)
                request = (llm_rewrite(a, ctx, parent_id=i) if rng.random() < 0.7
                           else llm_crossover(a, b, ctx, parent_ids=(i, j)))
                broker.submit(request, generation)
            log["history"].append([(str(p), float(e)) for p, e in zip(pop, errors,
                                                                      strict=True)])
            log["events"] += broker.take_events()
            if pace:
                time.sleep(pace)  # lets replies arrive at varying generations
        log["stats"] = broker.stats()
    log["events"] += broker.take_events()
    return log


def without_clock(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.items() if k != "clock"} for e in events]


def test_record_then_replay_offline_is_identical(koza, tmp_path, api_key):
    path = tmp_path / "run.jsonl"
    marker = tmp_path / f"PWNED_{secrets.token_hex(6)}"
    with ScriptedServer(proposals(marker, stream(1, "delays"))) as server:
        config = llm_config(server.base_url, mode="record", transcript=str(path), k=5)
        recorded = mini_run(config, koza, pace=0.01, wait_every=4)
    joins = {e["joined"] - e["submitted"] for e in recorded["events"] if e["event"] == "llm_call"}
    assert recorded["stats"]["llm_results"] >= 4
    assert recorded["dedup_hits"] >= 1 and recorded["llm_children"] >= 1
    assert recorded["stats"]["llm_rejections"]["unparsable"] >= 2
    assert joins  # (how late replies joined varies between recordings)

    replay = llm_config(DEAD_URL, mode="replay", transcript=str(path), k=5)
    replayed = mini_run(replay, koza, wait_every=4)  # nothing listens: fully offline
    assert replayed["history"] == recorded["history"]
    assert without_clock(replayed["events"]) == without_clock(recorded["events"])
    assert replayed["stats"] == recorded["stats"]
    assert replayed["dedup_hits"] == recorded["dedup_hits"]
    assert not marker.exists()
    # the key was sent to the endpoint, and was written nowhere
    assert api_key not in path.read_text(encoding="utf-8")
    assert api_key not in json.dumps(recorded["events"]) + json.dumps(recorded["stats"])


def test_replay_with_another_seed_is_refused(koza, tmp_path):
    path = tmp_path / "run.jsonl"
    with ScriptedServer(proposals(tmp_path / "x", stream(2, "delays"))) as server:
        config = llm_config(server.base_url, mode="record", transcript=str(path), k=5)
        mini_run(config, koza, generations=4)
    replay = llm_config(DEAD_URL, mode="replay", transcript=str(path), k=5)
    with pytest.raises(hg.UserError, match=r"holds no reply for request #0"):
        mini_run(replay, koza, seed=1, generations=4)
    assert not llm_threads()


def test_the_run_goes_on_when_the_endpoint_dies(koza, tmp_path, caplog, capfd):
    caplog.set_level(logging.WARNING, logger="hybrid_gp.llm")
    with ScriptedServer(proposals(tmp_path / "x", stream(3, "delays"))) as server:
        config = llm_config(server.base_url, k=5, retries=1, failures_to_disable=2)
        log = mini_run(config, koza, generations=30, pace=0.01, server=server,
                       stop_server_at=3)
    # nothing from the background thread reached the terminal (no traceback)
    assert capfd.readouterr().err == ""
    assert len(log["history"]) == 30
    assert log["stats"]["llm_disabled"] is not None
    assert sum(e["event"] == "llm_disabled" for e in log["events"]) == 1
    assert len([r for r in caplog.records if r.name == "hybrid_gp.llm"]) == 1


def test_the_key_stays_out_of_logs_and_files(koza, tmp_path, api_key, caplog):
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "t.jsonl"
    with ScriptedServer([status(429, retry_after=0.01), drop(), status(401)]) as server:
        config = llm_config(server.base_url, mode="record", transcript=str(path))
        with make_broker(config, koza) as broker:
            broker.submit(rewrite(koza), 0)
            broker.wait(10)
            results = broker.collect(1)
            text = json.dumps(broker.take_events()) + json.dumps(broker.stats())
            text += repr(broker) + repr(config) + str(results)
        assert server.requests[0].headers["authorization"] == f"Bearer {api_key}"
    assert api_key not in text
    assert api_key not in caplog.text
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert api_key not in file.read_text(encoding="utf-8", errors="replace")


# ---------------------------------------------------------------------- benchmark


@pytest.mark.slow
@pytest.mark.parametrize("population, generations", [(100, 600), (500, 120)])
def test_benchmark_classic_rate_with_a_slow_endpoint(population, generations):
    """Seconds for the same classic generations alone and with a 2 s-latency endpoint
    taking an LLM share of 0.1, interleaved three times; prints the median ratio of
    generations per second (the target is >= 0.8). Wall time on a shared machine is
    noisy; process CPU time is printed beside it. Plain GP on nguyen-12 (no restarts,
    no semantic children, never solved), so both runs make every generation."""
    import statistics

    answer = exprs("x0 * x0 + sin(x0)", "x0 + x0", "exp(x0) - x0", "log(x0 + x0)", delay=2.0)

    def timed(server: ScriptedServer | None) -> tuple[float, float, int]:
        llm = (llm_config(server.base_url, rate=0.1, k=4, timeout=10.0, concurrency=4)
               if server is not None else None)
        wall, cpu = time.perf_counter(), time.process_time()
        res = hg.run("nguyen-12", seed=0, population_size=population, generations=generations,
                     max_evaluations=None, time_budget=10**6, restart_after=0,
                     semantic_share=0.0, llm=llm)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert res.stats["generations"] == generations
        return wall, cpu, int(res.stats["llm_calls"])

    with ScriptedServer(default=answer) as server:
        timed(None)  # warm up
        wall_ratios, cpu_ratios, calls = [], [], []
        for _ in range(3):
            alone = timed(None)
            with_llm = timed(server)
            wall_ratios.append(alone[0] / with_llm[0])
            cpu_ratios.append(alone[1] / with_llm[1])
            calls.append(with_llm[2])
    print(f"\npopulation {population}, {generations} generations: generations/s with LLM "
          f"over alone, median of 3: wall {statistics.median(wall_ratios):.3f} "
          f"{[round(r, 3) for r in wall_ratios]}, CPU {statistics.median(cpu_ratios):.3f}; "
          f"LLM calls per run {calls}")
    assert all(c > 0 for c in calls)
