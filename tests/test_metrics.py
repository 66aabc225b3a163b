"""Every metric on hand-made inputs, including the cases where it is undefined.

Models here are tiny hand-written functions whose outputs are known, so each expected
value can be worked out by hand."""

from __future__ import annotations

import pytest
import torch
from fubench_builtins.metrics_feature import attribute_codes, feature_sensitivity, inversion_success
from fubench_builtins.metrics_privacy import membership_attack_accuracy, mia_pairs
from torch import nn
from torch.nn import functional as F

from fubench import ForgetRequest, RegionFeature, RowInfo, ScenarioSetup, Split
from fubench.evaluation import Evaluation
from fubench.plugins import get_registry


class Echo(nn.Module):
    """Predicts the label written in feature 0; feature 1 (if any) scales the confidence."""

    def __init__(self, n_classes: int = 3, confidence_from_x1: bool = False):
        super().__init__()
        self.n_classes = n_classes
        self.confidence_from_x1 = confidence_from_x1

    def forward(self, x):
        logits = F.one_hot(x[:, 0].long(), self.n_classes).float()
        scale = 1.0 + 9.0 * x[:, 1:2] if self.confidence_from_x1 else 5.0
        return logits * scale


def split(pred, y, extra=None):
    x = torch.tensor(pred, dtype=torch.float).unsqueeze(1)
    if extra is not None:
        x = torch.cat([x, torch.tensor(extra, dtype=torch.float).unsqueeze(1)], 1)
    return Split(x, torch.tensor(y))


def evaluation(
    eval_sets,
    row="m",
    info=None,
    model=None,
    target_class=None,
    refs=None,
    feature_mask=None,
    attack_seed=None,
):
    setup = ScenarioSetup(
        train=[],
        retained=[],
        request=ForgetRequest((0,), {}, target_class=target_class, feature_mask=feature_mask),
        eval_sets=eval_sets,
        default_metrics=[],
        attack_seed=attack_seed,
    )
    return Evaluation(row, model or Echo(), setup, get_registry().metrics, info, refs, "retrain")


def with_refs(own: dict, original: dict, retrain: dict) -> Evaluation:
    """A row whose metric values (and those of original / the reference) are given."""
    refs: dict = {}
    for row, label, values in (
        ("original", "original", original),
        ("reference", "retrain", retrain),
    ):
        refs[row] = evaluation({}, label, RowInfo(reported=values), refs=refs)
    return evaluation({}, "m", RowInfo(reported=own), refs=refs)


# ------------------------------------------------------------------- accuracy family


def test_accuracies_count_correct_predictions():
    ev = evaluation({"test": split([0, 1, 2, 2], [0, 1, 2, 0]), "forget": split([1, 1], [1, 0])})
    assert ev.value("test_acc") == pytest.approx(0.75)
    assert ev.value("target_acc") == pytest.approx(0.5)


def test_accuracy_of_an_empty_set_is_undefined():
    ev = evaluation({"test": split([0], [0]), "forget": split([], [])})
    assert ev.value("target_acc") is None


def test_nta_and_rtr_divide_by_retrain():
    ev = with_refs(
        {"test_acc": 0.6, "seconds": 3.0},
        {"test_acc": 0.9, "seconds": 20.0},
        {"test_acc": 0.8, "seconds": 12.0},
    )
    assert ev.value("nta") == pytest.approx(0.75)
    assert ev.value("rtr") == pytest.approx(0.25)


def test_nta_and_rtr_undefined_when_retrain_is_zero():
    ev = with_refs(
        {"test_acc": 0.6, "seconds": 3.0},
        {"test_acc": 0.9, "seconds": 9.0},
        {"test_acc": 0.0, "seconds": 0.0},
    )
    assert ev.value("nta") is None
    assert ev.value("rtr") is None


def test_nfs():
    ev = with_refs({"target_acc": 0.5}, {"target_acc": 0.9}, {"target_acc": 0.1})
    assert ev.value("nfs") == pytest.approx(0.5)
    same = with_refs({"target_acc": 0.5}, {"target_acc": 0.9}, {"target_acc": 0.9})
    assert same.value("nfs") is None


def test_cost_metrics_read_the_run_info():
    ev = evaluation(
        {}, info=RowInfo(seconds=2.5, clients=(0, 2, 4), comm_rounds=4, comm_bytes=1024)
    )
    assert ev.values(["seconds", "clients_involved", "comm_rounds", "comm_bytes"]) == {
        "seconds": 2.5,
        "clients_involved": 3,
        "comm_rounds": 4,
        "comm_bytes": 1024,
    }


def test_asr_and_backdoor_accuracy():
    # triggered images of true labels 0, 1, 1, 2; target class 2
    ev = evaluation({"backdoor": split([2, 2, 1, 0], [0, 1, 1, 2])}, target_class=2)
    assert ev.value("asr") == pytest.approx(0.5)
    assert ev.value("backdoor_acc") == pytest.approx(0.25)


def test_bias_metrics():
    ev = evaluation(
        {"biased": split([0, 1, 2, 2], [0, 1, 2, 2]), "unbiased": split([0, 0, 0, 2], [0, 1, 2, 2])}
    )
    assert ev.value("biased_acc") == pytest.approx(1.0)
    assert ev.value("unbiased_acc") == pytest.approx(0.5)
    assert ev.value("bias_gap") == pytest.approx(0.5)
    assert evaluation({"test": split([0], [0])}).value("bias_gap") is None


# ------------------------------------------------------------------ membership inference


def _members_and_pool(n=120, n_classes=3):
    """Members (flag 1) and test samples (flag 0), labels cycling through the classes."""
    y = torch.arange(n) % n_classes
    members = split(y.tolist(), y.tolist(), [1.0] * n)
    pool = split(y.tolist(), y.tolist(), [0.0] * n)
    return members, pool


def test_mia_pairs_are_balanced_label_matched_disjoint_and_repeatable():
    members = split([0] * 30 + [1] * 10, [0] * 30 + [1] * 10)
    pool = split([0] * 50 + [1] * 4, [0] * 50 + [1] * 4)  # only 4 non-members of label 1
    pairs = mia_pairs(members, pool, seed=3)
    for part in ("fit", "eval"):
        inside, outside = pairs[f"{part}_in"], pairs[f"{part}_out"]
        assert len(inside) == len(outside)
        assert sorted(members.y[inside].tolist()) == sorted(pool.y[outside].tolist())
    assert set(pairs["fit_in"].tolist()).isdisjoint(pairs["eval_in"].tolist())
    assert set(pairs["fit_out"].tolist()).isdisjoint(pairs["eval_out"].tolist())
    assert int((members.y[pairs["eval_in"]] == 1).sum()) == 2  # 4 usable pairs, halved
    again = mia_pairs(members, pool, seed=3)
    assert all(torch.equal(pairs[k], again[k]) for k in pairs)


def test_mia_finds_a_memorised_forget_set():
    members, pool = _members_and_pool()
    model = Echo(confidence_from_x1=True)  # confident on members only
    assert membership_attack_accuracy(model, members, pool, seed=0) == pytest.approx(1.0)


def test_mia_is_chance_when_the_model_treats_members_like_strangers():
    members, pool = _members_and_pool()
    # identical outputs for members and non-members of a label: the attack must say the
    # same for both, and each label has as many of each, so exactly half are right
    assert membership_attack_accuracy(Echo(), members, pool, seed=0) == pytest.approx(0.5)


def test_mia_is_undefined_without_enough_pairs():
    members, pool = _members_and_pool(n=6)
    assert membership_attack_accuracy(Echo(), members, pool, seed=0) is None


def test_mia_metric_is_deterministic_for_a_seed():
    members, pool = _members_and_pool()
    guesses = torch.randint(0, 3, (120,), generator=torch.Generator().manual_seed(1))
    confidence = torch.rand(120, generator=torch.Generator().manual_seed(2))
    noisy = split(guesses.tolist(), pool.y.tolist(), confidence.tolist())
    sets = {"forget": members, "test": noisy}
    model = Echo(confidence_from_x1=True)
    values = [evaluation(sets, model=model, attack_seed=7).value("mia_acc") for _ in range(2)]
    assert values[0] == values[1]


def test_nfs_mia_and_its_undefined_case():
    ev = with_refs({"mia_acc": 0.6}, {"mia_acc": 0.7}, {"mia_acc": 0.5})
    assert ev.value("nfs_mia") == pytest.approx(0.5)
    flat = with_refs({"mia_acc": 0.6}, {"mia_acc": 0.52}, {"mia_acc": 0.515})
    assert flat.value("nfs_mia") is None


# ---------------------------------------------------------------------- feature metrics


class Linear(nn.Module):
    def __init__(self, weights):
        super().__init__()
        self.w = torch.tensor(weights, dtype=torch.float)

    def forward(self, x):
        return x @ self.w


def test_feature_sensitivity_is_zero_for_an_unused_feature_and_grows_with_use():
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    mask = RegionFeature(torch.tensor([False, False, True]))
    unused = Linear([[1.0, -1.0], [0.5, 0.2], [0.0, 0.0]])
    weak = Linear([[1.0, -1.0], [0.5, 0.2], [0.1, -0.1]])
    strong = Linear([[1.0, -1.0], [0.5, 0.2], [1.0, -1.0]])
    assert feature_sensitivity(unused, x, mask, seed=0) == pytest.approx(0.0, abs=1e-7)
    strong_value = feature_sensitivity(strong, x, mask, seed=0)
    assert 0 < feature_sensitivity(weak, x, mask, seed=0) < strong_value
    assert feature_sensitivity(strong, x, mask, seed=0) == strong_value  # same seed


def test_feature_sensitivity_undefined_cases():
    model = Linear([[1.0], [1.0]])
    assert (
        feature_sensitivity(model, torch.zeros(0, 2), RegionFeature(torch.tensor([True, False])), 0)
        is None
    )
    assert (
        feature_sensitivity(model, torch.ones(4, 2), RegionFeature(torch.tensor([False, False])), 0)
        is None
    )


def test_feature_sensitivity_metric_uses_the_request_mask():
    x = torch.randn(20, 3, generator=torch.Generator().manual_seed(0))
    data = Split(x, torch.zeros(20, dtype=torch.long))
    model = Linear([[1.0, -1.0], [0.5, 0.2], [0.0, 0.0]])
    only_unused = evaluation(
        {"forget": data}, model=model, feature_mask=torch.tensor([False, False, True])
    )
    assert only_unused.value("feature_sensitivity") == pytest.approx(0.0, abs=1e-7)
    whole = evaluation({"forget": data}, model=model)  # no mask: the whole input
    assert whole.value("feature_sensitivity") > 0


def test_attribute_codes():
    x = torch.tensor([[0.0, 1.0, 0.0, 5.0], [1.0, 0.0, 0.0, -5.0], [0.0, 0.0, 1.0, 2.0]])
    onehot = torch.tensor([True, True, True, False])
    assert attribute_codes(x, onehot, x).tolist() == [1, 0, 2]
    column = torch.tensor([False, False, False, True])
    assert attribute_codes(x, column, x).tolist() == [2, 0, 1]  # rank among 3 levels
    images = torch.zeros(4, 1, 2, 2)
    images[:2, 0, 0, 0] = 1.0
    region = torch.zeros(1, 2, 2, dtype=torch.bool)
    region[0, 0, 0] = True
    assert attribute_codes(images, region, images).tolist() == [1, 1, 0, 0]


class Leaky(nn.Module):
    """Predicts class 1 exactly when the secret column 0 is 1 (leaks it)."""

    def forward(self, x):
        return torch.stack([1 - x[:, 0], x[:, 0]], 1) * 5


class Blind(nn.Module):
    """Ignores the secret column."""

    def forward(self, x):
        return torch.stack([x[:, 1], -x[:, 1]], 1)


def _secret_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    secret = torch.randint(0, 2, (n,), generator=g).float()
    x = torch.stack([secret, torch.randn(n, generator=g), torch.randn(n, generator=g)], 1)
    return Split(x, torch.randint(0, 2, (n,), generator=g))  # labels independent of it


def test_inversion_succeeds_on_a_leaking_model_and_not_on_a_blind_one():
    aux, target = _secret_data(300, 0), _secret_data(200, 1)
    mask = torch.tensor([True, False, False])
    assert inversion_success(Leaky(), aux, target, mask, seed=0) > 0.95
    assert 0.35 < inversion_success(Blind(), aux, target, mask, seed=0) < 0.65


def test_inversion_metric_is_undefined_without_target_records():
    aux = _secret_data(50, 0)
    ev = evaluation(
        {"test": aux, "forget": aux.subset(torch.zeros(50, dtype=torch.bool))},
        model=Leaky(),
        feature_mask=torch.tensor([True, False, False]),
    )
    assert ev.value("inversion_asr") is None
