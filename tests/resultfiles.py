"""Hand-made result files for report tests, completed and sealed as the runner writes
them (a reader refuses a file without its dataset, provenance or row digests)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from fubench.results import sealed, write_json_atomic


def as_file(result: dict[str, Any]) -> dict[str, Any]:
    """A copy of a hand-made result with what every result file holds."""
    done = copy.deepcopy(result)
    done.setdefault("config_hash", "hand-made")
    done.setdefault("dataset", {"name": "hand-made", "source": "a test"})
    done.setdefault("provenance", {"fubench_version": "0", "date": "2026-01-01T00:00:00"})
    for row in done["methods"].values():  # made by one (hand-made) code, at one commit
        row.setdefault("code", {"harness": "hand-made", "modules": {}})
        row.setdefault("computed_at", {"git_hash": "hand-made", "date": "2026-01-01"})
    return sealed(done)


def write(path: Path, result: dict[str, Any]) -> Path:
    write_json_atomic(path, as_file(result))
    return path
