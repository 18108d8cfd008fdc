"""Prompts for the LLM operators and the reader of their replies (no network)."""

from __future__ import annotations

import secrets

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.llm.prompts import (
    PREFIX,
    PromptContext,
    ScoredProgram,
    crossover_messages,
    extract_expressions,
    grammar_block,
    parse_reply,
    problem_summary,
    rejection_kind,
    rewrite_messages,
    simplify_messages,
    system_message,
)
from hybrid_gp.llm.transcript import request_key
from hybrid_gp.operators.llm import LLM_OPERATORS, llm_crossover, llm_rewrite, llm_simplify


def scored(text: str, grammar: hg.Grammar, error: float = 0.5) -> ScoredProgram:
    p = hg.Program.parse(text, grammar=grammar)
    return ScoredProgram(p, error, p.complexity)


# ---------------------------------------------------------------------- reply format


def test_expression_lines_are_found_in_common_wrappings():
    text = "\n".join([
        "Here are my ideas:",
        "EXPR: x0 + x1",
        "1. EXPR: sin(x0)",
        "- **EXPR:** `x0 * x1`",
        "expr: y = x0 - x1",
        "  EXPR: f(x0, x1) = x0 / x1;",
        "not an expression line: x0",
        "```",
        "EXPR: cos(x1)",
        "```",
    ])
    assert extract_expressions(text) == ["x0 + x1", "sin(x0)", "x0 * x1", "x0 - x1",
                                         "x0 / x1", "cos(x1)"]


def test_comparisons_are_not_mistaken_for_assignments():
    assert extract_expressions("EXPR: x0 == x1") == ["x0 == x1"]


def test_each_rejection_kind_is_counted(koza):
    known = [hg.Program.parse("x0 * x1", grammar=koza)]
    reply = "\n".join(f"{PREFIX} {e}" for e in [
        "sin(x0) + x1",  # accepted
        "x1 + sin(x0)",  # accepted: a different tree (the functional hash is the engine's)
        "sin(x0) + x1",  # duplicate of an earlier line
        "x0 * x1",  # duplicate of a known program
        "x0 +",  # unparsable
        "lambda: 3",  # unparsable
        "foo(x0)",  # unknown function
        "x5 + x0",  # variable past n_features
        "x0 + 2.5",  # koza has no constants
        "+".join(["x0"] * 40),  # too large
    ])
    parsed = parse_reply(reply, koza, n_features=2, max_size=30, max_depth=8, known=known)
    assert [str(p) for p in parsed.programs] == ["sin(x0) + x1", "x1 + sin(x0)"]
    assert dict(parsed.rejections) == {"duplicate": 2, "unparsable": 2,
                                       "unknown_primitive": 3, "too_large": 1}
    assert parsed.n_candidates == 10
    assert {kind for _, kind, _ in parsed.rejected} == set(parsed.rejections)


def test_type_errors_are_their_own_kind():
    g = hg.load_grammar("boolean")
    parsed = parse_reply(f"{PREFIX} x0 and x1\n{PREFIX} x0 + x1\n{PREFIX} not x2", g,
                         n_features=3, max_size=20, max_depth=6)
    assert len(parsed.programs) == 2
    assert sum(parsed.rejections.values()) == 1


def typed_grammar() -> hg.Grammar:
    """Floats in and out, with a comparison that returns bool and a bool-taking if."""
    return hg.grammar.grammar_from_dict({
        "name": "typed", "output": "float", "variables": "float",
        "primitive": [
            {"name": "add", "op": "add"},
            {"name": "gt", "op": "gt", "args": ["float", "float"], "returns": "bool",
             "infix": "gt({0}, {1})"},
            {"name": "if", "op": "if", "args": ["bool", "float", "float"], "returns": "float",
             "infix": "{1} if {0} else {2}"},
        ],
    })


def test_type_error_reason_is_classified():
    g = typed_grammar()
    reply = f"{PREFIX} gt(x0, x1)\n{PREFIX} x0 if gt(x0, x1) else x1\n{PREFIX} x1 if x0 else x1"
    parsed = parse_reply(reply, g, n_features=2, max_size=20, max_depth=6)
    assert [str(p) for p in parsed.programs] == ["x0 if gt(x0, x1) else x1"]
    assert dict(parsed.rejections) == {"type_error": 2}


def test_depth_limit_counts_as_too_large(koza):
    deep = "sin(" * 9 + "x0" + ")" * 9
    parsed = parse_reply(f"{PREFIX} {deep}", koza, n_features=1, max_size=60, max_depth=8)
    assert dict(parsed.rejections) == {"too_large": 1}


def test_only_the_first_k_candidates_are_read(koza):
    reply = "\n".join(f"{PREFIX} x0 + x{j}" for j in range(5))
    parsed = parse_reply(reply, koza, n_features=5, max_size=20, max_depth=6, k=3)
    assert len(parsed.programs) == 3
    assert dict(parsed.rejections) == {"surplus": 2}


def test_a_reply_without_expression_lines_yields_nothing(koza):
    parsed = parse_reply("I think x0 + x1 is good.", koza, n_features=2, max_size=20,
                         max_depth=6)
    assert parsed.programs == [] and parsed.n_candidates == 0


def test_injected_code_is_rejected_and_never_runs(koza, tmp_path):
    marker = tmp_path / f"PWNED_{secrets.token_hex(6)}"
    attacks = [
        f"__import__('os').system('touch {marker}')",
        f"exec(\"open('{marker}', 'w')\")",
        f"eval(\"__import__('os').system('touch {marker}')\")",
        f"open('{marker}', 'w').write('x')",
        f"(lambda: __import__('os').system('touch {marker}'))()",
        f"[__import__('os').system('touch {marker}') for _ in 'a']",
        f"x0 + __import__('os').system('touch {marker}')",
        f"sin(x0) if __import__('os').system('touch {marker}') else x1",
    ]
    reply = "\n".join(f"{PREFIX} {a}" for a in attacks)
    parsed = parse_reply(reply, koza, n_features=2, max_size=60, max_depth=12, k=len(attacks))
    assert parsed.programs == []
    assert sum(parsed.rejections.values()) == len(attacks)
    assert not marker.exists()


@pytest.mark.parametrize("reason, kind", [
    ("invalid syntax (invalid syntax)", "unparsable"),
    ("attribute access 'os.system' is not allowed", "unparsable"),
    ("Lambda ('lambda: 3') is not allowed in a program", "unparsable"),
    ("unknown function 'foo' with 1 argument(s); grammar 'koza' has: ...", "unknown_primitive"),
    ("unknown name 'y'; variables are x0, x1, ...", "unknown_primitive"),
    ("'x0 ^ 2' uses an operation grammar 'koza' does not have; it has: ...",
     "unknown_primitive"),
    ("constant 2.5: grammar 'koza' has no constants; write ...", "unknown_primitive"),
    ("gt returns 'bool' where 'float' is expected", "type_error"),
    ("text is 30000 characters; at most 20000 are accepted", "too_large"),
    ("expression is nested too deeply", "too_large"),
])
def test_parse_error_reasons_map_to_kinds(reason, kind):
    assert rejection_kind(reason) == kind


def test_printed_programs_come_back_through_the_reply_format(full, rng):
    programs = hg.random_programs(full, 40, n_features=3, seed=int(rng.integers(2**31)),
                                  min_depth=1, max_depth=5)
    unique = list(dict.fromkeys(programs))
    reply = "\n".join(f"{PREFIX} {p}" for p in unique)
    parsed = parse_reply(reply, full, n_features=3, max_size=200, max_depth=20)
    assert parsed.programs == unique
    assert sum(parsed.rejections.values()) == 0


# ---------------------------------------------------------------------- prompts


def test_the_grammar_block_lists_every_operation_in_its_infix_form(full):
    block = grammar_block(full, n_features=3, max_size=40, max_depth=9)
    for form in ["a + b", "a / b", "sin(a)", "square(a)", "neg(a)", "a ** b"]:
        assert f"\n  {form}" in block
    assert "Variables: x0, x1, x2" in block
    assert "constants are allowed" in block
    assert "at most 40 nodes" in block and "depth at most 9" in block
    assert "log(|a|)" in block  # protected semantics are explained


def test_grammars_without_constants_say_so(koza):
    assert "No numeric constants" in grammar_block(koza, 1, 20, 6)


def test_typed_grammars_show_signatures():
    block = grammar_block(typed_grammar(), 2, 20, 6)
    assert "b if a else c    (bool, float, float -> float)" in block
    assert "Variables: x0, x1 (type float)" in block
    assert "not a" in grammar_block(hg.load_grammar("boolean"), 3, 20, 6)


def test_the_system_message_states_the_reply_format(koza):
    text = system_message(koza)
    assert PREFIX in text and "never run as code" in text
    example = text.split(f"`{PREFIX} ")[1].split("`")[0]
    assert hg.Program.parse(example, grammar=koza)  # the example itself is valid


def test_rewrite_prompt_holds_parent_error_elites_and_failures(full):
    ctx = PromptContext(
        grammar=full, n_features=2, metric="mse", k=3,
        description=problem_summary(2, 20, "mse", [(-1.0, 1.0), (0.0, 2.0)]),
        elites=(scored("x0 * x1", full, 0.0123),),
        failures=(("x0 ^ 2", "unknown_primitive: no ^"),))
    system, user = rewrite_messages(scored("sin(x0) + 2.5", full, 0.25), ctx)
    assert system["role"] == "system" and user["role"] == "user"
    text = user["content"]
    assert "sin(x0) + 2.5" in text and "mse 0.25" in text and "complexity 4" in text
    assert "0.0123 | 3 | x0 * x1" in text
    assert "x0 ^ 2" in text and "no ^" in text
    assert "x0 in [-1, 1]" in text
    assert "exactly 3 lines" in text


def test_crossover_and_simplify_prompts_name_their_task(koza):
    ctx = PromptContext(grammar=koza, n_features=2)
    a, b = scored("sin(x0)", koza), scored("x0 * x1", koza)
    cross = crossover_messages(a, b, ctx)[1]["content"]
    assert "A: sin(x0)" in cross and "B: x0 * x1" in cross and "combine" in cross
    simple = simplify_messages(a, ctx)[1]["content"]
    assert "fewer nodes" in simple


def test_problem_summary_does_not_need_the_formula():
    text = problem_summary(1, 20, "mse")
    assert text == "find y = f(x0) from 20 samples, scored by mse."


def test_infinite_errors_print_as_inf(koza):
    ctx = PromptContext(grammar=koza, n_features=1)
    text = rewrite_messages(scored("x0", koza, float("inf")), ctx)[1]["content"]
    assert "error inf" in text


# ---------------------------------------------------------------------- request builders


def test_requests_are_pure_functions_of_parents_and_context(full):
    ctx = PromptContext(grammar=full, n_features=2, elites=(scored("x0 * x1", full),))
    parent = scored("sin(x0) + 1.5", full)
    r1 = llm_rewrite(parent, ctx, parent_id=7)
    r2 = llm_rewrite(parent, ctx, parent_id=7)
    key = request_key("m", r1.message_dicts(), {"temperature": 0.7})
    assert key == request_key("m", r2.message_dicts(), {"temperature": 0.7})
    assert r1.operator == "llm_rewrite" and r1.parent_ids == (7,)
    assert set(r1.known) == {parent.program, ctx.elites[0].program}


def test_every_operator_builds_its_request(koza):
    ctx = PromptContext(grammar=koza, n_features=2)
    a, b = scored("sin(x0)", koza), scored("x0 * x1", koza)
    cross = llm_crossover(a, b, ctx, parent_ids=(1, 2))
    assert cross.parent_ids == (1, 2) and set(cross.known) == {a.program, b.program}
    assert llm_simplify(a, ctx, parent_id=3).operator == "llm_simplify"
    for name, op in LLM_OPERATORS.items():
        req = op.request((a, b), (4, 5), ctx)
        assert req.operator == name
        assert req.parent_ids == (4, 5)[: op.n_parents]
    with pytest.raises(ValueError, match="2 parent"):
        LLM_OPERATORS["llm_crossover"].request((a,), (1,), ctx)


def test_prompt_numbers_are_stable_text(koza):
    # the transcript key hashes the prompt: numbers must print the same everywhere
    ctx = PromptContext(grammar=koza, n_features=1)
    text = rewrite_messages(scored("x0", koza, float(np.float64(1) / 3)), ctx)[1]["content"]
    assert "error 0.333333" in text
