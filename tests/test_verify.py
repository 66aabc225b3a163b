"""fubench verify: stored rows run again from an empty cache reproduce — bit for bit on
the same instruction set and libraries, else within the seeds' spread — and a change
in what the code computes shows as a mismatch (exit 1)."""

from __future__ import annotations

import json
import types

import pytest
import torch

import fubench
from fubench.config.validate import load_scenario
from fubench.plugins import load_registry, reset_registry
from fubench.runner import Runner
from fubench.verify import verify
from tests.conftest import TEST_PLUGIN, run_cli

#: how much the drifting method scales the model: the "code" a test changes
DRIFT = {"scale": 1.0}


class Drift(fubench.Unlearner):
    """Fine-tunes, then scales every weight: a stand-in for a method whose code moves."""

    name = "drift"

    def unlearn(self, ctx):
        model = ctx.federation.train(ctx.model, rounds=1)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(DRIFT["scale"])
        return model


@fubench.hookimpl
def fubench_unlearners():
    return [Drift]


@pytest.fixture
def registry():
    plugin = types.ModuleType("verify_test_plugin")
    plugin.fubench_unlearners = fubench_unlearners
    registry = load_registry(extra_plugins=[TEST_PLUGIN, plugin])
    reset_registry(registry)
    yield registry
    DRIFT["scale"] = 1.0


@pytest.fixture
def stored(registry, backdoor_yaml, tmp_path):
    path = backdoor_yaml(rounds=1)
    path.write_text(
        path.read_text()
        .replace(
            "methods: {retrain: {}, finetune: {rounds: 1}}", "methods: {retrain: {}, drift: {}}"
        )
        .replace("seeds: [0]", "seeds: [0, 1]")
    )
    Runner(load_scenario(path, registry), registry, out=tmp_path / "results").run()
    return tmp_path / "results"


def test_unchanged_code_reproduces_bit_for_bit(registry, stored, capsys):
    verdicts = verify([str(stored)], registry, seeds=[0])
    assert {v.label for v in verdicts} == {"original", "drift", "retrain"}
    assert all(v.ok and v.verdict == "identical" for v in verdicts), verdicts
    assert run_cli("verify", str(stored), "--seeds", "1", "--methods", "drift") == 0
    out = capsys.readouterr().out
    assert "ok tiny_backdoor seed 1 drift: identical" in out


def test_a_change_in_what_a_method_computes_is_a_mismatch(registry, stored, capsys):
    DRIFT["scale"] = 1.5
    assert run_cli("verify", str(stored), "--seeds", "0") == 1
    out, err = capsys.readouterr()
    drift = next(line for line in out.splitlines() if " drift: " in line)
    assert drift.startswith("!! ") and "differs" in drift
    assert "original: identical" in out  # what the method does not touch still agrees
    assert "rows reproduce" in err


def test_elsewhere_the_rows_must_lie_within_the_seeds_spread(registry, stored):
    for file in stored.rglob("seed_*.json"):  # as if computed on another processor
        data = json.loads(file.read_text())
        data["provenance"]["instruction_set"] = "another processor"
        file.write_text(json.dumps(data))
    verdicts = verify([str(stored)], registry, seeds=[0])
    rows = [v for v in verdicts if v.seed == 0]
    assert rows and all(v.ok and v.verdict == "within the spread" for v in rows), verdicts
    DRIFT["scale"] = 0.0  # a model with no weights left: outside anything the seeds gave
    verdicts = verify([str(stored)], registry, seeds=[0])
    drift = next(v for v in verdicts if v.label == "drift")
    assert not drift.ok and "stored seeds span" in drift.detail


def test_a_seed_the_results_lack_is_one_line(registry, stored, capsys):
    assert run_cli("verify", str(stored), "--seeds", "7") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no stored result for seed(s) [7]" in err[0]


def test_rows_of_a_method_not_installed_are_named_not_checked(registry, stored, capsys):
    """A community row whose package this checkout lacks: named, never silently skipped,
    and no reason to fail the rows that were checked."""
    file = next(stored.parent.glob("*.yaml"))  # the scenario file lists built-ins only,
    file.write_text(file.read_text().replace(", drift: {}", ""))  # as for a submission's
    reset_registry(load_registry(extra_plugins=[TEST_PLUGIN]))  # no `drift` here
    assert run_cli("verify", str(stored), "--seeds", "0") == 0
    out = capsys.readouterr().out
    assert "-- tiny_backdoor seed 0 drift: not checked: method 'drift' is not installed" in out
    assert "ok tiny_backdoor seed 0 retrain: identical" in out
    assert "verify: 2 of 2 rows reproduce" in out and "1 not checked" in out
    assert run_cli("verify", str(stored), "--seeds", "0", "--methods", "drift") == 2
    assert "unknown method 'drift'" in capsys.readouterr().err  # asked for: refused
