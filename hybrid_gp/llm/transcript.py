"""Transcripts: every LLM request and its outcome, one JSON object a line.

A request is keyed by the sha256 of its canonical JSON (model, messages, sampling
parameters) and an occurrence counter: the n-th time a run sends the same request is
occurrence n, so asking again gets the next recorded sample, not the first one again.
Each entry also stores the generation at which the reply joined the run (`joined`), so a
replay feeds every reply back at the same point and repeats the run bit for bit.

The first line is a header naming the format. Nothing secret is written: no API key,
no headers, no base URL. Each exchange carries the sha256 `digest` of its own content,
so a reply edited after recording is refused when the file is read instead of replaying
a different run (an entry without a digest, as older files have, is taken as it is).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from ..errors import UserError, first_line

FORMAT = "hybrid_gp.llm_transcript"
VERSION = 1
_REQUIRED = ("key", "occurrence", "model", "messages", "params", "outcome")


class TranscriptError(UserError):
    """A transcript file is unreadable or does not match the run."""


class TranscriptMiss(TranscriptError):
    """Strict replay: the run sent a request the transcript does not hold."""


def request_key(model: str, messages: Sequence[dict[str, Any]], params: dict[str, Any]) -> str:
    """Stable hex key of a request: sha256 of its canonical JSON (sorted keys, no spaces),
    the same on every machine and Python version."""
    canonical = json.dumps(
        {"model": model, "messages": [dict(m) for m in messages], "params": params},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Occurrences:
    """Counts how often each key was asked; `next(key)` is 0 the first time."""

    def __init__(self, counts: dict[str, int] | None = None) -> None:
        self._seen: Counter[str] = Counter(counts or {})

    def next(self, key: str) -> int:
        n = self._seen[key]
        self._seen[key] += 1
        return n

    def counts(self) -> dict[str, int]:
        """A copy, for checkpoints."""
        return dict(self._seen)


def has_content(path: str | Path) -> bool:
    path = Path(path)
    return path.exists() and path.stat().st_size > 0


def refuse_existing(path: str | Path) -> None:
    """Mode 'record' starts a transcript: an existing one is never overwritten."""
    if has_content(path):
        raise TranscriptError(
            f"llm.transcript: {path} already exists; mode 'record' starts a new "
            f"transcript. Replay it (mode 'replay' or 'replay-or-live'), or choose "
            f"another path")


class Transcript:
    """One JSONL file: read whole for replay, appended to while recording."""

    def __init__(self, path: str | Path, *, read: bool, write: bool, fresh: bool = False):
        self.path = Path(path)
        self.entries: dict[tuple[str, int], dict[str, Any]] = {}
        self._out = None
        self._whole: int | None = None  # bytes before a last line cut short by a kill
        exists = has_content(self.path)
        if fresh:
            refuse_existing(self.path)
        if read:
            if not exists and not write:
                raise TranscriptError(f"llm.transcript: {self.path} does not exist; "
                                      f"mode 'replay' needs a recorded transcript")
            if exists:
                self._load()
        if write:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if self._whole is not None:  # appending after it would corrupt the next line
                    os.truncate(self.path, self._whole)
                self._out = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise TranscriptError(f"llm.transcript: cannot write {self.path}: "
                                      f"{exc.strerror}") from None
            if not exists:
                self._write({"type": "header", "format": FORMAT, "version": VERSION,
                             "hybrid_gp": __version__})

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
            lines = data.decode("utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise TranscriptError(f"llm.transcript: cannot read {self.path}: {exc}") from None
        if lines and not data.endswith(b"\n") and not _parses(lines[-1]):
            # A kill while a line was written: that exchange is lost, the rest stands.
            lines.pop()
            self._whole = data.rfind(b"\n") + 1
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{self.path}:{number}"
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TranscriptError(f"llm.transcript: {where}: not JSON ({exc.msg})") from None
            if not isinstance(entry, dict):
                raise TranscriptError(f"llm.transcript: {where}: expected a JSON object")
            if entry.get("type") == "header":
                if entry.get("format") != FORMAT or entry.get("version") != VERSION:
                    raise TranscriptError(
                        f"llm.transcript: {where}: not a {FORMAT} version {VERSION} file")
                continue
            missing = [k for k in _REQUIRED if k not in entry]
            if missing:
                raise TranscriptError(f"llm.transcript: {where}: entry lacks {missing[0]!r}")
            if "digest" in entry and entry["digest"] != entry_digest(entry):
                raise TranscriptError(
                    f"llm.transcript: {where}: the entry was changed after it was recorded "
                    f"(its digest does not match its content), so replaying it would not "
                    f"repeat the recorded run; record again, or delete the entry's "
                    f"\"digest\" field to replay the edited entry on purpose")
            _check_values(entry, where)
            self.entries[(entry["key"], int(entry["occurrence"]))] = entry

    def lookup(self, key: str, occurrence: int) -> dict[str, Any] | None:
        return self.entries.get((key, occurrence))

    def append(self, entry: dict[str, Any]) -> None:
        """Write one exchange (see `exchange`)."""
        self.entries[(entry["key"], int(entry["occurrence"]))] = entry
        line = {"type": "exchange", **entry}
        self._write({**line, "digest": entry_digest(line)})

    def _write(self, obj: dict[str, Any]) -> None:
        if self._out is None:
            raise TranscriptError(f"llm.transcript: {self.path} is open for reading only")
        self._out.write(json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n")
        self._out.flush()

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def entry_digest(entry: dict[str, Any]) -> str:
    """sha256 (hex) of an exchange's canonical JSON, its own "digest" field left out."""
    body = {k: v for k, v in entry.items() if k != "digest"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def _check_values(entry: dict[str, Any], where: str) -> None:
    """An entry's values must read back (a hand-edited file fails here, naming the
    line, rather than mid-replay with a Python error)."""
    from .client import Outcome

    try:
        for name in ("occurrence", "submitted", "joined", "stopped"):
            value = entry.get(name)
            if (value is None and name in ("joined", "stopped")) or (
                    isinstance(value, int) and not isinstance(value, bool)):
                continue
            raise ValueError(f"{name} must be an integer, got {value!r}")
        Outcome.from_json(entry)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise TranscriptError(f"llm.transcript: {where}: a damaged entry "
                              f"({first_line(exc)})") from None


def exchange(*, key: str, occurrence: int, seq: int, operator: str, model: str,
             messages: Sequence[dict[str, Any]], params: dict[str, Any],
             outcome: dict[str, Any], submitted: int, joined: int | None,
             stopped: int | None = None) -> dict[str, Any]:
    """One transcript entry: the request, its outcome (client.Outcome.to_json()) and
    the generations at which it was submitted and joined (None: never joined; then
    `stopped` is the generation at which the run stopped waiting for it)."""
    entry = {"key": key, "occurrence": occurrence, "seq": seq, "operator": operator,
             "model": model, "messages": [dict(m) for m in messages], "params": dict(params),
             **outcome, "submitted": submitted, "joined": joined}
    if stopped is not None:
        entry["stopped"] = stopped
    return entry


def describe_request(seq: int, operator: str, model: str, key: str, occurrence: int,
                     gist: str) -> str:
    """One line naming a request, for errors."""
    gist = " ".join(gist.split())[:100]
    return (f"request #{seq} ({operator} of {gist!r}, model {model!r}, key {key[:12]}, "
            f"occurrence {occurrence})")
