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
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from fubench.registry import Registry
from fubench.report import ranking
from fubench.report.quality import load_quality, render_records
from fubench.report.ranking import (MIN_USEFUL, best_rows, cost_ranks, ranked_columns,
                                    scenario_ranks)
from fubench.report.reader import Result
from fubench.report.sweeps import keep_best_sweep_points, utility_axis
from fubench.report.table import ScenarioTable, aggregate, cell_text, header, metric_class
from fubench.report.text import notes

#: per-scenario plots the leaderboard links when they exist under the plots folder
SCENARIO_PLOTS = (("trade-off curves", "{scenario}_tradeoff.png"),
                  ("attention maps", "{scenario}_attention.png"))
GLOBAL_PLOTS = (("cost per method", "cost.png"),)


@dataclass
class Section:
    """One scenario of the leaderboard: its aggregated table and what was decided on it."""

    table: ScenarioTable
    notes: list[str]
    ranks: dict[str, float]            # competing row -> mean rank over quality columns
    ranked_columns: list[str]
    cost_ranks: dict[str, float]       # competing row -> mean rank over cost columns
    cost_columns: list[str]


def build_sections(results: list[Result], registry: Registry) -> list[Section]:
    sections = []
    for table in aggregate(results, registry):
        # swept methods show their best point only, exactly as `fubench table` does
        sweep_notes = keep_best_sweep_points(table, registry)
        original, reference = table.references
        middle = sorted(r for r in table.rows if r not in table.references)
        table.rows = ([original] if original in table.rows else []) + middle + (
            [reference] if reference in table.rows else [])
        ranks, columns = scenario_ranks(table, registry)
        costs, cost_columns = cost_ranks(table, registry)
        sections.append(Section(table, sweep_notes, ranks, columns, costs, cost_columns))
    return sections


def overall(sections: list[Section], cost: bool = False) -> dict[str, dict[str, float]]:
    """{method: {scenario: rank}} (with ``cost``: cost ranks) over the sections."""
    return ranking.overall([s.table for s in sections],
                           [s.cost_ranks if cost else s.ranks for s in sections])


# ------------------------------------------------------------------------ rendering
def link(path: str | Path, base: Path) -> str:
    return Path(os.path.relpath(Path(path), base)).as_posix()


def render_table(section: Section, registry: Registry) -> str:
    table = section.table
    best = {m: best_rows(table, m, registry) for m in table.metrics}
    headers = ["method", "rank ↓", "cost rank ↓", "seeds"] + [header(m, registry)
                                                            for m in table.metrics]
    body = []
    for row in table.rows:
        cells = []
        for m in table.metrics:
            text = cell_text(table, row, m, registry)
            cells.append(f"**{text}**" if row in best[m] else text)
        body.append([row, rank_text(table, section.ranks, row),
                     rank_text(table, section.cost_ranks, row), seeds_text(table, row)] + cells)
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def rank_text(table: ScenarioTable, ranks: dict[str, float], row: str) -> str:
    rank = ranks.get(row)
    return "ref" if row in table.references else ("—" if rank is None else f"{rank:.2f}")


def seeds_text(table: ScenarioTable, row: str) -> str:
    ok = table.status.get(row, []).count("ok")
    return str(ok) if ok == len(table.seeds) else f"{ok}/{len(table.seeds)}"


def render_section(section: Section, registry: Registry, base: Path, plots: Path) -> str:
    table = section.table
    first = table.results[0]["scenario"]
    hashes = sorted({r.get("config_hash") or "?" for r in table.results})
    file = first.get("file")
    where = f"[`{file}`]({link(file, base)})" if file else "(no scenario file recorded)"
    lines = [f"## {table.scenario}", "",
             f"Scenario {where}, version {table.version}, kind `{table.kind}`, config "
             f"{', '.join(f'`{h}`' for h in hashes)}; seeds "
             f"{', '.join(map(str, table.seeds))}.  "]
    if first.get("description"):
        lines.append(f"{first['description']}  ")
    lines += [f"Data: {table.source}.", "", render_table(section, registry), ""]
    cautions = (["the seeds were computed under different configurations"]
                if len(hashes) > 1 else [])
    lines += notes(table, section.notes, cautions)
    lines.append(f"- ranked columns: {', '.join(section.ranked_columns) or 'none'}; cost "
                 f"columns: {', '.join(section.cost_columns) or 'none'}")
    found = [f"[{title}]({link(plots / name.format(scenario=table.scenario), base)})"
             for title, name in SCENARIO_PLOTS
             if (plots / name.format(scenario=table.scenario)).is_file()]
    if found:
        lines += ["", "Plots: " + " · ".join(found)]
    return "\n".join(lines) + "\n"


def render_ranking(sections: list[Section], registry: Registry) -> str:
    tables = [s.table for s in sections]
    ranks, costs = overall(sections), overall(sections, cost=True)
    scenarios = [t.scenario for t in tables]
    sizes = {s.table.scenario: len(s.ranks) for s in sections}
    statuses = {t.scenario: {t.method_of(r): t.status.get(r, []) for r in t.rows
                             if r not in t.references} for t in tables}
    order = sorted(ranks, key=lambda m: (_mean(ranks[m]), m))
    # methods that never ran successfully are listed last, so a failure stays visible
    order += sorted({m for st in statuses.values() for m in st} - set(ranks))
    headers = ["#", "method", "mean rank ↓", "mean cost rank ↓", "scenarios"] + scenarios
    body = []
    for place, method in enumerate(order, 1):
        mine = ranks.get(method, {})
        cells = []
        for s in scenarios:
            if s in mine:
                cells.append(f"{mine[s]:.2f} of {sizes[s]}")
            else:
                st = statuses[s].get(method, [])
                cells.append(st[0] if st and len(set(st)) == 1 else "not run")
        mean = f"{_mean(mine):.2f}" if mine else "—"
        cost = f"{_mean(costs[method]):.2f}" if costs.get(method) else "—"
        body.append([str(place) if mine else "—", method, mean, cost,
                     f"{len(mine)}/{len(scenarios)}"] + cells)
    table = tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)
    return "\n".join(["## Overall ranking", "", ranking_rules(tables, registry), "",
                      cost_rules(tables, registry), "", table, ""])


def ranking_rules(tables: list[ScenarioTable], registry: Registry) -> str:
    """How ranks are made, in words, naming the columns these tables actually have."""
    twins = _twins(tables, registry)
    utility = sorted({u for t in tables if (u := utility_axis(t, registry))})
    left_out = (f"; a raw column is left out where its normalised twin is shown "
                f"({', '.join(f'{raw} beside {norm}' for raw, norm in twins)})"
                if twins else "")
    broken = (f" A method whose {' / '.join(utility)} is below {MIN_USEFUL} (its model "
              f"lost most of its accuracy, so its forgetting numbers mean nothing) is not "
              f"ranked on the columns and shares the last places." if utility else "")
    return ("Rank of a method in one scenario: for every ranked column (a metric with ↑/↓ "
            f"that measures utility or forgetting{left_out}), the methods that ran are "
            "ordered by their seed mean as displayed; the best gets 1, tied methods share "
            "the mean of their positions, a method without a value shares the last "
            f"positions.{broken} The scenario rank is the mean of these column ranks (shown "
            "as `rank` in each table; \"of N\" = how many methods competed). The mean rank "
            "is the mean of a method's scenario ranks over the scenarios it ran on "
            "(`scenarios`); reference rows do not compete. Lower is better; ties are "
            "listed by name.")


def cost_rules(tables: list[ScenarioTable], registry: Registry) -> str:
    """The cost ranking in words, and which methods are charged for less than they use."""
    columns = sorted({m for t in tables for m in ranked_columns(t, registry, cost=True)})
    readers = sorted({(t.method_of(r), up) for t in tables for r in t.rows
                      if t.method_of(r) in registry.methods
                      for up in registry.methods.get(t.method_of(r)).reads})
    charged = " ".join(f"{m}'s cost leaves out the {up} pass whose result it reads."
                       for m, up in readers)
    return (f"Cost ({', '.join(columns) or 'none here'}) is ranked apart, the same way "
            "(`cost rank`, and its mean here): folded into one mean, the cost columns "
            "would outvote the forgetting columns and a method that does nothing would "
            f"rank first.{' ' + charged if charged else ''}")


def _twins(tables: list[ScenarioTable], registry: Registry) -> list[tuple[str, str]]:
    pairs = set()
    for t in tables:
        for m in t.metrics:
            cls = metric_class(m, registry)
            if cls is not None and cls.normalises in t.metrics and cls.normalisation == "ratio":
                pairs.add((cls.normalises, m))
    return sorted(pairs)


def _mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values)


def render_provenance(results: list[Result]) -> str:
    values: dict[str, set[str]] = defaultdict(set)
    plugins: dict[str, set[str]] = defaultdict(set)
    dates = []
    for r in results:
        prov = r.get("provenance", {})
        for key in ("fubench_version", "git_hash", "device", "hardware", "python", "torch"):
            values[key].add(str(prov.get(key)))
        for name, version in (prov.get("plugins") or {}).items():
            plugins[name].add(str(version))
        if prov.get("date"):
            dates.append(prov["date"])
    labels = (("fubench_version", "fubench"), ("git_hash", "git commit"),
              ("device", "device"), ("hardware", "hardware"), ("python", "Python"),
              ("torch", "PyTorch"))
    files = f"{len(results)} result file{'s' if len(results) != 1 else ''}"
    lines = ["## Provenance", "", f"From {files}.", ""]
    lines += [f"- {label}: {', '.join(sorted(values[key]))}" for key, label in labels]
    if dates:
        lines.append(f"- run dates: {min(dates)} … {max(dates)}")
    if plugins:
        lines.append("- plugins: " + ", ".join(f"{n} {'/'.join(sorted(v))}"
                                               for n, v in sorted(plugins.items())))
    return "\n".join(lines) + "\n"


def intro(paths: list[str], base: Path, references: list[str]) -> str:
    where = ", ".join(f"[`{link(p, base)}`]({link(p, base)})" for p in paths)
    gold = " / ".join(f"`{r}`" for r in references)
    return "\n".join([
        "# fubench leaderboard", "",
        f"Generated by `fubench leaderboard` from the result files in {where}; do not edit "
        "by hand. `fubench leaderboard RESULTS... -o FILE --check` fails when this file is "
        "stale against the results.", "",
        "- Cells: mean ± sample std over seeds; `seeds`: seeds where the row ran; "
        "\"(k/n)\": only k of n seeds defined the value; \"—\" undefined; \"n/a\" the "
        "method does not serve the scenario; \"failed\" it raised (reasons under the table).",
        "- ↑ / ↓: higher / lower is better, as the metric declares; columns without an "
        "arrow describe and are not ranked.",
        "- **Bold**: the best value of each column with ↑/↓ among the unlearning methods "
        "(values equal as displayed tie). `original` (the model before unlearning) and "
        f"{gold} (the gold standard) are reference rows: shown for context, never bold, "
        "not ranked.",
        "- A swept method shows its best sweep point (see the notes; all points: "
        "`fubench table --all-points`, `fubench plot tradeoff`).", ""])


def render_leaderboard(results: list[Result], registry: Registry, paths: list[str],
                       base: Path, plots: Path) -> str:
    sections = build_sections(results, registry)
    references = sorted({s.table.reference for s in sections})
    parts = [intro(paths, base, references), render_ranking(sections, registry)]
    found = [f"[{title}]({link(plots / name, base)})" for title, name in GLOBAL_PLOTS
             if (plots / name).is_file()]
    if found:
        parts.append("Plots: " + " · ".join(found) + "\n")
    quality = load_quality(paths)  # the forgetting-quality ε files, where computed
    parts += [render_section(s, registry, base, plots) + quality_section(s, quality)
              for s in sections]
    parts.append(render_provenance(results))
    return "\n".join(parts)


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
    diff = difflib.unified_diff(old.splitlines(), text.splitlines(), str(path),
                                "regenerated", lineterm="", n=1)
    return list(diff)[:limit]


