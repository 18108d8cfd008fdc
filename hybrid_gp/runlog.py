"""The run directory: config.json, events.jsonl, best.txt, pareto.csv, checkpoint/.

Events are one JSON object per line. Everything that depends on the wall clock sits
under the key "clock", so two runs with the same seed write identical events once
"clock" is dropped.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import UserError
from .program import Program

CONFIG = "config.json"
EVENTS = "events.jsonl"
BEST = "best.txt"
PARETO = "pareto.csv"
CHECKPOINT = "checkpoint"


class RunLog:
    """Writes one run directory. Appends to events.jsonl, so a resumed run continues it."""

    def __init__(self, out_dir: str | Path):
        self.dir = Path(out_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create run directory {self.dir}: {exc.strerror}") from None
        self._events = open(self.dir / EVENTS, "a", encoding="utf-8")  # noqa: SIM115

    def write_config(self, config_json: str) -> None:
        _atomic_write(self.dir / CONFIG, config_json + "\n")

    def event(self, event: dict[str, Any]) -> None:
        self._events.write(json.dumps(event, allow_nan=False, default=_jsonable) + "\n")
        self._events.flush()

    def write_results(self, best: Program | None, best_error: float,
                      front: list[tuple[float, float, Program]],
                      summary: dict[str, Any]) -> None:
        lines = []
        if best is not None:
            lines.append(str(best))
            lines.append(f"# error {float(best_error)!r}; size {best.size}; depth {best.depth}")
            for key, value in summary.items():
                lines.append(f"# {key}: {value}")
        _atomic_write(self.dir / BEST, "\n".join(lines) + "\n")
        tmp = self.dir / (PARETO + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["complexity", "error", "program"])
            for c, e, p in front:
                w.writerow([c, repr(float(e)), str(p)])
        os.replace(tmp, self.dir / PARETO)

    def close(self) -> None:
        self._events.close()


def _jsonable(x: Any) -> Any:
    if hasattr(x, "item"):  # numpy scalars
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Program):
        return str(x)
    raise TypeError(f"cannot write {type(x).__name__} to events.jsonl")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_events(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    path = Path(run_dir) / EVENTS
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
