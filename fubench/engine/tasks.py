"""What a run hands its executors, and what comes back.

A :class:`Task` is some rows of one (scenario, seed), picklable so that it can run in
this process, in a worker process or on a Ray node. :func:`run_task` computes it there
and sends what happens as events to one handler in the ``fubench`` process, which alone
writes result files: a line to show (:class:`Say`), where the task stands
(:class:`Progress`), the seed's set-up (:class:`SetupBuilt`), a method row begun
(:class:`RowStarted`) and finished (:class:`RowDone`) and the end of the task
(:class:`TaskDone`). An executor whose worker died says which rows were lost with it
(:class:`RowLost`)."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fubench import data as datasets
from fubench.config.spec import ScenarioConfig
from fubench.engine import determinism
from fubench.engine.cache import ModelCache
from fubench.engine.plan import Plan
from fubench.engine.sequential import job_for
from fubench.plugins import load_registry, reset_registry
from fubench.progress import Step, quietly, report, reporting
from fubench.registry import Registry
from fubench.results import clean_number

#: variables a task carries to its worker (a Ray node does not inherit them)
FORWARDED_ENV = (
    "FUBENCH_DATA",
    "FUBENCH_PLUGINS",
    "FUBENCH_DISABLE_PLUGIN_AUTOLOAD",
    "FUBENCH_PROGRESS_INTERVAL",
    "MKL_CBWR",
    "OMP_WAIT_POLICY",
    "GOMP_SPINCOUNT",
)


@dataclasses.dataclass
class Task:
    """One unit of work, picklable: some rows of one (scenario, seed)."""

    id: int
    config: ScenarioConfig
    seed: int
    labels: list[str]  # the method rows to compute (reference rows always)
    device: str | None = None
    cache_root: str | None = None  # None: no cache
    retime: bool = False
    threads: int | None = None  # torch threads in the worker; None: leave as is
    plugins: tuple[str, ...] = ()  # importable modules of plugins loaded by hand
    env: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Say:
    """A line a task printed."""

    text: str


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where task ``task_id`` stands: its innermost progress ``step`` (a round of a
    training, or what it does between trainings); ``reference``: while it trains or
    loads the seed's original and gold-standard models."""

    task_id: int
    seed: int
    step: Step
    reference: bool = False


@dataclasses.dataclass(frozen=True)
class SetupBuilt:
    """What the scenario kind built for ``seed``, and its precondition warnings."""

    seed: int
    info: dict[str, Any]
    warnings: list[str]


@dataclasses.dataclass(frozen=True)
class RowDone:
    """A finished row of ``seed``, as the result file stores it."""

    seed: int
    label: str
    row: dict[str, Any]
    #: wall seconds the task spent on a method row (running it and measuring it)
    seconds: float | None = None


@dataclasses.dataclass(frozen=True)
class RowStarted:
    """A method row of ``seed`` begins."""

    seed: int
    label: str


@dataclasses.dataclass(frozen=True)
class RowLost:
    """A row of ``seed`` that its task will never send: the process computing it died
    (``why``, one line); the runner stores it as failed."""

    seed: int
    label: str
    why: str


@dataclasses.dataclass(frozen=True)
class TaskDone:
    """Task ``task_id`` ended (whatever became of its rows)."""

    task_id: int


Event = Say | Progress | SetupBuilt | RowStarted | RowDone | RowLost | TaskDone
Emit = Callable[[Event], None]


def run_task(
    task: Task, emit: Emit, registry: Registry | None = None, plan: Plan | None = None
) -> None:
    """Compute one task's rows and send them to ``emit`` — in any process: this one
    (``registry`` and ``plan`` given), a worker process or a Ray worker (built from the
    task)."""
    os.environ.update(task.env)
    determinism.configure(task.threads)
    in_worker = registry is None
    if registry is None:
        registry = worker_registry(task.plugins)
    if plan is None:
        plan = Plan.from_config(task.config, registry, task.device)
        plan.retime = task.retime
    with quietly(in_worker):  # the runner has said where the data come from
        data = datasets.load(task.config, registry)
    root = task.cache_root
    cache = ModelCache(Path(root)) if root is not None else ModelCache(enabled=False)
    job = job_for(plan, data, task.seed, cache)
    seed = f"seed {task.seed}"
    with reporting(lambda step: emit(Progress(task.id, task.seed, step, reference=True))):
        report(Step(seed, doing="the original and gold-standard models"))
        info = {k: clean_number(v) for k, v in job.setup.info.items()}
        job.references()
        report(Step(seed, doing="measuring the original and gold-standard models"))
        emit(SetupBuilt(task.seed, info, job.warnings()))
        rows = job.reference_rows()
    for label, row in rows.items():
        emit(RowDone(task.seed, label, row))
    wanted = [spec for spec in plan.method_rows() if spec.label in task.labels]
    with reporting(lambda step: emit(Progress(task.id, task.seed, step))):
        for spec in wanted:
            start = time.perf_counter()
            emit(RowStarted(task.seed, spec.label))
            report(Step(f"{seed} {spec.label}", doing="running"))
            outcome = job.run_method(spec)
            report(Step(f"{seed} {spec.label}", doing="measuring"))
            row = job.method_row(spec, outcome)
            emit(RowDone(task.seed, spec.label, row, time.perf_counter() - start))


_WORKER_REGISTRY: dict[tuple[str, ...], Registry] = {}


def worker_registry(modules: tuple[str, ...]) -> Registry:
    """The registry of a worker: the installed plugins and the hand-loaded ones the
    runner's process had, imported by module name."""
    if modules not in _WORKER_REGISTRY:
        extra = [importlib.import_module(name) for name in modules]
        _WORKER_REGISTRY[modules] = load_registry(extra_plugins=extra)
    registry = _WORKER_REGISTRY[modules]
    reset_registry(registry)
    return registry


def importable(name: str) -> bool:
    """Whether a worker process could import the module ``name``."""
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__file__", None) is None:
        return False  # built in memory: a worker cannot import it
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
