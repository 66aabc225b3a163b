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


def run_replicas(
    plan: Plan,
    data: Dataset,
    seed: int,
    replicas: int,
    cache: ModelCache | None = None,
    methods: list[MethodSpec] | None = None,
    on_replica: Callable[[int, int], None] | None = None,
) -> ReplicaRows:
    """Train ``replicas`` replicas of ``seed`` and collect every row's statistic on the
    forget set (the kind's ``"forget"`` evaluation set)."""
    start = time.perf_counter()
    # ε needs the models only: a cached reference is never trained again to time it
    plan = replace(plan, timed=False)
    rows = ReplicaRows(plan.reference.name)
    specs = plan.method_rows() if methods is None else methods
    for r in range(replicas):
        if on_replica is not None:
            on_replica(r, replicas)
        job = Job(plan, data, replica_seed(seed, r), cache, data_seed=seed)
        rows.seeds.append(job.seed)
        forget = job.setup.eval_sets["forget"]
        rows.examples = len(forget)
        original, reference = job.references()
        for label, outcome in ((ORIGINAL, original), (rows.reference, reference)):
            stat = (
                logit_confidence(outcome.model, forget.x, forget.y)
                if outcome.status == "ok"
                else None
            )
            rows.add(label, outcome.status, stat, outcome.info.seconds, outcome.error)
        for spec in specs:
            outcome = job.run_method(spec)
            stat = (
                logit_confidence(outcome.model, forget.x, forget.y)
                if outcome.status == "ok"
                else None
            )
            rows.add(spec.label, outcome.status, stat, outcome.info.seconds, outcome.error)
    rows.wall_seconds = time.perf_counter() - start
    return rows
