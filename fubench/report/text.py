"""``fubench table`` and the table ``fubench run`` prints: per scenario a heading, the
data source, the table (each swept method at its best point) and the notes; and the
words under a table that the leaderboard shares: notes and claims."""

from __future__ import annotations

from fubench.registry import Registry
from fubench.report import fit, markdown
from fubench.report.board import ClaimView, Note
from fubench.report.claims import ClaimResult, check_report, effect_text, p_text, shown_row
from fubench.report.markup import inline, md_text, strong
from fubench.report.reader import Result
from fubench.report.success import success_view
from fubench.report.sweeps import keep_best_sweep_points
from fubench.report.table import ScenarioTable, aggregate, render


def notes(table: ScenarioTable, sweep_notes: list[Note], cautions: list[str] = ()) -> list[Note]:
    """The lines under a table: why rows failed or do not apply, which metrics failed
    on which rows, which sweep point each swept method shows, then cautions and the
    scenario's own warnings."""
    lines = [
        Note(inline(strong(row), f": {table.status[row][0]} — {err}"), about=row)
        for row, err in sorted(table.errors.items())
        if row in table.rows
    ]
    lines += [
        Note(inline(strong(row), f": metric {metric} failed — {why}"), about=row)
        for (row, metric), why in table.metric_errors.items()
        if row in table.rows
    ]
    lines += sweep_notes
    lines += [Note(inline(strong(m), f" undefined: {why}")) for m, why in table.undefined.items()]
    lines += [Note(inline(strong(m), f" not ranked: {why}")) for m, why in table.unranked.items()]
    lines += [Note(inline(f"⚠ {c}")) for c in cautions]
    lines += [Note(inline(f"⚠ {w}")) for w in dict.fromkeys(table.warnings)]
    return lines


def claim_views(table: ScenarioTable, checked: list[ClaimResult]) -> list[ClaimView]:
    """The scenario's claims as tested over its seeds (:func:`check_claims`)."""
    views = []
    for result in checked:
        claim = result.claim
        named = [claim.row] + ([claim.other] if claim.other else [])
        views.append(
            ClaimView(
                claim.id,
                claim.source + (f" ({claim.note})" if claim.note else ""),
                claim.statement(),
                result.measured,
                result.verdict,
                tuple(dict.fromkeys(table.method_of(shown_row(table, n)) for n in named)),
                effect_text(result),
                p_text(result),
            )
        )
    return views


def render_report(
    results: list[Result],
    registry: Registry,
    all_points: bool = False,
    width: int | None = None,
    only_testable: bool = False,
) -> str:
    """Markdown: per scenario a heading, the data source, the table, notes, the
    forgetting columns seed by seed and the claims (decided across all scenarios shown).
    A swept method shows only its best sweep point unless ``all_points``. With
    ``width``, the report fits that many characters (:mod:`fubench.report.fit`): tables
    cut into parts, claims as a list, prose wrapped. ``only_testable`` (a run of some
    of the methods) leaves out the claims its rows cannot test, and says how many."""
    tables = aggregate(results, registry)
    sweep_notes = [[] if all_points else keep_best_sweep_points(t, registry) for t in tables]
    claims = check_report(tables, registry)
    parts = []
    for table, swept, found in zip(tables, sweep_notes, claims):
        seeds = ", ".join(map(str, table.seeds))
        parts.append(
            f"## {md_text(table.scenario)} ({md_text(table.kind)}, v{md_text(table.version)})"
            f"\n\nData: {md_text(table.source)}. Seeds: {seeds} (mean ± std).\n"
        )
        parts.append(render(table, registry, width=width) + "\n")
        lines = markdown.notes(notes(table, swept))
        if lines:
            parts.append("\n".join(lines) + "\n")
        success = success_view(table, registry)
        if success:
            caption, grid = success
            parts.append(f"{md_text(caption)}\n\n{markdown.table(grid, width)}\n")
        parts += claims_part(table, found, width, only_testable)
    return fit.wrap("\n".join(parts), width)


def claims_part(
    table: ScenarioTable, found: list[ClaimResult], width: int | None, only_testable: bool
) -> list[str]:
    """The claims under a table: a table of them, or a list on a narrow page; with
    ``only_testable``, the claims this table's rows can test, and a line for the rest."""
    left_out = [r for r in found if r.verdict == "not testable"] if only_testable else []
    shown = [r for r in found if r not in left_out]
    parts = []
    if shown:
        views = claim_views(table, shown)
        lines = markdown.claim_items(views) if width is not None else markdown.claims(views)
        parts.append(
            "Claims of the papers, tested over the seeds (p adjusted across every claim "
            "shown, Benjamini–Hochberg):\n\n" + "\n".join(lines) + "\n"
        )
    if left_out:
        parts.append(
            f"{len(left_out)} of the scenario's {len(found)} claims name rows or metrics "
            f"this run did not compute: `fubench table` on the results folder tests them.\n"
        )
    return parts
