"""Tables of results: methods × metrics, mean ± std over seeds.

Rows read original → methods → the reference. A cell is "—" where the metric is
undefined (e.g. a normalised metric whose denominator is ~0), "n/a" where the method
does not serve the scenario, "failed" where it failed; "(k/n)" marks a cell that only k
of n seeds produced, and a row that ran on fewer seeds than the table names them
(``my_method (seed 0)``). Everything about a metric comes from its declaration."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tabulate import tabulate

from fubench import metric_names
from fubench.api import Metric
from fubench.engine.timing import LOAD_MARGIN, MIN_CPU_SHARE
from fubench.registry import Registry
from fubench.report.fit import table_parts
from fubench.report.markup import md_text
from fubench.report.reader import (
    Result,
    by_scenario,
    code_difference,
    majority_code,
    reference_row,
)
from fubench.report.separation import gap_of, tested_metric
from fubench.results import ORIGINAL, row_order

UNDEFINED = "—"


@dataclass
class Cell:
    values: list[float] = field(default_factory=list)
    undefined: int = 0
    statuses: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0


@dataclass
class ScenarioTable:
    """Aggregated results of one scenario over its seeds."""

    scenario: str
    kind: str
    version: Any
    seeds: list[int]
    rows: list[str]
    metrics: list[str]
    cells: dict[tuple[str, str], Cell]
    status: dict[str, list[str]]
    errors: dict[str, str]
    warnings: list[str]
    source: str
    params: dict[str, dict[str, Any]]
    reference: str
    results: list[Result] = field(default_factory=list)
    #: metric -> why it is undefined for the whole scenario (cells emptied)
    undefined: dict[str, str] = field(default_factory=dict)
    #: metric -> why it is shown but not ranked
    unranked: dict[str, str] = field(default_factory=dict)
    #: the same scenario on its tuning seeds (``fubench run --tuning``), where a swept
    #: method's point is chosen; never shown
    tuning: ScenarioTable | None = None
    #: rows of methods that declare ``baseline``: shown, never ranked
    baselines: set[str] = field(default_factory=set)
    #: row -> what its method says a reader must know of it (``Unlearner.caveat``)
    caveats: dict[str, str] = field(default_factory=dict)
    #: (row, metric) -> why the metric failed on that row (its first seed's error)
    metric_errors: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def references(self) -> tuple[str, str]:
        """The two rows every method is measured against: original and the reference."""
        return ORIGINAL, self.reference

    def stats(self, row: str, metric: str) -> tuple[float, float] | None:
        """(mean, std) over the seeds that define the cell, or None."""
        cell = self.cells.get((row, metric))
        if cell is None or not cell.values:
            return None
        return cell.mean, cell.std

    def method_of(self, row: str) -> str:
        """The method behind a row label (``tis_reset[gamma=0.3]`` -> ``tis_reset``)."""
        for result in self.results:
            if row in result["methods"]:
                return result["methods"][row].get("method", row)
        return row


def metric_class(metric: str, registry: Registry) -> type[Metric] | None:
    """The registered metric (a request stream's ``nfs@2`` reads as ``nfs``:
    :mod:`fubench.metric_names`), or None for a metric no installed plugin provides."""
    return metric_names.lookup(registry.metrics.classes, metric)


def aggregate(
    results: list[Result], registry: Registry, separate: bool = True
) -> list[ScenarioTable]:
    """Group result files by scenario and aggregate each row and metric over seeds; a
    metric that cannot tell the original from the gold standard beyond the seeds' noise
    is made undefined (normalised by that gap) or unranked (read against the gold
    standard) — see :mod:`fubench.report.separation`."""
    tables = []
    # the code of the rows not carried over, across every scenario given
    common = majority_code(row for result in results for row in result["methods"].values())
    for name, group in by_scenario(results).items():
        reported = [r for r in group if r.get("purpose", "evaluation") != "tuning"]
        tuning = [r for r in group if r.get("purpose", "evaluation") == "tuning"]
        if not reported:
            continue  # tuning seeds choose settings; alone they have nothing to report
        table = _aggregate_one(name, reported, reference_row(reported, registry), common)
        if separate:
            mark_inseparable(table, registry)
        if tuning:
            table.tuning = _aggregate_one(name, tuning, reference_row(tuning, registry), common)
            if separate:
                mark_inseparable(table.tuning, registry)
        for each in (table, table.tuning):
            if each is not None:
                read_declarations(each, registry)
        tables.append(table)
    return tables


def read_declarations(table: ScenarioTable, registry: Registry) -> None:
    """What the rows' methods declare about them: which rows are baselines, and each
    row's caveat (a method no installed plugin provides declares nothing)."""
    for row in table.rows:
        cls = registry.methods.classes.get(table.method_of(row))
        if cls is None:
            continue
        if getattr(cls, "baseline", False):
            table.baselines.add(row)
        caveat = cls.caveat(table.params.get(row, {}))
        if caveat:
            table.caveats[row] = str(caveat)


def shown_label(table: ScenarioTable, row: str) -> str:
    """A row's label as tables show it: with its method's caveat, if any."""
    caveat = table.caveats.get(row)
    return f"{row} ({caveat})" if caveat else row


def mark_inseparable(table: ScenarioTable, registry: Registry) -> None:
    for metric in table.metrics:
        raw = tested_metric(metric, registry)
        if raw is None:
            continue
        cls = metric_class(raw, registry)
        gap = gap_of(table.results, table.reference, raw, cls.original_side if cls else None)
        if gap.separated is not False:
            continue
        reason = f"{gap.describe(bool(cls and cls.percent))}: {gap.why_not()}"
        if raw != metric:  # a ratio of noise: undefined
            table.undefined[metric] = reason
            for row in table.rows:
                cell = table.cells.get((row, metric))
                if cell is not None:
                    cell.undefined += len(cell.values)
                    cell.values = []
        else:
            table.unranked[metric] = reason


def _aggregate_one(
    name: str, group: list[Result], reference: str, common: dict[str, Any] | None = None
) -> ScenarioTable:
    rows: list[str] = []
    metrics: list[str] = []
    cells: dict[tuple[str, str], Cell] = defaultdict(Cell)
    status: dict[str, list[str]] = defaultdict(list)
    errors: dict[str, str] = {}
    params: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    metric_errors: dict[tuple[str, str], str] = {}
    for result in group:
        warnings += [f"seed {result['seed']}: {w}" for w in result.get("warnings", [])]
        for label, row in result["methods"].items():
            if label not in rows:
                rows.append(label)
            params[label] = row.get("params", {})
            status[label].append(row["status"])
            if row["status"] != "ok" and row.get("error"):
                errors.setdefault(label, row["error"])
            for metric, why in (row.get("metric_errors") or {}).items():
                metric_errors.setdefault((label, metric), why)
            for metric, value in row.get("metrics", {}).items():
                if metric not in metrics:
                    metrics.append(metric)
                cell = cells[(label, metric)]
                cell.statuses.append(row["status"])
                if value is None:
                    cell.undefined += 1
                else:
                    cell.values.append(float(value))
    warnings += contended_timings(group)
    warnings += carried_over(group, common)
    first = group[0]
    return ScenarioTable(
        name,
        first["scenario"]["kind"],
        first["scenario"].get("version"),
        [r["seed"] for r in group],
        row_order(rows, reference),
        metrics,
        dict(cells),
        dict(status),
        errors,
        warnings,
        first["dataset"]["source"],
        params,
        reference,
        group,
        metric_errors=metric_errors,
    )


def carried_over(group: list[Result], common: dict[str, Any] | None = None) -> list[str]:
    """One note naming the rows marked ``"carried_over"`` (kept from an earlier run on
    purpose, exempt from the one-commit check), with the commits that computed them and
    whether they record the code of the rows not carried over (``common``, see
    :func:`~fubench.report.reader.majority_code`): what decides their numbers."""
    kept = [
        (result["seed"], label, row)
        for result in group
        for label, row in result["methods"].items()
        if row.get("carried_over")
    ]
    if not kept:
        return []
    commits = sorted({str(row.get("computed_at", {}).get("git_hash"))[:7] for _, _, row in kept})
    seeds: dict[str, list[int]] = defaultdict(list)
    for seed, label, _ in kept:
        seeds[label].append(seed)
    by_seeds: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for label, on in seeds.items():
        by_seeds[tuple(sorted(on))].append(label)
    if len(kept) == sum(len(result["methods"]) for result in group):
        rows = "every row"
    else:
        rows = "; ".join(
            f"{seed_span(on, len(group))}: {', '.join(labels)}"
            for on, labels in sorted(by_seeds.items(), key=lambda item: -len(item[0]))
        )
    if common is None or common["harness"] is None:
        code = ""
    elif not any(code_difference(row.get("code"), common, "") for _, _, row in kept):
        code = (
            ", by the same code as the rows computed since (equal fingerprints of the harness "
            "and of every module both record)"
        )
    else:
        code = ", by other code than the rows computed since (code fingerprints differ)"
    return [f"carried over from an earlier run at commit {', '.join(commits)}{code}: {rows}"]


def contended_timings(group: list[Result]) -> list[str]:
    """One note naming the rows whose wall time was taken while the machine was
    contended, grouped by the seeds where it was: their ``seconds`` and ``rtr`` read
    slower than a quiet machine's (the counted ``work`` does not depend on it)."""
    seeds: dict[str, list[int]] = defaultdict(list)
    for result in group:
        for label, row in result["methods"].items():
            if (row.get("timing") or {}).get("contended"):
                seeds[label].append(result["seed"])
    if not seeds:
        return []
    rows_by_seeds: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for label, on in seeds.items():
        rows_by_seeds[tuple(sorted(on))].append(label)
    every = len(group)
    parts = [
        f"{seed_span(on, every)}: {', '.join(labels)}"
        for on, labels in sorted(rows_by_seeds.items(), key=lambda item: -len(item[0]))
    ]
    return [
        f"timed on a contended machine (CPU share below {MIN_CPU_SHARE} or load above the "
        f"cores + {LOAD_MARGIN:g}) — {'; '.join(parts)}. Their seconds and rtr read slower "
        f"than on a quiet machine; their work does not"
    ]


def seed_span(seeds: tuple[int, ...], every: int) -> str:
    """ "all 10 seeds", "seed 3", "seeds 3–9" or "seeds 0, 4"."""
    if len(seeds) == every and every > 1:
        return f"all {every} seeds"
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == tuple(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"seeds {seeds[0]}–{seeds[-1]}"
    return f"seeds {', '.join(map(str, seeds))}"


def format_value(cls: type[Metric] | None, mean: float, std: float, n: int) -> str:
    scale = 100.0 if cls is not None and cls.percent else 1.0
    mean, std = mean * scale, std * scale
    digits = _digits(cls, mean)
    text = f"{mean:.{digits}f}"
    if n > 1:
        text += f" ± {std:.{digits}f}"
    return text


def _digits(cls: type[Metric] | None, value: float) -> int:
    if cls is not None and cls.percent:
        return 1
    if abs(value) >= 1000:
        return 0
    if cls is not None and cls.count:
        return 1 if value != int(value) else 0
    return 2 if abs(value) >= 10 else 3


def ideal_of(cls: type[Metric], kind: str | None, registry: Registry) -> float | str | None:
    """The value a metric's column approaches in a scenario of ``kind``: the metric's
    ideal, except for a utility metric where the kind declares that more accuracy than
    the gold standard's cannot come from what is forgotten (then more is better)."""
    if cls.ideal is not None and cls.role == "utility" and kind is not None:
        kind_cls = registry.kinds.classes.get(kind)
        if kind_cls is not None and not kind_cls.overshoot_remembers:
            return None
    return cls.ideal


def header(metric: str, registry: Registry, kind: str | None = None) -> str:
    """The column title: name, unit, and which way is better (↑ / ↓, or →1 / →ref for a
    metric that should approach a value / the gold standard's own value, in a scenario
    of ``kind``). An "info" metric is never ranked, so it shows no direction, whatever
    it declares."""
    cls = metric_class(metric, registry)
    if cls is None:
        return metric
    ideal = ideal_of(cls, kind, registry)
    if cls.role == "info":
        arrow = ""
    elif ideal is not None:
        arrow = " →ref" if isinstance(ideal, str) else f" →{ideal:g}"
    else:
        arrow = {True: " ↑", False: " ↓"}.get(cls.higher_is_better, "")
    unit = " %" if cls.percent else ""
    return f"{metric}{unit}{arrow}"


def cell_text(table: ScenarioTable, row: str, metric: str, registry: Registry) -> str:
    statuses = table.status.get(row, [])
    if statuses and all(s == "n/a" for s in statuses):
        return "n/a"
    if statuses and all(s == "failed" for s in statuses):
        return "failed"
    cell = table.cells.get((row, metric))
    if cell is None or not cell.values:
        return UNDEFINED
    text = format_value(metric_class(metric, registry), cell.mean, cell.std, len(cell.values))
    n_seeds = len(statuses)
    if len(cell.values) < n_seeds:
        text += f" ({len(cell.values)}/{n_seeds})"
    return text


def row_label(table: ScenarioTable, row: str) -> str:
    """The row's name, with the seeds it ran on when they are not all the table's (a
    partial run: ``my_method (seed 0)`` beside rows over seeds 0, 1, 2)."""
    seeds = [r["seed"] for r in table.results if row in r["methods"]] or table.seeds
    label = shown_label(table, row)
    if len(seeds) == len(table.seeds):
        return label
    return f"{label} (seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))})"


def render(
    table: ScenarioTable, registry: Registry, fmt: str = "github", width: int | None = None
) -> str:
    """The table as markdown (``fmt``: a tabulate format); text from the results is
    escaped (:func:`fubench.report.markup.md_text`). With ``width`` (GitHub format), a
    table wider than that is cut into parts that fit (:func:`fubench.report.fit.table_parts`)."""
    headers = ["method"] + [md_text(header(m, registry, table.kind)) for m in table.metrics]
    body = [
        [md_text(row_label(table, row))]
        + [md_text(cell_text(table, row, m, registry)) for m in table.metrics]
        for row in table.rows
    ]
    if width is not None and fmt == "github":
        return "\n\n".join(table_parts(headers, body, width))
    return tabulate(body, headers=headers, tablefmt=fmt, disable_numparse=True)
