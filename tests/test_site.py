"""The leaderboard's two renderers: the HTML site from the same board as the markdown,
and the escaping of text from result files and plugins in both (a row called
``x | <script>`` must neither split a markdown table nor run in a browser). The browser
tests drive the system's Chromium through Playwright; they are skipped without one."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fubench.plugins import get_registry
from fubench.report import html, markdown
from fubench.report import leaderboard as lb
from tests.conftest import run_cli
from tests.resultfiles import write
from tests.test_leaderboard import metrics, result, row, two_scenarios

EVIL = "x | <script>alert(1)</script>\nnext [a](javascript:alert(1))"
JS_LINK = "javascript:alert(1)"


def evil_results() -> list[dict]:
    """Two seeds whose every free text is hostile: scenario name, description and
    file, a method label, an error, a warning, the data source, plugins and a claim."""
    claim = {
        "id": EVIL,
        "source": EVIL,
        "metric": "asr",
        "row": EVIL,
        "relation": "below",
        "other": "original",
        "note": EVIL,
    }
    seeds = []
    for s in (0, 1):
        r = result(
            s,
            {
                EVIL: row(metrics(0.85 + s / 100, 0.1, 2.0), method=EVIL),
                "fine": row(metrics(0.88, 0.3 + s / 100, 1.0)),
                "boom": row(status="failed", error=EVIL),
            },
            scenario=EVIL,
        )
        r["scenario"].update(description=EVIL, file=JS_LINK, config={"claims": [claim]})
        r["dataset"]["source"] = EVIL
        r["warnings"] = [EVIL]
        r["provenance"]["plugins"] = {EVIL: EVIL}
        r["provenance"]["hardware"] = EVIL
        seeds.append(r)
    return seeds


def board_of(results, base: Path, plots: Path | None = None):
    return lb.build_board(results, get_registry(), ["results"], base, plots or base / "plots")


# ----------------------------------------------------------------------- markdown
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def tables(text: str) -> list[list[str]]:
    """The markdown tables of ``text``: runs of lines that start with "|"."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            found.append(current)
            current = []
    return found


def assert_tables_keep_their_columns(text: str) -> None:
    for table in tables(text):
        widths = [len(UNESCAPED_PIPE.findall(line)) for line in table]
        assert len(set(widths)) == 1, f"a cell split the table: {table}"


def test_markdown_escapes_text_from_results():
    text = markdown.render(board_of(evil_results(), Path(".")))
    assert "<script" not in text.lower() and "</script" not in text.lower()
    assert_tables_keep_their_columns(text)
    section = text.split("\n## x ")[1]  # the scenario's own section
    (table, *_) = tables(section)
    assert len(UNESCAPED_PIPE.findall(table[0])) == 4 + len(metrics(0.9, 0.1, 1.0)) + 1
    # the newline became a space: the label stays on its table row, the description
    # on its line
    assert any(line.startswith("| x \\| &lt;script>alert(1)&lt;/script> next") for line in table)
    assert "\nx \\| &lt;script>alert(1)&lt;/script> next [a]\\(javascript:alert(1))  \n" in text
    # every link goes to a relative path or an http(s) URL; the scenario file, whose
    # recorded path is a javascript: URL, is named without a link
    targets = re.findall(r"\]\(([^)]*)\)", text)
    assert targets and all(urlsplit(t).scheme in ("", "http", "https") for t in targets)
    assert f"Scenario `{JS_LINK}`, version" in text and f"]({JS_LINK}" not in text
    claims = [t for t in tables(text) if t[0].startswith("| claim |")]
    assert claims and all(len(t) == 3 for t in claims)  # header, rule, the one claim
    assert "- plugins: x \\| &lt;script>" in text and "- hardware: x \\| &lt;script>" in text


def test_fubench_table_escapes_too():
    from fubench.report import render_report

    text = render_report(evil_results(), get_registry())
    assert "<script" not in text.lower()
    assert len(tables(text)) == 3  # results, forgetting seed by seed, and claims
    assert_tables_keep_their_columns(text)
    assert "- **boom**: failed — x \\| &lt;script>" in text


# --------------------------------------------------------------------------- site
class Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags_of(page: bytes) -> list[tuple[str, dict]]:
    parser = Tags()
    parser.feed(page.decode("utf-8"))
    return parser.tags


def test_the_site_escapes_text_from_results(tmp_path):
    board = board_of(evil_results(), tmp_path)
    files = html.site(board)
    pages = {path: data for path, data in files.items() if path.endswith(".html")}
    assert "index.html" in pages and len(pages) == 2 + len(board.methods) == 5
    for path, page in pages.items():
        tags = tags_of(page)
        scripts = [a for t, a in tags if t == "script"]
        assert scripts == [{"src": "leaderboard.js", "defer": None}], path
        handlers = [(t, k) for t, a in tags for k in a if k.lower().startswith("on")]
        assert not handlers, path
        for _, attributes in tags:
            for key in ("href", "src"):
                if attributes.get(key):
                    assert urlsplit(attributes[key]).scheme in ("", "http", "https"), path
        assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in page, path  # the scenario's name
    # file names from hostile names are safe and distinct
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-/]+", path) for path in files)


def test_site_and_markdown_come_from_one_board(tmp_path):
    """The same cells in both: every scenario table cell of the markdown is in the page."""
    board = board_of(two_scenarios(), tmp_path)
    files = html.site(board)
    alpha = files["scenario-alpha.html"].decode()
    for row_ in board.scenarios[0].table.rows:
        for cell in row_.cells:
            assert f">{cell.text}<" in alpha.replace("<strong>", "").replace("</strong>", "")
    index = files["index.html"].decode()
    assert all(f">{m}</a>" in index for m in board.methods)
    assert set(files) >= {"leaderboard.css", "leaderboard.js", "method-fast.html"}


def test_site_copies_the_plots_and_is_deterministic(tmp_path):
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "alpha_tradeoff.png").write_bytes(b"\x89PNG tradeoff")
    (plots / "cost.png").write_bytes(b"\x89PNG cost")
    files = html.site(board_of(two_scenarios(), tmp_path, plots))
    assert files["plots/alpha_tradeoff.png"] == b"\x89PNG tradeoff"
    assert b'<img src="plots/cost.png"' in files["index.html"]
    assert b'<img src="plots/alpha_tradeoff.png"' in files["scenario-alpha.html"]
    again = html.site(board_of(list(reversed(two_scenarios())), tmp_path, plots))
    assert again == files


def write_results(folder: Path, results) -> None:
    for r in results:
        name = re.sub(r"\W+", "_", r["scenario"]["name"])  # a hostile name: another folder
        write(folder / name / f"seed_{r['seed']}.json", r)


def test_cli_writes_and_checks_the_site(tmp_path, capsys):
    write_results(tmp_path / "results", two_scenarios())
    site = tmp_path / "site"
    args = ["leaderboard", str(tmp_path / "results"), "--html", str(site)]
    assert run_cli(*args) == 0
    assert (site / "index.html").is_file() and (site / "scenario-beta.html").is_file()
    assert run_cli(*args, "--check") == 0
    (site / "method-fast.html").write_text("edited")
    capsys.readouterr()
    assert run_cli(*args, "--check") == 1
    assert "method-fast.html missing or different" in capsys.readouterr().err
    assert run_cli("leaderboard", str(tmp_path / "results")) == 2
    assert "-o FILE" in capsys.readouterr().err


# ------------------------------------------------------------------------ browser
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("no Chromium on PATH (Debian/Ubuntu: apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=path, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A page that records dialogs (an alert from the data) and script errors."""
    context = browser.new_context()
    tab = context.new_page()
    tab.dialogs, tab.errors = [], []
    tab.on("dialog", lambda d: (tab.dialogs.append(d.message), d.dismiss()))
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    yield tab
    assert not tab.errors, tab.errors
    context.close()


def built_site(tmp_path, results) -> Path:
    write_results(tmp_path / "results", results)
    site = tmp_path / "site"
    assert run_cli("leaderboard", str(tmp_path / "results"), "--html", str(site)) == 0
    return site


def visible_labels(page, table: str) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table} tbody tr:not([hidden]) th", "cells => cells.map(c => c.textContent.trim())"
    )


def test_browser_sorts_filters_and_follows_links(tmp_path, page):
    site = built_site(tmp_path, two_scenarios())
    page.goto((site / "index.html").as_uri())
    assert page.title() == "fubench leaderboard"
    page.click("text=alpha >> nth=0")  # the scenario's link in the ranking's header
    assert page.url.endswith("scenario-alpha.html")
    assert page.inner_text("h1") == "alpha"
    assert page.inner_text("#t-scenario tbody tr[data-key=slow] td:nth-of-type(4)") == "88.0 ± 0.0"

    before = visible_labels(page, "t-scenario")
    assert before == ["original", "fast", "slow", "tie_a", "tie_b", "retrain"]
    page.click("#t-scenario thead th:has-text('asr') button")  # asr %: 99, 6, 30, 20, 20, 1
    assert visible_labels(page, "t-scenario") == [
        "retrain",
        "fast",
        "tie_a",
        "tie_b",
        "slow",
        "original",
    ]
    page.click("#t-scenario thead th:has-text('asr') button")
    assert visible_labels(page, "t-scenario")[:2] == ["original", "slow"]

    page.select_option(".filters[data-table=t-scenario] select", "slow")
    assert visible_labels(page, "t-scenario") == ["slow"]
    page.select_option(".filters[data-table=t-scenario] select", "")
    page.fill(".filters[data-table=t-scenario] input", "tie")
    assert visible_labels(page, "t-scenario") == ["tie_a", "tie_b"]
    assert page.inner_text(".filters[data-table=t-scenario] output") == "2 of 6 rows"

    page.click("#t-scenario a:has-text('tie_a')")
    assert page.url.endswith("method-tie_a.html") and page.inner_text("h1") == "tie_a"


def test_browser_ranking_sorts_by_method_name(tmp_path, page):
    site = built_site(tmp_path, two_scenarios())
    page.goto((site / "index.html").as_uri())
    first = visible_labels(page, "t-ranking")
    page.click("#t-ranking thead th:has-text('method') button")
    assert visible_labels(page, "t-ranking") == sorted(first)
    page.select_option(".filters[data-table=t-ranking] select", "fast")
    assert visible_labels(page, "t-ranking") == ["fast"]


def test_browser_runs_nothing_from_the_data(tmp_path, page):
    site = built_site(tmp_path, evil_results())
    pages = sorted(p.name for p in site.glob("*.html"))
    assert len(pages) == 5  # index, the scenario, three methods
    for name in pages:
        page.goto((site / name).as_uri())
        page.wait_for_load_state("load")
        # the script element from the data is text on the page, not an element
        assert page.eval_on_selector_all("script", "s => s.map(e => e.src.split('/').pop())") == [
            "leaderboard.js"
        ]
    assert page.dialogs == []
    page.goto((site / "index.html").as_uri())
    page.click("a[href^=scenario-]")
    assert "<script>alert(1)</script>" in page.inner_text("h1")
    assert page.dialogs == []
