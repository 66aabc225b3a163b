"""The example third-party package (plugins/fubench-gradient-ascent) installed with pip:
it appears in `fubench plugins` and in a `fubench run` table, its own test suite passes,
and uninstalling it makes it disappear.

pip installs it into a virtual environment layered on the test environment (the one
the leaderboard's submissions use, fubench.submission.Layer): the layer sees every
package installed here, but what pip puts into the layer stays there. Installing into
the shared test environment itself would show the example to every other process using
it while these tests run (a benchmark writing results would record it in its
provenance)."""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fubench import submission
from fubench.plugins import load_registry, reset_registry
from tests.conftest import TEST_PLUGIN, run_cli

pytestmark = pytest.mark.training  # starts processes: not in the fast tier

PACKAGE = Path(__file__).resolve().parents[1] / "plugins" / "fubench-gradient-ascent"
DIST, ENTRY_POINT, METHOD = "fubench-gradient-ascent", "gradient_ascent", "gradient_ascent"


class Layer(submission.Layer):
    """The layered environment the leaderboard's submissions use, with the checks of
    these tests."""

    def pip(self, *args: str) -> None:
        done = super().pip(*args)
        assert done.returncode == 0, f"pip {' '.join(args)}:\n{done.stdout}\n{done.stderr}"

    def installed(self) -> bool:
        return any(self.site.glob("fubench_gradient_ascent-*.dist-info"))

    def run(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            [self.python, *args], capture_output=True, text=True, timeout=600, **kwargs
        )

    def listed_plugins(self) -> dict[str, dict]:
        """`fubench plugins --json` in a fresh process of the layer, as a user sees it."""
        done = self.run("-m", "fubench.cli", "plugins", "--json")
        assert done.returncode == 0, done.stderr
        return {p["name"]: p for p in json.loads(done.stdout)}


def test_plugins_command_marks_builtins_and_shows_hooks(capsys):
    """Without the example: built-ins are marked with their version, and a plugin that
    only implements lifecycle hooks shows them."""
    import types

    import fubench

    logger = types.ModuleType("row_logger")
    logger.fubench_method_result = fubench.hookimpl(lambda method, result: None)
    reset_registry(load_registry(extra_plugins=[logger]))
    assert run_cli("plugins") == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert f"[fubench {fubench.__version__}, built-in] method: retrain" in lines["retrain"]
    assert lines["row_logger"].endswith("[(local)] hooks: fubench_method_result")
    assert run_cli("plugins", "--json") == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed["retrain"]["builtin"] and listed["retrain"]["hooks"] == ["fubench_unlearners"]
    assert listed["row_logger"]["hooks"] == ["fubench_method_result"]


@pytest.fixture(scope="module")
def layer(tmp_path_factory):
    try:
        md.distribution(DIST)
        pytest.skip(f"{DIST} is installed in the test environment itself")
    except md.PackageNotFoundError:
        pass
    copy = tmp_path_factory.mktemp("example") / PACKAGE.name  # builds leave no trace here
    shutil.copytree(
        PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", ".*")
    )
    layer = Layer(tmp_path_factory.mktemp("layer") / "env")
    layer.pip("install", "--no-deps", "--no-build-isolation", "-q", str(copy))
    layer.package = copy
    return layer


def test_installed_package_is_listed(layer):
    entry = layer.listed_plugins()[ENTRY_POINT]
    assert (entry["distribution"], entry["version"], entry["builtin"]) == (DIST, "0.1.0", False)
    assert entry["provides"] == {"method": [METHOD]}
    assert entry["hooks"] == ["fubench_unlearners"] and entry["error"] is None
    assert ENTRY_POINT not in {p.name for p in load_registry().plugins}, (
        "the test environment itself does not see it"
    )


def test_fubench_run_shows_its_rows(layer, backdoor_yaml, tmp_path, capsys, monkeypatch):
    # in this process, so that the tiny synthetic data set of the tests is available
    monkeypatch.syspath_prepend(str(layer.site))
    reset_registry(load_registry(extra_plugins=[TEST_PLUGIN]))
    out = tmp_path / "results"
    assert (
        run_cli("run", str(backdoor_yaml(rounds=1)), "--methods", METHOD, "--out", str(out), "-q")
        == 0
    )
    text = capsys.readouterr().out
    # the first table (a table wider than the terminal continues in further ones)
    first = next(block for block in text.split("\n\n") if block.startswith("|"))
    rows = first.splitlines()
    assert [r.split("|")[1].strip() for r in rows[2:]] == ["original", METHOD, "retrain"]
    result = json.loads(next(out.rglob("seed_0.json")).read_text())
    row = result["methods"][METHOD]
    assert row["status"] == "ok" and row["metrics"]["test_acc"] is not None
    assert result["provenance"]["plugins"][ENTRY_POINT] == "0.1.0"


def test_its_own_test_suite_passes(layer):
    done = layer.run(
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:benchmark",
        str(layer.package / "tests"),
        cwd=layer.package,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "skipped" not in done.stdout, "installed, nothing may be skipped"


@pytest.mark.slow
def test_fubench_run_on_real_mnist(layer, write_yaml, tmp_path):
    """The user's path end to end, in a fresh process on real data (offline: the 5k
    MNIST subset), with the smallest schedule."""
    scenario = write_yaml("""\
        version: 1
        name: tiny_mnist_backdoor
        dataset: {name: mnist, test_fraction: 0.3}
        model: {name: mnist_cnn}
        federation: {clients: 2, partition: {name: iid}, rounds: 1, local_epochs: 1,
                     batch_size: 64, lr: 0.05, momentum: 0.9}
        scenario: {kind: backdoor, client: 0, target_label: 9, poison_fraction: 0.5}
        methods: {retrain: {}}
        seeds: [0]
        device: cpu
        """)
    done = layer.run(
        "-m",
        "fubench.cli",
        "run",
        str(scenario),
        "--methods",
        METHOD,
        "--out",
        str(tmp_path / "out"),
        "-q",
        env={**os.environ, "FUBENCH_PLUGINS": ENTRY_POINT},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert any(line.startswith(f"| {METHOD}") for line in done.stdout.splitlines()), done.stdout


def test_uninstalling_makes_it_disappear(layer, monkeypatch):
    layer.pip("uninstall", "-y", "-q", DIST)
    assert not layer.installed()
    assert ENTRY_POINT not in layer.listed_plugins()
    monkeypatch.syspath_prepend(str(layer.site))
    assert METHOD not in load_registry().methods.names()
