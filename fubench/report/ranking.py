"""Best values and ranks, from the metrics' declarations only.

* ``original`` and the reference are reference rows: shown, never bold, never ranked;
  so are a baseline's rows (a method declaring ``baseline``, such as retraining cut to
  a budget: a yardstick, not a contender).
* Best and rank use the seed mean *as displayed* (rounded), so values that read equal
  tie, and ties are marked / ranked equally.
* A column is ranked when its metric declares a direction or an ideal, and is not the
  raw twin of a normalised column also in the table (test_acc beside nta, target_acc
  beside nfs): the two order methods the same way and would count twice. A metric
  read against the gold standard that does not tell the original from it beyond the
  seeds' noise is not ranked (:mod:`fubench.report.separation`).
* A metric with an ideal ranks by distance to it (nta, nfs: 1; attacks: the gold
  standard's value), so overshooting never beats a closer value; otherwise by its
  direction. A utility metric ranks by its direction instead where the scenario kind
  declares that more accuracy than the gold standard's cannot come from what is
  forgotten (``ScenarioKind.overshoot_remembers``).
* Quality (utility and forgetting columns) and cost are ranked apart: mixed into one
  mean, the cost columns outvote the forgetting ones and a method that does nothing (no
  time, no client) ranks first.
* Ranks are normalised to (r − 1) / (N − 1) in [0, 1] (0 best, 1 last), N the rows that
  competed in the scenario, so that "3rd of 5" and "3rd of 8" do not count alike; a
  scenario where one row competed ranks nobody. The scenario rank is the mean of the
  normalised column ranks; the overall rank is the mean over the scenarios every ranked
  method has a rank in (:func:`common_scenarios`), the others are shown, not averaged.
"""

from __future__ import annotations

from collections import defaultdict

from fubench.registry import Registry
from fubench.report.axes import utility_axis
from fubench.report.table import ScenarioTable, format_value, ideal_of, metric_class

#: below this normalised utility a method's model counts as broken and ranks last
MIN_USEFUL = 0.5
QUALITY_ROLES = ("utility", "forgetting")


def shown_mean(table: ScenarioTable, row: str, metric: str, registry: Registry) -> float | None:
    """The seed mean rounded as the table prints it (percent metrics ×100), or None."""
    cell = table.cells.get((row, metric))
    if cell is None or cell.mean is None or "ok" not in table.status.get(row, []):
        return None
    return shown_value(metric_class(metric, registry), cell.mean)


def competing(table: ScenarioTable) -> list[str]:
    """Rows that compete: every method row with at least one successful seed, but a
    baseline's (``Unlearner.baseline``: shown, never ranked)."""
    return [
        r
        for r in table.rows
        if r not in table.references
        and r not in table.baselines
        and "ok" in table.status.get(r, [])
    ]


def raw_twins(table: ScenarioTable, registry: Registry) -> dict[str, str]:
    """{raw metric: its normalised twin} for the twins shown and defined in the table."""
    twins = {}
    for metric in table.metrics:
        cls = metric_class(metric, registry)
        if cls is not None and cls.normalises in table.metrics and metric not in table.undefined:
            twins[cls.normalises] = metric
    return twins


def ranked_columns(table: ScenarioTable, registry: Registry, cost: bool = False) -> list[str]:
    """The ranked quality columns, or with ``cost`` the ranked cost columns."""
    twins = raw_twins(table, registry)
    columns = []
    for metric in table.metrics:
        cls = metric_class(metric, registry)
        if (
            cls is None
            or not cls.ranked()
            or metric in twins
            or metric in table.unranked
            or metric in table.undefined
        ):
            continue
        if (cls.role == "cost") == cost:
            columns.append(metric)
    return columns


def badness(table: ScenarioTable, metric: str, value: float, registry: Registry) -> float:
    """How far from best a displayed value is (smaller is better): the distance to the
    metric's ideal (a number, or the gold standard's displayed value), else the value
    itself signed by its direction."""
    cls = metric_class(metric, registry)
    target = ideal_of(cls, table.kind, registry)
    if target is not None:
        ideal = (
            shown_mean(table, table.reference, metric, registry)
            if isinstance(target, str)
            else shown_value(cls, target)
        )
        return abs(value - ideal) if ideal is not None else 0.0
    return -value if cls.higher_is_better else value


def shown_value(cls, value: float) -> float:
    """A value rounded as the table prints it (so an ideal compares like the cells)."""
    return float(format_value(cls, value, 0.0, 1))


def column_ranks(
    table: ScenarioTable, metric: str, rows: list[str], registry: Registry
) -> dict[str, float]:
    """Fractional ranks (1 = best; tied values share the mean of their positions).
    Rows without a value share the positions after every row with one."""
    values = {r: shown_mean(table, r, metric, registry) for r in rows}
    have = sorted(
        (round(badness(table, metric, v, registry), 12), r)
        for r, v in values.items()
        if v is not None
    )
    groups: list[tuple[float | None, list[str]]] = []
    for key, row in have:
        if groups and groups[-1][0] == key:
            groups[-1][1].append(row)
        else:
            groups.append((key, [row]))
    missing = sorted(r for r, v in values.items() if v is None)
    if missing:
        groups.append((None, missing))
    ranks, position = {}, 0
    for _, members in groups:
        shared = position + (len(members) + 1) / 2
        ranks.update({r: shared for r in members})
        position += len(members)
    return ranks


def broken(table: ScenarioTable, row: str, registry: Registry) -> bool:
    """A row whose model lost most of its usefulness (normalised utility below
    MIN_USEFUL): its forgetting columns would otherwise reward destroying the model (ASR
    0 at chance accuracy), so it ranks after every useful row."""
    utility = utility_axis(table, registry)
    value = shown_mean(table, row, utility, registry) if utility else None
    return value is not None and value < MIN_USEFUL


def mean_ranks(
    table: ScenarioTable, rows: list[str], columns: list[str], registry: Registry
) -> tuple[dict[str, float], list[str]]:
    """Each row's mean rank over those ``columns`` that have a value for some row."""
    columns = [
        m for m in columns if any(shown_mean(table, r, m, registry) is not None for r in rows)
    ]
    if not rows or not columns:
        return {r: (len(rows) + 1) / 2 for r in rows}, columns  # one tie: the mean position
    per_column = [column_ranks(table, m, rows, registry) for m in columns]
    return {r: sum(c[r] for c in per_column) / len(per_column) for r in rows}, columns


def normalised(ranks: dict[str, float]) -> dict[str, float]:
    """Ranks 1..N as (r − 1) / (N − 1): 0 best, 1 last, whatever N; {} for N = 1 (a row
    alone has no place among others). The mean of normalised column ranks is the
    normalised mean rank, since the map is linear."""
    n = len(ranks)
    if n < 2:
        return {}
    return {row: (rank - 1) / (n - 1) for row, rank in ranks.items()}


def scenario_ranks(
    table: ScenarioTable, registry: Registry, columns: list[str] | None = None
) -> tuple[dict[str, float], list[str]]:
    """Each competing row's normalised mean rank over the quality columns (``columns``,
    or those the table ranks); broken rows share the last positions."""
    rows = competing(table)
    useful = [r for r in rows if not broken(table, r, registry)]
    last = [r for r in rows if r not in useful]
    if columns is None:
        columns = ranked_columns(table, registry)
    ranks, columns = mean_ranks(table, useful, columns, registry)
    ranks.update({r: len(useful) + (len(last) + 1) / 2 for r in last})
    return normalised(ranks), columns


def cost_ranks(table: ScenarioTable, registry: Registry) -> tuple[dict[str, float], list[str]]:
    """Each competing row's normalised mean rank over the cost columns (a broken model's
    cost is still what it cost)."""
    rows = competing(table)
    ranks, columns = mean_ranks(table, rows, ranked_columns(table, registry, cost=True), registry)
    return normalised(ranks), columns


def best_rows(table: ScenarioTable, metric: str, registry: Registry) -> set[str]:
    """The competing rows with the best displayed value of a ranked column (ties share)."""
    cls = metric_class(metric, registry)
    if cls is None or not cls.ranked() or metric in table.unranked or metric in table.undefined:
        return set()
    scores = {
        r: round(badness(table, metric, v, registry), 12)
        for r in competing(table)
        if (v := shown_mean(table, r, metric, registry)) is not None
    }
    if not scores:
        return set()
    best = min(scores.values())
    return {r for r, v in scores.items() if v == best}


def overall(
    tables: list[ScenarioTable], ranks: list[dict[str, float]]
) -> dict[str, dict[str, float]]:
    """{method: {scenario: rank}} from per-table row ranks; a method with several rows
    in one scenario (a sweep without a chosen point) counts with its best row."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for table, table_ranks in zip(tables, ranks):
        for row, rank in table_ranks.items():
            method = table.method_of(row)
            old = out[method].get(table.scenario)
            out[method][table.scenario] = rank if old is None else min(old, rank)
    return dict(out)


def common_scenarios(ranks: dict[str, dict[str, float]], scenarios: list[str]) -> list[str]:
    """The ``scenarios`` in which every method of ``ranks`` ({method: {scenario: rank}})
    has a rank: the only ones its overall mean may average (a method absent from the
    hard scenarios would otherwise gain by its absence)."""
    return [s for s in scenarios if ranks and all(s in mine for mine in ranks.values())]


def mean_over(ranks: dict[str, dict[str, float]], scenarios: list[str]) -> dict[str, float]:
    """Each method's mean rank over ``scenarios``, for the methods that have all of them
    (a method missing one gets no mean: it would be averaged over other scenarios)."""
    if not scenarios:
        return {}
    return {
        m: sum(mine[s] for s in scenarios) / len(scenarios)
        for m, mine in ranks.items()
        if all(s in mine for s in scenarios)
    }
