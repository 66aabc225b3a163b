"""Scenario × seeds → result files.

Per seed, a :class:`fubench.engine.Job` builds the scenario, gets the original and the
reference model (cached), checks the scenario's preconditions and runs every method.
The runner cuts the work into tasks — one per seed, or with ``jobs > 1`` one per seed
and group of rows that belong together (a method's sweep points share γ-independent
work; a method that ``reads`` another runs with it) — and hands them to an executor
(:mod:`fubench.executors`): this process, worker processes, or a Ray cluster. Every
task runs :func:`run_task` and sends its rows back as events; this process alone
writes the result files. After each row the seed's JSON is rewritten atomically, so an
interrupted run loses at most the rows in progress, and a re-run reuses every row
already computed under the same configuration and parameters. Lifecycle hooks tell
plugins as the run proceeds."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from fubench import data as datasets
from fubench.config.spec import MethodSpec, ScenarioConfig
from fubench.engine import Job, ModelCache, Plan, determinism
from fubench.engine.plan import model_settings
from fubench.plugins import get_registry, load_registry, reset_registry
from fubench.progress import bar, quietly, say
from fubench.registry import Registry
from fubench.results import (
    ORIGINAL,
    SCHEMA_VERSION,
    clean_number,
    computed_at,
    provenance,
    read_result,
    result_path,
    row_order,
    stable_hash,
    write_json_atomic,
)
from fubench.scenario import Dataset

#: what a task sends back: ("say", text) | ("setup", seed, info, warnings)
#: | ("row", seed, label, row)
Event = tuple
#: variables a task carries to its worker (a Ray node does not inherit them)
FORWARDED_ENV = (
    "FUBENCH_DATA",
    "FUBENCH_PLUGINS",
    "FUBENCH_DISABLE_PLUGIN_AUTOLOAD",
    "FUBENCH_PROGRESS_INTERVAL",
    "MKL_CBWR",
)


@dataclasses.dataclass
class Task:
    """One unit of work, picklable: some rows of one (scenario, seed)."""

    unit: int
    config: ScenarioConfig
    seed: int
    labels: list[str]  # the method rows to compute (reference rows always)
    device: str | None = None
    cache_root: str | None = None  # None: no cache
    retime: bool = False
    threads: int | None = None  # torch threads in the worker; None: leave as is
    plugins: tuple[str, ...] = ()  # importable modules of plugins loaded by hand
    env: dict[str, str] = dataclasses.field(default_factory=dict)


class Runner:
    """Runs one scenario file's seeds and writes ``<out>/<scenario>/seed_<n>.json``.

    ``jobs``: how many tasks run at once (1: in this process, one seed after the other;
    None: as many as the machine holds, see :func:`fubench.executors.default_jobs`);
    ``executor``: "local" (worker processes) or "ray" (``address``: the cluster);
    ``threads``: torch threads per task (default: the cores divided among the jobs);
    ``retime``: time the reference on this hardware even when the cache has a timing."""

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
        self._results: dict[int, tuple[Path, dict[str, Any]]] = {}
        self._told: set[int] = set()
        #: (seed, label) stored in this run: every task of a seed sends the same
        #: reference rows, stored (and announced to plugins) once
        self._stored: set[tuple[int, str]] = set()
        #: the determinism settings of this run's tasks (provenance of every row)
        self._determinism: dict[str, Any] = {}

    def run(self) -> list[Path]:
        from fubench import executors

        cfg = self.config
        self._hook(
            "fubench_run_start",
            scenario=cfg,
            seeds=cfg.seeds,
            methods=[m.label for m in self.plan.methods],
        )
        data = datasets.load(cfg, self.registry)
        say(
            f"{cfg.name}: {data.name} from {data.source}; {len(data.y_train)} train / "
            f"{len(data.y_test)} test; device {self.plan.device}"
        )
        self.cache.sweep_stale()
        where = executors.Where(
            self.executor, self.jobs, self.address, self.threads, self.plan.device
        )
        todo = self.pending(data)
        # without a cache, every task would train its seed's references again
        tasks = self.tasks(todo, split=where.parallel and self.cache.enabled)
        alone = self.executor == "local" and len(tasks) == 1
        if where.parallel and (alone or not self._portable()):
            where = executors.Where("local", 1, None, self.threads, self.plan.device)
            tasks = self.tasks(todo, split=False)
        threads = where.threads(len(tasks))
        # a worker's stderr is not a terminal: it reports its progress as periodic lines,
        # which the one display here shows above its bar over the rows
        for task in tasks:
            task.threads = threads
        self._determinism = determinism.settings(self.plan.device)
        if threads is not None:
            self._determinism["torch_threads"] = threads
        executors.run(where, tasks, self._event, in_process=self._run_here)
        paths = [self._results[seed][0] for seed in cfg.seeds]
        self._hook("fubench_run_end", scenario=cfg, result_paths=[str(p) for p in paths])
        return paths

    # ------------------------------------------------------------------ tasks
    def pending(self, data: Dataset) -> dict[int, list[str]]:
        """Per seed, the method rows to compute: those its result file (read once, here)
        cannot supply."""
        todo: dict[int, list[str]] = {}
        for seed in self.config.seeds:
            path = result_path(self.out, self.config.name, seed)
            config_hash = self.config_hash(data)
            result = self._previous(path, config_hash) or self._fresh(data, seed, config_hash)
            self._results[seed] = (path, result)
            metrics = Job(
                dataclasses.replace(self.plan, device=torch.device("cpu")), data, seed
            ).metrics
            specs = self.plan.method_rows()
            stale = {spec.label for spec in specs if not self._reusable(result, spec, metrics)}
            stale |= self.plan.readers_of(stale)
            todo[seed] = [spec.label for spec in specs if spec.label in stale]
            for spec in specs:
                if spec.label not in stale:
                    say(f"  {spec.label}: reused from {path.name}")
        return todo

    def tasks(self, todo: dict[int, list[str]], split: bool) -> list[Task]:
        """The tasks of this run: the rows ``todo`` lists, in one task per seed or, with
        ``split``, one per group of rows, ordered so that the first tasks cover
        different seeds."""
        self._stored.clear()
        groups = self.plan.row_groups() if split else [[m.label for m in self.plan.method_rows()]]
        units: list[tuple[int, list[str]]] = []
        for group in groups:
            for seed in self.config.seeds:
                labels = [label for label in group if label in todo[seed]]
                if labels:
                    units.append((seed, labels))
        covered = {seed for seed, _ in units}
        # a seed whose rows are all reused still refreshes its reference rows
        units += [(seed, []) for seed in self.config.seeds if seed not in covered]
        env = {k: os.environ[k] for k in FORWARDED_ENV if k in os.environ}
        root = str(self.cache.root) if self.cache.enabled else None
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

    def _run_here(self, task: Task, emit: Callable[[Event], None]) -> None:
        """A task in this process, with this runner's registry and plan."""
        run_task(task, emit, self.registry, self.plan)

    def _plugin_modules(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.registry.plugins if p.distribution == "(local)")

    def _portable(self) -> bool:
        """Whether worker processes can load every plugin this registry holds (plugins
        registered by hand must be importable modules)."""
        lost = [name for name in self._plugin_modules() if not _importable(name)]
        if lost:
            say(
                f"  plugin(s) {', '.join(lost)} exist only in this process: running the "
                f"jobs here, one after the other"
            )
        return not lost

    # ------------------------------------------------------------------ events
    def _event(self, event: Event) -> None:
        """What a task sent back: a line to show, a seed's setup, or a row to store."""
        if event[0] == "say":
            say(event[1])
            return
        seed = event[1]
        path, result = self._results[seed]
        if event[0] == "setup":
            result["setup"], result["warnings"] = event[2], event[3]
            if seed not in self._told:
                self._told.add(seed)
                for warning in result["warnings"]:
                    say(f"  !! {warning}")
        elif event[0] == "row" and (seed, event[2]) not in self._stored:
            self._stored.add((seed, event[2]))
            result["provenance"]["determinism"] = self._determinism
            self._store(result, path, seed, event[2], event[3])

    # ------------------------------------------------------------------ result file
    def config_hash(self, data: Dataset) -> str:
        """What the rows of a result file were computed under (not which methods or
        seeds ran, nor the device or how the history is stored)."""
        cfg = self.config.resolved()
        for key in ("methods", "seeds", "metrics", "device", "claims"):
            cfg.pop(key)
        cfg["federation"] = model_settings(cfg["federation"])
        cfg["data_fingerprint"] = datasets.fingerprint(data)
        return stable_hash(cfg)

    def _fresh(self, data: Dataset, seed: int, config_hash: str) -> dict[str, Any]:
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
            },
            "config_hash": config_hash,
            "seed": seed,
            "dataset": {
                "name": data.name,
                "source": data.source,
                "fingerprint": datasets.fingerprint(data),
                "n_train": len(data.y_train),
                "n_test": len(data.y_test),
            },
            "reference": self.plan.reference.name,
            "setup": {},
            "warnings": [],
            "methods": {},
            "provenance": provenance(self.plan.device, self.registry.loaded_versions()),
        }

    def _previous(self, path: Path, config_hash: str) -> dict[str, Any] | None:
        """The existing result file, if it was computed under this configuration."""
        if not path.exists():
            return None
        try:
            previous = read_result(path)
        except (ValueError, OSError) as exc:
            say(f"  {path} is unreadable ({exc}); starting it afresh")
            return None
        if previous.get("config_hash") != config_hash:
            say(f"  {path} was computed under another configuration; starting it afresh")
            return None
        # the file's provenance becomes this run's; each row keeps the run that made it
        earlier = previous.get("provenance", {})
        for row in previous["methods"].values():
            row.setdefault("computed_at", computed_at(earlier))
        previous["provenance"] = provenance(self.plan.device, self.registry.loaded_versions())
        # the file keeps describing the rows it holds: a partial run (--methods, --seeds)
        # adds its methods and seeds to those recorded, never drops them
        config, before = self.config.resolved(), previous["scenario"].get("config") or {}
        config["methods"] = {**before.get("methods", {}), **config["methods"]}
        config["seeds"] = sorted({*before.get("seeds", []), *config["seeds"]})
        previous["scenario"]["config"] = config
        previous["reference"] = self.plan.reference.name
        return previous

    @staticmethod
    def _reusable(result: dict[str, Any], spec: MethodSpec, metrics: list[str]) -> bool:
        row = result["methods"].get(spec.label)
        return (
            row is not None
            and row.get("status") == "ok"
            and row.get("params") == spec.params
            and set(metrics) <= set(row["metrics"])
        )

    def _store(
        self, result: dict[str, Any], path: Path, seed: int, label: str, row: dict[str, Any]
    ) -> None:
        stored = result["methods"].get(label)
        if (
            label in (ORIGINAL, self.plan.reference.name)
            and stored is not None
            and stored.get("status") == "ok" == row["status"]
        ):
            # a reference row again (a partial run): when its model measures the same as
            # the stored row's, keep that row (its seconds, and the metrics methods not
            # run now made every row compute) and only add the metrics it lacks
            cost = {m for m, c in self.registry.metrics.items() if c.role == "cost"}
            shared = (set(stored["metrics"]) & set(row["metrics"])) - cost
            if all(stored["metrics"][m] == row["metrics"][m] for m in shared):
                row = dict(stored, metrics={**row["metrics"], **stored["metrics"]})
            else:
                say(
                    f"  seed {seed}: the {label} model differs from the one {path.name} "
                    f"was measured with (retrained elsewhere?); rows not recomputed now "
                    f"refer to the earlier one: --fresh recomputes every row"
                )
        if "computed_at" not in row:  # computed now (a kept reference row has its own)
            row = dict(row, computed_at=computed_at(result["provenance"]))
        methods = dict(result["methods"], **{label: row})
        listed = [m.label for m in self.config.methods]
        result["methods"] = {
            k: methods[k] for k in row_order(methods, self.plan.reference.name, listed)
        }
        write_json_atomic(path, result)
        public = {k: v for k, v in row.items() if k != "traceback"}
        self._hook(
            "fubench_method_result", scenario=self.config, seed=seed, method=label, result=public
        )

    def _hook(self, name: str, **kwargs: Any) -> None:
        try:
            getattr(self.registry.hook, name)(**kwargs)
        except Exception as exc:  # a logging plugin must not stop the benchmark
            say(f"  !! a plugin's {name} hook failed: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------- one task
def run_task(
    task: Task,
    emit: Callable[[Event], None],
    registry: Registry | None = None,
    plan: Plan | None = None,
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
    cache = (
        ModelCache(Path(task.cache_root))
        if task.cache_root is not None
        else ModelCache(enabled=False)
    )
    job = Job(plan, data, task.seed, cache)
    info = {k: clean_number(v) for k, v in job.setup.info.items()}
    job.references()
    emit(("setup", task.seed, info, job.warnings()))
    for label, row in job.reference_rows().items():
        emit(("row", task.seed, label, row))
    wanted = [spec for spec in plan.method_rows() if spec.label in task.labels]
    for spec in bar(wanted, desc=f"seed {task.seed} methods", unit="method"):
        emit(("row", task.seed, spec.label, job.method_row(spec, job.run(spec))))


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


def _importable(name: str) -> bool:
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__file__", None) is None:
        return False  # built in memory: a worker cannot import it
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
