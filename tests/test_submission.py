"""A third-party method onto the leaderboard (fubench.submission): the example package
goes through the whole path — its own environment, the conformance kit, a run on the
committed scenario with the committed seeds and reference models, its rows added and
marked — and a submission that fails a step adds nothing."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from fubench.errors import ConfigError
from fubench.results import read_result
from fubench.submission import read_submission
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "plugins" / "fubench-gradient-ascent"

#: a committed scenario, cut short: real MNIST (the 5k subset), one round
SCENARIO = """\
version: 1
name: short_backdoor
dataset: {name: mnist, test_fraction: 0.3}
model: {name: mnist_cnn}
federation: {clients: 3, partition: {name: iid}, rounds: 1, local_epochs: 1, batch_size: 32,
             lr: 0.05, momentum: 0.9}
scenario: {kind: backdoor, client: 0, target_label: 9, poison_fraction: 0.5}
methods: {retrain: {}, finetune: {rounds: 1}}
seeds: [0]
device: cpu
"""


def write_submission(folder: Path, **fields: object) -> Path:
    data = {
        "version": 1,
        "package": "fubench-gradient-ascent==0.1.0",
        "methods": ["gradient_ascent"],
        "scenarios": ["short_backdoor"],
        **fields,
    }
    path = folder / "submissions" / "example.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(f"{k}: {json.dumps(v)}" for k, v in data.items()) + "\n")
    return path


@pytest.fixture
def board(tmp_path, monkeypatch, capsys):
    """A repository-like folder: the scenario, its committed results, the example
    package (a copy) — and the working directory there, as the pipeline runs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FUBENCH_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "short_backdoor.yaml").write_text(SCENARIO)
    shutil.copytree(
        EXAMPLE,
        tmp_path / "packages" / "example",
        ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", ".*"),
    )
    assert run_cli("run", "scenarios/short_backdoor.yaml", "--out", "results", "-q") == 0
    capsys.readouterr()
    return tmp_path


@pytest.mark.parametrize(
    "fields, key, words",
    [
        ({"package": "fubench-gradient-ascent"}, "package", "pinned requirement"),
        ({"package": "fubench-gradient-ascent>=0.1"}, "package", "pinned requirement"),
        ({"methods": []}, "methods", "non-empty list"),
        ({"scenarios": ["a", "a"]}, "scenarios", "listed twice"),
        ({"version": 2}, "version", "expected 1"),
        ({"extra": 1}, "extra", "unknown key"),
    ],
)
def test_a_bad_submission_file_is_one_line(tmp_path, monkeypatch, fields, key, words):
    monkeypatch.chdir(tmp_path)
    path = write_submission(tmp_path, **fields)
    with pytest.raises(ConfigError) as caught:
        read_submission(path)
    assert f": {key}: " in str(caught.value) and words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_pinned_requirement_is_accepted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_submission(tmp_path, package="fubench-gradient-ascent==0.1.0")
    assert read_submission(path).package == "fubench-gradient-ascent==0.1.0"


@pytest.mark.training
def test_the_example_package_reaches_the_leaderboard(board, capsys):
    before = read_result(board / "results" / "short_backdoor" / "seed_0.json")
    submission = write_submission(board, package="packages/example")
    assert run_cli("submit", str(submission.relative_to(board)), "--results", "results") == 0
    out = capsys.readouterr().out
    assert "fubench-gradient-ascent 0.1.0 added (1 rows on short_backdoor)" in out
    after = read_result(board / "results" / "short_backdoor" / "seed_0.json")
    row = after["methods"]["gradient_ascent"]
    assert row["community"] == {
        "package": "fubench-gradient-ascent",
        "version": "0.1.0",
        "submission": "submissions/example.yaml",
    }
    assert row["status"] == "ok" and row["metrics"]["asr"] is not None
    assert "fubench_gradient_ascent" in row["code"]["modules"]
    for label in ("original", "finetune", "retrain"):  # the committed rows are untouched
        assert after["methods"][label] == before["methods"][label], label
    assert run_cli("leaderboard", "results", "-o", "board.md") == 0
    text = (board / "board.md").read_text()
    assert "gradient_ascent ★" in text
    assert "a community contribution, fubench-gradient-ascent 0.1.0" in text

    # the pipeline run again: the rows are there, from this code; nothing is re-run
    stored = (board / "results" / "short_backdoor" / "seed_0.json").read_bytes()
    assert run_cli("submit", str(submission.relative_to(board)), "--results", "results") == 0
    assert "added (0 rows on short_backdoor)" in capsys.readouterr().out
    assert (board / "results" / "short_backdoor" / "seed_0.json").read_bytes() == stored


@pytest.mark.training
def test_a_submission_failing_the_kit_adds_nothing(board, capsys):
    broken = board / "packages" / "broken"
    broken.mkdir()
    (broken / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "fu-broken"
            version = "0.1.0"
            [project.entry-points.fubench]
            broken = "fu_broken"
            [tool.setuptools]
            py-modules = ["fu_broken"]
            """
        )
    )
    (broken / "fu_broken.py").write_text(
        textwrap.dedent(
            """\
            import fubench

            class Crash(fubench.Unlearner):
                name = "crash"
                def unlearn(self, ctx):
                    raise RuntimeError("always")

            @fubench.hookimpl
            def fubench_unlearners():
                return [Crash]
            """
        )
    )
    path = board / "results" / "short_backdoor" / "seed_0.json"
    before = path.read_bytes()
    submission = write_submission(board, package="packages/broken", methods=["crash"])
    assert run_cli("submit", str(submission), "--results", "results") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fu-broken 0.1.0 fails the conformance kit" in err[0], err
    assert "nothing was added" in err[0]
    assert path.read_bytes() == before


def test_reference_rows_match_on_their_model_not_on_what_else_ran():
    """The committed run held methods that need the round history (their modules in the
    reference rows' code, history_bytes 0 there); the submission's run holds the
    reference alone. Same models: accepted. Another measured number: refused."""
    from fubench.submission import Submission, SubmissionError, _same_references

    def result(modules, metrics):
        code = {"harness": "h", "modules": {"fubench_builtins.backdoor": "k", **modules}}
        rows = {
            label: {"code": code, "metrics": dict(metrics)} for label in ("original", "retrain")
        }
        return {"config_hash": "c", "methods": rows}

    measured = {"test_acc": 0.98, "asr": 0.99, "seconds": 60.0}
    committed = result({"fubench_builtins.fedrecovery": "f"}, {**measured, "history_bytes": 0.0})
    fresh = result({}, {**measured, "seconds": 41.0, "history_bytes": None})
    sub = Submission("s.yaml", "pkg==1", ["gradient_ascent"], ["s"])
    _same_references(sub, "s", 0, fresh, committed, "retrain")  # no error
    other = result({}, {**measured, "asr": 0.5})
    with pytest.raises(SubmissionError, match="the original row differs"):
        _same_references(sub, "s", 0, other, committed, "retrain")
    changed = result({"fubench_builtins.backdoor": "other"}, measured)
    with pytest.raises(SubmissionError, match="other code"):
        _same_references(sub, "s", 0, changed, committed, "retrain")


def test_a_stored_row_is_kept_only_from_the_same_package_and_code():
    """A seed is skipped when its file holds every submitted method's row from the same
    package version, the reference rows' harness and the method's modules as installed
    now; another version, harness or module source runs it again."""
    from fubench.submission import _holds

    class Layer:
        def __init__(self, now):
            self.now, self.asked = now, []

        def fingerprints(self, modules):
            self.asked.append(modules)
            return {m: self.now[m] for m in modules if m in self.now}

    def stored(version="0.1.0", harness="h", module="m1"):
        code = {"harness": "h", "modules": {"fubench_builtins.backdoor": "k"}}
        mine = {"harness": harness, "modules": {"pkg_mod": module, "harness:stream": "s"}}
        record = {
            "reference": "retrain",
            "methods": {
                "retrain": {"method": "retrain", "code": code},
                "ga": {
                    "method": "ga",
                    "code": mine,
                    "community": {"package": "pkg", "version": version},
                },
            },
        }
        return record

    layer = Layer({"pkg_mod": "m1"})
    assert _holds(layer, stored(), ["ga"], "pkg", "0.1.0")
    assert layer.asked == [("pkg_mod",)], "harness parts are not plugin modules"
    assert not _holds(layer, stored(), ["ga"], "pkg", "0.2.0")
    assert not _holds(layer, stored(harness="old"), ["ga"], "pkg", "0.1.0")
    assert not _holds(layer, stored(module="m0"), ["ga"], "pkg", "0.1.0")
    assert not _holds(layer, stored(), ["ga", "other"], "pkg", "0.1.0")
    assert not _holds(Layer({}), stored(), ["ga"], "pkg", "0.1.0")
