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

from .errors import UserError, first_line
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


def finished(run_dir: str | Path) -> dict[str, Any] | None:
    """The "end" event of a run that finished and wrote all its outputs, else None.

    The end event is the last line of events.jsonl, and operators.csv is the last
    output written, so both present means nothing is left to do."""
    path = Path(run_dir)
    if not (path / OPERATORS).exists() or not (path / EVENTS).exists():
        return None
    with open(path / EVENTS, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 65536))
        tail = fh.read().decode("utf-8", errors="replace").strip().splitlines()
    try:
        last = json.loads(tail[-1]) if tail else None
    except json.JSONDecodeError:
        return None
    return last if isinstance(last, dict) and last.get("event") == "end" else None


def read_events(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    path = Path(run_dir) / EVENTS
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


# ---------------------------------------------------------------------- checkpoints

STATE_FILE = "state.pkl"
GENEALOGY = "genealogy.json"
OPERATORS = "operators.csv"


def save_checkpoint(run_dir: str | Path, state: Any) -> Path:
    """Pickle the engine state atomically to run_dir/checkpoint/state.pkl."""
    import pickle

    folder = Path(run_dir) / CHECKPOINT
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (STATE_FILE + ".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(state, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, folder / STATE_FILE)
    return folder / STATE_FILE


def load_checkpoint(run_dir: str | Path) -> Any | None:
    """The last checkpointed engine state, or None when the run never wrote one."""
    import pickle

    path = Path(run_dir) / CHECKPOINT / STATE_FILE
    if not path.exists():
        return None
    try:
        with open(path, "rb") as fh:
            return pickle.load(fh)
    except Exception as exc:  # a damaged file fails in many ways
        raise UserError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: "
                        f"{first_line(exc)}); it is damaged, or was written by another "
                        f"version of hybrid_gp") from None


def truncate_events(run_dir: str | Path, n_lines: int) -> None:
    """Keep the first n_lines of events.jsonl (what a checkpoint accounts for)."""
    path = Path(run_dir) / EVENTS
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        lines = [line for line in fh if line.strip()][:n_lines]
    _atomic_write(path, "".join(lines))


def write_genealogy(run_dir: str | Path, graph: Any, credit: list[dict[str, Any]]) -> None:
    """genealogy.json (networkx node-link data) and operators.csv (operator credit)."""
    import networkx as nx

    data = nx.node_link_data(graph, edges="edges")
    _atomic_write(Path(run_dir) / GENEALOGY, json.dumps(data, allow_nan=False) + "\n")
    tmp = Path(run_dir) / (OPERATORS + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["operator", "children", "improved", "improved_share", "mean_gain"])
        for row in credit:
            w.writerow([row["operator"], row["children"], row["improved"],
                        f"{row['improved_share']:.6f}", f"{row['mean_gain']:.6f}"])
    os.replace(tmp, Path(run_dir) / OPERATORS)


def read_genealogy(run_dir: str | Path) -> Any:
    """The genealogy DiGraph saved with a run."""
    import networkx as nx

    with open(Path(run_dir) / GENEALOGY, encoding="utf-8") as fh:
        return nx.node_link_graph(json.load(fh), edges="edges")
