"""Boolean problems: truth tables, bit packing, and the packed-bit kernel against its
numpy twin and against the float interpreter."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.compiler import compile_batch
from hybrid_gp.errors import ProblemError
from hybrid_gp.grammar import grammar_from_dict
from hybrid_gp.kernels import boolean as kern
from hybrid_gp.kernels import opcodes as oc
from hybrid_gp.kernels.reference_boolean import count_bits, misses_reference
from hybrid_gp.problem_kinds.boolean import (
    PackedCases,
    all_cases,
    even_parity,
    multiplexer,
    pack_bits,
    packed_misses,
)
from hybrid_gp.program import with_constants

BOOLEAN_PROBLEMS = ["mux-6", "mux-11", "parity-3", "parity-4", "parity-5"]


def _xor_grammar() -> hg.Grammar:
    """Every logical op plus bool constants, so the kernel sees all its branches."""
    def prim(name: str, arity: int) -> dict:
        return {"name": name, "op": name, "args": ["bool"] * arity, "returns": "bool"}

    return grammar_from_dict({
        "name": "all-logic", "output": "bool", "variables": "bool",
        "constants": {"enabled": True, "type": "bool", "low": 0.0, "high": 1.0,
                      "probability": 0.2},
        "primitive": [prim("and", 2), prim("or", 2), prim("not", 1), prim("nand", 2),
                      prim("nor", 2), prim("xor", 2), prim("if", 3)],
    })


def _twin_misses(batch, cases: PackedCases) -> list[int]:
    out = []
    for i in range(batch.n_programs):
        codes = batch.codes[batch.code_offsets[i]:batch.code_offsets[i + 1]]
        consts = batch.consts[batch.const_offsets[i]:batch.const_offsets[i + 1]]
        out.append(misses_reference(codes, consts, oc.ARITY, cases.words, cases.target,
                                    cases.n_rows))
    return out


def test_all_cases_puts_bit_k_of_the_case_index_in_input_k():
    X = all_cases(3)
    assert X.shape == (8, 3)
    assert X[5].tolist() == [1.0, 0.0, 1.0]  # 5 = 0b101
    assert X[6].tolist() == [0.0, 1.0, 1.0]


def test_multiplexer_reads_the_data_input_the_address_names():
    X = all_cases(6)
    y = multiplexer(X, 2)
    for row, out in zip(X.astype(int), y, strict=True):
        address = row[0] + 2 * row[1]
        assert out == row[2 + address]


def test_even_parity_is_one_for_an_even_number_of_ones():
    X = all_cases(4)
    assert even_parity(X).tolist() == [float(bin(c).count("1") % 2 == 0) for c in range(16)]


def test_pack_bits_puts_case_c_in_word_c_div_64_bit_c_mod_64(rng):
    bits = rng.random(150) < 0.5
    words = pack_bits(bits)
    assert words.dtype == np.uint64 and words.shape == (3,)
    for c in range(150):
        assert bool((int(words[c // 64]) >> (c % 64)) & 1) == bits[c]
    assert count_bits(words, 150) == int(bits.sum())


def test_popcount_counts_set_bits(rng):
    for x in [*rng.integers(0, 2**63, size=50, dtype=np.uint64).tolist(), 0, 2**64 - 1]:
        assert int(kern.popcount(np.uint64(x))) == bin(x).count("1")


@pytest.mark.parametrize("name", BOOLEAN_PROBLEMS)
def test_packed_kernel_matches_numpy_twin_and_float_interpreter(name, rng):
    problem = hg.get_problem(name)
    programs = hg.random_programs(problem.grammar, 120, problem.n_features, seed=rng,
                                  min_depth=1, max_depth=7)
    batch = compile_batch(programs)
    misses = problem.error(batch)
    assert misses.tolist() == _twin_misses(batch, problem.train)
    outputs = hg.evaluate(programs, problem.train.X)
    by_float = ((outputs != 0) != (problem.train.y != 0)).sum(axis=1)
    assert misses.tolist() == by_float.tolist()


def test_every_logical_op_and_constants_match_the_twin(rng):
    g = _xor_grammar()
    X = all_cases(7)
    cases = PackedCases.from_truth_table(X, multiplexer(all_cases(6), 2).tolist() * 2)
    programs = hg.random_programs(g, 150, 7, seed=rng, min_depth=1, max_depth=6)
    # Some constants exactly 0 (false) and some NaN (non-zero, so true).
    programs = [with_constants(p, [[0.0, np.nan, 0.7][k % 3] for k in range(len(p.consts))])
                for p in programs]
    batch = compile_batch(programs)
    misses = packed_misses(batch, cases)
    assert misses.tolist() == _twin_misses(batch, cases)
    outputs = hg.evaluate(programs, X)
    assert misses.tolist() == ((outputs != 0) != (cases.y != 0)).sum(axis=1).tolist()


def test_parallel_kernel_equals_serial(rng):
    problem = hg.get_problem("mux-11")
    programs = hg.random_programs(problem.grammar, 64, 11, seed=rng, max_depth=6)
    batch = compile_batch(programs)
    assert problem.error(batch, n_jobs=2).tolist() == problem.error(batch, n_jobs=1).tolist()


def test_known_solutions_score_zero_misses():
    mux = hg.get_problem("mux-6")
    solution = hg.Program.parse(
        "(x2 if not x1 else x4) if not x0 else (x3 if not x1 else x5)", mux.grammar)
    assert mux.error(compile_batch([solution])).tolist() == [0.0]
    assert mux.hits(compile_batch([solution])).tolist() == [64.0]
    parity = hg.get_problem("parity-3")
    xor01 = "nor(x0 and x1, nor(x0, x1))"
    even = f"(({xor01}) and x2) or nor({xor01}, x2)"  # xnor(xor(x0, x1), x2)
    assert parity.error(compile_batch([hg.Program.parse(even, parity.grammar)])).tolist() \
        == [0.0]


def test_bits_past_the_last_case_are_not_counted():
    problem = hg.get_problem("parity-3")  # 8 cases in a 64-bit word
    always_true = hg.Program.parse("x0 or nor(x0, x0)", problem.grammar)
    assert problem.error(compile_batch([always_true])).tolist() == [4.0]


def test_hits_and_misses_add_up_to_the_cases(rng):
    problem = hg.get_problem("parity-5")
    batch = compile_batch(hg.random_programs(problem.grammar, 30, 5, seed=rng))
    assert np.all(problem.hits(batch) + problem.error(batch) == 32)


def test_non_logical_programs_are_refused():
    problem = hg.get_problem("mux-6")
    with pytest.raises(ProblemError, match=r"logical operations only.*add"):
        problem.error(compile_batch([hg.Program.parse("x0 + x1", "full")]))


def test_suite_uses_kozas_function_sets_without_xor():
    for name in BOOLEAN_PROBLEMS:
        ops = {p.op for p in hg.get_problem(name).grammar.primitives}
        assert "xor" not in ops
    assert {p.op for p in hg.get_problem("mux-6").grammar.primitives} == {"and", "or", "not",
                                                                         "if"}
    assert {p.op for p in hg.get_problem("parity-4").grammar.primitives} == {"and", "or",
                                                                            "nand", "nor"}


def test_case_counts_and_exhaustive_inputs():
    expected = {"mux-6": 64, "mux-11": 2048, "parity-3": 8, "parity-4": 16, "parity-5": 32}
    for name, n in expected.items():
        problem = hg.get_problem(name)
        assert problem.n_cases == n
        assert problem.exhaustive_inputs().shape == (n, problem.n_features)
