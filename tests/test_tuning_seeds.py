"""Tuning seeds: `fubench run --tuning` writes them apart, a swept method's point is
chosen on them and never on the seeds a table reports, and a folder of tuning seeds
alone still shows its numbers, said to be tuning seeds."""

from __future__ import annotations

import json

from fubench.report import load_results, render_report
from fubench.results import read_result, row_digest
from tests.conftest import run_cli


def make_perfect(path, label: str) -> None:
    """Give row ``label`` of a stored result the gold standard's measured numbers (a
    distance of 0 to the ideal), with the digest a written row carries."""
    record = json.loads(path.read_text())
    row = record["methods"][label]
    reference = record["methods"]["retrain"]["metrics"]
    row["metrics"] = {k: reference.get(k, v) for k, v in row["metrics"].items()}
    row["digest"] = row_digest(record["config_hash"], record["seed"], row)
    path.write_text(json.dumps(record))


def run_with_tuning_seed(backdoor_yaml, tmp_path):
    """finetune swept over rounds [1, 2], run on evaluation seed 0 and tuning seed 7;
    the results folder."""
    path = backdoor_yaml()
    text = path.read_text().replace("finetune: {rounds: 1}", "finetune: {rounds: [1, 2]}")
    path.write_text(text.replace("seeds: [0]", "seeds: [0]\ntuning_seeds: [7]"))
    out = tmp_path / "results"
    assert run_cli("run", str(path), "--out", str(out), "-q") == 0
    assert run_cli("run", str(path), "--tuning", "--out", str(out), "-q") == 0
    return out


def test_the_point_is_chosen_on_the_tuning_seeds(backdoor_yaml, test_registry, tmp_path, capsys):
    out = run_with_tuning_seed(backdoor_yaml, tmp_path)
    folder = out / "tiny_backdoor"
    assert sorted(p.name for p in folder.glob("*.json")) == ["seed_0.json", "tuning_seed_7.json"]
    assert read_result(folder / "tuning_seed_7.json")["purpose"] == "tuning"
    assert read_result(folder / "seed_0.json").get("purpose", "evaluation") == "evaluation"

    # the tuning seed favours rounds=2, the reported seed rounds=1: the table shows rounds=2
    make_perfect(folder / "tuning_seed_7.json", "finetune[rounds=2]")
    make_perfect(folder / "seed_0.json", "finetune[rounds=1]")
    report = render_report(load_results([out], test_registry), test_registry)
    rows = [line.split("|")[1].strip() for line in report.splitlines() if line.startswith("| ")]
    assert "finetune[rounds=2]" in rows and "finetune[rounds=1]" not in rows
    assert "over the means of the tuning seeds (7)" in report
    assert "Seeds: 0 (" in report, "the reported seeds are the evaluation seeds only"

    # without its tuning seed, the same folder chooses on the reported seed, and says so
    (folder / "tuning_seed_7.json").rename(tmp_path / "tuning_seed_7.json")
    report = render_report(load_results([out], test_registry), test_registry)
    assert "finetune[rounds=1]" in report and "the scenario has no tuning seeds" in report

    # a folder of tuning seeds alone: shown, and said to be tuning seeds
    alone = tmp_path / "alone" / "tiny_backdoor"
    alone.mkdir(parents=True)
    (tmp_path / "tuning_seed_7.json").rename(alone / "tuning_seed_7.json")
    capsys.readouterr()
    assert run_cli("table", str(alone)) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("Tuning seeds only (tuning_seed_*.json)")
    assert "| retrain" in shown and "Seeds: 7 (" in shown


def test_without_a_forgetting_gap_the_point_is_the_best_ranked_on_the_tuning_seeds(
    backdoor_yaml, test_registry, tmp_path, monkeypatch
):
    """A kind with no forgetting metric normalised as a gap (bias, sensitive) has no
    (1, 1) to measure: the point shown is the one with the best scenario rank on the
    tuning seeds, not every point (a claim would read the first, the overall rank the
    best on the reported seeds)."""
    from fubench.report import sweeps

    out = run_with_tuning_seed(backdoor_yaml, tmp_path)
    folder = out / "tiny_backdoor"
    make_perfect(folder / "tuning_seed_7.json", "finetune[rounds=2]")
    make_perfect(folder / "seed_0.json", "finetune[rounds=1]")
    monkeypatch.setattr(sweeps, "forgetting_axis", lambda table, registry: None)
    report = render_report(load_results([out], test_registry), test_registry)
    rows = [line.split("|")[1].strip() for line in report.splitlines() if line.startswith("| ")]
    assert "finetune[rounds=2]" in rows and "finetune[rounds=1]" not in rows
    assert "the best scenario rank" in report and "over the tuning seeds (7)" in report
