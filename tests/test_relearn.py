"""The relearning attack (``relearn``, ``relearn_ratio``): known answers on a tiny
backdoor the original learned and the gold standard never saw, what the attack trains
on and measures on, that it changes nothing it is given, and the same budget for every
row."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from fubench_builtins import metrics_relearn
from fubench_builtins.metrics_relearn import Relearn, RelearnRatio, attack_split, draw
from torch import nn

import fubench
import fubench.testing
from fubench import ForgetRequest, ScenarioSetup, Split
from fubench.evaluation import Evaluation
from fubench.plugins import get_registry
from fubench.report.table import aggregate
from tests.test_ranking_claims import seeds

#: FedAvg rounds after which the kit's tiny backdoor has taken and retrain's ASR is low
KIT = fubench.testing.Kit(rounds=6)


@pytest.fixture(scope="module")
def backdoor():
    stage = KIT.stage("backdoor")
    assert stage.ok, stage.problems
    return stage


def rows(stage):
    """original, the gold standard and a third model, as Evaluations of one seed."""
    refs = stage.refs
    other = Evaluation(
        "other",
        fubench.testing.tiny.tiny_model(stage.setup.eval_sets["test"].x.shape[1:], 10),
        stage.setup,
        KIT.registry.metrics,
        references=refs,
        reference_name=stage.job.reference_name,
    )
    return {"original": refs["original"], "reference": refs["reference"], "other": other}


# ------------------------------------------------------------------ known answers


def test_every_builtin_kind_declares_its_behaviour_and_lists_the_attack():
    expected = {
        "backdoor": "asr",
        "class": "target_acc",
        "client": "target_acc",
        "sample": "target_acc",
        "sensitive": "feature_sensitivity",
        "bias": "bias_gap",
    }
    for kind, behaviour in expected.items():
        instance, modality, _ = KIT.kind_instance(kind)
        setup = KIT.job(kind, instance, modality).setup  # built, not trained
        assert setup.forgotten_behaviour == behaviour, kind  # the harness carries it
        assert {"relearn", "relearn_ratio"} <= set(setup.default_metrics), kind


def test_the_gold_standard_scores_exactly_the_ideal(backdoor):
    reference = backdoor.refs["reference"]
    assert reference.value("relearn") is not None and reference.value("relearn") > 0
    assert reference.value("relearn_ratio") == 1.0
    assert RelearnRatio.ideal == 1.0 and Relearn.ideal == fubench.REFERENCE


def test_the_original_relearns_far_faster_than_the_gold_standard(backdoor):
    original, reference = backdoor.refs["original"], backdoor.refs["reference"]
    # the scenario happened: the original learned the backdoor, the gold standard did not
    assert original.value("asr") > 0.8 and reference.value("asr") < 0.3
    assert original.value("relearn") > 0.8
    assert original.value("relearn_ratio") > 1.5


def test_a_model_that_learned_nothing_does_not_beat_the_gold_standard():
    """relearn_ratio ranks by the distance to 1: relearning less than the gold
    standard (a damaged model) is no better than relearning more."""
    results = seeds(
        lambda s: {
            "original": {"relearn": 0.99, "relearn_ratio": 3.3 + s / 100},
            "retrain": {"relearn": 0.30 + s / 100, "relearn_ratio": 1.0},
            "damaged": {"relearn": 0.0, "relearn_ratio": 0.0},
            "close": {"relearn": 0.36, "relearn_ratio": 1.2},
        },
        kind="backdoor",
    )
    from fubench.report import leaderboard as lb

    (section,) = lb.build_sections(results, get_registry())
    assert section.ranked_columns == ["relearn_ratio"], "the raw twin is not ranked beside it"
    assert section.ranks["close"] < section.ranks["damaged"]


def test_the_ratio_is_undefined_where_the_attack_cannot_tell_original_from_retrain():
    """A ratio of two relearned values within the seeds' noise measures nothing."""
    noise = {0: (0.40, 0.42), 1: (0.45, 0.41), 2: (0.39, 0.43)}
    results = seeds(
        lambda s: {
            "original": {"relearn": noise[s][0], "relearn_ratio": noise[s][0] / noise[s][1]},
            "retrain": {"relearn": noise[s][1], "relearn_ratio": 1.0},
            "m": {"relearn": 0.41, "relearn_ratio": 1.0},
        }
    )
    (table,) = aggregate(results, get_registry())
    assert "relearn_ratio" in table.undefined and "relearn" in table.undefined["relearn_ratio"]
    clear = seeds(
        lambda s: {
            "original": {"relearn": 0.99, "relearn_ratio": 3.0},
            "retrain": {"relearn": 0.30 + s / 50, "relearn_ratio": 1.0},
            "m": {"relearn": 0.5, "relearn_ratio": 1.6},
        }
    )
    (table,) = aggregate(clear, get_registry())
    assert "relearn_ratio" not in table.undefined


# ---------------------------------------------------------- what it trains on, measures


def indexed(n: int, label: int = 0, offset: int = 0) -> Split:
    """Examples whose single feature is their index (so a subset shows which ones)."""
    return Split(
        torch.arange(offset, offset + n, dtype=torch.float).unsqueeze(1),
        torch.full((n,), label),
    )


def setup_of(forget: Split, retained: list[Split], behaviour: str | None = None):
    return ScenarioSetup(
        train=retained,
        retained=retained,
        request=ForgetRequest((0,), {}),
        eval_sets={"test": indexed(4, offset=1000), "forget": forget},
        default_metrics=[],
        attack_seed=7,
        forgotten_behaviour=behaviour,
    )


def test_attacked_examples_are_never_the_measured_ones():
    setup = setup_of(indexed(100), [indexed(50, 1, 200), indexed(0), indexed(30, 2, 300)])
    data, measured = Relearn(samples=32, benign=40).attack_data(setup)
    trained = set(data.x.flatten().tolist())
    forget_trained = {v for v in trained if v < 100}
    kept = set(measured.eval_sets["forget"].x.flatten().tolist())
    assert len(forget_trained) == 32 and len(trained) == 72, "32 of D_T, 40 retained"
    assert not forget_trained & kept and forget_trained | kept == set(range(100))
    assert trained - forget_trained <= set(range(200, 250)) | set(range(300, 330))
    assert measured.eval_sets["test"] is setup.eval_sets["test"]
    assert len(setup.eval_sets["forget"]) == 100, "the setup itself is not changed"


def test_at_most_half_of_a_small_forget_set_is_attacked():
    gen = torch.Generator().manual_seed(0)
    assert int(attack_split(indexed(20), 32, gen).sum()) == 10
    assert not attack_split(indexed(1), 32, gen).any()
    setup = setup_of(indexed(1), [indexed(10)])
    assert Relearn().attack_data(setup)[0] is None


def test_draw_picks_distinct_examples_across_parts_without_joining_them():
    parts = [indexed(3), indexed(0), indexed(5, offset=10)]
    picked = draw(parts, 6, torch.Generator().manual_seed(1)).x.flatten().tolist()
    assert len(set(picked)) == 6 and set(picked) <= {0, 1, 2, 10, 11, 12, 13, 14}
    again = draw(parts, 6, torch.Generator().manual_seed(1)).x.flatten().tolist()
    assert picked == again
    assert len(draw(parts, 100, torch.Generator().manual_seed(1))) == 8


def test_a_kind_that_declares_nothing_is_measured_by_accuracy_on_d_t():
    assert Relearn().behaviour(setup_of(indexed(4), [])) == "target_acc"
    assert Relearn().behaviour(setup_of(indexed(4), [], "asr")) == "asr"
    with pytest.raises(ValueError, match="relearning metric itself"):
        Relearn().behaviour(setup_of(indexed(4), [], "relearn_ratio"))


# ------------------------------------------------------ no side effects, same budget


def snapshot(ev: Evaluation):
    state = {k: v.clone() for k, v in ev.model.state_dict().items()}
    grads = [p.requires_grad for p in ev.model.parameters()]
    sets = {k: (s.x.clone(), s.y.clone()) for k, s in ev.setup.eval_sets.items()}
    retained = [(s.x.clone(), s.y.clone()) for s in ev.setup.retained]
    return state, grads, ev.model.training, sets, retained


def same(a, b) -> bool:
    (sa, ga, ta, ea, ra), (sb, gb, tb, eb, rb) = a, b
    return (
        sa.keys() == sb.keys()
        and all(torch.equal(sa[k], sb[k]) for k in sa)
        and ga == gb
        and ta == tb
        and ea.keys() == eb.keys()
        and all(torch.equal(ea[k][0], eb[k][0]) and torch.equal(ea[k][1], eb[k][1]) for k in ea)
        and all(torch.equal(x, y) and torch.equal(u, v) for (x, u), (y, v) in zip(ra, rb))
    )


def test_the_attack_changes_neither_the_model_nor_the_data(backdoor):
    ev = rows(backdoor)["other"]
    asr = ev.value("asr")  # (evaluating puts the model in eval mode)
    ev.model.train()
    for p in list(ev.model.parameters())[:2]:
        p.requires_grad_(False)  # a method may hand back frozen parameters
    before = snapshot(ev)
    assert Relearn().compute(ev) is not None
    assert same(before, snapshot(ev))
    fresh = Evaluation("again", ev.model, ev.setup, KIT.registry.metrics)
    assert fresh.value("asr") == asr, "the row's own metrics see the model as it was"


def test_every_row_gets_the_same_attack(backdoor, monkeypatch):
    seen = {}
    real = metrics_relearn.fine_tune

    def spy(model, data, steps, lr):
        seen[id(model)] = (data.x.clone(), data.y.clone(), steps, lr)
        return real(model, data, steps, lr)

    monkeypatch.setattr(metrics_relearn, "fine_tune", spy)
    for ev in rows(backdoor).values():
        Relearn().compute(ev)
    budgets = list(seen.values())
    assert len(budgets) == 3
    first = budgets[0]
    for other in budgets[1:]:
        assert torch.equal(first[0], other[0]) and torch.equal(first[1], other[1])
        assert first[2:] == other[2:]
    half = len(backdoor.setup.eval_sets["forget"]) // 2  # the tiny D_T holds < 64
    assert len(first[0]) == min(Relearn().samples, half) + Relearn().benign


def test_the_attack_is_repeatable(backdoor):
    original = backdoor.refs["original"]
    once = Relearn(steps=3).compute(original)
    assert Relearn(steps=3).compute(original) == once


def test_the_attacked_copy_lives_on_the_models_device(backdoor):
    model = backdoor.refs["original"].model
    data, _ = Relearn().attack_data(backdoor.setup)
    attacked = metrics_relearn.fine_tune(model, data, 1, 0.01)
    assert attacked is not model
    assert {p.device for p in attacked.parameters()} == {data.x.device}
    assert not attacked.training


def test_fine_tune_trains_frozen_copies_and_under_no_grad():
    model = nn.Linear(1, 2)
    for p in model.parameters():
        p.requires_grad_(False)
    data = Split(torch.ones(4, 1), torch.tensor([1, 1, 1, 1]))
    with torch.no_grad():  # how a caller might evaluate
        attacked = metrics_relearn.fine_tune(model, data, 5, 0.5)
    assert not torch.equal(attacked.weight, model.weight)
    assert not model.weight.requires_grad


# ------------------------------------------------------------ the kind's declaration


def test_the_kit_reports_a_behaviour_that_is_no_metric(backdoor):
    from fubench.testing.checks import _setup_problems

    assert not _setup_problems(KIT, backdoor.setup)
    wrong = dataclasses.replace(backdoor.setup, forgotten_behaviour="asrr")
    assert any(
        "forgotten_behaviour = 'asrr' is not a registered metric" in p
        for p in _setup_problems(KIT, wrong)
    )


def test_show_prints_the_declared_behaviour(capsys):
    from tests.conftest import run_cli

    assert run_cli("show", "backdoor") == 0
    assert "forgotten_behaviour = 'asr'" in capsys.readouterr().out
