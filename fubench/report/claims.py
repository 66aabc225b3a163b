"""Checking a scenario's claims over its seeds.

Each claim compares per-seed values of the rows it names (seeds where both rows have a
value are paired). With n ≥ 2 seeds:

* ``below`` / ``above``: a one-sided paired t-test of the difference against the
  claim's ``margin`` (0 unless it says). **held** when the difference is significantly
  beyond the margin in the claimed direction, **not held** when it is significantly
  short of it (for margin 0: significant in the opposite direction), **inconclusive**
  otherwise;
* ``near`` (a value ± tolerance) and ``near_row`` (another row's value ± tolerance):
  an equivalence test (two one-sided tests, TOST). **held** when both bounds are
  rejected (the mean lies within the tolerance beyond noise), **not held** when the mean
  lies outside and significantly beyond the nearer bound, **inconclusive** otherwise.

Tests are at level :data:`ALPHA`; values are in the unit the table shows (percent
metrics in %). One seed cannot be tested: the claim is reported with its value and
"inconclusive (1 seed)". A row named by its method (``tis_reset``) is the row the
table shows (its chosen sweep point).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from fubench.config.claims import Claim
from fubench.registry import Registry
from fubench.report.separation import one_sided_p
from fubench.report.table import ScenarioTable, format_value, metric_class

ALPHA = 0.05
VERDICTS = ("held", "not held", "inconclusive", "not testable")


@dataclass
class ClaimResult:
    claim: Claim
    verdict: str  # one of VERDICTS
    measured: str  # what the seeds gave, in words
    n: int  # seeds paired


def scenario_claims(table: ScenarioTable) -> list[Claim]:
    """The claims the scenario's results carry (from the newest result file)."""
    for result in sorted(
        table.results, key=lambda r: r.get("provenance", {}).get("date", ""), reverse=True
    ):
        stored = result["scenario"].get("config", {}).get("claims")
        if stored is not None:
            return [Claim.from_dict(c) for c in stored]
    return []


def check_claims(table: ScenarioTable, registry: Registry) -> list[ClaimResult]:
    return [check(table, claim, registry) for claim in scenario_claims(table)]


def check(table: ScenarioTable, claim: Claim, registry: Registry) -> ClaimResult:
    cls = metric_class(claim.metric, registry)
    if cls is None:
        return ClaimResult(claim, "not testable", f"metric {claim.metric} is not installed", 0)
    if claim.metric in table.undefined:
        return ClaimResult(
            claim,
            "not testable",
            f"{claim.metric} is undefined here: {table.undefined[claim.metric]}",
            0,
        )
    row = shown_row(table, claim.row)
    other = shown_row(table, claim.other) if claim.other else None
    pairs = paired_values(table, claim.metric, row, other, 100.0 if cls.percent else 1.0)
    if not pairs:
        missing = other if per_seed(table, claim.metric, row) else row
        return ClaimResult(claim, "not testable", f"no seed gives {claim.metric} of {missing}", 0)
    return _verdict(claim, row, other, pairs, cls)


def shown_row(table: ScenarioTable, name: str) -> str:
    """A row label as the table shows it: a method's displayed (chosen) sweep point."""
    if name in table.rows:
        return name
    for row in table.rows:
        if table.method_of(row) == name:
            return row
    return name


def per_seed(table: ScenarioTable, metric: str, row: str) -> dict[int, float]:
    values = {}
    for result in table.results:
        entry = result["methods"].get(row)
        if entry and entry.get("status") == "ok":
            value = entry.get("metrics", {}).get(metric)
            if value is not None:
                values[result["seed"]] = float(value)
    return values


def paired_values(
    table: ScenarioTable, metric: str, row: str, other: str | None, scale: float
) -> list[tuple[float, float | None]]:
    """(row, other) per seed where both have a value, in the table's unit."""
    mine = per_seed(table, metric, row)
    theirs = per_seed(table, metric, other) if other else {}
    return [
        (mine[s] * scale, theirs[s] * scale if other else None)
        for s in sorted(mine)
        if other is None or s in theirs
    ]


def _verdict(claim: Claim, row: str, other: str | None, pairs: list, cls) -> ClaimResult:
    n = len(pairs)
    mine = [a for a, _ in pairs]
    shown = lambda v: format_value(cls, v / (100.0 if cls.percent else 1.0), 0.0, 1)  # noqa: E731
    if claim.relation in ("below", "above", "near_row"):
        diffs = [a - b for a, b in pairs]
        theirs = [b for _, b in pairs]
        measured = (
            f"{row} {shown(statistics.fmean(mine))} vs {other} "
            f"{shown(statistics.fmean(theirs))}; difference "
            f"{statistics.fmean(diffs):+.3g}{_spread(diffs)}"
        )
        centre, sample = 0.0, diffs
    else:
        measured = f"{row} {shown(statistics.fmean(mine))}{_spread(mine)}"
        centre, sample = claim.value, mine
    if n < 2:
        return ClaimResult(claim, "inconclusive", measured + " (1 seed: untested)", n)
    if claim.relation == "below":
        verdict = _ordered(sample, sign=-1, margin=claim.margin)
    elif claim.relation == "above":
        verdict = _ordered(sample, sign=+1, margin=claim.margin)
    else:
        verdict = _equivalent(sample, centre, claim.tolerance)
    return ClaimResult(claim, verdict, f"{measured}; {n} seeds", n)


def _spread(values: list[float]) -> str:
    return f" ± {statistics.stdev(values):.3g}" if len(values) > 1 else ""


def _ordered(diffs: list[float], sign: int, margin: float = 0.0) -> str:
    """held / not held / inconclusive for "the difference is < −margin" (sign −1) or
    "> margin" (sign +1)."""
    bound = sign * margin
    if one_sided_p(diffs, bound, greater=sign > 0) < ALPHA:
        return "held"
    if one_sided_p(diffs, bound, greater=sign < 0) < ALPHA:
        return "not held"
    return "inconclusive"


def _equivalent(sample: list[float], centre: float, tolerance: float) -> str:
    low, high = centre - tolerance, centre + tolerance
    if (
        one_sided_p(sample, low, greater=True) < ALPHA
        and one_sided_p(sample, high, greater=False) < ALPHA
    ):
        return "held"
    mean = statistics.fmean(sample)
    if (mean > high and one_sided_p(sample, high, greater=True) < ALPHA) or (
        mean < low and one_sided_p(sample, low, greater=False) < ALPHA
    ):
        return "not held"
    return "inconclusive"
