"""What goes to the broker (`LLMRequest`) and what comes back (`LLMResult`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..program import Program


@dataclass(frozen=True)
class LLMRequest:
    """One prompt to send, and who asked for it.

    `parent_ids` are the engine's own identifiers, passed back untouched in the result.
    `known` are programs the prompt shows (parents, elites): a reply repeating one
    counts as a duplicate. `gist` names the request in messages (e.g. the parent text).
    """

    operator: str
    parent_ids: tuple[int, ...]
    messages: tuple[Mapping[str, str], ...]
    known: tuple[Program, ...] = ()
    gist: str = ""

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": str(m["role"]), "content": str(m["content"])} for m in self.messages]


@dataclass(frozen=True)
class LLMResult:
    """A request that joined the run: its parsed programs, rejections, faults and cost.

    `programs` are already checked against the grammar, the variables, the size and
    depth limits and duplicates within the reply; the engine still passes them through
    the functional hash before evaluating them. `fault` is None when a reply arrived
    (even if none of its expressions was accepted).
    """

    seq: int
    operator: str
    parent_ids: tuple[int, ...]
    model: str
    programs: tuple[Program, ...]
    rejections: Mapping[str, int] = field(default_factory=dict)
    rejected: tuple[tuple[str, str], ...] = ()  # (text, "kind: reason")
    n_candidates: int = 0
    fault: str | None = None
    faults: Mapping[str, int] = field(default_factory=dict)
    detail: str = ""
    attempts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency: float = 0.0  # seconds, retries included; the recorded value in a replay
    system_fingerprint: str | None = None
    submitted: int = 0  # generation of submit
    joined: int = 0  # generation of join
    replayed: bool = False

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def event(self) -> dict[str, Any]:
        """The events.jsonl record of this call. Wall-clock values sit under "clock"; the
        rest is the same in a recording and its replay."""
        return {
            "event": "llm_call", "seq": self.seq, "operator": self.operator,
            "model": self.model, "parents": list(self.parent_ids),
            "submitted": self.submitted, "joined": self.joined,
            "candidates": self.n_candidates, "accepted": len(self.programs),
            "programs": [str(p) for p in self.programs],
            "rejections": dict(sorted(self.rejections.items())),
            "fault": self.fault, "faults": dict(sorted(self.faults.items())),
            "detail": self.detail, "attempts": self.attempts,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "usd": self.cost_usd, "system_fingerprint": self.system_fingerprint,
            "clock": {"latency": round(self.latency, 6)},
        }
