"""The first-run warm-up: kernel groups compile in subprocesses that a Ctrl-C at the
terminal does not reach, and none is left running when the warm-up is interrupted."""

from __future__ import annotations

import subprocess

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
