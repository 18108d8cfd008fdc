"""hybrid_gp: evolve typed expression programs with classic GP and LLM rewrites.

Public names load on first use (PEP 562), so `import hybrid_gp` and the command line
start fast; `hg.SymbolicRegressor` pulls in scikit-learn only when touched.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

_WHERE = {
    "EquivalenceCache": "hashing", "functional_hash": "hashing",
    "Grammar": "grammar", "Primitive": "grammar", "list_grammars": "grammar",
    "load_grammar": "grammar",
    "LLMConfig": "llm.config",
    "ParseError": "errors", "UserError": "errors",
    "Problem": "problem", "get_problem": "problem", "list_problems": "problem",
    "list_suites": "problem",
    "Program": "program",
    "RunResult": "api", "resume": "api", "run": "api",
    "SymbolicRegressor": "estimator",
    "evaluate": "evaluation", "fitness": "evaluation",
    "problem_from_csv": "data",
    "random_programs": "generate",
}

__all__ = [
    "EquivalenceCache", "Grammar", "LLMConfig", "ParseError", "Primitive", "Problem",
    "Program", "RunResult", "SymbolicRegressor", "UserError", "__version__", "evaluate",
    "fitness", "functional_hash", "get_problem", "list_grammars", "list_problems",
    "list_suites", "load_grammar", "problem_from_csv", "random_programs", "resume", "run",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'hybrid_gp' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


if TYPE_CHECKING:
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
