"""Prompts for the LLM operators, and the reader of their replies.

Reply format (fixed, stated in every prompt): each proposed expression on its own line,
starting with ``EXPR:``; any other line is ignored, so a model may think aloud around
them. An expression is infix text in the grammar's own forms, for example
``EXPR: sin(x0) * x1 + 2.5``.

`parse_reply` reads the ``EXPR:`` lines through `Program.parse` (an `ast` whitelist:
nothing is executed) and sorts every candidate into accepted or one rejection kind:
unparsable, unknown_primitive, type_error, too_large, duplicate (or surplus, past the
k asked for).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..errors import ParseError, UserError
from ..grammar import Grammar, Primitive
from ..program import Program

PREFIX = "EXPR:"
REJECTION_KINDS = ("unparsable", "unknown_primitive", "type_error", "too_large", "duplicate",
                   "surplus")

# What the protected operations compute where plain mathematics would fail
# (docs/semantics.md); a model that knows it proposes fewer useless guards.
_PROTECTED = {
    "div": "{0} / {1} is 1 where |{1}| <= 1e-10",
    "inv": "1 / {0} is 1 where |{0}| <= 1e-10",
    "log": "log({0}) is log(|{0}|), and 0 where |{0}| <= 1e-10",
    "sqrt": "sqrt({0}) is sqrt(|{0}|)",
    "pow": "{0} ** {1} is |{0}| ** {1}",
}
_LETTERS = "abcdefgh"
_EXPR_LINE = re.compile(r"^\s*(?:[-*•>]|\d{1,3}[.)])?\s*\**\s*EXPR\s*\**\s*:\s*(.*)$",
                        re.IGNORECASE)
_LHS = re.compile(r"^\s*[A-Za-z_]\w*\s*(?:\([^()=]*\))?\s*=(?!=)")


@dataclass(frozen=True)
class ScoredProgram:
    """A program as a prompt shows it: with its error and complexity."""

    program: Program
    error: float
    complexity: float


@dataclass(frozen=True)
class PromptContext:
    """What every LLM prompt of a run tells the model besides the parents."""

    grammar: Grammar
    n_features: int
    description: str = ""
    metric: str = "error"
    max_size: int = 60
    max_depth: int = 12
    k: int = 4
    elites: tuple[ScoredProgram, ...] = ()
    failures: tuple[tuple[str, str], ...] = ()  # (proposed text, why it was rejected)


@dataclass
class ParsedReply:
    """The accepted programs of a reply and why the others were rejected."""

    programs: list[Program] = field(default_factory=list)
    rejections: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[str, str, str]] = field(default_factory=list)  # (text, kind, reason)
    n_candidates: int = 0  # EXPR lines found (surplus included)


# ---------------------------------------------------------------------- prompts


def system_message(grammar: Grammar) -> str:
    """The instructions common to every request."""
    kind = "Boolean" if grammar.output_type == "bool" else "mathematical"
    return (
        f"You propose {kind} expressions for symbolic regression: formulas that map "
        "the input variables to the target.\n"
        "Your expressions are read by a strict parser and never run as code. Use only "
        "the variables and the operations listed by the user, written exactly in the "
        "listed forms; anything else is rejected.\n"
        f"Reply format: put each expression on its own line starting with `{PREFIX}` "
        f"followed by the expression and nothing else, for example `{PREFIX} "
        f"{_example(grammar)}`. Lines without `{PREFIX}` are ignored."
    )


def grammar_block(grammar: Grammar, n_features: int, max_size: int, max_depth: int) -> str:
    """Variables, operations (in their infix forms), constants and size limits."""
    typed = len(grammar.types) > 1
    names = ", ".join(f"x{j}" for j in range(n_features))
    lines = [f"Variables: {names}" + (f" (type {grammar.variable_type})" if typed else "")]
    lines.append("Operations (a, b, c stand for any sub-expression):")
    for p in grammar.primitives:
        lines.append(f"  {_form(p)}" + (f"    ({', '.join(p.arg_types)} -> {p.ret_type})"
                                        if typed else ""))
    notes = [_PROTECTED[p.op].format(*_LETTERS[:p.arity]) for p in grammar.primitives
             if p.op in _PROTECTED]
    if notes:
        lines.append("Protected operations: " + "; ".join(notes) + ".")
    c = grammar.constants
    if c.enabled:
        lines.append(f"Numeric constants are allowed (such as 2.5 or -0.75; typically "
                     f"between {c.low:g} and {c.high:g}).")
    else:
        hint = " (for example x0 / x0 is 1)" if grammar.has_op("div") else ""
        lines.append(f"No numeric constants: build every value from the variables and the "
                     f"operations{hint}.")
    lines.append(f"Limits: at most {max_size} nodes (each operation, variable and constant "
                 f"is one node) and nesting depth at most {max_depth}.")
    return "\n".join(lines)


def rewrite_messages(parent: ScoredProgram, ctx: PromptContext) -> list[dict[str, str]]:
    """Improve one program."""
    task = (f"Program to improve:\n  {_scored(parent, ctx.metric)}\n\n"
            f"Propose {ctx.k} different rewrites of this program that could have a lower "
            f"{ctx.metric}: change a subexpression, add a missing term, or replace a "
            f"part by a better form. At equal {ctx.metric}, simpler is better.")
    return _messages(ctx, task)


def crossover_messages(a: ScoredProgram, b: ScoredProgram,
                       ctx: PromptContext) -> list[dict[str, str]]:
    """Combine two programs."""
    task = (f"Two programs to combine:\n  A: {_scored(a, ctx.metric)}\n"
            f"  B: {_scored(b, ctx.metric)}\n\n"
            f"Propose {ctx.k} different programs that combine the useful parts of A and B "
            f"and could have a lower {ctx.metric} than both.")
    return _messages(ctx, task)


def simplify_messages(parent: ScoredProgram, ctx: PromptContext) -> list[dict[str, str]]:
    """Shorter forms of one program."""
    task = (f"Program to simplify:\n  {_scored(parent, ctx.metric)}\n\n"
            f"Propose {ctx.k} different expressions with fewer nodes that compute the same "
            f"function, or nearly the same (drop terms that matter little, merge "
            f"constants, cancel inverse operations).")
    return _messages(ctx, task)


def _messages(ctx: PromptContext, task: str) -> list[dict[str, str]]:
    parts = []
    if ctx.description:
        parts.append(f"Problem: {ctx.description.strip()}")
    parts.append(grammar_block(ctx.grammar, ctx.n_features, ctx.max_size, ctx.max_depth))
    if ctx.elites:
        parts.append(f"Best programs so far ({ctx.metric} | complexity | expression):\n"
                     + "\n".join(f"  {_scored(e, ctx.metric, bare=True)}" for e in ctx.elites))
    if ctx.failures:
        parts.append("Recent proposals that were rejected (do not repeat them):\n"
                     + "\n".join(f"  {_one_line(t, 120)}  -- {_one_line(why, 100)}"
                                 for t, why in ctx.failures))
    parts.append(task)
    parts.append(f"Answer with exactly {ctx.k} lines that start with `{PREFIX}`.")
    return [{"role": "system", "content": system_message(ctx.grammar)},
            {"role": "user", "content": "\n\n".join(parts)}]


def _form(p: Primitive) -> str:
    return p.infix.format(*_LETTERS[:p.arity]) if p.arity else p.name


def _example(grammar: Grammar) -> str:
    """A short valid expression of this grammar, for the format line."""
    from ..syntax import to_text

    leaf = -2  # x0
    for i, p in enumerate(grammar.primitives):
        if p.ret_type == grammar.output_type and all(
                t == grammar.variable_type for t in p.arg_types):
            program = Program(grammar, [i, *([leaf] * p.arity)])
            return to_text(program)
    return "x0"


def _scored(s: ScoredProgram, metric: str, bare: bool = False) -> str:
    error = _number(s.error)
    complexity = _number(s.complexity)
    if bare:
        return f"{error} | {complexity} | {s.program}"
    return f"{s.program}    ({metric} {error}, complexity {complexity})"


def _number(x: float) -> str:
    if not math.isfinite(x):
        return "inf" if x > 0 else ("-inf" if x < 0 else "nan")
    return f"{x:.0f}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:.6g}"


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def problem_summary(n_features: int, n_rows: int, metric: str,
                    domain: Sequence[tuple[float, float]] = ()) -> str:
    """A description of a regression task that does not reveal its formula."""
    ranges = ""
    if domain:
        ranges = "; inputs in " + ", ".join(f"x{j} in [{lo:g}, {hi:g}]"
                                            for j, (lo, hi) in enumerate(domain))
    return (f"find y = f({', '.join(f'x{j}' for j in range(n_features))}) from {n_rows} "
            f"samples, scored by {metric}{ranges}.")


# ---------------------------------------------------------------------- replies


def extract_expressions(text: str) -> list[str]:
    """The expression texts of the reply's `EXPR:` lines, in order."""
    found = []
    for line in text.splitlines():
        m = _EXPR_LINE.match(line)
        if m is None:
            continue
        expr = m.group(1).strip(" \t`*").rstrip(";,").strip(" \t`*")
        lhs = _LHS.match(expr)
        if lhs is not None:  # "y = ...", "f(x0) = ..."
            expr = expr[lhs.end():].strip()
        found.append(expr)
    return found


def parse_reply(text: str, grammar: Grammar, n_features: int, max_size: int, max_depth: int,
                *, k: int | None = None, known: Iterable[Program] = ()) -> ParsedReply:
    """Parse a reply's expressions into Programs of `grammar`.

    Each candidate is parsed (never executed), checked to use only x0..x{n_features-1},
    checked against the size and depth limits, and compared with the earlier
    candidates and `known` programs (the parents and elites shown in the prompt): the
    same tree is a duplicate. Only the first `k` candidates are read; later ones count
    as surplus.
    """
    out = ParsedReply()
    seen = set(known)
    candidates = extract_expressions(text)
    out.n_candidates = len(candidates)
    for index, expr in enumerate(candidates):
        if k is not None and index >= k:
            out.rejections["surplus"] += 1
            continue
        program, kind, reason = check_candidate(expr, grammar, n_features, max_size, max_depth)
        if program is not None and program in seen:
            kind, reason = "duplicate", "the same program as a parent, elite or earlier line"
        if kind is not None:
            out.rejections[kind] += 1
            out.rejected.append((expr, kind, reason))
            continue
        assert program is not None
        seen.add(program)
        out.programs.append(program)
    return out


def check_candidate(expr: str, grammar: Grammar, n_features: int, max_size: int,
                    max_depth: int) -> tuple[Program | None, str | None, str]:
    """(program, None, "") when `expr` is acceptable, else (None, kind, reason)."""
    try:
        program = Program.parse(expr, grammar=grammar)
    except ParseError as exc:
        return None, rejection_kind(exc.reason), exc.reason
    except UserError as exc:  # a tree the grammar's type rules refuse
        return None, "type_error", str(exc)
    if program.n_features_used > n_features:
        return None, "unknown_primitive", (f"variable x{program.n_features_used - 1}: the "
                                           f"problem has x0..x{n_features - 1}")
    if program.size > max_size or program.depth > max_depth:
        return None, "too_large", (f"size {program.size}, depth {program.depth}; limits "
                                   f"{max_size} and {max_depth}")
    return program, None, ""


def rejection_kind(reason: str) -> str:
    """The rejection kind of a ParseError reason (syntax.py's messages)."""
    if "is expected" in reason:
        return "type_error"
    if ("unknown function" in reason or "unknown name" in reason or "does not have" in reason
            or "has no constants" in reason):
        return "unknown_primitive"
    if "characters; at most" in reason or "nested too deeply" in reason:
        return "too_large"
    return "unparsable"


def rejected_lines(parsed: ParsedReply) -> Sequence[tuple[str, str]]:
    """(text, "kind: reason") of the rejected candidates, for later prompts."""
    return [(t, f"{kind}: {reason}") for t, kind, reason in parsed.rejected]
