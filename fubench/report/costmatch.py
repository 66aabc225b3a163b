"""Every method against retraining at equal cost.

A method that spends half of retraining's work should forget better than retraining
for half the work, or it has no reason to exist. A baseline method (``Unlearner.baseline``;
the built-in ``budget_retrain``) swept over work budgets draws that yardstick's curve:
forgetting against ``work_ratio`` (the counted FLOPs as a share of the gold standard's).
For each method row a table shows, the baseline's forgetting is interpolated linearly
between its sweep points at the row's own work ratio (the points at their seed means),
seed by seed, and the two are compared by their distance to the metric's ideal:

* per seed, d_s = |v_s − ideal| − |b_s(w) − ideal|, v the method's value, b_s(w) the
  baseline's interpolated one on the same seed, w the method's mean work ratio;
* the mean of d and its 95 % interval (:func:`fubench.report.significance.mean_interval`:
  the t interval below 10 seeds, the sign-flip one from 10 on) decide: **beats**
  retraining at equal cost when the interval lies below 0, **loses** when above,
  **matches** when it holds 0 (no difference the seeds can show).

Outside the baseline's swept work range no equal-cost point exists. A method cheaper
than the smallest budget that still forgets at least as well as that budget beats or
matches it for less; one dearer than the largest budget that forgets no better loses
to it; otherwise the comparison says "no equal-cost budget". The utility axis (nta) is
interpolated and shown beside it, so that forgetting bought with a broken model reads
as such. docs/explanation/statistics.md, "Against retraining at equal cost".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fubench.registry import Registry
from fubench.report import significance
from fubench.report.axes import forgetting_axis, utility_axis
from fubench.report.board import Cell, Row, Table
from fubench.report.claims import per_seed
from fubench.report.cost_plot import COUNTED, relative_costs
from fubench.report.ranking import competing
from fubench.report.table import (
    ScenarioTable,
    format_value,
    header,
    ideal_of,
    metric_class,
    shown_label,
)

BEATS, MATCHES, LOSES, APART = "beats", "matches", "loses to", "no equal-cost budget"
VERDICTS = (BEATS, MATCHES, LOSES, APART)


@dataclass
class Curve:
    """A baseline's sweep: its rows in order of work, at their seed-mean work ratios."""

    method: str
    rows: list[str]
    work: list[float]

    @property
    def span(self) -> tuple[float, float]:
        return self.work[0], self.work[-1]


@dataclass
class Comparison:
    """One value of a row and of the baseline at the row's work ratio."""

    value: float  # the row's seed mean
    baseline: float  # the baseline's, interpolated (seed means)
    difference: float  # mean over seeds of the distance difference (< 0: the row is closer)
    interval: tuple[float, float] | None  # its 95 % interval (None: one seed)
    seeds: int


@dataclass
class Match:
    """A method row against the baseline at its own work ratio."""

    row: str
    method: str
    work: float
    where: str  # "inside", "below" or "above" the baseline's swept work range
    forgetting: Comparison | None
    utility: Comparison | None
    verdict: str  # one of VERDICTS
    #: the method as the overview names it: with the row's caveat, so that a variant
    #: (distillation on shifted server data) is counted apart from the plain method
    shown: str = ""


@dataclass
class CostMatch:
    """A scenario's comparison: the baseline's curve and every shown method row."""

    curve: Curve
    forgetting: str | None  # the metric compared (None: none defined here)
    utility: str | None
    matches: list[Match]


# ------------------------------------------------------------------------ the curve
def work_metric(registry: Registry) -> str | None:
    """The installed cost metric that is the counted work as a share of the gold
    standard's (the built-in work ratio), or None."""
    return next((m for m, raw in relative_costs(registry).items() if raw == COUNTED), None)


def baseline_curve(table: ScenarioTable, work_ratio: str) -> Curve | None:
    """The baseline's sweep in ``table`` (every point, shown or not) along the cost
    metric ``work_ratio``, or None when the table has no baseline with two or more
    distinct work ratios. With several baseline methods, the first in row order."""
    labels = [label for label in _all_rows(table) if label in table.baselines]
    if not labels:
        return None
    method = table.method_of(labels[0])
    points = []
    for label in labels:
        if table.method_of(label) != method:
            continue
        work = table.stats(label, work_ratio)
        if work is not None:
            points.append((work[0], label))
    points.sort()
    if len({round(w, 12) for w, _ in points}) < 2:
        return None
    return Curve(method, [label for _, label in points], [w for w, _ in points])


def _all_rows(table: ScenarioTable) -> list[str]:
    """Every row the results hold, the sweep points a table hides included."""
    seen: dict[str, None] = {}
    for result in table.results:
        seen.update(dict.fromkeys(result["methods"]))
    return list(seen)


def interpolate(work: list[float], values: list[float], at: float) -> float:
    """The baseline's value at work ratio ``at``: linear between its points (equal work
    ratios averaged), the end point's value outside them."""
    merged: dict[float, list[float]] = {}
    for w, v in zip(work, values):
        merged.setdefault(round(w, 12), []).append(v)
    xs = sorted(merged)
    ys = [float(np.mean(merged[x])) for x in xs]
    return float(np.interp(at, xs, ys))


# ------------------------------------------------------------------- the comparison
def cost_match(table: ScenarioTable, registry: Registry) -> CostMatch | None:
    """Every competing row of ``table`` against its baseline's curve (None: no curve)."""
    work_ratio = work_metric(registry)
    curve = baseline_curve(table, work_ratio) if work_ratio else None
    if curve is None:
        return None
    forgetting, utility = forgetting_axis(table, registry), utility_axis(table, registry)
    matches = []
    for row in competing(table):
        work = table.stats(row, work_ratio)
        if work is None:
            continue
        w = work[0]
        low, high = curve.span
        where = "below" if w < low else "above" if w > high else "inside"
        forgot = compare(table, row, curve, w, forgetting, registry) if forgetting else None
        kept = compare(table, row, curve, w, utility, registry) if utility else None
        matches.append(
            Match(
                row,
                table.method_of(row),
                w,
                where,
                forgot,
                kept,
                verdict(forgot, where),
                _shown_method(table, row),
            )
        )
    return CostMatch(curve, forgetting, utility, matches)


def _shown_method(table: ScenarioTable, row: str) -> str:
    caveat = table.caveats.get(row)
    return f"{table.method_of(row)} ({caveat})" if caveat else table.method_of(row)


def compare(
    table: ScenarioTable, row: str, curve: Curve, work: float, metric: str, registry: Registry
) -> Comparison | None:
    """``row``'s ``metric`` against the baseline's at ``work``, seed by seed."""
    mine = per_seed(table, metric, row)
    points = [per_seed(table, metric, label) for label in curve.rows]
    seeds = [s for s in mine if all(s in p for p in points)]
    if not seeds:
        return None
    cls = metric_class(metric, registry)
    target = ideal_of(cls, table.kind, registry) if cls is not None else None
    gold = per_seed(table, metric, table.reference) if isinstance(target, str) else {}
    if isinstance(target, str):
        seeds = [s for s in seeds if s in gold]
        if not seeds:
            return None

    def badness(value: float, seed: int) -> float:
        if isinstance(target, str):
            return abs(value - gold[seed])
        if target is not None:
            return abs(value - float(target))
        return -value if cls is None or cls.higher_is_better is not False else value

    theirs = {s: interpolate(curve.work, [p[s] for p in points], work) for s in seeds}
    diffs = [badness(mine[s], s) - badness(theirs[s], s) for s in seeds]
    interval = significance.mean_interval(diffs) if len(diffs) > 1 else None
    return Comparison(
        float(np.mean([mine[s] for s in seeds])),
        float(np.mean([theirs[s] for s in seeds])),
        float(np.mean(diffs)),
        interval,
        len(seeds),
    )


def verdict(forgetting: Comparison | None, where: str) -> str:
    """The forgetting comparison as a word: beats, matches, loses to (retraining at equal
    cost), or no equal-cost budget (outside the swept range, with no dominance)."""
    if forgetting is None:
        return APART
    side = _side(forgetting)
    if where == "inside":
        return {-1: BEATS, 0: MATCHES, 1: LOSES}[side]
    if where == "below":  # cheaper than every budget: only forgetting as well says anything
        return {-1: BEATS, 0: MATCHES}.get(side, APART)
    return LOSES if side >= 0 else APART  # dearer than every budget


def _side(c: Comparison) -> int:
    """-1: the row is closer to the ideal beyond the seeds' noise, 1: farther, 0: neither.
    With one seed the sign of the difference alone."""
    if c.interval is None:
        return int(np.sign(c.difference))
    low, high = c.interval
    return -1 if high < 0 else 1 if low > 0 else 0


# ---------------------------------------------------------------------- the views
def caption(match: CostMatch, table: ScenarioTable, registry: Registry) -> str:
    low, high = match.curve.span
    metric = match.forgetting or "forgetting"
    return (
        f"Against retraining at equal cost: {match.curve.method} retrains from the initial "
        f"model on the retained data for a share of retraining's work (work ratio "
        f"{low:.3g} to {high:.3g}); each method is read against it at its own work ratio, "
        f"interpolated between the budgets seed by seed. The verdict compares the "
        f"distance of {metric} to its ideal: beats / loses to when the 95% interval of the "
        f"difference over the seeds excludes 0, matches when it does not."
    )


def view(match: CostMatch, table: ScenarioTable, registry: Registry) -> tuple[str, Table]:
    """A caption and a table: per method, its work ratio, its forgetting and utility and
    the baseline's at that work ratio, and the verdict."""
    columns = ["method", "work ratio"]
    for metric in (match.forgetting, match.utility):
        if metric:
            title = header(metric, registry, table.kind)
            columns += [title, f"{title} of {match.curve.method}"]
    columns += ["verdict (Δ distance to ideal, 95% interval)"]
    rows = []
    for m in match.matches:
        cells = [Cell(shown_label(table, m.row)), Cell(f"{m.work:.3g}", sort=m.work)]
        for metric, comparison in ((match.forgetting, m.forgetting), (match.utility, m.utility)):
            if metric:
                cells += _pair(metric, comparison, registry)
        cells.append(Cell(verdict_text(m, match, registry)))
        rows.append(Row(m.row, m.method, cells))
    return caption(match, table, registry), Table(columns, rows)


def _pair(metric: str, c: Comparison | None, registry: Registry) -> list[Cell]:
    if c is None:
        return [Cell("—"), Cell("—")]
    cls = metric_class(metric, registry)
    return [
        Cell(format_value(cls, c.value, 0.0, 1), sort=c.value),
        Cell(format_value(cls, c.baseline, 0.0, 1), sort=c.baseline),
    ]


def verdict_text(m: Match, match: CostMatch, registry: Registry) -> str:
    """The verdict with its numbers, e.g. "beats (Δ −0.12, −0.20 to −0.04)"."""
    text = m.verdict
    low, high = match.curve.span
    if m.where == "below":
        text += f" (cheaper than the smallest budget, {low:.3g})"
    elif m.where == "above":
        text += f" (dearer than the largest budget, {high:.3g})"
    c = m.forgetting
    if c is not None:
        cls = metric_class(match.forgetting, registry)
        scale = 100.0 if cls is not None and cls.percent else 1.0
        spread = (
            f", {_signed(c.interval[0] * scale)} to {_signed(c.interval[1] * scale)}"
            if c.interval is not None
            else ", one seed"
        )
        text += f"; Δ {_signed(c.difference * scale)}{spread}"
    u = m.utility
    if u is not None and _side(u) == 1:
        text += "; keeps less utility"
    return text


#: a difference below this reads as 0 (float noise: 1.2 − 1.2 over seeds is ~1e-16)
NOISE = 1e-9


def _signed(value: float) -> str:
    if math.isinf(value):
        return "−∞" if value < 0 else "∞"
    if abs(value) < NOISE:
        return "0"
    return f"{value:+.3g}".replace("-", "−")


def summary(matches: dict[str, CostMatch]) -> tuple[str, Table] | None:
    """The board's overview: per method, its verdict in each scenario with a baseline
    curve, and how many scenarios it beats, matches and loses to retraining at equal
    cost in. A method with a caveat is counted apart under it (a variant such as
    distillation on shifted server data); one with several rows otherwise counts its
    first."""
    if not matches:
        return None
    scenarios = list(matches)
    verdicts: dict[str, dict[str, str]] = {}
    for scenario, match in matches.items():
        for m in match.matches:
            verdicts.setdefault(m.shown or m.method, {}).setdefault(scenario, m.verdict)
    columns = ["method", "beats", "matches", "loses to", *scenarios]
    rows = []
    for method in sorted(verdicts, key=lambda x: (-_count(verdicts[x], BEATS), x)):
        mine = verdicts[method]
        counts = [_count(mine, v) for v in (BEATS, MATCHES, LOSES)]
        cells = [Cell(method)] + [Cell(str(n), sort=n) for n in counts]
        cells += [Cell(mine.get(s, "—")) for s in scenarios]
        rows.append(Row(method, method, cells))
    baselines = ", ".join(sorted({m.curve.method for m in matches.values()}))
    text = (
        "Does a method forget better than retraining from scratch for the same work? In "
        f"each scenario the baseline ({baselines}) retrains on the retained data for "
        "shares of retraining's work; every method is read against it at its own work "
        "ratio (the numbers under each scenario). Counts are of scenarios."
    )
    return text, Table(columns, rows)


def _count(verdicts: dict[str, str], which: str) -> int:
    return sum(v == which for v in verdicts.values())
