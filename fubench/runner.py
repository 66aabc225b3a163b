"""Scenario × seeds → result files.

The runner reads what each seed's result file already holds, decides what is left to
compute (:mod:`fubench.engine.worklist`), cuts it into tasks and hands them to an
executor (:mod:`fubench.executors`): this process, worker processes, or a Ray cluster.
Every task runs :func:`fubench.engine.tasks.run_task`, a :class:`fubench.engine.job.Job`
per seed, and sends its rows back as events; this process alone writes the result files
(:class:`fubench.result_file.ResultFile`), after every row. Lifecycle hooks tell plugins
as the run proceeds; they observe: each gets its own deep copy of what it is shown, so a
hook that changes it changes nothing stored, and a hook that fails (``sys.exit``
included) is said on one line and the run goes on."""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path
from typing import Any

import torch

from fubench import code_fingerprint
from fubench import data as datasets
from fubench.config.spec import ScenarioConfig
from fubench.engine import determinism, worklist
from fubench.engine.cache import ModelCache
from fubench.engine.job import Job
from fubench.engine.outcome import Outcome, make_row
from fubench.engine.plan import ROW_HARNESS, Plan, model_settings
from fubench.engine.sequential import SequentialJob, job_for
from fubench.engine.tasks import (
    FORWARDED_ENV,
    Emit,
    Event,
    RowDone,
    RowLost,
    Say,
    SetupBuilt,
    Task,
    importable,
    run_task,
)
from fubench.executors.display import Workload
from fubench.exits import failure_line, plugin_code, user_signals, users_interrupt
from fubench.plugins import get_registry
from fubench.progress import say
from fubench.registry import LOCAL, Registry
from fubench.result_file import ResultFile
from fubench.results import (
    ORIGINAL,
    SCHEMA_VERSION,
    computed_at,
    provenance,
    result_path,
    stable_hash,
)
from fubench.scenario import Dataset


class Runner:
    """Runs one scenario file's seeds and writes ``<out>/<scenario>/seed_<n>.json``.

    ``jobs``: how many tasks run at once (1: in this process, one seed after the other;
    None: as many as the machine holds, see :func:`fubench.executors.default_jobs`);
    ``executor``: "local" (worker processes) or "ray" (``address``: the cluster);
    ``threads``: torch threads per task (default: the cores divided among the jobs);
    ``retime``: time the reference on this hardware even when the cache has a timing;
    ``verbose``: name every row reused from the result files (else say how many)."""

    def __init__(
        self,
        config: ScenarioConfig,
        registry: Registry | None = None,
        out: str | Path = "results",
        cache: ModelCache | None = None,
        device: str | None = None,
        jobs: int | None = 1,
        executor: str = "local",
        address: str | None = None,
        threads: int | None = None,
        retime: bool = False,
        verbose: bool = False,
    ):
        self.config = config
        self.registry = registry or get_registry()
        self.out = Path(out)
        self.cache = cache or ModelCache()
        self.device = device
        self.plan = Plan.from_config(config, self.registry, device)
        self.plan.retime = retime
        self.jobs, self.executor, self.address = jobs, executor, address
        self.threads = threads
        self.verbose = verbose
        self.files: dict[int, ResultFile] = {}
        self._told: set[int] = set()
        #: the lines tasks said: each is shown once
        self._said: set[str] = set()
        #: (seed, label) stored in this run: every task of a seed sends the same
        #: reference rows, stored (and announced to plugins) once
        self._stored: set[tuple[int, str]] = set()
        #: each seed's job on the CPU, built once per run (see :meth:`_cpu_job`)
        self._cpu_jobs: dict[int, Job | SequentialJob] = {}
        #: the determinism settings of this run's tasks (provenance of every row)
        self._determinism: dict[str, Any] = {}

    def run(self) -> list[Path]:
        """Compute what the result files lack; return their paths. Ctrl-C and SIGTERM
        raise ``KeyboardInterrupt`` here (what finished is saved); plugin code that
        raises one fails its own row (:mod:`fubench.exits`)."""
        with user_signals():
            return self._run()

    def _run(self) -> list[Path]:
        from fubench import executors

        cfg = self.config
        methods = [m.label for m in self.plan.methods]
        self._hook("fubench_run_start", scenario=cfg, seeds=cfg.seeds, methods=methods)
        data = datasets.load(cfg, self.registry)
        say(
            f"{cfg.name}: {data.name} from {data.source}; {len(data.y_train)} train / "
            f"{len(data.y_test)} test; device {self.plan.device}"
        )
        self.cache.sweep_stale()
        execution = executors.Execution(
            self.executor, self.jobs, self.address, self.threads, self.plan.device
        )
        todo = self.pending(data)
        # without a cache, every task would train its seed's references again
        tasks = self.tasks(todo, split=execution.parallel and self.cache.enabled)
        alone = self.executor == "local" and len(tasks) == 1
        if execution.parallel and (alone or not self._portable()):
            execution = executors.Execution("local", 1, None, self.threads, self.plan.device)
            tasks = self.tasks(todo, split=False)
        threads = execution.threads(len(tasks))
        for task in tasks:
            task.threads = threads
        self._determinism = dict(
            determinism.settings(self.plan.device),
            torch_threads=threads,
            # how long a waiting OpenMP thread spins (see fubench/__init__.py): speed only
            gomp_spincount=os.environ.get("GOMP_SPINCOUNT", "unset"),
        )
        workload = self.workload(data, todo)
        executors.run(execution, tasks, self._event, self._run_here, workload)
        paths = [self.files[seed].path for seed in cfg.seeds]
        self._hook("fubench_run_end", scenario=cfg, result_paths=[str(p) for p in paths])
        return paths

    # ------------------------------------------------------------------ tasks
    def pending(self, data: Dataset) -> dict[int, list[str]]:
        """Per seed, the method rows to compute: those its result file (read once, here)
        cannot supply."""
        todo: dict[int, list[str]] = {}
        config_hash = self.config_hash(data)
        fingerprint = datasets.fingerprint(data)
        reused = 0
        for seed in self.config.seeds:
            path = result_path(self.out, self.config.name, seed, self.config.purpose)
            self.files[seed] = ResultFile.open(
                path,
                config_hash,
                fresh=lambda seed=seed: self._fresh(data, fingerprint, seed, config_hash),
                adopt=self._adopt,
                say=say,
            )
            metrics = self._cpu_job(data, seed).metrics
            todo[seed] = worklist.rows_to_compute(self.plan, self.files[seed].rows, metrics)
            for spec in self.plan.method_rows():
                if spec.label not in todo[seed]:
                    reused += 1
                    if self.verbose:
                        say(f"  seed {seed} {spec.label}: reused from {path}")
        if reused and not self.verbose:
            folder = result_path(self.out, self.config.name, 0).parent
            say(
                f"  {reused} row{'s' if reused > 1 else ''} reused from {folder}/ (their code, "
                f"parameters and metrics are unchanged; -v lists them)"
            )
        return todo

    def workload(self, data: Dataset, todo: dict[int, list[str]]) -> Workload:
        """What this run computes, for its progress display: per seed, the rounds of
        training its references (the original and the gold standard; none for a model
        already in the cache), and every method row to compute."""
        rounds = {}
        for seed in self.config.seeds:
            rounds[seed] = sum(
                n
                for key, n in worklist.reference_trainings(self._cpu_job(data, seed))
                if not (self.cache.enabled and self.cache.path(key).exists())
            )
        methods = {spec.label: spec.name for spec in self.plan.method_rows()}
        rows = {(seed, label): methods[label] for seed, labels in todo.items() for label in labels}
        return Workload(self.config.name, rounds, rows)

    def _cpu_job(self, data: Dataset, seed: int) -> Job | SequentialJob:
        """The seed's job on the CPU, built once per run: what this process asks of it
        (its metrics, its cache keys) needs no device, and a request stream composes
        every request's kind to build one."""
        if seed not in self._cpu_jobs:
            cpu_plan = dataclasses.replace(self.plan, device=torch.device("cpu"))
            self._cpu_jobs[seed] = job_for(cpu_plan, data, seed, self.cache)
        return self._cpu_jobs[seed]

    def tasks(self, todo: dict[int, list[str]], split: bool) -> list[Task]:
        """The tasks of this run (see :func:`fubench.engine.worklist.task_rows`)."""
        self._stored.clear()
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        root = str(self.cache.root) if self.cache.enabled else None
        units = worklist.task_rows(self.plan, self.config.seeds, todo, split)
        return [
            Task(
                i,
                self.config,
                seed,
                labels,
                self.device,
                root,
                self.plan.retime,
                plugins=self._plugin_modules(),
                env=env,
            )
            for i, (seed, labels) in enumerate(units)
        ]

    def _run_here(self, task: Task, emit: Emit) -> None:
        """A task in this process, with this runner's registry and plan."""
        run_task(task, emit, self.registry, self.plan)

    def _plugin_modules(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.registry.plugins if p.distribution == LOCAL)

    def worker_plugins(self) -> tuple[str, ...] | None:
        """The hand-registered plugin modules a worker process must import, or None when
        one exists only in this process (the work then stays here, and this says so)."""
        return self._plugin_modules() if self._portable() else None

    def _portable(self) -> bool:
        """Whether worker processes can load every plugin this registry holds (plugins
        registered by hand must be importable modules)."""
        lost = [name for name in self._plugin_modules() if not importable(name)]
        if lost:
            say(
                f"  plugin(s) {', '.join(lost)} exist only in this process: running the "
                f"jobs here, one after the other"
            )
        return not lost

    # ------------------------------------------------------------------ events
    def _event(self, event: Event) -> None:
        """What a task sent back: a line to show, a seed's set-up, or a row to store."""
        if isinstance(event, Say):
            if event.text not in self._said:  # every task of a seed loads its models
                self._said.add(event.text)
                say(event.text)
        elif isinstance(event, SetupBuilt):
            record = self.files[event.seed].record
            record["setup"], record["warnings"] = event.info, event.warnings
            if event.seed not in self._told:
                self._told.add(event.seed)
                for warning in event.warnings:
                    say(f"  !! {warning}")
        elif isinstance(event, RowDone) and (event.seed, event.label) not in self._stored:
            self._stored.add((event.seed, event.label))
            self.files[event.seed].record["provenance"]["determinism"] = self._determinism
            self._store(event.seed, event.label, event.row)
        elif isinstance(event, RowLost) and (event.seed, event.label) not in self._stored:
            self._stored.add((event.seed, event.label))
            self._store(event.seed, event.label, self._lost_row(event))

    def _lost_row(self, event: RowLost) -> dict[str, Any]:
        """The failed row of a method whose worker died before it sent its row."""
        spec = next(s for s in self.plan.method_rows() if s.label == event.label)
        say(f"  !! {event.label} failed: {event.why}")
        code = self.plan.row_code(spec.name, [])
        lost = Outcome("failed", error=event.why)
        return make_row(spec.name, spec.params, spec.sweep, lost, None, [], code)

    # ------------------------------------------------------------------ result file
    def config_hash(self, data: Dataset) -> str:
        """What the rows of a result file were computed under (not which methods or
        seeds ran, nor the device or how the history is stored)."""
        cfg = self.config.resolved()
        for key in ("methods", "seeds", "tuning_seeds", "metrics", "device", "claims"):
            cfg.pop(key)
        cfg["federation"] = model_settings(cfg["federation"])
        cfg["data_fingerprint"] = datasets.fingerprint(data)
        return stable_hash(cfg)

    def _fresh(
        self, data: Dataset, fingerprint: str, seed: int, config_hash: str
    ) -> dict[str, Any]:
        cfg = self.config
        return {
            "schema": SCHEMA_VERSION,
            "scenario": {
                "name": cfg.name,
                "kind": cfg.kind,
                "version": cfg.version,
                "file": cfg.file,
                "description": cfg.description,
                "config": cfg.resolved(),
                # the command line's --set settings, when the file was changed by them
                **({"overrides": cfg.overrides} if cfg.overrides else {}),
            },
            "config_hash": config_hash,
            "seed": seed,
            "purpose": cfg.purpose,
            "dataset": {
                "name": data.name,
                "source": data.source,
                "fingerprint": fingerprint,
                "n_train": len(data.y_train),
                "n_test": len(data.y_test),
            },
            "reference": self.plan.reference.name,
            "setup": {},
            "warnings": [],
            "methods": {},
            "provenance": provenance(self.plan.device, self.registry.loaded_versions()),
        }

    def _adopt(self, previous: dict[str, Any]) -> None:
        """Bring a stored file (computed under this configuration) up to this run: its
        provenance becomes this run's, each row keeps the run that made it, and its
        configuration keeps describing every row it holds (a partial run adds its
        methods and seeds to those recorded, never drops them)."""
        earlier = previous.get("provenance", {})
        for row in previous["methods"].values():
            row.setdefault("computed_at", computed_at(earlier))
        previous["provenance"] = provenance(self.plan.device, self.registry.loaded_versions())
        config, before = self.config.resolved(), previous["scenario"].get("config") or {}
        config["methods"] = {**before.get("methods", {}), **config["methods"]}
        config["seeds"] = sorted({*before.get("seeds", []), *config["seeds"]})
        previous["scenario"]["config"] = config
        previous["reference"] = self.plan.reference.name

    def _store(self, seed: int, label: str, row: dict[str, Any]) -> None:
        file = self.files[seed]
        stored = file.rows.get(label)
        if (
            label in (ORIGINAL, self.plan.reference.name)
            and stored is not None
            and stored.get("status") == "ok" == row["status"]
        ):
            row = self._kept_reference_row(seed, label, stored, row, file.path)
        if "computed_at" not in row:  # computed now (a kept reference row has its own)
            row = dict(row, computed_at=computed_at(file.record["provenance"]))
        file.store(label, row, [m.label for m in self.config.methods], self.plan.reference.name)
        public = {k: v for k, v in row.items() if k != "traceback"}
        self._hook(
            "fubench_method_result", scenario=self.config, seed=seed, method=label, result=public
        )

    def _kept_reference_row(
        self, seed: int, label: str, stored: dict[str, Any], row: dict[str, Any], path: Path
    ) -> dict[str, Any]:
        """A reference row computed again (a partial run): when its model measures the
        same as the stored row's, keep that row (its seconds, and the metrics methods not
        run now made every row compute) and only add the metrics it lacks."""
        if not code_fingerprint.unchanged(stored.get("code"), ROW_HARNESS):
            return row  # computed by other code: the new row replaces it
        cost = {m for m, c in self.registry.metrics.items() if c.role == "cost"}
        shared = (set(stored["metrics"]) & set(row["metrics"])) - cost
        if all(stored["metrics"][m] == row["metrics"][m] for m in shared):
            code = code_fingerprint.merged(stored["code"], row["code"])
            return dict(stored, metrics={**row["metrics"], **stored["metrics"]}, code=code)
        say(
            f"  seed {seed}: the {label} model differs from the one {path.name} was "
            f"measured with (retrained elsewhere?); rows not recomputed now refer to the "
            f"earlier one: --fresh recomputes every row"
        )
        return row

    def _hook(self, name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook with deep copies: it observes, it cannot edit."""
        try:
            with plugin_code():
                getattr(self.registry.hook, name)(**copy.deepcopy(kwargs))
        except BaseException as exc:  # a logging plugin must not stop the benchmark
            if users_interrupt(exc):
                raise
            say(f"  !! a plugin's {name} hook failed: {failure_line(exc)}")
