"""Reading stored results for reports: find the files, read them (a broken file is
named on one line), group them by scenario, and tell which row is the reference."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fubench.errors import FubenchError
from fubench.registry import Registry
from fubench.results import find_results, read_result

Result = dict[str, Any]


class ResultsError(FubenchError):
    """No result files where the user pointed, or one that cannot be read."""


def load_results(
    paths: list[str], registry: Registry | None = None, one_code: bool = False
) -> list[Result]:
    """Every result file under ``paths`` (files or folders), read strictly; a clear
    one-line error when there is none, when one cannot be read (not a regular file,
    not JSON, incomplete, an edited row: :func:`fubench.results.read_result`), when two
    files hold the same scenario and seed, or (``registry`` given) when a file's gold
    standard is not the installed reference method. With ``one_code``, also when the
    rows were not all computed by the same code at one clean commit
    (:func:`one_code_problem`)."""
    files = find_results(paths)
    if not files:
        raise ResultsError(f"no result files (seed_*.json) under {', '.join(map(str, paths))}")
    results, seen = [], {}
    for file in files:
        try:
            result = read_result(file)
        except (OSError, ValueError) as exc:
            raise ResultsError(
                f"{file}: cannot be read as a fubench result: {' '.join(str(exc).split())}"
            ) from None
        key = (result["scenario"]["name"], result["seed"], result.get("purpose", "evaluation"))
        if key in seen:
            raise ResultsError(
                f"{seen[key]} and {file} both hold scenario '{key[0]}' seed {key[1]}: "
                f"each would count as a seed of its own; point at one of them"
            )
        seen[key] = file
        if registry is not None:
            _check_reference(file, result, registry)
        results.append(result)
    if one_code:
        problem = one_code_problem(list(zip(files, results)))
        if problem:
            raise ResultsError(problem)
    return results


def one_code_problem(files: list[tuple[Path, Result]]) -> str | None:
    """Why these results do not come from one code version at one clean commit (None:
    they do): the first row whose harness or module fingerprint differs from what most
    rows record, or whose commit differs or was not clean. A row marked
    ``"carried_over": true`` by hand (kept from an earlier run on purpose) is exempt."""
    rows = [
        (file, label, row)
        for file, result in files
        for label, row in result["methods"].items()
        if not row.get("carried_over")
    ]
    common = majority_code(row for _, _, row in rows)
    commits = Counter(row.get("computed_at", {}).get("git_hash") for _, _, row in rows)
    for file, label, row in rows:
        commit = row.get("computed_at", {}).get("git_hash")
        if why := code_difference(_code(row), common, "the other rows"):
            pass
        elif commit is None or str(commit).endswith("-dirty"):
            why = f"was computed from uncommitted code ({commit or 'no commit recorded'})"
        elif commit != _most(commits):
            why = f"was computed at commit {commit}, the other rows at {_most(commits)}"
        else:
            continue
        return (
            f"{file}: row '{' '.join(str(label).split())[:40]}' {why}: one leaderboard "
            f'comes from one commit; re-run it, or mark it "carried_over": true'
        )
    return None


def code_difference(mine: Any, common: dict[str, Any], than: str) -> str | None:
    """Why the code record ``mine`` (``{"harness", "modules"}``, of a row or an ε file)
    is not ``common`` (what ``than`` records, e.g. :func:`majority_code`), or None: its
    harness, then every module both record (a module only one records is not compared)."""
    if not isinstance(mine, dict) or not mine:
        return "records no code fingerprint"
    if mine.get("harness") != common.get("harness"):
        return f"was computed by another version of the harness than {than}"
    theirs = common.get("modules", {})
    for module, fingerprint in sorted(mine.get("modules", {}).items()):
        if theirs.get(module, fingerprint) != fingerprint:
            return f"was computed by another version of {module} than {than}"
    return None


def majority_code(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The code most of ``rows`` record, rows marked ``"carried_over"`` left out:
    ``{"harness": fingerprint, "modules": {module: fingerprint}}``."""
    harness: Counter = Counter()
    modules: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        if row.get("carried_over"):
            continue
        code = _code(row)
        harness[code.get("harness")] += 1
        for module, fingerprint in code.get("modules", {}).items():
            modules[module][fingerprint] += 1
    return {
        "harness": _most(harness) if harness else None,
        "modules": {module: _most(counter) for module, counter in modules.items()},
    }


def results_code(results: list[Result]) -> dict[str, Any]:
    """The code most rows of ``results`` record (:func:`majority_code`)."""
    return majority_code(row for result in results for row in result["methods"].values())


def _code(row: dict[str, Any]) -> dict[str, Any]:
    code = row.get("code")
    return code if isinstance(code, dict) else {}


def _most(counter: Counter) -> Any:
    return counter.most_common(1)[0][0]


def _check_reference(file: Path, result: Result, registry: Registry) -> None:
    named = result.get("reference")
    if named is None:
        return
    expected = registry.reference_name
    if named != expected:
        raise ResultsError(
            f"{file}: names '{' '.join(str(named).split())[:40]}' as its gold standard, but "
            f"the reference method is '{expected}': its normalised metrics would be read "
            f"against another model"
        )


def by_scenario(results: list[Result]) -> dict[str, list[Result]]:
    """Results grouped by scenario name (sorted), each group sorted by seed."""
    groups: dict[str, list[Result]] = defaultdict(list)
    for result in results:
        groups[result["scenario"]["name"]].append(result)
    return {name: sorted(groups[name], key=lambda r: r["seed"]) for name in sorted(groups)}


def of_scenario(results: list[Result], scenario: str) -> list[Result]:
    return [r for r in results if r["scenario"]["name"] == scenario]


def reference_row(results: list[Result], registry: Registry) -> str:
    """The label of the gold standard's row: as the results record it, else the
    installed reference method's name (results written before it was recorded)."""
    for result in results:
        if result.get("reference"):
            return result["reference"]
    return registry.reference_name


def default_base(paths: list[str]) -> Path:
    """The folder links are relative to: the one holding the first RESULTS argument
    (``leaderboard/results`` -> ``leaderboard``). It does not depend on ``-o``, so
    writing the same leaderboard elsewhere gives the same bytes."""
    return Path(paths[0]).parent
