"""Grammars: typed primitive sets read from grammars/*.toml.

A grammar says which operations a program may use, the types they take and return,
how each is written (infix template), what it maps to in sympy, and what it costs in
complexity. Variables and ephemeral constants are its terminals.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .errors import GrammarError
from .kernels import opcodes as oc
from .registry import Registry, data_dir
from .sympy_ops import SYMPY_BUILDERS


@dataclass(frozen=True)
class Primitive:
    """One operation of a grammar: a typed function node of a program tree."""

    name: str
    op: str
    arg_types: tuple[str, ...]
    ret_type: str
    infix: str
    sympy: str
    cost: float = 1.0
    aliases: tuple[str, ...] = ()

    @property
    def arity(self) -> int:
        return len(self.arg_types)

    @property
    def opcode(self) -> int:
        return oc.OPS[self.op].code


@dataclass(frozen=True)
class Constants:
    """Ephemeral random constants: drawn uniformly from [low, high] when a tree grows."""

    enabled: bool = False
    low: float = -1.0
    high: float = 1.0
    type: str = "float"
    probability: float = 0.3  # chance that a new terminal is a constant, not a variable
    cost: float = 1.0


@dataclass(frozen=True)
class Constraints:
    """Search-space priors (after DSO's in-situ constraints): no primitive of a
    `no_nesting` group anywhere below another of the same group (no sin(cos(x))); no
    `no_parent_child` pair as a direct parent and child (no exp(log(x)))."""

    no_nesting: tuple[tuple[str, ...], ...] = ()
    no_parent_child: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.no_nesting or self.no_parent_child)


@dataclass(frozen=True, eq=False)
class Grammar:
    """A typed primitive set. Immutable; programs hold a reference to theirs."""

    name: str
    primitives: tuple[Primitive, ...]
    output_type: str = "float"
    variable_type: str = "float"
    constants: Constants = field(default_factory=Constants)
    description: str = ""
    source: str = "<memory>"
    variable_cost: float = 1.0
    constraints: Constraints = field(default_factory=lambda: Constraints())

    def __post_init__(self) -> None:
        _check_grammar(self)

    def __repr__(self) -> str:
        return f"Grammar({self.name!r}, {len(self.primitives)} primitives)"

    def __reduce__(self) -> Any:
        """Shipped grammars pickle by name (unpickling gives the very same object);
        others pickle by value."""
        if self.name in GRAMMARS and GRAMMARS.get(self.name) is self:
            return (load_grammar, (self.name,))
        return (_grammar_by_value, (self.name, self.primitives, self.output_type,
                                    self.variable_type, self.constants, self.description,
                                    self.source, self.variable_cost, self.constraints))

    @cached_property
    def index(self) -> dict[str, int]:
        """Primitive name -> position in `primitives` (the node code in programs)."""
        return {p.name: i for i, p in enumerate(self.primitives)}

    @cached_property
    def opmap(self) -> np.ndarray:
        """Primitive position -> kernel opcode, the table the kernels read."""
        table = np.array([p.opcode for p in self.primitives], dtype=np.int32)
        table.setflags(write=False)
        return table

    @cached_property
    def arities(self) -> tuple[int, ...]:
        return tuple(p.arity for p in self.primitives)

    @cached_property
    def types(self) -> frozenset[str]:
        names = {self.output_type, self.variable_type}
        for p in self.primitives:
            names.update(p.arg_types)
            names.add(p.ret_type)
        if self.constants.enabled:
            names.add(self.constants.type)
        return frozenset(names)

    @cached_property
    def producers(self) -> dict[str, tuple[int, ...]]:
        """Type -> positions of the primitives returning it."""
        out: dict[str, list[int]] = {t: [] for t in self.types}
        for i, p in enumerate(self.primitives):
            out[p.ret_type].append(i)
        return {t: tuple(v) for t, v in out.items()}

    def has_terminals(self, type_: str) -> bool:
        """Whether a leaf (variable or constant) of this type exists."""
        return type_ == self.variable_type or (
            self.constants.enabled and type_ == self.constants.type
        )

    @cached_property
    def min_height(self) -> dict[str, int]:
        """Smallest subtree height that can produce each type (0 = a terminal)."""
        return _min_heights(self)

    @cached_property
    def costs(self) -> np.ndarray:
        """Complexity cost per primitive position."""
        return np.array([p.cost for p in self.primitives], dtype=np.float64)

    def primitive(self, name: str) -> Primitive:
        try:
            return self.primitives[self.index[name]]
        except KeyError:
            raise KeyError(
                f"grammar {self.name!r} has no primitive {name!r}; it has: "
                + ", ".join(p.name for p in self.primitives)
            ) from None

    def has_op(self, op: str) -> bool:
        return any(p.op == op for p in self.primitives)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (run directories, transcripts)."""
        return {
            "name": self.name,
            "output": self.output_type,
            "variables": self.variable_type,
            "constants": self.constants.__dict__,
            "primitives": [
                {"name": p.name, "op": p.op, "args": list(p.arg_types), "returns": p.ret_type}
                for p in self.primitives
            ],
        }


def _grammar_by_value(*fields: Any) -> Grammar:
    return Grammar(*fields)


NEVER = 1 << 30  # the height of a type that can never be completed


def completion_heights(grammar: Grammar, leaf_types: set[str]) -> dict[str, int]:
    """Least subtree height producing each type when the leaves are of `leaf_types`
    (NEVER where none can)."""
    height = {t: (0 if t in leaf_types else NEVER) for t in grammar.types}
    changed = True
    while changed:
        changed = False
        for p in grammar.primitives:
            h = 1 + max((height[t] for t in p.arg_types), default=0)
            if h < height[p.ret_type]:
                height[p.ret_type] = h
                changed = True
    return height


def _min_heights(grammar: Grammar) -> dict[str, int]:
    return completion_heights(grammar, {t for t in grammar.types if grammar.has_terminals(t)})


def _check_grammar(g: Grammar) -> None:
    where = f"{g.source}"
    if not g.primitives:
        raise GrammarError(f"{where}: grammar {g.name!r} has no primitives")
    seen: set[str] = set()
    for p in g.primitives:
        if p.name in seen:
            raise GrammarError(f"{where}: primitive {p.name!r} is defined twice")
        seen.add(p.name)
    heights = _min_heights(g)
    reachable = _reachable_types(g)
    for t in sorted(reachable):
        if heights.get(t, 1 << 30) >= 1 << 30:
            raise GrammarError(
                f"{where}: type {t!r} can never be completed: no terminal and no primitive "
                f"whose arguments end in terminals returns it"
            )


def _reachable_types(g: Grammar) -> set[str]:
    todo, seen = [g.output_type], set()
    while todo:
        t = todo.pop()
        if t in seen:
            continue
        seen.add(t)
        for p in g.primitives:
            if p.ret_type == t:
                todo.extend(p.arg_types)
    return seen


# --------------------------------------------------------------------------- loading

_PRIMITIVE_FIELDS = {"name", "op", "args", "returns", "infix", "sympy", "cost", "aliases"}
_TOP_FIELDS = {"name", "description", "output", "variables", "variable_cost", "constants",
               "constraints",
               "primitive"}
_CONSTANT_FIELDS = {"enabled", "low", "high", "type", "probability", "cost"}


def grammar_from_dict(data: Mapping[str, Any], source: str = "<memory>") -> Grammar:
    """Build and validate a Grammar from parsed TOML; errors name source, primitive, field."""
    _no_unknown(data, _TOP_FIELDS, source, "grammar")
    name = _get(data, "name", str, source, "grammar")
    var_type = _get(data, "variables", str, source, "grammar", default="float")
    out_type = _get(data, "output", str, source, "grammar", default=var_type)
    prims = data.get("primitive")
    if not isinstance(prims, list) or not prims:
        raise GrammarError(f"{source}: field 'primitive': expected a list of [[primitive]] "
                           f"tables, got {type(prims).__name__}")
    primitives = tuple(_primitive(i, p, source) for i, p in enumerate(prims))
    consts = data.get("constants", {})
    if not isinstance(consts, Mapping):
        raise GrammarError(f"{source}: field 'constants': expected a table")
    _no_unknown(consts, _CONSTANT_FIELDS, source, "[constants]")
    constants = Constants(
        enabled=_get(consts, "enabled", bool, source, "[constants]", default=False),
        low=float(_get(consts, "low", (int, float), source, "[constants]", default=-1.0)),
        high=float(_get(consts, "high", (int, float), source, "[constants]", default=1.0)),
        type=_get(consts, "type", str, source, "[constants]", default="float"),
        probability=float(_get(consts, "probability", (int, float), source, "[constants]",
                               default=0.3)),
        cost=float(_get(consts, "cost", (int, float), source, "[constants]", default=1.0)),
    )
    if constants.enabled and not constants.low <= constants.high:
        raise GrammarError(f"{source}: [constants]: field 'low' must be <= 'high', got "
                           f"{constants.low} > {constants.high}")
    if not 0.0 <= constants.probability <= 1.0:
        raise GrammarError(f"{source}: [constants]: field 'probability' must be in [0, 1]")
    return Grammar(
        constraints=_constraints(data.get("constraints", {}), primitives, source),
        name=name,
        primitives=primitives,
        output_type=out_type,
        variable_type=var_type,
        constants=constants,
        description=_get(data, "description", str, source, "grammar", default=""),
        source=source,
        variable_cost=float(_get(data, "variable_cost", (int, float), source, "grammar",
                                 default=1.0)),
    )


def _constraints(data: Any, primitives: tuple[Primitive, ...], source: str) -> Constraints:
    where = "[constraints]"
    if not isinstance(data, Mapping):
        raise GrammarError(f"{source}: field 'constraints': expected a table")
    _no_unknown(data, {"no_nesting", "no_parent_child"}, source, where)
    names = {p.name for p in primitives}

    def groups(key: str, size: int | None) -> tuple[tuple[str, ...], ...]:
        value = data.get(key, [])
        shape = "pairs [parent, child]" if size == 2 else "lists of primitive names"
        if not isinstance(value, list) or not all(
                isinstance(g, list) and g and all(isinstance(n, str) for n in g)
                and (size is None or len(g) == size) for g in value):
            raise GrammarError(f"{source}: {where}: field {key!r}: expected a list of {shape}")
        for g in value:
            for n in g:
                if n not in names:
                    raise GrammarError(f"{source}: {where}: field {key!r}: unknown primitive "
                                       f"{n!r}; the grammar has: {', '.join(sorted(names))}")
        return tuple(tuple(g) for g in value)

    nesting = groups("no_nesting", None)
    if len(nesting) > 62:
        raise GrammarError(f"{source}: {where}: at most 62 no_nesting groups")
    pairs = groups("no_parent_child", 2)
    return Constraints(nesting, tuple((a, b) for a, b in pairs))


def _primitive(i: int, data: Any, source: str) -> Primitive:
    where = f"primitive #{i + 1}"
    if not isinstance(data, Mapping):
        raise GrammarError(f"{source}: {where}: expected a table, got {type(data).__name__}")
    name = _get(data, "name", str, source, where)
    where = f"primitive {name!r}"
    _no_unknown(data, _PRIMITIVE_FIELDS, source, where)
    if not name.isidentifier():
        raise GrammarError(f"{source}: {where}: field 'name': expected an identifier")
    op = _get(data, "op", str, source, where)
    if op not in oc.OPS:
        raise GrammarError(f"{source}: {where}: field 'op': unknown kernel operation {op!r}; "
                           f"expected one of: {', '.join(oc.OPS)}")
    info = oc.OPS[op]
    default_type = "bool" if info.logical else "float"
    args = data.get("args", [default_type] * info.arity)
    if (not isinstance(args, list) or len(args) != info.arity
            or not all(isinstance(a, str) for a in args)):
        raise GrammarError(f"{source}: {where}: field 'args': expected a list of "
                           f"{info.arity} type names (op {op!r} has arity {info.arity}), "
                           f"got {args!r}")
    sympy = _get(data, "sympy", str, source, where, default=op)
    if sympy not in SYMPY_BUILDERS:
        raise GrammarError(f"{source}: {where}: field 'sympy': unknown mapping {sympy!r}; "
                           f"expected one of: {', '.join(sorted(SYMPY_BUILDERS))}")
    infix = _get(data, "infix", str, source, where, default=info.infix)
    aliases = data.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise GrammarError(f"{source}: {where}: field 'aliases': expected a list of strings")
    for template in [infix, *aliases]:
        _check_template(template, info.arity, source, where)
    cost = float(_get(data, "cost", (int, float), source, where, default=1.0))
    if cost < 0:
        raise GrammarError(f"{source}: {where}: field 'cost': expected >= 0, got {cost}")
    return Primitive(
        name=name, op=op, arg_types=tuple(args),
        ret_type=_get(data, "returns", str, source, where, default=default_type),
        infix=infix, sympy=sympy, cost=cost, aliases=tuple(aliases),
    )


def _check_template(template: str, arity: int, source: str, where: str) -> None:
    from .syntax import template_pattern  # late: syntax depends on grammar types

    try:
        template_pattern(template, arity)
    except (ValueError, SyntaxError, IndexError, KeyError) as exc:
        raise GrammarError(f"{source}: {where}: field 'infix': bad template {template!r}: "
                           f"{exc}") from None


def _get(data: Mapping[str, Any], key: str, types: Any, source: str, where: str,
         default: Any = ...) -> Any:
    if key not in data:
        if default is ...:
            raise GrammarError(f"{source}: {where}: field {key!r} is missing")
        return default
    value = data[key]
    if not isinstance(value, types) or (types in (int, float, (int, float))
                                        and isinstance(value, bool)):
        expected = types.__name__ if isinstance(types, type) else "a number"
        raise GrammarError(f"{source}: {where}: field {key!r}: expected {expected}, "
                           f"got {value!r}")
    return value


def _no_unknown(data: Mapping[str, Any], allowed: set[str], source: str, where: str) -> None:
    extra = sorted(set(data) - allowed)
    if extra:
        raise GrammarError(f"{source}: {where}: unknown field {extra[0]!r}; expected some of: "
                           f"{', '.join(sorted(allowed))}")


def read_grammar_file(path: str | Path) -> Grammar:
    """Read one grammar TOML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise GrammarError(f"{path}: cannot read grammar file: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GrammarError(f"{path}: not valid TOML: {exc}") from None
    return grammar_from_dict(data, source=str(path))


GRAMMARS: Registry[Grammar] = Registry("grammar")


def _load_builtin() -> None:
    for path in sorted(data_dir("grammars").glob("*.toml")):
        g = read_grammar_file(path)
        GRAMMARS.register(g.name, g)


def list_grammars() -> list[str]:
    """Names of the grammars shipped in grammars/."""
    GRAMMARS.ensure_loaded(_load_builtin)
    return GRAMMARS.names()


def load_grammar(name_or_path: str | Path | Grammar) -> Grammar:
    """A shipped grammar by name, or a grammar TOML file by path."""
    if isinstance(name_or_path, Grammar):
        return name_or_path
    text = str(name_or_path)
    if text.endswith(".toml") or Path(text).is_file():
        return read_grammar_file(text)
    GRAMMARS.ensure_loaded(_load_builtin)
    return GRAMMARS.get(text)
