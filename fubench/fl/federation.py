"""The federation as an unlearning method sees it.

A method never reads client data. It asks clients to work on their own data — train
locally, compute a statistic — and the federation does the work, checks that the
method may involve that client, and counts what it cost: which clients took part, how
many communication rounds, how many bytes crossed the network (model down, results up).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn

from fubench.records import ScenarioSetup, Split
from fubench.errors import ParticipationError
from fubench.fl.training import RoundCallback, TrainSettings, fedavg, state_bytes


@dataclass
class ClientView:
    """One client's own data, as the client sees it when asked to work.

    ``train`` is what it trained the original model on, ``forget`` the part it asks to
    have forgotten (empty for other clients) and ``retained`` what it keeps."""

    id: int
    train: Split
    forget: Split
    retained: Split


@dataclass
class FederationStats:
    clients_involved: set[int] = field(default_factory=set)
    rounds: int = 0
    bytes: int = 0


def payload_bytes(obj: Any) -> int:
    """Bytes of the tensors in a (nested) result a client sends back."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, nn.Module):
        return state_bytes(obj.state_dict())
    if isinstance(obj, dict):
        return sum(payload_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(payload_bytes(v) for v in obj)
    if isinstance(obj, (int, float)):
        return 8
    return 0


class Federation:
    """Clients holding their data, and the accounting of what a method asks of them."""

    def __init__(self, setup: ScenarioSetup, settings: TrainSettings, rounds: int,
                 client_fraction: float, seed: int, device: torch.device,
                 participation: str = "all", progress: Callable | None = None,
                 reference: bool = False):
        self.setup = setup
        self.settings = settings
        self.default_rounds = rounds
        self.client_fraction = client_fraction
        self.seed = seed
        self.device = device
        self.participation = participation
        self.progress = progress
        self.reference = reference
        self.stats = FederationStats()
        self._calls = 0

    # -- who
    @property
    def n_clients(self) -> int:
        return self.setup.n_clients

    @property
    def requesting(self) -> list[int]:
        """The clients that asked to be forgotten."""
        return list(self.setup.request.clients)

    @property
    def retained_clients(self) -> list[int]:
        """Clients that keep data after the request (all but a fully forgotten client);
        for the gold standard, the clients that hold reference data."""
        return [c for c in range(self.n_clients) if len(self._kept()[c]) > 0]

    def _kept(self) -> list[Split]:
        return self.setup.reference_data() if self.reference else self.setup.retained

    def allowed(self, client: int) -> bool:
        if self.participation == "none":
            return False
        if self.participation == "requesting":
            return client in self.requesting
        if self.participation == "retained":
            return len(self._kept()[client]) > 0
        return True

    def _check(self, clients: Iterable[int]) -> list[int]:
        clients = list(clients)
        for c in clients:
            if not 0 <= c < self.n_clients:
                raise ParticipationError(f"there is no client {c} (clients 0..{self.n_clients - 1})")
            if not self.allowed(c):
                raise ParticipationError(
                    f"the method declared participation='{self.participation}' but asked "
                    f"client {c} for work")
        return clients

    def view(self, client: int) -> ClientView:
        return ClientView(client, self.setup.train[client], self.setup.forget_part(client),
                          self.setup.retained[client])

    # -- work
    def ask(self, clients: Iterable[int], work: Callable[[nn.Module, ClientView], Any],
            model: nn.Module) -> dict[int, Any]:
        """One communication round: the server sends ``model`` to each client, which runs
        ``work(its_copy_of_model, its_view)`` on its own data and sends the result back.

        Example::

            grads = federation.ask(federation.requesting,
                                   lambda m, c: gradient_on(m, c.forget), model)
        """
        clients = self._check(clients)
        down = state_bytes(model.state_dict())
        results = {}
        for c in clients:
            local = copy.deepcopy(model)
            results[c] = work(local, self.view(c))
            self.stats.bytes += down + payload_bytes(results[c])
        self.stats.clients_involved.update(clients)
        self.stats.rounds += 1
        return results

    def train(self, model: nn.Module, rounds: int | None = None,
              clients: Iterable[int] | None = None, data: str = "retained",
              settings: TrainSettings | None = None,
              param_masks: dict[str, torch.Tensor] | None = None,
              on_round: RoundCallback | None = None) -> nn.Module:
        """FedAvg rounds on the clients' ``data`` ("retained", "train" or "forget"; the
        gold standard alone may use "reference", the data the scenario prepared for it),
        in place, and return the same ``model`` object. Every floating-point
        ``state_dict`` entry (parameters and buffers) is averaged; ``param_masks``
        (``named_parameters`` name -> bool mask), when given, limits what trains and
        travels to those entries (other parameters stay frozen). ``on_round`` receives
        each round's states (see :func:`fedavg`).

        Example: fine-tune on what the retained clients keep::

            federation.train(ctx.model, rounds=5, clients=federation.retained_clients)
        """
        rounds = self.default_rounds if rounds is None else rounds
        candidates = self._check(self.retained_clients if clients is None else clients)
        parts = self._parts(data)
        if param_masks is None:
            per_client = state_bytes(model.state_dict())
        else:
            per_client = sum(int(m.sum()) * 4 for m in param_masks.values())
        self._calls += 1
        chosen = fedavg(model, parts, settings or self.settings, rounds, self.seed,
                        self.client_fraction, tag=("federation", self._calls),
                        param_masks=param_masks, participants=candidates,
                        on_round=on_round, progress=self.progress)
        for selected in chosen:
            self.stats.clients_involved.update(selected)
            self.stats.bytes += 2 * per_client * len(selected)
        self.stats.rounds += len(chosen)
        return model

    def _parts(self, data: str) -> list[Split]:
        if data == "reference":
            if not self.reference:
                raise ParticipationError(
                    "data='reference' is the gold standard's data; a method trains on "
                    "'retained', 'train' or 'forget'")
            return self.setup.reference_data()
        if data not in ("retained", "train", "forget"):
            raise ValueError(f"data={data!r}; expected 'retained', 'train' or 'forget'")
        return [getattr(self.view(c), data) for c in range(self.n_clients)]
