"""`hybrid-gp`: the problem-suite command line, a thin face over hybrid_gp.api.

Exit status: 0 done; 2 a usage or config error (one line naming what was wrong);
1 a runtime failure. Set HYBRID_GP_DEBUG=1 to see tracebacks.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
    except KeyboardInterrupt:
        print(f"hybrid-gp {args.command}: interrupted", file=sys.stderr)
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
        batch = _new_batch(args.out, problem.name, base, seeds)
        return _run_batch(batch, problem, base, seeds, args.quiet)
    out = _run_dir(args.out, problem.name, args.seed)
    config = base.clone(override={"seed": args.seed})
    with _progress(f"{problem.name} s{args.seed}", args.quiet) as on_event:
        result = run_config(config, problem=problem, out_dir=out, on_event=on_event)
    _print_result(result)
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    from .api import problem_for, resume

    if (args.dir / BATCH).exists():
        base, seeds = _read_batch(args.dir)
        return _run_batch(args.dir, problem_for(base), base, seeds, args.quiet)
    with _progress(str(args.dir), args.quiet) as on_event:
        result = resume(args.dir, on_event=on_event)
    _print_result(result)
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


# ---------------------------------------------------------------------- --runs N

BATCH = "batch.json"  # a --runs folder: the seeds and the config the runs share


def _new_batch(out: Path | None, problem: str, base: Any, seeds: list[int]) -> Path:
    """The folder of a --runs batch, with batch.json written (refused when it holds a
    run or a batch already: a batch is finished with `resume`, never run twice)."""
    from .config import to_json
    from .runlog import CONFIG

    if out is None:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path("runs") / f"{problem}-s{seeds[0]}-x{len(seeds)}-{stamp}"
    if (out / BATCH).exists():
        raise UserError(f"{out} already holds a batch of runs; `hybrid-gp resume {out}` "
                        f"finishes it, or choose another --out")
    if (out / CONFIG).exists() or any((out / f"seed{s}" / CONFIG).exists() for s in seeds):
        raise UserError(f"{out} already holds a run; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"seeds": seeds, "config": json.loads(to_json(base))}, indent=2)
        (out / BATCH).write_text(text + "\n", encoding="utf-8")
    except OSError as exc:
        raise UserError(f"cannot write the batch folder {out}: {exc.strerror}") from None
    return out


def _read_batch(folder: Path) -> tuple[Any, list[int]]:
    from .config import from_json

    try:
        data = json.loads((folder / BATCH).read_text(encoding="utf-8"))
        seeds = [int(s) for s in data["seeds"]]
        config = from_json(json.dumps(data["config"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{folder / BATCH} is not a readable batch file ({exc})") from None
    return config, seeds


def _run_batch(folder: Path, problem: Any, base: Any, seeds: list[int], quiet: bool) -> int:
    """Each seed's run in folder/seedN: finished ones are read back, interrupted ones
    resumed, the rest started; then the summary over all of them."""
    from .api import resume, run_config
    from .runlog import CONFIG, finished

    errors = []
    for k, seed in enumerate(seeds):
        out = folder / f"seed{seed}"
        end = finished(out)
        if end is not None:
            error = end.get("best_error")
            errors.append(math.inf if error is None else float(error))
            print(f"{problem.name} seed {seed}: finished earlier (stopped by "
                  f"{end.get('stop_reason')}), train {problem.metric} {errors[-1]:.3g}; "
                  f"run directory: {out}")
            continue
        try:
            with _progress(f"{problem.name} s{seed}", quiet) as on_event:
                if (out / CONFIG).exists():
                    result = resume(out, on_event=on_event)
                else:
                    result = run_config(_seed_config(base, seed), problem=problem,
                                        out_dir=out, on_event=on_event)
        except (RunInterrupted, KeyboardInterrupt):
            raise RunInterrupted(f"run {k + 1} of {len(seeds)} (seed {seed}) stopped; "
                                 f"`hybrid-gp resume {folder}` finishes the batch") from None
        _print_result(result)
        errors.append(result.best_error)
    _print_summary(errors, problem.budget.target_error)
    return 0


def _seed_config(base: Any, seed: int) -> Any:
    """One seed's config in a batch: its seed, and its own LLM transcript (calls.jsonl
    becomes calls.seed3.jsonl), since each run records or replays its own calls."""
    config = base.clone(override={"seed": seed})
    if config.llm is not None and config.llm.transcript:
        path = Path(config.llm.transcript)
        config.rebind({"llm.transcript": str(path.with_name(f"{path.stem}.seed{seed}"
                                                             f"{path.suffix}"))})
    return config


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[Callable[[dict[str, Any]], None] | None]:
    """The on_event callback of a progress line (None when quiet), closed after."""
    progress = None if quiet else _Progress(label)
    try:
        yield progress.update if progress else None
    finally:
        if progress:
            progress.close()


class _Progress:
    """One status line on stderr: redrawn in place on a terminal, else every 2 s."""

    def __init__(self, label: str):
        self.label = label
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def update(self, event: dict[str, Any]) -> None:
        if event.get("event") != "progress":
            return
        now = time.monotonic()
        if not self.tty and now - self.last < 2.0:
            return
        self.last = now
        rate = event["clock"].get("evaluations_per_second") or 0.0
        best = event["best_error"]
        line = (f"{self.label} | gen {event['generation']:>5} | best {_fmt(best)} | "
                f"size {event['best_complexity'] or 0:>4.0f} | {event['evaluations']:>9,} evals "
                f"| {rate / 1000:7.1f}k evals/s")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _fmt(x: float | None) -> str:
    return "     inf" if x is None else f"{x:8.2e}"


def _print_result(result: Any) -> None:
    from .convert import readable_sympy

    s = result.stats
    p = result.problem
    print(f"{p.name} seed {result.config.seed}: stopped by {result.stop_reason} after "
          f"{s['generations']} generations, {s['evaluations']:,} evaluations "
          f"({s['cache_hits']:,} cache hits) in {s['wall_seconds']:.1f} s")
    if result.best is None:
        print("  no program was scored")
        return
    metric = p.metric
    named = p.variables and any(v != f"x{k}" for k, v in enumerate(p.variables))
    print(f"best: {readable_sympy(result.best, p.variables if named else None)}")
    if p.kind == "regression":
        from .simplify import guarded_rows

        rows = guarded_rows(result.best, p.train.X)
        if rows:
            print(f"  note: on {rows} of {p.train.n_rows} training rows this plain formula "
                  f"differs from the program, whose guarded /, log, sqrt and ** "
                  f"(docs/semantics.md) give the error below; the program line is exact")
    print(f"  train {metric} {result.best_error:.3g}, size {result.best.size}"
          + (f", test {metric} {result.test_error:.3g}" if result.test_error is not None
             else ""))
    print(f"  program: {result.best}")
    if named:
        print("  variables: " + ", ".join(f"x{k} = {v}" for k, v in enumerate(p.variables)))
    for name, value in p.baselines().items():
        print(f"  baseline {name}: {value:.4g}")
    if result.out_dir is not None:
        print(f"  run directory: {result.out_dir}")


def _print_summary(errors: list[float], target_error: float) -> None:
    solved = sum(e <= target_error for e in errors)
    print(f"\n{len(errors)} runs: median train error {statistics.median(errors):.3g}; "
          f"{solved} reached the target error")


def _cmd_experiment(args: argparse.Namespace) -> int:
    from .experiments import run_from_args

    return run_from_args(args)


def _cmd_report(args: argparse.Namespace) -> int:
    from .report import write_report

    if (args.dir / BATCH).exists():  # a --runs folder: each seed's run that has begun
        _, seeds = _read_batch(args.dir)
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
