"""LLMConfig, the budget, backoff, and the chat client against a scripted endpoint
(through the real openai client)."""

from __future__ import annotations

import asyncio

import numpy as np
import pyglove as pg
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
    no_choices,
    reply,
    status,
)

from hybrid_gp.errors import ConfigError
from hybrid_gp.llm import Budget, LLMClient, LLMConfig, Usage
from hybrid_gp.llm.budget import prompt_token_bound
from hybrid_gp.llm.client import NO_KEY, Outcome, backoff_delay, resolve_api_key
from hybrid_gp.rng import stream

MESSAGES = [{"role": "user", "content": "propose"}]


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, "sk-test-client")
    return "sk-test-client"


# ---------------------------------------------------------------------- config


def test_config_defaults_match_the_api():
    c = LLMConfig(model="gpt-x")
    assert (c.base_url, c.api_key_env, c.rate, c.mode, c.transcript) == (
        None, "OPENAI_API_KEY", 0.1, "live", None)
    assert (c.max_calls, c.max_tokens, c.max_usd) == (None, None, None)
    assert c.pending_limit == 2 * c.concurrency


def test_config_round_trips_through_json():
    c = LLMConfig(model="m", base_url="http://localhost:8000/v1", mode="record",
                  transcript="t.jsonl", max_usd=1.5, prices={"m": [0.15, 0.6]})
    back = pg.from_json_str(pg.to_json_str(c))
    assert back == c and back.price() == pytest.approx((0.15e-6, 0.6e-6))


@pytest.mark.parametrize("fields, message", [
    ({"mode": "replay"}, "needs a transcript"),
    ({"mode": "record"}, "needs a transcript"),
    ({"transcript": "t.jsonl"}, "writes no transcript"),
    ({"mode": "sometimes"}, "candidate list"),
    ({"max_usd": 1.0}, "price of model 'm'"),
    ({"rate": 0.9}, "llm.rate"),
    ({"min_share": 0.3, "max_share": 0.2, "rate": 0.25}, "min_share"),
    ({"base_url": "localhost:8000"}, "http"),
    ({"base_url": "http://"}, "expected an http:// or https:// URL, got 'http://'"),
    ({"temperature": 5.0}, "temperature"),
    ({"k": 0}, "k"),
    ({"unknown_field": 1}, "unknown_field"),
])
def test_bad_config_values_raise_config_errors(fields, message):
    with pytest.raises(ConfigError, match=message):
        LLMConfig(model="m", **fields)


def test_a_key_pasted_as_the_variable_name_is_refused_without_echo():
    secret = "sk-proj-abc123-secret"
    with pytest.raises(ConfigError) as info:
        LLMConfig(model="m", api_key_env=secret)
    assert secret not in str(info.value)


def test_rebind_is_validated_too():
    c = LLMConfig(model="m")
    with pytest.raises(ConfigError, match="needs a transcript"):
        c.rebind(mode="replay")


def test_the_key_comes_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("MY_LLM_KEY", "sk-from-env")
    assert resolve_api_key(LLMConfig(model="m", api_key_env="MY_LLM_KEY")) == "sk-from-env"
    monkeypatch.delenv("MY_LLM_KEY")
    with pytest.raises(ConfigError, match="MY_LLM_KEY is not set"):
        resolve_api_key(LLMConfig(model="m", api_key_env="MY_LLM_KEY"))
    local = LLMConfig(model="m", api_key_env="MY_LLM_KEY", base_url="http://127.0.0.1:1/v1")
    assert resolve_api_key(local) == NO_KEY


# ---------------------------------------------------------------------- budget


def test_calls_stop_at_exactly_the_cap():
    b = Budget(max_calls=3)
    held = [b.reserve(10, 10) for _ in range(5)]
    assert [h is not None for h in held] == [True, True, True, False, False]
    assert b.calls == 3 and b.exhausted and b.hit == "calls"


def test_tokens_never_cross_the_cap():
    b = Budget(max_tokens=1000)
    r1 = b.reserve(300, 200)  # holds 500
    r2 = b.reserve(300, 200)  # holds 1000
    assert r1 and r2 and b.reserve(1, 1) is None and not b.exhausted  # room may come back
    b.settle(r1, Usage(100, 50))
    b.settle(r2, Usage(100, 50))
    assert b.tokens == 300 and b.reserved_tokens == 0
    r3 = b.reserve(300, 200)
    assert r3 is not None
    assert b.reserve(300, 200) is None  # 300 + 500 + 500 > 1000
    b.settle(r3, Usage(400, 100))
    assert b.reserve(300, 200) is None and b.exhausted and b.hit == "tokens"
    assert b.tokens == 800 <= 1000


def test_dollars_use_the_price_table():
    b = Budget(max_usd=0.01, price=(1e-6, 2e-6))
    r = b.reserve(1000, 1000)  # 0.003 held
    assert r is not None and r.usd == pytest.approx(0.003)
    assert b.settle(r, Usage(1000, 500)) == pytest.approx(0.002)
    assert b.usd == pytest.approx(0.002)


def test_the_prompt_bound_covers_every_byte():
    messages = [{"role": "system", "content": "é" * 10}, {"role": "user", "content": "abc"}]
    assert prompt_token_bound(messages) >= 20 + 3


# ---------------------------------------------------------------------- backoff


def test_backoff_grows_with_jitter_from_the_generator():
    a = [backoff_delay(k, stream(0, "b"), base=1.0, cap=100.0) for k in range(5)]
    b = [backoff_delay(k, stream(0, "b"), base=1.0, cap=100.0) for k in range(5)]
    assert a == b  # the same stream gives the same jitter
    for k, d in enumerate(a):
        assert 0.5 * 2**k <= d < 1.5 * 2**k


def test_retry_after_wins_and_everything_is_capped():
    rng = stream(0, "b")
    assert backoff_delay(0, rng, base=1.0, cap=10.0, retry_after=3.0) == 3.0
    assert backoff_delay(0, rng, base=1.0, cap=10.0, retry_after=60.0) == 10.0
    assert backoff_delay(20, rng, base=1.0, cap=10.0) == 10.0


# ---------------------------------------------------------------------- the client


def complete(config: LLMConfig, messages=MESSAGES) -> Outcome:
    async def go() -> Outcome:
        client = LLMClient(config, stream(0, "test"), resolve_api_key(config))
        try:
            return await client.complete(messages)
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.mark.llm
def test_a_reply_brings_text_usage_and_fingerprint(api_key):
    with ScriptedServer([exprs("x0 + x1", usage=(120, 7))]) as server:
        out = complete(llm_config(server.base_url, temperature=0.3, max_reply_tokens=99))
        seen = server.requests[0]
    assert out.fault is None and out.reply is not None
    assert out.reply.text == "EXPR: x0 + x1"
    assert out.usage == Usage(120, 7)
    assert out.reply.system_fingerprint == "fp_scripted_1"
    assert out.attempts == 1
    assert seen.body["model"] == "scripted-model" and seen.body["temperature"] == 0.3
    assert seen.body["max_tokens"] == 99
    assert seen.headers["authorization"] == f"Bearer {api_key}"


@pytest.mark.llm
def test_newer_models_get_max_completion_tokens():
    with ScriptedServer() as server:
        complete(llm_config(server.base_url, token_param="max_completion_tokens"))
        body = server.requests[0].body
    assert body["max_completion_tokens"] == 512 and "max_tokens" not in body


@pytest.mark.llm
@pytest.mark.parametrize("first, kind", [
    (status(500), "server_error"),
    (status(503), "server_error"),
    (status(429, retry_after=0.01), "rate_limited"),
    (drop(), "connection"),
])
def test_transient_faults_are_retried_and_counted(first, kind):
    with ScriptedServer([first, exprs("x1")]) as server:
        out = complete(llm_config(server.base_url))
        assert server.hits == 2
    assert out.fault is None and out.faults == {kind: 1} and out.attempts == 2


@pytest.mark.llm
def test_retries_are_bounded():
    with ScriptedServer(default=status(500)) as server:
        out = complete(llm_config(server.base_url, retries=3))
        assert server.hits == 4
    assert out.fault == "server_error" and out.faults == {"server_error": 4}
    assert out.attempts == 4 and out.reply is None


@pytest.mark.llm
def test_slow_replies_time_out():
    with ScriptedServer([exprs("x0", delay=2.0)]) as server:
        out = complete(llm_config(server.base_url, timeout=0.1, retries=0))
        assert server.hits == 1
    assert out.fault == "timeout" and out.faults == {"timeout": 1}


@pytest.mark.llm
@pytest.mark.parametrize("action, kind", [
    (malformed(), "malformed"),
    (no_choices(), "malformed"),
    (Action(text=None, body=b"<html>busy</html>", content_type="text/html"), "malformed"),
    (empty(), "empty"),
    (status(401), "client_error"),
    (status(404), "client_error"),
])
def test_broken_replies_are_not_retried(action, kind):
    with ScriptedServer([action]) as server:
        out = complete(llm_config(server.base_url))
        assert server.hits == 1
    assert out.fault == kind and out.faults == {kind: 1} and out.reply is None


@pytest.mark.llm
def test_huge_replies_are_cut_at_a_line_end():
    lines = [f"EXPR: x0 + x{j % 2}" for j in range(20_000)]
    with ScriptedServer([reply(*lines)]) as server:
        out = complete(llm_config(server.base_url, max_reply_chars=1000))
    assert out.fault is None and out.faults == {"truncated": 1}
    assert out.reply is not None and out.reply.truncated
    assert len(out.reply.text) <= 1000 and out.reply.text.endswith("\n")
    assert all(line.startswith("EXPR: x0 + x") for line in out.reply.text.splitlines())


@pytest.mark.llm
def test_a_length_stop_drops_the_unfinished_line():
    with ScriptedServer([reply("EXPR: x0", "EXPR: sin(x", finish_reason="length")]) as server:
        out = complete(llm_config(server.base_url))
    assert out.reply is not None and out.reply.text == "EXPR: x0\n"
    assert out.faults == {"truncated": 1}


@pytest.mark.llm
def test_a_refused_connection_is_a_connection_fault():
    server = ScriptedServer().start()
    url = server.base_url
    server.stop()
    out = complete(llm_config(url, retries=1))
    assert out.fault == "connection" and out.faults == {"connection": 2}


@pytest.mark.llm
def test_missing_usage_is_estimated_from_the_text():
    body = (b'{"id": "x", "object": "chat.completion", "created": 1, "model": "m", '
            b'"choices": [{"index": 0, "finish_reason": "stop", '
            b'"message": {"role": "assistant", "content": "EXPR: x0 + x1"}}]}')
    with ScriptedServer([Action(text=None, body=body)]) as server:
        out = complete(llm_config(server.base_url))
    assert out.reply is not None and not out.reply.usage_reported
    assert out.usage.completion_tokens == 4


@pytest.mark.llm
def test_outcomes_round_trip_through_json():
    with ScriptedServer([exprs("x0", usage=(3, 4))]) as server:
        out = complete(llm_config(server.base_url))
    assert Outcome.from_json(out.to_json()).reply == out.reply
    failed = Outcome(None, "timeout", {"timeout": 3}, 3, 1.5, "no answer")
    assert Outcome.from_json(failed.to_json()) == failed


def test_jitter_never_uses_the_global_random_module():
    import hybrid_gp.llm.client as client_module

    assert "random" not in vars(client_module)
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    backoff_delay(1, rng, base=1.0, cap=10.0)
    assert rng.bit_generator.state != before


def test_a_restored_budget_holds_the_reservations_of_requests_in_flight():
    """A checkpoint keeps the requests in flight with their reservations: the resumed
    budget counts them against the caps and settles them when they join."""
    b = Budget(max_calls=3, max_tokens=1000, max_usd=1.0, price=(0.001, 0.002))
    done = b.reserve(10, 20)
    b.settle(done, Usage(5, 5))
    in_flight = b.reserve(10, 20)  # still in flight when the checkpoint is taken
    resumed = Budget(max_calls=3, max_tokens=1000, max_usd=1.0, price=(0.001, 0.002))
    resumed.restore(b.snapshot())
    assert (resumed.calls, resumed.tokens, resumed.reserved_tokens, resumed.open) == (2, 10, 30, 1)
    assert resumed.usd + resumed.reserved_usd == pytest.approx(0.005 + 0.010 + 0.01 + 0.04)
    assert resumed.reserve(10, 20) is not None and resumed.exhausted  # the third call
    assert resumed.reserve(10, 20) is None
    resumed.settle(in_flight, Usage(4, 6))
    assert (resumed.tokens, resumed.open) == (20, 1)
