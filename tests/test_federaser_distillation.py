"""FedEraser, knowledge-distillation unlearning and the server's data: the methods'
computations against hand computations on stored histories, their participation and
declines on the conformance kit's tiny world, and the ``dataset.server_fraction``
reserve."""

from __future__ import annotations

import pytest
import torch
from fubench_builtins.client_removal import layer_slices, parameter_mask
from fubench_builtins.distillation import Distillation, accumulated_updates
from fubench_builtins.federaser import FedEraser, calibrate
from torch import nn
from torch.nn import functional as F

import fubench.testing
from fubench import ForgetRequest, ScenarioSetup, Split, UnlearnContext
from fubench.config.spec import MethodSpec
from fubench.config.validate import load_scenario
from fubench.data import fingerprint, reserve_for_server
from fubench.errors import ConfigError, NotApplicable
from fubench.fl.federation import Federation
from fubench.fl.history import RoundHistory
from fubench.fl.training import TrainSettings, generator
from tests.conftest import BACKDOOR_YAML


class Weights(nn.Module):
    def __init__(self, n: int):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(n))


def write_history(path) -> RoundHistory:
    """Two rounds, three clients; client 0 leaves. Sizes 1, 1, 2."""
    history = RoundHistory(path)
    sizes = {0: 1, 1: 1, 2: 2}
    start = torch.zeros(2)
    history.record(
        0,
        {"w": start},
        {
            0: {"w": torch.tensor([4.0, 0.0])},
            1: {"w": torch.tensor([0.0, 1.0])},
            2: {"w": torch.tensor([0.0, 4.0])},
        },
        sizes,
    )
    start = torch.tensor([1.0, 2.25])
    history.record(
        1,
        {"w": start},
        {
            0: {"w": start + torch.tensor([8.0, 0.0])},
            1: {"w": start + torch.tensor([2.0, 0.0])},
            2: {"w": start + torch.tensor([1.0, 0.0])},
        },
        sizes,
    )
    return history


def context(
    model: nn.Module,
    history,
    participation: str,
    leaving=(0,),
    server: torch.Tensor | None = None,
    kind: str = "client",
) -> UnlearnContext:
    data = Split(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    empty = data.subset(torch.zeros(4, dtype=torch.bool))
    retained = [empty if c in leaving else data for c in range(3)]
    setup = ScenarioSetup(
        train=[data] * 3,
        retained=retained,
        request=ForgetRequest(tuple(leaving), {}),
        eval_sets={},
        default_metrics=[],
    )
    fed = Federation(setup, TrainSettings(lr=0.1), 2, 1.0, 0, torch.device("cpu"), participation)
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
        server_data=server,
    )


# --------------------------------------------------------------------- FedEraser
def test_calibration_keeps_the_stored_length_and_takes_the_new_direction_per_layer():
    old = torch.tensor([3.0, 4.0, 0.0, 2.0], dtype=torch.float64)  # layer norms 5, 2
    new = torch.tensor([0.0, -1.0, 1.0, 1.0], dtype=torch.float64)
    slices = [slice(0, 2), slice(2, 4)]
    out = calibrate(old, new, slices)
    assert torch.allclose(out[:2], torch.tensor([0.0, -5.0], dtype=torch.float64))
    assert torch.allclose(out[2:], 2 * new[2:] / new[2:].norm())
    # a layer the calibration did not move gets no step
    assert torch.equal(
        calibrate(old, torch.zeros(4, dtype=torch.float64), slices),
        torch.zeros(4, dtype=torch.float64),
    )


def test_layer_slices_follow_the_state_dict_order():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    slices = layer_slices(model.state_dict())
    sizes = [s.stop - s.start for s in slices]
    assert sizes == [6, 2, 2, 2, 2, 2]  # num_batches_tracked is not floating point
    mask = parameter_mask(model)
    assert mask.tolist() == [True] * 12 + [False] * 4  # running mean and var


def test_federaser_first_stored_round_uses_the_stored_updates_exactly(tmp_path):
    """With Δt ≥ T only round 0 is stored: Ñ = M_0 + FedAvg of the retained clients'
    stored updates — (1·[0, 1] + 2·[0, 4]) / 3 = [0, 3] — and no client is asked."""
    ctx = context(Weights(2), write_history(tmp_path), "retained")
    result = FedEraser(interval=5).unlearn(ctx)
    assert torch.allclose(result.model.w.detach(), torch.tensor([0.0, 3.0]))
    assert ctx.federation.stats.clients_involved == set()
    assert result.metrics["history_bytes"] == ctx.history.round_bytes(0)


def test_federaser_declines_partial_requests_and_full_ones(tmp_path):
    history = write_history(tmp_path)
    data = context(Weights(2), history, "retained", leaving=())
    data.request = ForgetRequest((0,), {})  # client 0 asks but keeps its data
    with pytest.raises(NotApplicable, match="keep part of their data"):
        FedEraser().unlearn(data)
    with pytest.raises(NotApplicable, match="every client"):
        FedEraser().unlearn(context(Weights(2), history, "retained", leaving=(0, 1, 2)))


KIT = fubench.testing.Kit(rounds=3)


def test_federaser_calibrates_on_the_retained_clients_only():
    stage = KIT.stage("client")
    job = stage.job
    ctx = job.context("federaser")
    result = FedEraser(interval=1).unlearn(ctx)
    stats = ctx.federation.stats
    leaving = set(job.setup.request.clients)
    assert stats.clients_involved == set(range(3)) - leaving
    assert stats.rounds == 2, "3 stored rounds, the first without calibration"
    assert result.metrics["history_bytes"] == ctx.history.size_bytes
    assert result.artifacts["stored_rounds"] == [0, 1, 2]
    # Δt = 2 keeps rounds 0 and 2, and calibrates once
    ctx = job.context("federaser")
    result = FedEraser(interval=2).unlearn(ctx)
    assert ctx.federation.stats.rounds == 1
    assert result.metrics["history_bytes"] < ctx.history.size_bytes


def test_federaser_serves_backdoor_by_dropping_the_malicious_client():
    stage = KIT.stage("backdoor")
    outcome = stage.job.run_method(MethodSpec("federaser", {}))
    assert outcome.status == "ok"
    assert outcome.clients == set(range(3)) - set(stage.setup.request.clients)


def test_whole_client_methods_declare_the_kinds_where_the_client_keeps_data():
    """(``class`` with ``forget: class`` is found at run time: see above.)"""
    for cls in (FedEraser, Distillation):
        assert set(cls.unsupported_kinds) == {"sample"}
        assert all("part of" in reason for reason in cls.unsupported_kinds.values())


# ------------------------------------------------------------------ distillation
def test_distillation_subtracts_the_leaving_clients_weighted_updates(tmp_path):
    """Client 0 (weight 1/4 in both rounds): Σ p U = ([4, 0] + [8, 0]) / 4 = [3, 0]."""
    history = write_history(tmp_path)
    assert torch.allclose(
        accumulated_updates(history, {0}, torch.device("cpu")).float(), torch.tensor([3.0, 0.0])
    )
    model = Weights(2)
    with torch.no_grad():
        model.w.copy_(torch.tensor([5.0, 5.0]))
    ctx = context(model, history, "none")
    result = Distillation(epochs=0).unlearn(ctx)
    assert torch.allclose(result.model.w.detach(), torch.tensor([2.0, 5.0]))
    assert result.metrics["history_bytes"] == history.size_bytes
    assert ctx.federation.stats.clients_involved == set()


def test_distillation_without_server_data_is_not_applicable(tmp_path):
    ctx = context(Weights(2), write_history(tmp_path), "none")
    with pytest.raises(NotApplicable, match="server holds no data"):
        Distillation().unlearn(ctx)


def test_distillation_moves_the_student_towards_the_teacher():
    stage = KIT.stage("client")
    job = stage.job
    server = job.setup.server_data
    assert server is not None and len(server) == fubench.testing.tiny.N_SERVER
    teacher = job.original.model

    def gap(model):
        with torch.no_grad():
            return float(
                F.kl_div(
                    F.log_softmax(model(server), 1),
                    F.softmax(teacher(server), 1),
                    reduction="batchmean",
                )
            )

    skewed = Distillation(epochs=0).unlearn(job.context("distillation")).model
    ctx = job.context("distillation")
    distilled = Distillation(epochs=20, lr=0.05).unlearn(ctx).model
    assert gap(distilled) < 0.5 * gap(skewed)
    assert ctx.federation.stats.clients_involved == set()
    assert torch.equal(ctx.server_data, server), "every method sees the same server data"
    assert ctx.server_data is not server, "its own copy"


# ------------------------------------------------------------------ server data
def test_server_reserve_is_stratified_disjoint_and_deterministic(test_registry, write_yaml):
    from fubench import data as datasets

    text = BACKDOOR_YAML.format(name="srv", dataset="tiny_images", rounds=1)
    plain = load_scenario(write_yaml(text, "plain.yaml"), test_registry)
    data = datasets.load(plain, test_registry)
    assert data.x_server is None
    for source in ("train", "test"):
        got = reserve_for_server(data, 0.2, source, 0)
        again = reserve_for_server(data, 0.2, source, 0)
        assert torch.equal(got.x_server, again.x_server)
        pool = data.x_train if source == "train" else data.x_test
        kept = got.x_train if source == "train" else got.x_test
        assert len(got.x_server) + len(kept) == len(pool)
        assert len(got.x_server) == pytest.approx(0.2 * len(pool), abs=10)  # 10 classes
        rows = {tuple(r.flatten().tolist()) for r in kept}
        assert not any(tuple(r.flatten().tolist()) in rows for r in got.x_server)
        other = data.x_test if source == "train" else data.x_train
        assert torch.equal(other, got.x_test if source == "train" else got.x_train)
        assert f"{len(got.x_server)} unlabeled {source}-split" in got.source
    assert fingerprint(reserve_for_server(data, 0.2, "test", 0)) != fingerprint(data)

    config = load_scenario(
        write_yaml(
            text.replace(
                "test_fraction: 0.3}",
                "test_fraction: 0.3, server_fraction: 0.1, server_from: test}",
            ),
            "srv.yaml",
        ),
        test_registry,
    )
    assert config.resolved()["dataset"]["server_fraction"] == 0.1
    assert "server_fraction" not in plain.resolved()["dataset"], "unchanged hash without it"
    assert datasets.load(config, test_registry).x_server is not None


def test_server_from_without_a_fraction_is_an_error(test_registry, write_yaml):
    text = BACKDOOR_YAML.format(name="srv", dataset="tiny_images", rounds=1).replace(
        "test_fraction: 0.3}", "test_fraction: 0.3, server_from: test}"
    )
    with pytest.raises(ConfigError, match="dataset.server_from: only used with"):
        load_scenario(write_yaml(text), test_registry)


def test_whole_client_methods_serve_the_feature_kinds_where_the_client_keeps_nothing():
    """sensitive / bias: every sample of the requesting client carries the feature, so
    it keeps nothing and leaves whole, as FedRecovery removes it."""
    stage = KIT.stage("sensitive")
    assert stage.setup.request.clients and not any(
        len(stage.setup.retained[c]) for c in stage.setup.request.clients
    )
    outcome = stage.job.run_method(MethodSpec("federaser", {}))
    assert outcome.status == "ok", outcome.error
    assert outcome.clients == set(range(3)) - set(stage.setup.request.clients)
