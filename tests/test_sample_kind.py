"""The ``sample`` scenario kind: what it forgets and keeps, its configuration errors, its
precondition, and its scenario file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fubench_builtins.partitioners import IID
from fubench_builtins.sample_unlearning import SampleUnlearning

from fubench import ForgetRequest
from fubench.config.validate import load_scenario
from fubench.errors import ConfigError
from tests.test_scenarios import context, gen, images, problems, with_metrics

ROOT = Path(__file__).resolve().parent.parent


def test_each_requesting_client_forgets_its_fraction_and_keeps_the_rest():
    data = images(n=400)
    parts = IID().partition(data.y_train, 4, gen())
    setup = SampleUnlearning(clients=[2, 0], fraction=0.25).build(data, parts, gen())
    assert setup.request.clients == (0, 2)
    forgotten = []
    for c in range(4):
        train, kept = setup.train[c], setup.retained[c]
        assert torch.equal(train.x, data.x_train[parts[c]])  # nothing is altered
        if c in (0, 2):
            mask = setup.request.forget_masks[c]
            assert int(mask.sum()) == round(0.25 * len(train))
            assert torch.equal(kept.x, train.x[~mask])
            forgotten.append(train.x[mask])
        else:
            assert c not in setup.request.forget_masks
            assert torch.equal(kept.x, train.x)
    assert torch.equal(setup.eval_sets["forget"].x, torch.cat(forgotten))
    assert setup.reference_data() is setup.retained, "retrain trains on what is kept"
    assert setup.info["forget_samples"] == len(setup.eval_sets["forget"])
    again = SampleUnlearning(clients=[2, 0], fraction=0.25).build(data, parts, gen())
    assert torch.equal(again.request.forget_masks[0], setup.request.forget_masks[0])
    other = SampleUnlearning(clients=[2, 0], fraction=0.25).build(data, parts, gen(1))
    assert not torch.equal(other.request.forget_masks[0], setup.request.forget_masks[0])


def test_a_tiny_fraction_still_forgets_one_sample_and_keeps_one():
    data = images(n=40)
    parts = IID().partition(data.y_train, 4, gen())
    setup = SampleUnlearning(clients=[1], fraction=0.01).build(data, parts, gen())
    assert int(setup.request.forget_masks[1].sum()) == 1


def test_sample_config_errors():
    assert "clients[0]" in problems(SampleUnlearning, clients=[5])
    assert "clients[1]" in problems(SampleUnlearning, clients=[0, "a"])
    assert "clients" in problems(SampleUnlearning, clients=[1, 1])
    assert "clients" in problems(SampleUnlearning, clients=[])
    assert "fraction" in problems(SampleUnlearning, fraction=1.0)
    assert problems(SampleUnlearning, _context=context(clients=2), clients=[0, 1]) == {}


def test_sample_config_errors_name_the_file_and_key(write_yaml):
    text = (ROOT / "scenarios" / "sample_fmnist.yaml").read_text()
    bad = text.replace("clients: [0, 1, 2]", "clients: [0, 9, 2]")
    assert bad != text
    with pytest.raises(ConfigError, match=r"scenario.clients\[1\]: expected a client index"):
        load_scenario(write_yaml(bad))


def test_sample_precondition_wants_the_original_to_have_memorised():
    kind = SampleUnlearning()
    original, retrain = with_metrics({"mia_acc": 0.52}, {"mia_acc": 0.5})
    original.setup.request = ForgetRequest((0,), {})
    assert "PRECONDITION FAILED" in kind.check(original, retrain)[0]
    assert kind.check(*with_metrics({"mia_acc": 0.6}, {"mia_acc": 0.5})) == []


def test_the_sample_scenario_lists_every_builtin_method():
    from fubench.plugins import get_registry

    registry = get_registry()
    builtin = {name for p in registry.plugins if p.builtin for name in p.provides.get("method", [])}
    config = load_scenario(ROOT / "scenarios" / "sample_fmnist.yaml", registry)
    assert {m.name for m in config.methods} == builtin
