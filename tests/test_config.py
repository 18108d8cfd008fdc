"""--set assignments (config.apply_overrides): applied together, so their order does
not matter, with errors that name the path; settings objects accept dicts."""

from __future__ import annotations

import pytest

import hybrid_gp as hg
from hybrid_gp.api import make_config
from hybrid_gp.config import OperatorRates, apply_overrides
from hybrid_gp.errors import ConfigError
from hybrid_gp.llm.config import LLMConfig

PRICES = 'llm.prices={"m": [0.15, 0.6]}'


def _with_llm():
    return make_config("nguyen-1").clone(override={"llm": LLMConfig(model="m")})


@pytest.mark.parametrize("order", [["llm.max_usd=2.0", PRICES], [PRICES, "llm.max_usd=2.0"]])
def test_settings_that_need_each_other_work_in_either_order(order):
    config = apply_overrides(_with_llm(), order)
    assert config.llm.max_usd == 2.0 and list(config.llm.prices["m"]) == [0.15, 0.6]


def test_a_flag_value_is_checked_together_with_the_set_that_allows_it():
    config = apply_overrides(_with_llm(), ["llm.max_share=0.8"], {"llm.rate": 0.7})
    assert (config.llm.rate, config.llm.max_share) == (0.7, 0.8)
    with pytest.raises(ConfigError, match=r"llm.rate \(0.7\) must lie between"):
        apply_overrides(_with_llm(), [], {"llm.rate": 0.7})


@pytest.mark.parametrize(("assignment", "message"), [
    ("search.population_size=abc", "--set search.population_size: Expect <class 'int'>"),
    ("search.operators.crossover=-1", "--set search.operators.crossover: Value -1.0 is out"),
    ('search.operators={"crossovr": 1}', "--set search.operators: unknown field 'crossovr'"),
    ('search.operators={"hoist": -1}', "--set search.operators.hoist: Value -1"),
    ("llm.max_usd=2", "--set llm.max_usd: llm is not set (--llm-model MODEL sets it)"),
])
def test_a_bad_assignment_names_its_path(assignment, message):
    with pytest.raises(ConfigError) as error:
        apply_overrides(make_config("nguyen-1"), [assignment])
    assert str(error.value).startswith(message)
    assert "(path=" not in str(error.value)


def test_operators_as_a_dict_keep_the_weights_they_do_not_name():
    config = apply_overrides(make_config("nguyen-1"), ['search.operators={"point": 1}'])
    assert config.search.operators == OperatorRates(point=1.0)


def test_hg_run_takes_operators_as_a_dict():
    res = hg.run("nguyen-1", max_evaluations=300, population_size=30,
                 operators={"crossover": 1.0, "subtree": 0.0})
    assert res.config.search.operators == OperatorRates(crossover=1.0, subtree=0.0)
    with pytest.raises(ConfigError, match="operators: unknown field 'x'; expected some of"):
        hg.run("nguyen-1", max_evaluations=300, operators={"x": 1.0})
