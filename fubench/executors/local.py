"""Tasks in worker processes on this machine (``fubench run --jobs N``).

A pool of ``N`` spawned processes (a fresh interpreter each: no state inherited from
this one) runs the tasks; each worker loads the data set once and keeps it for the
tasks it runs. Workers send their events — rows, setups, the lines they would print —
over one queue; this process handles them in arrival order. The model cache is safe
under concurrent workers (a lock per entry, atomic writes), and only this process
writes result files."""

from __future__ import annotations

import multiprocessing
import os
import queue as queues
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from fubench.engine.tasks import Emit, Say, Task, TaskDone, run_task

_QUEUE: Any = None


def run_in_processes(tasks: list[Task], handle: Emit, workers: int) -> None:
    """Run ``tasks`` on ``workers`` processes; return when all finished. The first
    task that raises stops the run and its exception is raised here."""
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_start_worker, initargs=(events,)
    )
    try:
        futures: dict[int, Future] = {t.id: pool.submit(work, t) for t in tasks}
        waiting = set(futures)
        while waiting:
            try:
                event = events.get(timeout=0.2)
            except queues.Empty:
                for unit in list(waiting):
                    if futures[unit].done() and futures[unit].exception() is not None:
                        raise futures[unit].exception() from None
                continue
            if isinstance(event, TaskDone):
                waiting.discard(event.task_id)
            handle(event)
        for future in futures.values():
            future.result()  # raises a task's error
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _start_worker(events: Any) -> None:
    global _QUEUE
    _QUEUE = events
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """End this worker when the ``fubench`` process is gone (killed by a signal that
    left it no time to stop the pool): an orphan would train on for nothing. The cache
    loses nothing: its entries are written atomically."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def work(task: Task) -> None:
    """One task in a worker: its events go to the queue, and so do its printed lines."""
    emit = _QUEUE.put
    try:
        with Forward(emit):
            run_task(task, emit)
    finally:
        emit(TaskDone(task.id))


class Forward:
    """Replaces ``sys.stderr`` while a task runs: every complete line becomes a
    Say event, shown by the parent in its one display."""

    def __init__(self, emit: Emit):
        self.emit, self.buffer = emit, ""

    def __enter__(self) -> Forward:
        self.saved, sys.stderr = sys.stderr, self
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush_all()
        sys.stderr = self.saved

    def write(self, text: str) -> int:
        self.buffer += text
        *lines, self.buffer = self.buffer.split("\n")
        for line in lines:
            if line.strip():
                self.emit(Say(line))
        return len(text)

    def flush(self) -> None:
        pass

    def flush_all(self) -> None:
        if self.buffer.strip():
            self.emit(Say(self.buffer))
        self.buffer = ""

    @staticmethod
    def isatty() -> bool:
        return False
