"""Which point of a swept method a table shows.

The TIS paper picks, per method, the sweep point whose (normalised utility, normalised
forgetting) lies closest to the gold standard's (1, 1) (the axes:
:mod:`fubench.report.axes`); where a kind has no forgetting metric normalised as a gap,
the point with the best scenario rank. Either is judged on the tuning seeds where the
scenario has them. Tables show that point; ``fubench plot tradeoff`` draws them all."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from typing import Any

from fubench.config.spec import label_value
from fubench.errors import UnknownNameError
from fubench.registry import Registry
from fubench.report.axes import forgetting_axis, utility_axis
from fubench.report.board import Note
from fubench.report.markup import code, inline, strong
from fubench.report.ranking import scenario_ranks
from fubench.report.reader import Result
from fubench.report.table import ScenarioTable


@dataclass
class SweepChoice:
    method: str
    label: str  # the chosen row
    sweep: dict[str, Any]  # its swept values, e.g. {"gamma": 0.3}
    distance: float | None  # to (1, 1); None where chosen to match an upstream method
    points: int  # how many points were swept
    reason: str = ""


def sweep_groups(
    results: list[Result], registry: Registry | None = None
) -> dict[str, dict[str, dict[str, Any]]]:
    """{group: {row label: swept values}} for every group with two or more points. A
    group is a method, or with ``registry``, a method at one value of each parameter it
    declares a variant (``Unlearner.variants``: ``distillation[server_data=shifted]``),
    so that every variant shows its own best point."""
    groups: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for result in results:
        for label, row in result["methods"].items():
            if row.get("sweep"):
                groups[group_of(row, registry)][label] = row["sweep"]
    return {m: rows for m, rows in groups.items() if len(rows) > 1}


def group_of(row: dict[str, Any], registry: Registry | None) -> str:
    """The sweep group of a stored row (see :func:`sweep_groups`)."""
    method = row["method"]
    variants = _declared(registry, method, "variants") if registry else ()
    fixed = [(k, v) for k, v in row.get("sweep", {}).items() if k in variants]
    if not fixed:
        return method
    return f"{method}[{','.join(f'{k}={label_value(v)}' for k, v in fixed)}]"


def distance_to_ideal(
    table: ScenarioTable, label: str, utility: str, forgetting: str
) -> float | None:
    """Euclidean distance of the seed means (utility, forgetting) from (1, 1), where
    both normalised metrics equal the gold standard."""
    a, b = table.stats(label, utility), table.stats(label, forgetting)
    if a is None or b is None:
        return None
    return math.hypot(1.0 - a[0], 1.0 - b[0])


def best_sweep_points(table: ScenarioTable, registry: Registry) -> dict[str, SweepChoice]:
    """Per swept method, the point closest to (1, 1) — judged on the scenario's tuning
    seeds where it has them (``table.tuning``), so that the point a table reports was not
    chosen on the seeds it reports. A method that reads a swept method is shown at the
    point matching the chosen upstream point, so the two rows compare like with like."""
    judge = table.tuning if table.tuning is not None else table
    seeds = ", ".join(map(str, judge.seeds))
    where = (
        f"the tuning seeds ({seeds})"
        if judge is not table
        else "the reported seeds (the scenario has no tuning seeds)"
    )
    utility, forgetting = utility_axis(judge, registry), forgetting_axis(judge, registry)
    groups = chosen_groups(table, registry)
    judge_ranks = cache(lambda: scenario_ranks(judge, registry)[0])  # once, where needed
    choices: dict[str, SweepChoice] = {}
    for method, rows in groups.items():
        scored = [
            (d, label)
            for label in rows
            if utility
            and forgetting
            and (d := distance_to_ideal(judge, label, utility, forgetting)) is not None
        ]
        if scored:
            d, label = min(scored)
            choices[method] = SweepChoice(
                method,
                label,
                rows[label],
                d,
                len(rows),
                f"closest to ({utility.upper()}, {forgetting.upper()}) = (1, 1) over the means "
                f"of {where}",
            )
        elif not (utility and forgetting) and (label := best_ranked(rows, judge_ranks())):
            choices[method] = SweepChoice(
                method,
                label,
                rows[label],
                None,
                len(rows),
                "the best scenario rank (the mean normalised rank over the quality columns) "
                f"over {where}: this kind has no forgetting metric normalised as a gap to "
                "measure (1, 1) by",
            )
    for method, rows in groups.items():
        for upstream in _reads(registry, table.method_of(next(iter(rows)))):
            if upstream not in choices:
                continue
            target = choices[upstream].sweep
            match = [
                label
                for label, sweep in rows.items()
                if sweep and all(target.get(k) == v for k, v in sweep.items())
            ]
            if match:
                choices[method] = SweepChoice(
                    method,
                    match[0],
                    rows[match[0]],
                    None,
                    len(rows),
                    f"the point of {upstream} it mirrors",
                )
    return choices


def best_ranked(rows: dict[str, dict], ranks: dict[str, float]) -> str | None:
    """The point of a sweep (``rows``, by label) with the best scenario rank (``ranks``:
    :func:`~fubench.report.ranking.scenario_ranks` of the judging table), the first on a
    tie; None when no point has a rank."""
    ranked = [(ranks[label], i, label) for i, label in enumerate(rows) if label in ranks]
    return min(ranked)[2] if ranked else None


def keep_best_sweep_points(table: ScenarioTable, registry: Registry) -> list[Note]:
    """Drop every swept row but the chosen one from ``table`` and return the notes that
    name the chosen points."""
    choices = best_sweep_points(table, registry)
    groups = chosen_groups(table, registry)
    drop = {
        label
        for method, choice in choices.items()
        for label in groups[method]
        if label != choice.label
    }
    table.rows = [row for row in table.rows if row not in drop]
    notes = []
    for method, choice in sorted(choices.items()):
        point = ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in choice.sweep.items()
        )
        distance = f", distance {choice.distance:.3f}" if choice.distance is not None else ""
        text = inline(
            strong(method),
            f": shown at {point}, {choice.reason}{distance} ({choice.points} points swept; "
            "all of them: ",
            code("fubench table --all-points"),
            ", ",
            code("fubench plot tradeoff"),
            ")",
        )
        notes.append(Note(text, about=method))
    return notes


def chosen_groups(table: ScenarioTable, registry: Registry) -> dict[str, dict[str, dict]]:
    """The sweep groups a table shows at one point: every group but a baseline's, whose
    points all stay (a yardstick's curve, not a setting to choose)."""
    return {
        group: rows
        for group, rows in sweep_groups(table.results, registry).items()
        if not any(label in table.baselines for label in rows)
    }


def _reads(registry: Registry, method: str) -> tuple[str, ...]:
    return tuple(_declared(registry, method, "reads"))


def _declared(registry: Registry, method: str, what: str) -> Any:
    """A method's declaration ``what`` (empty where no installed plugin provides it)."""
    try:
        return getattr(registry.methods.get(method), what)
    except UnknownNameError:
        return ()
