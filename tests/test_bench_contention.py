"""Training speed on a busy machine: how fubench makes OpenMP threads wait.

torch's CPU kernels run on an OpenMP team of threads. With the default wait policy a
thread that reaches a barrier first spins (GNU OpenMP: 300,000 checks, milliseconds)
until its team-mates arrive; on a machine whose cores are busy with other work, the
team-mate is often descheduled, and the spinner burns the very core it waits for.
``import fubench`` therefore sets (unless the user set either) ``GOMP_SPINCOUNT=1000``
(spin a few microseconds, then sleep) and ``OMP_WAIT_POLICY=PASSIVE`` (sleep at once,
for runtimes that do not read ``GOMP_SPINCOUNT``).

This benchmark trains a fixed workload (the MNIST CNN, batch 32, SGD with momentum,
``fubench.train_local``, with as many torch threads as there are cores) in fresh
processes, under OpenMP's default, under the passive policy alone (fubench's earlier
setting) and under fubench's, on a quiet machine and beside a synthetic load of two busy
processes per core. The six variants alternate round by round. It prints loaded/quiet
per setting (the fair-share bound is about 3 with two busy loops per core competing
with the run's own threads; the docs' "Run at scale" page says how to read it) and each
setting's time on the quiet machine against the default's.

Run with timing on (the project's default disables it)::

    pytest tests/test_bench_contention.py --benchmark-enable -s

With timing off the quiet variants still run once, and the test checks what must hold
on any machine: every setting trains to the same bits."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from fubench import _OPENMP_WAIT as OPENMP_WAIT
from tests.benchtools import Interleaved, run

pytestmark = pytest.mark.training  # starts processes: not in the fast tier

#: the training workload, run in a fresh interpreter (the wait policy is read once, when
#: the OpenMP runtime starts); torch is imported before fubench so that the variable the
#: parent passes is the one in force. Prints the hash of the trained weights.
WORKLOAD = textwrap.dedent(
    """
    import hashlib, os, sys
    import torch
    from fubench_builtins.models import MnistCNN
    from fubench.engine import determinism
    from fubench.fl.training import TrainSettings, train_local
    from fubench.scenario import Split

    steps = int(sys.argv[1])
    determinism.configure(os.cpu_count())
    torch.manual_seed(0)
    model = MnistCNN().build((1, 28, 28), 10)
    g = torch.Generator().manual_seed(0)
    data = Split(torch.rand(32 * steps, 1, 28, 28, generator=g),
                 torch.randint(0, 10, (32 * steps,), generator=g))
    settings = TrainSettings(epochs=1, batch_size=32, lr=0.01, momentum=0.9)
    train_local(model, data, settings, torch.Generator().manual_seed(1))
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.numpy().tobytes())
    print(digest.hexdigest())
    """
)
#: training steps per run: about a second per run on a quiet 2-core machine
STEPS = 60
LINES: list[str] = []
HASHES: dict[str, set[str]] = {}


#: how waiting OpenMP threads behave, per setting compared (variables the parent passes)
SETTINGS = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "fubench": OPENMP_WAIT,
}


def train(setting: dict[str, str], steps: int = STEPS) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    done = subprocess.run(
        [sys.executable, "-c", WORKLOAD, str(steps)],
        env={**env, **setting},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _spin(until: float) -> None:
    while time.monotonic() < until:
        pass


@contextmanager
def busy(processes: int, seconds: float = 3600.0) -> Iterator[None]:
    """``processes`` busy loops on this machine while the block runs."""
    context = multiprocessing.get_context("spawn")
    loops = [
        context.Process(target=_spin, args=(time.monotonic() + seconds,), daemon=True)
        for _ in range(processes)
    ]
    for loop in loops:
        loop.start()
    try:
        yield
    finally:
        for loop in loops:
            loop.terminate()
            loop.join()


def variant(name: str, setting: dict[str, str], loaded: bool):
    cores = os.cpu_count() or 1

    def go() -> None:
        if loaded:
            with busy(2 * cores):
                time.sleep(0.2)  # let the loops start
                HASHES.setdefault(name, set()).add(train(setting))
        else:
            HASHES.setdefault(name, set()).add(train(setting))

    return go


def test_fubench_waiting_holds_up_under_load_costs_nothing_quiet_and_changes_no_bit(benchmark):
    timing = not getattr(benchmark, "disabled", False)
    loads = ("quiet", "loaded") if timing else ("quiet",)  # timing off: no loaded runs
    variants = {
        f"{load}, {name}": variant(f"{load} {name}", setting, load == "loaded")
        for load in loads
        for name, setting in SETTINGS.items()
    }
    timer = Interleaved(variants)
    timed = run(benchmark, timer)
    # how threads wait decides the speed, never what they compute
    assert len(set().union(*HASHES.values())) == 1, HASHES
    if timed:
        cores = os.cpu_count() or 1
        LINES.append(
            f"training {STEPS} steps with {cores} threads, beside {2 * cores} busy loops "
            f"vs on a quiet machine (fubench: {OPENMP_WAIT}):"
        )
        for name in SETTINGS:
            loaded = timer.ratio(f"quiet, {name}", f"loaded, {name}")
            quiet = timer.ratio("quiet, default", f"quiet, {name}")
            LINES.append(
                f"  {name:8s} loaded/quiet {loaded:.2f}; quiet time / default's {quiet:.3f}"
            )
        LINES.extend(f"  {name}: {timer.spread(name)}" for name in timer.times)
        print("\n" + "\n".join(LINES))
