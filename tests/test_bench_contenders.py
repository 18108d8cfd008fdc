"""The evaluators `hybrid-gp bench eval` times compute the same outputs, and the
compile-and-evaluate pair really compiles inside every timed run."""

from __future__ import annotations

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.bench import contenders as cont

pytest.importorskip("deap")


@pytest.fixture(scope="module")
def trees_and_data() -> tuple[list[hg.Program], np.ndarray]:
    programs = hg.random_programs("full", 60, 2, seed=3, min_depth=2, max_depth=5)
    X = np.random.default_rng(3).uniform(-3.0, 3.0, size=(40, 2))
    return programs, X


def _outputs(ev: cont.Evaluator) -> np.ndarray:
    ev.run(1)
    out = ev.outputs()
    assert out is not None
    return np.array(out, dtype=np.float64)


def test_compiling_evaluators_give_what_their_precompiled_twins_give(trees_and_data):
    programs, X = trees_and_data
    ours = _outputs(cont.kernel(programs, X, "float64", (1,)))
    ours_compiling = _outputs(cont.kernel(programs, X, "float64", (1,), compile_each=True))
    ours_objects = _outputs(cont.kernel(programs, X, "float64", (1,), compile_each=True,
                                        from_programs=True))
    deap = _outputs(cont.deap_compiled(programs, X))
    deap_compiling = _outputs(cont.deap_compiled(programs, X, compile_each=True))
    np.testing.assert_array_equal(ours_compiling, ours)
    np.testing.assert_array_equal(ours_objects, ours)
    np.testing.assert_array_equal(deap_compiling, deap)
    assert np.array_equal(np.isfinite(ours), np.isfinite(deap))
    both = np.isfinite(ours) & np.isfinite(deap)
    close = np.isclose(ours[both], deap[both], rtol=1e-9, atol=0.0)
    assert close.mean() > 0.99  # a few-ULP math difference can blow up in a deep tree


def test_compile_each_compiles_inside_every_run(trees_and_data, monkeypatch):
    from deap import gp

    programs, X = trees_and_data
    calls = {"deap": 0, "flat": 0, "programs": 0}

    def counting(key, real):
        def call(*args, **kwargs):
            calls[key] += 1
            return real(*args, **kwargs)
        return call

    monkeypatch.setattr(gp, "compile", counting("deap", gp.compile))
    monkeypatch.setattr(cont, "compile_arrays", counting("flat", cont.compile_arrays))
    monkeypatch.setattr(cont, "compile_batch", counting("programs", cont.compile_batch))
    deap = cont.deap_compiled(programs, X, compile_each=True)
    flat = cont.kernel(programs, X, "float64", (1,), compile_each=True)
    objects = cont.kernel(programs, X, "float64", (1,), compile_each=True,
                          from_programs=True)
    before = dict(calls)
    for _ in range(3):
        deap.run(1)
        flat.run(1)
        objects.run(1)
    assert calls["deap"] - before["deap"] == 3 * len(programs)
    assert calls["flat"] - before["flat"] == 3
    assert calls["programs"] - before["programs"] == 3
    assert deap.baseline == flat.baseline == objects.baseline == cont.OURS_COMPILING
    assert (flat.name, objects.name) == (cont.OURS_COMPILING, cont.OURS_COMPILING_PROGRAMS)


def test_precompiled_evaluators_compile_nothing_while_timed(trees_and_data, monkeypatch):
    from deap import gp

    programs, X = trees_and_data
    deap = cont.deap_compiled(programs, X)
    ours = cont.kernel(programs, X, "float64", (1,))

    def refuse(*args, **kwargs):
        raise AssertionError("compiled inside a timed run")

    monkeypatch.setattr(gp, "compile", refuse)
    monkeypatch.setattr(cont, "compile_batch", refuse)
    monkeypatch.setattr(cont, "compile_arrays", refuse)
    deap.run(1)
    ours.run(1)
