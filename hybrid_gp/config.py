"""Run configuration as PyGlove objects: typed, validated, JSON round-trip.

Every run saves `pg.to_json_str(config)` to config.json; `hybrid-gp run --set a.b=v`
is a `rebind`. Serialisation keys are fixed strings, so moving a class does not break
old run directories. A field left at None takes the problem's default.
"""
# No `from __future__ import annotations`: PyGlove reads the field annotations.

import ast
import json
import re
from typing import Any

import pyglove as pg

from .errors import ConfigError, first_line
from .llm.config import LLMConfig, stable_name

_OPT_INT = pg.typing.Int(min_value=1).noneable()
_OPT_FLOAT = pg.typing.Float(min_value=0.0).noneable()


@stable_name("hybrid_gp.OperatorRates")
class OperatorRates(pg.Object):
    """Relative weights of the classic operators (normalised when used)."""

    crossover: pg.typing.Annotated[pg.typing.Float(min_value=0.0), "subtree crossover"] = 0.5
    subtree: pg.typing.Annotated[pg.typing.Float(min_value=0.0), "subtree mutation"] = 0.2
    point: pg.typing.Annotated[pg.typing.Float(min_value=0.0), "point mutation"] = 0.15
    hoist: pg.typing.Annotated[pg.typing.Float(min_value=0.0), "hoist mutation"] = 0.05
    shrink: pg.typing.Annotated[pg.typing.Float(min_value=0.0), "shrink mutation"] = 0.05
    constant: pg.typing.Annotated[pg.typing.Float(min_value=0.0),
                                  "Gaussian constant perturbation"] = 0.05

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.sym_init_args.items()}


@stable_name("hybrid_gp.SearchConfig")
class SearchConfig(pg.Object):
    """Population, budget and variation settings."""

    population_size: pg.typing.Annotated[_OPT_INT, "individuals per generation"] = None
    max_evaluations: pg.typing.Annotated[_OPT_INT, "real fitness evaluations (cache hits "
                                                   "are free)"] = None
    generations: pg.typing.Annotated[_OPT_INT, "generations"] = None
    time_budget: pg.typing.Annotated[_OPT_FLOAT, "wall seconds"] = None
    target_error: pg.typing.Annotated[_OPT_FLOAT, "stop when the best error is at most "
                                                  "this"] = None
    max_depth: pg.typing.Annotated[_OPT_INT, "depth limit of every program"] = None
    max_size: pg.typing.Annotated[_OPT_INT, "node limit of every program"] = None
    selection: pg.typing.Annotated[
        pg.typing.Enum("nsga2", ["nsga2", "tournament", "lexicase"]),
        "nsga2: (mu+lambda) Pareto survival on (error, size) without duplicate functions; "
        "tournament: generational with elitism; lexicase: epsilon-lexicase parents"] = "nsga2"
    tournament_size: pg.typing.Annotated[pg.typing.Int(min_value=1), "tournament size"] = 4
    lexicase_rows: pg.typing.Annotated[pg.typing.Int(min_value=1),
                                       "cases per generation for lexicase (down-sampled)"] = 256
    elitism: pg.typing.Annotated[pg.typing.Int(min_value=0),
                                 "best programs copied unchanged into the next generation"] = 5
    init_min_depth: pg.typing.Annotated[pg.typing.Int(min_value=0), "ramped init"] = 1
    init_max_depth: pg.typing.Annotated[pg.typing.Int(min_value=0), "ramped init"] = 5
    immigrants: pg.typing.Annotated[pg.typing.Float(min_value=0.0, max_value=0.5),
                                    "share of each generation's children that are fresh "
                                    "random trees (keeps diversity)"] = 0.0
    simplify_every: pg.typing.Annotated[pg.typing.Int(min_value=0),
                                        "generations between rewriting each island's Pareto "
                                        "front with hybrid_gp.simplify (0: never; measured "
                                        "worse on keijzer-4/12, so off)"] = 0
    restart_after: pg.typing.Annotated[pg.typing.Int(min_value=0).noneable(),
                                       "generations without progress after which an island "
                                       "restarts from fresh random trees (0: never; None: "
                                       "the problem's default)"] = None
    restart_gain: pg.typing.Annotated[
        pg.typing.Float(min_value=0.0, max_value=0.99).noneable(),
        "progress, for restarts: the island's best error drops by at least this share "
        "(0: any drop; None: the problem's default)"] = None
    restart_keep: pg.typing.Annotated[
        pg.typing.Enum(None, [None, "front", "none"]),
        "what a restarting island keeps: its Pareto front or nothing (the run's archive "
        "keeps the best either way; None: the problem's default)"] = None
    semantic_share: pg.typing.Annotated[
        pg.typing.Float(min_value=0.0, max_value=1.0).noneable(),
        "share of each generation's children made by semantic backpropagation (RDO, "
        "docs/search.md): a random node of a parent gets the library subtree closest to "
        "what the rest of the tree needs there (None: the problem's default)"] = None
    semantic_library: pg.typing.Annotated[pg.typing.Int(min_value=1),
                                          "best programs whose distinct subtrees form the "
                                          "semantic library"] = 50
    retry_unchanged: pg.typing.Annotated[
        pg.typing.Int(min_value=0),
        "times a classic child that computes the same function as its parent (or, for "
        "crossover, either parent) is bred again before it is scored (0: never; needs "
        "the equivalence cache)"] = 0
    mutation_depth: pg.typing.Annotated[pg.typing.Int(min_value=0),
                                        "depth of subtrees grown by mutation"] = 4
    operators: OperatorRates = OperatorRates()
    fit_share: pg.typing.Annotated[
        pg.typing.Float(min_value=0.0, max_value=1.0).noneable(),
        "share of each generation's best children whose constants are fitted by "
        "Levenberg-Marquardt (None: 0.3 when the grammar has constants, else 0)"] = None
    fit_scaling: pg.typing.Annotated[bool, "also fit y ~ a + b * f(x) when fitting"] = True
    fit_iterations: pg.typing.Annotated[pg.typing.Int(min_value=1),
                                        "Levenberg-Marquardt steps per fitted child"] = 10
    fit_rows: pg.typing.Annotated[pg.typing.Int(min_value=8),
                                  "training rows (evenly spaced) constants are fitted on; "
                                  "fitted programs are scored on all rows"] = 1024
    portfolio: pg.typing.Annotated[
        pg.typing.Enum("fixed", ["fixed", "bandit"]),
        "fixed: operators at their rates (LLM at llm.rate); bandit: Thompson sampling over "
        "every operator, crediting improvement per unit cost"] = "fixed"
    islands: pg.typing.Annotated[pg.typing.Int(min_value=1),
                                 "populations evolving apart (ring migration)"] = 1
    migration_interval: pg.typing.Annotated[pg.typing.Int(min_value=1),
                                            "generations between migrations"] = 10
    migration_size: pg.typing.Annotated[pg.typing.Int(min_value=0),
                                        "best programs each island sends on"] = 5
    stall_generations: pg.typing.Annotated[
        pg.typing.Int(min_value=0),
        "generations in a row without one new evaluation (every child a function the "
        "cache knows) after which the run stops (reason 'stall_generations'): cache hits cost no "
        "evaluation budget, so a search that can reach nothing new would otherwise "
        "never end (0: never)"] = 100
    checkpoint_every: pg.typing.Annotated[pg.typing.Int(min_value=0),
                                          "generations between checkpoints (0: never; "
                                          "needs a run directory)"] = 50
    checkpoint_seconds: pg.typing.Annotated[pg.typing.Float(min_value=0.0),
                                            "wall seconds between checkpoints, at least "
                                            "(saving a large cache takes a while)"] = 30.0


@stable_name("hybrid_gp.CacheConfig")
class CacheConfig(pg.Object):
    """The functional-hash equivalence cache (docs/hashing.md)."""

    enabled: pg.typing.Annotated[bool, "look every child up before evaluating it"] = True
    mode: pg.typing.Annotated[pg.typing.Enum("standard", ["standard", "averaging", "forgetful",
                                                          "audit"]),
                              "what a hit does"] = "standard"
    mantissa_bits: pg.typing.Annotated[pg.typing.Int(min_value=1, max_value=53),
                                       "outputs are rounded to this many mantissa bits, the "
                                       "leading bit counted (53: exact)"] = 24
    probe_size: pg.typing.Annotated[pg.typing.Int(min_value=1), "probe rows"] = 64
    capacity: pg.typing.Annotated[pg.typing.Int(min_value=1), "entries kept (LRU)"] = 500_000
    audit_rate: pg.typing.Annotated[pg.typing.Float(min_value=0.0, max_value=1.0),
                                    "share of hits evaluated anyway (audit mode)"] = 0.05
    audit_tolerance: pg.typing.Annotated[pg.typing.Float(min_value=0.0),
                                         "relative fitness gap counted as a false merge"] = 1e-6
    forget_p: pg.typing.Annotated[pg.typing.Float(min_value=0.0, max_value=1.0),
                                  "chance a hit is dropped (forgetful mode)"] = 0.1
    average_k: pg.typing.Annotated[pg.typing.Int(min_value=1),
                                   "evaluations averaged per function (averaging mode)"] = 5
    subtree_memory_mb: pg.typing.Annotated[
        pg.typing.Float(min_value=0.0),
        "memory for subtree outputs kept between generations on 1,000 rows or more, so "
        "children load the subtrees they share with earlier programs (0: none)"] = 128.0


@stable_name("hybrid_gp.DataSource")
class DataSource(pg.Object):
    """A user's CSV file as the problem (`hybrid-gp run --data FILE --target COLUMN`)."""

    path: pg.typing.Annotated[str, "CSV file with a header row"]
    target: pg.typing.Annotated[str, "the column to predict"]
    drop_nan: pg.typing.Annotated[bool, "drop incomplete rows instead of refusing them"] = False
    grammar: pg.typing.Annotated[str, "grammar name or .toml path"] = "full"
    sha256: pg.typing.Annotated[pg.typing.Str().noneable(),
                                "the file's digest when the run started: a resume checks "
                                "it, so a changed file is not mixed into the run"] = None


@stable_name("hybrid_gp.RunConfig")
class RunConfig(pg.Object):
    """Everything needed to rerun a run: the problem, the seed and all settings."""

    problem: pg.typing.Annotated[str, "problem name (hybrid-gp list)"]
    seed: pg.typing.Annotated[pg.typing.Int(min_value=0), "root seed of every stream"] = 0
    n_jobs: pg.typing.Annotated[pg.typing.Int(), "threads for evaluation (-1: all)"] = 1
    search: SearchConfig = SearchConfig()
    cache: CacheConfig = CacheConfig()
    data: pg.typing.Annotated[pg.typing.Object(DataSource).noneable(),
                              "a CSV file instead of a shipped problem"] = None
    llm: pg.typing.Annotated[pg.typing.Object(LLMConfig).noneable(),
                             "LLM operators (None: classic operators only)"] = None


def to_json(config: pg.Object) -> str:
    return pg.to_json_str(config, json_indent=2)


def from_json(text: str) -> RunConfig:
    try:
        obj = pg.from_json_str(text)
    except Exception as exc:  # PyGlove raises several types for bad documents
        raise ConfigError(f"config.json is not a valid run config: {exc}") from None
    if not isinstance(obj, RunConfig):
        raise ConfigError(f"config.json holds a {type(obj).__name__}, expected a RunConfig")
    return obj


def parse_value(text: str) -> Any:
    """A --set value: a Python/JSON literal when it reads as one, else the string."""
    for reader in (json.loads, ast.literal_eval):
        try:
            return reader(text)
        except (ValueError, SyntaxError, TypeError, json.JSONDecodeError):
            continue
    return text


def apply_overrides(config: pg.Object, assignments: list[str],
                    preset: dict[str, Any] | None = None) -> pg.Object:
    """Apply `dotted.path=value` assignments; errors name the path and the problem.

    `preset` holds values already parsed (the CLI's own flags, such as --llm-rate);
    the assignments come after them. Everything is applied at once and checked
    together, so the order of --set options does not matter (llm.max_usd needs
    llm.prices, and either may come first)."""
    config = config.clone(deep=True)
    updates = dict(preset or {})
    for item in assignments:
        path, sep, raw = item.partition("=")
        path = path.strip()
        if not sep or not path:
            raise ConfigError(f"--set {item!r}: expected dotted.path=value")
        _check_path(config, path)
        updates[path] = parse_value(raw.strip())
    updates = {path: coerce_object(config, path, value, label=f"--set {path}")
               for path, value in updates.items()}
    if not updates:
        return config
    try:
        config.rebind(updates)
    except ConfigError:  # a check across fields; its message names them
        raise
    except (TypeError, ValueError, KeyError) as exc:
        message, path = _pyglove_message(exc)
        raise ConfigError(f"--set {path or ', '.join(updates)}: {message}") from None
    return config


def coerce_object(config: pg.Object, path: str, value: Any, label: str = "") -> Any:
    """A dict given for a field that holds a settings object (search.operators, say)
    becomes that object: the dict's keys are its keyword arguments, and the fields it
    does not name keep their defaults."""
    current = config.sym_get(path, default=None)
    if not isinstance(value, dict) or not isinstance(current, pg.Object):
        return value
    label = label or path
    cls = type(current)
    fields = [str(k) for k in cls.__schema__.fields]
    unknown = [k for k in value if k not in fields]
    if unknown:
        raise ConfigError(f"{label}: unknown field {unknown[0]!r}; expected some of: "
                          f"{', '.join(fields)}")
    try:
        return cls(**value)
    except (TypeError, ValueError) as exc:
        message, field = _pyglove_message(exc)
        raise ConfigError(f"{label}{'.' + field if field else ''}: {message}") from None


def _check_path(config: pg.Object, path: str) -> None:
    node: Any = config
    walked = []
    for part in path.split("."):
        if node is None:
            where = ".".join(walked)
            hint = " (--llm-model MODEL sets it)" if where == "llm" else ""
            raise ConfigError(f"--set {path}: {where} is not set{hint}, so it has no field "
                              f"{part!r}")
        keys = list(node.sym_init_args.keys()) if isinstance(node, pg.Object) else []
        if part not in keys:
            where = ".".join(walked) or "config"
            raise ConfigError(f"--set {path}: {where} has no field {part!r}; expected one of: "
                              f"{', '.join(keys) or '(none)'}")
        walked.append(part)
        node = getattr(node, part)


def _pyglove_message(exc: BaseException) -> tuple[str, str | None]:
    """A pyglove error's first line without its "(path=...)" tail, and that path."""
    message = first_line(exc)
    where = re.search(r"\s*\(path=([^)]+)\)\s*$", message)
    if where is None:
        return message, None
    return message[:where.start()], where.group(1)
