"""The contracts that plugins implement.

Every component (unlearner, partitioner, scenario kind, metric, dataset, model) is a
small class with a ``name`` and declared ``parameters``: a mapping from parameter name
to its default or to a :class:`Param`. The harness validates the YAML values against
these declarations, so a component's ``__init__`` never sees a value of the wrong type.

A plugin module returns its component classes from the registration hooks in
:mod:`fubench.hookspecs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from fubench.evaluation import Evaluation
    from fubench.fl.federation import Federation
    from fubench.fl.history import RoundHistory

_MISSING = object()


@dataclass(frozen=True)
class Param:
    """A declared parameter: default, type and bounds.

    Example::

        parameters = {"gamma": Param(0.5, float, min=0.0, max=1.0, help="share of TIS to reset")}
    """

    default: Any = _MISSING
    type: type | tuple[type, ...] | None = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    nullable: bool = False

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    def value_type(self) -> type | tuple[type, ...] | None:
        if self.type is not None:
            return self.type
        if self.default is _MISSING or self.default is None:
            return None
        if isinstance(self.default, bool):
            return bool
        if isinstance(self.default, (int, float)):
            return (int, float) if isinstance(self.default, float) else int
        return type(self.default)


def as_param(spec: Any) -> Param:
    """A bare default in ``parameters`` means ``Param(default)``."""
    return spec if isinstance(spec, Param) else Param(spec, nullable=spec is None)


class Component:
    """Base of every pluggable component.

    Subclasses set ``name`` (unique among their kind) and ``parameters``; the harness
    calls ``Component(**validated_params)``. ``self.params`` keeps the resolved values.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    parameters: ClassVar[dict[str, Any]] = {}

    def __init__(self, **params: Any):
        self.params = {k: as_param(v).default for k, v in self.parameters.items()
                       if not as_param(v).required}
        self.params.update(params)

    def __getattr__(self, key: str) -> Any:
        params = self.__dict__.get("params", {})
        if key in params:
            return params[key]
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params})"


# --------------------------------------------------------------------------- data


@dataclass
class Dataset:
    """A data set held as tensors. Images are float in [0, 1], shape (N, C, H, W);
    tabular rows are float, shape (N, F). ``x_test`` is None when the source defines no
    split (the harness then splits by ``test_fraction``)."""

    name: str
    source: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    n_classes: int
    modality: str = "image"
    feature_names: list[str] | None = None
    class_names: list[str] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


class DatasetLoader(Component):
    """Loads a data set. ``load(root)`` returns a :class:`Dataset`; it raises
    :class:`fubench.errors.DataUnavailable` with instructions when the data cannot be had."""

    modality: ClassVar[str] = "image"

    def load(self, root: Any) -> Dataset:  # pragma: no cover - interface
        raise NotImplementedError


class ModelFactory(Component):
    """Builds a fresh ``nn.Module`` for an input shape and number of classes."""

    def build(self, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:  # pragma: no cover
        raise NotImplementedError


class Partitioner(Component):
    """Splits training indices between clients. Must return disjoint index tensors that
    together cover every index."""

    def partition(self, labels: torch.Tensor, n_clients: int,
                  generator: torch.Generator) -> list[torch.Tensor]:  # pragma: no cover
        raise NotImplementedError


# ----------------------------------------------------------------------- scenario


@dataclass
class Split:
    """Inputs and labels on one device."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: torch.Tensor) -> "Split":
        return Split(self.x[index], self.y[index])

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.x.to(device), self.y.to(device))

    @staticmethod
    def concat(parts: list["Split"]) -> "Split":
        parts = [p for p in parts if len(p)]
        return Split(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]))


@dataclass
class ForgetRequest:
    """What a scenario asks the methods to forget.

    ``forget_masks[c]`` selects, within client ``c``'s training data, the samples to
    forget (D_T). ``feature_mask`` (input-shaped, bool) marks the input feature to forget
    for feature scenarios; ``target_class`` is the class the request is about (the
    backdoor target, the class to forget)."""

    clients: tuple[int, ...]
    forget_masks: dict[int, torch.Tensor]
    target_class: int | None = None
    feature_mask: torch.Tensor | None = None
    description: str = ""


@dataclass
class ScenarioSetup:
    """Everything a scenario kind builds for one seed.

    ``train[c]`` is what client ``c`` trains the original model on; ``retained[c]`` is
    what it keeps once the request is honoured (the retrain reference trains on it);
    ``eval_sets`` holds named evaluation splits ("test" always, "forget" = D_T)."""

    train: list[Split]
    retained: list[Split]
    request: ForgetRequest
    eval_sets: dict[str, Split]
    default_metrics: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_clients(self) -> int:
        return len(self.train)

    def forget_part(self, client: int) -> Split:
        mask = self.request.forget_masks.get(client)
        data = self.train[client]
        if mask is None:
            return data.subset(torch.zeros(len(data), dtype=torch.bool))
        return data.subset(mask)


class ScenarioKind(Component):
    """A kind of forgetting request (backdoor, class, client, sensitive, bias).

    ``build`` poisons / masks / colours the data as the kind requires and returns a
    :class:`ScenarioSetup`. ``check`` runs after the original and retrain models exist
    and returns warnings when the scenario did not happen (e.g. no backdoor learned)."""

    def build(self, data: Dataset, partition: list[torch.Tensor],
              generator: torch.Generator) -> ScenarioSetup:  # pragma: no cover
        raise NotImplementedError

    def check(self, original: "Evaluation", retrain: "Evaluation") -> list[str]:
        return []


# ---------------------------------------------------------------------- unlearning


@dataclass
class UnlearnContext:
    """What an unlearning method gets. It never sees client data directly: it asks
    clients to work through ``federation``."""

    model: nn.Module                      # a copy of the trained global model, θ^i
    initial_state: dict[str, torch.Tensor]  # the weights training started from
    make_model: Callable[[], nn.Module]   # a fresh, randomly initialised model
    request: ForgetRequest
    federation: "Federation"
    history: "RoundHistory | None"
    device: torch.device
    seed: int
    generator: torch.Generator
    scenario_kind: str
    upstream: dict[str, "UnlearnResult"] = field(default_factory=dict)


@dataclass
class UnlearnResult:
    """A method's answer: the unlearned model, optional artifacts other methods may
    read (see ``Unlearner.reads``) and optional extra metric values (e.g. reset_frac)."""

    model: nn.Module
    artifacts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


class Unlearner(Component):
    """A federated unlearning method.

    Class attributes:

    * ``participation``: which clients it may ask for work — ``"requesting"`` (only the
      clients that asked to be forgotten), ``"retained"`` (only the others), ``"all"``,
      or ``"none"``. The federation refuses any other client.
    * ``needs_history``: the scenario must record the round history.
    * ``unsupported_kinds``: ``{kind: reason}``; those scenarios show "n/a".
    * ``reads``: names of methods whose :class:`UnlearnResult` this one reads; the runner
      runs them first (same seed and sweep point) and passes them in ``ctx.upstream``.
    * ``reports``: metrics it reports itself in ``UnlearnResult.metrics`` (e.g.
      ``history_bytes``); a scenario that lists the method computes them for every row,
      so the other rows show their own value (e.g. 0 bytes of history) beside it.

    ``unlearn(ctx)`` returns an ``nn.Module`` or an :class:`UnlearnResult`; raise
    :class:`fubench.errors.NotApplicable` for a case it cannot serve.
    """

    participation: ClassVar[str] = "all"
    needs_history: ClassVar[bool] = False
    unsupported_kinds: ClassVar[dict[str, str]] = {}
    reads: ClassVar[tuple[str, ...]] = ()
    reports: ClassVar[tuple[str, ...]] = ()

    def unlearn(self, ctx: UnlearnContext) -> nn.Module | UnlearnResult:  # pragma: no cover
        raise NotImplementedError


# -------------------------------------------------------------------------- metrics


class Metric(Component):
    """A number computed for every row (original, each method, retrain).

    ``compute(ev)`` returns a float, or None where the metric is undefined (e.g. a
    normalised metric whose denominator is ~0); the table shows "—".
    ``higher_is_better`` drives ↑/↓ in tables (None: neither); ``percent`` shows the
    value ×100; ``cost`` marks what a method spends (time, clients, traffic, storage)
    rather than how well it unlearns: the leaderboard ranks the two apart, so a method
    that is cheap because it does nothing cannot rank first."""

    higher_is_better: ClassVar[bool | None] = None
    percent: ClassVar[bool] = False
    cost: ClassVar[bool] = False

    def compute(self, ev: "Evaluation") -> float | None:  # pragma: no cover
        raise NotImplementedError


PARTICIPATION = ("requesting", "retained", "all", "none")
