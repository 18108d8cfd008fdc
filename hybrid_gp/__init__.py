"""hybrid_gp: evolve typed expression programs with classic GP and LLM rewrites."""

from ._version import __version__
from .api import RunResult, resume, run
from .data import problem_from_csv
from .errors import ParseError, UserError
from .estimator import SymbolicRegressor
from .evaluation import evaluate, fitness
from .generate import random_programs
from .grammar import Grammar, Primitive, list_grammars, load_grammar
from .hashing import EquivalenceCache, functional_hash
from .llm.config import LLMConfig
from .problem import Problem, get_problem, list_problems, list_suites
from .program import Program

__all__ = [
    "EquivalenceCache", "Grammar", "LLMConfig", "ParseError", "Primitive", "Problem",
    "Program", "RunResult", "SymbolicRegressor", "UserError", "__version__", "evaluate",
    "fitness", "functional_hash", "get_problem", "list_grammars", "list_problems",
    "list_suites", "load_grammar", "problem_from_csv", "random_programs", "resume", "run",
]
