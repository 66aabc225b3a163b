"""The two axes of a trade-off, found from the metrics' declarations: the utility metric
normalised as a ratio to the gold standard (nta) and the first forgetting metric
normalised as a gap (nfs, else nfs_mia). Sweep points are chosen on them
(:mod:`fubench.report.sweeps`), and ranks read the utility axis to tell a broken model
(:mod:`fubench.report.ranking`)."""

from __future__ import annotations

from fubench.registry import Registry
from fubench.report.table import ScenarioTable, metric_class


def utility_axis(table: ScenarioTable, registry: Registry) -> str | None:
    """The table's normalised utility metric (a ratio to the reference, e.g. nta)."""
    return _first_normalised(table, registry, "utility", "ratio")


def forgetting_axis(table: ScenarioTable, registry: Registry) -> str | None:
    """The first normalised forgetting metric (a gap, e.g. nfs) with values."""
    return _first_normalised(table, registry, "forgetting", "gap", with_values=True)


def _first_normalised(
    table: ScenarioTable,
    registry: Registry,
    role: str,
    normalisation: str,
    with_values: bool = False,
) -> str | None:
    """The table's first metric of ``role`` normalised as ``normalisation`` (and, with
    ``with_values``, with some value in the table)."""
    for metric in table.metrics:
        cls = metric_class(metric, registry)
        if (
            cls is not None
            and cls.role == role
            and cls.normalises
            and cls.normalisation == normalisation
            and (
                not with_values or any(c.values for (_, m), c in table.cells.items() if m == metric)
            )
        ):
            return metric
    return None
