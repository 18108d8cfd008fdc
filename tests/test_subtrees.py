"""The subtree store: its plan matches the plain-Python twin, and errors computed with
loaded subtrees are bit for bit the plain kernel's, over generations that share
subtrees, with eviction, on one and two threads."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp.api import make_config, run_config
from hybrid_gp.compiler import CompiledBatch, _finish, compile_batch
from hybrid_gp.config import apply_overrides
from hybrid_gp.errors import ConfigError
from hybrid_gp.evaluation import mse_features
from hybrid_gp.hashing import EquivalenceCache
from hybrid_gp.kernels import opcodes as oc
from hybrid_gp.kernels import reference_subtrees as ref
from hybrid_gp.kernels.subtrees import MIN_COST
from hybrid_gp.problem import Problem
from hybrid_gp.search.scoring import Scorer
from hybrid_gp.subtrees import SUBTREE_MIN_ROWS, SubtreeStore
from hybrid_gp.threads import forced

Prog = tuple[list[int], list[float]]


def _split(batch: CompiledBatch) -> list[Prog]:
    return [(batch.codes[a:b].tolist(), batch.consts[c:d].tolist())
            for a, b, c, d in zip(batch.code_offsets[:-1], batch.code_offsets[1:],
                                  batch.const_offsets[:-1], batch.const_offsets[1:],
                                  strict=True)]


def _batch(programs: list[Prog]) -> CompiledBatch:
    codes = np.array([c for p in programs for c in p[0]], dtype=np.int32)
    consts = np.array([v for p in programs for v in p[1]], dtype=np.float64)
    code_off = np.cumsum([0] + [len(p[0]) for p in programs]).astype(np.int64)
    const_off = np.cumsum([0] + [len(p[1]) for p in programs]).astype(np.int64)
    return _finish(codes, code_off, consts, const_off)


def _root_children(program: Prog) -> list[Prog]:
    """The subtrees hanging from the root, each with its constants."""
    codes, consts = program
    if codes[0] < 0:
        return []
    out, k, q = [], 1, 0
    for _ in range(int(oc.ARITY[codes[0]])):
        need, j = 1, k
        while need:
            need += (int(oc.ARITY[codes[j]]) if codes[j] >= 0 else 0) - 1
            j += 1
        n_consts = sum(1 for c in codes[k:j] if c == -1)
        out.append((codes[k:j], consts[q:q + n_consts]))
        k, q = j, q + n_consts
    return out


def _generations(seed: int, n_programs: int = 60, n_generations: int = 6
                 ) -> list[CompiledBatch]:
    """Batches whose programs join root subtrees of earlier batches' programs under a
    new root, with some fresh random programs: the sharing crossover makes."""
    rng = np.random.default_rng(seed)
    fresh = lambda s: _split(compile_batch(hg.random_programs(  # noqa: E731
        "full", n_programs, 2, seed=s, min_depth=2, max_depth=5)))
    first = fresh(seed)
    batches, pool = [_batch(first)], [c for p in first for c in _root_children(p)]
    binary = [oc.ADD, oc.SUB, oc.MUL, oc.DIV, oc.POW]
    for g in range(1, n_generations):
        programs = []
        new_random = fresh(seed * 100 + g)
        for k in range(n_programs):
            if k % 5 == 0:
                programs.append(new_random[k])
                continue
            a, b = (pool[i] for i in rng.integers(len(pool), size=2))
            op = int(binary[rng.integers(len(binary))])
            if k % 7 == 0:  # a whole earlier subtree as a program
                programs.append(a)
            else:
                programs.append(([op, *a[0], *b[0]], [*a[1], *b[1]]))
        batches.append(_batch(programs))
        pool += [c for p in programs for c in _root_children(p)]
    return batches


def _data(n_rows: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    XT = rng.uniform(-3.0, 3.0, size=(2, n_rows))
    XT[0, ::17] = 0.0  # log(0), division by 0: protected and non-finite outputs
    XT[1, ::23] = 700.0  # exp overflows to inf
    y = np.sin(XT[0]) + XT[1] ** 2
    return np.ascontiguousarray(XT), y


@pytest.mark.parametrize("capacity", [1, 4, 40, 4096])
def test_plan_matches_the_twin(capacity):
    XT, _ = _data(64)
    store = SubtreeStore(XT, capacity)
    twin = ref.SubtreePlanReference(capacity, base=XT.shape[0])
    for batch in _generations(seed=capacity, n_generations=8):
        may_store = store.storing
        children, stores, slots = store.plan(batch)
        want_children, want_stores, want_slots = twin.plan(_split(batch), may_store)
        assert _split(children) == want_children
        assert _split(stores) == want_stores
        assert slots.tolist() == want_slots
    assert store.counts.tolist() == [twin.loads, twin.nodes_loaded, twin.stores,
                                     twin.cost_loaded]
    assert store.loads > 0 and store.stores > 0  # the generations do share subtrees


@pytest.mark.parametrize("n_jobs", [1, 2])
@pytest.mark.parametrize("capacity", [3, 50, 4096])
def test_errors_with_loaded_subtrees_are_the_plain_kernels_bit_for_bit(n_jobs, capacity):
    XT, y = _data(3000)
    store = SubtreeStore(XT, capacity)
    saw_inf = False
    with forced(n_jobs > 1):
        for batch in _generations(seed=7 + capacity):
            got = store.mse(batch, y, n_jobs)
            want = mse_features(batch, XT, y, n_jobs)
            np.testing.assert_array_equal(got, want)
            saw_inf |= bool(np.isinf(want).any())
    assert saw_inf  # the data make some programs non-finite
    assert store.nodes_loaded > 0


def test_the_twins_planned_evaluation_gives_the_twins_plain_errors():
    XT, y = _data(300)
    base = XT.shape[0]
    capacity = 30
    twin = ref.SubtreePlanReference(capacity, base)
    extended = np.zeros((base + capacity, XT.shape[1]))
    extended[:base] = XT
    from hybrid_gp.kernels.reference import evaluate_batch, mse_batch

    for batch in _generations(seed=3):
        programs, stores, slots = twin.plan(_split(batch))
        got = ref.mse_planned(programs, stores, slots, extended, y, base)
        want = mse_batch(evaluate_batch(batch.codes, batch.code_offsets, batch.consts,
                                        batch.const_offsets, XT), y)
        np.testing.assert_array_equal(got, want)


def test_a_slot_used_in_a_batch_is_not_evicted_in_it():
    XT, y = _data(2000)
    store = SubtreeStore(XT, 1)
    sin_x0 = [oc.SIN, -2]  # cost 9 >= MIN_COST
    cos_x1 = [oc.COS, -3]
    assert MIN_COST <= 9
    first = _batch([([oc.ADD, *sin_x0, -3], [])])
    store.mse(first, y)
    assert (store.stores, store.loads) == (1, 0)
    # sin(x0) is loaded from the only slot, so cos(x1) finds no slot to take
    second = _batch([([oc.MUL, *sin_x0, *cos_x1], [])])
    children, stores, slots = store.plan(second)
    assert stores.n_programs == 0 and store.loads == 1
    assert children.codes.tolist() == [oc.MUL, -(2 + 0) - 2, *cos_x1]
    # the next batch may evict it
    third = _batch([([oc.MUL, *cos_x1, -2], [])])
    _, stores, slots = store.plan(third)
    assert stores.codes.tolist() == cos_x1 and slots.tolist() == [0]


def test_store_programs_never_load_a_slot_made_in_their_batch():
    XT, y = _data(2000)
    store = SubtreeStore(XT, 10)
    inner = [oc.SIN, -2]
    outer = [oc.EXP, *inner]
    batch = _batch([([oc.ADD, *inner, -3], []), ([oc.ADD, *outer, -3], [])])
    children, stores, slots = store.plan(batch)
    # sin(x0) gets slot 0; exp(sin(x0)) is stored computing sin(x0) itself
    assert _split(stores) == [(inner, []), (outer, [])] and slots.tolist() == [0, 1]
    assert _split(children) == [([oc.ADD, -4, -3], []), ([oc.ADD, -5, -3], [])]
    fresh = SubtreeStore(XT, 10)  # plan alone leaves its new slots unfilled
    np.testing.assert_array_equal(fresh.mse(batch, y), mse_features(batch, XT, y))
    assert fresh.stores == 2


def _problem(n_rows: int) -> Problem:
    XT, _ = _data(n_rows)
    XT[1] = np.clip(XT[1], -3.0, 3.0)
    return Problem.from_data(XT.T, np.sin(XT[0]) * XT[1], grammar="full", name="t")


def test_a_store_is_made_only_where_it_can_help():
    assert SubtreeStore.for_problem(_problem(SUBTREE_MIN_ROWS - 1), 128.0) is None
    big = _problem(SUBTREE_MIN_ROWS)
    assert SubtreeStore.for_problem(big, 128.0).capacity == 4096
    assert SubtreeStore.for_problem(big, 0.4) is None  # under MIN_SLOTS = 64 slots

    class OwnError(Problem):
        def error(self, batch, n_jobs=1, data=None):
            return super().error(batch, n_jobs, data)

    own = OwnError(**{f: getattr(big, f) for f in big.__dataclass_fields__})
    assert SubtreeStore.for_problem(own, 128.0) is None


def test_the_cache_scores_with_the_store_and_pickles_without_it():
    problem = _problem(2000)
    probe = np.ascontiguousarray(problem.train.X[:32].T)
    programs = hg.random_programs("full", 200, 2, seed=5, min_depth=3, max_depth=6)
    cache = EquivalenceCache(probe_XT=probe)
    plain = EquivalenceCache(probe_XT=probe, subtree_memory_mb=0)
    got = cache.score(Scorer(problem, cache=cache), programs).errors
    want = plain.score(Scorer(problem, cache=plain), programs).errors
    np.testing.assert_array_equal(got, want)
    assert cache.stats.subtree_stores > 0 and plain.stats.subtree_stores == 0
    assert cache.stats.as_dict()["subtree_nodes_planned"] > 0
    again = pickle.loads(pickle.dumps(cache))
    assert again._subtrees is None and again.subtree_memory_mb == 128.0
    children = hg.random_programs("full", 100, 2, seed=6, min_depth=3, max_depth=6)
    np.testing.assert_array_equal(again.score(Scorer(problem, cache=again), children).errors,
                                  plain.score(Scorer(problem, cache=plain), children).errors)


def test_negative_memory_is_refused():
    with pytest.raises(ConfigError, match="subtree_memory_mb"):
        EquivalenceCache(probe_XT=np.zeros((1, 4)), subtree_memory_mb=-1)


def test_a_seeded_run_is_the_same_with_and_without_the_store():
    problem = _problem(1500)
    results = []
    for memory in (128.0, 0.0):
        config = make_config("nguyen-1", seed=3, max_evaluations=10**9, generations=6,
                                population_size=120, target_error=0.0)
        config = apply_overrides(config, [f"cache.subtree_memory_mb={memory}"])
        results.append(run_config(config, problem=problem))
    on, off = results
    assert str(on.best) == str(off.best) and on.best_error == off.best_error
    assert on.stats["evaluations"] == off.stats["evaluations"]
    assert on.stats["cache"]["subtree_loads"] > 0 and off.stats["cache"]["subtree_loads"] == 0
    assert [(c, e, str(p)) for c, e, p in on.pareto_front] == [
        (c, e, str(p)) for c, e, p in off.pareto_front]


def test_the_warm_up_group_runs_the_stores_kernels():
    from hybrid_gp.kernels import subtrees as kern
    from hybrid_gp.kernels import warmup

    assert "subtrees" in warmup.GROUPS
    warmup.compile_group("subtrees")
    assert kern.plan.signatures and kern.mse_planned_serial.signatures


def test_storing_pauses_where_it_does_not_pay_and_is_tried_again():
    """Fresh random programs every batch share no subtree: every store is lost, so
    after RECKON_BATCHES batches storing pauses for PAUSE_BATCHES, then resumes.
    Batches that repeat keep loading what they stored, and storing goes on."""
    from hybrid_gp.subtrees import PAUSE_BATCHES, RECKON_BATCHES

    XT, y = _data(1200)
    store = SubtreeStore(XT, 500)
    storing = []
    for g in range(RECKON_BATCHES + PAUSE_BATCHES + 1):
        batch = compile_batch(hg.random_programs("full", 40, 2, seed=1000 + g, min_depth=3,
                                                 max_depth=5))
        storing.append(store.storing)
        np.testing.assert_array_equal(store.mse(batch, y), mse_features(batch, XT, y))
    assert storing == ([True] * RECKON_BATCHES + [False] * PAUSE_BATCHES + [True])

    repeating = SubtreeStore(XT, 500)
    batch = compile_batch(hg.random_programs("full", 40, 2, seed=7, min_depth=3,
                                             max_depth=5))
    for _ in range(2 * RECKON_BATCHES):
        repeating.mse(batch, y)
        assert repeating.storing


def test_an_interrupted_run_that_uses_the_store_resumes_to_the_same_end(tmp_path):
    """Checkpoints leave the stored outputs out; the resumed run refills them and ends
    exactly as the uninterrupted run (feynman-i.6.2 has 1,000 rows)."""
    import json
    import os
    import signal

    from hybrid_gp.errors import RunInterrupted

    kw = dict(seed=2, max_evaluations=3000, population_size=60, checkpoint_every=3,
              target_error=0.0)
    ref = hg.run("feynman-i.6.2", out_dir=tmp_path / "reference", **kw)
    assert ref.stats["cache"]["subtree_loads"] > 0

    def interrupt(event: dict) -> None:
        if event["event"] == "progress" and event["generation"] == 8:
            os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "interrupted"
    with pytest.raises(RunInterrupted):
        run_config(make_config("feynman-i.6.2", **kw), out_dir=out, on_event=interrupt)
    hg.resume(out)

    def events(run_dir):
        lines = (run_dir / "events.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "clock"}
                for line in lines]

    assert events(out) == events(tmp_path / "reference")
    for name in ("best.txt", "pareto.csv", "genealogy.json"):
        assert (out / name).read_text() == (tmp_path / "reference" / name).read_text()


def test_the_run_summary_says_what_the_store_spared(capsys):
    from hybrid_gp.console import print_result

    big = hg.run("feynman-i.6.2", seed=1, max_evaluations=1500, population_size=60)
    small = hg.run("nguyen-1", seed=1, max_evaluations=600, population_size=60)
    c = big.stats["cache"]
    share = c["subtree_nodes_loaded"] / c["subtree_nodes_planned"]
    print_result(big)
    line = next(x for x in capsys.readouterr().out.splitlines() if "subtree store" in x)
    assert line == (f"  subtree store: {share:.0%} of the evaluated programs' nodes were "
                    f"loaded from {c['subtree_stores']:,} stored subtrees, not computed")
    print_result(small)  # 20 rows: no store
    assert "subtree store" not in capsys.readouterr().out
