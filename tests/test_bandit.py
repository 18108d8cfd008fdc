"""Thompson sampling over operators (operators/bandit.py): shares are a distribution
with a floor and a clamped LLM total, and credit moves the expected share (checked on
the mean over many seeded draws, not on one draw)."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from hybrid_gp.operators.bandit import FLOOR, Bandit

ARMS = st.lists(st.tuples(st.integers(0, 500), st.floats(0, 1), st.floats(0.5, 20),
                          st.booleans()), min_size=1, max_size=8)


def bandit_of(arms) -> Bandit:
    b = Bandit()
    for k, (trials, rate, cost, is_llm) in enumerate(arms):
        name = f"{'llm' if is_llm else 'op'}{k}"
        b.add_arm(name, is_llm=is_llm)
        b.credit(name, trials, round(trials * rate), trials * cost)
    return b


@settings(max_examples=150, deadline=None)
@given(ARMS, st.floats(0, 0.5), st.floats(0.5, 1.0), st.integers(0, 2**32 - 1))
def test_shares_sum_to_one_and_the_llm_total_is_clamped(arms, lo, hi, seed):
    b = bandit_of(arms)
    shares = b.shares(np.random.default_rng(seed), lo, hi)
    assert set(shares) == set(b.arms)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-12)
    assert all(v > 0 for v in shares.values())
    llm = sum(v for k, v in shares.items() if k in b.llm)
    if b.llm and set(b.arms) - b.llm:
        assert lo - 1e-12 <= llm <= hi + 1e-12


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 500), st.floats(0, 1), st.floats(0.5, 20),
                          st.just(False)), min_size=1, max_size=8),
       st.integers(0, 2**32 - 1))
def test_every_classic_arm_gets_at_least_a_floor_share_but_for_renormalising(arms, seed):
    """Without LLM arms, the floor holds up to the renormalisation after it: no share is
    below FLOOR / (1 + n * FLOOR)."""
    b = bandit_of(arms)
    shares = b.shares(np.random.default_rng(seed))
    n = len(shares)
    assert min(shares.values()) >= FLOOR / (1 + n * FLOOR) - 1e-15


def test_no_arm_gets_less_than_the_floor(rng):
    b = Bandit()
    b.credit("good", 1000, 1000, 1000)
    b.credit("bad", 1000, 0, 1000)
    b.credit("worse", 1000, 0, 1000)
    shares = b.shares(rng)
    assert min(shares.values()) >= FLOOR


def test_an_arm_that_keeps_succeeding_gets_a_larger_expected_share(rng):
    b = Bandit()
    for name in ("good", "bad", "new"):
        b.add_arm(name)
    b.credit("good", 200, 150, 200)
    b.credit("bad", 200, 5, 200)
    draws = [b.shares(rng) for _ in range(2000)]
    mean = {k: np.mean([d[k] for d in draws]) for k in b.arms}
    assert mean["good"] > mean["new"] > mean["bad"]  # the untried arm sits in between
    assert mean["good"] > 0.5


def test_a_costlier_arm_with_the_same_success_gets_less(rng):
    b = Bandit()
    b.credit("cheap", 100, 50, 100)
    b.credit("dear", 100, 50, 400)  # four cost units per child
    draws = [b.shares(rng) for _ in range(1000)]
    assert np.mean([d["cheap"] for d in draws]) > 2 * np.mean([d["dear"] for d in draws])


def test_credit_moves_the_expected_share_over_time(rng):
    b = Bandit()
    b.add_arm("a")
    b.add_arm("b")
    before = np.mean([b.shares(rng)["a"] for _ in range(1000)])
    assert before == pytest.approx(0.5, abs=0.03)
    for _ in range(20):
        b.credit("a", 10, 6, 10)
        b.credit("b", 10, 1, 10)
    after = np.mean([b.shares(rng)["a"] for _ in range(1000)])
    assert after > before + 0.2


def test_the_llm_share_is_raised_to_its_minimum_and_capped_at_its_maximum(rng):
    b = Bandit()
    b.add_arm("crossover")
    b.add_arm("llm_rewrite", is_llm=True)
    b.credit("crossover", 500, 400, 500)
    b.credit("llm_rewrite", 500, 0, 500 * 5)  # failing and expensive
    low = [b.shares(rng, 0.2, 0.6)["llm_rewrite"] for _ in range(200)]
    assert min(low) == pytest.approx(0.2)
    b.credit("llm_rewrite", 5000, 5000, 5000)
    high = [b.shares(rng, 0.0, 0.3)["llm_rewrite"] for _ in range(200)]
    assert max(high) == pytest.approx(0.3)


def test_the_same_seed_gives_the_same_shares():
    b = bandit_of([(10, 0.5, 1.0, False), (20, 0.1, 2.0, False), (5, 0.9, 3.0, True)])
    a = [b.shares(np.random.default_rng(3), 0.1, 0.5) for _ in range(3)]
    assert a[0] == a[1] == a[2]


def test_an_untried_arm_costs_one_unit_per_child():
    b = Bandit()
    b.add_arm("x")
    assert b.arms["x"].cost_per_child == 1.0
    b.credit("x", 4, 1, 10)
    assert b.arms["x"].cost_per_child == 2.5
