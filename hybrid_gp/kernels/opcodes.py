"""The one numbering of kernel operations.

Grammars name an operation by its key here (``op = "div"``); the compiler, the Numba
kernels, the numpy twin and the sympy export all dispatch on these integers. Their
semantics are written down in docs/semantics.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Terminals: pushed from the constant pool or the input matrix.
CONST = 0
VAR = 1

# Arithmetic and transcendental.
ADD = 2
SUB = 3
MUL = 4
DIV = 5
NEG = 6
ABS = 7
SQUARE = 8
SQRT = 9
EXP = 10
LOG = 11
SIN = 12
COS = 13
TANH = 14
POW = 15
MIN = 16
MAX = 17
CUBE = 18
INV = 19

# Logic (booleans are carried as 0.0 / 1.0).
AND = 20
OR = 21
NOT = 22
NAND = 23
NOR = 24
XOR = 25
IF = 26
GT = 27
LT = 28

N_OPCODES = 29

#: Opcodes from here on (MIN ... LT) are the interpreter's extended set: its kernels
#: compile their code only for batches that use them (CompiledBatch.kernel_ext). A new
#: operation goes below this number only if interpreter._unary/_binary handle it.
EXTENDED_FROM = MIN

#: Protected-operator threshold: |b| <= EPS makes div(a, b) return 1 and log(a) return 0.
EPS = 1e-10


@dataclass(frozen=True)
class OpInfo:
    """What the rest of the system needs to know about one kernel operation."""

    key: str
    code: int
    arity: int
    infix: str  # default rendering; {0}, {1}, ... are the arguments
    logical: bool = False  # arguments and result are 0/1 truth values
    commutative: bool = False  # op(a, b) == op(b, a) for every a, b


OPS: dict[str, OpInfo] = {
    op.key: op
    for op in [
        OpInfo("add", ADD, 2, "{0} + {1}", commutative=True),
        OpInfo("sub", SUB, 2, "{0} - {1}"),
        OpInfo("mul", MUL, 2, "{0} * {1}", commutative=True),
        OpInfo("div", DIV, 2, "{0} / {1}"),
        OpInfo("neg", NEG, 1, "neg({0})"),
        OpInfo("abs", ABS, 1, "abs({0})"),
        OpInfo("square", SQUARE, 1, "square({0})"),
        OpInfo("sqrt", SQRT, 1, "sqrt({0})"),
        OpInfo("exp", EXP, 1, "exp({0})"),
        OpInfo("log", LOG, 1, "log({0})"),
        OpInfo("sin", SIN, 1, "sin({0})"),
        OpInfo("cos", COS, 1, "cos({0})"),
        OpInfo("tanh", TANH, 1, "tanh({0})"),
        OpInfo("pow", POW, 2, "{0} ** {1}"),
        OpInfo("min", MIN, 2, "min({0}, {1})", commutative=True),
        OpInfo("max", MAX, 2, "max({0}, {1})", commutative=True),
        OpInfo("cube", CUBE, 1, "cube({0})"),
        OpInfo("inv", INV, 1, "inv({0})"),
        OpInfo("and", AND, 2, "{0} and {1}", logical=True, commutative=True),
        OpInfo("or", OR, 2, "{0} or {1}", logical=True, commutative=True),
        OpInfo("not", NOT, 1, "not {0}", logical=True),
        OpInfo("nand", NAND, 2, "nand({0}, {1})", logical=True, commutative=True),
        OpInfo("nor", NOR, 2, "nor({0}, {1})", logical=True, commutative=True),
        OpInfo("xor", XOR, 2, "xor({0}, {1})", logical=True, commutative=True),
        OpInfo("if", IF, 3, "{1} if {0} else {2}"),
        OpInfo("gt", GT, 2, "{0} > {1}"),
        OpInfo("lt", LT, 2, "{0} < {1}"),
    ]
}

#: Arity indexed by opcode (terminals have arity 0); the kernels read this table.
ARITY = np.zeros(N_OPCODES, dtype=np.int32)
for _op in OPS.values():
    ARITY[_op.code] = _op.arity
ARITY.setflags(write=False)

#: 1 where the operation is commutative, indexed by opcode (the structural hash reads it).
COMMUTATIVE = np.zeros(N_OPCODES, dtype=np.bool_)
for _op in OPS.values():
    COMMUTATIVE[_op.code] = _op.commutative
COMMUTATIVE.setflags(write=False)

NAMES: dict[int, str] = {op.code: op.key for op in OPS.values()} | {CONST: "const", VAR: "var"}
