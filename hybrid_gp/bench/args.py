"""Argument checks shared by `hybrid-gp bench eval` and `hybrid-gp bench run`.

Both benchmarks take minutes, so every option is checked before any timing starts: a
bad value exits with status 2 and one line (hybrid_gp.argtypes.OneLineParser) naming
the option, the value and what was expected, never a traceback halfway through.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TypeVar

import numba

T = TypeVar("T")


def comma_separated(item: Callable[[str], T]) -> Callable[[str], list[T]]:
    """An argparse type for "20,10000": each comma-separated part through `item` (an
    argparse type such as argtypes.positive_int), so one bad part names itself."""

    def parse(text: str) -> list[T]:
        try:
            return [item(part.strip()) for part in text.split(",")]
        except argparse.ArgumentTypeError as exc:
            if "," not in text:
                raise
            raise argparse.ArgumentTypeError(f"{exc} in {text!r}") from None

    parse.__name__ = f"comma-separated {getattr(item, '__name__', 'value')}"
    return parse


def writable_file(text: str) -> str:
    """An argparse type: a file path that can be written now (not a directory, in an
    existing directory we may create files in), so that an unwritable --json fails up
    front and not after the benchmark has run. Leaves no file behind."""
    path = Path(text)
    if text == "":
        raise argparse.ArgumentTypeError("expected a file path, got ''")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"expected a file path, got {text!r}; that is a "
                                         f"directory")
    parent = path.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"expected a file in an existing directory, got "
                                         f"{text!r}; there is no directory {str(parent)!r}")
    existed = os.path.lexists(path)
    try:
        # "a" neither truncates nor changes an existing file; "x" creates a new one,
        # which goes again at once (the benchmark writes it at the end).
        with open(path, "a" if existed else "x"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"expected a writable file, got {text!r}; "
                                         f"{exc.strerror or exc}") from None
    if not existed:
        path.unlink(missing_ok=True)
    return text


def fail(parser: argparse.ArgumentParser, option: str, expected: str, got: object,
         why: str = "") -> NoReturn:
    """A usage error in argparse's own wording ("argument --x: expected ..., got ...",
    then why) for checks that a per-value argparse type cannot make."""
    parser.error(f"argument {option}: expected {expected}, got {got}"
                 + (f"; {why}" if why else ""))


def check_threads(parser: argparse.ArgumentParser, threads: Sequence[int]) -> None:
    """Thread counts above numba's pool would be clamped silently for hybrid_gp (and
    not for pyoperon), timing something other than what the table says: refuse them."""
    top = numba.config.NUMBA_NUM_THREADS
    too_many = [t for t in threads if t > top]
    if too_many:
        fail(parser, "--threads", f"at most {top}", repr(str(too_many[0])),
             "numba's thread pool has NUMBA_NUM_THREADS threads")
