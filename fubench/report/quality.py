"""The forgetting-quality ε in reports: find the files ``fubench quality`` wrote beside
the seed results and render them as a section per scenario (the leaderboard's and the
command's own output)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from fubench.results import ORIGINAL

Record = dict[str, Any]
PATTERN = "forget_quality_seed_*.json"


def load_quality(paths: list[str | Path]) -> dict[str, list[Record]]:
    """{scenario: records sorted by seed} from the ε files under ``paths``; a file that
    cannot be read is skipped (the leaderboard must still render from the results)."""
    found: dict[str, list[Record]] = defaultdict(list)
    for p in map(Path, paths):
        files = sorted(p.rglob(PATTERN)) if p.is_dir() else []
        for file in files:
            try:
                record = json.loads(file.read_text(encoding="utf-8"))
                found[record["scenario"]["name"]].append(record)
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in sorted(found.items())}


def _cell(values: list[float], digits: int) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def render_records(
    records: list[Record], result_hashes: set[str] | None = None, level: str = "###"
) -> str:
    """One markdown section for one scenario's ε records (one per seed)."""
    if not records:
        return ""
    first = records[0]
    k, seeds = first["replicas"], [r["seed"] for r in records]
    null, n = first["null"], first["forget_examples"]
    labels = [label for label in first["rows"] if first["rows"][label]["status"] != "reference"]
    labels = sorted(labels, key=lambda r: (r != ORIGINAL, r))
    body = []
    for label in labels:
        entries = [r["rows"].get(label, {}) for r in records]
        ok = [e for e in entries if "epsilon_mean" in e]
        status = {e.get("status", "not run") for e in entries}
        if not ok:
            body.append([label, *(["/".join(sorted(status))] * 3), "0"])
            continue
        replicas = "/".join(str(e["replicas_ok"]) for e in entries)
        body.append(
            [
                label,
                _cell([e["epsilon_mean"] for e in ok], 2),
                _cell([e["epsilon_median"] for e in ok], 2),
                _cell([e["score"] for e in ok], 3),
                replicas,
            ]
        )
    table = tabulate(
        body,
        headers=["method", "ε mean ↓", "ε median ↓", "score F ↑", "replicas ok"],
        tablefmt="github",
        disable_numparse=True,
    )
    wall = sum(r["seconds"]["wall"] for r in records)
    lines = [
        f"{level} Forgetting quality ε ({first['scenario']['name']})",
        "",
        f"K = {k} training replicas per seed (seed{'s' if len(seeds) > 1 else ''} "
        f"{', '.join(map(str, seeds))}; same data and forget set, new training "
        f"randomness), each method's K models against {first['reference']}'s K models "
        f"on each of the {n} forget examples. Statistic: logit-scaled confidence "
        f"log(p/(1−p)) of the example's label; attack: the best threshold on either "
        f"side; δ = {first['delta']:g}; rates clipped at 1/(2K), so ε ≤ "
        f"{first['epsilon_cap']:.2f}. Score F: the NeurIPS 2023 unlearning challenge's "
        f"mean of 2/2^n over examples (n: ε's bin of width 0.5; 1 = no example told "
        f"apart). **A perfect unlearner scores ε ≈ {null['epsilon_mean']:.2f}, F ≈ "
        f"{null['score']:.3f} at K = {k}** (the attack's sampling noise with K models, "
        f"not leakage); `original` (no unlearning) shows how far apart the models "
        f"start. Runtime: {_duration(wall)} (K × every method, and the replicas' "
        f"original and {first['reference']} models unless cached).",
        "",
        table,
        "",
    ]
    errors = sorted(
        {
            f"{label}: {e['error']}"
            for r in records
            for label, e in r["rows"].items()
            if e.get("error")
        }
    )
    lines += [f"- {text}" for text in errors]
    hashes = {r.get("config_hash") for r in records}
    if result_hashes is not None and hashes - result_hashes:
        lines.append(
            "- caution: ε was computed under another configuration than the seed "
            "results above; re-run `fubench quality`"
        )
    return "\n".join(lines).rstrip() + "\n"
