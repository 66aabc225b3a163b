"""The federation as an unlearning method sees it.

A method never reads client data. It asks clients to work on their own data — train
locally, compute a statistic — and the federation does the work, checks that the
method may involve that client, and counts what it cost: which clients took part, how
many communication rounds, how many bytes crossed the network (model down, results up)
and the work (FLOPs, see :mod:`fubench.fl.flops`) it asked of the clients.

**What a method can reach.** A method holds a :class:`Federation`: the training
settings, who the clients are and which of them it may ask, and the two calls that
reach client data, :meth:`Federation.ask` and :meth:`Federation.train`, both checked
against the method's declared participation and counted. The clients' data and the
accounts live in an object of this module that no attribute of a ``Federation`` leads
to (the engine reaches the accounts through :func:`counting_server_work` and
:attr:`Federation.stats`, a copy). A client asked for work gets a copy of its data, so
work that changes it changes nothing another ask or method sees. This is a boundary for
honest code, not a sandbox: Python cannot stop a determined author (module globals, the
garbage collector and stack frames reach any object of the process).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fubench.errors import ParticipationError
from fubench.fl.flops import WorkMeter, state_fingerprint, training_flops_per_sample
from fubench.fl.training import RoundCallback, TrainSettings, fedavg, state_bytes
from fubench.scenario import ScenarioSetup, Split


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
    #: FLOPs of FedAvg training (counted from the schedule; asks are in the meter)
    train_flops: int = 0
    #: wall time of shared asks answered from an earlier row (see ``Federation.ask``)
    replayed_seconds: float = 0.0


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


def detached_copy(obj: Any) -> Any:
    """A copy of a (nested) client answer whose tensors hold no autograd graph."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: detached_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(detached_copy(v) for v in obj)
    return copy.deepcopy(obj)


def _copy(split: Split) -> Split:
    return Split(split.x.clone(), split.y.clone())


class _Clients:
    """The clients, their data and the accounts of one method's federation: what a
    :class:`Federation` does its work with. No attribute of a ``Federation`` leads here."""

    def __init__(
        self,
        setup: ScenarioSetup,
        settings: TrainSettings,
        rounds: int,
        client_fraction: float,
        seed: int,
        device: torch.device,
        participation: str,
        progress: Callable | None,
        reference: bool,
        shared: dict | None,
    ):
        self.setup = setup
        self.settings = dataclasses.replace(settings)  # frozen, but object.__setattr__...
        self.default_rounds = rounds
        self.client_fraction = client_fraction
        self.seed = seed
        self.device = device
        self.participation = participation
        self.progress = progress
        self.reference = reference
        self.stats = FederationStats()
        self.meter = WorkMeter()
        #: answers of shared asks, by key; a job passes one dict to all its federations
        self.shared = shared if shared is not None else {}
        self.calls = 0

    # -- who
    @property
    def n_clients(self) -> int:
        return self.setup.n_clients

    @property
    def requesting(self) -> list[int]:
        return list(self.setup.request.clients)

    def kept(self) -> list[Split]:
        return self.setup.reference_data() if self.reference else self.setup.retained

    def holding(self, data: str) -> list[int]:
        parts = self.parts(data)
        return [c for c in range(self.n_clients) if len(parts[c]) > 0]

    def allowed(self, client: int) -> bool:
        if self.participation == "none":
            return False
        if self.participation == "requesting":
            return client in self.requesting
        if self.participation == "retained":
            return len(self.kept()[client]) > 0
        return True

    def check(self, clients: Iterable[int]) -> list[int]:
        clients = list(clients)
        for c in clients:
            if not 0 <= c < self.n_clients:
                raise ParticipationError(
                    f"there is no client {c} (clients 0..{self.n_clients - 1})"
                )
            if not self.allowed(c):
                raise ParticipationError(
                    f"the method declared participation='{self.participation}' but asked "
                    f"client {c} for work"
                )
        return clients

    def view(self, client: int) -> ClientView:
        """Client ``client``'s data, copied for the work it is asked to do."""
        return ClientView(
            client,
            _copy(self.setup.train[client]),
            self.setup.forget_part(client),  # a subset: a copy already
            _copy(self.setup.retained[client]),
        )

    def parts(self, data: str) -> list[Split]:
        """Every client's ``data`` (the setup's own splits: only training reads them)."""
        if data == "reference":
            if not self.reference:
                raise ParticipationError(
                    "data='reference' is the gold standard's data; a method trains on "
                    "'retained', 'train' or 'forget'"
                )
            return self.setup.reference_data()
        if data == "train":
            return list(self.setup.train)
        if data == "retained":
            return list(self.setup.retained)
        if data == "forget":
            return [self.setup.forget_part(c) for c in range(self.n_clients)]
        raise ValueError(f"data={data!r}; expected 'retained', 'train' or 'forget'")

    # -- work
    def ask(
        self,
        clients: Iterable[int],
        work: Callable[[nn.Module, ClientView], Any],
        model: nn.Module,
        share: Any,
    ) -> dict[int, Any]:
        clients = self.check(clients)
        key = None
        if share is not None:
            key = (
                share,
                tuple(clients),
                getattr(work, "__qualname__", repr(work)),
                state_fingerprint(model),
            )
            if key in self.shared:
                results, cost = self.shared[key]
                self.charge(clients, **cost)
                return detached_copy(results)
        start, flops = time.perf_counter(), self.meter.counts["clients"]
        down = state_bytes(model.state_dict())
        results, sent = {}, 0
        for c in clients:
            local = copy.deepcopy(model)
            with self.meter.phase("clients"):
                results[c] = work(local, self.view(c))
            sent += down + payload_bytes(results[c])
        flops, self.meter.counts["clients"] = self.meter.counts["clients"] - flops, flops
        cost = {"bytes": sent, "flops": flops, "seconds": time.perf_counter() - start}
        self.charge(clients, sent, flops, 0.0)  # the time of this ask is the row's own
        if key is not None:
            self.shared[key] = (detached_copy(results), cost)
        return results

    def charge(self, clients: list[int], bytes: int, flops: int, seconds: float) -> None:
        self.stats.bytes += bytes
        self.meter.add("clients", flops)
        self.stats.replayed_seconds += seconds
        self.stats.clients_involved.update(clients)
        self.stats.rounds += 1

    def train(
        self,
        model: nn.Module,
        rounds: int | None,
        clients: Iterable[int] | None,
        data: str,
        settings: TrainSettings | None,
        param_masks: dict[str, torch.Tensor] | None,
        on_round: RoundCallback | None,
        first_round: int = 0,
    ) -> nn.Module:
        rounds = self.default_rounds if rounds is None else rounds
        kept = [c for c in range(self.n_clients) if len(self.kept()[c]) > 0]
        candidates = self.check(kept if clients is None else clients)
        parts = self.parts(data)
        if param_masks is None:
            per_client = state_bytes(model.state_dict())
        else:
            per_client = sum(int(m.sum()) * 4 for m in param_masks.values())
        self.calls += 1
        settings = settings or self.settings
        with self.meter.phase(None):  # counted from the schedule below, not watched
            per_sample = next(
                (
                    training_flops_per_sample(model, parts[c])
                    for c in candidates
                    if len(parts[c]) > 0
                ),
                0,
            )
            chosen = fedavg(
                model,
                parts,
                settings,
                rounds,
                self.seed,
                self.client_fraction,
                tag=("federation", self.calls),
                param_masks=param_masks,
                participants=candidates,
                on_round=on_round,
                progress=self.progress,
                first_round=first_round,
            )
        for selected in chosen:
            self.stats.clients_involved.update(selected)
            self.stats.bytes += 2 * per_client * len(selected)
            samples = settings.epochs * sum(len(parts[c]) for c in selected)
            self.stats.train_flops += samples * per_sample
        self.stats.rounds += len(chosen)
        return model


#: each federation's clients; reached through the federation's methods, not an attribute
_CLIENTS: weakref.WeakKeyDictionary[Federation, _Clients] = weakref.WeakKeyDictionary()

#: names plugins used before client data left the federation's attributes
_GONE = {
    "view": "a method never reads client data: ask the clients to work on it with "
    "federation.ask(clients, work, model), which hands work(model, view) each client's "
    "view, checked against the method's participation and counted",
    "setup": "a method never reads the scenario's data: the clients it may ask are "
    "federation.requesting / .retained_clients / .clients_holding(data), and "
    "federation.ask / .train make them work on their own data",
}


class Federation:
    """Clients holding their data, as a method sees them: who they are, which it may
    ask, and :meth:`ask` / :meth:`train`, the only ways to make them work on their
    data — checked against the method's ``participation`` and counted.

    Every attribute is read-only. The clients' data and the accounts are not among
    them (see the module's notes): ``stats`` is a copy of what was counted so far."""

    __slots__ = ("__weakref__",)

    def __init__(
        self,
        setup: ScenarioSetup,
        settings: TrainSettings,
        rounds: int,
        client_fraction: float,
        seed: int,
        device: torch.device,
        participation: str = "all",
        progress: Callable | None = None,
        reference: bool = False,
        shared: dict | None = None,
    ):
        _CLIENTS[self] = _Clients(
            setup,
            settings,
            rounds,
            client_fraction,
            seed,
            device,
            participation,
            progress,
            reference,
            shared,
        )

    def __getattr__(self, name: str) -> Any:
        if name in _GONE:
            raise AttributeError(f"Federation has no '{name}': {_GONE[name]}")
        raise AttributeError(f"'Federation' object has no attribute '{name}'")

    # a federation is a service, not data: copying a context shares it
    def __copy__(self) -> Federation:
        return self

    def __deepcopy__(self, memo: dict) -> Federation:
        return self

    def __reduce__(self) -> Any:
        raise TypeError("a Federation lives in the process that runs the method")

    def __repr__(self) -> str:
        inside = _CLIENTS[self]
        return (
            f"Federation({inside.n_clients} clients, participation="
            f"'{inside.participation}', {inside.stats.rounds} rounds so far)"
        )

    # -- settings
    @property
    def settings(self) -> TrainSettings:
        """How clients train locally (a frozen record: ``settings.with_changes(...)``)."""
        return _CLIENTS[self].settings

    @property
    def default_rounds(self) -> int:
        """The FedAvg rounds the original model trained for (``train``'s default)."""
        return _CLIENTS[self].default_rounds

    @property
    def client_fraction(self) -> float:
        return _CLIENTS[self].client_fraction

    @property
    def seed(self) -> int:
        return _CLIENTS[self].seed

    @property
    def device(self) -> torch.device:
        return _CLIENTS[self].device

    @property
    def participation(self) -> str:
        """What the method declared (``Unlearner.participation``)."""
        return _CLIENTS[self].participation

    # -- what was counted
    @property
    def stats(self) -> FederationStats:
        """A copy of what was counted so far: clients involved, rounds, bytes."""
        stats = _CLIENTS[self].stats
        return dataclasses.replace(stats, clients_involved=set(stats.clients_involved))

    @property
    def client_work(self) -> int:
        """FLOPs the clients did so far: training and asks."""
        inside = _CLIENTS[self]
        return inside.stats.train_flops + inside.meter.counts["clients"]

    @property
    def server_work(self) -> int:
        """FLOPs the method computed on the server so far (counted while it runs under
        the engine, outside training and asks)."""
        return _CLIENTS[self].meter.counts["server"]

    # -- who
    @property
    def n_clients(self) -> int:
        return _CLIENTS[self].n_clients

    @property
    def requesting(self) -> list[int]:
        """The clients that asked to be forgotten."""
        return _CLIENTS[self].requesting

    @property
    def retained_clients(self) -> list[int]:
        """Clients that keep data after the request (all but a fully forgotten client);
        for the gold standard, the clients that hold reference data."""
        inside = _CLIENTS[self]
        return [c for c in range(inside.n_clients) if len(inside.kept()[c]) > 0]

    def clients_holding(self, data: str = "train") -> list[int]:
        """The clients whose ``data`` ("train", "retained" or "forget") is not empty —
        how many samples each holds is what FedAvg weighs by, not their content."""
        return _CLIENTS[self].holding(data)

    def allowed(self, client: int) -> bool:
        """Whether the method's participation lets it ask ``client`` for work."""
        return _CLIENTS[self].allowed(client)

    # -- work
    def ask(
        self,
        clients: Iterable[int],
        work: Callable[[nn.Module, ClientView], Any],
        model: nn.Module,
        share: Any = None,
    ) -> dict[int, Any]:
        """One communication round: the server sends ``model`` to each client, which runs
        ``work(its_copy_of_model, its_view)`` on its own data and sends the result back.
        The view holds a copy of the client's data. The FLOPs the clients compute are
        counted as they run.

        Returns ``{client: what work returned}``, one entry per client asked, in the
        order of ``clients``. ``work`` gets a deep copy of ``model`` (change it freely:
        the caller's model is untouched) and a :class:`ClientView`; it may return any
        value — its tensors are counted as bytes sent back — or ``None`` (nothing is
        sent back; the client still counts as involved, and the model sent to it as
        bytes). Every client in ``clients`` must be one the method's ``participation``
        allows, else :class:`fubench.ParticipationError`; each counts as involved, and
        the ask as one communication round.

        ``share``: a hashable key naming what the round computes, with everything it
        depends on besides the model and the clients (e.g. ``("curvature", options)``).
        Within one job, a later ask with the same key, clients, work function and model
        state (e.g. the next point of a sweep) gets a copy of the first answer without
        recomputing it, and is charged what the first cost — clients, round, bytes,
        FLOPs and its wall time — so each row still reports the cost of running alone.

        Example::

            grads = federation.ask(federation.requesting,
                                   lambda m, c: gradient_on(m, c.forget), model)
        """
        return _CLIENTS[self].ask(clients, work, model, share)

    def train(
        self,
        model: nn.Module,
        rounds: int | None = None,
        clients: Iterable[int] | None = None,
        data: str = "retained",
        settings: TrainSettings | None = None,
        param_masks: dict[str, torch.Tensor] | None = None,
        on_round: RoundCallback | None = None,
        first_round: int = 0,
    ) -> nn.Module:
        """FedAvg rounds on the clients' ``data`` ("retained", "train" or "forget"; the
        gold standard alone may use "reference", the data the scenario prepared for it),
        in place, and return the same ``model`` object. Every floating-point
        ``state_dict`` entry (parameters and buffers) is averaged; ``param_masks``
        (``named_parameters`` name -> bool mask), when given, limits what trains and
        travels to those entries (other parameters stay frozen). ``on_round`` receives
        each round's states (see :func:`fedavg`); ``first_round`` numbers the rounds
        from there, continuing the schedule of an earlier run (see :func:`fedavg`).

        Defaults: ``rounds`` None trains the scenario's ``federation.rounds``;
        ``clients`` None trains on ``federation.retained_clients`` (every client that
        keeps data once the request is honoured; for the gold standard, those holding
        reference data) — a method whose ``participation`` excludes some of them must
        name its clients; ``data`` "retained" is what each keeps; ``settings`` None is
        the scenario's local training (epochs, batch size, learning rate, momentum,
        weight decay). Each round samples the scenario's ``client_fraction`` of
        ``clients``, as FedAvg does.

        Example: fine-tune on what the retained clients keep::

            federation.train(ctx.model, rounds=5, clients=federation.retained_clients)
        """
        inside = _CLIENTS[self]
        return inside.train(
            model, rounds, clients, data, settings, param_masks, on_round, first_round
        )


@contextlib.contextmanager
def counting_server_work(federation: Federation) -> Iterator[None]:
    """Count the FLOPs computed inside as the method's own server work (the engine
    wraps ``unlearn`` in it; training and asks inside count as the clients')."""
    with _CLIENTS[federation].meter.phase("server"):
        yield
