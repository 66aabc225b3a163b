"""The leaderboard, from stored result files only.

Per scenario a table of methods × the metrics stored in its results (mean ± std over
seeds with the number of seeds, the best value per ranked column in bold, each row's
rank with its interval over the seeds), its notes, claims, plots and forgetting-quality
ε; then an overall ranking, the papers' claims and a provenance footer. Tables share
:mod:`fubench.report.table` with ``fubench table``, so the two never disagree on a
number; best values and ranks follow :mod:`fubench.report.ranking`.

This module computes all of it once into a :class:`~fubench.report.board.Board`
(:func:`build_board`), which two renderers write: ``fubench leaderboard -o FILE``
markdown (:mod:`fubench.report.markdown`) and ``--html DIR`` a static site
(:mod:`fubench.report.html`). Output is deterministic: it depends on the result files
(and which plot files exist), never on the clock or the output path, so a regenerated
file diffs cleanly and ``--check`` can compare byte for byte.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path

from fubench.registry import Registry
from fubench.report import costmatch, markdown, ranking, uncertainty
from fubench.report.board import (
    Board,
    Cell,
    ClaimView,
    Note,
    Plot,
    Quality,
    Row,
    ScenarioView,
    Table,
)
from fubench.report.claims import VERDICTS, ClaimResult, check_claims, decide
from fubench.report.costmatch import CostMatch, cost_match
from fubench.report.explain import (
    claim_rules,
    cost_rules,
    legend,
    link,
    provenance,
    ranking_rules,
    sources,
)
from fubench.report.markup import Inline, inline, strong
from fubench.report.quality import load_quality, quality_view
from fubench.report.ranking import best_rows, cost_ranks, scenario_ranks
from fubench.report.reader import Result, results_code
from fubench.report.success import success_view
from fubench.report.sweeps import keep_best_sweep_points
from fubench.report.table import (
    ScenarioTable,
    aggregate,
    cell_text,
    header,
    metric_class,
    shown_label,
)
from fubench.report.text import claim_views, notes

#: per-scenario plots the leaderboard links when they exist under the plots folder
SCENARIO_PLOTS = (
    ("trade-off curves", "{scenario}_tradeoff.png"),
    ("forgetting against work", "{scenario}_budget.png"),
    ("attention maps", "{scenario}_attention.png"),
)
#: normalised ranks: 0 the best, 1 the last (fubench.report.ranking)
RANK_SCALE = (0.0, 1.0)
#: the mark of a row a third-party package contributed through a submission
COMMUNITY = "★"
#: the rank cell of a baseline's row (shown, never ranked)
BASELINE = "baseline"
GLOBAL_PLOTS = (("cost per method", "cost.png"),)


@dataclass
class Section:
    """One scenario of the leaderboard: its aggregated table and what was decided on it."""

    table: ScenarioTable
    notes: list[Note]  # which sweep point each swept method shows
    ranks: dict[str, float]  # competing row -> mean rank over quality columns
    ranked_columns: list[str]
    cost_ranks: dict[str, float]  # competing row -> mean rank over cost columns
    cost_columns: list[str]
    claims: list[ClaimResult]
    #: the bootstrap over seeds: rank samples (by method) with weights, row intervals
    rank_samples: list[tuple[dict[str, float], float]] = field(default_factory=list)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: every shown method against its baseline at equal cost (None: no baseline curve)
    cost_match: CostMatch | None = None


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
        section.cost_match = cost_match(table, registry)
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


def community(tables: list[ScenarioTable]) -> dict[str, dict[str, str]]:
    """{method: its "community" marker} for the rows a submission added
    (:mod:`fubench.submission`): a third-party package, its version and the file that
    submitted it."""
    found: dict[str, dict[str, str]] = {}
    for table in tables:
        for result in table.results:
            for row in result["methods"].values():
                if isinstance(row.get("community"), dict):
                    found[row["method"]] = row["community"]
    return found


def community_note(method: str, marker: dict[str, str]) -> Note:
    return Note(
        inline(
            strong(f"{method} {COMMUNITY}"),
            f": a community contribution, {marker.get('package')} {marker.get('version')} "
            f"(submitted by {marker.get('submission')}; run by the leaderboard pipeline)",
        ),
        about=method,
    )


# -------------------------------------------------------------------- the board
def build_board(
    results: list[Result],
    registry: Registry,
    paths: list[str],
    base: Path,
    plots: Path,
    quality: dict[str, list] | None = None,
) -> Board:
    """The leaderboard of ``results`` as data (:mod:`fubench.report.board`); links are
    relative to ``base``, plots are looked up under ``plots``; ``quality``: the ε files
    under ``paths`` (:func:`~fubench.report.quality.load_quality`), read there if not given."""
    sections = build_sections(results, registry)
    tables = [s.table for s in sections]
    if quality is None:
        quality = load_quality(paths)  # the forgetting-quality ε files, where computed
    scenarios = [scenario_view(s, registry, base, plots, quality) for s in sections]
    references = sorted({t.reference for t in tables})
    common = core_scenarios(overall(sections), [t.scenario for t in tables], set(community(tables)))
    return Board(
        sources(paths, base),
        references,
        legend(references),
        ranking_rules(tables, registry, common),
        cost_rules(tables, registry),
        ranking_table(sections),
        found_plots(GLOBAL_PLOTS, plots, base),
        claims_text([c for v in scenarios for c in v.claims]),
        scenarios,
        provenance(results),
        costmatch.summary(
            {s.table.scenario: s.cost_match for s in sections if s.cost_match is not None}
        ),
    )


def scenario_view(
    section: Section, registry: Registry, base: Path, plots: Path, quality: dict[str, list]
) -> ScenarioView:
    table = section.table
    first = table.results[0]["scenario"]
    hashes = sorted({r.get("config_hash") or "?" for r in table.results})
    file = first.get("file")
    cautions = ["the seeds were computed under different configurations"] if len(hashes) > 1 else []
    ranked = Note(
        inline(
            f"ranked columns: {', '.join(section.ranked_columns) or 'none'}; cost "
            f"columns: {', '.join(section.cost_columns) or 'none'}"
        )
    )
    records = quality.get(table.scenario)
    contributed = community([table])
    extra = [community_note(m, marker) for m, marker in sorted(contributed.items())]
    return ScenarioView(
        table.scenario,
        file,
        link(file, base) if file else None,
        table.version,
        table.kind,
        hashes,
        table.seeds,
        first.get("description") or "",
        table.source,
        scenario_table(section, registry, set(contributed)),
        notes(table, section.notes, cautions) + extra + [ranked],
        claim_views(table, section.claims),
        found_plots(
            [(title, name.format(scenario=table.scenario)) for title, name in SCENARIO_PLOTS],
            plots,
            base,
        ),
        _quality(records, table.results) if records else None,
        first.get("config") or {},
        success_view(table, registry),
        costmatch.view(section.cost_match, table, registry) if section.cost_match else None,
    )


def _quality(records: list, results: list[Result]) -> Quality:
    """The scenario's ε section, cautioned where the seed results came from another
    configuration or other code."""
    return quality_view(records, {r.get("config_hash") for r in results}, results_code(results))


def found_plots(names: list[tuple[str, str]], plots: Path, base: Path) -> list[Plot]:
    """The plots of ``names`` ((title, file name)) that exist under ``plots``."""
    return [
        Plot(title, plots / name, link(plots / name, base))
        for title, name in names
        if (plots / name).is_file()
    ]


def scenario_table(
    section: Section, registry: Registry, contributed: set[str] = frozenset()
) -> Table:
    """Methods × metrics with each row's rank, cost rank and seeds; best values bold;
    rows of the ``contributed`` methods marked as community contributions."""
    table = section.table
    best = {m: best_rows(table, m, registry) for m in table.metrics}
    columns = ["method", "rank ↓", "cost rank ↓", "seeds"] + [
        header(m, registry, table.kind) for m in table.metrics
    ]
    rows = []
    for row in table.rows:
        label = shown_label(table, row)
        marked = f"{label} {COMMUNITY}" if table.method_of(row) in contributed else label
        cells = [
            Cell(marked),
            rank_cell(table, section.ranks, row, section.intervals),
            rank_cell(table, section.cost_ranks, row),
            Cell(seeds_text(table, row), sort=table.status.get(row, []).count("ok")),
        ]
        for m in table.metrics:
            text = cell_text(table, row, m, registry)
            shown = None if text in ("n/a", "failed") else table.stats(row, m)
            cls = metric_class(m, registry)
            sort = shown[0] * (100.0 if cls and cls.percent else 1.0) if shown else None
            cells.append(Cell(text, best=row in best[m], sort=sort))
        rows.append(Row(row, table.method_of(row), cells, row in table.references))
    return Table(columns, rows)


def rank_cell(
    table: ScenarioTable,
    ranks: dict[str, float],
    row: str,
    intervals: dict[str, tuple[float, float]] | None = None,
) -> Cell:
    spread = (intervals or {}).get(row)
    return Cell(
        rank_text(table, ranks, row, intervals),
        sort=None if row in table.references or row in table.baselines else ranks.get(row),
        interval=spread if spread and ranks.get(row) is not None else None,
        scale=RANK_SCALE,
    )


def rank_text(
    table: ScenarioTable,
    ranks: dict[str, float],
    row: str,
    intervals: dict[str, tuple[float, float]] | None = None,
) -> str:
    """A row's rank, with its bootstrap interval over the seeds when it has one."""
    if row in table.references:
        return "ref"
    if row in table.baselines:
        return BASELINE
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


def core_scenarios(
    ranks: dict[str, dict[str, float]], scenarios: list[str], contributed: set[str]
) -> list[str]:
    """The scenarios every built-in ranked method ran: a community method serving fewer
    does not shrink everyone's overall rank (it gets one only where it ran them all)."""
    core = {m: r for m, r in ranks.items() if m not in contributed} or ranks
    return ranking.common_scenarios(core, scenarios)


def ranking_table(sections: list[Section]) -> Table:
    """One row per method: its place, its rank (with its interval over the seeds) and
    cost rank, both averaged over the scenarios every ranked method ran, and its rank in
    each scenario — the shared ones first, the others after them, marked and not
    averaged; methods that never ran come last."""
    tables = [s.table for s in sections]
    ranks, costs = overall(sections), overall(sections, cost=True)
    scenarios = [t.scenario for t in tables]
    contributed = set(community(tables))
    common = core_scenarios(ranks, scenarios, contributed)
    means = ranking.mean_over(ranks, common)
    cost_means = ranking.mean_over(costs, core_scenarios(costs, scenarios, contributed))
    statuses = {
        t.scenario: {
            t.method_of(r): t.status.get(r, [])
            for r in t.rows
            if r not in t.references and r not in t.baselines
        }
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
    columns = ["#", "method", "rank ↓ (95% over seeds)", "cost rank ↓", "scenarios"]
    columns += common + [f"{s} (not shared)" for s in others]
    rows = []
    for method in order:
        mine = ranks.get(method, {})
        cells = []
        for s in common + others:
            if s in mine:
                cells.append(Cell(f"{mine[s]:.2f}", sort=mine[s]))
            else:
                st = statuses[s].get(method, [])
                alone = "ok" in st  # it ran, but no other method did
                text = "alone" if alone else st[0] if st and len(set(st)) == 1 else "not run"
                cells.append(Cell(text))
        mean = f"{means[method]:.2f}" if method in means else "—"
        spread = spreads.get(method) if method in means else None
        if spread:
            mean += f" ({spread[0]:.2f}–{spread[1]:.2f})"
        cost = f"{cost_means[method]:.2f}" if method in cost_means else "—"
        place = place_of.get(method) if method in means else None
        place_text = "—" if place is None else (f"={place}" if place in shared else str(place))
        rows.append(
            Row(
                method,
                method,
                [
                    Cell(place_text, sort=place),
                    Cell(f"{method} {COMMUNITY}" if method in contributed else method),
                    Cell(mean, sort=means.get(method), interval=spread, scale=RANK_SCALE),
                    Cell(cost, sort=cost_means.get(method)),
                    Cell(f"{len(mine)}/{len(scenarios)}", sort=len(mine)),
                ]
                + cells,
            )
        )
    return Table(columns, rows, label_column=1)


def claims_text(claims: list[ClaimView]) -> Inline:
    """How the papers' claims are tested and decided, and how many held."""
    return claim_rules({v: sum(c.verdict == v for c in claims) for v in VERDICTS})


# ------------------------------------------------------------------------ rendering
def render_leaderboard(
    results: list[Result], registry: Registry, paths: list[str], base: Path, plots: Path
) -> str:
    """The leaderboard markdown (:mod:`fubench.report.markdown`)."""
    return markdown.render(build_board(results, registry, paths, base, plots))


def render_table(section: Section, registry: Registry) -> str:
    """One scenario's table as markdown."""
    return markdown.table(scenario_table(section, registry))


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
