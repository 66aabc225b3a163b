"""Ferrari, FedCDP and FedRecovery: each method's core computation against a hand
computation on tiny inputs, then a short end-to-end run of all three through the Runner
(tiny synthetic images, 3 clients, 2 rounds)."""

from __future__ import annotations

import math

import pytest
import torch
from fubench_builtins.fedcdp import (
    channel_scores,
    class_activation_sums,
    prunable_units,
    prune,
    pruned_channels,
    tf_idf,
)
from fubench_builtins.fedrecovery import (
    FedRecovery,
    implied_epsilon,
    noise_std,
    round_residual,
    sensitivity_bound,
    weighted_residual,
)
from fubench_builtins.ferrari import perturbations, sensitivity_loss
from torch import nn

from fubench import ForgetRequest, RegionFeature, ScenarioSetup, Split, UnlearnContext
from fubench import data as datasets
from fubench.config.validate import apply_overrides, load_scenario
from fubench.engine.job import Job
from fubench.errors import NotApplicable
from fubench.fl.federation import Federation
from fubench.fl.history import RoundHistory
from fubench.fl.training import TrainSettings, generator
from fubench.results import read_result
from fubench.runner import Runner
from tests.conftest import BACKDOOR_YAML

# ---------------------------------------------------------------------- Ferrari


def test_perturbations_live_in_the_mask_with_sigma_in_range():
    x = torch.zeros(300, 1, 16, 16)
    mask = torch.zeros(1, 16, 16, dtype=torch.bool)
    mask[:, :8, :8] = True
    delta = perturbations(x, RegionFeature(mask), 4, 0.2, 0.3, torch.Generator().manual_seed(0))
    assert delta.shape == (4, 300, 1, 16, 16)
    assert torch.all(delta[..., ~mask] == 0), "no noise outside the feature"
    sigma = delta[..., mask].std(dim=-1)  # one σ per (draw, sample), 64 pixels each
    assert sigma.min() > 0.2 * 0.7 and sigma.max() < 0.3 * 1.3
    assert sigma.mean() == pytest.approx(0.25, abs=0.01), "σ ~ U(0.2, 0.3)"


def test_sensitivity_loss_of_a_linear_map_is_its_gain():
    # f(x) = 2x: ||f(x) − f(x+δ)|| / ||δ|| = 2 for every sample, so Σ over 5 samples = 10
    model = nn.Linear(3, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(2 * torch.eye(3))
    x = torch.randn(5, 3)
    delta = torch.randn(7, 5, 3)
    assert float(sensitivity_loss(model, x, delta).detach()) == pytest.approx(10.0, rel=1e-6)


def direct_loss(
    model: nn.Module, x: torch.Tensor, delta: torch.Tensor, detach: bool
) -> torch.Tensor:
    """The formula of docs/methods.md, written out with loops."""
    per_draw = []
    for n in range(delta.shape[0]):
        total = 0.0
        for b in range(x.shape[0]):
            noised = model(x[b : b + 1] + delta[n, b : b + 1])
            noised = noised.detach() if detach else noised
            total = total + (model(x[b : b + 1]) - noised).norm() / delta[n, b].norm()
        per_draw.append(abs(total))
    return sum(per_draw) / len(per_draw)


@pytest.mark.parametrize("detach", [False, True])
def test_sensitivity_loss_and_gradient_match_the_formula(detach):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    x, delta = torch.randn(3, 4), torch.randn(2, 3, 4)
    ours = sensitivity_loss(model, x, delta, detach_perturbed=detach)
    ours_grad = torch.autograd.grad(ours, list(model.parameters()))
    theirs = direct_loss(model, x, delta, detach)
    theirs_grad = torch.autograd.grad(theirs, list(model.parameters()))
    assert float(ours.detach()) == pytest.approx(float(theirs.detach()), rel=1e-5)
    for a, b in zip(ours_grad, theirs_grad):
        assert torch.allclose(a, b, atol=1e-5)


# ----------------------------------------------------------------------- FedCDP

#: channels x classes; channel 0 fires only for class 0, channel 1 for every class
#: alike, channel 2 for classes 1 and 2
ACTIVATIONS = torch.tensor([[4.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 2.0, 2.0]])


def test_tf_idf_matches_a_hand_computation():
    # TF = a / column sums (5, 3, 3); rows reaching their mean: 1, 3, 2 classes →
    # IDF = log(3/2), log(3/4), log(3/3)
    idf = torch.tensor([math.log(1.5), math.log(0.75), 0.0])
    tf = torch.tensor([[0.8, 0.0, 0.0], [0.2, 1 / 3, 1 / 3], [0.0, 2 / 3, 2 / 3]])
    assert torch.allclose(tf_idf(ACTIVATIONS), tf * idf.unsqueeze(1), atol=1e-6)
    score = channel_scores([ACTIVATIONS], torch.tensor([1.0, 0.0, 0.0]))[0]
    assert torch.allclose(score, torch.tensor([0.8 * math.log(1.5), 0.2 * math.log(0.75), 0.0]))
    uniform = channel_scores([ACTIVATIONS], torch.full((3,), 1 / 3))[0]
    assert torch.allclose(uniform, tf_idf(ACTIVATIONS).mean(dim=1))


def test_one_global_threshold_prunes_the_highest_scores_across_layers():
    scores = [torch.tensor([0.324, -0.058, 0.0]), torch.tensor([0.5, 0.1])]
    pruned = pruned_channels(scores, sparsity=0.4)  # 2 of 5 channels
    assert [p.tolist() for p in pruned] == [[True, False, False], [True, False]]
    assert sum(int(p.sum()) for p in pruned_channels(scores, 0.0)) == 0
    lowest = pruned_channels(scores, sparsity=0.4, highest=False)  # the authors' code
    assert [p.tolist() for p in lowest] == [[False, True, True], [False, False]]


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.Conv2d(4, 5, 3),
        nn.BatchNorm2d(5),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(5 * 4 * 4, 3),
    )


def test_client_statistics_are_per_class_sums_of_pooled_relu_activations():
    model = tiny_cnn().eval()
    x, y = torch.randn(7, 1, 8, 8), torch.tensor([0, 1, 2, 0, 0, 2, 1])
    units, what = prunable_units(model)
    assert what == "conv channels" and [u.name for u in units] == ["0", "2"]
    sums = class_activation_sums(model, units, Split(x, y), 3)
    after_bn = model[3](model[2](model[1](model[0](x))))  # the second conv is read after BN
    pooled = after_bn.relu().mean(dim=(2, 3))
    expected = torch.stack([pooled[y == k].sum(0) for k in range(3)], dim=1)
    assert torch.allclose(sums[1], expected, atol=1e-5)
    assert sums[0].shape == (4, 3)


def test_pruned_channels_output_zero_and_are_frozen():
    model = tiny_cnn()
    units, _ = prunable_units(model)
    masks = prune(
        units,
        [
            torch.tensor([False, True, False, False]),
            torch.tensor([True, False, False, False, False]),
        ],
    )
    model.eval()
    out1 = model[1](model[0](torch.randn(2, 1, 8, 8)))
    assert torch.all(out1[:, 1] == 0)
    assert torch.all(model[3](model[2](out1))[:, 0] == 0), "conv + BatchNorm both zeroed"
    assert not masks["0.weight"][1].any() and masks["0.weight"][0].all()
    assert set(masks) == {"0.weight", "0.bias", "2.weight", "2.bias", "3.weight", "3.bias"}


def test_models_without_conv_layers_prune_hidden_linear_units():
    mlp = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    units, what = prunable_units(mlp)
    assert "hidden units" in what and [u.name for u in units] == ["0", "2"]


# ------------------------------------------------------------------- FedRecovery


def write_history(folder) -> RoundHistory:
    """Two rounds, three equal clients, one 2-entry weight; client 0 will leave."""
    history = RoundHistory(folder)
    sizes = {0: 10, 1: 10, 2: 10}
    start = torch.zeros(2)
    # round 0: updates Δ0 = [3, 0], Δ1 = [0, 1], Δ2 = [0, 3]
    history.record(
        0,
        {"w": start},
        {
            0: {"w": torch.tensor([3.0, 0.0])},
            1: {"w": torch.tensor([0.0, 1.0])},
            2: {"w": torch.tensor([0.0, 3.0])},
        },
        sizes,
    )
    start = torch.tensor([1.0, 4 / 3])
    # round 1: updates Δ0 = [0, 0], Δ1 = [2, 0], Δ2 = [1, 0]
    history.record(
        1,
        {"w": start},
        {
            0: {"w": start},
            1: {"w": start + torch.tensor([2.0, 0.0])},
            2: {"w": start + torch.tensor([1.0, 0.0])},
        },
        sizes,
    )
    return history


def test_residuals_and_weights_match_a_hand_computation(tmp_path):
    history = write_history(tmp_path)
    # δ_i = (1/n) [Δ_u − mean_{j≠u} Δ_j]
    assert torch.allclose(round_residual(history[0], {0}).float(), torch.tensor([1.0, -2 / 3]))
    assert torch.allclose(round_residual(history[1], {0}).float(), torch.tensor([-0.5, 0.0]))
    # ||ΔW_i||²: ΔW_0 = [1, 4/3] → 25/9, ΔW_1 = [1, 0] → 1; p = (25/34, 9/34)
    removal, weights = weighted_residual(history, {0})
    assert weights == pytest.approx([25 / 34, 9 / 34])
    expected = 25 / 34 * torch.tensor([1.0, -2 / 3]) + 9 / 34 * torch.tensor([-0.5, 0.0])
    assert torch.allclose(removal.float(), expected)


def test_a_round_without_the_leaving_client_has_no_residual(tmp_path):
    history = RoundHistory(tmp_path)
    history.record(
        0, {"w": torch.zeros(2)}, {1: {"w": torch.ones(2)}, 2: {"w": torch.ones(2)}}, {1: 5, 2: 5}
    )
    assert torch.equal(round_residual(history[0], {0}), torch.zeros(2, dtype=torch.float64))


def test_noise_scale_and_sensitivity_bound_formulas():
    # β = e^-1: σ = d / (√2 (√2 − 1))
    assert noise_std(1.0, 1.0, math.exp(-1)) == pytest.approx(
        1 / (math.sqrt(2) * (math.sqrt(2) - 1))
    )
    assert noise_std(3.0, 2.0, 0.1) == pytest.approx(3 * noise_std(1.0, 2.0, 0.1))
    # ||[3, 4]|| + √(2 · 2 · 0.25 · 1) = 5 + 1
    assert sensitivity_bound(torch.zeros(2), torch.tensor([3.0, 4.0]), 2, 0.25, 1.0) == 6.0


class Weights(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(n))


def recovery_context(
    model: nn.Module, history, leaving=(0,), kind="client", keeps=False
) -> UnlearnContext:
    """A context of 3 clients; the leaving ones keep nothing unless ``keeps``."""
    data = Split(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    retained = [
        data if keeps or c not in leaving else data.subset(torch.arange(0)) for c in range(3)
    ]
    setup = ScenarioSetup(
        train=[data] * 3,
        retained=retained,
        request=ForgetRequest(tuple(leaving), {}),
        eval_sets={},
        default_metrics=[],
    )
    fed = Federation(setup, TrainSettings(lr=0.1), 1, 1.0, 0, torch.device("cpu"), "none")
    return UnlearnContext(
        model=model,
        initial_state={"w": torch.zeros_like(model.w)},
        make_model=lambda: model,
        request=setup.request,
        federation=fed,
        history=history,
        device=torch.device("cpu"),
        seed=0,
        generator=generator(0, "t"),
        scenario_kind=kind,
    )


def test_fedrecovery_subtracts_the_weighted_residuals_and_adds_calibrated_noise(tmp_path):
    history = write_history(tmp_path)
    model = Weights(2)
    with torch.no_grad():
        model.w.copy_(torch.tensor([5.0, 5.0]))
    result = FedRecovery(sigma=0.0).unlearn(recovery_context(model, history))
    expected = torch.tensor([5.0, 5.0]) - (
        25 / 34 * torch.tensor([1.0, -2 / 3]) + 9 / 34 * torch.tensor([-0.5, 0.0])
    )
    assert torch.allclose(result.model.w.detach(), expected), "sigma = 0: no noise"
    assert result.metrics["history_bytes"] == history.size_bytes > 0
    assert result.metrics["dp_epsilon"] is None, "no noise: no privacy guarantee"
    calibrated = FedRecovery(noise="dp_calibrated", d=0.0).unlearn(
        recovery_context(Weights(2), history)
    )
    assert calibrated.artifacts["sigma"] == 0.0, "d = 0: the calibration adds no noise"


def test_fedrecovery_noise_has_the_calibrated_spread(tmp_path):
    history = RoundHistory(tmp_path)
    n = 20_000
    history.record(
        0,
        {"w": torch.zeros(n)},
        {0: {"w": torch.ones(n)}, 1: {"w": torch.ones(n)}, 2: {"w": torch.ones(n)}},
        {0: 1, 1: 1, 2: 1},
    )
    # every client moved alike, so the residual is 0 and only noise remains
    calibrated = FedRecovery(noise="dp_calibrated", d=0.5, epsilon=2.0, beta=0.1).unlearn(
        recovery_context(Weights(n), history)
    )
    spread = float(calibrated.model.w.detach().std())
    assert spread == pytest.approx(noise_std(0.5, 2.0, 0.1), rel=0.03)
    assert calibrated.artifacts["sigma"] == pytest.approx(noise_std(0.5, 2.0, 0.1))
    assert calibrated.metrics["dp_epsilon"] == pytest.approx(2.0)
    # the default: a direct sigma, and the epsilon it implies for the same bound
    direct = FedRecovery(d=0.5, beta=0.1).unlearn(recovery_context(Weights(n), history))
    assert float(direct.model.w.detach().std()) == pytest.approx(0.02, rel=0.03)
    assert direct.metrics["dp_epsilon"] == pytest.approx(implied_epsilon(0.02, 0.5, 0.1))


@pytest.mark.parametrize("kind", ["sample", "class"])
def test_fedrecovery_declines_a_client_that_keeps_part_of_its_data(tmp_path, kind):
    """Removing the whole client would forget what it keeps: the same rule as FedEraser
    and distillation."""
    ctx = recovery_context(Weights(2), write_history(tmp_path), kind=kind, keeps=True)
    with pytest.raises(NotApplicable, match="keep part of their data"):
        FedRecovery().unlearn(ctx)


def test_fedrecovery_removes_a_backdoor_client_with_its_clean_data(tmp_path):
    ctx = recovery_context(Weights(2), write_history(tmp_path), kind="backdoor", keeps=True)
    assert FedRecovery(sigma=0.0).unlearn(ctx).model is not None


def test_fedrecovery_declines_a_request_covering_every_client(tmp_path):
    ctx = recovery_context(Weights(2), write_history(tmp_path), leaving=(0, 1, 2))
    with pytest.raises(NotApplicable, match="every client"):
        FedRecovery().unlearn(ctx)


# ------------------------------------------------------------------ end to end

METHODS = """\
methods:
  ferrari: {lr: 0.05, epochs: 5}
  fedcdp: {sparsity: 0.1, finetune_rounds: 1}
  fedrecovery: {}
"""


def scenario(write_yaml, name: str, history_dtype: str = "float32"):
    text = BACKDOOR_YAML.format(name=name, dataset="tiny_images", rounds=2)
    text = text.replace("  momentum: 0.9\n", f"  momentum: 0.9\n  history_dtype: {history_dtype}\n")
    text = text.replace("methods: {retrain: {}, finetune: {rounds: 1}}\n", METHODS)
    return write_yaml(text, f"{name}.yaml")


def feature_sensitivity(model: nn.Module, data: Split, mask: torch.Tensor) -> float:
    delta = perturbations(
        data.x, RegionFeature(mask), 20, 0.05, 1.0, torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        return float(sensitivity_loss(model.eval(), data.x, delta)) / len(data)


def test_the_three_methods_end_to_end(test_registry, write_yaml, tmp_path):
    config = load_scenario(scenario(write_yaml, "tiny_three"), test_registry)
    runner = Runner(config, test_registry, out=tmp_path)
    result = read_result(runner.run()[0])
    rows = result["methods"]
    assert {rows[m]["status"] for m in ("ferrari", "fedcdp", "fedrecovery")} == {"ok"}

    # Ferrari: only the requesting client worked, and its feature sensitivity fell
    assert rows["ferrari"]["clients"] == [0]
    assert rows["ferrari"]["metrics"]["clients_involved"] == 1
    # the engine gives the models back: the same job again (references from the cache)
    job = Job(runner.plan, datasets.load(config, test_registry), 0, runner.cache)
    original, _ = job.references()
    models = {spec.label: job.run_method(spec).model for spec in runner.plan.method_rows()}
    forget, mask = job.setup.forget_part(0), job.setup.request.feature_mask
    before = feature_sensitivity(original.model, forget, mask)
    after = feature_sensitivity(models["ferrari"], forget, mask)
    assert after < 0.5 * before

    # FedCDP: 10% of the 32 + 64 conv channels pruned, and still zero after fine-tuning
    convs = [m for m in models["fedcdp"].modules() if isinstance(m, nn.Conv2d)]
    dead = sum(int(((c.weight.flatten(1) == 0).all(1) & (c.bias == 0)).sum()) for c in convs)
    assert dead == round(0.1 * 96)
    assert rows["fedcdp"]["clients"] == [0, 1, 2]

    # FedRecovery: nobody worked; it reports the history it read
    assert rows["fedrecovery"]["metrics"]["clients_involved"] == 0
    assert rows["fedrecovery"]["metrics"]["history_bytes"] > 0
    # the others keep no history: a cost of 0, not "undefined"; the original is no method
    assert rows["ferrari"]["metrics"]["history_bytes"] == 0
    assert rows["original"]["metrics"]["history_bytes"] is None


def test_float16_history_halves_history_bytes(test_registry, write_yaml, tmp_path):
    sizes = {}
    for dtype in ("float32", "float16"):
        config = load_scenario(scenario(write_yaml, f"tiny_{dtype}", dtype), test_registry)
        config = apply_overrides(config, methods=["fedrecovery"], registry=test_registry)
        result = read_result(Runner(config, test_registry, out=tmp_path / dtype).run()[0])
        sizes[dtype] = result["methods"]["fedrecovery"]["metrics"]["history_bytes"]
    assert 0.45 < sizes["float16"] / sizes["float32"] < 0.55
