"""Wall time that says whether it can be trusted.

A row's ``seconds`` is wall time, and wall time measures the machine as much as the
method: beside other work a run's threads wait for cores. A :class:`Stopwatch` also
reads the CPU time the process got meanwhile and the machine's load. The work keeps at
least one thread busy all the time, so when the CPU time falls well short of the wall
time, or the load stands above the cores, the machine was contended and the timing is
flagged (``RowInfo.timing``); a flagged timing of the gold standard is not kept as the
reference ``rtr`` divides by while a clean one exists (:mod:`fubench.engine.job`).
``work`` (counted FLOPs) needs none of this: it is the same on any machine."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

#: below this ratio of CPU time to wall time, a timing is contended (its thread waited
#: for a core a quarter of the time)
MIN_CPU_SHARE = 0.75
#: above the cores plus this, the machine's load marks a timing contended
LOAD_MARGIN = 1.0


@dataclass
class Stopwatch:
    """Start it, do the work, stop it: ``seconds`` and what the CPU time says."""

    threads: int
    start_wall: float = 0.0
    start_cpu: float = 0.0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    @classmethod
    def started(cls, threads: int) -> Stopwatch:
        watch = cls(max(1, threads))
        watch.start_wall, watch.start_cpu = time.perf_counter(), time.process_time()
        return watch

    def stop(self, extra_seconds: float = 0.0) -> Stopwatch:
        """Stop; ``extra_seconds`` (time charged from an earlier, shared computation)
        adds to ``seconds`` but not to what the CPU share is judged on."""
        wall = time.perf_counter() - self.start_wall
        self.cpu_seconds = time.process_time() - self.start_cpu
        self.seconds = wall + extra_seconds
        self._wall = wall
        return self

    @property
    def cpu_share(self) -> float | None:
        """CPU time / wall time (above 1 with several busy threads); None for work too
        short to judge."""
        wall = getattr(self, "_wall", 0.0)
        if wall < 0.5:
            return None
        return self.cpu_seconds / wall

    def report(self) -> dict[str, Any]:
        """What a row records about how its time was measured."""
        share = self.cpu_share
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        busy = load is not None and load > cpu_count() + LOAD_MARGIN
        return {
            "threads": self.threads,
            "cpu_share": None if share is None else round(share, 3),
            "load": None if load is None else round(load, 2),
            "contended": (share is not None and share < MIN_CPU_SHARE) or busy,
        }


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1
