"""Tasks on a Ray cluster (``fubench run --executor ray [--address ADDR]``; the optional
extra ``pip install "fubench[ray]"``).

Every task becomes one Ray task running the same task function as a local worker; Ray
decides where and when (each asks for its threads' worth of CPUs, and one GPU when the
scenario runs on CUDA). Tasks send their events through a Ray queue to this process,
which writes the result files under ``--out``. Every node needs fubench (and any
third-party plugin) installed, the data sets under ``$FUBENCH_DATA`` and the model
cache at the same path, on storage they share (e.g. an NFS mount): the cache's per-entry
locks make a reference train once however many tasks need it."""

from __future__ import annotations

import queue as queues
from typing import TYPE_CHECKING, Any

import torch

from fubench.errors import FubenchError

if TYPE_CHECKING:  # pragma: no cover
    from fubench.engine.tasks import Emit, Task


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise FubenchError('--executor ray needs Ray: pip install "fubench[ray]"') from None
    return ray


def remote_task(task: Task, events: Any) -> None:
    """One task on a Ray worker; what it prints goes to the queue too."""
    from fubench.engine.tasks import TaskDone, run_task
    from fubench.executors.local import Forward

    try:
        with Forward(events.put):
            run_task(task, events.put)
    finally:
        events.put(TaskDone(task.id))


def run_on_ray(
    tasks: list[Task],
    handle: Emit,
    address: str | None,
    device: torch.device,
) -> None:
    """Submit every task to Ray (connecting to ``address``, or starting a local Ray
    when none is running and no address is given) and handle events until all ended."""
    ray = _ray()
    from ray.util.queue import Queue

    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    events = Queue()
    gpus = 1 if device.type == "cuda" else 0
    function = ray.remote(remote_task)
    pending = [
        function.options(num_cpus=task.threads or 1, num_gpus=gpus).remote(task, events)
        for task in tasks
    ]
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=len(pending), timeout=0.2)
            _drain(events, handle)
            for ref in done:
                ray.get(ref)  # raises a task's error here
        _drain(events, handle)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        ray.kill(events.actor)


def _drain(events: Any, handle: Emit) -> None:
    while True:
        try:
            event = events.get_nowait()
        except queues.Empty:
            return
        handle(event)
