"""Every method as its paper meant it, on the same data and budget as its rivals:
FedRecovery's noise, Ferrari's colour feature, what the bias and sensitive kinds give
methods, equal fine-tuning budgets, and TIS ignoring negative curvature."""

from __future__ import annotations

import pytest
import torch
from fubench_builtins.bias import BiasFeature, ColourFeature
from fubench_builtins.fedcdp import FedCDP
from fubench_builtins.fedrecovery import FedRecovery, implied_epsilon, noise_std, parameter_entries
from fubench_builtins.finetune import FineTune
from fubench_builtins.partitioners import IID
from fubench_builtins.sensitive import SensitiveFeature
from fubench_builtins.tis_reset import client_curvature, reset_masks, target_information_score
from torch import nn

import fubench
from fubench import ForgetRequest, ScenarioSetup, Split
from fubench.errors import ParticipationError
from fubench.fl.federation import Federation
from fubench.fl.training import TrainSettings, generator
from fubench.params import as_param


def grey_digits(n: int = 120, seed: int = 0) -> fubench.Dataset:
    """Three-channel grey 'digits' (a bright bar per class on black) for the bias kind."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.zeros(n, 1, 12, 12)
    x[torch.arange(n), 0, 1 + y, 2:10] = (0.5 + 0.5 * torch.rand(n, generator=g))[:, None]
    x = x.expand(-1, 3, -1, -1).contiguous()
    return fubench.Dataset("grey", "synthetic (tests only)", x[:90], y[:90], x[90:], y[90:], 10)


# --------------------------------------------------------------------------- FedRecovery


def test_implied_epsilon_inverts_the_calibration():
    for d, epsilon, beta in [(12.4, 1.0, 1e-5), (0.5, 8.0, 1e-3), (3.0, 0.1, 1e-6)]:
        sigma = noise_std(d, epsilon, beta)
        assert implied_epsilon(sigma, d, beta) == pytest.approx(epsilon, rel=1e-9)
    assert implied_epsilon(0.02, 0.0, 1e-5) == 0.0  # no sensitivity, no leak
    assert implied_epsilon(0.0, 1.0, 1e-5) is None  # no noise: no guarantee


def test_the_literal_calibration_is_huge_against_the_default_sigma():
    """The issue's numbers: d = 12.4, ε = 1, β = 1e-5 gives σ ≈ 61 per weight."""
    assert noise_std(12.4, 1.0, 1e-5) == pytest.approx(60.8, abs=0.1)
    assert as_param(FedRecovery.parameters["noise"]).default == "sigma"
    assert as_param(FedRecovery.parameters["sigma"]).default == 0.02
    assert implied_epsilon(0.02, 12.4, 1e-5) > 1e5  # honest: no meaningful DP


def test_noise_goes_to_parameters_not_batchnorm_buffers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 2))
    entries = parameter_entries(model)
    state = model.state_dict()
    flat_names = [k for k, v in state.items() if v.is_floating_point() for _ in range(v.numel())]
    params = {name for name, _ in model.named_parameters()}
    assert entries.tolist() == [name in params for name in flat_names]
    assert not entries[[i for i, n in enumerate(flat_names) if "running" in n]].any()


# ------------------------------------------------------------------------- the bias kind


def bias_setup():
    data = grey_digits()
    parts = IID().partition(data.y_train, 3, generator(0, "partition"))
    return BiasFeature(client=0, bias_ratio=1.0).build(data, parts, generator(0, "scenario"))


def test_bias_methods_see_what_clients_keep_and_only_retrain_sees_the_rebalanced_copy():
    setup = bias_setup()
    assert len(setup.retained[0]) == 0, "the biased client keeps nothing for the methods"
    assert len(setup.reference[0]) == len(setup.train[0]), "retrain gets the rebalanced copy"
    assert all(torch.equal(setup.retained[c].x, setup.train[c].x) for c in (1, 2))
    fed = Federation(setup, TrainSettings(), 1, 1.0, 0, torch.device("cpu"), "retained")
    assert fed.retained_clients == [1, 2]
    with pytest.raises(ParticipationError, match="gold standard's data"):
        fed.train(nn.Linear(1, 1), data="reference")
    gold = Federation(
        setup, TrainSettings(), 1, 1.0, 0, torch.device("cpu"), "retained", reference=True
    )
    assert gold.retained_clients == [0, 1, 2]


def test_the_bias_feature_is_the_colour_not_a_region():
    setup = bias_setup()
    feature = setup.request.perturbation()
    assert isinstance(feature, ColourFeature) and feature.mask is None
    x = setup.train[0].x[:8]
    delta = feature.perturb(x, torch.full((8,), 0.5), torch.Generator().manual_seed(0))
    assert delta.shape == x.shape
    assert torch.all(delta[x == 0] == 0), "the black background stays black"
    # one gain per colour channel: within a channel δ is proportional to the pixel
    ratio = delta[0, 0][x[0, 0] > 0] / x[0, 0][x[0, 0] > 0]
    assert torch.allclose(ratio, ratio[0].expand_as(ratio))
    assert not torch.allclose(
        delta[0, 0] / x[0, 0].clamp_min(1e-6), delta[0, 1] / x[0, 1].clamp_min(1e-6)
    ), "channels differ"


def test_ferrari_perturbs_the_requests_feature():
    from fubench_builtins.ferrari import perturbations

    x = torch.rand(4, 3, 6, 6)
    delta = perturbations(x, ColourFeature(), 5, 0.05, 1.0, torch.Generator().manual_seed(1))
    assert delta.shape == (5, 4, 3, 6, 6)
    mask = torch.zeros(3, 6, 6, dtype=torch.bool)
    mask[:, :2, :2] = True
    region = perturbations(
        x, fubench.RegionFeature(mask), 5, 0.05, 1.0, torch.Generator().manual_seed(1)
    )
    assert torch.all(region[:, :, ~mask] == 0) and torch.any(region[:, :, mask] != 0)


def test_sensitive_retrain_alone_trains_on_noised_data():
    data = fubench.Dataset(
        "rows",
        "synthetic (tests only)",
        torch.randn(60, 4),
        torch.arange(60) % 2,
        torch.randn(20, 4),
        torch.arange(20) % 2,
        2,
        modality="tabular",
        feature_names=["a", "b", "c", "d"],
    )
    parts = IID().partition(data.y_train, 3, generator(0, "partition"))
    setup = SensitiveFeature(columns=["b"], noise_scope="all").build(
        data, parts, generator(0, "scenario")
    )
    assert len(setup.retained[0]) == 0
    assert torch.equal(setup.retained[1].x, setup.train[1].x), "methods see clean data"
    assert not torch.equal(setup.reference[1].x[:, 1], setup.train[1].x[:, 1])
    assert torch.equal(setup.reference[1].x[:, 0], setup.train[1].x[:, 0])


# -------------------------------------------------------------------------------- budgets


def test_fedcdp_and_finetune_share_the_fine_tuning_budget_by_default():
    fedcdp = {k: as_param(v).default for k, v in FedCDP.parameters.items()}
    finetune = {k: as_param(v).default for k, v in FineTune.parameters.items()}
    assert fedcdp["finetune_rounds"] == finetune["rounds"]
    assert fedcdp["local_epochs"] == finetune["local_epochs"]


# ------------------------------------------------------------------------------ TIS h <= 0


def test_tis_scores_zero_where_the_curvature_is_not_positive():
    h = {"w": torch.tensor([2.0, 0.0, -0.004, 1.0])}
    h_prime = {"w": torch.tensor([1.0, 1.0, 0.5, 0.1])}
    scores = target_information_score(h, h_prime)["w"]
    assert scores.tolist() == pytest.approx([0.25, 0.0, 0.0, 0.01])


def test_tis_never_resets_negative_curvature_of_a_tanh_model():
    """The exact Hessian diagonal of a tanh MLP has negative entries; none is reset."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    x, y = torch.randn(40, 4) * 3, torch.randint(0, 3, (40,))
    forget = torch.zeros(40, dtype=torch.bool)
    forget[:8] = True
    report = client_curvature(model, Split(x, y), forget, "diag_hessian")
    n_f, n_r = report["n_forget"], report["n_retained"]
    h = {
        k: (n_f * report["forget"][k] + n_r * report["retained"][k]) / 40 for k in report["forget"]
    }
    h_prime = dict(report["forget"])
    assert any(bool((v < 0).any()) for v in h.values()), "the test needs negative entries"
    masks = reset_masks(target_information_score(h, h_prime), gamma=0.99)
    for name, mask in masks.items():
        assert not bool((mask & (h[name] <= 0)).any()), name


def test_reference_data_defaults_to_the_retained_data():
    split = Split(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long))
    setup = ScenarioSetup([split], [split], ForgetRequest((0,), {}), {}, [])
    assert setup.reference_data() is setup.retained
