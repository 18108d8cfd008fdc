"""LLM operators: build the request that asks a model for children of some parents.

They are the LLM counterparts of the classic operators, with one difference: the child
does not exist yet when the operator returns. The engine hands the `LLMRequest` to a
`hybrid_gp.llm.Broker`, keeps breeding classically, and receives the parsed programs
later through `Broker.collect`. These functions are pure: the same parents and context
give the same request (and the same transcript key).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..llm.prompts import (
    PromptContext,
    ScoredProgram,
    crossover_messages,
    rewrite_messages,
    simplify_messages,
)
from ..llm.request import LLMRequest

if TYPE_CHECKING:
    from ..program import Program


def llm_rewrite(parent: ScoredProgram, ctx: PromptContext, *, parent_id: int) -> LLMRequest:
    """Ask for `ctx.k` improved versions of one parent."""
    return LLMRequest(
        operator="llm_rewrite", parent_ids=(parent_id,),
        messages=tuple(rewrite_messages(parent, ctx)),
        known=_known(ctx, parent), gist=str(parent.program))


def llm_crossover(a: ScoredProgram, b: ScoredProgram, ctx: PromptContext, *,
                  parent_ids: tuple[int, int]) -> LLMRequest:
    """Ask for `ctx.k` programs combining two parents."""
    return LLMRequest(
        operator="llm_crossover", parent_ids=tuple(parent_ids),
        messages=tuple(crossover_messages(a, b, ctx)),
        known=_known(ctx, a, b), gist=f"{a.program} | {b.program}")


def llm_simplify(parent: ScoredProgram, ctx: PromptContext, *, parent_id: int) -> LLMRequest:
    """Ask for `ctx.k` shorter forms of one parent."""
    return LLMRequest(
        operator="llm_simplify", parent_ids=(parent_id,),
        messages=tuple(simplify_messages(parent, ctx)),
        known=_known(ctx, parent), gist=str(parent.program))


def _known(ctx: PromptContext, *parents: ScoredProgram) -> tuple[Program, ...]:
    """Programs the prompt shows: a reply repeating one is a duplicate."""
    return tuple(dict.fromkeys([p.program for p in parents]
                               + [e.program for e in ctx.elites]))


@dataclass(frozen=True)
class LLMOperator:
    """A named LLM operator: how many parents it takes and how it builds its request."""

    name: str
    n_parents: int
    build: Callable[..., LLMRequest]

    def request(self, parents: tuple[ScoredProgram, ...], parent_ids: tuple[int, ...],
                ctx: PromptContext) -> LLMRequest:
        """The request for these parents (the first `n_parents` are used)."""
        if len(parents) < self.n_parents or len(parent_ids) < self.n_parents:
            raise ValueError(f"{self.name} needs {self.n_parents} parent(s)")
        if self.n_parents == 2:
            return self.build(parents[0], parents[1], ctx,
                              parent_ids=(parent_ids[0], parent_ids[1]))
        return self.build(parents[0], ctx, parent_id=parent_ids[0])


LLM_OPERATORS: dict[str, LLMOperator] = {
    op.name: op
    for op in [
        LLMOperator("llm_rewrite", 1, llm_rewrite),
        LLMOperator("llm_crossover", 2, llm_crossover),
        LLMOperator("llm_simplify", 1, llm_simplify),
    ]
}
