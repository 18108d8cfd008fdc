"""A small named registry (grammars, problems, operators, experiments).

Unknown names raise `UnknownNameError` (a KeyError) with close matches; a name is
registered once; entries may carry tags used to filter (`names(tag="nguyen")`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Generic, TypeVar

from .errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry, with tags and did-you-mean errors."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._tags: dict[str, frozenset[str]] = {}
        self._loaded = False

    def register(self, name: str, entry: T, tags: Iterable[str] = ()) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = entry
        self._tags[name] = frozenset(tags)
        return entry

    def ensure_loaded(self, loader: Callable[[], None]) -> None:
        """Run `loader` once, the first time the registry is read."""
        if not self._loaded:
            self._loaded = True
            try:
                loader()
            except Exception:
                self._loaded = False
                raise

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(str(name).lower(), list(self._entries), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        sample = ", ".join(sorted(self._entries)[:12])
        extra = len(self._entries) - 12
        more = f" and {extra} more" if extra > 0 else ""
        return f"unknown {self.kind} {name!r}{hint} (known: {sample}{more})"

    def names(self, tag: str | None = None) -> list[str]:
        return sorted(n for n in self._entries if tag is None or tag in self._tags[n])

    def tags(self, name: str) -> frozenset[str]:
        return self._tags[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def data_dir(name: str) -> Path:
    """The shipped data folder `name` (grammars, problems).

    Installed from a wheel it sits inside the package; in a source checkout (editable
    install, tests) it is the top-level folder beside the package.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / name, here.parent / name):
        if candidate.is_dir() and any(candidate.glob("*.toml")):
            return candidate
    raise FileNotFoundError(f"cannot find the shipped {name}/ folder next to {here}")
