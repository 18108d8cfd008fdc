"""Program: an immutable typed expression tree in prefix order.

The genome is two tuples: `codes` (one int per node, prefix order, the same layout as
deap.gp.PrimitiveTree) and `consts` (the values of the constant nodes, in order).
Node codes: c >= 0 is `grammar.primitives[c]`, -1 is a constant, -(k + 2) is variable
xk. The kernels read the same codes, so compiling a batch is a concatenation.

Programs never change after construction: operators build new ones. Converters to
text, sympy, JSON, PyGlove and DEAP live in their own modules and are reached through
the methods here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import UserError
from .grammar import Grammar, load_grammar

if TYPE_CHECKING:
    import sympy

CONST = -1


def var_code(index: int) -> int:
    """Node code of variable x{index}."""
    return -index - 2


def var_index(code: int) -> int:
    """Variable index of a node code < -1."""
    return -code - 2


@dataclass(frozen=True)
class Node:
    """A read-only view of one node, shaped like DEAP's Primitive/Terminal."""

    name: str
    arity: int
    ret: str
    args: tuple[str, ...] = ()
    value: float | None = None  # constants only

    @property
    def is_terminal(self) -> bool:
        return self.arity == 0


class Program:
    """A typed expression tree. Build with `Program.parse`, operators or converters."""

    __slots__ = ("_hash", "_layout", "_text", "codes", "consts", "grammar")

    def __init__(self, grammar: Grammar | str, codes: Sequence[int],
                 consts: Sequence[float] = (), *, check: bool = True):
        if not isinstance(grammar, Grammar):
            grammar = load_grammar(grammar)
        self.grammar = grammar
        self.codes = tuple(codes)
        self.consts = tuple(float(c) for c in consts)
        self._layout: tuple[list[int], list[int], int] | None = None
        self._hash: int | None = None
        self._text: str | None = None
        if check:
            check_program(self)

    @classmethod
    def _trusted(cls, grammar: Grammar, codes: tuple[int, ...],
                 consts: tuple[float, ...]) -> Program:
        """Construct without validation: for operators that keep validity by design."""
        p = cls.__new__(cls)
        p.grammar, p.codes, p.consts = grammar, codes, consts
        p._layout = p._hash = p._text = None
        return p

    @classmethod
    def _trusted_batch(cls, grammar: Grammar, codes: list[int], sizes: list[int],
                       consts: list[float], n_consts: list[int]) -> list[Program]:
        """Programs cut from flat lists: program k has the next sizes[k] codes and the
        next n_consts[k] constants. Unvalidated, as _trusted; a batch breeder makes
        hundreds per generation, so the loop avoids a call per program."""
        new = cls.__new__
        out = []
        a = b = 0
        for m, q in zip(sizes, n_consts, strict=True):
            p = new(cls)
            p.grammar, p.codes = grammar, tuple(codes[a:a + m])
            p.consts = tuple(consts[b:b + q]) if q else ()
            p._layout = p._hash = p._text = None
            out.append(p)
            a += m
            b += q
        return out

    # ------------------------------------------------------------------ shape
    @property
    def size(self) -> int:
        """Number of nodes."""
        return len(self.codes)

    @property
    def layout(self) -> tuple[list[int], list[int], int]:
        """(subtree end of every node, depth of every node, tree depth); computed once."""
        if self._layout is None:
            self._layout = tree_layout(self.codes, self.grammar.arities)
        return self._layout

    @property
    def depth(self) -> int:
        """Edges on the longest root-to-leaf path (a lone terminal has depth 0)."""
        return self.layout[2]

    height = depth  # DEAP's name

    @property
    def complexity(self) -> float:
        """Sum of node costs from the grammar (variables and constants cost their own)."""
        g = self.grammar
        total = 0.0
        for c in self.codes:
            if c >= 0:
                total += g.primitives[c].cost
            elif c == CONST:
                total += g.constants.cost
            else:
                total += g.variable_cost
        return total

    @property
    def n_features_used(self) -> int:
        """1 + the highest variable index used (0 if none)."""
        low = min((c for c in self.codes if c < -1), default=-1)
        return var_index(low) + 1 if low < -1 else 0

    def arity(self, i: int) -> int:
        c = self.codes[i]
        return self.grammar.arities[c] if c >= 0 else 0

    def subtree_end(self, i: int) -> int:
        """Index one past the subtree rooted at node i."""
        return self.layout[0][i]

    def node_depth(self, i: int) -> int:
        """Depth of node i (the root is 0)."""
        return self.layout[1][i]

    def searchSubtree(self, begin: int) -> slice:
        return slice(begin, self.subtree_end(begin))

    def node_type(self, i: int) -> str:
        """Return type of node i."""
        c = self.codes[i]
        if c >= 0:
            return self.grammar.primitives[c].ret_type
        if c == CONST:
            return self.grammar.constants.type
        return self.grammar.variable_type

    @property
    def type(self) -> str:
        return self.node_type(0)

    def const_index(self, i: int) -> int:
        """How many constants come before node i."""
        return self.codes[:i].count(CONST)

    def subtree(self, i: int) -> Program:
        """The subtree rooted at node i as a Program."""
        end = self.subtree_end(i)
        c0 = self.const_index(i)
        codes = self.codes[i:end]
        return Program._trusted(self.grammar, codes, self.consts[c0:c0 + codes.count(CONST)])

    def node(self, i: int) -> Node:
        c = self.codes[i]
        if c >= 0:
            p = self.grammar.primitives[c]
            return Node(p.name, p.arity, p.ret_type, p.arg_types)
        if c == CONST:
            return Node(repr(self.consts[self.const_index(i)]), 0, self.grammar.constants.type,
                        value=self.consts[self.const_index(i)])
        return Node(f"x{var_index(c)}", 0, self.grammar.variable_type)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> Node:
        return self.node(range(len(self.codes))[i])

    def __iter__(self) -> Iterator[Node]:
        return (self.node(i) for i in range(len(self.codes)))

    @property
    def root(self) -> Node:
        return self.node(0)

    # ------------------------------------------------------------------ identity
    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Program) and self.codes == other.codes
                and self.consts == other.consts and self.grammar.name == other.grammar.name)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash((self.grammar.name, self.codes, self.consts))
        return self._hash

    def __str__(self) -> str:
        if self._text is None:
            from .syntax import to_text

            self._text = to_text(self)
        return self._text

    def __repr__(self) -> str:
        return f"Program({str(self)!r}, grammar={self.grammar.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # The grammar object itself travels: pickle stores it once per pickle, and
        # grammars built in memory come back too.
        return (Program._trusted, (self.grammar, self.codes, self.consts))

    # ------------------------------------------------------------------ conversions
    @classmethod
    def parse(cls, text: str, grammar: Grammar | str = "full",
              variables: Sequence[str] | None = None) -> Program:
        """Parse infix text (an `ast` whitelist; nothing is executed).

        Raises ParseError naming the position and the reason.
        """
        from .syntax import parse

        return parse(text, load_grammar(grammar), variables=variables)

    def evaluate(self, X: np.ndarray, dtype: str = "float64") -> np.ndarray:
        """Outputs on X (n_rows, n_features) through the kernels; shape (n_rows,)."""
        from .evaluation import evaluate

        return evaluate([self], X, dtype=dtype)[0]

    def to_sympy(self, protected: bool = False,
                 variables: Sequence[str] | None = None) -> sympy.Expr:
        """A sympy expression. protected=True reproduces the kernel guards exactly."""
        from .convert import to_sympy

        return to_sympy(self, protected=protected, variables=variables)

    @classmethod
    def from_sympy(cls, expr: Any, grammar: Grammar | str = "full",
                   variables: Sequence[str] | None = None) -> Program:
        from .convert import from_sympy

        return from_sympy(expr, load_grammar(grammar), variables=variables)

    def to_json(self) -> str:
        from .convert import to_json

        return to_json(self)

    @classmethod
    def from_json(cls, text: str, grammar: Grammar | str | None = None) -> Program:
        from .convert import from_json

        return from_json(text, None if grammar is None else load_grammar(grammar))

    def to_pyglove(self) -> Any:
        from .symbolic import to_pyglove

        return to_pyglove(self)

    @classmethod
    def from_pyglove(cls, node: Any, grammar: Grammar | str = "full") -> Program:
        from .symbolic import from_pyglove

        return from_pyglove(node, load_grammar(grammar))

    def to_deap(self, n_features: int | None = None) -> Any:
        """A deap.gp.PrimitiveTree over `deap_pset(grammar, n_features)`."""
        from .deap_compat import to_deap

        return to_deap(self, n_features)

    @classmethod
    def from_deap(cls, tree: Any, grammar: Grammar | str = "full") -> Program:
        from .deap_compat import from_deap

        return from_deap(tree, load_grammar(grammar))


# ---------------------------------------------------------------------- tree helpers


def subtree_end(codes: Sequence[int], arities: Sequence[int], i: int) -> int:
    """Index one past the subtree that starts at codes[i]."""
    need = 1
    n = len(codes)
    while need:
        if i >= n:
            raise ValueError("truncated program: a primitive is missing arguments")
        c = codes[i]
        need += (arities[c] if c >= 0 else 0) - 1
        i += 1
    return i


def tree_layout(codes: Sequence[int], arities: Sequence[int]) -> tuple[list[int], list[int], int]:
    """One pass over prefix codes: the end of every subtree, every node's depth, and
    the tree's depth."""
    n = len(codes)
    ends = [0] * n
    depths = [0] * n
    open_nodes: list[list[int]] = []  # [index, children still to come]
    deepest = 0
    for i, c in enumerate(codes):
        d = len(open_nodes)
        depths[i] = d
        if d > deepest:
            deepest = d
        a = arities[c] if c >= 0 else 0
        if a:
            open_nodes.append([i, a])
            continue
        ends[i] = i + 1
        while open_nodes:
            top = open_nodes[-1]
            top[1] -= 1
            if top[1]:
                break
            open_nodes.pop()
            ends[top[0]] = i + 1
    if open_nodes:
        raise ValueError("truncated program: a primitive is missing arguments")
    return ends, depths, deepest


def check_program(p: Program) -> None:
    """Raise UserError unless codes form one well-typed tree with matching constants."""
    g = p.grammar
    if not p.codes:
        raise UserError("a program needs at least one node")
    n_prims = len(g.primitives)
    expected: list[str] = [g.output_type]
    for i, c in enumerate(p.codes):
        if not expected:
            raise UserError(f"node {i}: extra nodes after a complete tree")
        want = expected.pop()
        if c >= n_prims or not isinstance(c, int):
            raise UserError(f"node {i}: code {c!r} is not a primitive of grammar {g.name!r}")
        if c >= 0:
            prim = g.primitives[c]
            got = prim.ret_type
            expected.extend(reversed(prim.arg_types))
        elif c == CONST:
            if not g.constants.enabled:
                raise UserError(f"node {i}: grammar {g.name!r} has no constants")
            got = g.constants.type
        else:
            got = g.variable_type
        if got != want:
            raise UserError(f"node {i}: type {got!r} where {want!r} is expected")
    if expected:
        raise UserError("truncated program: a primitive is missing arguments")
    n_const = p.codes.count(CONST)
    if n_const != len(p.consts):
        raise UserError(f"{n_const} constant nodes but {len(p.consts)} constant values")
    if not all(np.isfinite(p.consts)):
        raise UserError("constants must be finite")


# ---------------------------------------------------------------------- pure transforms


def replace_subtree(program: Program, i: int, sub: Program) -> Program:
    """A new Program with the subtree at node i replaced by `sub` (types must agree)."""
    end = program.subtree_end(i)
    c0 = program.const_index(i)
    c1 = c0 + program.codes[i:end].count(CONST)
    return Program._trusted(
        program.grammar,
        program.codes[:i] + sub.codes + program.codes[end:],
        program.consts[:c0] + sub.consts + program.consts[c1:],
    )


def swap_subtrees(a: Program, b: Program, i: int, j: int) -> tuple[Program, Program]:
    """Exchange the subtree at node i of `a` with the subtree at node j of `b`."""
    return replace_subtree(a, i, b.subtree(j)), replace_subtree(b, j, a.subtree(i))


def with_constants(program: Program, consts: Sequence[float]) -> Program:
    """The same tree with new constant values."""
    if len(consts) != len(program.consts):
        raise ValueError(f"expected {len(program.consts)} constants, got {len(consts)}")
    return Program._trusted(program.grammar, program.codes, tuple(float(c) for c in consts))
