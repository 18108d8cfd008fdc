"""`hybrid-gp report DIR`: plots and a summary of one run directory.

Reads what a run writes (config.json, events.jsonl and, once the run has ended,
best.txt, pareto.csv, operators.csv and genealogy.json) and writes error.png,
pareto.png, operators.png, lineage.png and summary.md beside them. A run with no end
event yet (still running, or interrupted) is reported from its events and its last
checkpoint. A figure without data (no front before the first checkpoint) is left out.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from .config import RunConfig, from_json
from .errors import UserError
from .grammar import Grammar, load_grammar
from .operators.llm import LLM_OPERATORS
from .problem import Budget, get_problem
from .program import Program
from .runlog import (
    BEST,
    CONFIG,
    EVENTS,
    GENEALOGY,
    OPERATORS,
    PARETO,
    load_checkpoint,
    read_genealogy,
)

SUMMARY = "summary.md"
ANNOTATED = 4  # simplest front members named on pareto.png
LINEAGE_ROWS = 15  # latest steps of the best program's line listed in summary.md
CLASSIC_COLOR, LLM_COLOR = "#4c72b0", "#dd8452"


@dataclass
class RunData:
    """One run directory, read once: what every figure and the summary are drawn from."""

    dir: Path
    config: RunConfig
    generations: list[dict[str, Any]]  # "generation" events, the last per (island, gen)
    progress: list[dict[str, Any]]
    llm_calls: list[dict[str, Any]]
    end: dict[str, Any] | None  # None while running or after an interruption
    best: str | None = None
    best_error: float | None = None
    test_error: str | None = None
    front: list[tuple[float, float | None, str]] = field(default_factory=list)
    credit: list[dict[str, Any]] = field(default_factory=list)
    genealogy: nx.DiGraph | None = None
    source: str = ""  # where front, credit and genealogy come from
    notes: list[str] = field(default_factory=list)  # what could not be read
    grammar: Grammar | None = None
    metric: str | None = None
    budget: Budget = field(default_factory=Budget)
    variables: tuple[str, ...] | None = None  # names of x0, x1, ... (a CSV's columns)
    _formulas: dict[tuple[str, bool], str] = field(default_factory=dict, repr=False)

    @property
    def last(self) -> dict[str, Any]:
        """The latest progress event (or, before the first barrier, generation event)."""
        return self.progress[-1] if self.progress else self.generations[-1]

    @property
    def error_label(self) -> str:
        return f"train error ({self.metric})" if self.metric else "train error"

    @property
    def llm_operators(self) -> set[str]:
        return set(LLM_OPERATORS) | {e.get("operator", "") for e in self.llm_calls}

    def readable(self, text: str) -> str:
        """The program's plain formula simplified by sympy
        (hybrid_gp.convert.readable_sympy: seconds for a large one), or its text when
        the grammar is unknown or the conversion fails."""
        return self._formula(text, True)

    def folded(self, text: str) -> str:
        """The program's plain formula after constant folding only (fast), or its
        readable form when that is known already."""
        return self._formulas.get((text, True)) or self._formula(text, False)

    def _formula(self, text: str, simplified: bool) -> str:
        if (text, simplified) not in self._formulas:
            self._formulas[text, simplified] = _formula(text, self.grammar, simplified,
                                                        self.variables)
        return self._formulas[text, simplified]

    def best_per_generation(self) -> tuple[list[int], list[float]]:
        """The best error over all islands after each generation."""
        best: dict[int, float] = {}
        for e in self.generations:
            if e.get("best_error") is not None:
                g = e["generation"]
                best[g] = min(best.get(g, math.inf), e["best_error"])
        gens = sorted(best)
        return gens, [best[g] for g in gens]


# ---------------------------------------------------------------------- reading

def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory; UserError when it is not a run or has no events yet."""
    path = Path(run_dir)
    if not (path / CONFIG).is_file():
        raise UserError(f"{path} is not a run directory: {CONFIG} is missing")
    try:
        config = from_json((path / CONFIG).read_text(encoding="utf-8"))
    except UserError as exc:
        raise UserError(f"{path / CONFIG}: {exc}") from None
    events = _read_events(path / EVENTS)
    generations = _last_per_key([e for e in events if e.get("event") == "generation"])
    if not generations:
        raise UserError(f"{path} has no events yet: {EVENTS} holds no generation event; "
                        f"report a run after its first generation")
    ends = [e for e in events if e.get("event") == "end"]
    run = RunData(dir=path, config=config, generations=generations,
                  progress=[e for e in events if e.get("event") == "progress"],
                  llm_calls=_one_per_seq([e for e in events if e.get("event") == "llm_call"]),
                  end=ends[-1] if ends else None)
    _add_problem(run)
    if run.end is not None and (path / PARETO).is_file():
        _add_final_files(run)
    else:
        _add_checkpoint(run)
    return run


def _read_events(path: Path) -> list[dict[str, Any]]:
    """Every event; a last line still being written is skipped."""
    if not path.is_file():
        raise UserError(f"{path.parent} has no events yet: {EVENTS} is missing")
    lines = path.read_text(encoding="utf-8").splitlines()
    events = []
    for k, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            if k == len(lines) - 1:
                break
            raise UserError(f"{path}:{k + 1}: expected one JSON event per line") from None
    return events


def _last_per_key(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Generation events, the last one for each (island, generation), in run order."""
    latest = {(e.get("island", 0), e.get("generation", 0)): e for e in events}
    return sorted(latest.values(), key=lambda e: (e.get("generation", 0), e.get("island", 0)))


def _one_per_seq(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """LLM calls, each request once (the last record of each seq)."""
    return list({e.get("seq", k): e for k, e in enumerate(calls)}.values())


def _add_problem(run: RunData) -> None:
    """Grammar, metric and default budget: from config.data for CSV runs, else from the
    problem registry (a problem it does not know leaves the grammar unknown)."""
    data = run.config.data
    try:
        if data is not None:
            run.grammar, run.metric = load_grammar(data.grammar), "mse"
            run.variables = _csv_inputs(data.path, data.target)
            return
        problem = get_problem(run.config.problem)
    except UserError as exc:
        run.notes.append(f"Formulas are shown as evolved: {exc}.")
        return
    run.grammar, run.metric, run.budget = problem.grammar, problem.metric, problem.budget


def _add_final_files(run: RunData) -> None:
    """best.txt, pareto.csv, operators.csv and genealogy.json of a finished run."""
    d = run.dir
    run.source = "the run's final files"
    if (d / BEST).is_file():
        lines = (d / BEST).read_text(encoding="utf-8").splitlines()
        if lines and lines[0].strip():
            run.best = lines[0].strip()
        for line in lines[1:]:
            if line.startswith("# error "):
                run.best_error = _float(line.split()[2].rstrip(";"))
            elif line.startswith("# test_error:"):
                value = line.split(":", 1)[1].strip()
                run.test_error = None if value == "None" else value
    else:
        _best_from_progress(run)
    with open(d / PARETO, newline="", encoding="utf-8") as fh:
        run.front = [(float(r["complexity"]), _float(r["error"]), r["program"])
                     for r in csv.DictReader(fh)]
    if (d / OPERATORS).is_file():
        with open(d / OPERATORS, newline="", encoding="utf-8") as fh:
            run.credit = [{"operator": r["operator"], "children": int(r["children"]),
                           "improved": int(r["improved"]),
                           "improved_share": float(r["improved_share"]),
                           "mean_gain": float(r["mean_gain"])} for r in csv.DictReader(fh)]
    if (d / GENEALOGY).is_file():
        run.genealogy = read_genealogy(d)


def _add_checkpoint(run: RunData) -> None:
    """An unfinished run: the best from the latest progress event, the rest from the
    last checkpoint when there is one."""
    _best_from_progress(run)
    try:
        state = load_checkpoint(run.dir)
    except UserError as exc:
        run.notes.append(str(exc))
        return
    if state is None:
        return
    run.source = f"the checkpoint at generation {state.generation}"
    run.front = [(c, _finite(e), str(p)) for c, e, p in state.archive.pareto_front()]
    run.credit = state.genealogy.credit_table()
    roots = [int(i) for island in state.islands for i in island.population.ids]
    run.genealogy = state.genealogy.to_networkx(roots)


def _best_from_progress(run: RunData) -> None:
    last = run.progress[-1] if run.progress else {}
    run.best, run.best_error = last.get("best"), last.get("best_error")


def _csv_inputs(path: str, target: str) -> tuple[str, ...] | None:
    """The input columns of a run's CSV file, from its header (None when unreadable)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = next((row for row in csv.reader(handle) if any(c.strip() for c in row)),
                          [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    names = tuple(h.strip() for h in header if h.strip() != target)
    return names or None


def _formula(text: str, grammar: Grammar | None, simplified: bool,
             variables: Sequence[str] | None = None) -> str:
    if grammar is None:
        return text
    import sympy as sp

    from .convert import readable_sympy, to_sympy
    from .simplify import simplify

    try:
        program = Program.parse(text, grammar)
        if variables is not None and len(variables) < program.n_features_used:
            variables = None  # the file changed since the run: keep x0, x1, ...
        if simplified:
            return str(readable_sympy(program, variables))
        expr = to_sympy(simplify(program), variables=variables)
        return str(expr.xreplace({f: sp.Float(f, 6) for f in expr.atoms(sp.Float)}))
    except (UserError, ValueError, TypeError, RecursionError):
        return text


def _float(text: str) -> float | None:
    try:
        return _finite(float(text))
    except ValueError:
        return None


def _finite(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


# ---------------------------------------------------------------------- figures

def error_figure(run: RunData) -> Figure:
    """Best error over all islands and the median of each island, per generation."""
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    islands = sorted({e.get("island", 0) for e in run.generations})
    values: list[float] = []
    for k in islands:
        pts = [(e["generation"], e["median_error"]) for e in run.generations
               if e.get("island", 0) == k and e.get("median_error") is not None]
        if pts:
            gens, med = zip(*pts, strict=True)
            label = "median" if len(islands) == 1 else f"median, island {k}"
            ax.plot(gens, med, lw=1, alpha=0.8, label=label)
            values.extend(med)
    gens, best = run.best_per_generation()
    ax.plot(gens, best, color="black", lw=2, label="best")
    values.extend(best)
    _error_scale(ax, values)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="generation", ylabel=run.error_label, title=_title(run, "error"))
    ax.legend(fontsize=8)
    return fig


def pareto_figure(run: RunData) -> Figure | None:
    """The front: complexity against error, the simplest members and the most
    accurate one named."""
    front = [(c, e, p) for c, e, p in run.front if e is not None]
    if not front:
        return None
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    cs, es = [c for c, _, _ in front], [e for _, e, _ in front]
    ax.step(cs, es, where="post", color=CLASSIC_COLOR, alpha=0.5)
    ax.plot(cs, es, "o", color=CLASSIC_COLOR)
    for c, e, p in front[:ANNOTATED]:
        ax.annotate(_short(run.folded(p)), (c, e), xytext=(6, 6),
                    textcoords="offset points", fontsize=8)
    if len(front) > ANNOTATED:  # the most accurate, left of its point
        c, e, p = front[-1]
        ax.annotate(_short(run.folded(p)), (c, e), xytext=(-6, 8), ha="right",
                    textcoords="offset points", fontsize=8)
    _error_scale(ax, es)
    ax.margins(x=0.08, y=0.12)
    ax.set(xlabel="complexity", ylabel=run.error_label, title=_title(run, "Pareto front"))
    return fig


def operators_figure(run: RunData) -> Figure | None:
    """Children per operator and the share that beat their best parent."""
    rows = run.credit
    if not rows:
        return None
    fig = Figure(figsize=(8, 0.5 * len(rows) + 1.6), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    names = [r["operator"] for r in rows]
    llm = run.llm_operators
    colors = [LLM_COLOR if n in llm else CLASSIC_COLOR for n in names]
    y = range(len(rows))
    left.bar_label(left.barh(y, [r["children"] for r in rows], color=colors), fontsize=8)
    share = [100 * r["improved_share"] for r in rows]
    right.bar_label(right.barh(y, share, color=colors), fmt="%.1f%%", fontsize=8)
    left.margins(x=0.15)
    right.margins(x=0.2)
    left.set_yticks(list(y), names)
    left.invert_yaxis()
    left.set(xlabel="children")
    right.set(xlabel="children better than their best parent (%)")
    if any(n in llm for n in names):
        right.legend(handles=[Patch(color=CLASSIC_COLOR, label="classic"),
                              Patch(color=LLM_COLOR, label="LLM")], fontsize=8)
    fig.suptitle(_title(run, "operator credit"))
    return fig


def lineage_figure(run: RunData) -> Figure | None:
    """Ancestors of the best individual: error by generation, coloured by operator; the
    line through the best parent at each step is drawn bold."""
    g = run.genealogy
    line = best_lineage(g) if g is not None else []
    if g is None or not line:
        return None
    nodes = nx.ancestors(g, line[-1]) | {line[-1]}
    fig = Figure(figsize=(7, 4.2), layout="constrained")
    ax = fig.add_subplot()
    pos = {n: (g.nodes[n]["generation"], g.nodes[n]["error"]) for n in nodes
           if g.nodes[n].get("error") is not None}
    segments = [(pos[a], pos[b]) for a, b in g.subgraph(nodes).edges if a in pos and b in pos]
    ax.add_collection(LineCollection(segments, colors="0.8", linewidths=0.5, zorder=1))
    colors = _operator_colors(sorted({g.nodes[n]["operator"] for n in pos}))
    for op, color in colors.items():
        pts = [pos[n] for n in pos if g.nodes[n]["operator"] == op]
        llm = op in run.llm_operators
        ax.scatter(*zip(*pts, strict=True), s=60 if llm else 14, color=color,
                   marker="*" if llm else "o", label=op, zorder=2)
    main = [pos[n] for n in line if n in pos]
    ax.plot(*zip(*main, strict=True), color="black", lw=1.5, zorder=3, label="best line")
    _error_scale(ax, [e for _, e in pos.values()])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="generation", ylabel=run.error_label,
           title=_title(run, f"ancestry of the best ({len(nodes)} individuals)"))
    ax.legend(fontsize=7, ncols=2)
    return fig


def best_lineage(g: nx.DiGraph) -> list[int]:
    """The individual with the lowest error (earliest on ties) and, before it, the
    chain of its best parents back to the initial population; oldest first."""
    scored = [n for n, d in g.nodes(data=True) if d.get("error") is not None]
    if not scored:
        return []

    def key(n: int) -> tuple[float, int, int]:
        err = g.nodes[n].get("error")
        return (math.inf if err is None else err, g.nodes[n]["generation"], n)

    line = [min(scored, key=key)]
    while parents := [p for p in g.predecessors(line[-1]) if p not in line]:
        line.append(min(parents, key=key))
    return line[::-1]


def _operator_colors(names: Sequence[str]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {name: cmap(k % cmap.N) for k, name in enumerate(names)}


def _error_scale(ax: Axes, values: Sequence[float]) -> None:
    """Log scale for positive errors; symlog when some are exactly 0; linear when some
    are negative (metrics where higher is better are stored negated)."""
    if not values or min(values) < 0:
        return
    positive = [v for v in values if v > 0]
    if len(positive) == len(values):
        ax.set_yscale("log")
    elif positive:
        ax.set_yscale("symlog", linthresh=min(positive))


def _title(run: RunData, what: str) -> str:
    return f"{run.config.problem}, seed {run.config.seed}: {what}"


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


FIGURES: dict[str, Callable[[RunData], Figure | None]] = {
    "error.png": error_figure, "pareto.png": pareto_figure,
    "operators.png": operators_figure, "lineage.png": lineage_figure,
}


# ---------------------------------------------------------------------- summary

def summary_markdown(run: RunData, images: Sequence[str] = ()) -> str:
    """summary.md: status, budget, best formula, front, credit, lineage, LLM, plots."""
    parts = [f"# Run report: {run.config.problem}, seed {run.config.seed}", _status(run),
             "\n\n".join(f"Note: {n}" for n in run.notes),
             _budget_table(run), _best_section(run), _front_section(run),
             _credit_section(run), _lineage_section(run), _llm_section(run)]
    if images:
        parts.append("## Plots\n\n" + "\n".join(f"![{Path(i).stem}]({i})" for i in images))
    return "\n\n".join(p for p in parts if p) + "\n"


def _status(run: RunData) -> str:
    if run.end is not None:
        return f"Finished: stop reason **{run.end.get('stop_reason')}**."
    text = (f"**Not finished**: no end event yet: the run is still running, or was "
            f"interrupted (then `hybrid-gp resume {run.dir}` continues it). Numbers are as "
            f"of generation {run.last.get('generation')}")
    if run.source:
        return text + f"; the Pareto front, operator credit and lineage come from {run.source}."
    return text + "; there is no checkpoint yet, so no Pareto front, credit or lineage."


def _budget_table(run: RunData) -> str:
    s, b, last, end = run.config.search, run.budget, run.last, run.end or {}
    max_evals = _pick(s.max_evaluations, b.max_evaluations)
    max_gens = _pick(s.generations, b.generations)
    time_budget = _pick(s.time_budget, b.time_budget)
    evals = end.get("evaluations", last.get("evaluations"))
    gens = end.get("generations", last.get("generation"))
    clock = (end or last).get("clock", {})
    seconds = clock.get("wall_seconds", clock.get("elapsed"))
    rows = [("problem", run.config.problem), ("seed", run.config.seed),
            ("stop reason", end.get("stop_reason", "(not finished)")),
            ("islands", s.islands),
            ("generations", _of(gens, max_gens)),
            ("evaluations", _of(evals, max_evals)),
            ("wall time", _of(None if seconds is None else f"{seconds:.1f} s",
                              None if time_budget is None else f"{time_budget:g} s")),
            ("cache hit rate", _cache_text(run))]
    spent = ((run.end or {}).get("clock") or {}).get("cache")
    if spent:
        rows.append(("cache time", f"about {spent['seconds_saved']:.2f} s of evaluation "
                                   f"saved; {spent['hash_seconds']:.2f} s spent hashing and "
                                   f"looking up"))
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def _cache_text(run: RunData) -> str:
    if not run.config.cache.enabled:
        return "off"
    cache = (run.end or {}).get("cache") or {}
    if cache.get("lookups"):
        return f"{cache['hit_rate']:.1%} ({cache['hits']} hits of {cache['lookups']} lookups)"
    hits, evals = run.last.get("cache_hits"), run.last.get("evaluations")
    if hits is None or evals is None or hits + evals == 0:
        return "—"
    return f"{hits / (hits + evals):.1%} of scored programs ({hits} hits, {evals} evaluated)"


def _best_section(run: RunData) -> str:
    if run.best is None:
        return "## Best program\n\nNone yet."
    lines = ["## Best program", "", f"`{run.readable(run.best)}`", "",
             f"- as evolved: `{run.best}`",
             f"- {run.error_label}: {_num(run.best_error)}"]
    if run.test_error is not None:
        lines.append(f"- test error: {run.test_error}")
    return "\n".join(lines)


def _front_section(run: RunData) -> str:
    if not run.front:
        return ""
    rows = [f"| {c:g} | {_num(e)} | `{_cell(run.folded(p))}` |" for c, e, p in run.front]
    return ("## Pareto front\n\nThe most accurate program of each complexity that beats every "
            "simpler one, after constant folding.\n\n"
            "| complexity | error | formula |\n|---:|---:|---|\n"
            + "\n".join(rows))


def _credit_section(run: RunData) -> str:
    if not run.credit:
        return ""
    llm = run.llm_operators
    rows = [f"| {r['operator']}{' (LLM)' if r['operator'] in llm else ''} | {r['children']} "
            f"| {r['improved']} | {r['improved_share']:.1%} | {r['mean_gain']:.4f} |"
            for r in run.credit]
    return ("## Operator credit\n\nChildren each operator made, how many beat their best "
            "parent, and the mean relative gain per child.\n\n"
            "| operator | children | improved | share improved | mean gain |\n"
            "|---|---:|---:|---:|---:|\n" + "\n".join(rows))


def _lineage_section(run: RunData) -> str:
    g = run.genealogy
    line = best_lineage(g) if g is not None else []
    if g is None or not line:
        return ""
    shown = line[-LINEAGE_ROWS:]
    rows = [f"| {g.nodes[n]['generation']} | {g.nodes[n]['island']} | "
            f"{g.nodes[n]['operator']} | {_num(g.nodes[n].get('error'))} |" for n in shown]
    more = f" (the last {len(shown)} of {len(line)})" if len(shown) < len(line) else ""
    return (f"## How the best was found\n\nIts line through the best parent at each "
            f"step{more}:\n\n| generation | island | operator | error |\n|---:|---:|---|---:|\n"
            + "\n".join(rows))


def _llm_section(run: RunData) -> str:
    if not run.llm_calls and run.config.llm is None:
        return ""
    stats = {k: v for k, v in (run.end or {}).items() if k.startswith("llm_")}
    lines = ["## LLM", "", f"Model `{getattr(run.config.llm, 'model', '?')}`."]
    if stats:
        lines += ["", "| | |", "|---|---|"]
        lines += [f"| {k[4:].replace('_', ' ')} | {_cell(_value(v))} |" for k, v in stats.items()]
    by_op: dict[str, list[dict[str, Any]]] = {}
    for e in run.llm_calls:
        by_op.setdefault(e.get("operator", "?"), []).append(e)
    if by_op:
        lines += ["", "| operator | replies joined | candidates | accepted | faults | tokens | "
                  "mean latency (s) |", "|---|---:|---:|---:|---:|---:|---:|"]
        for op, calls in sorted(by_op.items()):
            lat = [e["clock"]["latency"] for e in calls if "latency" in e.get("clock", {})]
            tokens = sum(e.get("prompt_tokens", 0) + e.get("completion_tokens", 0) for e in calls)
            counts = [len(calls), sum(e.get("candidates", 0) for e in calls),
                      sum(e.get("accepted", 0) for e in calls),
                      sum(1 for e in calls if e.get("fault")), tokens,
                      f"{sum(lat) / len(lat):.2f}" if lat else "—"]
            lines.append(f"| {op} | " + " | ".join(map(str, counts)) + " |")
    return "\n".join(lines)


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value


def _of(spent: Any, limit: Any) -> str:
    if spent is None:
        return "—"
    return f"{spent} of {limit}" if limit is not None else str(spent)


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.6g}"


def _value(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, dict):
        return ", ".join(f"{k}: {n}" for k, n in v.items() if n) or "none"
    if isinstance(v, list):
        return ", ".join(map(str, v)) or "none"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------------- entry point

def write_report(run_dir: str | Path) -> list[Path]:
    """Write the PNGs that have data and summary.md into run_dir; returns their paths."""
    run = load_run(run_dir)
    written = []
    for name, draw in FIGURES.items():
        fig = draw(run)
        if fig is not None:
            fig.savefig(run.dir / name, dpi=120)
            written.append(run.dir / name)
    summary = run.dir / SUMMARY
    summary.write_text(summary_markdown(run, [p.name for p in written]), encoding="utf-8")
    return [*written, summary]
