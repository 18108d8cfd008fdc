"""Command-line plumbing shared by `hybrid-gp` and `python -m hybrid_gp.experiments`:
a parser whose usage errors are one line (exit status 2) and argument types that say
what they expected."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

T = TypeVar("T", int, float)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit with status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _number(text: str, convert: Callable[[str], T], ok: Callable[[T], bool],
            expected: str) -> T:
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v > 0, "a positive integer")


def non_negative_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    return _number(text, float, lambda v: v > 0 and math.isfinite(v), "a positive number")


def folder(text: str) -> Path:
    """A folder path; an empty one is refused (it would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a folder, got {text!r}")
    return Path(text)


def share(text: str) -> float:
    """A fraction between 0 and 1 (inclusive)."""
    return _number(text, float, lambda v: 0.0 <= v <= 1.0, "a number between 0 and 1")
