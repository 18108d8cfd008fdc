"""LLM operators' machinery: config, client, transcripts, prompts, and the broker that
runs requests in the background while the engine breeds.

LLM text only ever enters a run through `Program.parse` (an `ast` whitelist); it is
never executed. See docs/llm.md.
"""

from .broker import Broker
from .budget import Budget, Usage
from .client import FAULT_KINDS, LLMClient, Outcome, Reply
from .config import LLMConfig, LLMOperatorRates
from .prompts import (
    REJECTION_KINDS,
    ParsedReply,
    PromptContext,
    ScoredProgram,
    parse_reply,
    problem_summary,
)
from .request import LLMRequest, LLMResult
from .transcript import Transcript, TranscriptError, TranscriptMiss, request_key

__all__ = [
    "FAULT_KINDS", "REJECTION_KINDS", "Broker", "Budget", "LLMClient", "LLMConfig",
    "LLMOperatorRates", "LLMRequest", "LLMResult", "Outcome", "ParsedReply", "PromptContext",
    "Reply", "ScoredProgram", "Transcript", "TranscriptError", "TranscriptMiss", "Usage",
    "parse_reply", "problem_summary", "request_key",
]
