"""The shape of the code base, checked: the harness names no built-in component, plugins
use only the public API, the code is formatted and linted (ruff), and it points to nothing
outside the repository."""

from __future__ import annotations

import ast
import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

from fubench.evaluation import RowInfo
from fubench.plugins import load_registry

ROOT = Path(__file__).resolve().parent.parent
HARNESS = sorted((ROOT / "fubench").rglob("*.py"))
PLUGINS = sorted(p for p in (ROOT / "plugins").rglob("*.py") if "tests" not in p.parts)
#: what a plugin may import besides ``fubench`` itself: the conformance kit
PUBLIC_SUBMODULES = ("fubench.testing",)


def builtin_names() -> set[str]:
    """Every method, metric and scenario kind the built-in plugins register."""
    registry = load_registry(
        entry_points=[
            ep
            for ep in __import__("importlib.metadata").metadata.entry_points(group="fubench")
            if ep.dist is not None and ep.dist.name == "fubench"
        ]
    )
    return (
        set(registry.methods.names()) | set(registry.metrics.names()) | set(registry.kinds.names())
    )


def string_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant in the module except docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = getattr(node, "body", [])
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_the_harness_names_no_builtin_method_metric_or_kind():
    # the harness's own measurements (RowInfo: seconds, comm_rounds...) share their names
    # with the metrics that report them; those fields are the harness's, not a plugin's
    names = builtin_names() - {f.name for f in dataclasses.fields(RowInfo)}
    assert {"retrain", "nta", "backdoor", "tis_reset"} <= names, "the grep needs the names"
    found = []
    for path in HARNESS:
        for line, text in string_literals(path):
            # a name as a value (a key, a comparison) or quoted inside a message; prose
            # may still use the words ("retrain the models", "the client")
            quoted = set(re.findall(r"['\"`]([a-z][a-z0-9_]*)['\"`]", text))
            hits = ({text} | quoted) & names
            if hits:
                found.append(f"{path.relative_to(ROOT)}:{line}: {sorted(hits)} in {text!r}")
    assert not found, "\n".join(found)


def test_plugins_import_only_the_public_api():
    found = []
    for path in PLUGINS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("fubench.")
                and node.module not in PUBLIC_SUBMODULES
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module}")
            if isinstance(node, ast.Import):
                found += [
                    f"{path.relative_to(ROOT)}:{node.lineno}: import {a.name}"
                    for a in node.names
                    if a.name.startswith("fubench.") and a.name not in PUBLIC_SUBMODULES
                ]
    assert not found, "\n".join(found)


def test_code_and_docs_point_to_nothing_outside_the_repository():
    texts = [
        *HARNESS,
        *PLUGINS,
        *sorted(ROOT.glob("*.md")),  # README, CONTRIBUTING, CHANGELOG
        ROOT / "CITATION.cff",
        ROOT / "mkdocs.yml",
        *sorted(p for p in (ROOT / "docs").rglob("*") if p.suffix in (".md", ".py")),
        *sorted((ROOT / "plugins").rglob("*.md")),
        *sorted((ROOT / ".github" / "workflows").glob("*.yml")),
        ROOT / ".ci" / "run",
        *sorted((ROOT / "scenarios").glob("*.yaml")),
    ]
    assert ROOT / "docs" / "reference" / "api.md" in texts, "the docs tree is searched"
    pattern = re.compile(r"METHODS\.md|DESIGN\.md|papers/|\.\./shared|/work/|/tmp/|/home/")
    found = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in texts
        if p.exists()
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, "\n".join(found)


def test_ruff_finds_nothing_to_fix():
    """`ruff check` and `ruff format --check` (configured in pyproject.toml) are clean."""
    ruff = shutil.which("ruff")
    assert ruff is not None, "ruff is a dev dependency: pip install -e '.[dev]'"
    for args in (["check", "--output-format", "concise"], ["format", "--check"]):
        done = subprocess.run([ruff, *args, "."], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, f"ruff {' '.join(args)}:\n{done.stdout}{done.stderr}"


def harness_imports() -> dict[str, set[str]]:
    """module -> the fubench modules it imports anywhere in its text: at the top, under
    ``if TYPE_CHECKING:`` and inside functions (a cycle through any of them is a knot)."""
    modules = {}
    for path in HARNESS:
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [
                    f"{node.module}.{alias.name}"
                    if f"{node.module}.{alias.name}" in modules
                    else node.module
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                found = resolve(target) if target.startswith("fubench") else None
                if found and found != name:
                    graph[name].add(found)
    return graph


def test_the_harness_has_no_import_cycle():
    graph = harness_imports()
    assert "fubench.engine.job" in graph and graph["fubench.runner"], "the scan finds modules"
    cycles, state = [], {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)
