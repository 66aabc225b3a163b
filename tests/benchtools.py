"""Timing helpers for the speed benchmarks, made for a shared machine.

The compared variants run interleaved, round by round (alternating their order), so a
neighbour's burst of load hits all of them alike; each variant's fastest round is its
time (on a shared machine the slower rounds mostly measure the neighbours), and the
spread (fastest–slowest) is printed beside every ratio so a reader sees how quiet the
machine was. Workloads are sized to a second or more per variant and round."""

from __future__ import annotations

import time
from collections.abc import Callable

#: rounds per variant when timing is on (the minimum of these is the time)
ROUNDS = 10


class Interleaved:
    """Run ``variants`` (name -> function) once each per call, alternating the order,
    and keep each one's times."""

    def __init__(self, variants: dict[str, Callable[[], object]]):
        self.variants = variants
        self.times: dict[str, list[float]] = {name: [] for name in variants}
        self._calls = 0

    def __call__(self) -> None:
        order = list(self.variants.items())
        if self._calls % 2:
            order.reverse()
        self._calls += 1
        for name, fn in order:
            start = time.perf_counter()
            fn()
            self.times[name].append(time.perf_counter() - start)

    def best(self, name: str) -> float:
        return min(self.times[name])

    def spread(self, name: str) -> str:
        t = self.times[name]
        return f"{min(t):.3f}–{max(t):.3f} s over {len(t)} rounds"

    def ratio(self, fast: str, slow: str) -> float:
        """best(slow) / best(fast): how many times faster ``fast`` is (speed of
        ``fast`` relative to ``slow``)."""
        return self.best(slow) / self.best(fast)

    def line(self, name: str, reference: str, label: str) -> str:
        """'label: <ratio>  (name a–b s, reference c–d s)' with speed(name)/speed(reference)."""
        return (
            f"  {label} {self.ratio(name, reference):.3f}   ({name}: {self.spread(name)}; "
            f"{reference}: {self.spread(reference)})"
        )


def run(benchmark, timer: Interleaved) -> bool:
    """Let pytest-benchmark drive the rounds (one warm-up round, then ROUNDS); with
    timing disabled (the default test run) it runs one round: the code paths still
    execute. Returns whether the rounds were timed."""
    timed = not getattr(benchmark, "disabled", False)
    if timed:
        benchmark.pedantic(timer, rounds=ROUNDS, iterations=1, warmup_rounds=1)
        for name in timer.times:  # drop the warm-up round
            timer.times[name] = timer.times[name][-ROUNDS:]
    else:
        benchmark(timer)
    return timed
