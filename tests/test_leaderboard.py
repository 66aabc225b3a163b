"""The leaderboard markdown from fixture results: best values, ties, missing methods,
n/a and failed rows, single seeds, the overall ranking, determinism and --check."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

import fubench
from fubench import DatasetLoader, Param
from fubench.errors import DataUnavailable
from fubench.plugins import get_registry, load_registry, reset_registry
from fubench.report import leaderboard as lb
from fubench.results import sealed
from tests.conftest import TEST_PLUGIN, run_cli
from tests.resultfiles import write

METRICS = ("test_acc", "nta", "asr", "seconds", "rtr", "target_acc")


def row(metrics=None, status="ok", error=None, method=None, sweep=None):
    return {
        "method": method,
        "params": {},
        "sweep": sweep or {},
        "metrics": metrics or {},
        "seconds": 1.0,
        "status": status,
        "error": error,
    }


def metrics(test_acc, asr, seconds, rtr=None):
    return {
        "test_acc": test_acc,
        "nta": test_acc / 0.9,
        "asr": asr,
        "seconds": seconds,
        "rtr": seconds / 10.0 if rtr is None else rtr,
        "target_acc": 0.5,
    }


def result(seed, methods, scenario="alpha", kind="backdoor", hardware="cpu X"):
    # the original's attack success varies over the seeds: a gap without spread cannot
    # tell the original from retrain at 3 seeds (the exact sign-flip p is 1/8)
    original = metrics(0.92, 0.99 - seed / 100, 10.0)
    rows = {"original": row(original, method="original")}
    rows.update({name: dict(r, method=r["method"] or name) for name, r in methods.items()})
    rows["retrain"] = row(metrics(0.9, 0.01, 10.0, 1.0), method="retrain")
    return {
        "schema": 1,
        "seed": seed,
        "warnings": [],
        "config_hash": "abc",
        "scenario": {
            "name": scenario,
            "kind": kind,
            "version": 1,
            "file": f"scenarios/{scenario}.yaml",
            "description": "d",
        },
        "dataset": {"source": "somewhere"},
        "methods": rows,
        "provenance": {
            "fubench_version": "0.1.0",
            "git_hash": "deadbeef",
            "date": f"2026-01-0{seed + 1}T00:00:00+00:00",
            "python": "3.11",
            "torch": "2.3",
            "device": "cpu",
            "hardware": hardware,
            "plugins": {"finetune": "0.1.0"},
        },
    }


def two_scenarios():
    """alpha: fast best on asr, slow best on accuracy, a and b tie on everything;
    beta: only fast ran (slow missing), 'never' n/a, 'broken' failed; one seed."""
    alpha = [
        result(
            s,
            {
                "fast": row(metrics(0.80, 0.05 + s / 100, 1.0)),
                "slow": row(metrics(0.88, 0.30, 5.0)),
                "tie_a": row(metrics(0.85, 0.20, 2.0)),
                "tie_b": row(metrics(0.85, 0.20, 2.0)),
            },
        )
        for s in (0, 1, 2)
    ]
    beta = [
        result(
            0,
            {
                "fast": row(metrics(0.70, 0.10, 1.0)),
                "never": row(status="n/a", error="needs history"),
                "broken": row(status="failed", error="RuntimeError: boom"),
            },
            scenario="beta",
        )
    ]
    return alpha + beta


def render(results, tmp_path, plots=None):
    return lb.render_leaderboard(
        results, get_registry(), ["lb/results"], tmp_path, plots or tmp_path / "plots"
    )


def table_lines(text, scenario):
    """The rows of the scenario's main table (the first one of its section)."""
    section = text.split(f"## {scenario}\n")[1].split("\n## ")[0]
    table = section.split("\n| method")[1].split("\n\n")[0]
    return {
        line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")
    }


def test_best_values_are_bold_and_references_never(tmp_path):
    lines = table_lines(render(two_scenarios(), tmp_path), "alpha")
    assert "**88.0 ± 0.0**" in lines["slow"]  # test_acc ↑ among methods
    assert "**1.000 ± 0.000**" in lines["fast"]  # seconds ↓
    assert "**6.0 ± 1.0**" in lines["fast"]  # asr ↓, mean ± std of 3 seeds
    assert "**" not in lines["original"] + lines["retrain"]  # retrain has the best asr
    assert "ref" in lines["retrain"] and "| 3 " in lines["fast"]


def test_ties_share_bold_and_rank(tmp_path):
    text = render(two_scenarios(), tmp_path)
    (table,) = [
        s for s in lb.build_sections(two_scenarios(), get_registry()) if s.table.scenario == "alpha"
    ]
    assert table.ranks["tie_a"] == table.ranks["tie_b"]
    # quality: asr ranks fast 1, ties 2.5, slow 4; nta slow 1, ties 2.5, fast 4 —
    # test_acc is not ranked twice. Cost, apart: rtr fast 1, ties 2.5, slow 4 (seconds
    # is not ranked twice either)
    assert table.ranked_columns == ["nta", "asr"]
    assert table.cost_columns == ["rtr"]
    # normalised over the 4 rows: (r - 1) / 3
    assert table.ranks["fast"] == pytest.approx(0.5)
    assert table.ranks["tie_a"] == pytest.approx(0.5)
    assert table.ranks["slow"] == pytest.approx(0.5)
    assert table.cost_ranks == {"fast": 0.0, "tie_a": 0.5, "tie_b": 0.5, "slow": 1.0}
    lines = table_lines(text, "alpha")
    assert lines["tie_a"].split("|")[2:] == lines["tie_b"].split("|")[2:]


def test_missing_methods_na_failed_and_single_seed(tmp_path):
    text = render(two_scenarios(), tmp_path)
    beta = table_lines(text, "beta")
    assert "slow" not in beta  # missing method: no row
    assert beta["never"].count("n/a") == len(METRICS) and "| —" in beta["never"]
    assert beta["broken"].count("failed") == len(METRICS)
    assert "±" not in beta["fast"]  # one seed: no std
    assert "**never**: n/a — needs history" in text
    assert "**broken**: failed — RuntimeError: boom" in text
    ranking = text.split("## Overall ranking")[1].split("\n## ")[0]
    rows = {
        line.split("|")[2].strip(): line
        for line in ranking.splitlines()
        if line.startswith("| ") and "method" not in line
    }
    assert "| 1/2 " in rows["slow"] and "not run" in rows["slow"]
    # fast ran alone in beta: no other method to rank it against
    assert "| 1/2 " in rows["fast"] and "| alone " in rows["fast"]
    assert "failed" in rows["broken"] and "n/a" in rows["never"]


def test_overall_ranking_is_the_mean_of_scenario_ranks(tmp_path):
    sections = lb.build_sections(two_scenarios(), get_registry())
    ranks = lb.overall(sections)
    assert ranks["fast"] == {"alpha": pytest.approx(0.5)}  # alone in beta: not ranked there
    assert lb.overall(sections, cost=True)["slow"] == {"alpha": 1.0}
    text = render(two_scenarios(), tmp_path)
    fast = [
        line
        for line in text.split("## Overall ranking")[1].splitlines()
        if line.startswith("| ") and "| fast " in line
    ]
    # mean rank over alpha, the one scenario all ranked methods share: 0.50; cost 0.00
    assert fast and "| 0.50 " in fast[0] and "| 0.00 " in fast[0]


def test_a_cheap_method_that_forgets_nothing_does_not_rank_first(tmp_path):
    """Cost columns are ranked apart: a no-op wins every cost column but loses on asr."""
    noop = dict(metrics(0.90, 0.99, 0.01), nfs=0.0, target_acc=0.99)
    works = dict(metrics(0.88, 0.02, 5.0), nfs=0.98, target_acc=0.06)
    results = [result(s, {"noop": row(noop), "works": row(works)}) for s in (0, 1)]
    for s, r in enumerate(results):  # the poisoned samples: learnt by the original only
        r["methods"]["original"]["metrics"].update(target_acc=0.99 - s / 100, nfs=0.0)
        r["methods"]["retrain"]["metrics"].update(target_acc=0.05, nfs=1.0)
    (section,) = lb.build_sections(results, get_registry())
    assert section.ranks["works"] < section.ranks["noop"]
    assert section.cost_ranks["noop"] < section.cost_ranks["works"]


def test_links_provenance_and_determinism(tmp_path):
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "alpha_attention.png").write_bytes(b"png")
    results = two_scenarios()
    text = render(results, tmp_path, plots)
    assert "[`scenarios/alpha.yaml`](" in text and "version 1" in text
    assert "[attention maps](plots/alpha_attention.png)" in text
    assert "trade-off" not in text.split("## alpha")[1].split("## beta")[0]  # no such file
    assert "- hardware: cpu X" in text and "- git commit: deadbeef" in text
    assert "run dates: 2026-01-01T00:00:00+00:00 … 2026-01-03T00:00:00+00:00" in text
    assert render(list(reversed(results)), tmp_path, plots) == text  # order-independent


def write_results(folder: Path) -> None:
    for r in two_scenarios():
        write(folder / r["scenario"]["name"] / f"seed_{r['seed']}.json", r)


def test_check_passes_when_fresh_and_fails_after_editing_a_result(tmp_path, capsys):
    board = tmp_path / "board"
    write_results(board / "results")
    out = board / "README.md"
    args = [str(board / "results"), "-o", str(out)]
    assert run_cli("leaderboard", *args) == 0
    assert run_cli("leaderboard", *args, "--check") == 0
    copy = tmp_path / "elsewhere.md"  # the same bytes whatever the output path
    assert run_cli("leaderboard", str(board / "results"), "-o", str(copy)) == 0
    assert copy.read_bytes() == out.read_bytes()

    path = board / "results" / "alpha" / "seed_1.json"
    data = json.loads(path.read_text())
    data["methods"]["slow"]["metrics"]["asr"] = 0.9
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert run_cli("leaderboard", *args, "--check") == 2  # an edited row is refused
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed_1.json" in err[0] and "row 'slow'" in err[0], err
    assert "edited" in err[0]

    path.write_text(json.dumps(sealed(data)))  # a new result, as a run writes it
    assert run_cli("leaderboard", *args, "--check") == 1
    err = capsys.readouterr().err
    assert "is stale" in err and "-| slow" in err


def test_check_fails_when_the_file_is_missing_and_errors_are_one_line(tmp_path, capsys):
    write_results(tmp_path / "results")
    assert (
        run_cli(
            "leaderboard", str(tmp_path / "results"), "-o", str(tmp_path / "none.md"), "--check"
        )
        == 1
    )
    assert run_cli("leaderboard", str(tmp_path / "empty"), "-o", str(tmp_path / "x.md")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("fubench: error: no result files")


class NeedsNetwork(DatasetLoader):
    """Loads only when allowed to download: stands for CIFAR-10, which has no offline copy."""

    name = "needs_network"
    parameters = {"download": Param(True, bool)}

    def load(self, root):
        if not self.download:
            raise DataUnavailable("needs_network is not on disk")
        raise AssertionError("the offline check must not download")


NETWORK_PLUGIN = types.ModuleType("fubench_test_network")
NETWORK_PLUGIN.fubench_datasets = fubench.hookimpl(lambda: [NeedsNetwork])


def test_list_offline(backdoor_yaml, write_yaml, capsys):
    reset_registry(load_registry(extra_plugins=[TEST_PLUGIN, NETWORK_PLUGIN]))
    local = backdoor_yaml()  # the synthetic test data set: no network needed
    online = write_yaml(local.read_text().replace("tiny_images", "needs_network"), "net.yaml")
    assert run_cli("leaderboard", "--list-offline", "--json", str(online), str(local)) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == [str(local)]
    assert "net.yaml: skipped, needs network: needs_network is not on disk" in err


def test_a_broken_model_ranks_last_however_well_it_forgets(tmp_path):
    """A method that destroys the model (ASR 0 at chance accuracy) must not win."""
    seeds = [
        result(s, {"good": row(metrics(0.88, 0.05, 5.0)), "wrecked": row(metrics(0.10, 0.0, 0.1))})
        for s in (0, 1)
    ]
    (section,) = lb.build_sections(seeds, get_registry())
    assert section.ranks["good"] == 0.0 and section.ranks["wrecked"] == 1.0


def test_the_pipeline_runs_every_built_in_method(monkeypatch):
    """leaderboard/run.sh asks fubench for the method names: every built-in one, and
    nothing else (the listing's footer is not a method)."""
    import os
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    fubench_exe = shutil.which("fubench", path=str(Path(sys.executable).parent))
    env = dict(os.environ, FUBENCH=fubench_exe or "fubench")
    out = subprocess.run(
        ["bash", str(root / "leaderboard" / "run.sh"), "methods"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    monkeypatch.setenv("FUBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    registry = load_registry()
    assert out.strip().split(",") == sorted(registry.methods.names())


def test_check_refuses_rows_of_another_code_version_unless_carried_over(tmp_path, capsys):
    results = two_scenarios()
    results[1]["methods"]["slow"]["code"] = {"harness": "another", "modules": {}}
    folder = tmp_path / "results"
    for r in results:
        write(folder / r["scenario"]["name"] / f"seed_{r['seed']}.json", r)
    args = [str(folder), "-o", str(tmp_path / "README.md")]
    assert run_cli("leaderboard", *args) == 0  # writing the board is allowed
    capsys.readouterr()
    assert run_cli("leaderboard", *args, "--check") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "row 'slow'" in err[0] and "another version of the harness" in err[0]
    assert f"seed_{results[1]['seed']}.json" in err[0]
    results[1]["methods"]["slow"]["carried_over"] = True  # kept on purpose, by hand
    write(folder / results[1]["scenario"]["name"] / f"seed_{results[1]['seed']}.json", results[1])
    assert run_cli("leaderboard", *args) == 0
    assert run_cli("leaderboard", *args, "--check") == 0
    # the board says which rows were carried over, from which commit, by which code
    board = (tmp_path / "README.md").read_text()
    seed = results[1]["seed"]
    assert "carried over from an earlier run at commit " in board
    note = board.split("carried over from an earlier run at commit ")[1].split("\n")[0]
    assert "by other code than the rows computed since" in note and "slow" in note
    assert note.count("carried over") == 0 and board.count("carried over from") == 1
    # one carried over by the same code: said so
    results[1]["methods"]["slow"]["code"] = {"harness": "hand-made", "modules": {}}
    write(folder / results[1]["scenario"]["name"] / f"seed_{seed}.json", results[1])
    assert run_cli("leaderboard", *args) == 0
    assert "by the same code as the rows computed since" in (tmp_path / "README.md").read_text()


def test_check_refuses_rows_computed_at_another_commit(tmp_path, capsys):
    results = two_scenarios()
    results[0]["methods"]["slow"]["computed_at"] = {"git_hash": "0ld", "date": "2026-01-01"}
    folder = tmp_path / "results"
    for r in results:
        write(folder / r["scenario"]["name"] / f"seed_{r['seed']}.json", r)
    args = [str(folder), "-o", str(tmp_path / "README.md")]
    assert run_cli("leaderboard", *args) == 0
    capsys.readouterr()
    assert run_cli("leaderboard", *args, "--check") == 2
    assert "computed at commit 0ld" in capsys.readouterr().err
