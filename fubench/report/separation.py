"""Whether a metric tells the original model from the gold standard at all.

A normalised forgetting score (nfs = (t(θ^i) − t(θ)) / (t(θ^i) − t(θ^r))) divides by the
gap between the original and the reference. When that gap is within the noise over the
seeds, the ratio is noise divided by noise (−0.45 ± 3.25), so it is undefined; likewise
a raw attack metric read against the gold standard cannot rank methods when the original
scores like the gold standard. The test: over the seeds that define both rows, the
per-seed gap g_s = raw(θ^i)_s − raw(θ^r)_s must differ from 0 by a paired test at level
ALPHA (and by at least MIN_GAP), the claims' test (:mod:`fubench.report.significance`:
the exact sign-flip permutation test from 10 seeds on, the t-test below). The test is
one-sided where the raw metric declares on which side the original sits
(``Metric.original_side``: an attack succeeds more on the model that still remembers):
a gap on the other side, however significant, means the metric does not see the
forgetting. Otherwise it is two-sided. One seed cannot be
tested: the per-seed rule of the metric applies and the table says so.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from fubench.api import REFERENCE
from fubench.registry import Registry
from fubench.report import significance

#: level of the paired test on the original − reference gap
ALPHA = 0.05
#: a gap smaller than this (in the metric's own unit) never counts as separated
MIN_GAP = 1e-3


@dataclass
class Separation:
    """The original − reference gap of one raw metric over the seeds."""

    metric: str
    gaps: list[float]
    p_value: float | None  # None: not testable (fewer than two seeds)
    side: str | None = None  # "above" / "below": one-sided test; None: two-sided

    @property
    def mean(self) -> float:
        return statistics.fmean(self.gaps)

    @property
    def separated(self) -> bool | None:
        """True / False by the test; None when it cannot be tested (one seed)."""
        if len(self.gaps) < 2:
            return None
        return abs(self.mean) >= MIN_GAP and self.p_value is not None and self.p_value < ALPHA

    def why_not(self) -> str:
        """Why an unseparated gap does not count, in words."""
        if self.side and self.gaps and (self.mean > 0) != (self.side == "above"):
            return (
                f"the original is not {self.side} the gold standard, so the metric "
                f"does not see the forgetting"
            )
        return "within the seeds' noise"

    def describe(self, percent: bool) -> str:
        scale, unit = (100.0, " points") if percent else (1.0, "")
        spread = statistics.stdev(self.gaps) * scale if len(self.gaps) > 1 else 0.0
        test = f"one-sided (original {self.side}) " if self.side else ""
        name = significance.test_of(self.gaps)
        p = f", {test}paired {name} p = {self.p_value:.2g}" if self.p_value is not None else ""
        return (
            f"original − reference {self.metric} = {self.mean * scale:+.2f} ± "
            f"{spread:.2f}{unit} over {len(self.gaps)} seed"
            f"{'s' if len(self.gaps) != 1 else ''}{p}"
        )


def paired_p_value(gaps: list[float], side: str | None = None) -> float | None:
    """p of the paired test of mean(gaps) = 0 (None with < 2 gaps): against the
    alternative mean > 0 (``side="above"``) / mean < 0 (``"below"``), or two-sided."""
    if len(gaps) < 2:
        return None
    if side is not None:
        return significance.one_sided_p(gaps, 0.0, greater=side == "above")
    return significance.two_sided_p(gaps)


def gap_of(results: list[dict], reference: str, metric: str, side: str | None = None) -> Separation:
    """The per-seed original − reference gap of ``metric`` in one scenario's results,
    tested toward ``side`` (the metric's ``original_side``)."""
    gaps = []
    for result in results:
        rows = result["methods"]
        original = rows.get("original", {}).get("metrics", {}).get(metric)
        gold = rows.get(reference, {}).get("metrics", {}).get(metric)
        if original is not None and gold is not None:
            gaps.append(float(original) - float(gold))
    return Separation(metric, gaps, paired_p_value(gaps, side), side)


def tested_metric(metric: str, registry: Registry) -> str | None:
    """The raw metric whose gap decides whether ``metric`` means anything: its own for a
    raw metric read against the gold standard, the normalised raw metric for a "gap"
    normalisation, and for a "ratio" of a raw metric read against the gold standard
    (a ratio of two values the raw metric cannot tell apart is noise); None for metrics
    that need no such test."""
    cls = registry.metrics.classes.get(metric)
    if cls is None:
        return None
    if cls.normalises and cls.normalisation == "gap":
        return cls.normalises
    raw = registry.metrics.classes.get(cls.normalises) if cls.normalises else None
    if raw is not None and raw.ideal == REFERENCE:
        return cls.normalises
    if cls.ideal == REFERENCE:
        return metric
    return None
