"""Models and rows are reused only while the code that made them is the same
(fubench.code_fingerprint): a changed line that trains, partitions, poisons or scores
invalidates what it touched; a changed report, command line or doc does not."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from fubench import code_fingerprint
from fubench.config.validate import load_scenario
from fubench.engine.cache import ModelCache
from fubench.results import read_result
from fubench.runner import Runner
from tests.conftest import BACKDOOR_YAML

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "fubench"


def test_every_harness_module_is_sorted_into_exactly_one_part():
    parts = [*code_fingerprint.PARTS.values(), code_fingerprint.NO_NUMBERS]

    def owners(path: Path) -> list[tuple[str, ...]]:
        rel = path.relative_to(HARNESS).as_posix()
        return [
            part
            for part in parts
            for entry in part
            if rel == entry or (entry.endswith("/") and rel.startswith(entry))
        ]

    unsorted = [p for p in HARNESS.rglob("*.py") if len(owners(p)) != 1]
    assert not unsorted, f"sort these into one part of fubench.code_fingerprint: {unsorted}"


@pytest.fixture
def harness_copy(tmp_path, monkeypatch):
    """The fingerprint reads a copy of the harness that the test may edit."""
    copy = tmp_path / "fubench"
    shutil.copytree(HARNESS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(code_fingerprint, "_HERE", copy)
    code_fingerprint.harness.cache_clear()
    yield copy
    code_fingerprint.harness.cache_clear()


def edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# an edit\n")
    code_fingerprint.harness.cache_clear()


@pytest.mark.parametrize("changed", ["fl/training.py", "engine/job.py", "data/__init__.py"])
def test_a_change_to_training_code_changes_the_models_and_rows(harness_copy, changed):
    before = code_fingerprint.harness("training"), code_fingerprint.harness("training", "scoring")
    edit(harness_copy / changed)
    after = code_fingerprint.harness("training"), code_fingerprint.harness("training", "scoring")
    assert before[0] != after[0] and before[1] != after[1]


def test_a_change_to_scoring_code_changes_rows_not_models(harness_copy):
    models, rows = (
        code_fingerprint.harness("training"),
        code_fingerprint.harness("training", "scoring"),
    )
    edit(harness_copy / "evaluation.py")
    assert code_fingerprint.harness("training") == models
    assert code_fingerprint.harness("training", "scoring") != rows


@pytest.mark.parametrize(
    "changed", ["cli/run.py", "report/leaderboard.py", "runner.py", "results.py", "progress.py"]
)
def test_reports_cli_and_storage_change_nothing(harness_copy, changed):
    before = {part: code_fingerprint.harness(part) for part in code_fingerprint.PARTS}
    edit(harness_copy / changed)
    assert {part: code_fingerprint.harness(part) for part in code_fingerprint.PARTS} == before


@pytest.fixture
def plugin_package(tmp_path, monkeypatch):
    """A plugin package of three modules: `main` imports `helper`; `other` is unused."""
    package = tmp_path / "fu_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("SCALE = 1\n")
    (package / "other.py").write_text("UNUSED = 1\n")
    (package / "main.py").write_text("from fu_pkg.helper import SCALE\nfrom . import helper\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code_fingerprint.module.cache_clear()
    yield package
    code_fingerprint.module.cache_clear()
    for name in [m for m in sys.modules if m.startswith("fu_pkg")]:
        del sys.modules[name]


def test_a_plugin_module_s_fingerprint_covers_the_modules_it_imports(plugin_package):
    first = code_fingerprint.module("fu_pkg.main")
    (plugin_package / "other.py").write_text("UNUSED = 2\n")
    code_fingerprint.module.cache_clear()
    assert code_fingerprint.module("fu_pkg.main") == first
    (plugin_package / "helper.py").write_text("SCALE = 2\n")
    code_fingerprint.module.cache_clear()
    assert code_fingerprint.module("fu_pkg.main") != first


def test_rows_and_models_carry_their_code(test_registry, backdoor_yaml, tmp_path):
    config = load_scenario(backdoor_yaml(), test_registry)
    result = read_result(Runner(config, test_registry, out=tmp_path).run()[0])
    for label, row in result["methods"].items():
        code = row["code"]
        assert code["harness"] == code_fingerprint.harness("training", "scoring"), label
        assert "fubench_builtins.metrics_core" in code["modules"], label
    assert "fubench_builtins.finetune" in result["methods"]["finetune"]["code"]["modules"]
    assert "fubench_builtins.finetune" not in result["methods"]["original"]["code"]["modules"]


def _fake_module_change(monkeypatch, changed: str) -> None:
    real = code_fingerprint.module.__wrapped__

    def fingerprint(name: str) -> str:
        return "changed-code" if name == changed else real(name)

    monkeypatch.setattr(code_fingerprint, "module", fingerprint)


def test_a_changed_method_module_recomputes_its_row_only(
    test_registry, backdoor_yaml, tmp_path, capsys, monkeypatch
):
    config = load_scenario(backdoor_yaml(), test_registry)
    Runner(config, test_registry, out=tmp_path).run()
    _fake_module_change(monkeypatch, "fubench_builtins.finetune")
    capsys.readouterr()
    config = load_scenario(backdoor_yaml(), test_registry)
    Runner(config, test_registry, out=tmp_path, verbose=True).run()
    err = capsys.readouterr().err
    assert "finetune: reused" not in err
    assert "original model from cache" in err  # the models do not depend on finetune


def test_a_changed_kind_module_retrains_the_models(
    test_registry, backdoor_yaml, tmp_path, capsys, monkeypatch
):
    cache = ModelCache(tmp_path / "cache")
    config = load_scenario(backdoor_yaml(), test_registry)
    Runner(config, test_registry, out=tmp_path / "out", cache=cache).run()
    _fake_module_change(monkeypatch, "fubench_builtins.backdoor")
    capsys.readouterr()
    config = load_scenario(backdoor_yaml(), test_registry)
    Runner(config, test_registry, out=tmp_path / "out", cache=cache, verbose=True).run()
    err = capsys.readouterr().err
    assert "training the original model" in err and "finetune: reused" not in err


def test_a_declined_row_is_kept_while_its_code_is_unchanged(
    test_registry, write_yaml, tmp_path, capsys, monkeypatch
):
    """An "n/a" row (distillation without server data) is the method's answer, like a
    result: a later run keeps it, with the commit that computed it, until the method's
    code changes. Recomputing it re-stamped it with each later run's commit."""
    text = BACKDOOR_YAML.format(name="declined", dataset="tiny_images", rounds=1)
    file = write_yaml(text.replace("finetune: {rounds: 1}", "distillation: {}"), "d.yaml")
    config = load_scenario(file, test_registry)
    [path] = Runner(config, test_registry, out=tmp_path).run()
    [row] = [r for r in read_result(path)["methods"].values() if r["method"] == "distillation"]
    assert row["status"] == "n/a" and "server" in row["error"]
    capsys.readouterr()
    Runner(load_scenario(file, test_registry), test_registry, out=tmp_path, verbose=True).run()
    assert "distillation: reused" in capsys.readouterr().err
    _fake_module_change(monkeypatch, "fubench_builtins.distillation")
    Runner(load_scenario(file, test_registry), test_registry, out=tmp_path, verbose=True).run()
    err = capsys.readouterr().err
    assert "distillation: reused" not in err


def test_an_unchanged_tree_reuses_everything(test_registry, backdoor_yaml, tmp_path, capsys):
    config = load_scenario(backdoor_yaml(), test_registry)
    Runner(config, test_registry, out=tmp_path).run()
    capsys.readouterr()
    config = load_scenario(backdoor_yaml(), test_registry)
    Runner(config, test_registry, out=tmp_path, verbose=True).run()
    err = capsys.readouterr().err
    assert "finetune: reused" in err and "original model from cache" in err


def test_code_records_name_no_machine_path(test_registry, backdoor_yaml, tmp_path):
    config = load_scenario(backdoor_yaml(), test_registry)
    text = Path(Runner(config, test_registry, out=tmp_path).run()[0]).read_text()
    assert str(ROOT) not in text
