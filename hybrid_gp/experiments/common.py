"""What every experiment report shares: the command, the seeds, the machine, the date,
Markdown tables, and matplotlib set to its file-only (Agg) backend at call time."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from . import DEFAULT_OUT, SCALES


@dataclass(frozen=True)
class Invocation:
    """How an experiment was started: enough to print the command that repeats it."""

    name: str
    scale: str
    out_dir: Path
    seeds: tuple[int, ...]
    default_seeds: tuple[int, ...]
    options: tuple[tuple[str, str], ...] = ()  # extra CLI flags, in order

    def command(self) -> str:
        parts = ["hybrid-gp", "experiment", self.name, "--scale", self.scale]
        if self.seeds != self.default_seeds:
            parts += ["--seeds", ",".join(str(s) for s in self.seeds)]
        for flag, value in self.options:
            parts += [flag, value]
        if self.out_dir.resolve() != DEFAULT_OUT.resolve():
            parts += ["--out", str(self.out_dir)]
        return " ".join(parts)


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise UserError(f"scale must be one of {', '.join(SCALES)}, got {scale!r}")
    return scale


def resolve_seeds(seeds: Iterable[int] | None, default: Sequence[int]) -> tuple[int, ...]:
    if seeds is None:
        return tuple(default)
    out = tuple(int(s) for s in seeds)
    if not out or any(s < 0 for s in out):
        raise UserError(f"seeds must be a non-empty list of integers >= 0, got {list(out)}")
    return out


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def source_revision() -> str | None:
    """The git commit of the source tree (read-only git), marked when the package has
    changes. Only the package counts: an experiment resumed from a trimmed ledger, or
    docs edited while it runs, change no result."""
    package = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=package,
                              capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no",
                                "--", "."], cwd=package, capture_output=True, text=True,
                               timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")


def machine_facts() -> dict[str, str]:
    """Cores, CPU, OS, versions and the load when the experiment started."""
    from .. import __version__

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    facts = {
        "cores": f"{usable} usable ({os.cpu_count()} in the machine)",
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "python": platform.python_version(),
        "hybrid_gp": __version__,
    }
    revision = source_revision()
    if revision:
        facts["hybrid_gp"] += f" (git {revision})"
    for dist in ("numpy", "numba", "sympy", "pyoperon", "gplearn"):
        v = _version(dist)
        if v is not None:
            facts[dist] = v
    if hasattr(os, "getloadavg"):
        facts["load average at start"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return facts


def preamble(title: str, inv: Invocation, started: datetime, wall: float,
             facts: dict[str, str], notes: Sequence[str] = ()) -> str:
    """The report's head: title, command, seeds, date, duration and machine."""
    lines = [f"# {title}", "", "Reproduce with:", "", "```bash", inv.command(), "```", "",
             f"(or `python -m hybrid_gp.experiments {inv.command().split(' ', 2)[2]}`)", "",
             f"- scale: `{inv.scale}`",
             f"- seeds: {', '.join(str(s) for s in inv.seeds)}",
             f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')}",
             f"- experiment wall time: {wall:.0f} s",
             "- machine: " + "; ".join(f"{k} {v}" for k, v in facts.items())]
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def now() -> datetime:
    return datetime.now(UTC)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
          right: Sequence[bool] | None = None) -> str:
    """A Markdown table; `right` marks columns to align right (numbers)."""
    right = right or [False] + [True] * (len(headers) - 1)
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def fmt(x: float | None, digits: int = 3) -> str:
    """A number for a table: significant digits, '-' when missing, 'inf' when infinite."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    if np.isinf(x):
        return "inf"
    return f"{x:.{digits}g}"


def pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None or np.isnan(x) else f"{100 * x:.{digits}f} %"


def median(values: Iterable[float]) -> float:
    v = [float(x) for x in values]
    return float(np.median(v)) if v else float("nan")


def pyplot() -> Any:
    """matplotlib.pyplot with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


class RunLedger:
    """One JSON line per finished run, so a long experiment can stop and go on.

    A record is keyed by the fields named in `key`. `settings` are what makes a record
    comparable with new ones (a wall-time budget, say); which problems or seeds a
    session runs is not a setting, and settings an older ledger has beyond these are
    ignored. Finished runs are never thrown away: without `resume` an earlier ledger
    is renamed (`set_aside` says where) and a new one begins; with `resume` its
    settings must match, and every record is kept, those this session does not ask
    for too. With `source` (the package's version and git revision), each record added
    is stamped with it and the time it finished, so a report resumed later can say
    which code made the runs it reuses."""

    def __init__(self, path: Path, key: Sequence[str], settings: dict[str, Any],
                 resume: bool = False, source: str | None = None):
        self.path = path
        self.source = source
        self.key = tuple(key)
        self.settings = json.loads(json.dumps(settings))  # tuples read back as lists
        self.records: list[dict[str, Any]] = []
        self.set_aside: Path | None = None  # where earlier runs went when not resuming
        if path.exists():
            old_settings, records = _read_ledger(path)
            if records and not resume:
                self.set_aside = _free_name(path)
                os.replace(path, self.set_aside)
                records = []
            changed = ", ".join(f"{k} {old_settings.get(k)!r} there, {v!r} now"
                                for k, v in self.settings.items()
                                if old_settings.get(k) != v)
            if records and changed:
                raise UserError(f"cannot resume {path}: its runs were made with other "
                                f"settings ({changed}); give another --out")
            self.records = records
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:  # drops a line cut short by a kill
            f.write(json.dumps({"settings": self.settings}) + "\n")
            for r in self.records:
                f.write(json.dumps(r) + "\n")
        os.replace(tmp, path)

    def done(self, **key: Any) -> dict[str, Any] | None:
        for r in self.records:
            if all(r.get(k) == key[k] for k in self.key):
                return r
        return None

    def add(self, record: dict[str, Any]) -> None:
        if self.source is not None:
            record["finished"] = now().strftime("%Y-%m-%d %H:%M:%S UTC")
            record["source"] = self.source
        self.records.append(record)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=_json_default) + "\n")


def reused_runs_note(records: Sequence[dict[str, Any]], ledger_name: str) -> str:
    """The report's note on runs a resumed experiment took from its ledger: how many,
    made by which source revisions, finished when."""
    sources = Counter(r.get("source", "a revision not recorded") for r in records)
    made = "; ".join(f"{n} by hybrid_gp {src}" for src, n in sources.most_common())
    finished = sorted(r["finished"] for r in records if "finished" in r)
    when = (f", finished {finished[0]} to {finished[-1]}" if len(finished) > 1 else
            f", finished {finished[0]}" if finished else "")
    return (f"{len(records)} finished runs come from an earlier session (`--resume`; "
            f"{made}{when}; each run is in {ledger_name}); the date, wall time and "
            f"machine above are this session's")


def _free_name(path: Path) -> Path:
    """NAME.runs.DATE.jsonl beside `path`, numbered when that exists already."""
    stem = path.name.removesuffix(".jsonl")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    candidate, k = path.with_name(f"{stem}.{stamp}.jsonl"), 1
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{stem}.{stamp}-{k}.jsonl")
    return candidate


def _read_ledger(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The settings and records of a ledger file; a line that does not parse (the last
    one, cut short by a kill) is left out."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the run ledger {path}: {exc}") from None
    if not any(line.strip() for line in lines):
        return {}, []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    rows = [r for r in rows if isinstance(r, dict)]
    if not rows or "settings" not in rows[0]:
        raise UserError(f"{path} is not a run ledger (its first line should hold the "
                        f"settings); move it away or give another --out")
    return rows[0]["settings"], rows[1:]


def _json_default(x: Any) -> Any:
    if isinstance(x, np.integer | np.floating):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def progress(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)
