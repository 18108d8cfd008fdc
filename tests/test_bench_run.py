"""`hybrid-gp bench run` (hybrid_gp/bench/run.py) at its smallest: one round, one row
count, one thread count, both contenders (pyoperon is in the dev environment)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.bench import run as bench_run


def test_bench_run_reports_both_contenders(capsys):
    pytest.importorskip("pyoperon")
    code = bench_run.main(["--rows", "20", "--threads", "1", "--rounds", "1",
                           "--evaluations", "2000", "--population", "50"])
    assert code == 0
    out = capsys.readouterr().out
    assert "population 50" in out and "2,000 evaluations" in out
    lines = [line for line in out.splitlines() if line.startswith("rows")]
    assert len(lines) == 1
    line = lines[0]
    found = [line for line in out.splitlines() if "best training MSE" in line]
    assert len(found) == 1
    assert re.search(r"hybrid_gp [\d.e+-]+ \(\d+ nodes\) \| pyoperon [\d.e+-]+ "
                     r"\(model length \d+\)$", found[0]), found[0]
    assert re.match(r"rows\s+20 threads 1: hybrid_gp\s+[\d,]+ children/s", line), line
    assert re.search(r"\|\s*pyoperon\s+[\d,]+ evaluations/s \| ratio children [\d.]+x, "
                     r"real [\d.]+x$", line), line
    spread = [line for line in out.splitlines() if "by round (seed)" in line]
    assert len(spread) == 1
    assert re.search(r"hybrid_gp [\d,]+-[\d,]+ children/s \| pyoperon [\d,]+-[\d,]+ "
                     r"evaluations/s$", spread[0]), spread[0]


def test_the_20_row_problem_is_nguyen_7_itself_and_other_sizes_follow_its_formula():
    base = hg.get_problem("nguyen-7")
    assert bench_run.problem_with_rows(20, 0) is base
    big = bench_run.problem_with_rows(300, 1)
    assert big.train.n_rows == 300 and big.grammar.name == "koza"
    X = big.train.X
    assert np.all((X >= 0.0) & (X <= 2.0))
    np.testing.assert_allclose(big.train.y, np.log(X[:, 0] + 1) + np.log(X[:, 0] ** 2 + 1),
                               rtol=1e-12)


def test_our_contender_spends_exactly_its_evaluation_budget():
    problem = bench_run.problem_with_rows(20, 0)
    out = bench_run.ours(problem, 30, 600, 1, seed=0)
    assert out.seconds > 0 and out.evaluations == 600 and out.children >= out.evaluations
    best = hg.run(problem, seed=0, max_evaluations=600, population_size=30, time_budget=1e9,
                  target_error=0.0, max_size=50, restart_after=0, semantic_share=0.0)
    assert out.size == best.best.size
    assert out.mse == pytest.approx(best.best_error, rel=1e-9)  # nguyen-7's metric is MSE
