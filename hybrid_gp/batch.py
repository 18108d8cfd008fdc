"""`hybrid-gp run --runs N`: a folder of runs, one per seed, that share a config.

DIR/batch.json holds the seeds and the config; DIR/seedN holds each run. `resume DIR`
reads finished seeds back, resumes the interrupted one and starts the rest, so a batch
is finished, never run twice.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from .console import print_result, print_summary, progress
from .errors import RunInterrupted, UserError

BATCH = "batch.json"  # a --runs folder: the seeds and the config the runs share


def new_batch(out: Path | None, problem: str, base: Any, seeds: list[int]) -> Path:
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


def read_batch(folder: Path) -> tuple[Any, list[int]]:
    from .config import from_json

    try:
        data = json.loads((folder / BATCH).read_text(encoding="utf-8"))
        seeds = [int(s) for s in data["seeds"]]
        config = from_json(json.dumps(data["config"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{folder / BATCH} is not a readable batch file ({exc})") from None
    return config, seeds


def run_batch(folder: Path, problem: Any, base: Any, seeds: list[int], quiet: bool) -> int:
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
            with progress(f"{problem.name} s{seed}", quiet) as on_event:
                if (out / CONFIG).exists():
                    result = resume(out, on_event=on_event)
                else:
                    result = run_config(seed_config(base, seed), problem=problem,
                                        out_dir=out, on_event=on_event)
        except (RunInterrupted, KeyboardInterrupt):
            raise RunInterrupted(f"run {k + 1} of {len(seeds)} (seed {seed}) stopped; "
                                 f"`hybrid-gp resume {folder}` finishes the batch") from None
        print_result(result)
        errors.append(result.best_error)
    print_summary(errors, problem.budget.target_error)
    return 0


def seed_config(base: Any, seed: int) -> Any:
    """One seed's config in a batch: its seed, and its own LLM transcript (calls.jsonl
    becomes calls.seed3.jsonl), since each run records or replays its own calls."""
    config = base.clone(override={"seed": seed})
    if config.llm is not None and config.llm.transcript:
        path = Path(config.llm.transcript)
        config.rebind({"llm.transcript": str(path.with_name(f"{path.stem}.seed{seed}"
                                                             f"{path.suffix}"))})
    return config
