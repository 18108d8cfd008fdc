"""Compile the kernels of a first run in parallel.

Numba compiles a kernel the first time it is called and caches it on disk. A first run
on a new machine would compile everything one kernel after another (tens of seconds);
`ensure_compiled` instead starts one subprocess per group of kernels, each calling its
kernels on tiny data with the very argument types a run uses, so the groups compile on
separate cores and fill the cache; the run then loads them from there. A marker file in
the cache says this was done for this version of hybrid_gp, numba and Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np

GROUPS = ("evaluation", "variation", "selection", "fitting", "subtrees", "threads")


def cache_dir() -> Path:
    """Where Numba caches the kernels: the package's __pycache__ when it is writable,
    NUMBA_CACHE_DIR's folder for it when that is set, Numba's user-wide cache for a
    read-only install. The markers live there too, so they say what that cache holds
    (and a read-only install does not warm up again on every run)."""
    from .interpreter import eval_batch_serial

    try:
        return Path(eval_batch_serial._cache._cache_path)
    except AttributeError:  # a Numba without this attribute: the package's own folder
        return Path(__file__).resolve().parent / "__pycache__"


def _marker(group: str) -> Path:
    from .._version import __version__

    tag = f"{__version__}-numba{numba.__version__}-py{sys.version_info[0]}{sys.version_info[1]}"
    return cache_dir() / f"warmup-{group}-{tag}.done"


def compile_group(group: str) -> None:
    """Call one group's kernels on tiny inputs (run in a subprocess)."""
    import hybrid_gp as hg
    from hybrid_gp.compiler import compile_batch
    from hybrid_gp.problem import get_problem

    problem = get_problem("nguyen-7")
    programs = hg.random_programs("koza", 8, 1, seed=0)
    if group == "evaluation":
        from hybrid_gp.hashing import fingerprint_array, structural_key_array

        batch = compile_batch(programs)
        hg.evaluate(programs, problem.train.X)
        problem.error(batch)
        from hybrid_gp.kernels.lru import LruTable

        keys = structural_key_array(batch)
        table = LruTable(4)
        table.put(keys[:, 0], keys[:, 1], np.arange(8), np.zeros(8))
        table.find(keys[:, 0], keys[:, 1], touch=True)
        table.in_order()
        fingerprint_array(np.zeros((2, 4)))
        problem.error_from_outputs(np.zeros((2, problem.train.n_rows)))
        batch.take([1, 0])
    elif group == "variation":  # the breeder alone: about 7 s, the longest group
        from hybrid_gp.operators.batch import breed_children, uniforms_per_child
        from hybrid_gp.operators.draws import ChildDraws

        grammar = problem.grammar
        ops = np.arange(8) % 5
        draws = ChildDraws(0, uniforms_per_child(grammar, 20, 2, 6))
        breed_children(programs, ops, ops, ops[::-1].copy(), draws, grammar, 1, 6, 20, 2)
    elif group == "selection":
        from hybrid_gp.genomes import Genomes
        from hybrid_gp.kernels.unique import first_occurrences
        from hybrid_gp.search.selection import lexicase, nsga2_ranks, nsga2_survivors

        rng = np.random.default_rng(0)
        Genomes.of(programs).take([1, 0])
        first_occurrences(np.arange(4))
        errors, sizes = rng.random(8), np.arange(8, dtype=np.float64)
        nsga2_ranks(errors, sizes)
        nsga2_survivors(errors, sizes, 4)
        lexicase(rng.random((8, 5)), 4, rng)
    elif group == "subtrees":  # the subtree store, for runs on many rows
        from hybrid_gp.subtrees import SubtreeStore

        batch = compile_batch(hg.random_programs("full", 8, 1, seed=0, min_depth=3))
        SubtreeStore(problem.train.XT, 4).mse(batch, problem.train.y)
    elif group == "threads":  # the kernels' threaded twins, for runs with n_jobs > 1
        from hybrid_gp.hashing import fingerprint_array, structural_key_array
        from hybrid_gp.operators.batch import breed_children, uniforms_per_child
        from hybrid_gp.operators.draws import ChildDraws
        from hybrid_gp.threads import forced, pool_answers

        grammar = problem.grammar
        many = programs * 64
        batch = compile_batch(many)
        ops = np.arange(len(many)) % 5
        draws = ChildDraws(0, uniforms_per_child(grammar, 20, 2, 6))
        with forced(True):  # the threaded kernels whatever this machine's timings say
            breed_children(many, ops, ops, ops[::-1].copy(), draws, grammar, 1, 6, 20, 2,
                           n_jobs=2)
            structural_key_array(batch, n_jobs=2)
            fingerprint_array(np.zeros((len(many), 4)), n_jobs=2)
            hg.evaluate(many, problem.train.X, n_jobs=2)
            problem.error(batch, n_jobs=2)
            from hybrid_gp.subtrees import SubtreeStore

            SubtreeStore(problem.train.XT, 4).mse(batch, problem.train.y, n_jobs=2)
        pool_answers(2)
    elif group == "fitting":
        from hybrid_gp.fitting import fit_batch

        full = get_problem("keijzer-1")
        fit_batch(hg.random_programs("full", 8, 1, seed=0), full, max_iter=2,
                  linear_scaling=True)
    else:
        raise ValueError(f"unknown kernel group {group!r}; expected one of {GROUPS}")


def ensure_compiled(groups: tuple[str, ...] = GROUPS) -> bool:
    """Compile the groups not compiled yet, in parallel subprocesses. Returns True when
    it compiled. Failures are harmless: kernels then compile on first use, as usual."""
    if os.environ.get("HYBRID_GP_NO_WARMUP"):
        return False
    todo = [g for g in groups if not _marker(g).exists()]
    if not todo:
        return False
    env = dict(os.environ, HYBRID_GP_NO_WARMUP="1")
    # Own sessions: a Ctrl-C at the terminal reaches this process only (a run then
    # stops at its first barrier), not the compilers, which would die mid-compile.
    procs = {g: subprocess.Popen([sys.executable, "-m", "hybrid_gp.kernels.warmup", g],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
             for g in todo}
    try:
        done = {g: p.wait() == 0 for g, p in procs.items()}
    finally:  # interrupted: leave no compiler behind
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    for g, ok in done.items():
        if ok:
            try:
                _marker(g).parent.mkdir(parents=True, exist_ok=True)
                _marker(g).write_text("compiled\n")
            except OSError:
                pass  # a read-only install: the next run warms up again, still correct
    return all(done.values())


if __name__ == "__main__":
    compile_group(sys.argv[1])
