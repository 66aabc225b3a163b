"""The kit's tiny world: every scenario kind built on tiny synthetic data through the
engine (the same jobs ``fubench run`` runs), its reference models trained once, and
methods run as the runner would run them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fubench.config.spec import MethodSpec
from fubench.engine.job import Job
from fubench.engine.outcome import Outcome
from fubench.errors import ParticipationError, one_line, origin
from fubench.exits import failure_line
from fubench.params import ConfigContext, defaults
from fubench.plugins import load_registry
from fubench.progress import quietly, say
from fubench.registry import Registry
from fubench.scenario import ScenarioSetup
from fubench.testing.tiny import N_CLASSES, N_CLIENTS, tiny_data, tiny_plan


class ConformanceError(AssertionError):
    """A component broke the plugin contract; the message has one line per problem."""


#: the engine's own frames are not where a plugin went wrong
_ENGINE_FRAMES = ("/fubench/engine/", "/fubench/testing/", "/fubench/exits.py")


@dataclass
class Stage:
    """One scenario kind built on the tiny data, with its trained reference models."""

    kind: str
    job: Job | None = None
    problems: list[str] = field(default_factory=list)  # why the kind could not be built

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def setup(self) -> ScenarioSetup:
        return self.job.setup

    @property
    def refs(self) -> dict[str, Any]:
        return self.job.evaluations

    @property
    def original(self) -> Any:
        """θ^i, the kind's trained original model."""
        return self.job.original.model


class TinyWorld:
    """Builds each scenario kind on the tiny data once, trains its reference models,
    and runs methods on it; the checks share one world."""

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        seed: int = 0,
        rounds: int = 1,
        kind_params: dict[str, dict[str, Any]] | None = None,
        check_determinism: bool = True,
    ):
        self.registry = registry if registry is not None else load_registry()
        self.seed = seed
        self.rounds = rounds
        self.kind_params = dict(kind_params or {})
        self.check_determinism = check_determinism
        self._stages: dict[str, Stage] = {}

    # -- building scenario kinds
    def stage(self, kind: str) -> Stage:
        if kind not in self._stages:
            self._stages[kind] = self._build_stage(kind)
        return self._stages[kind]

    def params_of(self, kind: str) -> dict[str, Any]:
        cls = self.registry.kinds.get(kind)
        return {**cls.example_params, **self.kind_params.get(kind, {})}

    def kind_instance(self, kind: str) -> tuple[Any, str | None, list[str]]:
        """The kind with the kit's parameters, and the first modality it accepts."""
        cls = self.registry.kinds.get(kind)
        params = self.params_of(kind)
        refusals = []
        for modality in ("image", "tabular"):
            context = ConfigContext(N_CLASSES, N_CLIENTS, modality, f"kit_{modality}")
            said = list(cls.validate_config({**defaults(cls), **params}, context) or ())
            if not said:
                return cls(**params), modality, []
            refusals += [f"{modality}: {key}: {msg}" for key, msg in said]
        return None, None, refusals

    def job(self, kind: str, instance: Any, modality: str) -> Job:
        plan = tiny_plan(kind, instance, self.registry, self.rounds)
        return Job(plan, tiny_data(modality, self.seed), self.seed)

    def _build_stage(self, kind: str) -> Stage:
        stage = Stage(kind)
        instance, modality, refusals = self.kind_instance(kind)
        if instance is None:
            stage.problems.append(
                f"refuses the kit's tiny data with parameters {self.params_of(kind)} "
                f"({'; '.join(refusals)}); declare working ones as the kind's "
                f"example_params or pass fubench.testing.Kit(kind_params={{'{kind}': {{...}}}})"
            )
            return stage
        stage.job = self.job(kind, instance, modality)
        try:
            setup = stage.job.setup
        except Exception as exc:
            stage.problems.append(f"build() raised {one_line(exc)}{origin(exc)}")
            return stage
        if not isinstance(setup, ScenarioSetup):
            stage.problems.append(
                f"build() returned {type(setup).__name__}; return a fubench.ScenarioSetup"
            )
            return stage
        say(
            f"fubench.testing: training the tiny '{kind}' scenario's original and "
            f"gold-standard models (once, for every check)"
        )
        try:
            with quietly():  # the engine's lines, said for each kind, would repeat
                stage.job.references(needs_history=True)
        except Exception as exc:  # e.g. a setup in which no client keeps any data
            stage.problems.append(f"FedAvg on the setup it built failed: {one_line(exc)}")
            return stage
        if stage.job.reference.status != "ok":
            stage.problems.append(f"the gold standard failed on it: {stage.job.reference.error}")
        return stage

    # -- running a method
    def context(
        self,
        stage: Stage,
        cls: type,
        label: str | None = None,
        upstream: dict[str, Any] | None = None,
    ) -> Any:
        """The ``UnlearnContext`` the runner would give method ``cls`` on ``stage`` (for a
        plugin's own unit tests)."""
        return stage.job.context(cls.name, label, upstream)

    def unlearn(self, stage: Stage, name: str) -> Outcome:
        """Run method ``name`` with its defaults as the runner would; never raises for
        the method's own failure. A failure's message says what to fix."""
        with quietly():  # "seed 0: NAME" for every kind and every run of the checks
            outcome = stage.job.run_method(MethodSpec(name, {}))
        exc = outcome.exception
        if isinstance(exc, ParticipationError):
            cls = self.registry.methods.get(name)
            outcome.error = (
                f"the federation refused a client: {exc}; ask only the clients "
                f"that participation='{cls.participation}' allows "
                f"(ctx.federation.requesting / .retained_clients) or declare "
                f"another participation"
            )
        elif isinstance(exc, Exception):
            outcome.error = f"unlearn() raised {one_line(exc)}{origin(exc, _ENGINE_FRAMES)}"
        elif exc is not None:  # it tried to end the process
            outcome.error = f"unlearn(): {failure_line(exc)}{origin(exc, _ENGINE_FRAMES)}"
        return outcome
