"""Reading stored results for reports: find the files, read them (a broken file is
named on one line), group them by scenario, and tell which row is the reference."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from fubench.errors import FubenchError
from fubench.registry import Registry
from fubench.results import find_results, read_result

Result = dict[str, Any]


class ResultsError(FubenchError):
    """No result files where the user pointed, or one that cannot be read."""


def load_results(paths: list[str]) -> list[Result]:
    """Every result file under ``paths`` (files or folders); a clear one-line error when
    there is none or one cannot be read."""
    files = find_results(paths)
    if not files:
        raise ResultsError(f"no result files (seed_*.json) under {', '.join(map(str, paths))}")
    results = []
    for file in files:
        try:
            results.append(read_result(file))
        except (OSError, ValueError) as exc:
            raise ResultsError(
                f"{file}: cannot be read as a fubench result: {' '.join(str(exc).split())}"
            ) from None
    return results


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
