"""The forgetting-quality ε in reports: find the files ``fubench quality`` wrote beside
the seed results and make them a section per scenario (the leaderboard's and the
command's own output)."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from fubench.report.board import Cell, Quality, Row, Table
from fubench.report.markup import code, inline, strong
from fubench.report.reader import code_difference as reader_code_difference
from fubench.report.reader import results_code
from fubench.results import ORIGINAL

Record = dict[str, Any]
PATTERN = "forget_quality_seed_*.json"


def load_quality(paths: list[str | Path]) -> dict[str, list[Record]]:
    """{scenario: records sorted by seed} from the ε files under ``paths``, each with the
    ``path`` it was read from; a file that cannot be read is skipped (the leaderboard
    must still render from the results)."""
    found: dict[str, list[Record]] = defaultdict(list)
    for p in map(Path, paths):
        files = sorted(p.rglob(PATTERN)) if p.is_dir() else []
        for file in files:
            try:
                record = json.loads(file.read_text(encoding="utf-8"))
                found[record["scenario"]["name"]].append({**record, "path": str(file)})
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return {k: sorted(v, key=lambda r: r["seed"]) for k, v in sorted(found.items())}


def code_difference(record: Record, code: dict[str, Any]) -> str | None:
    """Why an ε record was not made by the training and scoring code of the seed results
    whose code is ``code`` (:func:`~fubench.report.reader.results_code`); None when it was."""
    return reader_code_difference(record.get("code"), code, "the seed results")


def code_problem(results: list[Record], quality: dict[str, list[Record]]) -> str | None:
    """The first ε file (``quality``, from :func:`load_quality`) not made by the code of
    its scenario's seed ``results``, as one line naming the file (None: every one was)."""
    for scenario, records in quality.items():
        seeds = [r for r in results if r["scenario"]["name"] == scenario]
        if not seeds:
            continue
        made_by = results_code(seeds)
        for record in records:
            why = code_difference(record, made_by)
            if why:
                return (
                    f"{record['path']}: ε {why}: one leaderboard comes from one code "
                    f"version; re-run fubench quality"
                )
    return None


def _cell(values: list[float], digits: int) -> Cell:
    if not values:
        return Cell("—")
    if len(values) == 1:
        return Cell(f"{values[0]:.{digits}f}", sort=values[0])
    mean = float(np.mean(values))
    return Cell(f"{mean:.{digits}f} ± {np.std(values, ddof=1):.{digits}f}", sort=mean)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _null_cells(entries: list[Record]) -> list[Cell]:
    """Per seed, the interval a perfect unlearner's mean ε falls in and the p-value (files
    made before they were computed show —)."""
    nulls = [e.get("null", {}) for e in entries]
    if not any("epsilon_mean_interval" in n for n in nulls):
        return [Cell("—"), Cell("—")]
    intervals = [
        "[{:.2f}, {:.2f}]".format(*n["epsilon_mean_interval"])
        if "epsilon_mean_interval" in n
        else "—"
        for n in nulls
    ]
    ps = [n.get("p") for n in nulls]
    return [
        Cell(" / ".join(intervals)),
        Cell(
            " / ".join("—" if p is None else f"{p:.3f}" for p in ps), sort=max(p or 0 for p in ps)
        ),
    ]


def _interval(null: Record) -> str:
    if "epsilon_mean_interval" not in null:
        return ""  # a file made before the intervals
    low, high = null["epsilon_mean_interval"]
    return f" [{low:.2f}, {high:.2f}]"


def _null_text(null: Record, reference: str, has_ranges: bool) -> str:
    text = " (the attack's sampling noise with K models, not leakage"
    if "epsilon_mean_interval" in null:
        text += "; the interval: 90 % of such runs if the examples were independent"
    text += "). "
    if has_ranges:
        text += (
            "Per row, the range a perfect unlearner's mean ε falls in 90 % of the time with "
            f"these models (the row's and {reference}'s replicas pooled and re-split at "
            "random, which keeps the examples' dependence through shared models) and p, "
            "the share of re-splits scoring at least the row's ε: a row inside its range "
            "cannot be told from a perfect unlearner at this K; "
        )
    return text


def _estimator_text(record: Record) -> str:
    if record.get("estimator") == "cross_fitted_2fold":
        return (
            "attack: a threshold on either side, chosen on one half of the replicas and "
            "scored on the other (cross-fitted, both ways, rates pooled)"
        )
    return (
        "attack: the best threshold on either side, chosen on the very models it is "
        "scored on (in-sample; a file made before cross-fitting)"
    )


def quality_view(
    records: list[Record],
    result_hashes: set[str] | None = None,
    made_by: dict[str, Any] | None = None,
) -> Quality:
    """One scenario's ε records (one per seed) as a section of the report; with the
    seed results' ``config_hash``es and code (``made_by``,
    :func:`~fubench.report.reader.results_code`), a caution where the ε was computed
    under another configuration or by other code."""
    first = records[0]
    k, seeds = first["replicas"], [r["seed"] for r in records]
    null, n = first["null"], first["forget_examples"]
    labels = [label for label in first["rows"] if first["rows"][label]["status"] != "reference"]
    labels = sorted(labels, key=lambda r: (r != ORIGINAL, r))
    rows = []
    for label in labels:
        entries = [r["rows"].get(label, {}) for r in records]
        ok = [e for e in entries if "epsilon_mean" in e]
        status = {e.get("status", "not run") for e in entries}
        if not ok:
            cells = [Cell(label), *([Cell("/".join(sorted(status)))] * 5), Cell("0", sort=0)]
        else:
            cells = [
                Cell(label),
                _cell([e["epsilon_mean"] for e in ok], 2),
                *_null_cells(ok),
                _cell([e["epsilon_median"] for e in ok], 2),
                _cell([e["score"] for e in ok], 3),
                Cell(
                    "/".join(str(e["replicas_ok"]) for e in entries),
                    sort=sum(e["replicas_ok"] for e in ok),
                ),
            ]
        # a sweep point's label is method[name=value] (MethodSpec.label)
        rows.append(Row(label, label.partition("[")[0], cells, label == ORIGINAL))
    table = Table(
        [
            "method",
            "ε mean ↓",
            "perfect unlearner's ε mean (5–95 %)",
            "p",
            "ε median ↓",
            "score F ↑",
            "replicas ok",
        ],
        rows,
    )
    wall = sum(r["seconds"]["wall"] for r in records)
    has_ranges = any(
        "epsilon_mean_interval" in e.get("null", {}) for r in records for e in r["rows"].values()
    )
    text = inline(
        f"K = {k} training replicas per seed (seed{'s' if len(seeds) > 1 else ''} "
        f"{', '.join(map(str, seeds))}; same data and forget set, new training "
        f"randomness), each method's K models against {first['reference']}'s K models "
        f"on each of the {n} forget examples. Statistic: logit-scaled confidence "
        f"log(p/(1−p)) of the example's label; {_estimator_text(first)}; "
        f"δ = {first['delta']:g}; rates clipped at 1/(2K), so ε ≤ "
        f"{first['epsilon_cap']:.2f}. Score F: the NeurIPS 2023 unlearning challenge's "
        f"mean of 2/2^n over examples (n: ε's bin of width 0.5; 1 = no example told "
        f"apart). ",
        strong(
            f"A perfect unlearner scores ε ≈ {null['epsilon_mean']:.2f}{_interval(null)}, "
            f"F ≈ {null['score']:.3f} at K = {k}"
        ),
        _null_text(null, first["reference"], has_ranges),
        code(ORIGINAL),
        " (no unlearning) shows how far apart the models "
        f"start. Runtime: {_duration(wall)} (K × every method, and the replicas' "
        f"original and {first['reference']} models unless cached){_made(records)}.",
    )
    errors = sorted(
        {
            f"{label}: {e['error']}"
            for r in records
            for label, e in r["rows"].items()
            if e.get("error")
        }
    )
    notes = [inline(text) for text in errors]
    hashes = {r.get("config_hash") for r in records}
    if result_hashes is not None and hashes - result_hashes:
        notes.append(
            inline(
                "caution: ε was computed under another configuration than the seed "
                "results above; re-run ",
                code("fubench quality"),
            )
        )
    if made_by is not None:
        differences = sorted({d for r in records if (d := code_difference(r, made_by))})
        notes += [
            inline(f"caution: ε {why}; re-run ", code("fubench quality")) for why in differences
        ]
    return Quality(f"Forgetting quality ε ({first['scenario']['name']})", text, table, notes)


def _one(hardware: str) -> str:
    """Provenance's ``"AMD EPYC, 1 threads"`` in words: ``"AMD EPYC, 1 thread"``."""
    return re.sub(r"\b1 threads$", "1 thread", hardware)


def _made(records: list[Record]) -> str:
    """Where the ε was computed: the commit of each row (a file merged from several runs
    names each, with its rows), else of the file, and the machine its files record."""
    made = [r.get("provenance", {}) for r in records]
    rows: Counter = Counter()
    for record in records:
        here = record.get("provenance", {}).get("git_hash")
        for row in record.get("rows", {}).values():
            commit = (row.get("computed_at") or {}).get("git_hash") or here
            if commit:
                rows[str(commit)[:7]] += 1
    machines = sorted({_one(str(m["hardware"])) for m in made if m.get("hardware")})
    if len(rows) > 1:
        where = " at commits " + ", ".join(
            f"{c} ({n} row{'s' if n != 1 else ''})" for c, n in sorted(rows.items())
        )
    else:
        where = f" at commit {next(iter(rows))}" if rows else ""
    return where + (f" on {', '.join(machines)}" if machines else "")


def render_records(
    records: list[Record], result_hashes: set[str] | None = None, level: str = "###"
) -> str:
    """One markdown section for one scenario's ε records (one per seed)."""
    if not records:
        return ""
    from fubench.report import markdown

    return markdown.quality(quality_view(records, result_hashes), level)
