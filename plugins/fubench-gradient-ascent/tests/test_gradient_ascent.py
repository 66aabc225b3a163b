"""Tests of the example plugin: fubench's conformance kit, then the method's own parts.

Run them after installing the package: ``pip install -e . && pytest``."""

from __future__ import annotations

import fubench_gradient_ascent as ga
import pytest
import torch
from torch.nn import functional as F

import fubench
import fubench.testing
from fubench.plugins import load_registry


@pytest.fixture(scope="module")
def kit():
    registry = load_registry()
    if "gradient_ascent" not in registry.methods.names():
        # not pip-installed (yet): register the module directly
        registry = load_registry(extra_plugins=[ga])
    return fubench.testing.Kit(registry)


def test_conformance(kit):
    kit.check("method", "gradient_ascent")


def test_is_found_through_the_entry_point():
    registry = load_registry()
    if "gradient_ascent" not in registry.methods.names():
        pytest.skip("the package is not installed")
    info = next(p for p in registry.plugins if p.name == "gradient_ascent")
    assert (info.distribution, info.builtin) == ("fubench-gradient-ascent", False)


def test_projection_lands_on_the_ball():
    model = torch.nn.Linear(3, 2)
    centre = torch.zeros(8)
    ga.project(model, centre, 0.5)
    assert float(ga.parameter_vector(model).norm()) == pytest.approx(0.5)
    before = ga.parameter_vector(model).clone()
    ga.project(model, centre, 1.0)  # already inside: unchanged
    assert torch.equal(ga.parameter_vector(model), before)


def test_reference_removes_the_clients_last_contribution(tmp_path):
    """With the history, w_ref is exactly the other clients' average."""
    torch.manual_seed(0)
    start = torch.nn.Linear(3, 2).state_dict()
    clients = {c: {k: v + torch.randn_like(v) for k, v in start.items()} for c in range(3)}
    sizes = {0: 10, 1: 30, 2: 60}
    history = fubench.RoundHistory(tmp_path)
    history.record(0, start, clients, sizes)
    model = torch.nn.Linear(3, 2)
    model.load_state_dict({k: sum(sizes[c] * clients[c][k] for c in clients) / 100 for k in start})
    ref = ga.reference_state(model, history, requesting=[2])
    for k in start:
        expected = (30 * clients[1][k] + 10 * clients[0][k]) / 40
        assert torch.allclose(ref[k], expected, atol=1e-5)
    without = ga.reference_state(model, None, [2])
    assert all(torch.equal(without[k], v) for k, v in model.state_dict().items()), (
        "no history: the global model"
    )


def test_ascent_raises_the_forget_loss_within_the_ball(kit):
    stage = kit.stage("backdoor")
    ctx = kit.context(stage, ga.ProjectedGradientAscent, "ga", {})
    forget = stage.setup.forget_part(stage.setup.request.clients[0])
    method = ga.ProjectedGradientAscent(recovery_rounds=0, radius=0.5, lr=0.1, stop_accuracy=0.0)
    centre = ga.parameter_vector(ctx.model)
    model = method.unlearn(ctx).model
    assert float((ga.parameter_vector(model) - centre).norm()) <= 0.5 + 1e-4
    with torch.no_grad():
        loss = lambda m: float(F.cross_entropy(m(forget.x), forget.y))  # noqa: E731
        assert loss(model) > loss(stage.original) + 0.1
    assert ctx.federation.stats.clients_involved == set(stage.setup.request.clients)


def test_recovery_involves_the_retained_clients(kit):
    stage = kit.stage("client")
    outcome = kit.unlearn(stage, "gradient_ascent")
    assert outcome.status == "ok"
    leaving = stage.setup.request.clients[0]
    # the leaving client ascends, the two others (all it leaves) recover
    assert outcome.clients == set(range(stage.setup.n_clients))
    assert len(stage.setup.retained[leaving]) == 0


def test_declines_feature_scenarios(kit):
    assert kit.unlearn(kit.stage("sensitive"), "gradient_ascent").status == "n/a"
