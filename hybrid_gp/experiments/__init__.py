"""One-command reproducible experiments: `hybrid-gp experiment NAME --scale smoke|paper`.

Each experiment is a module with `run(scale, out_dir, seeds, **options) -> Path` that
writes docs/results/NAME.md (the command, seeds, machine, date and tables) with its
PNG plots beside it. Importing this package is cheap (no numpy, no matplotlib): the
modules load when an experiment runs, so the CLI can build its parser from here.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ..argtypes import OneLineParser, folder, positive_float
from ..errors import RunInterrupted, UserError
from ..registry import Registry

__all__ = ["DEFAULT_OUT", "EXPERIMENTS", "SCALES", "Experiment", "add_arguments",
           "list_experiments", "main", "run_experiment", "run_from_args"]

DEFAULT_OUT = Path("docs/results")
SCALES = ("smoke", "paper")


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its module is imported only when it runs."""

    name: str
    module: str
    summary: str

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    def run(self, scale: str = "smoke", out_dir: Path = DEFAULT_OUT,
            seeds: Sequence[int] | None = None, **options: Any) -> Path:
        return self.load().run(scale, Path(out_dir), seeds, **options)


EXPERIMENTS: Registry[Experiment] = Registry("experiment")


def _register(name: str, summary: str) -> None:
    EXPERIMENTS.register(name, Experiment(name, f"{__name__}.{name}", summary))


_register("ufh", "issue 4: evaluations skipped by the functional hash, wall time with and "
                 "without the cache at 20/1k/10k rows, collision sweep in audit mode")
_register("nguyen", "issue 5: exact recovery on Nguyen-1..12 against pyoperon, gplearn and "
                    "the published DSR/NGGP rates")


def list_experiments() -> list[str]:
    return EXPERIMENTS.names()


def run_experiment(name: str, scale: str = "smoke", out_dir: str | Path = DEFAULT_OUT,
                   seeds: Sequence[int] | None = None, **options: Any) -> Path:
    """Run experiment `name`; returns the path of the Markdown report it wrote."""
    if scale not in SCALES:
        raise UserError(f"--scale must be one of {', '.join(SCALES)}, got {scale!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} is a file; it must be a folder (it is made "
                        f"when missing)")
    return EXPERIMENTS.get(name).run(scale, Path(out_dir), seeds, **options)


# ---------------------------------------------------------------------- command line


def _int_list(text: str) -> list[int]:
    """`0,1,2` or `0-9` (inclusive) or a mix: `0-4,7`."""
    out: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            lo, sep, hi = part.partition("-")
            out += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 0,1,2 or 0-9, got "
                                         f"{text!r}") from None
    if not out or min(out) < 0:
        raise argparse.ArgumentTypeError(f"expected seeds >= 0, got {text!r}")
    return out


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The experiment command's arguments, on any parser (the CLI's subparser too)."""
    p.add_argument("name", help=f"experiment: {', '.join(list_experiments())} "
                                "(or `list`)")
    p.add_argument("--scale", choices=SCALES, default="smoke",
                   help="smoke: about a minute, for CI; paper: the full experiment")
    p.add_argument("--out", type=folder, default=DEFAULT_OUT,
                   help=f"folder for NAME.md and plots (default {DEFAULT_OUT})")
    p.add_argument("--seeds", type=_int_list, default=None,
                   help="seeds, e.g. 0,1,2 or 0-9 (default: the scale's)")
    p.add_argument("--problems", default=None,
                   help="nguyen: comma-separated problems (default: nguyen-1..12)")
    p.add_argument("--budget", type=positive_float, default=None,
                   help="nguyen: wall seconds per run (default: the scale's)")
    p.add_argument("--methods", default=None,
                   help="nguyen: comma-separated of hybrid_gp, pyoperon, gplearn")
    p.add_argument("--baseline-seeds", type=_int_list, default=None,
                   help="nguyen: run the baselines on these seeds only (default: all)")
    p.add_argument("--resume", action="store_true",
                   help="keep the finished runs of an interrupted experiment "
                        "(NAME.runs.jsonl in --out) and run only the rest")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def build_parser(prog: str = "python -m hybrid_gp.experiments") -> argparse.ArgumentParser:
    return add_arguments(OneLineParser(prog=prog, description="Run a reproducible experiment; it "
                                                        "writes NAME.md and PNG plots into "
                                                        "--out."))


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"quiet": args.quiet}
    if args.problems is not None:
        options["problems"] = tuple(s.strip() for s in args.problems.split(",") if s.strip())
    if args.budget is not None:
        options["budget"] = args.budget
    if args.methods is not None:
        options["methods"] = tuple(s.strip() for s in args.methods.split(",") if s.strip())
    if args.baseline_seeds is not None:
        options["baseline_seeds"] = tuple(args.baseline_seeds)
    if args.resume:
        options["resume"] = True
    return options


def run_from_args(args: argparse.Namespace) -> int:
    """Run what parsed arguments ask for; print the report's path. User mistakes raise
    UserError (the caller prints one line and exits with status 2)."""
    if args.name == "list":
        for name in list_experiments():
            print(f"{name:10s} {EXPERIMENTS.get(name).summary}")
        return 0
    print(run_experiment(args.name, args.scale, args.out, args.seeds, **_options(args)))
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m hybrid_gp.experiments"
         ) -> int:
    """The command line; returns the exit status (0 done, 2 usage error, 1 failure)."""
    args = build_parser(prog).parse_args(argv)
    try:
        return run_from_args(args)
    except UserError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as exc:
        print(f"{prog}: interrupted: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a runtime failure: one line unless debugging
        if os.environ.get("HYBRID_GP_DEBUG"):
            raise
        print(f"{prog}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
