"""What the rest of the machine did while a benchmark timed something.

Two-thread figures mean little when other processes held the second core, so both
benchmarks report the CPU time other processes used during their rounds.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


def busy_seconds() -> float | None:
    """CPU seconds all processes have used (Linux /proc/stat), or None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()[1:]
    except OSError:
        return None
    ticks = [int(v) for v in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def timed(fn: Callable[[], T]) -> tuple[T, float, float, float | None]:
    """fn()'s result, wall seconds, this process's CPU seconds, and the CPU seconds
    other processes used meanwhile (None without /proc/stat)."""
    busy0 = busy_seconds()
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    busy1 = busy_seconds()
    others = None if busy0 is None or busy1 is None else max(0.0, busy1 - busy0 - cpu)
    return out, wall, cpu, others


@dataclass
class Load:
    """Wall seconds timed and the CPU seconds other processes used meanwhile (None
    once a reading was missing)."""

    wall: float = 0.0
    others: float | None = 0.0

    def add(self, wall: float, others: float | None) -> None:
        self.wall += wall
        self.others = None if others is None or self.others is None else self.others + others

    def cores(self) -> float | None:
        """Other processes' CPU use in cores (None without readings)."""
        return None if self.others is None or not self.wall else self.others / self.wall
