"""The typed records a validated scenario file becomes (built by
:mod:`fubench.config.validate`, which also applies command-line overrides)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fubench.config.claims import Claim


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    params: dict[str, Any]


@dataclass(frozen=True)
class MethodSpec:
    """One row of the table: a method at one point of its parameter sweep."""

    name: str
    params: dict[str, Any]
    sweep: dict[str, Any] = field(default_factory=dict)  # the swept values at this point

    @property
    def label(self) -> str:
        if not self.sweep:
            return self.name
        inner = ",".join(f"{k}={label_value(v)}" for k, v in self.sweep.items())
        return f"{self.name}[{inner}]"


@dataclass(frozen=True)
class FederationConfig:
    clients: int
    rounds: int
    local_epochs: int
    client_fraction: float
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    partition: ComponentSpec
    record_history: bool | str
    history_dtype: str = "float32"  # storage precision of the round history


@dataclass(kw_only=True)
class ScenarioConfig:
    file: str
    version: int
    name: str
    description: str
    dataset: ComponentSpec
    test_fraction: float | None
    split_seed: int
    model: ComponentSpec
    federation: FederationConfig
    scenario: ComponentSpec
    methods: list[MethodSpec]
    metrics: list[str] | None
    seeds: list[int]
    device: str
    claims: list[Claim] = field(default_factory=list)
    #: share of the training (or test) split the server holds as unlabeled inputs
    server_fraction: float = 0.0
    server_from: str = "train"
    #: another data set the server also holds as many inputs of (a shifted distribution)
    server_shifted: ComponentSpec | None = None
    #: seeds a method's sweep point is chosen on, never reported (``fubench run --tuning``)
    tuning_seeds: list[int] = field(default_factory=list)
    #: what a run of this configuration is for: "evaluation" (the reported seeds) or
    #: "tuning" (its result files are ``tuning_seed_<n>.json``)
    purpose: str = "evaluation"
    #: the command line's ``--set`` settings ({key: value}) applied to the file
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.scenario.name

    def resolved(self) -> dict[str, Any]:
        """The fully resolved configuration, as recorded in every result."""
        fed = self.federation
        return {
            "version": self.version,
            "name": self.name,
            "dataset": {
                "name": self.dataset.name,
                **self.dataset.params,
                "test_fraction": self.test_fraction,
                "split_seed": self.split_seed,
                # recorded only when set, so scenarios without it keep their hash
                **(
                    {"server_fraction": self.server_fraction, "server_from": self.server_from}
                    if self.server_fraction
                    else {}
                ),
                **(
                    {
                        "server_shifted": {
                            "name": self.server_shifted.name,
                            **self.server_shifted.params,
                        }
                    }
                    if self.server_shifted
                    else {}
                ),
            },
            "model": {"name": self.model.name, **self.model.params},
            "federation": {
                "clients": fed.clients,
                "rounds": fed.rounds,
                "local_epochs": fed.local_epochs,
                "client_fraction": fed.client_fraction,
                "batch_size": fed.batch_size,
                "lr": fed.lr,
                "momentum": fed.momentum,
                "weight_decay": fed.weight_decay,
                "partition": {"name": fed.partition.name, **fed.partition.params},
                "record_history": fed.record_history,
                "history_dtype": fed.history_dtype,
            },
            "scenario": {"kind": self.scenario.name, **self.scenario.params},
            "methods": {m.label: m.params for m in self.methods},
            "metrics": self.metrics,
            "seeds": self.seeds,
            "tuning_seeds": self.tuning_seeds,
            "device": self.device,
            "claims": [c.as_dict() for c in self.claims],
            # only when given, so scenarios run as their files say keep their hash
            **({"overrides": dict(self.overrides)} if self.overrides else {}),
        }


def label_value(value: Any) -> str:
    """A swept value as a row label shows it (0.1, not 0.1000000000000000055)."""
    return f"{value:g}" if isinstance(value, float) else str(value)
