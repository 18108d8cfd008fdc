"""Exceptions. User mistakes are `UserError`s: the CLI prints their message in one line
and exits with status 2; anything else is a runtime failure (status 1)."""

from __future__ import annotations


class HybridGPError(Exception):
    """Base class of every error this library raises on purpose."""


class UserError(HybridGPError, ValueError):
    """Bad input from the user: a name, a value, a file. The message says what was
    wrong and what was expected."""


class ConfigError(UserError):
    """A configuration value is invalid."""


class GrammarError(UserError):
    """A grammar file or definition is invalid."""


class ProblemError(UserError):
    """A problem spec or problem data is invalid."""


class DataError(UserError):
    """X or y (or a data file) is unusable: NaN, wrong shape, mismatched lengths."""


class ParseError(UserError):
    """Program text could not be parsed. `position` is (line, column), 1-based."""

    def __init__(self, reason: str, text: str = "", position: tuple[int, int] | None = None):
        self.reason = reason
        self.text = text
        self.position = position
        where = f" at {position[0]}:{position[1]}" if position else ""
        super().__init__(f"cannot parse program{where}: {reason}")


class ConversionError(UserError):
    """An expression cannot be represented in the target grammar or format."""


class UnknownNameError(UserError, KeyError):
    """A registry has no entry by that name; the message suggests close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RunInterrupted(HybridGPError):
    """A run stopped on a signal after writing its checkpoint; it can be resumed."""


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (library messages can run to
    pages), or its type's name when it has none: for one-line user errors."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
