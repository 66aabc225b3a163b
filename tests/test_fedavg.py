"""FedAvg aggregation, determinism, masked training and the Federation's accounting."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fubench import ForgetRequest, ScenarioSetup, Split
from fubench.errors import ParticipationError
from fubench.fl.federation import Federation
from fubench.fl.training import TrainSettings, WeightedAverage, fedavg, sample_clients, state_copy


def tiny_model(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def client_data(n, seed) -> Split:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    return Split(x, (x[:, 0] > 0).long())


def test_weighted_average_equals_hand_computation():
    a = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([4.0, 8.0]), "n": torch.tensor(5)}
    avg = WeightedAverage()
    avg.add(a, 10)
    avg.add(b, 30)
    out = avg.result(a)
    # (10·[1,2] + 30·[4,8]) / 40 = [3.25, 6.5]
    assert torch.allclose(out["w"], torch.tensor([3.25, 6.5]))
    assert out["w"].dtype == torch.float32
    assert int(out["n"]) == 3, "integer buffers are copied, not averaged"


def test_one_round_is_the_sample_weighted_mean_of_local_models():
    clients = [client_data(10, 1), client_data(30, 2)]
    settings = TrainSettings(epochs=1, batch_size=8, lr=0.1)
    model = tiny_model()
    start = state_copy(model)
    seen = {}
    fedavg(
        model,
        clients,
        settings,
        rounds=1,
        seed=0,
        on_round=lambda r, g, states, sizes: seen.update(states=states, sizes=sizes),
    )
    assert seen["sizes"] == {0: 10, 1: 30}
    for key, value in model.state_dict().items():
        expected = (10 * seen["states"][0][key] + 30 * seen["states"][1][key]) / 40
        assert torch.allclose(value, expected, atol=1e-6)
        assert not torch.equal(value, start[key])


def test_fedavg_is_deterministic_for_a_seed():
    clients = [client_data(20, i) for i in range(3)]
    settings = TrainSettings(epochs=2, batch_size=4, lr=0.05, momentum=0.9)
    runs = []
    for seed in (7, 7, 8):
        model = tiny_model()
        fedavg(model, clients, settings, rounds=3, seed=seed, client_fraction=0.67)
        runs.append(torch.cat([p.flatten() for p in model.parameters()]))
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_client_sampling_fraction():
    gen = torch.Generator().manual_seed(0)
    assert len(sample_clients(list(range(10)), 0.3, gen)) == 3
    assert sample_clients([4, 6], 1.0, gen) == [4, 6]
    assert len(sample_clients([1, 2, 3], 0.01, gen)) == 1


def test_masked_training_changes_only_masked_entries():
    clients = [client_data(40, 0)]
    model = tiny_model()
    before = state_copy(model)
    masks = {"0.weight": torch.zeros(3, 4, dtype=torch.bool)}
    masks["0.weight"][0, :2] = True
    fedavg(
        model,
        clients,
        TrainSettings(batch_size=8, lr=0.5, momentum=0.9, weight_decay=0.1),
        rounds=2,
        seed=0,
        param_masks=masks,
    )
    after = model.state_dict()
    changed = after["0.weight"] != before["0.weight"]
    assert changed[0, :2].all() and not changed[~masks["0.weight"]].any()
    for key in ("0.bias", "2.weight", "2.bias"):
        assert torch.equal(after[key], before[key])


def federation(participation="all") -> Federation:
    train = [client_data(12, i) for i in range(3)]
    mask = torch.zeros(12, dtype=torch.bool)
    mask[:4] = True
    retained = list(train)
    retained[0] = train[0].subset(~mask)
    setup = ScenarioSetup(
        train, retained, ForgetRequest((0,), {0: mask}), {"test": client_data(5, 9)}, ["test_acc"]
    )
    return Federation(
        setup,
        TrainSettings(batch_size=4),
        rounds=2,
        client_fraction=1.0,
        seed=0,
        device=torch.device("cpu"),
        participation=participation,
    )


def test_federation_counts_clients_rounds_and_bytes():
    fed = federation()
    model = tiny_model()
    model_bytes = sum(p.numel() * 4 for p in model.parameters())  # 15 + 8 = 23 floats
    out = fed.ask([0], lambda m, c: c.forget.x.sum(0), model)
    assert out[0].shape == (4,)
    assert fed.stats.rounds == 1 and fed.stats.clients_involved == {0}
    assert fed.stats.bytes == model_bytes + 4 * 4
    fed.train(model, rounds=2)
    assert fed.stats.rounds == 3 and fed.stats.clients_involved == {0, 1, 2}
    assert fed.stats.bytes == model_bytes + 16 + 2 * 3 * 2 * model_bytes


def test_client_view_splits_forget_and_retained():
    sizes = federation().ask([0], lambda m, view: view, tiny_model())[0]
    assert len(sizes.forget) == 4 and len(sizes.retained) == 8 and len(sizes.train) == 12


def test_federation_holds_methods_to_their_participation():
    model = tiny_model()
    only_requesting = federation("requesting")
    only_requesting.ask([0], lambda m, c: 0.0, model)
    with pytest.raises(ParticipationError, match="participation='requesting'.*client 1"):
        only_requesting.ask([1], lambda m, c: 0.0, model)
    with pytest.raises(ParticipationError):
        federation("none").ask([0], lambda m, c: 0.0, model)
    with pytest.raises(ParticipationError):
        federation("requesting").train(model, rounds=1)
