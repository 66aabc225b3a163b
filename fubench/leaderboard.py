"""The leaderboard: markdown generated from stored result files only.

``fubench leaderboard RESULTS... -o leaderboard/README.md`` writes, per scenario, a
table of methods × the metrics stored in its results (the kind's headline metrics), mean
± std over seeds with the number of seeds, the best value per ranked column in bold, a
link to the scenario file, links to the plots that exist, then an overall ranking and a
provenance footer. Tables reuse :mod:`fubench.report` (aggregation, cell text, headers,
the choice of each swept method's best point), so the leaderboard and ``fubench table``
never disagree on a number.

Choices (also stated in the generated file):

* ``original`` and ``retrain`` are reference rows: shown for context, never bold, never
  ranked. Retrain is the gold standard every normalised metric is measured against;
  letting it compete would make it win the forgetting columns by definition.
* Best and rank use the seed mean *as displayed* (rounded), so values that read equal
  tie, and ties are marked / ranked equally.
* A column is ranked when its metric declares a direction (↑/↓). A raw column whose
  normalised twin is also in the table (test_acc next to nta, seconds next to rtr) is
  not ranked again: it orders methods the same way and would count twice.
* Quality and cost are ranked apart. The rank is over how well a method unlearns
  (utility and forgetting columns); what it spends (metrics declared ``cost``: time,
  clients, rounds, bytes, stored history) gets its own cost rank. Mixed into one mean,
  the cost columns outvote the forgetting ones and a method that does nothing (no
  time, no client) ranks first.

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
from typing import Any

from tabulate import tabulate

from fubench.errors import UnknownNameError
from fubench.plugins import Registry
from fubench.report import (ScenarioTable, aggregate, cell_text, format_value, header,
                            keep_best_sweep_points)
from fubench.results import find_results, read_result

REFERENCES = ("original", "retrain")
#: a raw column is not ranked when its normalised twin is in the table (same order)
RANK_TWINS = {"test_acc": "nta", "seconds": "rtr"}
#: below this NTA a method's model counts as broken and ranks last (see ``broken``)
MIN_USEFUL_NTA = 0.5
#: per-scenario plots the leaderboard links when they exist under the plots folder
SCENARIO_PLOTS = (("trade-off curves", "{scenario}_tradeoff.png"),
                  ("attention maps", "{scenario}_attention.png"))
GLOBAL_PLOTS = (("RTR per method", "rtr.png"),)


@dataclass
class Section:
    """One scenario of the leaderboard: its aggregated table and what was decided on it."""

    table: ScenarioTable
    results: list[dict[str, Any]]
    notes: list[str]
    ranks: dict[str, float]            # competing row -> mean rank over quality columns
    ranked_columns: list[str]
    cost_ranks: dict[str, float]       # competing row -> mean rank over cost columns
    cost_columns: list[str]


# ------------------------------------------------------------------------ loading
def load_results(paths: list[str]) -> list[dict[str, Any]]:
    files = find_results(paths)
    if not files:
        raise ValueError(f"no result files (seed_*.json) under {', '.join(paths)}")
    return [read_result(p) for p in files]


def default_base(paths: list[str]) -> Path:
    """The folder links are relative to: the one holding the first RESULTS argument
    (``leaderboard/results`` -> ``leaderboard``). It does not depend on ``-o``, so
    writing the same leaderboard elsewhere gives the same bytes."""
    return Path(paths[0]).parent


# ------------------------------------------------------------------ best and rank
def metric_class(metric: str, registry: Registry) -> type | None:
    """The registered metric, or None for a metric no installed plugin provides."""
    try:
        return registry.metric(metric)
    except UnknownNameError:
        return None


def direction(metric: str, registry: Registry) -> bool | None:
    return getattr(metric_class(metric, registry), "higher_is_better", None)


def shown_mean(table: ScenarioTable, row: str, metric: str, registry: Registry) -> float | None:
    """The seed mean rounded as the table prints it (percent metrics ×100), or None."""
    cell = table.cells.get((row, metric))
    if cell is None or cell.mean is None or "ok" not in table.status.get(row, []):
        return None
    return float(format_value(metric_class(metric, registry), cell.mean, 0.0, 1))


def competing(table: ScenarioTable) -> list[str]:
    """Rows that compete: every method row with at least one successful seed."""
    return [r for r in table.rows
            if r not in REFERENCES and "ok" in table.status.get(r, [])]


def is_cost(metric: str, registry: Registry) -> bool:
    return bool(getattr(metric_class(metric, registry), "cost", False))


def ranked_columns(table: ScenarioTable, registry: Registry, cost: bool = False) -> list[str]:
    """Columns with a direction, without raw twins of normalised columns: the quality
    columns, or with ``cost`` the cost columns."""
    return [m for m in table.metrics if direction(m, registry) is not None
            and RANK_TWINS.get(m) not in table.metrics and is_cost(m, registry) == cost]


def column_ranks(table: ScenarioTable, metric: str, rows: list[str],
                 registry: Registry) -> dict[str, float]:
    """Fractional ranks (1 = best; tied values share the mean of their positions).
    Rows without a value share the positions after every row with one."""
    higher = direction(metric, registry)
    values = {r: shown_mean(table, r, metric, registry) for r in rows}
    have = sorted((v if not higher else -v, r) for r, v in values.items() if v is not None)
    groups: list[tuple[float | None, list[str]]] = []
    for key, row in have:
        if groups and groups[-1][0] == key:
            groups[-1][1].append(row)
        else:
            groups.append((key, [row]))
    missing = sorted(r for r, v in values.items() if v is None)
    if missing:
        groups.append((None, missing))
    ranks, position = {}, 0
    for _, members in groups:
        shared = position + (len(members) + 1) / 2
        ranks.update({r: shared for r in members})
        position += len(members)
    return ranks


def broken(table: ScenarioTable, row: str, registry: Registry) -> bool:
    """A row whose model lost most of its usefulness (nta below MIN_USEFUL_NTA): its
    forgetting columns would otherwise reward destroying the model (ASR 0 at chance
    accuracy), so it ranks after every useful row."""
    nta = shown_mean(table, row, "nta", registry) if "nta" in table.metrics else None
    return nta is not None and nta < MIN_USEFUL_NTA


def mean_ranks(table: ScenarioTable, rows: list[str], columns: list[str],
               registry: Registry) -> tuple[dict[str, float], list[str]]:
    """Each row's mean rank over those ``columns`` that have a value for some row."""
    columns = [m for m in columns
               if any(shown_mean(table, r, m, registry) is not None for r in rows)]
    if not rows or not columns:
        return {r: 1.0 for r in rows}, columns
    per_column = [column_ranks(table, m, rows, registry) for m in columns]
    return {r: sum(c[r] for c in per_column) / len(per_column) for r in rows}, columns


def scenario_ranks(table: ScenarioTable, registry: Registry) -> tuple[dict[str, float], list[str]]:
    """Each useful competing row's mean rank over the quality columns; broken rows (see
    :func:`broken`) share the last positions."""
    rows = competing(table)
    useful = [r for r in rows if not broken(table, r, registry)]
    last = [r for r in rows if r not in useful]
    ranks, columns = mean_ranks(table, useful, ranked_columns(table, registry), registry)
    ranks.update({r: len(useful) + (len(last) + 1) / 2 for r in last})
    return ranks, columns


def cost_ranks(table: ScenarioTable, registry: Registry) -> tuple[dict[str, float], list[str]]:
    """Each competing row's mean rank over the cost columns (a broken model's cost is
    still what it cost)."""
    return mean_ranks(table, competing(table), ranked_columns(table, registry, cost=True),
                      registry)


def best_rows(table: ScenarioTable, metric: str, registry: Registry) -> set[str]:
    higher = direction(metric, registry)
    if higher is None:
        return set()
    values = {r: v for r in competing(table)
              if (v := shown_mean(table, r, metric, registry)) is not None}
    if not values:
        return set()
    best = max(values.values()) if higher else min(values.values())
    return {r for r, v in values.items() if v == best}


# ------------------------------------------------------------------------ building
def build_sections(results: list[dict[str, Any]], registry: Registry) -> list[Section]:
    sections = []
    for table in aggregate(results):
        mine = [r for r in results if r["scenario"]["name"] == table.scenario]
        # swept methods show their best point only, exactly as `fubench table` does
        notes = keep_best_sweep_points(table, mine, registry)
        middle = sorted(r for r in table.rows if r not in REFERENCES)
        table.rows = [r for r in ("original",) if r in table.rows] + middle + [
            r for r in ("retrain",) if r in table.rows]
        ranks, columns = scenario_ranks(table, registry)
        costs, cost_columns = cost_ranks(table, registry)
        sections.append(Section(table, mine, notes, ranks, columns, costs, cost_columns))
    return sections


def method_of(section: Section, row: str) -> str:
    """The method name behind a row label (``tis_reset[gamma=0.3]`` -> ``tis_reset``)."""
    for result in section.results:
        if row in result["methods"]:
            return result["methods"][row].get("method", row)
    return row


def overall(sections: list[Section], cost: bool = False) -> dict[str, dict[str, float]]:
    """{method: {scenario: scenario rank}} (with ``cost``: cost ranks); a method with
    several rows in one scenario (a sweep without a chosen point) counts with its best
    row."""
    ranks: dict[str, dict[str, float]] = defaultdict(dict)
    for section in sections:
        for row, rank in (section.cost_ranks if cost else section.ranks).items():
            method = method_of(section, row)
            old = ranks[method].get(section.table.scenario)
            ranks[method][section.table.scenario] = rank if old is None else min(old, rank)
    return dict(ranks)


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
        body.append([row, rank_text(section.ranks, row), rank_text(section.cost_ranks, row),
                     seeds_text(table, row)] + cells)
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


def rank_text(ranks: dict[str, float], row: str) -> str:
    rank = ranks.get(row)
    return "ref" if row in REFERENCES else ("—" if rank is None else f"{rank:.2f}")


def seeds_text(table: ScenarioTable, row: str) -> str:
    ok = table.status.get(row, []).count("ok")
    return str(ok) if ok == len(table.seeds) else f"{ok}/{len(table.seeds)}"


def render_section(section: Section, registry: Registry, base: Path, plots: Path) -> str:
    table = section.table
    first = section.results[0]["scenario"]
    hashes = sorted({r.get("config_hash") or "?" for r in section.results})
    file = first.get("file")
    where = f"[`{file}`]({link(file, base)})" if file else "(no scenario file recorded)"
    lines = [f"## {table.scenario}", "",
             f"Scenario {where}, version {table.version}, kind `{table.kind}`, config "
             f"{', '.join(f'`{h}`' for h in hashes)}; seeds "
             f"{', '.join(map(str, table.seeds))}.  "]
    if first.get("description"):
        lines.append(f"{first['description']}  ")
    lines += [f"Data: {table.source}.", "", render_table(section, registry), ""]
    notes = [f"- **{row}**: {table.status[row][0]} — {err}"
             for row, err in sorted(table.errors.items()) if row in table.rows]
    notes += section.notes
    if len(hashes) > 1:
        notes.append("- ⚠ the seeds were computed under different configurations")
    notes += [f"- ⚠ {w}" for w in dict.fromkeys(table.warnings)]
    columns = ", ".join(section.ranked_columns) or "none"
    notes.append(f"- ranked columns: {columns}; cost columns: "
                 f"{', '.join(section.cost_columns) or 'none'}")
    lines += notes
    found = [f"[{title}]({link(plots / name.format(scenario=table.scenario), base)})"
             for title, name in SCENARIO_PLOTS
             if (plots / name.format(scenario=table.scenario)).is_file()]
    if found:
        lines += ["", "Plots: " + " · ".join(found)]
    return "\n".join(lines) + "\n"


def render_ranking(sections: list[Section]) -> str:
    ranks, costs = overall(sections), overall(sections, cost=True)
    scenarios = [s.table.scenario for s in sections]
    sizes = {s.table.scenario: len(s.ranks) for s in sections}
    statuses = {s.table.scenario: {method_of(s, r): s.table.status.get(r, [])
                                   for r in s.table.rows} for s in sections}
    order = sorted(ranks, key=lambda m: (_mean(ranks[m]), m))
    # methods that never ran successfully are listed last, so a failure stays visible
    order += sorted({m for st in statuses.values() for m in st} - set(ranks) - set(REFERENCES))
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
    return "\n".join([
        "## Overall ranking", "",
        "Rank of a method in one scenario: for every ranked column (a metric with ↑/↓ "
        "that measures utility or forgetting; test_acc is left out where nta is shown), "
        "the methods that ran are ordered by their seed mean as displayed; the best gets "
        "1, tied methods share the mean of their positions, a method without a value "
        f"shares the last positions. A method whose nta is below {MIN_USEFUL_NTA} (its "
        "model lost most of its accuracy, so its forgetting numbers mean nothing) is not "
        "ranked on the columns and shares the last places. The scenario rank is the mean "
        "of these column ranks (shown as `rank` in each table; \"of N\" = how many "
        "methods competed). The mean rank is the mean of a method's scenario ranks over "
        "the scenarios it ran on (`scenarios`); reference rows do not compete. Lower is "
        "better; ties are listed by name.", "",
        "Cost (time, rtr, clients involved, communication, stored history) is ranked "
        "apart, the same way (`cost rank`, and its mean here): folded into one mean, the "
        "cost columns would outvote the forgetting columns and a method that does nothing "
        "would rank first. random_reset's cost leaves out the tis_reset pass whose counts "
        "it copies.", "",
        table, ""])


def _mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values)


def render_provenance(results: list[dict[str, Any]]) -> str:
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


def intro(paths: list[str], base: Path) -> str:
    where = ", ".join(f"[`{link(p, base)}`]({link(p, base)})" for p in paths)
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
        "`retrain` (the gold standard) are reference rows: shown for context, never bold, "
        "not ranked.",
        "- A swept method shows its best sweep point (see the notes; all points: "
        "`fubench table --all-points`, `fubench plot tradeoff`).", ""])


def render_leaderboard(results: list[dict[str, Any]], registry: Registry, paths: list[str],
                       base: Path, plots: Path) -> str:
    sections = build_sections(results, registry)
    parts = [intro(paths, base), render_ranking(sections)]
    found = [f"[{title}]({link(plots / name, base)})" for title, name in GLOBAL_PLOTS
             if (plots / name).is_file()]
    if found:
        parts.append("Plots: " + " · ".join(found) + "\n")
    parts += [render_section(s, registry, base, plots) for s in sections]
    parts.append(render_provenance(results))
    return "\n".join(parts)


# --------------------------------------------------------------------------- check
def stale_diff(text: str, path: Path, limit: int = 40) -> list[str] | None:
    """None when ``path`` holds exactly ``text``, else the first lines of a diff."""
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if old == text:
        return None
    diff = difflib.unified_diff(old.splitlines(), text.splitlines(), str(path),
                                "regenerated", lineterm="", n=1)
    return list(diff)[:limit]


# ---------------------------------------------------------------- offline scenarios
def runs_offline(file: str, registry: Registry) -> tuple[bool, str]:
    """(whether the scenario's data set loads here without network, why not). Loaders
    that can download are asked not to, so the answer never depends on the network."""
    from fubench import data as datasets
    from fubench.config import load_scenario
    from fubench.errors import DataUnavailable

    config = load_scenario(file, registry)
    cls = registry.get("fubench_datasets", config.dataset.name)
    params = dict(config.dataset.params)
    if "download" in cls.parameters:
        params["download"] = False
    try:
        cls(**params).load(datasets.data_root())
    except DataUnavailable as exc:
        return False, str(exc).splitlines()[0]
    return True, ""
