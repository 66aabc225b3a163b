"""The documentation holds together: the README stays short and its Quickstart is what CI
runs, the docs site builds with ``mkdocs build --strict`` (no broken link, anchor or
docstring reference), the API reference names the whole stable API, the code's citations
of docs/methods.md resolve, and the licence and citation files agree with the package."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

import fubench
import fubench.testing

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
QUICKSTART = (
    "pip install -e . && fubench run scenarios/backdoor_mnist.yaml",
    'pip install -e ".[dev]" && pytest',
)
#: a Markdown link or image target: [text](target)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_readme_is_at_most_12_kb():
    size = len(README.read_bytes())
    assert size <= 12 * 1024, f"README.md is {size:,} bytes; move detail into docs/"


def test_the_quickstart_commands_are_the_ones_ci_runs():
    readme = README.read_text(encoding="utf-8")
    quickstart = readme.split("\n## Quickstart\n")[1].split("\n## ")[0]
    for command in QUICKSTART:
        assert f"```bash\n{command}\n```" in quickstart, command
    tests = QUICKSTART[1]
    assert tests in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "tests.yml").read_text())
    runs = [step.get("run", "") for step in workflow["jobs"]["pytest"]["steps"]]
    assert tests in runs, "tests.yml installs and tests as the README says"


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and the docs site, configured alike) gives a heading."""
    text = re.sub(r"[`*]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    lines, fenced, found = page.read_text(encoding="utf-8").splitlines(), False, set()
    for line in lines:
        fenced ^= line.startswith("```")
        if not fenced and re.match(r"#{1,6} ", line):
            found.add(github_anchor(line.lstrip("#")))
    return found


def test_links_from_the_repository_root_resolve():
    """README, CONTRIBUTING and CHANGELOG are not part of the site, so mkdocs does not
    check them: every relative link must name a file here (and a heading of it)."""
    broken = []
    for page in sorted(ROOT.glob("*.md")):
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                broken.append(f"{page.name}: {target} (docs point inside the repository)")
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and anchor not in anchors(file):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_docs_site_builds_strictly(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"),  # Material's notice, not a warning
    )
    assert done.returncode == 0, (
        "mkdocs build --strict failed (the docs tools are in the dev extra: "
        f"pip install -e '.[dev]'):\n{done.stdout}{done.stderr}"
    )
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="fubench.Unlearner"' in api, "the API reference was generated"
    assert 'id="fubench.testing.check_unlearner"' in api
    # docs/_griffe/sphinx_roles.py turns the docstrings' Sphinx roles into code
    assert ":class:" not in api and ":mod:" not in api


def documented(prefix: str) -> set[str]:
    text = (ROOT / "docs" / "reference" / "api.md").read_text(encoding="utf-8")
    return set(re.findall(rf"^::: {re.escape(prefix)}\.(\w+)$", text, re.M))


def test_the_api_reference_documents_the_whole_stable_api():
    """What `import fubench` exports and fubench.testing, each under its public name."""
    assert documented("fubench") - {"testing"} == set(fubench.__all__)
    assert documented("fubench.testing") == set(fubench.testing.__all__)


def methods_md_sections() -> set[str]:
    """The section headings of docs/methods.md and its bold paragraph labels (**bias.**)."""
    text = (ROOT / "docs" / "methods.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    labels = re.findall(r"^\*\*([^*]+?)\.?\*\*", text, re.M)
    return {*headings, *labels}


def test_the_codes_citations_of_docs_methods_md_resolve():
    """The code cites docs/methods.md as `docs/methods.md, "<section>"`."""
    sections = methods_md_sections()
    files = [
        *sorted((ROOT / "fubench").rglob("*.py")),
        *sorted((ROOT / "plugins").rglob("*.py")),
        *sorted(p for p in (ROOT / "tests").rglob("*.py") if p.name != "test_docs.py"),
        *sorted((ROOT / "scenarios").glob("*.yaml")),
    ]
    cited, broken = 0, []
    for file in files:
        text = file.read_text(encoding="utf-8")
        for section in re.findall(r"docs/methods\.md,?\s+\(?\"([^\"]+)\"", text):
            cited += 1
            if section not in sections:
                broken.append(f"{file.relative_to(ROOT)}: {section!r}")
    assert cited >= 10, "the pattern finds the citations"
    assert not broken, f"no such section in docs/methods.md: {broken}"


def pyproject() -> str:
    return (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_licence_and_citation_agree_with_the_package():
    project = pyproject()
    assert re.search(r'^license = "MIT"$', project, re.M)
    version = re.search(r'^version = "([^"]+)"$', project, re.M).group(1)
    assert version == fubench.__version__
    licence = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License\n") and "the fubench contributors" in licence
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0"
    assert citation["version"] == version and citation["license"] == "MIT"
    assert citation["authors"] == [{"name": "the fubench contributors"}]
    bibtex = README.read_text(encoding="utf-8").split("```bibtex\n")[1].split("```")[0]
    assert f"version = {{{version}}}" in bibtex and "license = {MIT}" in bibtex


def test_the_docs_workflow_installs_the_docs_tools_of_the_dev_extra():
    dev = re.search(r"^dev = \[(.*?)^\]$", pyproject(), re.M | re.S).group(1)
    tools = [r for r in re.findall(r'"([^"]+)"', dev) if r.startswith("mkdocs")]
    assert len(tools) == 3, dev
    workflow = (ROOT / ".github" / "workflows" / "docs.yml").read_text(encoding="utf-8")
    install = next(line for line in workflow.splitlines() if "pip install" in line)
    assert sorted(re.findall(r'"([^"]+)"', install)) == sorted(tools)
    assert "mkdocs build --strict" in workflow
