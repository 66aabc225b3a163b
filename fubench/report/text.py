"""``fubench table`` and the table ``fubench run`` prints: per scenario a heading, the
data source, the table (each swept method at its best point) and the notes."""

from __future__ import annotations

from fubench.registry import Registry
from fubench.report.claims import check_report, render_claims
from fubench.report.reader import Result
from fubench.report.success import render_success
from fubench.report.sweeps import keep_best_sweep_points
from fubench.report.table import ScenarioTable, aggregate, render


def notes(table: ScenarioTable, sweep_notes: list[str], cautions: list[str] = ()) -> list[str]:
    """The lines under a table: why rows failed or do not apply, which sweep point each
    swept method shows, then cautions and the scenario's own warnings."""
    lines = [
        f"- **{row}**: {table.status[row][0]} — {err}"
        for row, err in sorted(table.errors.items())
        if row in table.rows
    ]
    lines += sweep_notes
    lines += [f"- **{m}** undefined: {why}" for m, why in table.undefined.items()]
    lines += [f"- **{m}** not ranked: {why}" for m, why in table.unranked.items()]
    lines += [f"- ⚠ {c}" for c in cautions]
    lines += [f"- ⚠ {w}" for w in dict.fromkeys(table.warnings)]
    return lines


def render_report(results: list[Result], registry: Registry, all_points: bool = False) -> str:
    """Markdown: per scenario a heading, the data source, the table, notes, the
    forgetting columns seed by seed and the claims (decided across all scenarios shown).
    A swept method shows only its best sweep point unless ``all_points``."""
    tables = aggregate(results, registry)
    sweep_notes = [[] if all_points else keep_best_sweep_points(t, registry) for t in tables]
    claims = check_report(tables, registry)
    parts = []
    for table, swept, found in zip(tables, sweep_notes, claims):
        seeds = ", ".join(map(str, table.seeds))
        parts.append(
            f"## {table.scenario} ({table.kind}, v{table.version})\n\n"
            f"Data: {table.source}. Seeds: {seeds} (mean ± std).\n"
        )
        parts.append(render(table, registry) + "\n")
        lines = notes(table, swept)
        if lines:
            parts.append("\n".join(lines) + "\n")
        success = render_success(table, registry)
        if success:
            parts.append("\n".join(success) + "\n")
        if found:
            parts.append(
                "Claims of the papers, tested over the seeds (p adjusted across every claim "
                "shown, Benjamini–Hochberg):\n\n" + "\n".join(render_claims(found)) + "\n"
            )
    return "\n".join(parts)
