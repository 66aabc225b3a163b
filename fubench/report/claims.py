"""Checking a scenario's claims over its seeds.

Each claim compares per-seed values of the rows it names (seeds where both rows have a
value are paired). With n ≥ 2 seeds a claim can be decided two ways, each by a one-sided
paired test (:mod:`fubench.report.significance`: the exact sign-flip permutation test
from 10 seeds on, the t-test below):

* ``below`` / ``above``: **held** when the difference lies beyond the claim's ``margin``
  (0 unless it says) in the claimed direction, **not held** when it lies short of it
  (for margin 0: in the opposite direction);
* ``near`` (a value ± tolerance) and ``near_row`` (another row's value ± tolerance):
  **held** when the mean lies within the tolerance (two one-sided tests against the
  sample shifted by ± tolerance, TOST: p is the larger of the two), **not held** when it
  lies beyond a bound (the smaller p of "above the upper bound", "below the lower").

Both p-values of every claim of a report are adjusted together (Benjamini–Hochberg,
:func:`decide`); a verdict is declared where its adjusted p is below :data:`ALPHA`,
else the claim is **inconclusive**. Each claim also reports its effect — the mean
difference (the mean, for ``near``) — with the 95 % interval that inverts the test.
Values are in the unit the table shows (percent metrics in %). One seed cannot be
tested: the claim is reported with its value and "inconclusive (1 seed)". A row named
by its method (``tis_reset``) is the row the table shows (its chosen sweep point).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from fubench.config.claims import Claim
from fubench.registry import Registry
from fubench.report import significance
from fubench.report.table import ScenarioTable, format_value, metric_class

ALPHA = 0.05
VERDICTS = ("held", "not held", "inconclusive", "not testable")


@dataclass
class ClaimResult:
    claim: Claim
    verdict: str  # one of VERDICTS
    measured: str  # what the seeds gave, in words
    n: int  # seeds paired
    effect: float | None = None  # mean difference (near: mean), in the table's unit
    interval: tuple[float, float] | None = None  # its 95 % interval
    test: str = ""  # the paired test used
    #: raw p-values of the two verdict tests, (held, not held); None: untested
    p_values: tuple[float, float] | None = None
    #: the same, adjusted across every claim of the report (:func:`decide`)
    adjusted: tuple[float, float] | None = None


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
    """The scenario's claims, decided with p-values adjusted across them; a report of
    several scenarios decides again across all of them (:func:`check_report`)."""
    results = [check(table, claim, registry) for claim in scenario_claims(table)]
    decide(results)
    return results


def check_report(tables: list[ScenarioTable], registry: Registry) -> list[list[ClaimResult]]:
    """Every table's claims, decided with p-values adjusted across all of them."""
    found = [
        [check(table, claim, registry) for claim in scenario_claims(table)] for table in tables
    ]
    decide([r for results in found for r in results])
    return found


def check(table: ScenarioTable, claim: Claim, registry: Registry) -> ClaimResult:
    """One claim tested over the seeds; its verdict is set by :func:`decide`."""
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
        sample = [a - b for a, b in pairs]
        measured = (
            f"{row} {shown(statistics.fmean(mine))} vs {other} "
            f"{shown(statistics.fmean(b for _, b in pairs))}"
        )
    else:
        sample = mine
        measured = f"{row} {shown(statistics.fmean(mine))}"
    result = ClaimResult(claim, "inconclusive", measured, n, statistics.fmean(sample))
    if n < 2:
        result.measured += " (1 seed: untested)"
        return result
    result.test = significance.test_of(sample)
    result.measured += f"; {n} seeds, {result.test}"
    result.interval = significance.mean_interval(sample)
    if claim.relation in ("below", "above"):
        result.p_values = _ordered(sample, +1 if claim.relation == "above" else -1, claim.margin)
    else:
        centre = 0.0 if claim.relation == "near_row" else claim.value
        result.p_values = _equivalent(sample, centre, claim.tolerance)
    return result


def _ordered(diffs: list[float], sign: int, margin: float) -> tuple[float, float]:
    """(p held, p not held) for "the difference is < −margin" (sign −1) or "> margin"
    (sign +1)."""
    bound = sign * margin
    return (
        significance.one_sided_p(diffs, bound, greater=sign > 0),
        significance.one_sided_p(diffs, bound, greater=sign < 0),
    )


def _equivalent(sample: list[float], centre: float, tolerance: float) -> tuple[float, float]:
    """(p held, p not held) for "the mean lies within centre ± tolerance": held needs both
    bounds rejected (TOST), not held one bound crossed."""
    low, high = centre - tolerance, centre + tolerance
    above_low = significance.one_sided_p(sample, low, greater=True)
    below_high = significance.one_sided_p(sample, high, greater=False)
    beyond = min(
        significance.one_sided_p(sample, high, greater=True),
        significance.one_sided_p(sample, low, greater=False),
    )
    return max(above_low, below_high), beyond


def decide(results: list[ClaimResult]) -> None:
    """Set every tested claim's verdict from its p-values adjusted across all of
    ``results`` (Benjamini–Hochberg over both verdict tests of each claim)."""
    tested = [r for r in results if r.p_values is not None]
    flat = significance.adjust([p for r in tested for p in r.p_values])
    for i, result in enumerate(tested):
        held, not_held = flat[2 * i], flat[2 * i + 1]
        result.adjusted = (held, not_held)
        if held < ALPHA:
            result.verdict = "held"
        elif not_held < ALPHA:
            result.verdict = "not held"
        else:
            result.verdict = "inconclusive"


def effect_text(result: ClaimResult) -> str:
    """The effect with its interval, e.g. "−70.3 (−80.1 to −60.5)"."""
    if result.effect is None:
        return "—"
    text = f"{result.effect:+.3g}" if result.claim.relation != "near" else f"{result.effect:.3g}"
    if result.interval is None:
        return text
    low, high = result.interval
    if low == -float("inf") or high == float("inf"):
        return f"{text} (unbounded at {result.n} seeds)"
    return f"{text} ({low:.3g} to {high:.3g})"


def p_text(result: ClaimResult) -> str:
    """The adjusted p of the two verdicts, "held / not held"."""
    if result.adjusted is None:
        return "—"
    return " / ".join(_p(p) for p in result.adjusted)


def _p(p: float) -> str:
    """Two significant digits, three where two would read as the level itself."""
    text = f"{p:.2g}"
    return f"{p:.3g}" if float(text) == ALPHA else text
