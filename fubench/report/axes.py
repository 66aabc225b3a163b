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
    for metric in table.metrics:
        cls = metric_class(metric, registry)
        if (
            cls is not None
            and cls.role == "utility"
            and cls.normalises
            and cls.normalisation == "ratio"
        ):
            return metric
    return None


def forgetting_axis(table: ScenarioTable, registry: Registry) -> str | None:
    """The first normalised forgetting metric (a gap, e.g. nfs) with values."""
    for metric in table.metrics:
        cls = metric_class(metric, registry)
        if (
            cls is not None
            and cls.role == "forgetting"
            and cls.normalises
            and cls.normalisation == "gap"
            and any(c.values for (_, m), c in table.cells.items() if m == metric)
        ):
            return metric
    return None
