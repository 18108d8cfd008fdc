"""Spending caps for LLM calls: calls, tokens and dollars.

A request reserves its worst case *before* it is sent: one call, an upper bound of its
prompt tokens plus `max_reply_tokens`, and the dollars those would cost. When its reply
joins the run, the reservation is replaced by the usage the endpoint reported. So the
caps are never crossed (as long as the endpoint honours the reply-token limit), and
the run stops asking at exactly the cap.

Reservations and settlements happen on the engine's thread, at submit and at join, so
the budget's state depends only on what the engine did: a replay hits the cap at the
same point as the recording.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# Special tokens a chat template adds around each message and the whole prompt. Generous:
# it only makes the upper bound looser.
_TOKENS_PER_MESSAGE = 8
_TOKENS_PER_PROMPT = 16


@dataclass(frozen=True)
class Usage:
    """Tokens one reply used, as the endpoint reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def cost(self, price: tuple[float, float]) -> float:
        """Dollars at `price` = (USD per input token, USD per output token)."""
        return self.prompt_tokens * price[0] + self.completion_tokens * price[1]


@dataclass(frozen=True)
class Reservation:
    """What one request holds of the budget until its reply joins."""

    tokens: int
    usd: float


def prompt_token_bound(messages: Sequence[dict[str, Any]]) -> int:
    """An upper bound of the prompt's tokens: byte-level tokenizers never make more
    tokens than UTF-8 bytes, plus a few special tokens per message."""
    total = _TOKENS_PER_PROMPT
    for m in messages:
        total += len(str(m.get("content", "")).encode("utf-8")) + _TOKENS_PER_MESSAGE
    return total


class Budget:
    """Caps on calls, tokens and dollars (None: no cap), reserved before each call."""

    def __init__(self, max_calls: int | None = None, max_tokens: int | None = None,
                 max_usd: float | None = None, price: tuple[float, float] = (0.0, 0.0)):
        self.max_calls = max_calls
        self.max_tokens = max_tokens
        self.max_usd = max_usd
        self.price = price
        self.calls = 0  # requests sent (each with its retries)
        self.tokens = 0  # reported by settled replies
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.usd = 0.0
        self.reserved_tokens = 0
        self.reserved_usd = 0.0
        self.open = 0  # reservations not yet settled
        self.exhausted = False  # nothing more will ever fit
        self.hit: str | None = None  # the cap that stopped the calls: calls, tokens or usd

    def reserve(self, prompt_bound: int, reply_tokens: int) -> Reservation | None:
        """Hold one call and the worst case of its tokens and dollars; None (and nothing
        held) when that would cross a cap."""
        if self.exhausted:
            return None
        tokens = prompt_bound + reply_tokens
        usd = prompt_bound * self.price[0] + reply_tokens * self.price[1]
        cap = self._crossed(tokens, usd)
        if cap is not None:
            # Room held by requests in flight may come back; otherwise the cap is reached.
            if self.open == 0 or cap == "calls":
                self.exhausted, self.hit = True, cap
            return None
        self.calls += 1
        self.reserved_tokens += tokens
        self.reserved_usd += usd
        self.open += 1
        if self.max_calls is not None and self.calls >= self.max_calls:
            self.exhausted, self.hit = True, "calls"
        return Reservation(tokens, usd)

    def _crossed(self, tokens: int, usd: float) -> str | None:
        """The cap one more request of this size would cross, if any."""
        if self.max_calls is not None and self.calls + 1 > self.max_calls:
            return "calls"
        if (self.max_tokens is not None
                and self.tokens + self.reserved_tokens + tokens > self.max_tokens):
            return "tokens"
        if (self.max_usd is not None
                and self.usd + self.reserved_usd + usd > self.max_usd * (1 + 1e-12)):
            return "usd"
        return None

    def settle(self, reservation: Reservation, usage: Usage) -> float:
        """Replace a reservation by the reported usage; returns the dollars it cost."""
        self.reserved_tokens -= reservation.tokens
        self.reserved_usd = max(0.0, self.reserved_usd - reservation.usd)
        self.open -= 1
        cost = usage.cost(self.price)
        self.tokens += usage.total
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.usd += cost
        return cost

    def release(self, reservation: Reservation) -> None:
        """Give a reservation back unused (a request cancelled before it was answered)."""
        self.settle(reservation, Usage())

    _STATE = ("calls", "tokens", "prompt_tokens", "completion_tokens", "usd",
              "reserved_tokens", "reserved_usd", "open", "exhausted", "hit")

    def snapshot(self) -> dict[str, Any]:
        """Every counter, reservations in flight included: a checkpoint keeps it (with
        the requests that hold the reservations), so caps hold across a resume."""
        return {name: getattr(self, name) for name in self._STATE}

    def restore(self, spent: dict[str, Any]) -> None:
        """Continue from a `snapshot` (of the same caps)."""
        for name in self._STATE:
            if name in spent:
                setattr(self, name, spent[name])
        if self.max_calls is not None and self.calls >= self.max_calls:
            self.exhausted, self.hit = True, "calls"

    def remaining(self) -> dict[str, float | None]:
        """What is left under each cap (None: uncapped)."""
        return {
            "calls": None if self.max_calls is None else self.max_calls - self.calls,
            "tokens": None if self.max_tokens is None else self.max_tokens - self.tokens,
            "usd": None if self.max_usd is None else self.max_usd - self.usd,
        }


def estimate_tokens(text: str) -> int:
    """A rough count (4 characters a token) for endpoints that report no usage."""
    return math.ceil(len(text) / 4)
