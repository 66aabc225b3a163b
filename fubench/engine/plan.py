"""A plan: everything that decides a scenario's jobs except the seed — the components,
the training schedule, the device, the methods and metrics. The runner makes one from a
scenario file; the conformance kit makes one of its own for each scenario kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fubench import code_fingerprint, metric_names
from fubench.api import Partitioner, ScenarioKind, Unlearner
from fubench.config.spec import MethodSpec, ScenarioConfig
from fubench.fl.training import TrainSettings
from fubench.registry import Registry

ModelBuilder = Callable[[tuple[int, ...], int], nn.Module]
#: the parts of the harness whose code every row records (code_fingerprint.PARTS)
ROW_HARNESS = ("training", "scoring")


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; refuse a device this machine lacks."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' was asked for but CUDA is not available")
    return torch.device(name)


@dataclass
class Plan:
    """How every seed of one scenario is built, trained and measured."""

    name: str
    kind_name: str
    kind: ScenarioKind
    partitioner: Partitioner
    n_clients: int
    build_model: ModelBuilder
    settings: TrainSettings
    rounds: int
    client_fraction: float
    device: torch.device
    registry: Registry
    methods: list[MethodSpec] = field(default_factory=list)
    metrics: list[str] | None = None  # None: the kind's defaults
    record_history: bool | str = "auto"
    history_dtype: str = "float32"
    #: what identifies the trained models besides seed and data; None: never cache
    identity: dict[str, Any] | None = None
    progress: bool = True
    #: time the reference again on this hardware even when the cache holds a timing
    retime: bool = False
    #: whether the rows' timings matter; False (the attention maps need only the
    #: models): a cached reference is used as it is, never trained again to time it
    timed: bool = True
    #: the classes that make the trained models: data set, model, partitioner, kind and
    #: the gold standard (their code goes into every code record)
    model_components: list[type] = field(default_factory=list)

    @classmethod
    def from_config(
        cls, config: ScenarioConfig, registry: Registry, device: str | None = None
    ) -> Plan:
        fed = config.federation
        model = registry.models.get(config.model.name)(**config.model.params)
        components = model_components(config, registry)
        settings = TrainSettings(
            fed.local_epochs, fed.batch_size, fed.lr, fed.momentum, fed.weight_decay
        )
        return cls(
            name=config.name,
            kind_name=config.kind,
            kind=registry.kinds.get(config.kind)(**config.scenario.params),
            partitioner=registry.partitioners.get(fed.partition.name)(**fed.partition.params),
            n_clients=fed.clients,
            build_model=model.build,
            settings=settings,
            rounds=fed.rounds,
            client_fraction=fed.client_fraction,
            device=resolve_device(device or config.device),
            registry=registry,
            methods=ordered(config.methods, registry),
            metrics=config.metrics,
            record_history=fed.record_history,
            history_dtype=fed.history_dtype,
            identity=model_identity(config, registry, components),
            model_components=components,
        )

    # -- the methods
    @property
    def reference(self) -> type[Unlearner]:
        return self.registry.reference()

    def method_rows(self) -> list[MethodSpec]:
        """The methods to run as rows of their own: all but the reference, which is
        trained (and cached) beside the original."""
        return [m for m in self.methods if m.name != self.reference.name]

    def row_code(self, method: str | None, metrics: list[str]) -> dict[str, Any]:
        """The code record of a row (:mod:`fubench.code_fingerprint`): the harness that
        trains and scores, the components that make the models, the metrics measured,
        and the row's method with every method it reads (a metric measured at a point
        of a request stream, ``nfs@2``, by its metric's code)."""
        measured = [self.registry.metrics.get(metric_names.split(m)[0]) for m in metrics]
        classes = [*self.model_components, *dict.fromkeys(measured)]
        pending = [method] if method is not None else []
        while pending:
            cls = self.registry.methods.get(pending.pop())
            if cls not in classes:
                classes.append(cls)
                pending += [name for name in cls.reads if name in self.registry.methods]
        return code_fingerprint.record(ROW_HARNESS, classes)

    def needs_history(self) -> bool:
        if self.record_history in (True, False):
            return bool(self.record_history)
        return any(self.registry.methods.get(m.name).needs_history for m in self.methods)

    def row_metrics(self, default_metrics: list[str]) -> list[str]:
        """The scenario's metrics (the kind's defaults unless the file lists them), then
        the others every row gets (:meth:`Registry.row_metrics`)."""
        return self.registry.row_metrics(
            list(self.metrics or default_metrics), [spec.name for spec in self.methods]
        )

    def upstream_spec(self, name: str, reader: MethodSpec) -> MethodSpec:
        """The sweep point of method ``name`` that ``reader`` reads: the listed point whose
        parameters agree with the reader's, else ``name`` with the listed (or default)
        parameters and the reader's values for the parameters the two share."""
        listed = next(
            (m for m in self.methods if m.name == name and params_agree(m.params, reader.params)),
            None,
        )
        if listed is not None:
            return listed
        cls = self.registry.methods.get(name)
        shared = {k: v for k, v in reader.params.items() if k in cls.parameters}
        defaults = next((m.params for m in self.methods if m.name == name), {})
        return MethodSpec(name, {**defaults, **shared})


def ordered(methods: list[MethodSpec], registry: Registry) -> list[MethodSpec]:
    """Methods that read another method's output run after the methods they read."""
    reads = {m.name: set(registry.methods.get(m.name).reads) for m in methods}
    return sorted(methods, key=lambda m: bool(reads[m.name]))


def params_agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two parameter sets agree on every key they share."""
    return all(a[k] == b[k] for k in a.keys() & b.keys())


def model_settings(federation: dict[str, Any]) -> dict[str, Any]:
    """The resolved ``federation`` settings that shape the trained models: all but how
    the round history is kept (whether, and at which precision), which changes none."""
    return {k: v for k, v in federation.items() if k not in ("record_history", "history_dtype")}


def model_components(config: ScenarioConfig, registry: Registry) -> list[type]:
    """The classes whose code makes a scenario's trained models."""
    return [
        registry.datasets.get(config.dataset.name),
        registry.models.get(config.model.name),
        registry.partitioners.get(config.federation.partition.name),
        registry.kinds.get(config.kind),
        registry.reference(),
    ]


def model_identity(
    config: ScenarioConfig, registry: Registry, components: list[type]
) -> dict[str, Any]:
    """Everything that determines the original and reference models besides the seed and
    the data: the resolved settings, the versions of the plugins that train them, and
    their code (the harness that trains, and the components' modules)."""
    cfg = config.resolved()
    fed = model_settings(cfg["federation"])
    reference = registry.reference().name
    versions = {
        "dataset": registry.version(registry.datasets, config.dataset.name),
        "model": registry.version(registry.models, config.model.name),
        "partitioner": registry.version(registry.partitioners, config.federation.partition.name),
        "kind": registry.version(registry.kinds, config.kind),
        "reference": registry.version(registry.methods, reference),
    }
    return {
        "dataset": cfg["dataset"],
        "model": cfg["model"],
        "federation": fed,
        "scenario": cfg["scenario"],
        "plugins": versions,
        "code": code_fingerprint.record(("training",), components),
    }
