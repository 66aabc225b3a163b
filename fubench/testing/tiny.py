"""The conformance kit's tiny world: synthetic learnable data, tiny models, and a plan
that runs a scenario kind on them through the engine in a second or two."""

from __future__ import annotations

import torch
from torch import nn

from fubench.api import Partitioner, ScenarioKind
from fubench.engine.plan import Plan
from fubench.fl.training import TrainSettings
from fubench.registry import Registry
from fubench.scenario import Dataset

N_CLASSES = 10
IMAGE_SHAPE = (3, 16, 16)
N_FEATURES = 8
SAMPLES_PER_CLIENT = 100
N_CLIENTS = 3
N_TEST = 150
N_SERVER = 60
SETTINGS = TrainSettings(epochs=1, batch_size=32, lr=0.05, momentum=0.9)


def tiny_data(modality: str, seed: int = 0) -> Dataset:
    """Synthetic, learnable data: each class lights up its own image row (grey, in
    three equal channels, so colouring kinds can work) or its own feature; the server
    holds ``N_SERVER`` more inputs of the same kind, unlabeled."""
    x, y, names = _draw(
        modality, N_CLIENTS * SAMPLES_PER_CLIENT + N_TEST, torch.Generator().manual_seed(seed)
    )
    server, _, _ = _draw(modality, N_SERVER, torch.Generator().manual_seed(seed + 7_919))
    split = N_CLIENTS * SAMPLES_PER_CLIENT
    return Dataset(
        f"kit_{modality}",
        "synthetic (fubench.testing)",
        x[:split],
        y[:split],
        x[split:],
        y[split:],
        N_CLASSES,
        modality=modality,
        feature_names=names,
        x_server=server,
    )


def _draw(modality: str, n: int, g: torch.Generator):
    y = torch.arange(n) % N_CLASSES
    y = y[torch.randperm(n, generator=g)]
    if modality == "image":
        x = torch.rand(n, 1, *IMAGE_SHAPE[1:], generator=g) * 0.3
        x[torch.arange(n), 0, y + 3, 3:13] = 1.0
        x = x.expand(-1, IMAGE_SHAPE[0], -1, -1).contiguous()
        names = None
    else:
        x = torch.randn(n, N_FEATURES, generator=g)
        x[:, 0] = (y % N_FEATURES).float()
        x[:, 1] += y.float()
        names = [f"f{i}" for i in range(N_FEATURES)]
    return x, y, names


def tiny_model(input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """A small CNN (images) or MLP (rows) of standard layers only."""
    if len(input_shape) == 1:
        return nn.Sequential(nn.Linear(input_shape[0], 16), nn.ReLU(), nn.Linear(16, n_classes))
    side = ((input_shape[1] - 2) // 2 - 2) // 2
    return nn.Sequential(
        nn.Conv2d(input_shape[0], 4, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * side * side, 16),
        nn.ReLU(),
        nn.Linear(16, n_classes),
    )


class EvenSplit(Partitioner):
    """Uniformly random, equal shares: the kit's own partition, independent of any
    plugin's."""

    name = "kit_even_split"

    def partition(self, labels, n_clients, generator):
        order = torch.randperm(len(labels), generator=generator)
        return [part.sort().values for part in torch.tensor_split(order, n_clients)]


def tiny_plan(kind_name: str, kind: ScenarioKind, registry: Registry, rounds: int) -> Plan:
    """A plan for one kind on the tiny world: one FedAvg round, CPU, no cache."""
    return Plan(
        name=f"kit_{kind_name}",
        kind_name=kind_name,
        kind=kind,
        partitioner=EvenSplit(),
        n_clients=N_CLIENTS,
        build_model=tiny_model,
        settings=SETTINGS,
        rounds=rounds,
        client_fraction=1.0,
        device=torch.device("cpu"),
        registry=registry,
        progress=False,
    )
