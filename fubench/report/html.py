"""The leaderboard as a static site (``fubench leaderboard RESULTS --html DIR``).

The same :class:`~fubench.report.board.Board` as the markdown, so the same numbers:

* ``index.html``: the overall ranking, the papers' claims with their verdicts, the
  plots about every scenario and the provenance;
* ``scenario-<name>.html``: one scenario's table, notes, claims, plots, forgetting-quality
  ε and resolved configuration;
* ``method-<name>.html``: one method's place and ranks, and its rows (beside the
  reference rows) in every scenario, with the notes and claims about it;
* ``leaderboard.css``, ``leaderboard.js`` (package data, no library) and ``plots/``
  (copies of the PNGs found), so the folder works from ``file://`` with no server and
  no network.

Tables sort by a click on a column header and filter by a text box and a method (or
verdict) menu. Every text from the results is HTML-escaped (:func:`markup.esc`) and a
Content-Security-Policy allows scripts from the site's own files only, so nothing in a
result file can run. Output is deterministic: it depends on the board alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

from fubench.report.board import Board, Cell, ClaimView, Note, Plot, Row, ScenarioView, Table
from fubench.report.markup import Inline, esc, to_html

ASSETS = ("leaderboard.css", "leaderboard.js")
CSP = (
    "default-src 'none'; script-src 'self' file:; style-src 'self' file:; "
    "img-src 'self' file:; base-uri 'none'; form-action 'none'"
)
VERDICT_ORDER = ("held", "not held", "inconclusive", "not testable")


def site(board: Board) -> dict[str, bytes]:
    """Every file of the site, by its path relative to the site's folder."""
    names = Names(board)
    files = {"index.html": index_page(board, names)}
    for view in board.scenarios:
        files[names.scenario(view.name)] = scenario_page(board, view, names)
    for method in board.methods:
        files[names.method(method)] = method_page(board, method, names)
    files = {path: text.encode("utf-8") for path, text in files.items()}
    for plot, path in names.plots.items():
        files[path] = plot.file.read_bytes()
    for asset in ASSETS:
        files[asset] = resources.files("fubench.report").joinpath("site", asset).read_bytes()
    return files


def write_site(files: dict[str, bytes], folder: Path) -> None:
    for path, data in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_bytes() != data:
            target.write_bytes(data)


def stale_files(files: dict[str, bytes], folder: Path) -> list[str]:
    """The site's files that are missing under ``folder`` or differ from ``files``."""
    return sorted(
        path
        for path, data in files.items()
        if not (folder / path).is_file() or (folder / path).read_bytes() != data
    )


# ------------------------------------------------------------------------- names
def slug(name: str) -> str:
    """A file-name-safe form of ``name``; names that had to change get a hash, so two
    names never share a file."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    if safe == name:
        return safe
    return f"{safe or 'x'}-{hashlib.sha256(name.encode('utf-8')).hexdigest()[:8]}"


class Names:
    """Where each page and plot of the site lies."""

    def __init__(self, board: Board):
        self.scenarios = [s.name for s in board.scenarios]
        self.methods = board.methods
        plots = list(board.plots) + [p for s in board.scenarios for p in s.plots]
        self.plots = {p: f"plots/{slug(p.file.name)}" for p in dict.fromkeys(plots)}

    @staticmethod
    def scenario(name: str) -> str:
        return f"scenario-{slug(name)}.html"

    def method(self, name: str) -> str | None:
        return f"method-{slug(name)}.html" if name in self.methods else None


# ------------------------------------------------------------------------- pages
def page(title: str, body: list[str], board: Board, names: Names) -> str:
    nav_scenarios = " ".join(
        f'<a href="{esc(names.scenario(s))}">{esc(s)}</a>' for s in names.scenarios
    )
    nav_methods = " ".join(f'<a href="{esc(names.method(m))}">{esc(m)}</a>' for m in names.methods)
    fubench = dict(board.provenance.items).get("fubench", "?")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">',
            f"<title>{esc(title)}</title>",
            '<link rel="stylesheet" href="leaderboard.css">',
            '<script src="leaderboard.js" defer></script>',
            "</head>",
            "<body>",
            '<header class="site"><a class="home" href="index.html">fubench leaderboard</a>',
            f"<nav><p>Scenarios: {nav_scenarios}</p><p>Methods: {nav_methods}</p></nav>",
            "</header>",
            "<main>",
            *body,
            "</main>",
            f"<footer>Generated by <code>fubench leaderboard --html</code> (fubench "
            f"{esc(fubench)}) from {board.provenance.files} result files; the same numbers "
            "as the markdown leaderboard.</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )


def index_page(board: Board, names: Names) -> str:
    scenarios = "".join(
        f'<li><a href="{esc(names.scenario(s.name))}">{esc(s.name)}</a> '
        f"<small>({esc(s.kind)})</small></li>"
        for s in board.scenarios
    )
    body = [
        "<h1>fubench leaderboard</h1>",
        '<p class="lead">Federated unlearning methods on every scenario, ranked from the '
        "stored result files.</p>",
        "<h2>Overall ranking</h2>",
        details("How to read the tables", bullets(board.legend)),
        details(
            "How ranks are made",
            f"<p>{to_html(board.ranking_rules)}</p><p>{to_html(board.cost_rules)}</p>",
        ),
        table_html(board.ranking, "t-ranking", names, "Method", scenario_links=True),
        figures(board.plots, names),
    ]
    if board.cost_match:
        text, overview = board.cost_match
        body += [
            "<h2>Against retraining at equal cost</h2>",
            f"<p>{esc(text)}</p>",
            table_html(overview, "t-cost-match", names, "Method", scenario_links=True),
        ]
    body += [
        "<h2>Scenarios</h2>",
        f"<ul>{scenarios}</ul>",
    ]
    if board.claims:
        body += [
            "<h2>Claims of the papers</h2>",
            f"<p>{to_html(board.claims_text)}</p>",
            claims_html(board.claims, "t-claims", names),
        ]
    body += ["<h2>Provenance</h2>", provenance_html(board)]
    return page("fubench leaderboard", body, board, names)


def scenario_page(board: Board, view: ScenarioView, names: Names) -> str:
    facts = [
        ("scenario file", f"<code>{esc(view.file)}</code>" if view.file else "not recorded"),
        ("kind", f"<code>{esc(view.kind)}</code>"),
        ("version", esc(view.version)),
        ("config", ", ".join(f"<code>{esc(h)}</code>" for h in view.hashes)),
        ("seeds", esc(", ".join(map(str, view.seeds)))),
        ("data", esc(view.source)),
    ]
    body = [f"<h1>{esc(view.name)}</h1>"]
    if view.description:
        body.append(f'<p class="lead">{esc(view.description)}</p>')
    body += [
        facts_html(facts),
        table_html(view.table, "t-scenario", names, "Method"),
        notes_html(view.notes),
    ]
    if view.cost_match:
        caption, matched = view.cost_match
        body += [
            "<h2>Against retraining at equal cost</h2>",
            f"<p>{esc(caption)}</p>",
            table_html(matched, "t-cost-match", names, "Method"),
        ]
    if view.success:
        caption, success = view.success
        body += [
            "<h2>Forgetting over the seeds</h2>",
            f"<p>{esc(caption)}</p>",
            table_html(success, "t-success", names, "Method"),
        ]
    if view.claims:
        body += [
            "<h2>Claims of the papers</h2>",
            claims_html([(view.name, c) for c in view.claims], "t-claims", names),
        ]
    if view.plots:
        body += ["<h2>Plots</h2>", figures(view.plots, names)]
    if view.quality:
        q = view.quality
        body += [
            f"<h2>{esc(q.title)}</h2>",
            f"<p>{to_html(q.text)}</p>",
            table_html(q.table, "t-quality", names, "Method"),
            bullets(q.notes),
        ]
    if view.config:
        body += [
            "<h2>Configuration</h2>",
            details(
                "The resolved scenario, as its results store it",
                f"<pre>{esc(json.dumps(view.config, indent=2, ensure_ascii=False))}</pre>",
            ),
        ]
    return page(f"{view.name} — fubench leaderboard", body, board, names)


def method_page(board: Board, method: str, names: Names) -> str:
    (ranked,) = board.ranking.rows_of(method)
    columns = board.ranking.columns
    first = len(columns) - len(board.scenarios)  # the ranking ends with a column each
    summary = [
        (columns[i], cell_html(ranked.cells[i]))
        for i in range(first)
        if i != board.ranking.label_column
    ]
    by_scenario = Table(
        ["scenario", "rank ↓"],
        [
            Row(name, method, [Cell(name), cell])
            for name, cell in zip(columns[first:], ranked.cells[first:])
        ],
    )
    body = [
        f"<h1>{esc(method)}</h1>",
        facts_html(summary),
        "<h2>Rank in each scenario</h2>",
        table_html(by_scenario, "t-ranks", names, None, scenario_links=True, label_scenarios=True),
    ]
    for i, view in enumerate(board.scenarios):
        rows = view.table.rows_of(method)
        if not rows:
            continue
        labels = {r.label for r in rows} | {method}
        shown = Table(
            view.table.columns, [r for r in view.table.rows if r.method == method or r.reference]
        )
        body += [
            f'<h2><a href="{esc(names.scenario(view.name))}">{esc(view.name)}</a></h2>',
            table_html(shown, f"t-s{i}", names, None),
            notes_html([n for n in view.notes if n.about in labels]),
        ]
        claims = [(view.name, c) for c in view.claims if method in c.methods]
        if claims:
            body.append(claims_html(claims, f"t-c{i}", names))
    return page(f"{method} — fubench leaderboard", body, board, names)


# ------------------------------------------------------------------------ pieces
def table_html(
    table: Table,
    table_id: str,
    names: Names,
    filter_by: str | None,
    scenario_links: bool = False,
    label_scenarios: bool = False,
) -> str:
    """A sortable table with a filter bar (a menu of the row keys with ``filter_by``).
    Row labels link to their method's page (``label_scenarios``: to the scenario's);
    with ``scenario_links``, column titles that name a scenario link to its page."""
    numeric = [
        any(r.cells[i].sort is not None for r in table.rows) for i in range(len(table.columns))
    ]
    head = "".join(
        f'<th data-type="{"number" if numeric[i] else "text"}" scope="col"><button '
        f'type="button">{_title(title, names, scenario_links)}</button></th>'
        for i, title in enumerate(table.columns)
    )
    body = "\n".join(
        _row_html(row, table.label_column, names, label_scenarios) for row in table.rows
    )
    return "\n".join(
        [
            filter_bar(table_id, filter_by, [r.method for r in table.rows]),
            f'<div class="scroll"><table class="board sortable" id="{esc(table_id)}">',
            f"<thead><tr>{head}</tr></thead>",
            f"<tbody>\n{body}\n</tbody>",
            "</table></div>",
        ]
    )


def _title(title: str, names: Names, scenario_links: bool) -> str:
    if scenario_links and title in names.scenarios:
        return f'<a href="{esc(names.scenario(title))}">{esc(title)}</a>'
    return esc(title)


def _row_html(row: Row, label_column: int, names: Names, label_scenarios: bool) -> str:
    target = names.scenario(row.label) if label_scenarios else names.method(row.method)
    cells = []
    for i, cell in enumerate(row.cells):
        if i != label_column:
            cells.append(f"<td{_cell_attributes(cell)}>{cell_html(cell)}</td>")
            continue
        label = esc(cell.text)
        if target and not row.reference:
            label = f'<a href="{esc(target)}">{label}</a>'
        cells.append(f'<th scope="row" class="method">{label}</th>')
    css = ' class="ref"' if row.reference else ""
    return f'<tr data-key="{esc(row.method)}"{css}>{"".join(cells)}</tr>'


def _cell_attributes(cell: Cell) -> str:
    attributes = f' data-sort="{float(cell.sort)!r}"' if cell.sort is not None else ' data-sort=""'
    return attributes + (' class="best"' if cell.best else "")


def cell_html(cell: Cell) -> str:
    """A cell's text, with its interval drawn on its scale when it has one."""
    text = esc(cell.text)
    if cell.interval is None or cell.scale is None or cell.sort is None:
        return text
    lo, hi = cell.scale
    if hi <= lo:
        return text
    x = lambda v: 100 * (min(max(v, lo), hi) - lo) / (hi - lo)  # noqa: E731
    low, high = x(cell.interval[0]), x(cell.interval[1])
    return (
        f'{text}<svg class="spread" viewBox="0 0 100 8" preserveAspectRatio="none" '
        f'aria-hidden="true"><rect class="track" x="0" y="3" width="100" height="2"/>'
        f'<rect class="range" x="{low:.1f}" y="1" width="{max(high - low, 0.5):.1f}" '
        f'height="6"/><rect class="mean" x="{x(cell.sort) - 0.75:.1f}" y="0" width="1.5" '
        f'height="8"/></svg>'
    )


def filter_bar(table_id: str, filter_by: str | None, keys: Iterable[str]) -> str:
    """A text box filtering a table's rows, and with ``filter_by`` a menu of row keys."""
    menu = ""
    if filter_by:
        options = "".join(
            f'<option value="{esc(k)}">{esc(k)}</option>' for k in dict.fromkeys(keys)
        )
        menu = (
            f'<label>{esc(filter_by)} <select><option value="">all</option>{options}'
            "</select></label>"
        )
    return (
        f'<div class="filters" data-table="{esc(table_id)}"><label>Filter rows '
        '<input type="search" placeholder="any text in a row"></label>'
        f"{menu}<output></output></div>"
    )


CLAIM_COLUMNS = (
    ("scenario", "text"),
    ("claim", "text"),
    ("source", "text"),
    ("statement", "text"),
    ("measured", "text"),
    ("effect (95% CI)", "text"),
    ("p adj.: held / not held", "text"),
    ("verdict", "number"),
)


def claims_html(claims: list[tuple[str, ClaimView]], table_id: str, names: Names) -> str:
    """The claims with their verdicts, filterable by verdict."""
    rows = []
    for scenario, c in claims:
        order = VERDICT_ORDER.index(c.verdict) if c.verdict in VERDICT_ORDER else ""
        css = esc(c.verdict.replace(" ", "-"))
        texts = "".join(
            f'<td class="text">{esc(t)}</td>'
            for t in (c.id, c.source, c.statement, c.measured, c.effect, c.p_adjusted)
        )
        rows.append(
            f'<tr data-key="{esc(c.verdict)}">'
            f'<th scope="row"><a href="{esc(names.scenario(scenario))}">{esc(scenario)}</a></th>'
            f'{texts}<td data-sort="{order}"><span class="verdict verdict-{css}">'
            f"{esc(c.verdict)}</span></td></tr>"
        )
    head = "".join(
        f'<th data-type="{kind}" scope="col"><button type="button">{title}</button></th>'
        for title, kind in CLAIM_COLUMNS
    )
    verdicts = [v for v in VERDICT_ORDER if any(c.verdict == v for _, c in claims)]
    return "\n".join(
        [
            filter_bar(table_id, "Verdict", verdicts),
            f'<div class="scroll"><table class="board sortable claims" id="{esc(table_id)}">',
            f"<thead><tr>{head}</tr></thead>",
            "<tbody>\n" + "\n".join(rows) + "\n</tbody>",
            "</table></div>",
        ]
    )


def notes_html(notes: list[Note]) -> str:
    return bullets([n.text for n in notes], "notes")


def bullets(items: list[Inline], css: str = "") -> str:
    if not items:
        return ""
    css = f' class="{css}"' if css else ""
    return f"<ul{css}>" + "".join(f"<li>{to_html(item)}</li>" for item in items) + "</ul>"


def details(summary: str, inner: str) -> str:
    return f"<details><summary>{esc(summary)}</summary>{inner}</details>"


def facts_html(facts: list[tuple[str, str]]) -> str:
    """A definition list; the values are HTML already."""
    return (
        '<dl class="facts">' + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"
    )


def figures(plots: list[Plot], names: Names) -> str:
    if not plots:
        return ""
    items = "".join(
        f'<figure><a href="{esc(names.plots[p])}"><img src="{esc(names.plots[p])}" '
        f'alt="{esc(p.title)}" loading="lazy"></a><figcaption>{esc(p.title)}</figcaption></figure>'
        for p in plots
    )
    return f'<div class="figures">{items}</div>'


def provenance_html(board: Board) -> str:
    prov = board.provenance
    facts = [("result files", str(prov.files))] + [(k, esc(v)) for k, v in prov.items]
    return facts_html(facts)
