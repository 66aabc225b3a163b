"""The leaderboard: markdown generated from stored result files only.

``fubench leaderboard RESULTS... -o leaderboard/README.md`` writes, per scenario, a
table of methods × the metrics stored in its results, mean ± std over seeds with the
number of seeds, the best value per ranked column in bold, a link to the scenario file,
links to the plots that exist, then an overall ranking and a provenance footer. Tables
share :mod:`fubench.report.table` with ``fubench table``, so the two never disagree on a
number; best values and ranks follow :mod:`fubench.report.ranking`.

Output is deterministic: it depends on the result files (and which plot files exist),
never on the clock or the output path, so a regenerated file diffs cleanly and
``--check`` can compare byte for byte.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from tabulate import tabulate

from fubench.registry import Registry
from fubench.report import ranking, uncertainty
from fubench.report.claims import VERDICTS, ClaimResult, check_claims, decide, render_claims
from fubench.report.explain import (
    claim_rules,
    cost_rules,
    intro,
    link,
    ranking_rules,
    render_provenance,
)
from fubench.report.quality import load_quality, render_records
from fubench.report.ranking import best_rows, cost_ranks, scenario_ranks
from fubench.report.reader import Result
from fubench.report.success import render_success
from fubench.report.sweeps import keep_best_sweep_points
from fubench.report.table import ScenarioTable, aggregate, cell_text, header
from fubench.report.text import notes

#: per-scenario plots the leaderboard links when they exist under the plots folder
SCENARIO_PLOTS = (
    ("trade-off curves", "{scenario}_tradeoff.png"),
    ("attention maps", "{scenario}_attention.png"),
)
GLOBAL_PLOTS = (("cost per method", "cost.png"),)


@dataclass
class Section:
    """One scenario of the leaderboard: its aggregated table and what was decided on it."""

    table: ScenarioTable
    notes: list[str]
    ranks: dict[str, float]  # competing row -> normalised mean rank over quality columns
    ranked_columns: list[str]
    cost_ranks: dict[str, float]  # competing row -> normalised mean rank over cost columns
    cost_columns: list[str]
    claims: list[ClaimResult]
    #: the bootstrap over seeds: rank samples (by method) with weights, row intervals
    rank_samples: list[tuple[dict[str, float], float]] = field(default_factory=list)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)


def build_sections(results: list[Result], registry: Registry) -> list[Section]:
    sections = []
    for table in aggregate(results, registry):
        # swept methods show their best point only, exactly as `fubench table` does
        sweep_notes = keep_best_sweep_points(table, registry)
        original, reference = table.references
        middle = sorted(r for r in table.rows if r not in table.references)
        table.rows = (
            ([original] if original in table.rows else [])
            + middle
            + ([reference] if reference in table.rows else [])
        )
        ranks, columns = scenario_ranks(table, registry)
        costs, cost_columns = cost_ranks(table, registry)
        section = Section(
            table, sweep_notes, ranks, columns, costs, cost_columns, check_claims(table, registry)
        )
        bootstrap(section, registry)
        sections.append(section)
    decide([r for s in sections for r in s.claims])  # p-values adjusted across the board
    return sections


def bootstrap(section: Section, registry: Registry) -> None:
    """The section's ranks on every resample of its seeds, with the rows and columns
    chosen on all of them (:mod:`fubench.report.uncertainty`)."""
    table, rows = section.table, set(section.table.rows)

    def ranks_of(sample: list[Result]) -> dict[str, float]:
        (resampled,) = aggregate(sample, registry, separate=False)
        resampled.rows = [r for r in resampled.rows if r in rows]
        resampled.undefined, resampled.unranked = table.undefined, table.unranked
        ranks, _ = scenario_ranks(resampled, registry, section.ranked_columns)
        return ranks

    samples = uncertainty.rank_samples(table.results, ranks_of)
    section.intervals = uncertainty.row_intervals(samples)
    section.rank_samples = [(_by_method(table, ranks), w) for ranks, w in samples]


def _by_method(table: ScenarioTable, ranks: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for row, rank in ranks.items():
        method = table.method_of(row)
        out[method] = min(rank, out.get(method, rank))
    return out


def overall(sections: list[Section], cost: bool = False) -> dict[str, dict[str, float]]:
    """{method: {scenario: rank}} (with ``cost``: cost ranks) over the sections."""
    return ranking.overall(
        [s.table for s in sections], [s.cost_ranks if cost else s.ranks for s in sections]
    )


# ------------------------------------------------------------------------ rendering
def render_table(section: Section, registry: Registry) -> str:
    table = section.table
    best = {m: best_rows(table, m, registry) for m in table.metrics}
    headers = ["method", "rank ↓", "cost rank ↓", "seeds"] + [
        header(m, registry, table.kind) for m in table.metrics
    ]
    body = []
    for row in table.rows:
        cells = []
        for m in table.metrics:
            text = cell_text(table, row, m, registry)
            cells.append(f"**{text}**" if row in best[m] else text)
        body.append(
            [
                row,
                rank_text(table, section.ranks, row, section.intervals),
                rank_text(table, section.cost_ranks, row),
                seeds_text(table, row),
            ]
            + cells
        )
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def rank_text(
    table: ScenarioTable,
    ranks: dict[str, float],
    row: str,
    intervals: dict[str, tuple[float, float]] | None = None,
) -> str:
    """A row's rank, with its bootstrap interval over the seeds when it has one."""
    if row in table.references:
        return "ref"
    rank = ranks.get(row)
    if rank is None:
        return "—"
    spread = (intervals or {}).get(row)
    if spread is None or spread[0] == spread[1]:
        return f"{rank:.2f}"
    return f"{rank:.2f} ({spread[0]:.2f}–{spread[1]:.2f})"


def seeds_text(table: ScenarioTable, row: str) -> str:
    ok = table.status.get(row, []).count("ok")
    return str(ok) if ok == len(table.seeds) else f"{ok}/{len(table.seeds)}"


def render_section(section: Section, registry: Registry, base: Path, plots: Path) -> str:
    table = section.table
    first = table.results[0]["scenario"]
    hashes = sorted({r.get("config_hash") or "?" for r in table.results})
    file = first.get("file")
    where = f"[`{file}`]({link(file, base)})" if file else "(no scenario file recorded)"
    lines = [
        f"## {table.scenario}",
        "",
        f"Scenario {where}, version {table.version}, kind `{table.kind}`, config "
        f"{', '.join(f'`{h}`' for h in hashes)}; seeds "
        f"{', '.join(map(str, table.seeds))}.  ",
    ]
    if first.get("description"):
        lines.append(f"{first['description']}  ")
    lines += [f"Data: {table.source}.", "", render_table(section, registry), ""]
    cautions = ["the seeds were computed under different configurations"] if len(hashes) > 1 else []
    lines += notes(table, section.notes, cautions)
    lines.append(
        f"- ranked columns: {', '.join(section.ranked_columns) or 'none'}; cost "
        f"columns: {', '.join(section.cost_columns) or 'none'}"
    )
    success = render_success(table, registry)
    if success:
        lines += ["", *success]
    found = [
        f"[{title}]({link(plots / name.format(scenario=table.scenario), base)})"
        for title, name in SCENARIO_PLOTS
        if (plots / name.format(scenario=table.scenario)).is_file()
    ]
    if found:
        lines += ["", "Plots: " + " · ".join(found)]
    return "\n".join(lines) + "\n"


def render_ranking(sections: list[Section], registry: Registry) -> str:
    tables = [s.table for s in sections]
    ranks, costs = overall(sections), overall(sections, cost=True)
    scenarios = [t.scenario for t in tables]
    # only the scenarios every ranked method ran are averaged; the others are shown after
    common = ranking.common_scenarios(ranks, scenarios)
    means = ranking.mean_over(ranks, common)
    cost_means = ranking.mean_over(costs, ranking.common_scenarios(costs, scenarios))
    statuses = {
        t.scenario: {t.method_of(r): t.status.get(r, []) for r in t.rows if r not in t.references}
        for t in tables
    }
    order = sorted(ranks, key=lambda m: (means.get(m, float("inf")), m))
    spreads = uncertainty.overall_intervals(
        {
            s.table.scenario: s.rank_samples
            for s in sections
            if s.table.scenario in common and s.rank_samples
        }
    )
    place_of = uncertainty.places(order, spreads)
    shared = {p for p in place_of.values() if list(place_of.values()).count(p) > 1}
    # methods that never ran successfully are listed last, so a failure stays visible
    order += sorted({m for st in statuses.values() for m in st} - set(ranks))
    others = [s for s in scenarios if s not in common]
    headers = ["#", "method", "rank ↓ (95% over seeds)", "cost rank ↓", "scenarios"]
    headers += common + [f"{s} (not shared)" for s in others]
    body = []
    for method in order:
        mine = ranks.get(method, {})
        cells = []
        for s in common + others:
            if s in mine:
                cells.append(f"{mine[s]:.2f}")
            else:
                st = statuses[s].get(method, [])
                alone = "ok" in st  # it ran, but no other method did
                cells.append("alone" if alone else st[0] if st and len(set(st)) == 1 else "not run")
        mean = f"{means[method]:.2f}" if method in means else "—"
        if method in spreads and method in means:
            mean += f" ({spreads[method][0]:.2f}–{spreads[method][1]:.2f})"
        cost = f"{cost_means[method]:.2f}" if method in cost_means else "—"
        place = place_of.get(method)
        place_text = (
            "—"
            if method not in means or place is None
            else (f"={place}" if place in shared else str(place))
        )
        body.append([place_text, method, mean, cost, f"{len(mine)}/{len(scenarios)}"] + cells)
    table = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
    return "\n".join(
        [
            "## Overall ranking",
            "",
            ranking_rules(tables, registry, common),
            "",
            cost_rules(tables, registry),
            "",
            table,
            "",
        ]
    )


def render_claim_summary(sections: list[Section]) -> str:
    """Every scenario's claims in one place: what the papers say, what the seeds show."""
    found = [(s.table.scenario, r) for s in sections for r in s.claims]
    if not found:
        return ""
    counts = {v: sum(r.verdict == v for _, r in found) for v in VERDICTS}
    lines = [
        "## Claims of the papers",
        "",
        claim_rules(counts),
        "",
    ]
    for scenario in dict.fromkeys(name for name, _ in found):
        lines += [f"**{scenario}**", ""]
        lines += render_claims([r for name, r in found if name == scenario])
        lines.append("")
    return "\n".join(lines)


def render_leaderboard(
    results: list[Result], registry: Registry, paths: list[str], base: Path, plots: Path
) -> str:
    sections = build_sections(results, registry)
    references = sorted({s.table.reference for s in sections})
    parts = [intro(paths, base, references), render_ranking(sections, registry)]
    found = [
        f"[{title}]({link(plots / name, base)})"
        for title, name in GLOBAL_PLOTS
        if (plots / name).is_file()
    ]
    if found:
        parts.append("Plots: " + " · ".join(found) + "\n")
    parts.append(render_claim_summary(sections))
    quality = load_quality(paths)  # the forgetting-quality ε files, where computed
    parts += [
        render_section(s, registry, base, plots) + quality_section(s, quality) for s in sections
    ]
    parts.append(render_provenance(results))
    return "\n".join(p for p in parts if p)


def quality_section(section: Section, quality: dict[str, list]) -> str:
    """The scenario's forgetting-quality ε (``fubench quality``), when computed."""
    records = quality.get(section.table.scenario)
    if not records:
        return ""
    hashes = {r.get("config_hash") for r in section.table.results}
    return "\n" + render_records(records, hashes)


# --------------------------------------------------------------------------- check
def stale_diff(text: str, path: Path, limit: int = 40) -> list[str] | None:
    """None when ``path`` holds exactly ``text``, else the first lines of a diff."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if old == text:
        return None
    diff = difflib.unified_diff(
        old.splitlines(), text.splitlines(), str(path), "regenerated", lineterm="", n=1
    )
    return list(diff)[:limit]
