"""The forgetting columns seed by seed: median and success rate.

A mean ± std hides a method that forgets on some seeds and not on others (attack
success 45.9 / 89.0 / 0.6 % reads "45.2 ± 44.2"). Under each table, for every ranked
forgetting column, each method gets the median over its seeds and its success rate:
the share of seeds on which its value came within the metric's declared
``success_margin`` of the ideal — the number (nfs: |v − 1| ≤ 0.1) or, for a metric
read against the gold standard, the gold standard's own value on the same seed
(asr: |v − v_retrain| ≤ 2 points). Values are in the unit the table shows.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from fubench.registry import Registry
from fubench.report.board import Cell, Row, Table
from fubench.report.claims import per_seed
from fubench.report.ranking import ranked_columns
from fubench.report.table import ScenarioTable, format_value, header, ideal_of, metric_class

#: values this close to the margin's edge count as within it (float noise)
EDGE = 1e-9


@dataclass
class SeedSummary:
    """One row's values of one metric over the seeds."""

    median: float  # in the metric's own unit (as stored)
    successes: int | None  # seeds within the margin; None: the metric declares none
    judged: int  # seeds that could be judged (a value, and the gold standard's where needed)
    seeds: int  # seeds with a value


def forgetting_columns(table: ScenarioTable, registry: Registry) -> list[str]:
    """The ranked forgetting columns (not a raw twin, not undefined, not unranked)."""
    return [
        m
        for m in ranked_columns(table, registry)
        if (cls := metric_class(m, registry)) is not None and cls.role == "forgetting"
    ]


def summarise(
    table: ScenarioTable, row: str, metric: str, registry: Registry
) -> SeedSummary | None:
    """Median and success count of ``row``'s ``metric`` over the seeds (None: no value)."""
    cls = metric_class(metric, registry)
    values = per_seed(table, metric, row)
    if cls is None or not values:
        return None
    median = statistics.median(values.values())
    margin = cls.success_margin
    target = ideal_of(cls, table.kind, registry)
    if margin is None or target is None:
        return SeedSummary(median, None, 0, len(values))
    scale = 100.0 if cls.percent else 1.0
    if isinstance(target, str):  # the gold standard's value on the same seed
        gold = per_seed(table, metric, table.reference)
        targets = {s: gold[s] for s in values if s in gold}
    else:
        targets = {s: float(target) for s in values}
    hits = sum(abs(values[s] - t) * scale <= margin + EDGE for s, t in targets.items())
    return SeedSummary(median, hits, len(targets), len(values))


def cell(table: ScenarioTable, row: str, metric: str, registry: Registry) -> str:
    """ "median · k/n", or the median alone where the metric declares no margin."""
    statuses = table.status.get(row, [])
    if statuses and len(set(statuses)) == 1 and statuses[0] in ("n/a", "failed"):
        return statuses[0]
    summary = summarise(table, row, metric, registry)
    if summary is None:
        return "—"
    text = format_value(metric_class(metric, registry), summary.median, 0.0, 1)
    if summary.successes is not None:
        text += f" · {summary.successes}/{summary.judged}"
    return text


def success_view(table: ScenarioTable, registry: Registry) -> tuple[str, Table] | None:
    """A caption and a table of methods × forgetting columns (None where the table has
    no such column or only one seed)."""
    columns = forgetting_columns(table, registry)
    rows = [r for r in table.rows if r not in table.references]
    if not columns or not rows or len(table.seeds) < 2:
        return None
    body = [
        Row(
            row,
            table.method_of(row),
            [Cell(row)] + [Cell(cell(table, row, m, registry)) for m in columns],
        )
        for row in rows
    ]
    margins = any(metric_class(m, registry).success_margin is not None for m in columns)
    what = (
        "median · seeds within the margin (±) of the gold standard, of the seeds judged"
        if margins
        else "median (no metric here declares a success margin)"
    )
    headers = ["method"] + [_title(m, table, registry) for m in columns]
    return f"Forgetting over the seeds: {what}.", Table(headers, body)


def _title(metric: str, table: ScenarioTable, registry: Registry) -> str:
    margin = metric_class(metric, registry).success_margin
    title = header(metric, registry, table.kind)
    return f"{title} (±{margin:g})" if margin is not None else title
