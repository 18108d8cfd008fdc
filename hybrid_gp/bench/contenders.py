"""The evaluators that `hybrid-gp bench eval` times, behind one small interface.

Each is prepared once for a list of programs and a data matrix (the same trees, the
same rows for all), then `run(threads)` evaluates every program on every row. DEAP's
gp.compile runs eval() on the program text: that is DEAP's own method, measured here
as DEAP users run it, and it never touches the library's code paths.

Two timings per side answer two questions. Evaluation alone: trees compiled before
the clock starts (`kernel`, `deap_compiled`). Compile and evaluate, as a GP run pays
for every new child (`compile_each=True`): DEAP's gp.compile of each tree against our
compile of the whole batch from the flat arrays a generation's children are bred into
(`compile_arrays`, what the engine runs); each is compared with its own kind. Our
compile_batch of Program objects, the path for programs a user builds, is timed too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

import numpy as np

from ..compiler import compile_arrays, compile_batch
from ..evaluation import as_features, evaluate_features
from ..genomes import Genomes
from ..kernels import opcodes as oc
from ..kernels.reference import apply_op, evaluate_batch
from ..program import Program
from ..threads import forced


@dataclass
class Evaluator:
    """One way of evaluating the whole batch; outputs() is (programs, rows) or None."""

    name: str
    what: str  # one line: what exactly one run computes
    threads: tuple[int, ...]
    run: Callable[[int], None]
    outputs: Callable[[], np.ndarray | None]
    nodes: int  # nodes in the programs one run evaluates
    skipped: int = 0  # programs it cannot express (left out of its runs)
    baseline: str = "hybrid_gp float64"  # the evaluator of ours it is compared with


def _nodes(programs: Sequence[Program]) -> int:
    return sum(p.size for p in programs)


#: The names of the compile-and-evaluate evaluators.
OURS_COMPILING = "hybrid_gp compile+float64"
OURS_COMPILING_PROGRAMS = "hybrid_gp Programs+float64"
DEAP_COMPILING = "DEAP compile+numpy"


def kernel(programs: Sequence[Program], X: np.ndarray, dtype: str,
           threads: tuple[int, ...], compile_each: bool = False,
           from_programs: bool = False) -> Evaluator:
    """hybrid_gp's Numba interpreter: one call per batch into a preallocated array.
    With compile_each the compile is timed too: from the batch's flat arrays, as the
    engine compiles a generation's children, or with from_programs, compile_batch of
    the Program objects."""
    batch = compile_batch(programs)
    XT = as_features(X, np.dtype(dtype))
    out = np.empty((batch.n_programs, XT.shape[1]), dtype=XT.dtype)
    flat = Genomes.of(programs)

    def compile_now():
        if not compile_each:
            return batch
        if from_programs:
            return compile_batch(programs)
        return compile_arrays(flat.grammar, flat.codes, flat.code_offsets, flat.consts,
                              flat.const_offsets)

    def run(n_jobs: int) -> None:
        with forced(n_jobs > 1):  # the row says how many threads: no timed choice
            evaluate_features(compile_now(), XT, n_jobs, out=out)

    if compile_each and from_programs:
        return Evaluator(OURS_COMPILING_PROGRAMS, "compile_batch of the Program objects, "
                         "then the Numba kernel, float64", threads, run, lambda: out,
                         _nodes(programs), baseline=OURS_COMPILING)
    if compile_each:
        return Evaluator(OURS_COMPILING, "compile of the batch's flat arrays (as the "
                         "engine compiles a generation's children), then the Numba "
                         "kernel, float64", threads, run, lambda: out, _nodes(programs),
                         baseline=OURS_COMPILING)
    return Evaluator(f"hybrid_gp {dtype}", f"Numba kernel, {dtype}, outputs into a "
                     f"preallocated array", threads, run, lambda: out, _nodes(programs))


def numpy_per_node(programs: Sequence[Program], X: np.ndarray) -> Evaluator:
    """The kernels' numpy twin: one numpy call per node, whole columns at a time."""
    batch = compile_batch(programs)
    XT = as_features(X, np.dtype(np.float64))
    last: list[np.ndarray] = []

    def run(n_jobs: int) -> None:
        last[:] = [evaluate_batch(batch.codes, batch.code_offsets, batch.consts,
                                  batch.const_offsets, XT)]

    return Evaluator("numpy per node", "hybrid_gp.kernels.reference (the twin), float64",
                     (1,), run, lambda: last[0] if last else None, _nodes(programs))


# ------------------------------------------------------------------------- DEAP
def _protected_div(a: Any, b: Any) -> Any:
    return np.where(np.abs(b) <= oc.EPS, 1.0, np.divide(a, b))


def _protected_log(a: Any) -> Any:
    m = np.abs(a)
    return np.where(m <= oc.EPS, 0.0, np.log(m))


_NUMPY_OPS: dict[str, Callable[..., Any]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": _protected_div,
    "neg": np.negative, "abs": np.abs, "square": np.square,
    "sqrt": lambda a: np.sqrt(np.abs(a)), "exp": np.exp, "log": _protected_log,
    "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "pow": lambda a, b: np.power(np.abs(a), b), "min": np.minimum, "max": np.maximum,
    "cube": lambda a: a * a * a,
    "inv": lambda a: np.where(np.abs(a) <= oc.EPS, 1.0, np.divide(1.0, a)),
}


def _numpy_function(code: int) -> Callable[..., Any]:
    key = oc.NAMES[code]
    if key in _NUMPY_OPS:
        return _NUMPY_OPS[key]
    return lambda *args: apply_op(code, [np.asarray(a, dtype=float) for a in args])


def deap_compiled(programs: Sequence[Program], X: np.ndarray,
                  compile_each: bool = False) -> Evaluator:
    """DEAP's gp.compile of each tree into a Python lambda over numpy functions, called
    on the columns; with compile_each, gp.compile is timed too (a DEAP run compiles
    every individual it evaluates)."""
    from deap import gp

    n_features = X.shape[1]
    grammar = programs[0].grammar
    pset = gp.PrimitiveSet("bench", n_features, prefix="x")
    for prim in grammar.primitives:
        pset.addPrimitive(_numpy_function(prim.opcode), prim.arity, name=prim.name)
    trees = [p.to_deap(n_features) for p in programs]
    functions = [gp.compile(tree, pset) for tree in trees]
    columns = [np.ascontiguousarray(X[:, k], dtype=np.float64) for k in range(n_features)]
    n_rows = X.shape[0]
    last: list[list[Any]] = []

    def run(n_jobs: int) -> None:
        fns = [gp.compile(tree, pset) for tree in trees] if compile_each else functions
        with np.errstate(all="ignore"):
            last[:] = [[f(*columns) for f in fns]]

    def outputs() -> np.ndarray | None:
        if not last:
            return None
        return np.array([np.broadcast_to(np.asarray(v, dtype=np.float64), (n_rows,))
                         for v in last[0]])

    if compile_each:
        return Evaluator(DEAP_COMPILING, "deap.gp.compile of each tree, then its numpy "
                         "functions (the same semantics), float64", (1,), run, outputs,
                         _nodes(programs), baseline=OURS_COMPILING)
    return Evaluator("DEAP numpy, precompiled", "trees compiled by deap.gp.compile before "
                     "timing; numpy functions with the same semantics, float64", (1,), run,
                     outputs, _nodes(programs))


# ---------------------------------------------------------------------- pyoperon
#: Our operation -> (Operon node type, arity). Operon's Sub and Div with one argument
#: are negation and inverse; Logabs, Sqrtabs and Powabs take |a| as ours do (but
#: without the EPS guards of div and log).
_OPERON = {
    "add": ("Add", 2), "sub": ("Sub", 2), "mul": ("Mul", 2), "div": ("Div", 2),
    "neg": ("Sub", 1), "abs": ("Abs", 1), "square": ("Square", 1), "sqrt": ("Sqrtabs", 1),
    "exp": ("Exp", 1), "log": ("Logabs", 1), "sin": ("Sin", 1), "cos": ("Cos", 1),
    "tanh": ("Tanh", 1), "pow": ("Powabs", 2), "min": ("Fmin", 2), "max": ("Fmax", 2),
    "inv": ("Div", 1),
}


def pyoperon_available() -> bool:
    return find_spec("pyoperon") is not None


def _operon_tree(op: Any, program: Program, hashes: list[int]) -> Any:
    """The same tree as Operon nodes: Operon's postfix order is our prefix reversed."""
    nodes = []
    k = len(program.consts)
    for c in reversed(program.codes):
        if c == -1:
            k -= 1
            node = op.Node(op.NodeType.Constant)
            node.Value = program.consts[k]
        elif c < -1:
            node = op.Node(op.NodeType.Variable)
            node.HashValue = node.CalculatedHashValue = hashes[-c - 2]
            node.Value = 1.0  # Operon variables carry a weight
        else:
            kind, arity = _OPERON[oc.NAMES[program.grammar.primitives[c].opcode]]
            node = op.Node(op.NodeType.__members__[kind])
            node.Arity = arity
        nodes.append(node)
    return op.Tree(nodes).UpdateNodes()


def operon(programs: Sequence[Program], X: np.ndarray, threads: tuple[int, ...]) -> Evaluator:
    """pyoperon's EvaluateTrees (float32) on the same trees, into a preallocated array."""
    import pyoperon as op

    data = np.asfortranarray(X, dtype=np.float32)  # Operon keeps a view: hold on to it
    dataset = op.Dataset(data)
    hashes = [v.Hash for v in dataset.Variables]
    usable = [p for p in programs
              if all(oc.NAMES[p.grammar.primitives[c].opcode] in _OPERON
                     for c in p.codes if c >= 0)]
    trees = [_operon_tree(op, p, hashes) for p in usable]
    out = np.zeros((len(trees), X.shape[0]), dtype=np.float32)
    rows = op.Range(0, X.shape[0])

    def run(n_threads: int, data: np.ndarray = data) -> None:  # keeps data alive
        op.EvaluateTrees(trees, dataset, rows, out, n_threads)

    return Evaluator("pyoperon", "pyoperon.EvaluateTrees, float32 (Operon's own "
                     "precision), same trees", threads, run,
                     lambda: out if len(usable) == len(programs) else None,
                     _nodes(usable), skipped=len(programs) - len(usable))
