"""The methods as their papers set them, with their knobs visible: FedEraser's Δt = 2,
FedCDP's scores comparable across layer widths, TIS-Reset's rule for a negative target
curvature, distillation on server data from a shifted distribution
(``dataset.server_shifted``), the caveat FedRecovery's rows carry, and the cost-matched
baseline ``budget_retrain``."""

from __future__ import annotations

import types

import pytest
import torch
from fubench_builtins.budget_retrain import BudgetRetrain, budget_rounds
from fubench_builtins.distillation import Distillation
from fubench_builtins.fedcdp import FedCDP, pruned_channels
from fubench_builtins.federaser import FedEraser
from fubench_builtins.fedrecovery import FedRecovery
from fubench_builtins.tis_reset import TISReset, target_information_score

import fubench
import fubench.testing
from fubench import Dataset, DatasetLoader
from fubench.api import Unlearner, declaration_problems
from fubench.config.spec import MethodSpec
from fubench.config.validate import load_scenario
from fubench.data import fingerprint, reserve_for_server, shifted_server_inputs
from fubench.errors import ConfigError, FubenchError, NotApplicable
from fubench.plugins import load_registry, reset_registry
from tests.conftest import BACKDOOR_YAML, TEST_PLUGIN
from tests.test_federaser_distillation import Weights, context, write_history

KIT = fubench.testing.Kit(rounds=3)


# --------------------------------------------------------------------- FedEraser
def test_federaser_uses_every_second_round_by_default(tmp_path):
    """Δt = 2, the paper's setting: of rounds 0 and 1 only round 0 is stored and used."""
    assert FedEraser.parameters["interval"].default == 2
    ctx = context(Weights(2), write_history(tmp_path), "retained")
    result = FedEraser().unlearn(ctx)
    assert result.artifacts["stored_rounds"] == [0]
    assert result.metrics["history_bytes"] == ctx.history.round_bytes(0)


# ------------------------------------------------------------------------ FedCDP
def test_fedcdp_layer_scale_makes_layers_of_different_widths_comparable():
    """A 2-channel layer's TF is twice a 4-channel layer's for the same relative
    activation: raw scores (the authors' code) prune the narrow layer only."""
    narrow = torch.tensor([0.50, 0.40])  # TF of 2 channels: 1.0 and 0.8 of their mean
    wide = torch.tensor([0.35, 0.05, 0.05, 0.05])  # 4 channels: one 1.4 times the mean
    scores = [narrow, wide]
    raw = pruned_channels(scores, sparsity=1 / 3, layer_scale="none")  # 2 of 6
    assert raw[0].tolist() == [True, True] and not raw[1].any()
    relative = pruned_channels(scores, sparsity=1 / 3, layer_scale="relative")
    # relative scores: narrow 1.0, 0.8; wide 1.4, 0.2, 0.2, 0.2
    assert relative[0].tolist() == [True, False]
    assert relative[1].tolist() == [True, False, False, False]
    quota = pruned_channels(scores, sparsity=0.5, layer_scale="quota")  # 1 of 2, 2 of 4
    assert [int(p.sum()) for p in quota] == [1, 2]
    assert quota[0].tolist() == [True, False] and bool(quota[1][0])
    lowest = pruned_channels(scores, sparsity=0.5, highest=False, layer_scale="quota")
    assert lowest[0].tolist() == [False, True] and not bool(lowest[1][0])
    with pytest.raises(ValueError, match="layer_scale"):
        pruned_channels(scores, 0.5, layer_scale="z")


def test_fedcdp_prunes_by_its_layer_scale_on_the_kit():
    stage = KIT.stage("backdoor")
    shares, widths = {}, []
    for scale in ("relative", "quota", "none"):
        method = FedCDP(sparsity=0.25, layer_scale=scale, finetune_rounds=0)
        pruned = method.unlearn(stage.job.context("fedcdp")).artifacts["pruned"]
        shares[scale] = [int(p.sum()) for p in pruned]
        widths = [len(p) for p in pruned]
    assert len(widths) == 2 and widths[0] != widths[1]  # two conv layers of other widths
    assert shares["quota"] == [round(0.25 * w) for w in widths]
    assert sum(shares["relative"]) == sum(shares["none"]) == round(0.25 * sum(widths))


# --------------------------------------------------------------------- TIS-Reset
def test_tis_zeroes_a_negative_target_curvature_as_the_authors_code():
    h = {"w": torch.tensor([2.0, 2.0, -1.0, 0.0])}
    h_prime = {"w": torch.tensor([1.0, -1.0, 1.0, 3.0])}
    zero = target_information_score(h, h_prime)["w"]
    assert zero.tolist() == [0.25, 0.0, 0.0, 0.0]  # h' <= 0 or h <= 0: no information
    square = target_information_score(h, h_prime, "square")["w"]
    assert square.tolist() == [0.25, 0.25, 0.0, 0.0]  # (h'/h)²: a negative h' scores
    assert TISReset.parameters["negative_target"].default == "zero"
    with pytest.raises(ValueError, match="negative_target"):
        target_information_score(h, h_prime, "abs")


def test_a_tanh_network_has_negative_target_curvature_where_the_rules_differ():
    """The exact Hessian diagonal of a tanh layer goes negative (a ReLU network's never
    does), so there the two rules reset different entries."""
    from fubench_builtins.tis_reset import aggregate, client_curvature

    from fubench import Split

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    x, y = torch.randn(60, 4), torch.randint(0, 3, (60,))
    forget = torch.zeros(60, dtype=torch.bool)
    forget[:15] = True
    report = client_curvature(model, Split(x, y), forget, "diag_hessian")
    h, h_prime = aggregate([report])
    assert any(bool((v < 0).any()) for v in h_prime.values())
    zero = target_information_score(h, h_prime, "zero")
    square = target_information_score(h, h_prime, "square")
    assert any(not torch.equal(zero[k], square[k]) for k in zero)


# ------------------------------------------------------------------ distillation
def test_distillation_distils_on_the_shifted_server_data_when_asked(tmp_path):
    shifted = torch.randn(8, 2)
    ctx = context(Weights(2), write_history(tmp_path), "none", server=torch.zeros(8, 2))
    ctx.server_data_shifted = shifted
    method = Distillation(server_data="shifted")
    assert method.server_inputs(ctx) is shifted
    assert Distillation().server_inputs(ctx) is ctx.server_data
    ctx.server_data_shifted = None
    with pytest.raises(NotApplicable, match="dataset.server_shifted"):
        Distillation(server_data="shifted").unlearn(ctx)
    assert Distillation.variants == ("server_data",)
    assert Distillation.caveat({"server_data": "shifted"}) == "server data from another data set"
    assert Distillation.caveat({"server_data": "reserve"}) is None


class TinyColumns(DatasetLoader):
    """Synthetic 16x16 images whose class is a bright column: another distribution than
    tiny_images' rows, for the shifted server data (tests only)."""

    name = "tiny_columns"
    n_classes = 10
    parameters = {"n": 300, "size": 16}

    def load(self, root):
        g = torch.Generator().manual_seed(1)
        y = torch.arange(self.n) % 10
        x = torch.rand(self.n, 1, self.size, self.size, generator=g) * 0.2
        x[torch.arange(self.n), 0, 1:-1, y % self.size] = 1.0
        return Dataset("tiny_columns", "synthetic (tests only)", x, y, None, None, 10)


class TinyTable(DatasetLoader):
    name = "tiny_table"
    n_classes = 2
    modality = "tabular"

    def load(self, root):  # pragma: no cover - only its modality is read
        raise NotImplementedError


@fubench.hookimpl
def fubench_datasets():
    return [TinyColumns, TinyTable]


SHIFTED_PLUGIN = types.ModuleType("fubench_test_shifted")
SHIFTED_PLUGIN.fubench_datasets = fubench_datasets


@pytest.fixture
def registry():
    found = load_registry(extra_plugins=[TEST_PLUGIN, SHIFTED_PLUGIN])
    reset_registry(found)
    return found


def scenario(write_yaml, registry, dataset: str):
    text = BACKDOOR_YAML.format(name="shift", dataset="tiny_images", rounds=1)
    text = text.replace("test_fraction: 0.3}", f"test_fraction: 0.3, {dataset}}}")
    return load_scenario(write_yaml(text, "shift.yaml"), registry)


def test_server_shifted_holds_as_many_inputs_of_another_data_set(write_yaml, registry):
    from fubench import data as datasets

    config = scenario(
        write_yaml,
        registry,
        "server_fraction: 0.1, server_from: test, server_shifted: tiny_columns",
    )
    assert config.resolved()["dataset"]["server_shifted"] == {
        "name": "tiny_columns",
        "n": 300,
        "size": 16,
    }
    data = datasets.load(config, registry)
    assert data.x_server_shifted.shape == data.x_server.shape
    columns = TinyColumns().load(None).x_train
    rows = {tuple(r.flatten().tolist()) for r in columns}
    assert all(tuple(r.flatten().tolist()) in rows for r in data.x_server_shifted)
    assert f"shifted server data: {len(data.x_server)} unlabeled tiny_columns" in data.source
    same = "server_fraction: 0.1, server_from: test"
    plain = datasets.load(scenario(write_yaml, registry, same), registry)
    assert plain.x_server_shifted is None
    assert fingerprint(data) != fingerprint(plain)
    # the choice depends on the split seed alone: every run seed sees the same inputs
    again = shifted_server_inputs(plain, TinyColumns().load(None), config.split_seed)
    assert torch.equal(again.x_server_shifted, data.x_server_shifted)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("server_shifted: tiny_columns", "only used with server_fraction > 0"),
        ("server_fraction: 0.1, server_shifted: tiny_images", "another data set than"),
        ("server_fraction: 0.1, server_shifted: tiny_table", "holds tabular data"),
        ("server_fraction: 0.1, server_shifted: tiny_colums", "tiny_columns"),
    ],
)
def test_server_shifted_mistakes_are_one_line(write_yaml, registry, given, message):
    with pytest.raises(ConfigError, match=message) as info:
        scenario(write_yaml, registry, given)
    assert "dataset.server_shifted" in str(info.value) and "\n" not in str(info.value)


def test_server_shifted_of_another_shape_is_refused(registry):
    data = TinyColumns().load(None)
    data = reserve_for_server(data, 0.1, "train", 0)
    other = TinyColumns(size=12).load(None)
    with pytest.raises(FubenchError, match=r"shaped \(1, 12, 12\).*expected the same shape"):
        shifted_server_inputs(data, other, 0)


# ------------------------------------------------------------------- FedRecovery
def test_fedrecovery_rows_say_their_sigma_is_not_dp_calibrated():
    assert FedRecovery.caveat({"noise": "sigma", "sigma": 0.02}) == "σ not DP-calibrated"
    assert FedRecovery.caveat({"noise": "dp_calibrated"}) is None
    assert Unlearner.caveat({}) is None  # the default: nothing to add


# ----------------------------------------------------------------- budget_retrain
def test_budget_rounds_are_the_budgets_share_of_the_reference_rounds():
    assert budget_rounds(0.25, 20) == 5
    assert budget_rounds(0.5, 15) == 8  # round half to even: 7.5 -> 8
    assert budget_rounds(0.05, 6) == 1  # at least one round
    assert budget_rounds(1.0, 6) == 6


def test_budget_retrain_retrains_from_the_initial_model_within_its_budget():
    stage = KIT.stage("client")
    job = stage.job
    full = job.run_method(MethodSpec("budget_retrain", {"work_ratio": 1.0}))
    part = job.run_method(MethodSpec("budget_retrain", {"work_ratio": 0.34}))
    assert full.status == "ok" and part.status == "ok", (full.error, part.error)
    assert part.clients == set(job.context("budget_retrain").federation.retained_clients)
    # 1 of the 3 rounds on the retained data: a third of the full budget's work
    assert part.info.work == pytest.approx(full.info.work / 3, rel=1e-9)
    assert BudgetRetrain.baseline and not BudgetRetrain.reference
    # the whole budget on the retained data is retraining (the client kind's reference
    # data are the retained data): the same model, trained from the same start
    reference = job.reference.model.state_dict()
    for key, value in full.model.state_dict().items():
        assert torch.allclose(value, reference[key])


def test_declarations_are_checked():
    class Both(BudgetRetrain):
        reference = True
        variants = ("nope",)

    problems = declaration_problems(Both)
    assert "variants names no parameter: 'nope'" in problems
    assert "a method is the reference or a baseline, not both" in problems
    assert declaration_problems(BudgetRetrain) == []
