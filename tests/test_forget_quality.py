"""The forgetting-quality ε: the estimator on cases whose answer is known, the training
replicas it runs on, the ``fubench quality`` command and its leaderboard section."""

from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest
import torch
from torch import nn

import fubench
from fubench import forget_quality as fq
from fubench.config.validate import load_scenario
from fubench.engine.job import Job
from fubench.engine.plan import Plan
from fubench.engine.replicas import replica_seed
from fubench.plugins import load_registry, reset_registry
from tests.conftest import TEST_PLUGIN, run_cli

K = 8


# ------------------------------------------------------------------ the estimator
def test_identical_model_sets_give_epsilon_zero():
    stats = np.random.default_rng(0).standard_normal((K, 300))
    eps = fq.example_epsilons(stats, stats.copy())
    assert np.all(eps == 0.0)
    assert fq.summary(eps) == {"epsilon_mean": 0.0, "epsilon_median": 0.0, "score": 1.0}


def test_unlearned_drawn_like_retrained_scores_the_null_not_zero():
    """A perfect unlearner (its models from retrain's distribution) is not at ε = 0 with
    K = 8 models: sampling noise. It matches the null reference, which cross-fitting
    keeps well under the in-sample estimator's (the best of 2K thresholds fits noise)."""
    rng = np.random.default_rng(1)
    unlearned, retrained = rng.standard_normal((K, 2000)), rng.standard_normal((K, 2000))
    got = fq.summary(fq.example_epsilons(unlearned, retrained))
    null = fq.null_reference(K, K)
    assert abs(got["epsilon_mean"] - null["epsilon_mean"]) < 0.05
    assert abs(got["score"] - null["score"]) < 0.03
    in_sample = fq.summary(fq.example_epsilons_in_sample(unlearned, retrained))
    assert null["epsilon_mean"] < in_sample["epsilon_mean"] - 0.5
    # the null is well below the cap, and its score well above the separated one's
    assert null["epsilon_mean"] < fq.cap(K, K) - 1.5
    assert null["score"] > 4 * 2 / 2**6


def test_clearly_separated_distributions_give_the_cap_on_every_example():
    rng = np.random.default_rng(2)
    retrained = rng.standard_normal((K, 100))
    for shift in (+50.0, -50.0):  # above or below: the attack tries both sides
        eps = fq.example_epsilons(retrained + shift, retrained)
        assert np.allclose(eps, fq.cap(K, K))
        assert np.allclose(fq.example_epsilons_in_sample(retrained + shift, retrained), eps)
    # cap = log((1 - δ - 1/(2K)) · 2K)
    assert fq.cap(K, K) == pytest.approx(math.log((1 - 0.01 - 1 / 16) * 16))


def test_epsilon_grows_with_the_separation():
    rng = np.random.default_rng(3)
    retrained = rng.standard_normal((K, 3000))
    means = [
        fq.summary(fq.example_epsilons(rng.standard_normal((K, 3000)) + shift, retrained))[
            "epsilon_mean"
        ]
        for shift in (0.0, 1.0, 2.0, 4.0)
    ]
    assert means == sorted(means) and means[-1] > means[0] + 1.5


def test_three_standard_deviations_sit_less_often_at_the_cap():
    """In sample, K = 8 models 3 σ apart are told apart perfectly on most examples (the
    cap); scored out of sample, on far fewer (the cap itself is K's: log(2K(1 − δ) − 1))."""
    rng = np.random.default_rng(4)
    unlearned, retrained = rng.standard_normal((K, 3000)) + 3, rng.standard_normal((K, 3000))
    at_cap = np.isclose(fq.example_epsilons(unlearned, retrained), fq.cap(K, K)).mean()
    in_sample = np.isclose(fq.example_epsilons_in_sample(unlearned, retrained), fq.cap(K, K))
    assert in_sample.mean() > 0.5 and at_cap < 0.4


def test_one_example_by_hand():
    """K = 2, one model per half. Unlearned {4, 5}, retrained {1, 2}: half 0 (4 vs 1)
    puts its threshold at 2.5, half 1 (5 vs 2) at 3.5; each separates the other half,
    so both pooled rates are 0, clipped to 1/4: ε = log((1 − 0.01 − 0.25) / 0.25)."""
    eps = fq.example_epsilons(np.array([[4.0], [5.0]]), np.array([[1.0], [2.0]]))
    assert eps[0] == pytest.approx(math.log(0.74 / 0.25))
    # in sample, {3, 4} vs {1, 2}: the threshold 2 separates them, both rates clip to 1/4
    eps = fq.example_epsilons_in_sample(np.array([[3.0], [4.0]]), np.array([[1.0], [2.0]]))
    assert eps[0] == pytest.approx(math.log(0.74 / 0.25))
    # interleaved {1, 3} vs {2, 4}: the best attack ("unlearned if ≤ 1") has FPR = 0
    # (clipped to 1/4) and FNR = 1/2: max(log(0.74 / 0.5), log((0.99 - 0.5) / 0.25))
    eps = fq.example_epsilons_in_sample(np.array([[1.0], [3.0]]), np.array([[2.0], [4.0]]))
    assert eps[0] == pytest.approx(math.log(0.49 / 0.25))


# ------------------------------------------------------ known answers (large K)
#: synthetic "replicas" per side: enough that the held-out rates resolve the tails
LARGE_K = 4000


def gaussian_dp_epsilon(mu: float, delta: float = fq.DELTA) -> float:
    """The ε of μ-GDP at δ (Dong, Roth and Su, "Gaussian differential privacy"):
    δ(ε) = Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2), solved for ε."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    def excess(eps: float) -> float:
        return norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2) - delta

    return brentq(excess, 0.0, 50.0)


def laplace_epsilon(mu: float, delta: float = fq.DELTA) -> float:
    """Laplace(μ, 1) against Laplace(0, 1): δ(ε) = 1 − e^((ε − μ)/2) for ε < μ, so
    ε(δ) = μ + 2 log(1 − δ)."""
    return mu + 2 * math.log(1 - delta)


@pytest.mark.parametrize(
    "draw, mu, closed_form, tolerance",
    [
        ("gauss", 0.5, gaussian_dp_epsilon, 0.15),
        ("gauss", 1.0, gaussian_dp_epsilon, 0.4),
        ("laplace", 1.0, laplace_epsilon, 0.05),
        ("laplace", 2.0, laplace_epsilon, 0.1),
        ("laplace", 3.0, laplace_epsilon, 0.25),
    ],
)
def test_large_k_recovers_the_closed_form_epsilon(draw, mu, closed_form, tolerance):
    """The scores of 4000 unlearned and 4000 retrained "models" on 40 examples drawn
    from two shifted distributions whose (ε, δ) trade-off is known: the mean ε over the
    examples is within ``tolerance`` of the closed form at δ = 0.01. Measured over 8
    seeds the estimate sits above the closed form by 0.01 – 0.14 (Laplace μ = 1 – 3) and
    0.08 / 0.25 (Gaussian μ = 0.5 / 1: its best threshold needs FNR ≈ 10⁻³, a handful of
    the 4000 models, and the log of a small count errs upward)."""
    rng = np.random.default_rng(5)
    sample = rng.standard_normal if draw == "gauss" else rng.laplace
    retrained = sample(size=(LARGE_K, 40))
    unlearned = sample(size=(LARGE_K, 40)) + mu
    got = fq.example_epsilons(unlearned, retrained).mean()
    assert abs(got - closed_form(mu)) < tolerance, (got, closed_form(mu))


def test_large_k_identically_distributed_sets_give_the_null():
    rng = np.random.default_rng(6)
    got = fq.example_epsilons(rng.laplace(size=(LARGE_K, 40)), rng.laplace(size=(LARGE_K, 40)))
    assert got.mean() < 0.05
    assert abs(fq.null_reference(K, K)["epsilon_mean"] - 0.68) < 0.05  # K = 8, documented


def test_the_simulated_null_interval_brackets_the_null_and_narrows_with_examples():
    few, many = fq.null_interval(K, K, 50), fq.null_interval(K, K, 800)
    null = fq.null_reference(K, K)["epsilon_mean"]
    assert few[0] < many[0] < null < many[1] < few[1]
    # a simulated perfect unlearner's mean over 800 independent examples falls inside
    rng = np.random.default_rng(8)
    inside = [
        many[0] <= fq.example_epsilons(*rng.standard_normal((2, K, 800))).mean() <= many[1]
        for _ in range(40)
    ]
    assert 0.7 <= np.mean(inside) <= 1.0


def test_the_permutation_interval_holds_a_perfect_unlearner_and_not_a_leaky_one():
    """Models share an offset across examples (as trained models do): the interval comes
    from re-splitting the pooled models, so a perfect unlearner's mean ε is not above it
    (it may fall below: 5 % of the time), and a shifted method falls above it with a
    small p."""
    rng = np.random.default_rng(7)

    def models(shift: float) -> np.ndarray:
        return rng.standard_normal((K, 300)) + rng.standard_normal((K, 1)) + shift

    retrained = models(0.0)
    for shift, inside in ((0.0, True), (2.0, False)):
        unlearned = models(shift)
        null = fq.permutation_null(unlearned, retrained, seed=0)
        low, high = null["epsilon_mean_interval"]
        observed = fq.example_epsilons(unlearned, retrained).mean()
        assert low < high
        assert bool(observed <= high) is inside, (shift, observed, low, high)
        assert (null["p"] > 0.1) is inside and (null["p"] < 0.05) is not inside
    again = fq.permutation_null(unlearned, retrained, seed=0)
    assert again == fq.permutation_null(unlearned, retrained, seed=0), "seeded"


def test_bucketed_score_follows_the_challenge():
    scores = fq.bucket_scores(np.array([0.0, 0.49, 0.5, 1.2, 6.0, 50.0]))
    assert scores.tolist() == [1.0, 1.0, 0.5, 0.25, 2 / 2**13, 2 / 2**13]


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="examples"):
        fq.example_epsilons(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least 2"):
        fq.example_epsilons(np.zeros((1, 3)), np.zeros((4, 3)))


def test_logit_confidence_is_log_odds_of_the_label():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]])

    class Fixed(nn.Module):
        def forward(self, x):
            return logits[x.long().flatten()]

    got = fq.logit_confidence(Fixed(), torch.tensor([[0.0], [1.0]]), torch.tensor([0, 2]))
    p = torch.softmax(logits, 1)
    want = [math.log(p[0, 0] / (1 - p[0, 0])), math.log(p[1, 2] / (1 - p[1, 2]))]
    assert got == pytest.approx(want)


# --------------------------------------------------------------------- replicas
class Rerun(fubench.Unlearner):
    """Retrains exactly as the gold standard does: ε must be 0 (a known answer)."""

    name = "rerun"
    participation = "retained"

    def unlearn(self, ctx):
        model = ctx.make_model()
        model.load_state_dict(ctx.initial_state)
        return ctx.federation.train(model)


@pytest.fixture
def rerun_registry():
    @fubench.hookimpl
    def fubench_unlearners():
        return [Rerun]

    module = types.ModuleType("fubench_test_rerun")
    module.fubench_unlearners = fubench_unlearners
    registry = load_registry(extra_plugins=[TEST_PLUGIN, module])
    reset_registry(registry)
    return registry


def test_replicas_keep_the_data_and_change_the_training(backdoor_yaml, rerun_registry):
    from fubench import data as datasets

    config = load_scenario(backdoor_yaml(), rerun_registry)
    plan = Plan.from_config(config, rerun_registry)
    data = datasets.load(config, rerun_registry)
    base = Job(plan, data, 0)
    zero = Job(plan, data, replica_seed(0, 0), data_seed=0)
    other = Job(plan, data, replica_seed(0, 1), data_seed=0)
    assert zero.cache_key("original") == base.cache_key("original")  # reuses the run's
    assert other.cache_key("original") != base.cache_key("original")
    for a, b in zip(base.setup.train, other.setup.train):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert torch.equal(base.setup.request.forget_masks[0], other.setup.request.forget_masks[0])
    assert base.setup.attack_seed == other.setup.attack_seed
    assert not torch.equal(base.initial_state["0.weight"], other.initial_state["0.weight"])


def test_quality_command_writes_epsilon_beside_the_results(backdoor_yaml, rerun_registry, tmp_path):
    path = backdoor_yaml()
    text = path.read_text().replace("finetune: {rounds: 1}}", "finetune: {rounds: 1}, rerun: {}}")
    path.write_text(text)
    out = tmp_path / "results"
    assert run_cli("run", str(path), "--out", str(out), "-q") == 0
    assert run_cli("quality", str(path), "--replicas", "3", "--out", str(out), "-q") == 0
    record = json.loads((out / "tiny_backdoor" / "forget_quality_seed_0.json").read_text())
    assert record["replicas"] == 3 and record["statistic"] == "logit_confidence"
    assert record["delta"] == 0.01 and record["seconds"]["wall"] > 0
    assert record["replica_seeds"][0] == 0 and len(set(record["replica_seeds"])) == 3
    rows = record["rows"]
    assert rows["rerun"]["epsilon_mean"] == 0.0 and rows["rerun"]["score"] == 1.0
    assert rows["retrain"]["status"] == "reference"
    assert 0.0 <= rows["finetune"]["epsilon_mean"] <= record["epsilon_cap"] + 1e-9
    assert rows["original"]["replicas_ok"] == 3
    result = json.loads((out / "tiny_backdoor" / "seed_0.json").read_text())
    assert record["config_hash"] == result["config_hash"]
    # made by the code the seed rows record, and says so
    assert record["code"]["harness"] == result["methods"]["finetune"]["code"]["harness"]
    row_modules = result["methods"]["finetune"]["code"]["modules"]
    shared = set(row_modules) & set(record["code"]["modules"])
    assert any("finetune" in m for m in shared), "the method's own module is recorded"
    assert all(record["code"]["modules"][m] == row_modules[m] for m in shared)
    assert record["code"]["epsilon"]

    assert rows["finetune"]["params"] == {"rounds": 1, "local_epochs": 1, "lr": None}
    assert record["estimator"] == fq.ESTIMATOR
    assert record["null"]["epsilon_mean_interval"] == fq.null_interval(
        3, 3, record["forget_examples"]
    )
    low, high = rows["finetune"]["null"]["epsilon_mean_interval"]
    assert 0.0 <= low <= high <= record["epsilon_cap"] + 1e-9
    assert rows["rerun"]["null"]["p"] == 1.0  # identical models: every re-split scores 0

    # a later run of one method keeps the other rows (same configuration and replicas)
    wall = record["seconds"]["wall"]
    assert (
        run_cli(
            "quality", str(path), "--replicas", "3", "--methods", "rerun", "--out", str(out), "-q"
        )
        == 0
    )
    again = json.loads((out / "tiny_backdoor" / "forget_quality_seed_0.json").read_text())
    assert again["rows"]["finetune"] == rows["finetune"]
    assert again["rows"]["rerun"]["epsilon_mean"] == 0.0
    assert again["seconds"]["wall"] > wall

    # a file of the in-sample estimator (no "estimator" field) is not merged with
    old = {**again, "rows": {"stale": {"status": "ok", "replicas_ok": 3}}}
    del old["estimator"]
    (out / "tiny_backdoor" / "forget_quality_seed_0.json").write_text(json.dumps(old))
    assert (
        run_cli(
            "quality", str(path), "--replicas", "3", "--methods", "rerun", "--out", str(out), "-q"
        )
        == 0
    )
    fresh = json.loads((out / "tiny_backdoor" / "forget_quality_seed_0.json").read_text())
    assert "stale" not in fresh["rows"] and fresh["estimator"] == fq.ESTIMATOR
    (out / "tiny_backdoor" / "forget_quality_seed_0.json").write_text(json.dumps(again))

    board = tmp_path / "README.md"
    assert run_cli("leaderboard", str(out), "-o", str(board)) == 0
    text = board.read_text()
    assert "### Forgetting quality ε (tiny_backdoor)" in text
    assert "K = 3 training replicas" in text and "| rerun " in text
    assert "another configuration" not in text and "another version" not in text
    assert "at commit" in text or "git" not in json.dumps(again["provenance"])

    # an ε made by other training code than the rows beside it: a caution, and --check refuses
    changed = {**again, "code": {**again["code"], "harness": "0" * 16}}
    (out / "tiny_backdoor" / "forget_quality_seed_0.json").write_text(json.dumps(changed))
    assert run_cli("leaderboard", str(out), "-o", str(board)) == 0
    assert "caution: ε was computed by another version of the harness" in board.read_text()
    assert run_cli("leaderboard", str(out), "-o", str(board), "--check") == 2


def test_quality_refuses_fewer_than_two_replicas(backdoor_yaml, test_registry, capsys):
    assert run_cli("quality", str(backdoor_yaml()), "--replicas", "1") == 2
    assert "--replicas: expected a whole number from 2" in capsys.readouterr().err


def test_the_section_shows_na_reasons_the_null_and_stale_configurations():
    from fubench.report.quality import render_records

    null = fq.null_reference(K, K)
    record = {
        "scenario": {"name": "s"},
        "seed": 0,
        "replicas": K,
        "null": null,
        "forget_examples": 12,
        "reference": "retrain",
        "delta": 0.01,
        "epsilon_cap": fq.cap(K, K),
        "config_hash": "abc",
        "seconds": {"wall": 125.0},
        "rows": {
            "original": {
                "status": "ok",
                "replicas_ok": K,
                "epsilon_mean": 2.5,
                "epsilon_median": 2.6,
                "score": 0.05,
                "null": {"epsilon_mean_interval": [0.61, 0.93], "p": 0.004975},
            },
            "picky": {"status": "n/a", "replicas_ok": 0, "error": "picky does not serve 's'"},
            "retrain": {"status": "reference", "replicas_ok": K},
        },
    }
    text = render_records([record], result_hashes={"other"})
    assert "[" not in text.partition("|")[0], "an old file's null has no interval"
    assert "****" not in text and "re-split" in text
    old = {**record, "rows": {**record["rows"], "original": {**record["rows"]["original"]}}}
    del old["rows"]["original"]["null"]
    assert "re-split" not in render_records([old]), "no ranges, no words about them"
    with_interval = {**null, "epsilon_mean_interval": [0.6, 0.75]}
    new = render_records([{**record, "null": with_interval}])
    assert f"ε ≈ {null['epsilon_mean']:.2f} [0.60, 0.75]" in new and "independent" in new
    assert "[0.61, 0.93]" in text and "0.005" in text and "cross-fitted" not in text
    assert "in-sample; a file made before cross-fitting" in text
    assert "cross-fitted" in render_records([{**record, "estimator": fq.ESTIMATOR}])
    assert "| original " in text and "2.50" in text and "| picky " in text
    assert "n/a" in text and "picky: picky does not serve 's'" in text
    assert f"ε ≈ {null['epsilon_mean']:.2f}" in text and "2 min" in text
    assert "| retrain " not in text, "the reference is the yardstick, not a row"
    assert "another configuration" in text
    assert "another configuration" not in render_records([record], result_hashes={"abc"})
    made = {**record, "provenance": {"git_hash": "0c46ed4aa", "hardware": "AMD EPYC, 1 threads"}}
    assert "2 min (K × every method" in text and " at commit" not in text
    assert "at commit 0c46ed4 on AMD EPYC, 1 thread." in render_records([made])


def test_an_earlier_sweeps_rows_are_dropped_when_the_file_is_merged(
    tmp_path, backdoor_yaml, test_registry
):
    """Rows of a method's earlier sweep points leave the ε file on the next merge; rows of
    methods the file does not list (added with --methods) and this sweep's points stay."""
    from fubench.cli.quality import earlier_sweeps, merge

    file = backdoor_yaml()
    file.write_text(file.read_text().replace("finetune: {rounds: 1}", "finetune: {rounds: [1, 2]}"))
    superseded = earlier_sweeps(load_scenario(file, test_registry).methods)
    same = {
        "config_hash": "c",
        "seed": 0,
        "replicas": 3,
        "replica_seeds": [0, 1, 2],
        "delta": 0.01,
        "statistic": "s",
        "estimator": "e",
    }
    path = tmp_path / "forget_quality_seed_0.json"
    old_rows = ["finetune", "finetune[rounds=1]", "rerun", "retrain", "original"]
    path.write_text(
        json.dumps(
            {
                **same,
                "rows": {k: {"status": "ok"} for k in old_rows},
                "seconds": {"wall": 1.0, "per_row": {}},
                "provenance": {"git_hash": "0ld", "date": "2026-01-01"},
            }
        )
    )
    record = {
        **same,
        "rows": {"finetune[rounds=2]": {"status": "ok"}},
        "seconds": {"wall": 2.0, "per_row": {}},
    }
    merged = merge(path, record, superseded)
    assert set(merged["rows"]) == {
        "finetune[rounds=1]",
        "finetune[rounds=2]",
        "rerun",
        "retrain",
        "original",
    }
    assert merged["seconds"]["wall"] == 3.0
    # each kept row says which run computed it, and the board names both commits
    assert merged["rows"]["rerun"]["computed_at"] == {"git_hash": "0ld", "date": "2026-01-01"}
    from fubench.report.quality import _made

    merged["rows"]["finetune[rounds=2]"]["computed_at"] = {"git_hash": "new", "date": "x"}
    assert _made([merged]) == " at commits 0ld (4 rows), new (1 row)"
