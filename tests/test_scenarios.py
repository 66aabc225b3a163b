"""Construction of the class, client, sensitive and bias scenario kinds, their
preconditions, the tabular data sets and the scenario files.

Unit tests build scenarios on small synthetic tensors (never used by `fubench run`)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fubench_builtins.bias import PALETTE, BiasFeature, ColouredMNIST, balanced_colours
from fubench_builtins.class_unlearning import ClassUnlearning
from fubench_builtins.client_unlearning import ClientUnlearning
from fubench_builtins.datasets import stratified_subset
from fubench_builtins.datasets_tabular import Adult, Fair
from fubench_builtins.partitioners import IID, Dirichlet, Preferential
from fubench_builtins.sensitive import SensitiveFeature

from fubench import ConfigContext, Dataset, ForgetRequest, RowInfo, ScenarioSetup
from fubench.config.validate import load_scenario
from fubench.errors import ConfigError, DataUnavailable
from fubench.evaluation import Evaluation
from fubench.plugins import get_registry

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 200, channels: int = 1, n_classes: int = 10, seed: int = 0) -> Dataset:
    g = gen(seed)
    y = torch.arange(n) % n_classes
    x = torch.rand(n, 1, 8, 8, generator=g).expand(-1, channels, -1, -1).contiguous()
    return Dataset("synthetic", "tests only", x, y, x[:50].clone(), y[:50].clone(), n_classes)


def tabular(n: int = 120) -> Dataset:
    g = gen(1)
    x = torch.randn(n, 5, generator=g)
    y = torch.randint(0, 2, (n,), generator=g)
    names = ["age", "status=a", "status=b", "status=c", "hours"]
    return Dataset(
        "table",
        "tests only",
        x,
        y,
        x[:30].clone(),
        y[:30].clone(),
        2,
        modality="tabular",
        feature_names=names,
    )


def context(**extra):
    return ConfigContext(
        **{"n_classes": 10, "clients": 5, "modality": "image", "dataset": "d", **extra}
    )


def problems(kind, **params):
    full = {k: (v.default if hasattr(v, "default") else v) for k, v in kind.parameters.items()}
    full.update(params)
    ctx = params.pop("_context", None) or context()
    full.pop("_context", None)
    return dict(kind.validate_config(full, ctx))


def with_metrics(original: dict, retrain: dict) -> tuple[Evaluation, Evaluation]:
    setup = ScenarioSetup([], [], ForgetRequest((0,), {}), {}, [])
    refs: dict = {}
    for row, label, values in (
        ("original", "original", original),
        ("reference", "retrain", retrain),
    ):
        refs[row] = Evaluation(
            label, None, setup, get_registry().metrics, RowInfo(reported=values), refs, "retrain"
        )
    return refs["original"], refs["reference"]


# ----------------------------------------------------------------------------- class


def test_class_forget_selects_exactly_the_class_on_every_client():
    data = images()
    parts = IID().partition(data.y_train, 4, gen())
    setup = ClassUnlearning(target_class=3).build(data, parts, gen())
    total = 0
    for c, train in enumerate(setup.train):
        mask = setup.request.forget_masks.get(c, torch.zeros(len(train), dtype=torch.bool))
        assert torch.equal(mask, train.y == 3)
        assert not bool((setup.retained[c].y == 3).any())
        assert len(setup.retained[c]) == len(train) - int(mask.sum())
        total += int(mask.sum())
    assert total == int((data.y_train == 3).sum()) == len(setup.eval_sets["forget"])


def test_class_with_preferential_partition_forgets_the_owners_class_only():
    data = images()
    parts = Preferential().partition(data.y_train, 5, gen())  # client c owns class 5 + c
    setup = ClassUnlearning(target_class=9).build(data, parts, gen())
    assert setup.request.clients == (4,)
    assert int(setup.request.forget_masks[4].sum()) == int((data.y_train == 9).sum())


def test_class_forget_client_removes_the_holder_entirely():
    data = images()
    parts = Preferential().partition(data.y_train, 5, gen())
    setup = ClassUnlearning(target_class=7, forget="client").build(data, parts, gen())
    assert setup.request.clients == (2,)  # owner of class 7
    assert bool(setup.request.forget_masks[2].all())
    assert len(setup.retained[2]) == 0
    assert all(len(setup.retained[c]) == len(setup.train[c]) for c in (0, 1, 3, 4))


def test_class_config_errors():
    assert "target_class" in problems(ClassUnlearning, target_class=10)
    assert "client" in problems(ClassUnlearning, client=7, forget="client")
    assert "client" in problems(ClassUnlearning, client=1)  # client without forget: client
    assert problems(ClassUnlearning, target_class=9) == {}


def test_class_precondition_failure_is_reported():
    assert ClassUnlearning().check(*with_metrics({"target_acc": 0.95}, {"target_acc": 0.0})) == []
    warnings = ClassUnlearning().check(*with_metrics({"target_acc": 0.2}, {"target_acc": 0.1}))
    assert len(warnings) == 1 and "PRECONDITION FAILED" in warnings[0]


# ---------------------------------------------------------------------------- client


@pytest.mark.parametrize("partitioner", [IID(), Dirichlet(alpha=0.8, min_size=5)])
def test_client_forget_is_the_whole_client(partitioner):
    data = images()
    parts = partitioner.partition(data.y_train, 4, gen())
    setup = ClientUnlearning(client=2).build(data, parts, gen())
    assert setup.request.clients == (2,)
    assert bool(setup.request.forget_masks[2].all())
    assert torch.equal(setup.eval_sets["forget"].x, data.x_train[parts[2]])
    assert len(setup.retained[2]) == 0 and setup.retained[2].x.shape[1:] == data.x_train.shape[1:]
    for c in (0, 1, 3):
        assert torch.equal(setup.retained[c].x, setup.train[c].x)
    assert sum(len(t) for t in setup.train) == len(data.y_train)
    assert setup.attack_seed is not None


def test_client_config_errors_and_precondition():
    assert "client" in problems(ClientUnlearning, client=5)
    assert "client" in problems(ClientUnlearning, _context=context(clients=1), client=0)
    kind = ClientUnlearning()
    original, retrain = with_metrics({"mia_acc": 0.51}, {"mia_acc": 0.5})
    original.setup.request = ForgetRequest((0,), {})
    assert "PRECONDITION FAILED" in kind.check(original, retrain)[0]
    assert kind.check(*with_metrics({"mia_acc": 0.7}, {"mia_acc": 0.5})) == []


# ------------------------------------------------------------------------- sensitive


def test_sensitive_region_mask_and_noise_only_there_only_for_the_client():
    data = images()
    parts = IID().partition(data.y_train, 3, gen())
    kind = SensitiveFeature(client=1, region=[2, 3, 4, 2])
    setup = kind.build(data, parts, gen())
    mask = setup.request.feature_mask
    expected = torch.zeros(1, 8, 8, dtype=torch.bool)
    expected[:, 2:6, 3:5] = True
    assert torch.equal(mask, expected)
    assert bool(setup.request.forget_masks[1].all())
    noised, clean = setup.reference[1].x, setup.train[1].x
    assert torch.equal(noised[:, ~mask], clean[:, ~mask])
    assert not bool(torch.isclose(noised[:, mask], clean[:, mask]).all())
    for c in (0, 2):
        assert torch.equal(setup.reference[c].x, setup.train[c].x)
        assert torch.equal(setup.retained[c].x, setup.train[c].x)
    assert len(setup.retained[1]) == 0, "methods: every sample of the client has the feature"
    assert torch.equal(setup.eval_sets["forget"].x, clean)


def test_sensitive_noise_scope_all_noises_every_client():
    data = images()
    parts = IID().partition(data.y_train, 3, gen())
    setup = SensitiveFeature(client=0, region=[0, 0, 2, 2], noise_scope="all").build(
        data, parts, gen()
    )
    mask = setup.request.feature_mask
    for c in range(3):
        assert not torch.equal(setup.reference[c].x[:, mask], setup.train[c].x[:, mask])


def test_sensitive_columns_select_a_one_hot_group():
    data = tabular()
    parts = IID().partition(data.y_train, 2, gen())
    setup = SensitiveFeature(client=0, columns=["status"]).build(data, parts, gen())
    assert setup.request.feature_mask.tolist() == [False, True, True, True, False]
    with pytest.raises(ValueError, match="no feature 'marital'"):
        SensitiveFeature(client=0, columns=["marital"]).build(data, parts, gen())
    with pytest.raises(ValueError, match="does not fit"):
        SensitiveFeature(client=0, region=[6, 6, 4, 4]).build(images(), parts, gen())


def test_sensitive_config_errors_and_precondition():
    assert "region" in problems(SensitiveFeature)
    assert "columns" in problems(SensitiveFeature, _context=context(modality="tabular"))
    assert "region" in problems(SensitiveFeature, region=[1, 2, 3])
    assert "region" in problems(
        SensitiveFeature, _context=context(modality="tabular"), region=[0, 0, 1, 1], columns=["a"]
    )
    assert problems(SensitiveFeature, region=[0, 0, 4, 4]) == {}
    kind = SensitiveFeature(region=[0, 0, 2, 2])
    assert (
        kind.check(*with_metrics({"feature_sensitivity": 1.0}, {"feature_sensitivity": 0.1})) == []
    )
    warnings = kind.check(
        *with_metrics({"feature_sensitivity": 1.0}, {"feature_sensitivity": 0.95})
    )
    assert "PRECONDITION FAILED" in warnings[0] and "noise_scope: all" in warnings[0]


# ------------------------------------------------------------------------------ bias


def colour_of(x: torch.Tensor) -> torch.Tensor:
    """Index into PALETTE of each coloured image (the channel ratios of its brightest pixel)."""
    flat = x.flatten(2)
    brightest = flat.sum(1).argmax(1)
    rgb = flat[torch.arange(len(x)), :, brightest]
    rgb = rgb / rgb.max(1, keepdim=True).values
    return torch.cdist(rgb, PALETTE / PALETTE.max(1, keepdim=True).values).argmin(1)


def test_bias_colours_exactly_the_ratio_and_rebalances_retrain():
    data = images(n=400, channels=3)
    parts = IID().partition(data.y_train, 4, gen())
    setup = BiasFeature(client=1, bias_ratio=0.8).build(data, parts, gen())
    biased = setup.train[1]
    aligned = colour_of(biased.x) == biased.y
    assert int(aligned.sum()) == round(0.8 * len(biased)) == setup.info["aligned_samples"]
    assert bool(setup.request.forget_masks[1].all())
    for c in (0, 2, 3):  # the other clients stay grey (channels equal)
        x = setup.train[c].x
        assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])
    rebalanced = colour_of(setup.retained[1].x)
    for label in range(10):
        counts = torch.bincount(rebalanced[setup.retained[1].y == label], minlength=10)
        assert int(counts.max() - counts.min()) <= 1
    test = setup.eval_sets
    assert bool((colour_of(test["biased"].x) == test["biased"].y).all())
    assert not bool((colour_of(test["unbiased"].x) == test["unbiased"].y).any())


def test_balanced_colours_are_independent_of_the_label():
    labels = torch.arange(100) % 10
    colours = balanced_colours(labels, gen())
    for label in range(10):
        assert sorted(colours[labels == label].tolist()) == list(range(10))


def test_bias_needs_three_channels_and_reports_a_missing_bias():
    parts = IID().partition(torch.arange(200) % 10, 2, gen())
    with pytest.raises(ValueError, match="3-channel"):
        BiasFeature().build(images(channels=1), parts, gen())
    assert "kind" in problems(BiasFeature, _context=context(modality="tabular"))
    kind = BiasFeature()
    assert kind.check(*with_metrics({"bias_gap": 0.3}, {"bias_gap": 0.0})) == []
    assert (
        "PRECONDITION FAILED" in kind.check(*with_metrics({"bias_gap": 0.01}, {"bias_gap": 0.0}))[0]
    )


# ---------------------------------------------------------------------------- data sets


def test_stratified_subset_keeps_class_shares():
    y = torch.cat([torch.zeros(600), torch.ones(300), torch.full((100,), 2)]).long()
    data = Dataset("d", "src", torch.arange(1000).float().unsqueeze(1), y, None, None, 3)
    small = stratified_subset(data, 100)
    assert torch.bincount(small.y_train).tolist() == [60, 30, 10]
    assert "stratified subset of 100" in small.source
    assert torch.equal(stratified_subset(data, 100).x_train, small.x_train)  # fixed choice
    assert stratified_subset(data, None) is data


def test_fair_is_real_tabular_data(tmp_path):
    data = Fair().load(tmp_path)
    assert data.modality == "tabular" and data.x_train.shape == (6366, 8)
    assert "religious" in data.feature_names and "statsmodels" in data.source
    assert 0.3 < float(data.y_train.float().mean()) < 0.35


def test_adult_offline_says_how_to_get_it(tmp_path):
    with pytest.raises(DataUnavailable, match="adult.data.*put them in"):
        Adult(download=False).load(tmp_path)


ADULT_ROWS = [
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, "
    "Male, 2174, 0, 40, United-States, <=50K",
    "50, Self-emp-not-inc, 83311, Bachelors, 13, Married-civ-spouse, Exec-managerial, "
    "Husband, White, Male, 0, 0, 13, United-States, >50K",
    "38, ?, 215646, HS-grad, 9, Divorced, Handlers-cleaners, Not-in-family, White, Male, 0, "
    "0, 40, United-States, <=50K",
]


def test_adult_reads_uci_files(tmp_path):
    """The UCI file format (a test file with a header line and labels ending in '.')."""
    folder = tmp_path / "adult"
    folder.mkdir()
    (folder / "adult.data").write_text("\n".join(ADULT_ROWS[:2]) + "\n")
    test_rows = [
        ADULT_ROWS[2],
        ADULT_ROWS[1].replace(">50K", ">50K."),
        ADULT_ROWS[0].replace("<=50K", "<=50K."),
    ]
    (folder / "adult.test").write_text("|1x3 Cross validator\n" + "\n".join(test_rows) + "\n")
    data = Adult(download=False).load(tmp_path)
    assert data.y_train.tolist() == [0, 1]
    assert data.y_test.tolist() == [1, 0]  # the row with '?' is dropped
    names = data.feature_names
    assert {"marital-status=Never-married", "marital-status=Married-civ-spouse"} <= set(names)
    assert data.x_train.shape[1] == len(names) and data.modality == "tabular"


def test_cmnist_is_three_grey_channels(monkeypatch):
    grey = images(n=20)
    monkeypatch.setattr("fubench_builtins.datasets.MNIST.load", lambda self, root: grey)
    data = ColouredMNIST().load(None)
    assert data.x_train.shape[1] == 3 and torch.equal(data.x_train[:, 0], data.x_train[:, 2])
    assert data.name == "cmnist" and "3 channels" in data.source


# ------------------------------------------------------------------------ scenario files


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_scenario_files_validate_and_are_named_kind_dataset(path):
    config = load_scenario(path)
    assert config.version == 1 and config.name == path.stem
    assert path.stem.startswith(config.kind + "_")
    assert {"retrain", "finetune"} <= {m.name for m in config.methods}
    assert path.read_text().startswith("#")  # the header says what the paper used


def test_scenario_validation_reports_a_bad_kind_parameter(write_yaml):
    text = (
        (SCENARIOS / "class_fmnist.yaml").read_text().replace("target_class: 9", "target_class: 12")
    )
    with pytest.raises(ConfigError, match="scenario.target_class"):
        load_scenario(write_yaml(text))
