"""User data from CSV files: problem_from_csv and its error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.data import problem_from_csv, read_csv
from hybrid_gp.errors import DataError, ProblemError


def _write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_columns_but_the_target_become_inputs_in_file_order(tmp_path):
    path = _write(tmp_path, "a,y,b\n1,10,2\n3,30,4\n5,50,6\n")
    problem = problem_from_csv(path, "y")
    assert problem.variables == ("a", "b")
    assert problem.train.X.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert problem.train.y.tolist() == [10, 30, 50]
    assert problem.name == "data" and problem.suite == "data"
    assert "x0 = a, x1 = b" in problem.description


def test_a_run_on_csv_data_finds_the_rule(tmp_path, rng):
    X = rng.uniform(-2, 2, size=(40, 2))
    y = X[:, 0] * X[:, 1]
    lines = ["u,v,target"] + [f"{a!r},{b!r},{t!r}" for (a, b), t in zip(X.tolist(), y.tolist(),
                                                                   strict=True)]
    problem = problem_from_csv(_write(tmp_path, "\n".join(lines)), "target")
    result = hg.run(problem, seed=0, max_evaluations=3000, population_size=100)
    assert result.best_error < np.var(y)


def test_missing_target_names_the_columns(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,2,3\n")
    with pytest.raises(DataError, match=r"no column 'Y'; did you mean 'y'\? \(columns: a, b, y\)"):
        problem_from_csv(path, "Y")


def test_bad_cell_names_row_and_column(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,2,3\n4,five,6\n")
    with pytest.raises(DataError, match=r"row 3, column 'b': 'five' is not a number"):
        problem_from_csv(path, "y")


def test_ragged_row_is_named(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,2,3\n4,5\n")
    with pytest.raises(DataError, match=r"row 3 has 2 fields, expected 3"):
        problem_from_csv(path, "y")


def test_rows_with_nan_are_refused_with_their_count(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,2,3\n4,,6\n\n7,8,nan\n9,inf,1\n2,2,2\n")
    with pytest.raises(DataError, match=r"3 row\(s\) have missing, NaN or infinite values "
                                        r"\(rows 3, 5, 6\).*--drop-nan"):
        problem_from_csv(path, "y")


def test_drop_nan_drops_those_rows(tmp_path):
    path = _write(tmp_path, "a,b,y\n1,2,3\n4,,6\n7,8,NA\n2,2,2\n")
    problem = problem_from_csv(path, "y", drop_nan=True)
    assert problem.train.X.tolist() == [[1, 2], [2, 2]]
    assert "2 incomplete row(s) dropped" in problem.description


def test_all_rows_incomplete_is_an_error(tmp_path):
    path = _write(tmp_path, "a,y\n,1\n2,\n")
    with pytest.raises(DataError, match="every row"):
        problem_from_csv(path, "y", drop_nan=True)


def test_header_is_required(tmp_path):
    with pytest.raises(DataError, match="row 1 must be a header"):
        problem_from_csv(_write(tmp_path, "1,2,3\n4,5,6\n"), "3")
    with pytest.raises(DataError, match="appears twice"):
        problem_from_csv(_write(tmp_path, "a,a,y\n1,2,3\n"), "y")
    with pytest.raises(DataError, match="has no name"):
        problem_from_csv(_write(tmp_path, "a,,y\n1,2,3\n"), "y")


def test_empty_and_header_only_files(tmp_path):
    with pytest.raises(DataError, match="empty"):
        problem_from_csv(_write(tmp_path, "\n\n"), "y")
    with pytest.raises(DataError, match="no data rows"):
        problem_from_csv(_write(tmp_path, "a,y\n"), "y")


def test_target_alone_is_not_enough(tmp_path):
    with pytest.raises(DataError, match="at least one input column"):
        problem_from_csv(_write(tmp_path, "y\n1\n2\n"), "y")


def test_other_separators_get_a_hint(tmp_path):
    with pytest.raises(DataError, match="comma-separated"):
        problem_from_csv(_write(tmp_path, "a;b;y\n1;2;3\n"), "y")


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        problem_from_csv(tmp_path / "nope.csv", "y")


def test_byte_order_mark_and_spaces_are_tolerated(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffa , y\n 1 , 2 \n".encode())
    table = read_csv(path)
    assert table.header == ["a", "y"] and table.values.tolist() == [[1.0, 2.0]]


def test_a_truth_value_grammar_refuses_real_valued_columns(tmp_path):
    path = _write(tmp_path, "a,b,y\n0,1,1\n1,0.5,0\n1,1,1\n")
    with pytest.raises(ProblemError,
                       match=r"grammar 'mux' works on truth values .* column 'b' holds 0.5"):
        problem_from_csv(path, "y", grammar="mux")
    path = _write(tmp_path, "a,b,y\n0,1,1\n1,0,0\n1,1,1\n", name="bits.csv")
    assert problem_from_csv(path, "y", grammar="mux").grammar.name == "mux"


def test_a_target_whose_squares_overflow_is_refused(tmp_path):
    path = _write(tmp_path, "a,y\n1,1e301\n2,-3e301\n3,2e300\n")
    with pytest.raises(ProblemError,
                       match=r"target values reach 3e\+301; their squared errors overflow"):
        problem_from_csv(path, "y")
