"""Speed of the engine's FedAvg local training against a bare torch SGD loop, as ratios
measured in one run (no timed asserts).

Three variants train the same MNIST CNN on the same data (3 clients, MNIST-shaped
synthetic images: speed does not depend on pixel values), batch 32, SGD with momentum,
one FedAvg round of one local epoch each:

* ``engine`` — ``Federation.train``: what every method and the reference models use
  (client sampling, seeded batch order, state copies, the weighted average, the counted
  work);
* ``bare``   — the same SGD steps written by hand: for each client, load the round's
  start weights, loop over shuffled mini-batches, step; average the weights;
* ``vmap``   — the clients trained together: ``torch.func`` + ``vmap`` over clients
  (one batched step for all clients' batch k), the candidate for GPUs, where 32-sample
  batches leave the device idle.

Run with timing on (the project's default disables it)::

    pytest tests/test_bench_engine.py --benchmark-enable -s

and the last test prints engine/bare and vmap/engine speed ratios (goal: engine/bare
≥ 0.95) with the spread of each variant's rounds. With timing off every variant still
runs once."""

from __future__ import annotations

import copy

import pytest
import torch
from fubench_builtins.models import MnistCNN
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

from fubench import Federation, ForgetRequest, ScenarioSetup, Split, TrainSettings
from tests.benchtools import Interleaved, run

CLIENTS, PER_CLIENT, BATCH = 3, 384, 32
SETTINGS = TrainSettings(epochs=1, batch_size=BATCH, lr=0.01, momentum=0.9)
LINES: list[str] = []


def make_workload(per_client: int = PER_CLIENT):
    torch.manual_seed(0)
    model = MnistCNN().build((1, 28, 28), 10)
    g = torch.Generator().manual_seed(0)
    clients = [
        Split(
            torch.rand(per_client, 1, 28, 28, generator=g),
            torch.randint(0, 10, (per_client,), generator=g),
        )
        for _ in range(CLIENTS)
    ]
    request = ForgetRequest((0,), {})
    setup = ScenarioSetup(clients, clients, request, {"test": clients[0]}, ["test_acc"])
    return model, clients, setup


@pytest.fixture(scope="module")
def workload():
    return make_workload(64)


def engine_round(model, setup) -> None:
    fed = Federation(
        setup, SETTINGS, rounds=1, client_fraction=1.0, seed=0, device=torch.device("cpu")
    )
    fed.train(copy.deepcopy(model), data="train")


def bare_round(model, clients) -> None:
    start = {k: v.clone() for k, v in model.state_dict().items()}
    local = copy.deepcopy(model)
    total = {k: torch.zeros_like(v) for k, v in start.items()}
    g = torch.Generator().manual_seed(0)
    for data in clients:
        local.load_state_dict(start)
        opt = torch.optim.SGD(local.parameters(), lr=SETTINGS.lr, momentum=SETTINGS.momentum)
        order = torch.randperm(len(data), generator=g)
        for i in range(0, len(data), BATCH):
            index = order[i : i + BATCH]
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(local(data.x[index]), data.y[index]).backward()
            opt.step()
        for k, v in local.state_dict().items():
            total[k] += v
    local.load_state_dict({k: v / len(clients) for k, v in total.items()})


def vmap_round(model, clients) -> None:
    """All clients' step k as one vmapped step (equal-sized clients: same step count)."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    stacked = {k: v.unsqueeze(0).repeat(len(clients), *[1] * v.dim()) for k, v in params.items()}
    velocity = {k: torch.zeros_like(v) for k, v in stacked.items()}

    def loss(p, x, y):
        return F.cross_entropy(functional_call(model, p, (x,)), y)

    step = vmap(grad(loss))
    g = torch.Generator().manual_seed(0)
    orders = [torch.randperm(len(d), generator=g) for d in clients]
    xs = torch.stack([d.x for d in clients])
    ys = torch.stack([d.y for d in clients])
    for i in range(0, len(clients[0]), BATCH):
        index = torch.stack([o[i : i + BATCH] for o in orders])
        x = torch.gather(xs, 1, index[:, :, None, None, None].expand(-1, -1, *xs.shape[2:]))
        y = torch.gather(ys, 1, index)
        grads = step(stacked, x, y)
        for k in stacked:
            velocity[k].mul_(SETTINGS.momentum).add_(grads[k])
            stacked[k] = stacked[k] - SETTINGS.lr * velocity[k]
    {k: v.mean(0) for k, v in stacked.items()}


@pytest.mark.benchmark(group="engine-training")
def test_bench_engine_against_bare_sgd(benchmark):
    timed = not getattr(benchmark, "disabled", False)
    model, clients, setup = make_workload(PER_CLIENT if timed else BATCH)
    timer = Interleaved(
        {
            "engine": lambda: engine_round(model, setup),
            "bare": lambda: bare_round(model, clients),
            "vmap": lambda: vmap_round(model, clients),
        }
    )
    if not run(benchmark, timer):
        return
    n = CLIENTS * PER_CLIENT
    LINES.extend(
        [
            f"FedAvg local training, {CLIENTS} clients x {PER_CLIENT} samples, batch {BATCH}, "
            f"MNIST CNN, {torch.get_num_threads()} thread(s); speed ratios from each variant's "
            f"fastest round:",
            timer.line("engine", "bare", "engine/bare"),
            timer.line("vmap", "engine", "vmap/engine"),
            f"  engine: {n / timer.best('engine'):.0f} samples/s",
        ]
    )


def test_vmap_round_trains_like_sequential_sgd(workload):
    """The vmap variant computes the same SGD (up to rounding): its benchmark compares
    like with like."""
    model, clients, _ = workload
    one = clients
    torch.manual_seed(0)
    m1, m2 = copy.deepcopy(model), copy.deepcopy(model)
    g = torch.Generator().manual_seed(0)
    params = {k: v.detach().clone() for k, v in m1.named_parameters()}
    states = []
    for data in one:
        m1.load_state_dict({**m1.state_dict(), **params})
        opt = torch.optim.SGD(m1.parameters(), lr=SETTINGS.lr, momentum=SETTINGS.momentum)
        order = torch.randperm(64, generator=g)
        for i in range(0, 64, BATCH):
            opt.zero_grad()
            F.cross_entropy(
                m1(data.x[order[i : i + BATCH]]), data.y[order[i : i + BATCH]]
            ).backward()
            opt.step()
        states.append({k: v.detach().clone() for k, v in m1.named_parameters()})
    # the same schedule through vmap
    stacked = {k: v.unsqueeze(0).repeat(len(one), *[1] * v.dim()) for k, v in params.items()}
    velocity = {k: torch.zeros_like(v) for k, v in stacked.items()}
    g = torch.Generator().manual_seed(0)
    orders = [torch.randperm(64, generator=g) for _ in one]

    def loss(p, x, y):
        return F.cross_entropy(functional_call(m2, p, (x,)), y)

    for i in range(0, 64, BATCH):
        x = torch.stack([d.x[o[i : i + BATCH]] for d, o in zip(one, orders)])
        y = torch.stack([d.y[o[i : i + BATCH]] for d, o in zip(one, orders)])
        grads = vmap(grad(loss))(stacked, x, y)
        for k in stacked:
            velocity[k].mul_(SETTINGS.momentum).add_(grads[k])
            stacked[k] = stacked[k] - SETTINGS.lr * velocity[k]
    for c, state in enumerate(states):
        for k, v in state.items():
            torch.testing.assert_close(stacked[k][c], v, rtol=1e-4, atol=1e-5)


def test_bench_engine_ratios(capsys):
    """Print the ratios (runs last in this file); a report, not an assertion."""
    if not LINES:
        pytest.skip("benchmarks ran with timing disabled (use --benchmark-enable)")
    with capsys.disabled():
        print("\n" + "\n".join(LINES))
