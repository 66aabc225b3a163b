"""The words around the leaderboard's tables: the legend, how ranks are made (naming the
columns the tables actually have) and the provenance footer."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from fubench.registry import Registry
from fubench.report.axes import utility_axis
from fubench.report.board import Provenance
from fubench.report.markup import Inline, code, inline, joined, strong
from fubench.report.ranking import MIN_USEFUL, ranked_columns, raw_twins
from fubench.report.reader import Result
from fubench.report.table import ScenarioTable


def link(path: str | Path, base: Path) -> str:
    """``path`` relative to ``base``, with forward slashes (a markdown link)."""
    return Path(os.path.relpath(Path(path), base)).as_posix()


def sources(paths: list[str], base: Path) -> list[tuple[str, str]]:
    """The result folders as the board names them, each with its link."""
    return [(link(p, base), link(p, base)) for p in paths]


def legend(references: list[str]) -> list[Inline]:
    """How to read the tables (a bullet each)."""
    gold = joined((code(r) for r in references), " / ")
    return [
        inline(
            "Cells: mean ± sample std over seeds; ",
            code("seeds"),
            ': seeds where the row ran; "(k/n)": only k of n seeds defined the value; "—" '
            'undefined; "n/a" the method does not serve the scenario; "failed" it raised '
            "(reasons under the table).",
        ),
        inline(
            "↑ / ↓: higher / lower is better, as the metric declares; →1: closest to 1 is "
            "best (a normalised score that equals the gold standard at 1; above 1 overshoots); "
            "→ref: closest to the gold standard's own value is best (attacks, whose floor is "
            "not 0). A utility score reads ↑ instead where the scenario kind says more "
            "accuracy than the gold standard's cannot come from what is forgotten (a clean "
            "test set; a gold standard trained without a trigger, feature or shortcut). "
            "Columns without an arrow describe and are not ranked."
        ),
        inline(
            'A normalised forgetting score is undefined ("—") where the original and the '
            "gold standard do not differ beyond the seeds' noise (a paired test over the "
            "seeds: the t-test below 10 seeds, the exact sign-flip permutation test from 10 "
            "on; one-sided where the metric says which side the original is on: an attack "
            "that succeeds less on the original than on the gold standard sees no "
            "forgetting), and a metric read against the gold standard is then not ranked; "
            "the notes under each table say which and why."
        ),
        inline(
            "Under each table, the forgetting metrics seed by seed: the median over seeds "
            "and the success rate k/n, the seeds on which a method came within the metric's "
            "declared margin of the gold standard (of 1 for a →1 score, of the gold "
            "standard's value on the same seed for →ref). A method that forgets on some "
            "seeds and not on others shows there what a mean ± std hides."
        ),
        inline(
            strong("Bold"),
            ": the best value of each ranked column among the unlearning methods "
            "(values equal as displayed tie). ",
            code("original"),
            " (the model before unlearning) and ",
            gold,
            " (the gold standard) are reference rows: shown for context, never bold, not ranked.",
        ),
        inline(
            "A swept method shows its best sweep point (see the notes; all points: ",
            code("fubench table --all-points"),
            ", ",
            code("fubench plot tradeoff"),
            ").",
        ),
    ]


def ranking_rules(tables: list[ScenarioTable], registry: Registry, common: list[str]) -> Inline:
    """How ranks are made, in words, naming the columns these tables actually have and
    the scenarios (``common``) the overall rank averages."""
    twins = _twins(tables, registry)
    utility = sorted({u for t in tables if (u := utility_axis(t, registry))})
    left_out = (
        f"; a raw column is left out where its normalised twin is shown "
        f"({', '.join(f'{raw} beside {norm}' for raw, norm in twins)})"
        if twins
        else ""
    )
    broken = (
        f" A method whose {' / '.join(utility)} is below {MIN_USEFUL} (its model "
        f"lost most of its accuracy, so its forgetting numbers mean nothing) is not "
        f"ranked on the columns and shares the last places."
        if utility
        else ""
    )
    if common:
        overall = (
            f"The overall rank is a method's mean scenario rank over the {len(common)} "
            f"scenarios every ranked method ran ({', '.join(common)}); the other "
            'scenarios\' ranks follow them, marked "(not shared)", and are not averaged: a '
            "method absent from a hard scenario would otherwise gain by its absence."
        )
    else:
        overall = (
            "No scenario is shared by every ranked method, so there is no overall rank; "
            "each scenario's ranks are shown."
        )
    return inline(
        "Rank of a method in one scenario: for every ranked column (a metric with ↑/↓ "
        f"or an ideal (→1, →ref) that measures utility or forgetting{left_out}), the "
        "methods that ran are ordered by their seed mean as displayed — by distance to "
        "the ideal where there is one — ; position 1 is the best, tied methods share the "
        "mean of their positions, a method without a value shares the last positions."
        f"{broken} A position r among the N methods that competed in the scenario counts "
        "as (r − 1) / (N − 1): 0 is the best, 1 the last, whatever N, so that 3rd of 5 "
        "(0.50) and 3rd of 8 (0.29) do not count alike; where one method ran alone, "
        "nobody is ranked. The scenario rank (",
        code("rank"),
        f" in each table) is the mean of these normalised column ranks. {overall} "
        "Reference rows do not compete. Lower is better. Ranks carry their spread over "
        "the seeds: a bootstrap over each scenario's seeds (every distinct resample "
        "enumerated when there are few, sweep points and ranked columns fixed) gives the "
        "95% interval in brackets (overall: one resample of each averaged scenario drawn "
        "together), and methods whose intervals overlap cannot be told apart: ",
        code("#"),
        ' counts only the methods clearly ahead, and "=" marks a shared place. Equal '
        "ranks are listed by name.",
    )


def cost_rules(tables: list[ScenarioTable], registry: Registry) -> Inline:
    """The cost ranking in words, and which methods are charged for less than they use."""
    columns = sorted({m for t in tables for m in ranked_columns(t, registry, cost=True)})
    readers = sorted(
        {
            (t.method_of(r), up)
            for t in tables
            for r in t.rows
            if t.method_of(r) in registry.methods
            for up in registry.methods.get(t.method_of(r)).reads
        }
    )
    charged = " ".join(
        f"{m}'s cost leaves out the {up} pass whose result it reads." for m, up in readers
    )
    return inline(
        f"Cost ({', '.join(columns) or 'none here'}) is ranked apart, the same way (",
        code("cost rank"),
        ": normalised column ranks, their mean per scenario, and here the mean over the "
        "scenarios every cost-ranked method ran): folded into one mean, the cost columns "
        "would outvote the forgetting columns and a method that does nothing would rank "
        f"first.{' ' + charged if charged else ''}",
    )


def claim_rules(counts: dict[str, int]) -> Inline:
    """How claims are tested and decided, in words, with the count of each verdict."""
    tested = counts["held"] + counts["not held"] + counts["inconclusive"]
    return inline(
        "Each scenario file states the orderings and values its source papers report (",
        code("claims:"),
        "); they are tested over the seeds that give both rows a value, in the unit the "
        "tables show, a method taken at the row its table shows. A claim can be decided "
        "two ways, each by a one-sided paired test: an ordering is ",
        strong("held"),
        " when the difference lies beyond the stated margin (0 unless a paper claims a "
        "large effect) in the claimed direction, ",
        strong("not held"),
        ' when it lies short of it; "= value ± tolerance" is ',
        strong("held"),
        " when the mean lies within the tolerance (two one-sided tests against the sample "
        "shifted by ± tolerance; p is the larger), ",
        strong("not held"),
        " when it lies beyond a bound. The test is the exact sign-flip permutation test of "
        "the paired differences from 10 seeds on (no normality assumed); below 10 seeds "
        "it is the t-test, which assumes normal differences (the permutation test cannot "
        "reach p < 0.05 with fewer than 5 seeds). Identical values on every seed get the "
        "exact sign-flip p, never 0. The p-values of both verdicts of all "
        f"{tested} tested claims are adjusted together by Benjamini–Hochberg (a false "
        "discovery rate of 0.05 across the board): a verdict needs its adjusted p below "
        "0.05, else the claim is inconclusive. ",
        code("effect"),
        ": the mean difference (for = value: the mean) with the 95% interval that "
        "inverts the same test. "
        f"{counts['held']} held, {counts['not held']} not held, "
        f"{counts['inconclusive']} inconclusive, {counts['not testable']} not testable.",
    )


def _twins(tables: list[ScenarioTable], registry: Registry) -> list[tuple[str, str]]:
    return sorted({(raw, norm) for t in tables for raw, norm in raw_twins(t, registry).items()})


def provenance(results: list[Result]) -> Provenance:
    """Which code, machine and plugins made the results, and when."""
    values: dict[str, set[str]] = defaultdict(set)
    plugins: dict[str, set[str]] = defaultdict(set)
    dates = []
    for r in results:
        prov = r.get("provenance", {})
        for key in ("fubench_version", "device", "hardware", "python", "torch"):
            values[key].add(str(prov.get(key)))
        for name, version in (prov.get("plugins") or {}).items():
            plugins[name].add(str(version))
        # a resumed file holds rows of several runs: each row names the code that made it
        # (rows stored before rows did say so: the file's last run)
        for row in r.get("methods", {}).values():
            made = row.get("computed_at") or prov
            values["git_hash"].add(str(made.get("git_hash")))
            if made.get("date"):
                dates.append(made["date"])
    labels = (
        ("fubench_version", "fubench"),
        ("git_hash", "git commit"),
        ("device", "device"),
        ("hardware", "hardware"),
        ("python", "Python"),
        ("torch", "PyTorch"),
    )
    items = [(label, ", ".join(sorted(values[key]))) for key, label in labels]
    if dates:
        items.append(("run dates", f"{min(dates)} … {max(dates)}"))
    if plugins:
        items.append(
            ("plugins", ", ".join(f"{n} {'/'.join(sorted(v))}" for n, v in sorted(plugins.items())))
        )
    return Provenance(len(results), items)
