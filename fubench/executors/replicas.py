"""The replicas of ``fubench quality --jobs N`` in N worker processes on this machine.

Replicas are independent trainings (each seeded on its own, :mod:`fubench.engine.replicas`),
so a plain process pool runs them side by side: a spawned worker (a fresh interpreter,
SIGINT and SIGTERM left to this process) builds the plan and loads the data once, then
computes whole replicas and sends back their forget-set statistics. The model cache is
safe under concurrent workers. The rows come back in replica order, so the ε record is
the one a run with ``--jobs 1`` writes (the seconds aside)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path

from fubench.config.spec import ScenarioConfig
from fubench.engine.replicas import Replica
from fubench.errors import FubenchError


class ReplicaWorkerDied(FubenchError):
    """A worker process ended while computing a replica (a signal, the out-of-memory
    killer, plugin code that ended its process)."""


@dataclass
class ReplicaPool:
    """How to run a seed's replicas in ``jobs`` worker processes: the scenario (as
    overridden), the device, the model cache's folder (None: no cache), torch threads
    per worker, hand-loaded plugin modules and the environment the workers need."""

    config: ScenarioConfig
    jobs: int
    device: str | None
    cache_root: str | None
    threads: int = 1
    plugins: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)

    def __call__(
        self,
        seed: int,
        replicas: int,
        labels: list[str],
        on_done: Callable[[int, int], None] | None = None,
    ) -> list[Replica]:
        """Replicas ``0..replicas-1`` of ``seed`` with the method rows ``labels``."""
        from fubench.exits import signals_ignored

        done: dict[int, Replica] = {}
        context = multiprocessing.get_context("spawn")
        # started with SIGINT and SIGTERM ignored: only this process answers them
        with signals_ignored():
            pool = ProcessPoolExecutor(min(self.jobs, replicas), mp_context=context)
        with pool:
            futures = {
                pool.submit(_replica_in_worker, self, seed, r, tuple(labels)): r
                for r in range(replicas)
            }
            try:
                for future in as_completed(futures):
                    done[futures[future]] = future.result()
                    if on_done is not None:
                        on_done(len(done), replicas)
            except BrokenProcessPool:
                raise ReplicaWorkerDied(
                    f"a worker process died while computing a replica of seed {seed} "
                    f"(killed, out of memory, or plugin code ended it); run with --jobs 1 "
                    f"to see which method"
                ) from None
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return [done[r] for r in range(replicas)]


#: per worker process: the scenario's plan and data, built once
_LOADED: dict[str, tuple] = {}


def _replica_in_worker(pool: ReplicaPool, seed: int, replica: int, labels: tuple[str, ...]):
    """In a worker: replica ``replica`` of ``seed``."""
    from fubench.engine.cache import ModelCache
    from fubench.engine.replicas import one_replica

    plan, data = _plan_and_data(pool)
    root = pool.cache_root
    cache = ModelCache(Path(root)) if root is not None else ModelCache(enabled=False)
    specs = [spec for spec in plan.method_rows() if spec.label in labels]
    return one_replica(plan, data, seed, replica, cache, specs)


def _plan_and_data(pool: ReplicaPool) -> tuple:
    key = pool.config.name
    if key not in _LOADED:
        from fubench import data as datasets
        from fubench.engine import determinism
        from fubench.engine.plan import Plan
        from fubench.engine.tasks import worker_registry
        from fubench.exits import ignore_user_signals
        from fubench.progress import quietly

        ignore_user_signals()
        os.environ.update(pool.env)
        determinism.configure(pool.threads)
        registry = worker_registry(pool.plugins)
        plan = replace(Plan.from_config(pool.config, registry, pool.device), timed=False)
        with quietly():  # the fubench process has said where the data come from
            data = datasets.load(pool.config, registry)
        _LOADED[key] = (plan, data)
    return _LOADED[key]
