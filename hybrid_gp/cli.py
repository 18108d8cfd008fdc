"""`hybrid-gp`: the problem-suite command line, a thin face over hybrid_gp.api.

Exit status: 0 done; 2 a usage or config error (one line naming what was wrong);
1 a runtime failure. Set HYBRID_GP_DEBUG=1 to see tracebacks.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .argtypes import (
    OneLineParser,
    folder,
    non_negative_int,
    positive_float,
    positive_int,
    share,
)
from .batch import BATCH, new_batch, read_batch, run_batch
from .console import print_result, progress
from .errors import RunInterrupted, UserError


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="hybrid-gp",
                           description="Evolve programs with GP and LLM rewrites.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)

    p = sub.add_parser("list", help="list the shipped problems")
    p.add_argument("--suite", help="only this suite (nguyen, keijzer, ...)")

    p = sub.add_parser("run", help="evolve programs for a problem")
    p.add_argument("problem", nargs="?", help="problem name (see `hybrid-gp list`)")
    p.add_argument("--data", type=Path, help="a CSV file (header row) instead of PROBLEM")
    p.add_argument("--target", help="with --data: the column to predict")
    p.add_argument("--drop-nan", action="store_true",
                   help="with --data: drop rows with missing values instead of refusing them")
    p.add_argument("--grammar", default=None, help="with --data: grammar (default full)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="root seed (default 0)")
    p.add_argument("--runs", type=positive_int, default=1,
                   help="number of runs, seeds SEED..SEED+RUNS-1")
    p.add_argument("--max-evals", type=positive_int, default=None,
                   help="real evaluations (cache hits are free)")
    p.add_argument("--time-budget", type=positive_float, default=None, help="wall seconds")
    p.add_argument("--out", type=folder, default=None,
                   help="run directory (default runs/PROBLEM-sSEED-TIME)")
    p.add_argument("--n-jobs", type=int, default=1, help="evaluation threads (-1: all cores)")
    p.add_argument("--llm-model", help="add LLM operators using this model")
    p.add_argument("--llm-base-url", help="OpenAI-compatible endpoint (default: OpenAI)")
    p.add_argument("--llm-rate", type=share, help="share of children asked of the LLM")
    p.add_argument("--llm-mode", choices=["live", "record", "replay", "replay-or-live"],
                   help="live (default), record, replay (offline) or replay-or-live")
    p.add_argument("--llm-transcript", type=Path, help="JSONL transcript to record/replay")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="PATH=VALUE", help="any config field, e.g. search.population_size=200")
    p.add_argument("--quiet", action="store_true", help="no progress line")

    p = sub.add_parser("bench", help="benchmarks: eval (kernels) or run (whole runs)")
    p.add_argument("which", choices=["eval", "run"], help="eval: evaluation throughput vs "
                   "DEAP, numpy, pyoperon; run: whole runs vs pyoperon")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="options of that benchmark "
                   "(see hybrid-gp bench eval --help)")

    from .experiments import add_arguments as experiment_arguments

    experiment_arguments(sub.add_parser("experiment", help="run a reproducible experiment "
                                                           "(writes docs/results/NAME.md)"))

    p = sub.add_parser("report", help="write PNG plots and summary.md into a run directory")
    p.add_argument("dir", type=Path, help="the run directory")

    p = sub.add_parser("resume", help="continue an interrupted run from its checkpoint")
    p.add_argument("dir", type=Path, help="the run directory")
    p.add_argument("--quiet", action="store_true", help="no progress line")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(__version__)
        return 0
    if not args.command:
        parser.print_help()
        return 2
    try:
        return _COMMANDS[args.command](args)
    except UserError as exc:
        print(f"hybrid-gp {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except RunInterrupted as exc:
        print(f"hybrid-gp {args.command}: interrupted: {exc}", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and friends
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stays open until exit
        return 0
    except KeyboardInterrupt:  # a second Ctrl-C, or one before the run's first barrier
        hint = ("; `hybrid-gp resume DIR` continues a run whose directory holds "
                "config.json" if args.command in ("run", "resume") else "")
        print(f"hybrid-gp {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    except Exception as exc:  # a runtime failure: one line, unless debugging
        if os.environ.get("HYBRID_GP_DEBUG"):
            raise
        print(f"hybrid-gp {args.command}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


# ---------------------------------------------------------------------- commands


def _cmd_list(args: argparse.Namespace) -> int:
    from .problem import get_problem, list_problems

    names = list_problems(args.suite)
    print(f"{'suite':<10} {'name':<20} {'vars':>4} {'rows':>7}  {'grammar':<8} description")
    for name in names:
        p = get_problem(name)
        print(f"{p.suite:<10} {p.name:<20} {p.n_features:>4} {p.n_cases:>7}  "
              f"{p.grammar.name:<8} {p.description}")
    return 0


def _problem_and_config(args: argparse.Namespace) -> tuple[Any, Any]:
    from .api import make_config
    from .config import DataSource, apply_overrides
    from .problem import get_problem

    if (args.problem is None) == (args.data is None):
        raise UserError("give either a PROBLEM name or --data FILE.csv --target COLUMN")
    if args.data is not None:
        from .data import file_digest, problem_from_csv

        if not args.target:
            raise UserError("--data needs --target COLUMN (the column to predict)")
        source = DataSource(path=str(args.data.resolve()), target=args.target,
                            drop_nan=args.drop_nan, grammar=args.grammar or "full",
                            sha256=file_digest(args.data))
        problem = problem_from_csv(source.path, source.target, drop_nan=source.drop_nan,
                                   grammar=source.grammar)
        base = make_config(problem.name, args.seed, args.max_evals, args.time_budget,
                           args.n_jobs).clone(override={"data": source})
    else:
        if args.target or args.drop_nan or args.grammar:
            raise UserError("--target, --drop-nan and --grammar go with --data")
        problem = get_problem(args.problem)
        base = make_config(problem.name, args.seed, args.max_evals, args.time_budget,
                           args.n_jobs)
    _refuse_identity_overrides(args.overrides)
    llm, preset = _llm_config(args)
    if llm is not None:
        base = base.clone(override={"llm": llm})
    return problem, apply_overrides(base, args.overrides, preset)


# Fields that say which run this is: they have their own options, and a --set would
# change config.json without changing the run.
_IDENTITY = {"problem": "give the problem as `hybrid-gp run PROBLEM`",
             "seed": "use --seed", "data": "use --data, --target, --drop-nan and --grammar"}


def _refuse_identity_overrides(assignments: list[str]) -> None:
    for item in assignments:
        head = item.partition("=")[0].strip().split(".")[0]
        if head in _IDENTITY:
            raise UserError(f"--set {item.partition('=')[0].strip()}: {_IDENTITY[head]}")


def _llm_config(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """An LLMConfig for --llm-model (None when no model is named), and the other
    --llm-* flags as llm.* settings, checked together with any --set llm.*."""
    given = {"base_url": args.llm_base_url, "rate": args.llm_rate, "mode": args.llm_mode,
             # absolute: a resume from another folder must find the same file
             "transcript": str(args.llm_transcript.resolve()) if args.llm_transcript
             else None}
    if args.llm_model is None:
        extra = [f"--llm-{k.replace('_', '-')}" for k, v in given.items() if v is not None]
        if extra:
            raise UserError(f"{extra[0]} needs --llm-model")
        return None, {}
    from .llm.config import LLMConfig

    return (LLMConfig(model=args.llm_model),
            {f"llm.{k}": v for k, v in given.items() if v is not None})


def _cmd_run(args: argparse.Namespace) -> int:
    from .api import run_config

    problem, base = _problem_and_config(args)
    if args.runs > 1:
        seeds = list(range(args.seed, args.seed + args.runs))
        batch = new_batch(args.out, problem.name, base, seeds)
        return run_batch(batch, problem, base, seeds, args.quiet)
    out = _run_dir(args.out, problem.name, args.seed)
    config = base.clone(override={"seed": args.seed})
    with progress(f"{problem.name} s{args.seed}", args.quiet) as on_event:
        result = run_config(config, problem=problem, out_dir=out, on_event=on_event)
    print_result(result)
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from .api import problem_for, resume

    if (args.dir / BATCH).exists():
        base, seeds = read_batch(args.dir)
        return run_batch(args.dir, problem_for(base), base, seeds, args.quiet)
    with progress(str(args.dir), args.quiet) as on_event:
        result = resume(args.dir, on_event=on_event)
    print_result(result)
    return 0


def _run_dir(out: Path | None, problem: str, seed: int) -> Path:
    if out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        return Path("runs") / f"{problem}-s{seed}-{stamp}"
    if (out / BATCH).exists():
        raise UserError(f"{out} holds a batch of runs (--runs); choose another --out")
    if (out / "config.json").exists():
        from .runlog import finished

        if finished(out):
            raise UserError(f"{out} already holds a finished run; choose another --out")
        raise UserError(f"{out} already holds a run; resume it with `hybrid-gp resume {out}` "
                        f"or choose another --out")
    return out


def _cmd_experiment(args: argparse.Namespace) -> int:
    from .experiments import run_from_args

    return run_from_args(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    if (args.dir / BATCH).exists():  # a --runs folder: each seed's run that has begun
        _, seeds = read_batch(args.dir)
        dirs = [args.dir / f"seed{s}" for s in seeds if (args.dir / f"seed{s}").is_dir()]
        if not dirs:
            raise UserError(f"{args.dir} is a batch of runs none of which has begun; "
                            f"`hybrid-gp resume {args.dir}` runs them")
    else:
        dirs = [args.dir]
    for run_dir in dirs:
        for path in write_report(run_dir):
            print(path)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.which == "eval":
        from .bench.eval import main as bench_main
    else:
        from .bench.run import main as bench_main
    return bench_main(args.rest)


_COMMANDS = {"list": _cmd_list, "run": _cmd_run, "resume": _cmd_resume, "bench": _cmd_bench,
             "report": _cmd_report, "experiment": _cmd_experiment}
