"""Training replicas of one (scenario, seed), for the forgetting-quality ε
(:mod:`fubench.forget_quality`).

Replica r of seed s keeps everything the data decide — the partition, the kind's build
(the forget set, the poisoned samples), the attacks — on seed s, and draws the training
randomness (initialisation, client sampling, batch order, each method's own generator)
from a seed of its own. Replica 0 *is* the job of seed s, so its original and reference
models come from the same cache entries as ``fubench run``; replicas 1..K−1 are cached
under their own keys, so a second ε run (another method, a changed method) retrains
nothing. Methods are run anew in every replica: their models are not cached.

Cost: K × (original + reference training, the first time) + K × every method's run.
The replicas are independent: ``fubench quality --jobs N`` runs N side by side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from fubench.config.spec import MethodSpec
from fubench.engine.cache import ModelCache
from fubench.engine.job import Job
from fubench.engine.plan import Plan
from fubench.fl.training import derive_seed
from fubench.forget_quality import logit_confidence
from fubench.results import ORIGINAL
from fubench.scenario import Dataset


def replica_seed(seed: int, replica: int) -> int:
    """The training seed of replica ``replica`` of run seed ``seed`` (replica 0: ``seed``)."""
    return seed if replica == 0 else derive_seed(seed, "replica", replica) % (2**31 - 1)


@dataclass
class ReplicaRows:
    """Per row (original, each method's label, the reference): the statistic on the
    forget set from every replica where the row succeeded, and how each replica ended."""

    reference: str
    stats: dict[str, list[np.ndarray]] = field(default_factory=dict)
    status: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # method time, summed
    seeds: list[int] = field(default_factory=list)
    wall_seconds: float = 0.0
    examples: int = 0

    def add(
        self,
        row: str,
        status: str,
        stat: np.ndarray | None = None,
        seconds: float | None = None,
        error: str | None = None,
    ) -> None:
        self.status.setdefault(row, []).append(status)
        if stat is not None:
            self.stats.setdefault(row, []).append(stat)
        if seconds is not None:
            self.seconds[row] = self.seconds.get(row, 0.0) + seconds
        if error and row not in self.errors:
            self.errors[row] = error

    def matrix(self, row: str) -> np.ndarray:
        """(models, examples) statistics of ``row``."""
        return np.stack(self.stats.get(row, [])) if self.stats.get(row) else np.zeros((0, 0))


@dataclass
class Replica:
    """What one replica produced: its training seed, the forget set's size, and per row
    (label, status, statistic, method seconds, error) in the order the rows ran."""

    seed: int
    examples: int
    rows: list[tuple[str, str, np.ndarray | None, float | None, str | None]]


def one_replica(
    plan: Plan,
    data: Dataset,
    seed: int,
    replica: int,
    cache: ModelCache | None,
    specs: list[MethodSpec],
) -> Replica:
    """Replica ``replica`` of ``seed``: its original and reference models (cached) and
    every method in ``specs`` run anew, each scored on the forget set."""
    job = Job(plan, data, replica_seed(seed, replica), cache, data_seed=seed)
    forget = job.setup.eval_sets["forget"]
    done = Replica(job.seed, len(forget), [])
    original, reference = job.references()
    outcomes = [(ORIGINAL, original), (plan.reference.name, reference)]
    outcomes += [(spec.label, job.run_method(spec)) for spec in specs]
    for label, outcome in outcomes:
        stat = (
            logit_confidence(outcome.model, forget.x, forget.y) if outcome.status == "ok" else None
        )
        done.rows.append((label, outcome.status, stat, outcome.info.seconds, outcome.error))
    return done


#: runs replicas ``0..K-1`` of a seed elsewhere (worker processes) and returns them in
#: replica order; ``on_done(n, K)`` after each finishes
ReplicaMap = Callable[[int, int, list[str], Callable[[int, int], None] | None], list[Replica]]


def run_replicas(
    plan: Plan,
    data: Dataset,
    seed: int,
    replicas: int,
    cache: ModelCache | None = None,
    methods: list[MethodSpec] | None = None,
    on_replica: Callable[[int, int], None] | None = None,
    elsewhere: ReplicaMap | None = None,
) -> ReplicaRows:
    """Train ``replicas`` replicas of ``seed`` and collect every row's statistic on the
    forget set (the kind's ``"forget"`` evaluation set): here, one after the other, or
    through ``elsewhere`` (:mod:`fubench.executors.replicas`: side by side in worker
    processes). Each replica is seeded on its own, so both ways give the same rows.
    ``on_replica(n, K)`` is called as the n-th replica finishes."""
    start = time.perf_counter()
    # ε needs the models only: a cached reference is never trained again to time it
    plan = replace(plan, timed=False)
    specs = plan.method_rows() if methods is None else methods
    if elsewhere is not None:
        done = elsewhere(seed, replicas, [spec.label for spec in specs], on_replica)
    else:
        done = []
        for r in range(replicas):
            done.append(one_replica(plan, data, seed, r, cache, specs))
            if on_replica is not None:
                on_replica(r + 1, replicas)
    rows = ReplicaRows(plan.reference.name)
    for replica in done:  # replica order, whatever order they finished in
        rows.seeds.append(replica.seed)
        rows.examples = replica.examples
        for label, status, stat, seconds, error in replica.rows:
            rows.add(label, status, stat, seconds, error)
    rows.wall_seconds = time.perf_counter() - start
    return rows
