"""hybrid_gp: evolve typed expression programs with classic GP and LLM rewrites."""

from ._version import __version__
from .api import RunResult, run
from .errors import ParseError, UserError
from .estimator import SymbolicRegressor
from .evaluation import evaluate, fitness
from .generate import random_programs
from .grammar import Grammar, Primitive, list_grammars, load_grammar
from .problem import Problem, get_problem, list_problems
from .program import Program

__all__ = [
    "Grammar", "ParseError", "Primitive", "Problem", "Program", "RunResult",
    "SymbolicRegressor", "UserError", "__version__", "evaluate", "fitness", "get_problem",
    "list_grammars", "list_problems", "load_grammar", "random_programs", "run",
]
