"""Built-in partitioners: how the training set is split between clients.

Every partitioner returns disjoint index tensors that together cover the whole training
set, and depends only on the labels, the client count and the seeded generator."""

from __future__ import annotations

import numpy as np
import torch

import fubench
from fubench import Param, Partitioner


def _chunks(index: torch.Tensor, n: int) -> list[torch.Tensor]:
    """n nearly equal consecutive pieces (sizes differ by at most one)."""
    return list(torch.tensor_split(index, n))


def _shuffled(index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return index[torch.randperm(len(index), generator=generator)]


class IID(Partitioner):
    """Uniformly random, equal-sized client shares."""

    name = "iid"

    def partition(self, labels, n_clients, generator):
        order = torch.randperm(len(labels), generator=generator)
        return [part.sort().values for part in _chunks(order, n_clients)]


class Dirichlet(Partitioner):
    """Per class, client shares drawn from Dirichlet(alpha): small alpha, strong skew.
    Redrawn (up to 100 times) until every client has at least ``min_size`` samples."""

    name = "dirichlet"
    parameters = {
        "alpha": Param(0.8, float, min=0.0, min_exclusive=True, help="concentration"),
        "min_size": Param(10, int, min=0, help="fewest samples any client may get"),
    }

    def partition(self, labels, n_clients, generator):
        if self.min_size * n_clients > len(labels):
            raise ValueError(
                f"min_size: {self.min_size} samples for each of {n_clients} "
                f"clients needs {self.min_size * n_clients:,}, but the training "
                f"set has {len(labels):,}; lower min_size or use fewer clients"
            )
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        rng = np.random.default_rng(seed)
        y = labels.cpu().numpy()
        for _ in range(100):
            parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
            for label in np.unique(y):
                idx = rng.permutation(np.flatnonzero(y == label))
                shares = rng.dirichlet(np.full(n_clients, self.alpha))
                cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
                for client, piece in enumerate(np.split(idx, cuts)):
                    parts[client].append(piece)
            sizes = [sum(len(p) for p in client) for client in parts]
            if min(sizes) >= self.min_size:
                break
        else:
            raise ValueError(
                f"min_size: dirichlet(alpha={self.alpha}) gave a client fewer "
                f"than {self.min_size} samples in 100 draws; raise alpha, "
                f"lower min_size or use fewer clients"
            )
        return [torch.from_numpy(np.sort(np.concatenate(p))).long() for p in parts]


def owned_classes_problem(owned: list | None, n_clients: int, n_classes: int | None) -> str | None:
    """What is wrong with ``exclusive_classes`` (None: nothing): one distinct class number
    per client, within the data set's classes when they are known."""
    if owned is None:
        return None
    bad = any(
        isinstance(c, bool)
        or not isinstance(c, int)
        or c < 0
        or (n_classes is not None and c >= n_classes)
        for c in owned
    )
    if not bad and len(owned) == n_clients and len(set(owned)) == n_clients:
        return None
    shown = str(owned) if len(str(owned)) <= 60 else str(owned)[:57] + "..."
    classes = f" (0 to {n_classes - 1})" if n_classes is not None else ""
    return f"expected {n_clients} distinct class numbers{classes}, one per client, got {shown}"


class Preferential(Partitioner):
    """The TIS paper's categorical setting (6.1): each client owns one exclusive class,
    and the remaining classes are shared evenly by all clients. By default client c owns
    class ``n_classes - n_clients + c``."""

    name = "preferential"
    parameters = {
        "exclusive_classes": Param(
            None, list, nullable=True, help="class owned by each client, in client order"
        ),
    }

    @classmethod
    def validate_config(cls, params, context):
        problem = owned_classes_problem(
            params.get("exclusive_classes"), context.clients, context.n_classes
        )
        if problem:
            yield "exclusive_classes", problem

    def exclusive(self, n_classes: int, n_clients: int) -> list[int]:
        if self.exclusive_classes is not None:
            problem = owned_classes_problem(self.exclusive_classes, n_clients, n_classes)
            if problem:
                raise ValueError(f"exclusive_classes: {problem}")
            return list(self.exclusive_classes)
        if n_clients >= n_classes:
            raise ValueError(
                f"needs fewer clients ({n_clients}) than classes ({n_classes}), "
                f"or exclusive_classes"
            )
        return list(range(n_classes - n_clients, n_classes))

    def partition(self, labels, n_clients, generator):
        n_classes = int(labels.max()) + 1
        owned = self.exclusive(n_classes, n_clients)
        parts: list[list[torch.Tensor]] = [[] for _ in range(n_clients)]
        for label in range(n_classes):
            idx = _shuffled(torch.nonzero(labels == label).flatten(), generator)
            if label in owned:
                parts[owned.index(label)].append(idx)
            else:
                for client, piece in enumerate(_chunks(idx, n_clients)):
                    parts[client].append(piece)
        return [torch.cat(p).sort().values for p in parts]


@fubench.hookimpl
def fubench_partitioners() -> list[type[Partitioner]]:
    return [IID, Dirichlet, Preferential]
