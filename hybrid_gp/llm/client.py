"""The chat client: one request to an OpenAI-compatible endpoint, with retries.

`LLMClient.complete` sends one chat request through `openai.AsyncOpenAI` and always
returns an `Outcome`: a `Reply`, or the fault that ended the request. Timeouts, 429,
5xx and connection errors are retried (`config.retries` times, exponential backoff with
jitter drawn from a numpy Generator, Retry-After honoured up to `backoff_max`); 4xx,
empty and malformed replies are not. Every fault met on the way is counted by kind.

The API key is read from the environment variable named in the config and handed to
the openai client only; it is never stored, logged or returned.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from .budget import Usage, estimate_tokens
from .config import LLMConfig

FAULT_KINDS = (
    "timeout", "rate_limited", "server_error", "connection", "client_error", "empty",
    "malformed", "truncated", "budget_exhausted", "cancelled", "internal",
)
RETRYABLE = frozenset({"timeout", "rate_limited", "server_error", "connection"})
REFUSING = frozenset({401, 403, 404})  # a wrong key or model: every request will fail
NO_KEY = "no-key"  # sent to endpoints given by base_url when no key is set: local servers


@dataclass(frozen=True)
class Reply:
    """A reply's text and what the endpoint said about it."""

    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    usage_reported: bool = True
    system_fingerprint: str | None = None
    response_model: str | None = None
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "finish_reason": self.finish_reason,
                "usage": {"prompt_tokens": self.usage.prompt_tokens,
                          "completion_tokens": self.usage.completion_tokens},
                "usage_reported": self.usage_reported,
                "system_fingerprint": self.system_fingerprint,
                "response_model": self.response_model, "truncated": self.truncated}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        usage = data.get("usage") or {}
        return cls(text=str(data["text"]), finish_reason=data.get("finish_reason"),
                   usage=Usage(int(usage.get("prompt_tokens", 0)),
                               int(usage.get("completion_tokens", 0))),
                   usage_reported=bool(data.get("usage_reported", True)),
                   system_fingerprint=data.get("system_fingerprint"),
                   response_model=data.get("response_model"),
                   truncated=bool(data.get("truncated", False)))


@dataclass(frozen=True)
class Outcome:
    """How one request ended. `fault` is None when `reply` holds a usable reply;
    `faults` counts every fault met, retried ones included."""

    reply: Reply | None
    fault: str | None = None
    faults: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    latency: float = 0.0
    detail: str = ""
    status: int | None = None  # HTTP status of the last failed attempt, if any

    @property
    def usage(self) -> Usage:
        return self.reply.usage if self.reply is not None else Usage()

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.fault or "ok",
                "reply": None if self.reply is None else self.reply.to_json(),
                "faults": dict(sorted(self.faults.items())), "attempts": self.attempts,
                "latency": round(self.latency, 6), "detail": self.detail,
                "status": self.status}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        reply = data.get("reply")
        outcome = data.get("outcome", "ok")
        return cls(reply=None if reply is None else Reply.from_json(reply),
                   fault=None if outcome == "ok" else str(outcome),
                   faults={str(k): int(v) for k, v in (data.get("faults") or {}).items()},
                   attempts=int(data.get("attempts", 0)),
                   latency=float(data.get("latency", 0.0)), detail=str(data.get("detail", "")),
                   status=None if data.get("status") is None else int(data["status"]))


def request_params(config: LLMConfig) -> dict[str, Any]:
    """The sampling parameters sent with every request (and keyed in transcripts)."""
    return {"temperature": float(config.temperature),
            config.token_param: int(config.max_reply_tokens)}


def resolve_api_key(config: LLMConfig) -> str:
    """The key from the environment variable the config names.

    OpenAI itself (no base_url) needs one; a server given by base_url gets a
    placeholder when the variable is unset (vLLM, Ollama and llama.cpp ignore it).
    """
    key = os.environ.get(config.api_key_env, "").strip()
    if key:
        return key
    if config.base_url is None:
        raise ConfigError(f"llm.api_key_env: environment variable {config.api_key_env} is "
                          f"not set; it must hold the API key for api.openai.com (or set "
                          f"llm.base_url to another OpenAI-compatible endpoint)")
    return NO_KEY


def backoff_delay(attempt: int, rng: np.random.Generator, *, base: float, cap: float,
                  retry_after: float | None = None) -> float:
    """Seconds to wait before retry number `attempt` (0-based).

    The server's Retry-After wins when given; otherwise base * 2**attempt scaled by a
    jitter factor drawn uniformly from [0.5, 1.5). Never more than `cap`.
    """
    if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0:
        return min(cap, retry_after)
    return min(cap, base * 2.0 ** attempt * (0.5 + float(rng.random())))


def read_reply(response: Any, max_chars: int) -> Reply:
    """The text and metadata of a chat completion; raises _Fault when there is none."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise _Fault("malformed", "the response is not a chat completion with choices")
    try:
        first = choices[0]
        text = first.message.content
        finish = first.finish_reason
    except (AttributeError, IndexError, TypeError):
        raise _Fault("malformed", "the first choice has no message") from None
    if text is None or not str(text).strip():
        raise _Fault("empty", f"the reply has no text (finish_reason {finish!r})")
    text = str(text)
    truncated = finish == "length"
    if len(text) > max_chars:
        text, truncated = text[:max_chars], True
    if truncated and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]  # the last line may stop mid-expression
    usage = getattr(response, "usage", None)
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    reported = isinstance(prompt, int) and isinstance(completion, int)
    return Reply(
        text=text, finish_reason=finish,
        usage=Usage(prompt, completion) if reported else Usage(0, estimate_tokens(text)),
        usage_reported=reported,
        system_fingerprint=_str_or_none(getattr(response, "system_fingerprint", None)),
        response_model=_str_or_none(getattr(response, "model", None)),
        truncated=truncated,
    )


def classify_error(exc: BaseException) -> tuple[str, str, float | None]:
    """(fault kind, short detail, Retry-After seconds or None) of an exception raised
    by the openai client."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return "timeout", "no answer within the timeout", None
    if isinstance(exc, openai.APIConnectionError):
        return "connection", f"connection failed ({_cause_name(exc)})", None
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        retry_after = _retry_after(exc.response.headers) if exc.response is not None else None
        if code == 429:
            return "rate_limited", "HTTP 429", retry_after
        if code == 408:
            return "timeout", "HTTP 408", retry_after
        if code >= 500 or code == 409:
            return "server_error", f"HTTP {code}", retry_after
        return "client_error", f"HTTP {code}", None
    if isinstance(exc, ValueError | TypeError | KeyError | AttributeError
                  | openai.APIResponseValidationError):
        return "malformed", f"unreadable response ({type(exc).__name__})", None
    return "internal", f"{type(exc).__name__}", None


class _Fault(Exception):
    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class LLMClient:
    """Chat requests to one endpoint and model, at most `config.concurrency` at once.

    It may be built on any thread (building the openai client costs ~0.1 s: better
    before the run than in the background mid-run), then used on one asyncio loop.
    `rng` draws the backoff jitter only.
    """

    def __init__(self, config: LLMConfig, rng: np.random.Generator, api_key: str):
        import openai

        self.config = config
        self.rng = rng
        self.params = request_params(config)
        self._openai: Any = openai.AsyncOpenAI(
            api_key=api_key, base_url=config.base_url, timeout=config.timeout,
            max_retries=0)  # retries are ours
        self._completions = self._openai.chat.completions
        self._slots: asyncio.Semaphore | None = None

    async def complete(self, messages: Sequence[dict[str, str]]) -> Outcome:
        """Send one request (retrying transient faults); never raises but on cancel."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.concurrency)
        start = time.perf_counter()
        faults: Counter[str] = Counter()
        attempts = 0
        async with self._slots:
            while True:
                attempts += 1
                try:
                    response = await self._completions.create(
                        model=self.config.model, messages=list(messages),
                        timeout=self.config.timeout, **self.params)
                    reply = read_reply(response, self.config.max_reply_chars)
                except _Fault as fault:
                    faults[fault.kind] += 1
                    return Outcome(None, fault.kind, dict(faults), attempts,
                                   time.perf_counter() - start, fault.detail)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # every error of the call becomes a counted fault
                    kind, detail, retry_after = classify_error(exc)
                    faults[kind] += 1
                    if kind not in RETRYABLE or attempts > self.config.retries:
                        return Outcome(None, kind, dict(faults), attempts,
                                       time.perf_counter() - start, detail,
                                       getattr(exc, "status_code", None))
                    await asyncio.sleep(backoff_delay(
                        attempts - 1, self.rng, base=self.config.backoff,
                        cap=self.config.backoff_max, retry_after=retry_after))
                    continue
                if reply.truncated:
                    faults["truncated"] += 1
                return Outcome(reply, None, dict(faults), attempts, time.perf_counter() - start)

    async def aclose(self) -> None:
        await self._openai.close()


def _retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or a numeric `retry-after` header."""
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
        if math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def _cause_name(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    return type(cause).__name__ if cause is not None else type(exc).__name__


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
