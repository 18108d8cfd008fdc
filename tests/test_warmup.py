"""The first-run warm-up: kernel groups compile in subprocesses that a Ctrl-C at the
terminal does not reach, and none is left running when the warm-up is interrupted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid_gp.kernels import warmup


def test_a_group_compiles_in_its_own_session_and_leaves_its_marker(tmp_path, monkeypatch):
    started = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        started.append(kwargs)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(warmup, "_marker", lambda group: tmp_path / f"{group}.done")
    monkeypatch.setattr(warmup.subprocess, "Popen", popen)
    monkeypatch.delenv("HYBRID_GP_NO_WARMUP", raising=False)
    assert warmup.ensure_compiled(("evaluation",)) is True
    assert (tmp_path / "evaluation.done").exists()
    assert [k["start_new_session"] for k in started] == [True]
    assert warmup.ensure_compiled(("evaluation",)) is False  # marked: nothing to do


def test_an_interrupted_warm_up_kills_its_compilers(tmp_path, monkeypatch):
    procs, asked = [], []
    real_popen = subprocess.Popen

    class Interrupted(real_popen):
        def __init__(self, *args, **kwargs):
            super().__init__(["sleep", "30"], **kwargs)
            procs.append(self)

        def wait(self, timeout=None):
            if not asked:  # Ctrl-C while waiting for the first compiler
                asked.append(True)
                raise KeyboardInterrupt
            return super().wait(timeout)

    monkeypatch.setattr(warmup, "_marker", lambda group: tmp_path / f"{group}.done")
    monkeypatch.setattr(warmup.subprocess, "Popen", Interrupted)
    monkeypatch.delenv("HYBRID_GP_NO_WARMUP", raising=False)
    with pytest.raises(KeyboardInterrupt):
        warmup.ensure_compiled(("evaluation", "variation"))
    assert len(procs) == 2 and all(p.poll() is not None for p in procs)


def test_the_markers_live_where_numba_caches_the_kernels(tmp_path):
    """With NUMBA_CACHE_DIR set (or a read-only install, where Numba falls back to a
    user-wide cache) the kernels are not cached in the package's __pycache__; the
    markers must follow them, or a filled cache would be warmed up again on every run
    and an empty one taken for filled."""
    code = ("from hybrid_gp.kernels import interpreter, warmup; "
            "print(warmup._marker('evaluation')); "
            "print(interpreter.eval_batch_serial._cache._cache_path)")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    marker, kernels = map(Path, subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True,
        check=True).stdout.split())
    assert marker.name.startswith("warmup-evaluation-")
    assert marker.parent == kernels and kernels.parent == tmp_path


_SPECIALISED = """
import importlib
from numba.core.registry import CPUDispatcher
from hybrid_gp.kernels import warmup
for group in ("variation", "fitting"):
    warmup.compile_group(group)
for name in ("variation", "jacobian", "vecmath"):
    module = importlib.import_module("hybrid_gp.kernels." + name)
    for f in vars(module).values():
        if isinstance(f, CPUDispatcher) and len(f.signatures) > 1:
            print(name, f.__name__, [str(t) for s in f.signatures for t in s])
"""


@pytest.mark.slow
def test_the_kernels_of_a_run_compile_once_each(tmp_path):
    """Numba compiles a jitted callee again for every Python constant passed to it (a
    literal type) and, while inferring types, for a counter's constant first value:
    seconds of a first run's compile. Compiling the variation and fitting groups in a
    fresh cache must leave one signature per function (a cached load would show none,
    hence the empty cache)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), HYBRID_GP_NO_WARMUP="1")
    out = subprocess.run([sys.executable, "-c", _SPECIALISED], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out == ""
