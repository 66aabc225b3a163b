"""TIS-Reset and Random Reset: the BackPACK diagonals against torch.autograd, per-client
aggregation against the pooled computation, the per-tensor selection rule, random_reset
mirroring tis_reset's counts through the harness, the best-sweep-point table and the
trade-off plot. Tiny synthetic models and data only."""

from __future__ import annotations

import copy

import pytest
import torch
from fubench_builtins.random_reset import RandomReset, random_masks
from fubench_builtins.tis_reset import (
    TISReset,
    aggregate,
    client_curvature,
    smallest_prefix,
    target_information_score,
)
from torch import nn
from torch.func import functional_call, hessian, jacrev
from torch.nn import functional as F

import fubench
from fubench import ForgetRequest, ScenarioSetup, Split, UnlearnContext
from fubench.errors import NotApplicable
from fubench.fl.federation import Federation
from fubench.fl.training import TrainSettings, generator
from fubench.plugins import get_registry
from tests.resultfiles import write

# ----------------------------------------------------------------------- helpers


def tiny_cnn(activation: type[nn.Module] = nn.ReLU, seed: int = 0) -> nn.Module:
    """71 parameters: small enough for an exact Hessian by autograd."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3),
        activation(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8, 4),
        activation(),
        nn.Linear(4, 3),
    )


def tiny_data(n: int, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    return Split(torch.randn(n, 1, 6, 6, generator=g), torch.randint(0, 3, (n,), generator=g))


def flat_params(model: nn.Module) -> tuple[list[str], list[torch.Size], torch.Tensor]:
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    return names, shapes, torch.cat([p.detach().flatten() for p in model.parameters()])


def unflatten(names, shapes, flat) -> dict[str, torch.Tensor]:
    out, start = {}, 0
    for name, shape in zip(names, shapes):
        out[name] = flat[start : start + shape.numel()].view(shape)
        start += shape.numel()
    return out


def autograd_hessian_diag(model: nn.Module, data: Split) -> dict[str, torch.Tensor]:
    """Exact diagonal of the Hessian of the mean cross-entropy over ``data``."""
    model = copy.deepcopy(model).double()
    names, shapes, theta = flat_params(model)

    def loss(flat):
        return F.cross_entropy(
            functional_call(model, unflatten(names, shapes, flat), (data.x.double(),)), data.y
        )

    return unflatten(names, shapes, torch.diagonal(hessian(loss)(theta)))


def autograd_ggn_diag(model: nn.Module, data: Split) -> dict[str, torch.Tensor]:
    """Exact diagonal of the GGN J^T (diag p − p p^T) J of the mean cross-entropy."""
    model = copy.deepcopy(model).double()
    names, shapes, theta = flat_params(model)
    x = data.x.double()

    def logits(flat):
        return functional_call(model, unflatten(names, shapes, flat), (x,))

    jac = jacrev(logits)(theta)  # (N, C, P)
    p = torch.softmax(logits(theta), dim=1)  # (N, C)
    loss_hessian = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    diag = torch.einsum("ncp,ncd,ndp->p", jac, loss_hessian, jac) / len(data)
    return unflatten(names, shapes, diag)


def assert_close(got: dict, want: dict, rtol=1e-4, atol=1e-7):
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(
            got[name].double(),
            want[name].double(),
            rtol=rtol,
            atol=atol,
            msg=lambda m, name=name: f"{name}: {m}",
        )


# ------------------------------------------- BackPACK diagonals vs torch.autograd


@pytest.mark.parametrize(
    "curvature,reference",
    [("diag_hessian", autograd_hessian_diag), ("ggn_exact", autograd_ggn_diag)],
)
@pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh])
def test_backpack_diagonal_equals_autograd(curvature, reference, activation):
    model, data = tiny_cnn(activation), tiny_data(12)
    mask = torch.arange(12) % 3 == 0
    report = client_curvature(model, data, mask, curvature, batch_size=5)
    assert (report["n_forget"], report["n_retained"]) == (4, 8)
    assert_close(report["forget"], reference(model, data.subset(mask)))
    assert_close(report["retained"], reference(model, data.subset(~mask)))


def test_hessian_and_ggn_differ_with_tanh_so_the_checks_above_can_tell_them_apart():
    model, data = tiny_cnn(nn.Tanh), tiny_data(12)
    h, g = autograd_hessian_diag(model, data), autograd_ggn_diag(model, data)
    assert max(float((h[k] - g[k]).abs().max()) for k in h) > 1e-3


def test_ggn_mc_converges_to_exact_and_hybrid_is_exact_on_the_forget_part():
    model, data = tiny_cnn(), tiny_data(12)
    mask = torch.arange(12) < 4
    exact = autograd_ggn_diag(model, data.subset(~mask))
    mc = client_curvature(model, data, mask, "ggn_mc", mc_samples=4000, seed=1)["retained"]
    total_err = sum(float((mc[k] - exact[k]).abs().sum()) for k in exact)
    total = sum(float(exact[k].abs().sum()) for k in exact)
    assert total_err / total < 0.05
    hybrid = client_curvature(model, data, mask, "hybrid", batch_size=12, seed=1)
    assert_close(hybrid["forget"], autograd_ggn_diag(model, data.subset(mask)))
    # the retained part is one MC draw: the same as ggn_mc on those samples, same seed
    # (the exact forget pass draws no random numbers)
    one_draw = client_curvature(model, data.subset(~mask), None, "ggn_mc", seed=1)
    assert_close(hybrid["retained"], one_draw["retained"])
    again = client_curvature(model, data, mask, "hybrid", batch_size=12, seed=1)
    assert_close(again["retained"], hybrid["retained"])  # reproducible
    assert not torch.allclose(hybrid["retained"]["0.weight"].double(), exact["0.weight"])


def test_curvature_works_for_resnet18_with_batchnorm_and_residuals():
    from fubench_builtins.models import ResNet18

    model = ResNet18().build((1, 8, 8), 3)
    data = tiny_data(3)
    data = Split(data.x[:, :, :8, :8].contiguous(), data.y)
    report = client_curvature(model, data, torch.tensor([True, False, False]), "ggn_exact")
    names = [n for n, _ in model.named_parameters()]
    assert list(report["forget"]) == names
    assert all(bool(torch.isfinite(v).all()) for v in report["retained"].values())
    assert float(report["forget"]["bn1.weight"].abs().sum()) > 0
    with pytest.raises(NotApplicable, match="ggn_exact"):
        client_curvature(model, data, None, "diag_hessian")


def test_mlp_curvature_matches_autograd():
    from fubench_builtins.models import MLP

    torch.manual_seed(0)
    model = MLP(hidden=[5]).build((1, 3, 3), 3)
    data = tiny_data(10)
    data = Split(data.x[:, :, :3, :3].contiguous(), data.y)
    report = client_curvature(model, data, None, "ggn_exact", batch_size=4)
    assert "forget" not in report
    assert_close(report["retained"], autograd_ggn_diag(model, data))


# ------------------------------------------------- eq. 30: clients vs pooled data


def test_aggregating_clients_equals_the_pooled_computation():
    model = tiny_cnn()
    clients = [tiny_data(n, seed) for n, seed in ((7, 1), (12, 2), (5, 3))]
    masks = [torch.arange(7) < 3, torch.zeros(12, dtype=torch.bool), torch.arange(5) >= 1]
    reports = [
        client_curvature(model, d, m, "ggn_exact", batch_size=4) for d, m in zip(clients, masks)
    ]
    h, h_prime = aggregate(reports)
    pooled = Split.concat(clients)
    pooled_mask = torch.cat(masks)
    whole = client_curvature(model, pooled, pooled_mask, "ggn_exact", batch_size=64)
    h_pooled, h_prime_pooled = aggregate([whole])
    assert_close(h, h_pooled)
    assert_close(h_prime, h_prime_pooled)
    # and both are what eq. 27 asks for: the mean over all data / over the target data
    assert_close(h, autograd_ggn_diag(model, pooled))
    assert_close(h_prime, autograd_ggn_diag(model, pooled.subset(pooled_mask)))


def test_aggregate_refuses_a_request_without_samples():
    report = client_curvature(tiny_cnn(), tiny_data(4), None, "ggn_exact")
    with pytest.raises(ValueError, match="selects no sample"):
        aggregate([report])


def test_tis_is_the_squared_ratio_and_zero_where_h_is_zero():
    h = {"w": torch.tensor([2.0, 0.0, 4.0])}
    h_prime = {"w": torch.tensor([1.0, 3.0, 2.0])}
    assert torch.equal(target_information_score(h, h_prime)["w"], torch.tensor([0.25, 0.0, 0.25]))


# ----------------------------------------------- section 5: the per-tensor selection


def test_smallest_prefix_on_a_hand_example():
    scores = torch.tensor([[0.125, 0.5], [0.0625, 0.3125]])  # exact in binary, sum 1
    # descending: 0.5, 0.3125 (sum 0.8125 ≥ 0.6) → two entries
    assert smallest_prefix(scores, 0.6).tolist() == [[False, True], [False, True]]
    assert smallest_prefix(scores, 0.5).sum() == 1  # 0.5 reaches 0.5 exactly
    assert smallest_prefix(scores, 0.9375).sum() == 3
    assert smallest_prefix(scores, 0.94).sum() == 4
    assert smallest_prefix(scores, 0.0).sum() == 0
    assert smallest_prefix(torch.zeros(3), 0.7).sum() == 0
    assert smallest_prefix(torch.tensor([0.5, 0.0, 0.5]), 1.0).tolist() == [True, False, True]


@pytest.mark.parametrize("seed", range(20))
def test_smallest_prefix_is_the_smallest_set_reaching_gamma(seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.rand(7, 11, generator=g) ** 4  # heavy-tailed, like TIS
    scores[torch.rand(7, 11, generator=g) < 0.2] = 0.0
    gamma = float(torch.rand(1, generator=g))
    mask = smallest_prefix(scores, gamma)
    target = gamma * float(scores.double().sum())
    chosen = scores[mask].double()
    assert float(chosen.sum()) >= target - 1e-12, "the set reaches γ"
    k = int(mask.sum())
    top = torch.sort(scores.flatten().double(), descending=True).values
    assert float(top[: k - 1].sum()) < target, "no smaller set reaches γ"
    if k and k < scores.numel():
        assert float(chosen.min()) >= float(scores[~mask].max()), "it takes the top scores"


def test_random_masks_have_exact_counts_and_are_reproducible():
    shapes = {"a": torch.Size([4, 5]), "b": torch.Size([3])}
    m1 = random_masks({"a": 7, "b": 0}, shapes, torch.Generator().manual_seed(0))
    m2 = random_masks({"a": 7, "b": 0}, shapes, torch.Generator().manual_seed(0))
    assert int(m1["a"].sum()) == 7 and int(m1["b"].sum()) == 0
    assert torch.equal(m1["a"], m2["a"])
    with pytest.raises(ValueError, match="cannot reset 4 entries of 'b'"):
        random_masks({"b": 4}, shapes, torch.Generator())


# --------------------------------------- the methods on a tiny federation (in-process)


def tiny_context(seed: int = 0, **federation) -> UnlearnContext:
    model = tiny_cnn(seed=seed)
    initial = {k: v.detach().clone() for k, v in tiny_cnn(seed=seed + 1).state_dict().items()}
    train = [tiny_data(10, 1), tiny_data(10, 2)]
    mask = torch.arange(10) < 4
    setup = ScenarioSetup(
        train=train,
        retained=[train[0].subset(~mask), train[1]],
        request=ForgetRequest((0,), {0: mask}),
        eval_sets={},
        default_metrics=[],
    )
    fed = Federation(
        setup,
        TrainSettings(batch_size=5, lr=0.1),
        rounds=1,
        client_fraction=1.0,
        seed=seed,
        device=torch.device("cpu"),
        **federation,
    )
    return UnlearnContext(
        model=model,
        initial_state=initial,
        make_model=lambda: tiny_cnn(seed=9),
        request=setup.request,
        federation=fed,
        history=None,
        device=torch.device("cpu"),
        seed=seed,
        generator=generator(seed, "t"),
        scenario_kind="backdoor",
    )


def changed(before: nn.Module, after: nn.Module) -> dict[str, torch.Tensor]:
    old = dict(before.named_parameters())
    return {k: p.detach() != old[k].detach() for k, p in after.named_parameters()}


@pytest.mark.parametrize("reset_to", ["init", "zero", "fresh"])
def test_tis_reset_changes_exactly_the_reported_entries(reset_to):
    ctx = tiny_context()
    original = copy.deepcopy(ctx.model)
    result = TISReset(gamma=0.5, reset_to=reset_to).unlearn(ctx)
    masks = result.artifacts["reset_masks"]
    moved = changed(original, result.model)
    for k in masks:  # reset values differ from the trained ones here, so moved == reset
        assert torch.equal(moved[k], masks[k]), k
    total = sum(p.numel() for p in original.parameters())
    assert result.metrics["reset_frac"] == sum(result.artifacts["reset_counts"].values()) / total
    assert 0 < result.metrics["reset_frac"] < 1
    assert ctx.federation.stats.clients_involved == {0, 1}
    assert ctx.federation.stats.rounds == 1


def test_minimal_retrain_trains_only_the_reset_entries():
    ctx = tiny_context()
    original = copy.deepcopy(ctx.model)
    result = TISReset(gamma=0.3, minimal_retrain_rounds=2).unlearn(ctx)
    masks = result.artifacts["reset_masks"]
    moved = changed(original, result.model)
    assert all(bool((moved[k] <= masks[k]).all()) for k in masks), "only reset entries move"
    init = ctx.initial_state
    retrained = sum(
        int((masks[k] & (p.detach() != init[k])).sum()) for k, p in result.model.named_parameters()
    )
    assert retrained > 0, "the minimal retrain changed the reset entries"
    assert ctx.federation.stats.rounds == 1 + 2


def test_random_reset_mirrors_tis_reset_counts_but_not_its_choice():
    tis_ctx = tiny_context()
    tis = TISReset(gamma=0.6).unlearn(tis_ctx)
    ctx = tiny_context(participation="retained")
    ctx.upstream = {"tis_reset": tis}
    original = copy.deepcopy(ctx.model)
    rnd = RandomReset(gamma=0.6).unlearn(ctx)
    assert rnd.artifacts["reset_counts"] == tis.artifacts["reset_counts"]
    assert rnd.metrics["reset_frac"] == tis.metrics["reset_frac"]
    assert any(
        not torch.equal(rnd.artifacts["reset_masks"][k], tis.artifacts["reset_masks"][k])
        for k in tis.artifacts["reset_masks"]
    )
    moved = changed(original, rnd.model)
    for k, m in rnd.artifacts["reset_masks"].items():
        assert bool((moved[k] <= m).all())
    assert ctx.federation.stats.rounds == 0, "no minimal retrain: no client asked"


# -------------------------------------------------- through the runner: sweeps + reads

SWEEP_METHODS = """\
methods:
  retrain: {}
  tis_reset: {gamma: [0.2, 0.6], batch_size: 64}
  random_reset: {gamma: [0.2, 0.6]}
metrics: [test_acc, nta, nfs, asr, reset_frac, seconds]
"""


def test_runner_sweep_random_reset_reads_the_matching_tis_point(
    backdoor_yaml, test_registry, tmp_path, monkeypatch
):
    from fubench.config.validate import load_scenario
    from fubench.results import read_result
    from fubench.runner import Runner

    path = backdoor_yaml(rounds=1)
    text = path.read_text().replace(
        "methods: {retrain: {}, finetune: {rounds: 1}}\n", SWEEP_METHODS
    )
    # small enough for seconds: 150 images, an 8-unit hidden layer
    text = text.replace(
        "{name: tiny_images, test_fraction: 0.3}", "{name: tiny_images, n: 150, test_fraction: 0.3}"
    )
    text = text.replace("model: {name: mnist_cnn}", "model: {name: mnist_cnn, hidden: 8}")
    path.write_text(text)
    seen = []
    unlearn = RandomReset.unlearn

    def spy(self, ctx):
        result = unlearn(self, ctx)
        seen.append(
            (
                self.gamma,
                ctx.upstream["tis_reset"].artifacts["reset_counts"],
                result.artifacts["reset_counts"],
            )
        )
        return result

    monkeypatch.setattr(RandomReset, "unlearn", spy)
    config = load_scenario(path, test_registry)
    [out] = Runner(config, test_registry, out=tmp_path / "results").run()
    rows = read_result(out)["methods"]
    for gamma in ("0.2", "0.6"):
        tis, rnd = rows[f"tis_reset[gamma={gamma}]"], rows[f"random_reset[gamma={gamma}]"]
        assert tis["status"] == rnd["status"] == "ok", (tis.get("error"), rnd.get("error"))
        assert rnd["metrics"]["reset_frac"] == tis["metrics"]["reset_frac"]
    assert rows["retrain"]["metrics"]["reset_frac"] is None
    assert [g for g, _, _ in seen] == [0.2, 0.6]
    assert all(up == own for _, up, own in seen)
    assert seen[0][1] != seen[1][1], "each gamma mirrors its own tis_reset point"
    assert (
        rows["tis_reset[gamma=0.2]"]["metrics"]["reset_frac"]
        < rows["tis_reset[gamma=0.6]"]["metrics"]["reset_frac"]
    )


# ----------------------------------------------------- the table's best sweep point


def fake_results(points: dict[str, tuple[float, float]], seeds=(0, 1)) -> list[dict]:
    """Result files with rows label -> (nta, nfs), identical over seeds."""
    results = []
    for seed in seeds:
        methods = {
            "original": {
                "method": "original",
                "params": {},
                "sweep": {},
                "metrics": {"nta": 1.0, "nfs": 0.0},
                "status": "ok",
            }
        }
        for label, (nta, nfs) in points.items():
            name, _, rest = label.partition("[gamma=")
            sweep = {"gamma": float(rest[:-1])} if rest else {}
            methods[label] = {
                "method": name,
                "params": dict(sweep),
                "sweep": sweep,
                "metrics": {"nta": nta, "nfs": nfs},
                "status": "ok",
            }
        methods["retrain"] = {
            "method": "retrain",
            "params": {},
            "sweep": {},
            "metrics": {"nta": 1.0, "nfs": 1.0},
            "status": "ok",
        }
        results.append(
            {
                "scenario": {"name": "s", "kind": "backdoor", "version": 1},
                "seed": seed,
                "dataset": {"source": "synthetic"},
                "methods": methods,
                "warnings": [],
            }
        )
    return results


def test_table_keeps_the_point_closest_to_one_one_and_names_it(test_registry):
    from fubench.report import render_report

    results = fake_results(
        {
            "tis_reset[gamma=0.1]": (0.99, 0.2),
            "tis_reset[gamma=0.5]": (0.95, 0.9),
            "tis_reset[gamma=0.9]": (0.5, 1.0),
            "random_reset[gamma=0.1]": (0.99, 0.1),
            "random_reset[gamma=0.5]": (0.7, 0.3),
            "random_reset[gamma=0.9]": (0.9, 0.85),
        }
    )
    text = render_report(results, test_registry)
    assert "tis_reset[gamma=0.5]" in text and "tis_reset[gamma=0.1]" not in text
    # distance of (0.95, 0.9) from (1, 1) = 0.1118
    assert (
        "**tis_reset**: shown at gamma=0.5, closest to (NTA, NFS) = (1, 1) over the "
        "means of the reported seeds (the scenario has no tuning seeds), distance 0.112"
    ) in text
    # random_reset is shown where it mirrors tis_reset, not at its own best (0.9)
    assert "random_reset[gamma=0.5]" in text and "random_reset[gamma=0.9]" not in text
    assert "**random_reset**: shown at gamma=0.5, the point of tis_reset it mirrors" in text
    full = render_report(results, test_registry, all_points=True)
    assert "tis_reset[gamma=0.1]" in full and "random_reset[gamma=0.9]" in full


def test_plot_tradeoff_writes_a_png_and_refuses_results_without_a_sweep(tmp_path):
    from fubench.cli import main

    results = fake_results(
        {
            "tis_reset[gamma=0.1]": (0.99, 0.2),
            "tis_reset[gamma=0.5]": (0.95, 0.9),
            "random_reset[gamma=0.1]": (0.98, 0.1),
            "random_reset[gamma=0.5]": (0.7, 0.3),
        }
    )
    for r in results:
        r["schema"] = 1
        write(tmp_path / f"seed_{r['seed']}.json", r)
    out = tmp_path / "fig" / "tradeoff.png"
    assert main(["plot", "tradeoff", str(tmp_path), "-o", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    from fubench.report.plots import tradeoff

    with pytest.raises(ValueError, match="no swept method"):
        tradeoff(fake_results({"finetune": (0.9, 0.5)}), tmp_path / "none.png", get_registry())


def test_reset_frac_metric_is_none_for_rows_without_it():
    from fubench_builtins.metrics_reset import ResetFraction

    class Ev:
        info = fubench.RowInfo(reported={"reset_frac": 0.125})

    class Bare:
        info = fubench.RowInfo()

    assert ResetFraction().compute(Ev()) == 0.125
    assert ResetFraction().compute(Bare()) is None
