"""Which code a number came from.

A trained model and a stored row are reused only while the code that made them is the
same. Their *code record* names that code by content: a hash of the harness modules
that decide numbers, and one per plugin module involved (the module that defines the
component and the modules of its own package that it imports). It goes into the
model-cache key and into every row (``row["code"]``).

Editing a line that trains, partitions, poisons or scores changes the record of what
it touched, so those models and rows are computed again; editing the command line,
the reports, the docs or a plugin no row uses changes nothing. The harness modules
are sorted below into those that decide trained models, those that decide how a model
is scored, and those that decide no number (a test keeps every module sorted)."""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata as md
import importlib.util
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent

#: harness code that decides the trained models (and so every row): data, partitions,
#: FedAvg, the reference training, the component contracts and parameter checks
TRAINING = (
    "api.py",
    "data/",
    "engine/determinism.py",
    "engine/job.py",
    "engine/plan.py",
    "features.py",
    "fl/",
    "params.py",
    "scenario.py",
)
#: harness code that decides how a model is scored: every row's metrics
SCORING = ("engine/outcome.py", "evaluation.py", "metric_values.py")
#: harness code that decides the forgetting-quality ε (``fubench quality``)
EPSILON = ("engine/replicas.py", "forget_quality.py")
#: harness code that decides no number: running, storing, reporting, the command line
NO_NUMBERS = (
    "__init__.py",
    "__main__.py",
    "cache_dir.py",
    "cli/",
    "code_fingerprint.py",
    "config/",
    "engine/__init__.py",
    "engine/cache.py",
    "engine/tasks.py",
    "engine/timing.py",  # how a clock is read: timed metrics are never reproduced anyway
    "engine/worklist.py",
    "errors.py",
    "executors/",
    "exits.py",
    "hookspecs.py",
    "plugins.py",
    "preflight.py",
    "progress.py",
    "registry.py",
    "report/",
    "result_file.py",
    "results.py",
    "runner.py",
    "submission.py",
    "testing/",
    "verify.py",
)
PARTS = {"training": TRAINING, "scoring": SCORING, "epsilon": EPSILON}


def _digest(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()[:16]


def harness_files(part: str) -> list[Path]:
    """The source files of one part of the harness (see :data:`PARTS`)."""
    files: list[Path] = []
    for entry in PARTS[part]:
        path = _HERE / entry
        files += sorted(path.rglob("*.py")) if entry.endswith("/") else [path]
    return files


@cache
def harness(*parts: str) -> str:
    """The fingerprint of the named parts of the harness."""
    digest = hashlib.sha256()
    for part in parts:
        for path in harness_files(part):
            digest.update(path.relative_to(_HERE).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@cache
def module(name: str) -> str:
    """The fingerprint of a plugin module: its source and that of every module of its
    own top-level package it imports (transitively); for a module without source, its
    distribution's name and version."""
    sources = _package_sources(name, set())
    if sources is None:
        return _distribution(name)
    digest = hashlib.sha256()
    for module_name in sorted(sources):
        digest.update(module_name.encode())
        digest.update(sources[module_name])
    return digest.hexdigest()[:16]


def _source_file(name: str) -> Path | None:
    loaded = sys.modules.get(name)
    origin = getattr(loaded, "__file__", None)
    if origin is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec is not None else None
    if origin is None or not str(origin).endswith(".py"):
        return None
    return Path(origin)


def _package_sources(name: str, seen: set[str]) -> dict[str, bytes] | None:
    """{module: source} of ``name`` and the modules of its top-level package it imports;
    None when ``name`` has no source file."""
    path = _source_file(name)
    if path is None:
        return None
    seen.add(name)
    source = path.read_bytes()
    found = {name: source}
    top = name.split(".")[0]
    is_package = path.name == "__init__.py"
    for imported in _imports(source, name, is_package):
        if imported.split(".")[0] == top and imported not in seen:
            found.update(_package_sources(imported, seen) or {})
    return found


def _imports(source: bytes, name: str, is_package: bool) -> set[str]:
    """The absolute names of the modules a module's source imports."""
    package = name if is_package else name.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in names if n}


def _distribution(name: str) -> str:
    top = name.split(".")[0]
    for dist in md.packages_distributions().get(top, []):
        try:
            return f"{dist} {md.version(dist)}"
        except md.PackageNotFoundError:  # pragma: no cover - listed but gone
            continue
    return f"{name} (no source)"


def record(harness_parts: tuple[str, ...], classes: list[type]) -> dict[str, Any]:
    """The code record of a number made by the harness parts named and the component
    ``classes`` (their modules)."""
    modules = sorted({cls.__module__ for cls in classes})
    return {"harness": harness(*harness_parts), "modules": {m: module(m) for m in modules}}


def unchanged(code: Any, harness_parts: tuple[str, ...]) -> bool:
    """Whether every piece of code a stored record names is the same now."""
    if not isinstance(code, dict) or not isinstance(code.get("modules"), dict):
        return False
    return code.get("harness") == harness(*harness_parts) and all(
        module(name) == fingerprint for name, fingerprint in code["modules"].items()
    )


def covers(stored: Any, needed: dict[str, Any]) -> bool:
    """Whether a stored record names at least the modules ``needed`` names (a row
    computed with more metrics than a run asks for still serves it)."""
    return isinstance(stored, dict) and needed["modules"].keys() <= stored.get("modules", {}).keys()


def merged(stored: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The record of a row kept from an earlier run and extended by this one."""
    return {"harness": new["harness"], "modules": {**stored["modules"], **new["modules"]}}


def digest(code: dict[str, Any]) -> str:
    """A short hash of a code record."""
    return _digest(json.dumps(code, sort_keys=True))
