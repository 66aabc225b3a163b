"""Where a run's tasks execute: in this process one after the other (``jobs = 1``), in
worker processes on this machine (``jobs > 1``, :mod:`fubench.executors.local`) or on a
Ray cluster (:mod:`fubench.executors.cluster`). Every executor runs the same task
function (:func:`fubench.engine.tasks.run_task`) and passes what the tasks send back to one
handler in this process, which writes the result files and draws one progress display
(:mod:`fubench.executors.display`). fubench does not schedule: a process pool or Ray
does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from fubench.engine.timing import cpu_count

if TYPE_CHECKING:  # pragma: no cover
    from fubench.engine.tasks import Emit, Task
    from fubench.executors.display import Workload

EXECUTORS = ("local", "ray")


def default_jobs(device: torch.device) -> int:
    """As many jobs as the machine sensibly holds: one per core on CPU (small models
    train fastest one thread each, side by side), one per GPU on CUDA."""
    if device.type == "cuda":
        return max(1, torch.cuda.device_count())
    return cpu_count()


@dataclass
class Execution:
    """How a run's tasks execute: the executor ("local" or "ray"), how many tasks at
    once, the cluster's address, and torch threads per task."""

    executor: str
    jobs: int | None
    address: str | None
    threads_per_task: int | None
    device: torch.device

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(
                f"unknown executor '{self.executor}'; expected one of {', '.join(EXECUTORS)}"
            )
        if self.jobs is None:
            self.jobs = default_jobs(self.device)
        if self.jobs < 1:
            raise ValueError(f"--jobs must be at least 1, got {self.jobs}")

    @property
    def parallel(self) -> bool:
        return self.executor == "ray" or self.jobs > 1

    def threads(self, n_tasks: int) -> int:
        """Torch threads per task: as given (``--threads``), else one. One thread per
        task, whatever ``--jobs``, keeps every row's time comparable (``rtr`` divides
        times taken at the same thread count) and is also the fastest use of the cores:
        small models at batch 32 do not keep two threads busy, two tasks do."""
        return self.threads_per_task if self.threads_per_task is not None else 1


def run(
    execution: Execution,
    tasks: list[Task],
    handle: Emit,
    in_process: Callable[[Task, Emit], None],
    workload: Workload,
) -> None:
    """Run ``tasks`` as ``execution`` says; every event reaches ``handle`` here, through
    the run's progress display (``workload``: what the run computes)."""
    if not tasks:
        return
    from fubench.engine.tasks import TaskDone
    from fubench.executors.display import Display

    with Display(tasks, handle, workload) as display:
        if not execution.parallel:
            for task in tasks:
                in_process(task, display.handle)
                display.handle(TaskDone(task.id))
        elif execution.executor == "ray":
            from fubench.executors.cluster import run_on_ray

            run_on_ray(tasks, display.handle, execution.address, execution.device)
        else:
            from fubench.executors.local import run_in_processes

            run_in_processes(tasks, display.handle, min(execution.jobs, len(tasks)))
