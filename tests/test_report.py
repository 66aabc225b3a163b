"""Tables from result files, and atomic result writing."""

from __future__ import annotations

import json

import pytest

from fubench.plugins import get_registry
from fubench.report import aggregate, render, render_report
from fubench.results import write_json_atomic


def result(seed, rows, warnings=()):
    return {
        "schema": 1,
        "seed": seed,
        "warnings": list(warnings),
        "scenario": {"name": "s", "kind": "backdoor", "version": 1},
        "dataset": {"source": "somewhere"},
        "methods": {
            name: {"status": status, "error": error, "params": {}, "metrics": metrics}
            for name, (status, error, metrics) in rows.items()
        },
    }


def seeds():
    return [
        result(
            0,
            {
                "retrain": ("ok", None, {"test_acc": 0.90, "nta": 1.0}),
                "original": ("ok", None, {"test_acc": 0.80, "nta": None}),
                "m": ("ok", None, {"test_acc": 0.70, "nta": 0.7 / 0.9}),
                "bad": ("failed", "RuntimeError: x", {}),
                "na": ("n/a", "needs history", {}),
            },
            ["PRECONDITION FAILED: asr low"],
        ),
        result(
            1,
            {
                "original": ("ok", None, {"test_acc": 0.82, "nta": None}),
                "m": ("ok", None, {"test_acc": 0.72, "nta": None}),
                "bad": ("failed", "RuntimeError: x", {}),
                "na": ("n/a", "needs history", {}),
                "retrain": ("ok", None, {"test_acc": 0.92, "nta": 1.0}),
            },
        ),
    ]


def test_rows_read_original_methods_retrain():
    (table,) = aggregate(seeds(), get_registry())
    assert table.rows == ["original", "m", "bad", "na", "retrain"]
    assert table.seeds == [0, 1]


def test_cells_show_mean_std_undefined_and_partial_counts():
    (table,) = aggregate(seeds(), get_registry())
    text = render(table, get_registry())
    lines = {line.split("|")[1].strip(): line for line in text.splitlines()[2:]}
    assert "81.0 ± 1.4" in lines["original"]  # percent, mean ± sample std
    assert "—" in lines["original"]  # nta undefined on both seeds
    assert "0.778 (1/2)" in lines["m"]  # one seed undefined
    assert lines["bad"].count("failed") == 2 and lines["na"].count("n/a") == 2
    # a backdoor's test set is clean: more accuracy than retrain's is better (↑, not →1)
    assert "test_acc % ↑" in text.splitlines()[0] and "nta ↑" in text.splitlines()[0]


def test_report_lists_reasons_and_warnings():
    text = render_report(seeds(), get_registry())
    assert "**bad**: failed — RuntimeError: x" in text
    assert "**na**: n/a — needs history" in text
    assert "seed 0: PRECONDITION FAILED: asr low" in text
    assert text.startswith("## s (backdoor, v1)")


def test_single_seed_has_no_std():
    (table,) = aggregate(seeds()[:1], get_registry())
    text = render(table, get_registry())
    assert "80.0 |" in text or "80.0 " in text
    assert "±" not in text


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(ValueError):
        write_json_atomic(path, {"a": float("nan")})  # JSON cannot hold NaN
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"], "no temporary file left"


def test_provenance_names_the_commit_of_every_row():
    from fubench.report import markdown
    from fubench.report.explain import provenance

    file = result(0, {"original": ("ok", None, {}), "m": ("ok", None, {})})
    file["provenance"] = {"git_hash": "bbb", "date": "2026-02-01", "device": "cpu"}
    # a resumed file: `m` was computed by an earlier run, `original` has no stamp
    file["methods"]["m"]["computed_at"] = {"git_hash": "aaa", "date": "2026-01-01"}
    text = markdown.provenance(provenance([file]))
    assert "- git commit: aaa, bbb" in text
    assert "- run dates: 2026-01-01 … 2026-02-01" in text
