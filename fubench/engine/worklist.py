"""What a run must compute, decided in one place.

Per seed, a method's row is computed again unless its result file already holds it as
this run would compute it — same parameters, same code, every metric (:func:`reusable`);
a row that reads another method's result runs again with it (:func:`readers_of`). The
rows left are cut into tasks (:func:`task_rows`): one per seed, or — to keep every
worker busy — one per group of rows that belong together (:func:`row_groups`). The
references' trainings a seed still needs are counted for the progress display
(:func:`reference_trainings`)."""

from __future__ import annotations

from typing import Any

from fubench import code_fingerprint
from fubench.config.spec import MethodSpec
from fubench.engine.job import Job
from fubench.engine.plan import ROW_HARNESS, Plan
from fubench.engine.sequential import SequentialJob


def reusable(
    row: dict[str, Any] | None, spec: MethodSpec, metrics: list[str], code: dict[str, Any]
) -> bool:
    """Whether a stored row can stand for ``spec``'s row now: it succeeded (or the
    method declined the scenario, "n/a"), with the same parameters, every piece of code
    it records is unchanged, it records at least the code this run would use (``code``,
    :meth:`Plan.row_code`), and, when it succeeded, it holds every metric this run
    measures. A failed row is always computed again: failures are never kept."""
    if row is None or row.get("status") not in ("ok", "n/a"):
        return False
    return (
        row.get("params") == spec.params
        and code_fingerprint.covers(row.get("code"), code)
        and code_fingerprint.unchanged(row.get("code"), ROW_HARNESS)
        and (row["status"] == "n/a" or set(metrics) <= set(row["metrics"]))
    )


def rows_to_compute(plan: Plan, stored: dict[str, Any], metrics: list[str]) -> list[str]:
    """The labels of the method rows a seed must compute, given the rows its result file
    holds (``stored``, by label), in the plan's order."""
    specs = plan.method_rows()
    stale = {
        spec.label
        for spec in specs
        if not reusable(stored.get(spec.label), spec, metrics, plan.row_code(spec.name, metrics))
    }
    stale |= readers_of(plan, stale)
    return [spec.label for spec in specs if spec.label in stale]


def readers_of(plan: Plan, labels: set[str]) -> set[str]:
    """The rows that read, directly or through another reader, a method with a row in
    ``labels``: they must run again with it (random_reset mirrors what tis_reset
    computes now)."""
    rows = plan.method_rows()
    found: set[str] = set()
    while True:
        names = {spec.name for spec in rows if spec.label in labels | found}
        more = {
            spec.label
            for spec in rows
            if spec.label not in labels | found
            and names & set(plan.registry.methods.get(spec.name).reads)
        }
        if not more:
            return found
        found |= more


def row_groups(plan: Plan) -> list[list[str]]:
    """The method rows cut into groups that run together: the points of one method's
    sweep (they may share work through ``Federation.ask(share=...)``), and methods
    linked by ``reads``. Larger groups first."""
    rows = plan.method_rows()
    group = {m.name: m.name for m in rows}

    def root(name: str) -> str:
        while group[name] != name:
            name = group[name]
        return name

    for spec in rows:
        for read in plan.registry.methods.get(spec.name).reads:
            if read in group:
                group[root(spec.name)] = root(read)
    groups: dict[str, list[str]] = {}
    for spec in rows:
        groups.setdefault(root(spec.name), []).append(spec.label)
    return sorted(groups.values(), key=len, reverse=True)


def task_rows(
    plan: Plan, seeds: list[int], todo: dict[int, list[str]], split: bool
) -> list[tuple[int, list[str]]]:
    """(seed, row labels) of each task: the rows ``todo`` lists, in one task per seed
    or, with ``split``, one per group of rows, ordered so that the first tasks cover
    different seeds. A seed whose rows are all reused still gets a task: it refreshes
    its reference rows."""
    groups = row_groups(plan) if split else [[m.label for m in plan.method_rows()]]
    units: list[tuple[int, list[str]]] = []
    for group in groups:
        for seed in seeds:
            labels = [label for label in group if label in todo[seed]]
            if labels:
                units.append((seed, labels))
    covered = {seed for seed, _ in units}
    return units + [(seed, []) for seed in seeds if seed not in covered]


def reference_trainings(job: Job | SequentialJob) -> list[tuple[str, int]]:
    """The trainings a seed's references take, as (model-cache key, rounds): for one
    request, the original and the gold standard over the scenario's rounds; for a
    request stream, the original's stretches up to each request and on to the end,
    the gold standard at each request (from scratch, to its round), and the last one
    trained on to the end, under the cache roles :class:`SequentialJob` stores them by
    (a test trains a stream and expects nothing left to count)."""
    rounds = job.plan.rounds
    if not isinstance(job, SequentialJob):
        return [(job.cache_key(role), rounds) for role in ("original", "reference")]
    ends = [stage.round for stage in job.stages] + [rounds]
    starts = [0, *ends[:-1]]
    trainings = [
        (job.base.cache_key(f"stream-original@{end}"), end - start)
        for start, end in zip(starts, ends)
    ]
    trainings += [
        (stage_job.cache_key("reference"), stage_job.plan.rounds) for stage_job in job.jobs
    ]
    trainings.append((job.base.cache_key("stream-reference@end"), rounds - ends[-2]))
    return trainings
