"""Whether a batch kernel runs on threads: eligible by size, then chosen by timing.

`n_jobs > 1` lets the per-generation kernels (evaluation, breeding, structural keys,
sha256) share a batch among threads. On a free machine that pays from tens of
microseconds of work. When another process holds the other cores, it does not: every
parallel region waits for its slowest thread to be scheduled, and at 20 rows, with a
busy second core, two threads made a run three times slower than one.

So the pool is pinged now and then (`pool_answers`): while its threads do not all
start within a millisecond, every kernel runs serially. When they do, each kernel
site measures both ways, keeps the seconds per unit of work of its
recent calls (per size class: a power of two of the work, since a region's fixed cost
weighs more on small batches), and runs threaded only while their median is lower.
The other way is measured again every PROBE_EVERY calls, so a machine that frees up
or fills up is followed within a second or so. The results never depend on the
choice: the kernels give the same output for any number of threads.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numba
import numpy as np
from numba import njit, prange

#: Calls between two measurements of the way not currently chosen, and the calls
#: each measurement takes.
PROBE_EVERY, PROBE_CALLS = 128, 3
_RECENT = 5  # readings kept per way
#: How often the pool is pinged, and the longest answer of a pool with free cores.
PING_EVERY_S, PING_LIMIT_S = 0.5, 1e-3


def worker_threads(n_jobs: int, work: int, per_thread: int) -> int:
    """Threads a kernel with `work` units may use, at least `per_thread` units each, at
    most n_jobs and Numba's pool (1: run it serially)."""
    return max(1, min(n_jobs, numba.config.NUMBA_NUM_THREADS, work // per_thread))


class ThreadChoice:
    """Recent seconds per unit of work, serial and threaded, for one kernel site and
    size class, and the way to run the next call."""

    def __init__(self, start_threaded: bool):
        self.recent: dict[bool, list[float]] = {False: [], True: []}
        self.calls = 0
        self.start_threaded = start_threaded
        self.probing = not start_threaded  # the way the current or last probe runs

    def figure(self, threaded: bool) -> float:
        """The median of that way's recent readings (nan before the first): a one-off
        delay, another process's burst, does not flip the choice."""
        values = sorted(self.recent[threaded])
        return values[len(values) // 2] if values else math.nan

    def threaded(self) -> bool:
        """The way to run this call: PROBE_CALLS calls each way first (the preferred
        start first), then the faster, with PROBE_CALLS calls of the other way every
        PROBE_EVERY calls. A way is measured over several calls in a row because the
        first threaded call after a pause also wakes the sleeping threads."""
        k, self.calls = self.calls, self.calls + 1
        if k < 2 * PROBE_CALLS:
            return self.start_threaded == (k < PROBE_CALLS)
        faster = self.figure(True) < self.figure(False)
        if k % PROBE_EVERY == 0:  # a probe of the other way starts: older readings are stale
            self.probing = not faster
            self.recent[self.probing].clear()
        return self.probing if k % PROBE_EVERY < PROBE_CALLS else faster

    def record(self, threaded: bool, seconds: float, work: int) -> None:
        """A call's time, among its way's recent readings."""
        readings = self.recent[threaded]
        readings.append(seconds / max(work, 1))
        del readings[:-_RECENT]


@njit(parallel=True, cache=True, nogil=True)
def _ping(marks):
    """Every thread of the pool marks its slot (one iteration each)."""
    for i in prange(marks.shape[0]):
        marks[i] = 1


_PING = {"at": -math.inf, "answers": True, "wait": PING_EVERY_S}


def pool_answers(workers: int) -> bool:
    """Whether `workers` threads all start within PING_LIMIT_S: an empty parallel region
    takes about 2 µs when the cores are free, milliseconds when other processes hold
    them. While they do not answer, every kernel runs serially and no site measures
    threads (a measurement would cost a scheduler delay per call). The pool is pinged
    every PING_EVERY_S seconds while it answers, and at doubling intervals (up to 16x)
    while it does not, since each unanswered ping costs such a delay too."""
    now = time.perf_counter()
    if now - _PING["at"] >= _PING["wait"]:
        numba.set_num_threads(workers)
        marks = np.zeros(workers, dtype=np.int64)
        _ping(marks)  # after a pause this wakes the threads: time the next answers
        answers = True
        for _ in range(3):  # a thread that shares its core may answer once by luck
            start = time.perf_counter()
            _ping(marks)
            if time.perf_counter() - start >= PING_LIMIT_S:
                answers = False
                break
        _PING["answers"], _PING["at"] = answers, now
        _PING["wait"] = (PING_EVERY_S if answers
                         else min(2 * _PING["wait"], 16 * PING_EVERY_S))
    return bool(_PING["answers"])


_CHOICES: dict[tuple[str, int], ThreadChoice] = {}
_FORCED: list[bool] = []  # innermost `forced` block last


@contextmanager
def forced(threaded: bool) -> Iterator[None]:
    """Inside the block every eligible kernel runs threaded (True) or serially (False)
    whatever the timings say: for tests of the threaded kernels and for benchmarks that
    time one way. Not thread-safe; nests."""
    _FORCED.append(threaded)
    try:
        yield
    finally:
        _FORCED.pop()


def run_kernel(site: str, workers: int, work: int, serial: Callable[[], object],
               parallel: Callable[[int], object], start_threaded_from: int = 1 << 20
               ) -> None:
    """Run `serial()` or `parallel(workers)` (workers from `worker_threads`; 1 runs it
    serially without timing it), as the site's measurements say for this much work.
    A size class never measured starts threaded when work >= start_threaded_from."""
    choice = None
    if _FORCED:
        threaded = _FORCED[-1] and workers > 1
    elif workers < 2 or not pool_answers(workers):
        threaded = False
    else:
        key = (site, int(work).bit_length())
        choice = _CHOICES.get(key)
        if choice is None:
            choice = _CHOICES[key] = ThreadChoice(work >= start_threaded_from)
        threaded = choice.threaded()
    start = time.perf_counter()
    if threaded:
        numba.set_num_threads(workers)
        parallel(workers)
    else:
        serial()
    if choice is not None:
        choice.record(threaded, time.perf_counter() - start, work)
