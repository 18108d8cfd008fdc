"""Choosing threads (hybrid_gp/threads.py): a pool that does not answer its ping in
time runs everything serially; otherwise each way is timed, the faster one used and
the other timed again now and then; `forced` overrides the choice.

The kernels themselves give the same results either way (their own tests); here the
serial and threaded calls are stand-ins, and the clock is a fake one where a test
depends on it, so no assertion rests on this machine's timing.
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest

import hybrid_gp as hg
from hybrid_gp import threads
from hybrid_gp.threads import (
    PROBE_CALLS,
    PROBE_EVERY,
    ThreadChoice,
    forced,
    run_kernel,
    worker_threads,
)


def _ways(choice: ThreadChoice, calls: int, serial_s: float, threaded_s: float) -> list[bool]:
    """The way each of `calls` calls took, each recorded with the given seconds."""
    out = []
    for _ in range(calls):
        way = choice.threaded()
        choice.record(way, threaded_s if way else serial_s, work=1000)
        out.append(way)
    return out


def test_a_small_batch_is_measured_serially_first_then_threaded_then_the_faster_wins():
    ways = _ways(ThreadChoice(start_threaded=False), 20, serial_s=1e-3, threaded_s=5e-4)
    assert ways[:2 * PROBE_CALLS] == [False] * PROBE_CALLS + [True] * PROBE_CALLS
    assert all(ways[2 * PROBE_CALLS:])


def test_a_large_batch_starts_threaded():
    ways = _ways(ThreadChoice(start_threaded=True), 2 * PROBE_CALLS + 2, serial_s=1e-3,
                 threaded_s=5e-4)
    assert ways == [True] * PROBE_CALLS + [False] * PROBE_CALLS + [True, True]


def test_threads_slower_than_serial_are_dropped_but_measured_again_now_and_then():
    """A busy second core: threaded calls take 3x longer. Only the probes use them."""
    ways = _ways(ThreadChoice(start_threaded=False), 3 * PROBE_EVERY, serial_s=1e-3,
                 threaded_s=3e-3)
    threaded_calls = [k for k, way in enumerate(ways) if way]
    probes = [start + j for start in (PROBE_CALLS, PROBE_EVERY, 2 * PROBE_EVERY)
              for j in range(PROBE_CALLS)]
    assert threaded_calls == probes


def test_a_machine_that_frees_up_is_followed_from_the_next_probe():
    """Threads slow at first, then fast: the next probe's readings replace the stale
    ones, and threads are used from the call after it."""
    choice = ThreadChoice(start_threaded=False)
    _ways(choice, PROBE_EVERY, serial_s=1e-3, threaded_s=3e-3)  # the next call probes
    later = _ways(choice, PROBE_EVERY, serial_s=1e-3, threaded_s=2e-4)
    assert all(later)


def test_a_probe_is_judged_on_the_median_of_its_calls_not_on_a_wake_up():
    """The first threaded call after serial ones pays for waking the threads: one slow
    reading among the probe's calls does not decide."""
    choice = ThreadChoice(start_threaded=False)
    ways = []
    for _ in range(30):
        way = choice.threaded()
        slow_start = way and (not ways or not ways[-1])  # the first threaded in a row
        choice.record(way, 5e-3 if slow_start else (5e-4 if way else 1e-3), work=1000)
        ways.append(way)
    assert all(ways[2 * PROBE_CALLS:])


def test_a_one_off_delay_does_not_flip_the_choice():
    """Threads twice as fast, one threaded call delayed 20x (another process's burst):
    the median of recent readings keeps threads."""
    choice = ThreadChoice(start_threaded=False)
    _ways(choice, 10, serial_s=1e-3, threaded_s=5e-4)
    assert choice.threaded()
    choice.record(True, 1e-2, work=1000)
    assert _ways(choice, 10, serial_s=1e-3, threaded_s=5e-4) == [True] * 10


def _pool(monkeypatch, answers: bool) -> list[int]:
    """The ping made to answer in time or not; returns the list its calls go to."""
    pings: list[int] = []
    monkeypatch.setattr(threads, "PING_LIMIT_S", math.inf if answers else -1.0)
    monkeypatch.setattr(threads, "_PING", {"at": -math.inf, "answers": True,
                                           "wait": threads.PING_EVERY_S})
    monkeypatch.setattr(threads, "_ping", lambda marks: pings.append(len(marks)))
    return pings


def test_a_pool_that_does_not_answer_in_time_runs_everything_serially(monkeypatch):
    """Another process holds the other core: the ping is late, so no kernel runs
    threaded and no site spends calls measuring threads."""
    monkeypatch.setattr(threads, "_CHOICES", {})
    _pool(monkeypatch, answers=False)
    calls = []
    for _ in range(10):
        run_kernel("test site", 2, 10**9, lambda: calls.append("serial"),
                   lambda w: calls.append("threads"))
    assert calls == ["serial"] * 10 and threads._CHOICES == {}


def test_a_pool_that_does_not_answer_is_pinged_at_doubling_intervals(monkeypatch):
    """Each unanswered ping costs a scheduler delay: one slow answer ends a ping, and
    the next waits twice as long, up to 16 intervals."""
    pings = _pool(monkeypatch, answers=False)
    clock = [0.0]
    monkeypatch.setattr(threads.time, "perf_counter", lambda: clock[0])
    asked_at = []
    for step in range(400):  # 0.1 s apart
        clock[0] = step * 0.1
        before = len(pings)
        assert not threads.pool_answers(2)
        if len(pings) > before:
            asked_at.append(round(clock[0], 1))
            assert len(pings) - before == 2  # the wake-up and one late answer
    gaps = [round(b - a, 1) for a, b in pairwise(asked_at)]
    every = threads.PING_EVERY_S
    assert gaps[:5] == [2 * every, 4 * every, 8 * every, 16 * every, 16 * every]


def test_an_answering_pool_is_pinged_once_per_interval(monkeypatch):
    pings = _pool(monkeypatch, answers=True)
    clock = [100.0]
    monkeypatch.setattr(threads.time, "perf_counter", lambda: clock[0])
    assert threads.pool_answers(2) and threads.pool_answers(2)
    assert pings == [2] * 4  # one wake-up and three timed answers, once
    clock[0] += 0.9 * threads.PING_EVERY_S
    assert threads.pool_answers(2) and len(pings) == 4
    clock[0] += 0.2 * threads.PING_EVERY_S
    assert threads.pool_answers(2) and len(pings) == 8


def test_the_ping_kernel_marks_every_slot():
    marks = np.zeros(5, dtype=np.int64)
    threads._ping(marks)
    assert marks.tolist() == [1] * 5


def test_run_kernel_times_each_call_and_uses_the_faster_way(monkeypatch):
    """run_kernel reads the clock around each call (a fake clock here: serial calls take
    4 ms, threaded ones 0.1 ms, whatever the machine is doing)."""
    monkeypatch.setattr(threads, "_CHOICES", {})
    _pool(monkeypatch, answers=True)
    clock = [0.0]
    monkeypatch.setattr(threads.time, "perf_counter", lambda: clock[0])
    calls = []

    def serial() -> None:
        clock[0] += 4e-3
        calls.append("serial")

    def parallel(workers: int) -> None:
        clock[0] += 1e-4
        calls.append(f"threads {workers}")

    for _ in range(2 * PROBE_CALLS + 4):
        run_kernel("test site", 2, 1000, serial, parallel)
    assert calls == (["serial"] * PROBE_CALLS + ["threads 2"] * PROBE_CALLS
                     + ["threads 2"] * 4)


def test_one_worker_or_forced_serial_never_starts_threads(monkeypatch):
    monkeypatch.setattr(threads, "_CHOICES", {})
    calls = []
    for _ in range(3):
        run_kernel("test site", 1, 10**9, lambda: calls.append("serial"),
                   lambda w: calls.append("threads"))
    with forced(False):
        run_kernel("test site", 2, 10**9, lambda: calls.append("serial"),
                   lambda w: calls.append("threads"))
    with forced(True):
        run_kernel("test site", 2, 10, lambda: calls.append("serial"),
                   lambda w: calls.append("threads"))
        with forced(False):  # blocks nest
            run_kernel("test site", 2, 10, lambda: calls.append("serial"),
                       lambda w: calls.append("threads"))
    assert calls == ["serial"] * 4 + ["threads", "serial"]
    assert threads._CHOICES == {}  # nothing measured: no choice was made


@pytest.mark.parametrize("n_jobs, work, per_thread, expected", [
    (2, 100, 32, 2), (2, 63, 32, 1), (8, 10**6, 32, None), (1, 10**6, 32, 1)])
def test_worker_threads_needs_enough_work_per_thread(n_jobs, work, per_thread, expected):
    import numba

    got = worker_threads(n_jobs, work, per_thread)
    assert got == (expected if expected is not None
                   else min(8, numba.config.NUMBA_NUM_THREADS))


def test_a_run_with_two_threads_is_the_run_with_one_whatever_the_choices(monkeypatch):
    """The timed choice sends some calls to threads and some not; the run is the same."""
    monkeypatch.setattr(threads, "PROBE_EVERY", 8)  # switch ways often
    monkeypatch.setattr(threads, "_CHOICES", {})
    monkeypatch.setattr(threads, "PING_LIMIT_S", math.inf)  # even on a busy machine
    monkeypatch.setattr(threads, "_PING", {"at": -math.inf, "answers": True,
                                           "wait": threads.PING_EVERY_S})
    kwargs = dict(seed=4, max_evaluations=3000, population_size=300, time_budget=1e9)
    one = hg.run("nguyen-5", n_jobs=1, **kwargs)
    two = hg.run("nguyen-5", n_jobs=2, **kwargs)
    assert str(one.best) == str(two.best) and one.best_error == two.best_error
    assert one.stats["evaluations"] == two.stats["evaluations"]
    assert one.stats["cache_hits"] == two.stats["cache_hits"]
    ways = {way for choice in threads._CHOICES.values()
            for way, readings in choice.recent.items() if readings}
    assert ways == {False, True}  # both ways really ran
