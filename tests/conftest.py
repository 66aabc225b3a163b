"""Shared fixtures: scenario files written on the fly, a tiny synthetic data set for
unit tests (never used by `fubench run`), and isolated cache / data folders."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path

import pytest
import torch

import fubench
from fubench import Dataset, DatasetLoader

BACKDOOR_YAML = """\
version: 1
name: {name}
dataset: {{name: {dataset}, test_fraction: 0.3}}
model: {{name: mnist_cnn}}
federation:
  clients: 3
  partition: {{name: iid}}
  rounds: {rounds}
  local_epochs: 1
  batch_size: 32
  lr: 0.05
  momentum: 0.9
scenario: {{kind: backdoor, client: 0, target_label: 9, poison_fraction: 0.5}}
methods: {{retrain: {{}}, finetune: {{rounds: 1}}}}
seeds: [0]
device: cpu
"""


class TinyImages(DatasetLoader):
    """Synthetic 16x16 images whose class is a bright row: for unit tests only."""

    name = "tiny_images"
    n_classes = 10
    parameters = {"n": 400}

    def load(self, root):
        g = torch.Generator().manual_seed(0)
        y = torch.arange(self.n) % 10
        x = torch.rand(self.n, 1, 16, 16, generator=g) * 0.2
        x[torch.arange(self.n), 0, y + 3, 3:12] = 1.0
        return Dataset("tiny_images", "synthetic (tests only)", x, y, None, None, 10)


@fubench.hookimpl
def fubench_datasets():
    return [TinyImages]


#: a plugin object tests register with load_registry(extra_plugins=[TEST_PLUGIN])
TEST_PLUGIN = types.ModuleType("fubench_test_plugin")
TEST_PLUGIN.fubench_datasets = fubench_datasets


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Every test gets its own model cache; the data root is shared per session; the
    plugin switches of the developer's shell do not reach the tests (those that need one
    set it)."""
    monkeypatch.setenv("FUBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    for switch in ("FUBENCH_DISABLE_PLUGIN_AUTOLOAD", "FUBENCH_PLUGINS"):
        monkeypatch.delenv(switch, raising=False)
    data = Path(tmp_path_factory.getbasetemp()) / "data"
    data.mkdir(exist_ok=True)
    monkeypatch.setenv("FUBENCH_DATA", str(data))
    from fubench import plugins, progress

    plugins.reset_registry()
    progress.set_quiet(False)
    yield
    plugins.reset_registry()
    progress.set_quiet(False)


@pytest.fixture
def test_registry():
    from fubench.plugins import load_registry, reset_registry

    registry = load_registry(extra_plugins=[TEST_PLUGIN])
    reset_registry(registry)
    return registry


@pytest.fixture
def write_yaml(tmp_path):
    def write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def backdoor_yaml(write_yaml):
    def make(name="tiny_backdoor", dataset="tiny_images", rounds=2) -> Path:
        return write_yaml(
            BACKDOOR_YAML.format(name=name, dataset=dataset, rounds=rounds), f"{name}.yaml"
        )

    return make


def pytest_addoption(parser):
    parser.addoption(
        "--fast",
        action="store_true",
        help="the fast tier: leave out the tests marked `training` (real models, processes, "
        "package installs)",
    )


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--fast"):
        return
    dropped = [item for item in items if item.get_closest_marker("training") is not None]
    config.hook.pytest_deselected(items=dropped)
    items[:] = [item for item in items if item.get_closest_marker("training") is None]


def run_cli(*args: str) -> int:
    from fubench.cli import main

    return main(list(args))


sys.modules.setdefault("fubench_test_plugin", TEST_PLUGIN)
