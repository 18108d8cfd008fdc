"""Program text: printing and the `ast`-whitelist parser.

Every primitive has an infix template such as ``"{0} + {1}"`` or ``"sin({0})"``. A
template is parsed once into a Python AST pattern whose holes are the arguments. The
printer fills the holes with the children and lets `ast.unparse` place parentheses;
the parser walks the AST of the input and matches each node against the patterns.
Nothing is ever executed: this is the only door through which LLM text enters.

Negative constants print as ``-2.5`` and parse back as one constant; the `neg`
primitive prints as ``neg(x)`` (``-x`` is accepted as an alias) so printing then
parsing always gives the same tree.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import ParseError
from .grammar import Grammar, Primitive
from .program import CONST, Program, var_code, var_index

_DEFAULT_VARIABLE = re.compile(r"x(0|[1-9][0-9]{0,5})")
MAX_TEXT = 20_000  # characters; longer text is refused before parsing
_HOLE = "__hole"
_MODULE_PREFIXES = {"np", "numpy", "math", "sympy", "sp", "jnp", "torch"}


def template_pattern(template: str, arity: int) -> ast.expr:
    """Parse a template into an AST pattern; raises ValueError if it does not use every
    argument exactly once or is not an expression."""
    text = template.format(*[f"{_HOLE}{k}" for k in range(arity)])
    tree = ast.parse(text, mode="eval").body
    holes = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id.startswith(_HOLE)]
    if sorted(holes) != [f"{_HOLE}{k}" for k in range(arity)]:
        raise ValueError(f"must use each of {{0}}..{{{arity - 1}}} exactly once")
    return tree


@dataclass(frozen=True)
class _Pattern:
    prim_index: int
    tree: ast.expr
    weight: int  # AST nodes in the pattern: the more, the more specific
    alias: bool


@lru_cache(maxsize=64)
def _patterns(grammar: Grammar) -> tuple[_Pattern, ...]:
    out = []
    for i, p in enumerate(grammar.primitives):
        for k, template in enumerate((p.infix, *p.aliases)):
            tree = template_pattern(template, p.arity)
            out.append(_Pattern(i, tree, sum(1 for _ in ast.walk(tree)), alias=k > 0))
    return tuple(out)


# ---------------------------------------------------------------------- printing


def to_text(program: Program, variables: Sequence[str] | None = None) -> str:
    """Infix text of a program; `parse(to_text(p))` gives p back."""
    return ast.unparse(to_ast(program, variables))


def to_ast(program: Program, variables: Sequence[str] | None = None) -> ast.expr:
    g = program.grammar
    patterns = {p.prim_index: p.tree for p in _patterns(g) if not p.alias}
    # Walk the prefix codes from the end: children are complete before their parent.
    stack: list[ast.expr] = []
    k_const = len(program.consts)
    for c in reversed(program.codes):
        if c == CONST:
            k_const -= 1
            stack.append(_constant_ast(program.consts[k_const]))
        elif c < -1:
            j = var_index(c)
            stack.append(ast.Name(id=variables[j] if variables else f"x{j}", ctx=ast.Load()))
        else:
            arity = g.arities[c]
            args = [stack.pop() for _ in range(arity)]
            stack.append(_fill(patterns[c], args))
    return stack[0]


def _constant_ast(value: float) -> ast.expr:
    if value < 0 or (value == 0 and str(value).startswith("-")):
        return ast.UnaryOp(op=ast.USub(), operand=ast.Constant(-value))
    return ast.Constant(value)


def _fill(pattern: Any, args: list[ast.expr]) -> Any:
    """A copy of a primitive's pattern with its holes replaced by `args` (one walk
    that builds the copy; the pattern itself is shared and never changed)."""
    if isinstance(pattern, ast.Name) and pattern.id.startswith(_HOLE):
        return args[int(pattern.id[len(_HOLE):])]
    if isinstance(pattern, ast.AST):
        return type(pattern)(**{f: _fill(getattr(pattern, f), args)
                                for f in pattern._fields if hasattr(pattern, f)})
    if isinstance(pattern, list):
        return [_fill(item, args) for item in pattern]
    return pattern


# ---------------------------------------------------------------------- parsing


def parse(text: str, grammar: Grammar, variables: Sequence[str] | None = None) -> Program:
    """Parse infix text into a Program of `grammar`.

    `variables` names the input columns (default x0, x1, ...). Raises ParseError naming
    the position and the reason for anything else: unknown names, wrong types,
    constants in a grammar without them, Python constructs outside the whitelist.
    """
    if not isinstance(text, str):
        raise ParseError(f"expected a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT:
        raise ParseError(f"text is {len(text)} characters; at most {MAX_TEXT} are accepted")
    source = text.strip()
    if not source:
        raise ParseError("empty text", text)
    try:
        try:
            tree = ast.parse(source, mode="eval").body
        except SyntaxError as exc:
            raise ParseError(f"invalid syntax ({exc.msg})", text,
                             _syntax_error_position(source, exc)) from None
        except (RecursionError, MemoryError, ValueError) as exc:
            raise ParseError(f"cannot read the text ({type(exc).__name__})", text) from None
        builder = _Builder(grammar, source, variables)
        try:
            builder.build(_normalise(tree, source), grammar.output_type)
        except RecursionError:
            raise ParseError("expression is nested too deeply", text) from None
    except ParseError as exc:
        # Positions were found in the stripped source; report them in the user's text.
        raise ParseError(exc.reason, text, _in_text(text, exc.position)) from None
    return Program(grammar, builder.codes, builder.consts)


def _syntax_error_position(source: str, exc: SyntaxError) -> tuple[int, int]:
    """(line, column) of a syntax error in `source`. Eval mode reports an expression
    cut short ("x0 +") at column 0; exec mode, or else the end of the text, is better."""
    if exc.offset:
        return (exc.lineno or 1, exc.offset)
    try:
        ast.parse(source, mode="exec")
    except SyntaxError as again:
        if again.offset:
            return (again.lineno or 1, again.offset)
    lines = source.splitlines() or [""]
    return (len(lines), len(lines[-1]) + 1)


def _in_text(text: str, position: tuple[int, int] | None) -> tuple[int, int] | None:
    """Shift a position in `text.strip()` to the same character of `text`."""
    if position is None:
        return None
    lead = text[: len(text) - len(text.lstrip())]
    line, col = position
    if line == 1:
        col += len(lead) - (lead.rfind("\n") + 1)
    return (line + lead.count("\n"), col)


def _normalise(tree: ast.expr, text: str) -> ast.expr:
    """Flatten `a and b and c` into nested pairs; drop module prefixes (np.sin -> sin)."""

    class Normaliser(ast.NodeTransformer):
        def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
            self.generic_visit(node)
            acc = node.values[0]
            for v in node.values[1:]:
                acc = ast.copy_location(ast.BoolOp(op=node.op, values=[acc, v]), node)
            return acc

        def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
            if isinstance(node.value, ast.Name) and node.value.id in _MODULE_PREFIXES:
                return ast.copy_location(ast.Name(id=node.attr, ctx=ast.Load()), node)
            raise ParseError(f"attribute access {ast.unparse(node)!r} is not allowed", text,
                             _pos(node, text))

    return Normaliser().visit(tree)


def _pos(node: ast.AST, source: str) -> tuple[int, int]:
    """1-based (line, column) of a node; `ast` counts columns in UTF-8 bytes, we in
    characters."""
    line = getattr(node, "lineno", 1)
    offset = getattr(node, "col_offset", 0)
    lines = source.splitlines()
    if 0 < line <= len(lines):
        offset = len(lines[line - 1].encode("utf-8")[:offset].decode("utf-8", "ignore"))
    return (line, offset + 1)


def _match(pattern: ast.AST, node: ast.AST, binds: dict[int, ast.expr]) -> bool:
    if isinstance(pattern, ast.Name) and pattern.id.startswith(_HOLE):
        binds[int(pattern.id[len(_HOLE):])] = node  # type: ignore[assignment]
        return True
    if type(pattern) is not type(node):
        return False
    if isinstance(pattern, ast.Constant):
        return _is_number(node) and pattern.value == node.value  # type: ignore[attr-defined]
    for name in pattern._fields:
        if name in ("ctx", "kind", "type_comment"):
            continue
        pv, nv = getattr(pattern, name, None), getattr(node, name, None)
        if isinstance(pv, list):
            if not isinstance(nv, list) or len(pv) != len(nv):
                return False
            if not all(_match(a, b, binds) for a, b in zip(pv, nv, strict=True)):
                return False
        elif isinstance(pv, ast.AST):
            if not isinstance(nv, ast.AST) or not _match(pv, nv, binds):
                return False
        elif pv != nv:
            return False
    return True


def _is_number(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, int | float)
            and not isinstance(node.value, bool))


def _literal_value(node: ast.expr) -> float | None:
    """The value of a number literal, or of `-literal` (one constant, not neg(...))."""
    if _is_number(node):
        return float(node.value)  # type: ignore[attr-defined]
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd)
            and _is_number(node.operand)):
        v = float(node.operand.value)  # type: ignore[attr-defined]
        return -v if isinstance(node.op, ast.USub) else v
    return None


class _Builder:
    """Walks the input AST depth first, appending prefix codes and constants."""

    def __init__(self, grammar: Grammar, text: str, variables: Sequence[str] | None):
        self.g = grammar
        self.text = text
        self.codes: list[int] = []
        self.consts: list[float] = []
        self.vars = {name: k for k, name in enumerate(variables)} if variables else None
        self.patterns = _patterns(grammar)

    def fail(self, node: ast.AST, reason: str) -> ParseError:
        return ParseError(reason, self.text, _pos(node, self.text))

    def build(self, node: ast.expr, want: str) -> None:
        value = _literal_value(node)
        if value is not None:
            return self._constant(node, value, want)
        if isinstance(node, ast.Name):
            return self._variable(node, want)
        if not isinstance(node, _ALLOWED):
            raise self.fail(node, f"{type(node).__name__} ({ast.unparse(node)!r}) is not "
                                  f"allowed in a program")
        candidates = self._candidates(node)
        if not candidates:
            return self._fallback(node, want)
        typed = [(prim, binds) for prim, binds in candidates if prim.ret_type == want]
        if not typed:
            names = ", ".join(p.name for p, _ in candidates)
            raise self.fail(node, f"{names} returns {candidates[0][0].ret_type!r} where "
                                  f"{want!r} is expected")
        error: ParseError | None = None
        for prim, binds in typed:
            mark = (len(self.codes), len(self.consts))
            try:
                self.codes.append(self.g.index[prim.name])
                for k, arg_type in enumerate(prim.arg_types):
                    self.build(binds[k], arg_type)
                return None
            except ParseError as exc:
                del self.codes[mark[0]:], self.consts[mark[1]:]
                error = error or exc
        assert error is not None
        raise error

    def _candidates(self, node: ast.expr) -> list[tuple[Primitive, dict[int, ast.expr]]]:
        found: list[tuple[_Pattern, dict[int, ast.expr]]] = []
        for pat in self.patterns:
            binds: dict[int, ast.expr] = {}
            if _match(pat.tree, node, binds):
                found.append((pat, binds))
        if not found:
            return []
        # Primary templates win over aliases; then the more specific pattern.
        found.sort(key=lambda pb: (pb[0].alias, -pb[0].weight))
        return [(self.g.primitives[pat.prim_index], binds) for pat, binds in found]

    def _constant(self, node: ast.expr, value: float, want: str) -> None:
        c = self.g.constants
        if not c.enabled:
            raise self.fail(node, f"constant {value!r}: grammar {self.g.name!r} has no "
                                  f"constants; write the expression from variables and "
                                  f"primitives only")
        if c.type != want:
            raise self.fail(node, f"constant {value!r} has type {c.type!r} where {want!r} "
                                  f"is expected")
        if value != value or value in (float("inf"), float("-inf")):
            raise self.fail(node, "constants must be finite")
        self.codes.append(CONST)
        self.consts.append(value)

    def _variable(self, node: ast.Name, want: str) -> None:
        name = node.id
        if self.vars is not None:
            index = self.vars.get(name)
        else:
            index = int(name[1:]) if _DEFAULT_VARIABLE.fullmatch(name) else None
        if index is None:
            expected = ", ".join(self.vars) if self.vars else "x0, x1, ..."
            raise self.fail(node, f"unknown name {name!r}; variables are {expected}")
        if self.g.variable_type != want:
            raise self.fail(node, f"variable {name!r} has type {self.g.variable_type!r} "
                                  f"where {want!r} is expected")
        self.codes.append(var_code(index))

    def _fallback(self, node: ast.expr, want: str) -> None:
        """Forms with no template: small integer powers become products."""
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)
                and _literal_value(node.right) in (2.0, 3.0, 4.0) and self.g.has_op("mul")):
            k = int(_literal_value(node.right))  # type: ignore[arg-type]
            mul = next(p for p in self.g.primitives if p.op == "mul")
            product: ast.expr = node.left
            for _ in range(k - 1):
                product = ast.copy_location(ast.BinOp(product, ast.Mult(), node.left), node)
            if any(_match(pat.tree, product, {}) for pat in self.patterns
                   if pat.prim_index == self.g.index[mul.name]):
                return self.build(product, want)
        if isinstance(node, ast.Call):
            fname = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
            raise self.fail(node, f"unknown function {fname!r} with {len(node.args)} "
                                  f"argument(s); grammar {self.g.name!r} has: "
                                  f"{_signatures(self.g)}")
        raise self.fail(node, f"{ast.unparse(node)!r} uses an operation grammar "
                              f"{self.g.name!r} does not have; it has: {_signatures(self.g)}")


_ALLOWED = (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Call, ast.IfExp, ast.Compare)


def _signatures(g: Grammar) -> str:
    return ", ".join(
        p.infix.format(*[f"_{k}" for k in range(p.arity)]) if p.arity else p.name
        for p in g.primitives
    )
