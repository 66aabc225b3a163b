"""Tasks in worker processes on this machine (``fubench run --jobs N``).

``N`` spawned processes (a fresh interpreter each: no state inherited from this one)
run the tasks, one at a time each; a worker loads the data set once and keeps it for
the tasks it runs. Each worker talks to this process over a pipe of its own: tasks go
out, events — rows, setups, the lines it would print — come back, handled here in
arrival order. The model cache is safe under concurrent workers (a lock per entry,
atomic writes), and only this process writes result files.

**A worker that dies** (a signal, the out-of-memory killer, plugin code that ended the
process by a means :mod:`fubench.exits` cannot catch) loses only its task: the rows the
task had not finished become failed rows with one line saying so (:class:`RowLost`),
a fresh worker takes its place, and the other tasks go on. A task that raises (a bug,
a scenario that cannot be built) stops the run, its exception raised here.

**Signals.** Workers ignore SIGINT and SIGTERM from their first instruction: Ctrl-C
reaches every process of the terminal's group, and only this process answers it (it
stops the workers), so no worker prints a traceback."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from fubench.engine.tasks import (
    Emit,
    Event,
    RowDone,
    RowLost,
    RowStarted,
    Say,
    Task,
    TaskDone,
    run_task,
)
from fubench.errors import one_line
from fubench.exits import ignore_user_signals, plugin_code, signals_ignored


@dataclass(frozen=True)
class TaskFailed:
    """Task ``task_id`` raised ``error`` (its traceback as text: the exception may not
    survive the trip whole)."""

    task_id: int
    error: BaseException
    traceback: str


class RemoteTraceback(Exception):
    """Where a worker's exception was raised (its ``__cause__`` here)."""

    def __str__(self) -> str:
        return self.args[0]


def run_in_processes(tasks: list[Task], handle: Emit, workers: int) -> None:
    """Run ``tasks`` on ``workers`` processes; return when all finished. The first
    task that raises stops the run and its exception is raised here."""
    pool = Pool(handle, workers)
    try:
        pool.run(deque(tasks))
    finally:
        pool.stop()


@dataclass
class Worker:
    """One worker process, its end of the pipe, and the task it runs."""

    process: Any
    pipe: Connection
    task: Task | None = None
    done: set[str] = field(default_factory=set)  # rows of the task sent back
    running: str | None = None  # the row being computed


class Pool:
    def __init__(self, handle: Emit, size: int):
        self.handle, self.size = handle, size
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[Worker] = []

    def run(self, queue: deque[Task]) -> None:
        while queue or any(w.task is not None for w in self.workers):
            for worker in [w for w in self.workers if not w.process.is_alive()]:
                self.lost(worker)  # idle, it loses nothing; busy, its task's rows
            while queue and len(self.workers) < self.size:
                self.workers.append(self.start())
            for worker in self.workers:
                if worker.task is None and queue:
                    worker.task, worker.done, worker.running = queue.popleft(), set(), None
                    worker.pipe.send(worker.task)
            busy = [w for w in self.workers if w.task is not None]
            wait([w.pipe for w in busy] + [w.process.sentinel for w in busy], timeout=0.5)
            for worker in busy:
                if not self.receive(worker) or not worker.process.is_alive():
                    self.lost(worker)

    def start(self) -> Worker:
        here, there = self.context.Pipe()
        process = self.context.Process(target=serve, args=(there, os.getpid()), daemon=True)
        with signals_ignored():  # inherited by the new interpreter before it runs a line
            process.start()
        there.close()
        return Worker(process, here)

    def receive(self, worker: Worker) -> bool:
        """Handle what ``worker`` sent so far; False when its pipe broke (it died)."""
        while worker.task is not None:
            try:
                if not worker.pipe.poll():
                    return True
                event = worker.pipe.recv()
            except Exception:  # EOF, or half a message: it died
                return False
            self.event(worker, event)
        return True

    def event(self, worker: Worker, event: Event | TaskFailed) -> None:
        task = worker.task
        if isinstance(event, TaskFailed):
            event.error.__cause__ = RemoteTraceback(event.traceback)
            raise event.error
        if isinstance(event, TaskDone):
            worker.task = None
            return
        if isinstance(event, RowStarted):
            worker.running = event.label
        elif isinstance(event, RowDone) and event.seed == task.seed:
            worker.done.add(event.label)
        self.handle(event)

    def lost(self, worker: Worker) -> None:
        """``worker`` died (or its pipe broke): the rows its task had not finished
        fail, and a new worker will take the next task."""
        self.workers.remove(worker)
        worker.process.join(timeout=10)
        if worker.process.is_alive():  # its pipe broke but it lives on: end it
            worker.process.kill()
            worker.process.join()
        self.receive(worker)  # what it sent before it died
        worker.pipe.close()
        task = worker.task
        if task is None:
            return
        how = exit_reason(worker.process.exitcode)
        self.handle(Say(f"  !! the worker process running seed {task.seed} died ({how})"))
        for label in task.labels:
            if label in worker.done:
                continue
            when = "while computing this row" if label == worker.running else "before this row ran"
            why = (
                f"the worker process died {when} ({how}): plugin code that ended it, or the "
                f"system (out of memory?); the other tasks went on"
            )
            self.handle(RowLost(task.seed, label, why))

    def stop(self) -> None:
        """End every worker: politely when idle, at once when busy (an error or the
        user's Ctrl-C stops the run; workers ignore SIGTERM, so SIGKILL)."""
        for worker in self.workers:
            try:
                if worker.task is None and worker.process.is_alive():
                    worker.pipe.send(None)
                else:
                    worker.process.kill()
            except (OSError, ValueError):
                worker.process.kill()
        for worker in self.workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.pipe.close()
        self.workers = []


def exit_reason(code: int | None) -> str:
    """``killed by SIGKILL`` or ``exit code 0``."""
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


# ------------------------------------------------------------------ in the worker
def serve(pipe: Connection, parent: int) -> None:
    """A worker's life: run the tasks that come down ``pipe`` until None comes."""
    ignore_user_signals()
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    lock = threading.Lock()

    def emit(event: Any) -> None:
        with lock:  # a progress line may come from another thread
            pipe.send(event)

    while True:
        try:
            task = pipe.recv()
        except (EOFError, OSError):  # the fubench process is gone
            return
        if task is None:
            return
        try:
            with Forward(emit), plugin_code():
                run_task(task, emit)
        except BaseException as exc:  # a worker never dies of its task
            emit(failure(task.id, exc))
        else:
            emit(TaskDone(task.id))


def failure(task_id: int, exc: BaseException) -> TaskFailed:
    """The failure of a task as it can travel: the exception itself when it pickles."""
    text = "".join(traceback.format_exception(exc))
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        exc = RuntimeError(one_line(exc))
    return TaskFailed(task_id, exc, text)


def _exit_with_parent(parent: int, every: float = 1.0) -> None:
    """End this worker when the ``fubench`` process is gone (killed by a signal that
    left it no time to stop its workers): an orphan would train on for nothing. The
    cache loses nothing: its entries are written atomically."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


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
