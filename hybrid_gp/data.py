"""A user's own data: a CSV file with a header row becomes a regression Problem.

What `hybrid-gp run --data FILE.csv --target COLUMN [--drop-nan]` calls. Every column
but the target is an input, in file order (x0 is the first). Mistakes are reported as
DataError naming the file, the row (as numbered in the file, the header being row 1)
and the column. Empty cells and NaN / NA / inf values make a row incomplete: such rows
are refused, with their count, unless `drop_nan=True` drops them.
"""

from __future__ import annotations

import csv
import difflib
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .errors import DataError
from .grammar import Grammar
from .problem import Problem

MISSING = frozenset({"", "nan", "na", "n/a", "null", "none"})  # compared lower-cased
_SHOWN_ROWS = 5  # how many incomplete rows a message lists


@dataclass(frozen=True)
class Table:
    """A CSV file's contents: column names, values (NaN where a cell is missing) and
    the file row number of each data row (the header is row 1)."""

    header: list[str]
    values: np.ndarray  # (n_rows, n_columns) float64
    rows: np.ndarray  # (n_rows,) int


def read_csv(path: str | Path) -> Table:
    """Read a CSV file with a header row; errors name the row and the column."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise DataError(f"{path}: cannot read the data file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file; expected a CSV file") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a valid CSV file: {exc}") from None
    numbered = [(k + 1, r) for k, r in enumerate(rows) if any(cell.strip() for cell in r)]
    if not numbered:
        raise DataError(f"{path}: the file is empty; expected a header row and data rows")
    header_line, header = numbered[0]
    header = [h.strip() for h in header]
    _check_header(path, header, header_line)
    data = numbered[1:]
    if not data:
        raise DataError(f"{path}: no data rows after the header")
    values = np.empty((len(data), len(header)), dtype=np.float64)
    for i, (line, row) in enumerate(data):
        if len(row) != len(header):
            raise DataError(f"{path}: row {line} has {len(row)} fields, expected "
                            f"{len(header)} (one per header column)")
        for j, cell in enumerate(row):
            values[i, j] = _number(cell, path, line, header[j])
    return Table(header, values, np.array([line for line, _ in data]))


def _check_header(path: Path, header: list[str], line: int) -> None:
    if len(header) == 1 and any(sep in header[0] for sep in ";\t|"):
        raise DataError(f"{path}: row {line} reads as one column {header[0]!r}; expected "
                        f"comma-separated values")
    if all(_looks_numeric(h) for h in header):
        raise DataError(f"{path}: row {line} must be a header of column names, got numbers "
                        f"({', '.join(header[:4])}{' ...' if len(header) > 4 else ''})")
    for j, name in enumerate(header):
        if not name:
            raise DataError(f"{path}: header column {j + 1} has no name")
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{path}: header column {name!r} appears twice; expected "
                            f"distinct names")
        seen.add(name)


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(cell: str, path: Path, line: int, column: str) -> float:
    text = cell.strip()
    if text.lower() in MISSING:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise DataError(f"{path}: row {line}, column {column!r}: {cell!r} is not a number"
                        ) from None


def file_digest(path: str | Path) -> str:
    """The sha256 of a data file, to tell whether it changed between sessions."""
    import hashlib

    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the data file: {exc.strerror}") from None
    return digest.hexdigest()


def problem_from_csv(path: str | Path, target: str, drop_nan: bool = False,
                     grammar: Grammar | str = "full", name: str | None = None) -> Problem:
    """A regression Problem on a CSV file's rows: `target` is y, the rest are inputs.

    Rows with a missing, NaN or infinite value are refused with their count (and the
    first few row numbers) unless drop_nan=True, which drops them.
    """
    path = Path(path)
    table = read_csv(path)
    header, values = table.header, table.values
    if target not in header:
        same_case = [h for h in header if h.lower() == target.lower()]
        close = same_case or difflib.get_close_matches(target, header, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise DataError(f"{path}: no column {target!r}{hint} (columns: {', '.join(header)})")
    if len(header) < 2:
        raise DataError(f"{path}: only the target column {target!r}; expected at least one "
                        f"input column beside it")
    bad = ~np.all(np.isfinite(values), axis=1)
    if bad.any() and not drop_nan:
        lines = table.rows[bad].tolist()
        more = " ..." if len(lines) > _SHOWN_ROWS else ""
        shown = ", ".join(map(str, lines[:_SHOWN_ROWS])) + more
        raise DataError(f"{path}: {len(lines)} row(s) have missing, NaN or infinite values "
                        f"(rows {shown}); clean them or drop them (--drop-nan)")
    values = values[~bad]
    if not len(values):
        raise DataError(f"{path}: every row has a missing, NaN or infinite value; nothing "
                        f"is left to fit")
    j = header.index(target)
    inputs = [h for h in header if h != target]
    X = np.delete(values, j, axis=1)
    problem = Problem.from_data(X, values[:, j], grammar=grammar, name=name or path.stem,
                                variables=inputs)
    mapping = ", ".join(f"x{k} = {h}" for k, h in enumerate(inputs))
    dropped = f"; {int(bad.sum())} incomplete row(s) dropped" if bad.any() else ""
    return replace(problem, suite="data", source=str(path),
                   description=f"{target} from {path.name} ({len(values)} rows; "
                               f"{mapping}){dropped}")
