"""One job: one scenario on one seed — its setup, its reference models, its methods and
its rows. The runner, the conformance kit and the attention plots all run jobs.

Every random choice draws from generators seeded from (seed, purpose): the partition,
the scenario's poisoning or masking, each model's initialisation, each method's own
generator. With the CPU in its reproducible mode (:mod:`fubench.engine.determinism`,
set up when a job is made), a job is repeatable bit for bit on any thread count."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fubench import data as datasets
from fubench.config import MethodSpec
from fubench.engine import determinism
from fubench.engine.cache import ModelCache
from fubench.engine.methods import Outputs, run_method
from fubench.engine.plan import Plan
from fubench.engine.references import Outcome, train_original, train_reference
from fubench.errors import one_line
from fubench.evaluation import REFERENCE_ROW, Evaluation
from fubench.fl.federation import Federation
from fubench.fl.training import derive_seed, generator, state_copy
from fubench.progress import bar
from fubench.records import Dataset, RowInfo, ScenarioSetup
from fubench.results import ORIGINAL, clean_number, hardware


class Job:
    """One (scenario, seed). Build it, call :meth:`references`, then :meth:`run` each
    method and :meth:`row` each outcome."""

    def __init__(
        self,
        plan: Plan,
        data: Dataset,
        seed: int,
        cache: ModelCache | None = None,
        data_seed: int | None = None,
    ):
        self.plan = plan
        self.data = data
        self.seed = seed
        #: seeds the partition, the kind's build and the attacks; ``seed`` seeds the
        #: training (initialisation, sampling, batches, methods). They differ only in a
        #: training replica (:mod:`fubench.engine.replicas`): same data, new training.
        self.data_seed = seed if data_seed is None else data_seed
        self.cache = cache if cache is not None else ModelCache(enabled=False)
        self.reference_name = plan.reference.name
        self.original: Outcome | None = None
        self.reference: Outcome | None = None
        self.evaluations: dict[str, Evaluation] = {}
        self._outputs: Outputs = {}
        self._tmp: list[tempfile.TemporaryDirectory] = []
        #: answers of ``Federation.ask(..., share=key)``, shared by the job's rows
        self.shared: dict[Any, Any] = {}
        determinism.configure()

    # ------------------------------------------------------------------ set-up
    @cached_property
    def setup(self) -> ScenarioSetup:
        """The kind's data for this seed, on the plan's device."""
        parts = self.plan.partitioner.partition(
            self.data.y_train, self.plan.n_clients, generator(self.data_seed, "partition")
        )
        setup = self.plan.kind.build(self.data, parts, generator(self.data_seed, "scenario"))
        setup.server_data = self.data.x_server  # the harness's, the same for every method
        setup.forgotten_behaviour = self.plan.kind.forgotten_behaviour  # for metrics
        setup.to(self.plan.device)
        if setup.attack_seed is None:
            setup.attack_seed = derive_seed(self.data_seed, "attack") % (2**31 - 1)
        return setup

    @cached_property
    def initial_state(self) -> dict[str, torch.Tensor]:
        """The weights every training of this job starts from."""
        return state_copy(self.make_model("init"))

    @cached_property
    def metrics(self) -> list[str]:
        return self.plan.row_metrics(self.setup.default_metrics)

    def make_model(self, *tag: object) -> nn.Module:
        """A model initialised from a seed derived from (seed, tag), without touching
        the global random state."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.seed, *tag))
            model = self.plan.build_model(self.data.input_shape, self.data.n_classes)
        return model.to(self.plan.device)

    def load_model(self, state: dict[str, torch.Tensor]) -> nn.Module:
        model = self.make_model("init")
        model.load_state_dict(state)
        return model

    def fresh_models(self, label: str) -> Callable[[], nn.Module]:
        """``ctx.make_model``: fresh, seeded models, a different one each call."""
        count = iter(range(1_000_000))
        return lambda: self.make_model("fresh", label, next(count))

    def federation(self, participation: str, desc: str, reference: bool = False) -> Federation:
        plan = self.plan
        progress = (lambda it: bar(it, desc=desc, unit="round")) if plan.progress else None
        return Federation(
            self.setup,
            plan.settings,
            plan.rounds,
            plan.client_fraction,
            self.seed,
            plan.device,
            participation,
            progress=progress,
            reference=reference,
            shared=self.shared,
        )

    def row_info(
        self,
        seconds: float | None,
        federation: Federation,
        reported: dict[str, float] | None = None,
    ) -> RowInfo:
        stats = federation.stats
        client = federation.client_work
        return RowInfo(
            seconds,
            tuple(sorted(stats.clients_involved)),
            stats.rounds,
            stats.bytes,
            reported,
            work=client + federation.server_work,
            client_work=client,
            timed_on=hardware(self.plan.device) if seconds is not None else None,
        )

    def cache_key(self, role: str) -> str:
        if self.plan.identity is None:
            return f"uncached-{role}"
        replica = {"data_seed": self.data_seed} if self.data_seed != self.seed else {}
        return self.cache.key(
            {
                "role": role,
                "seed": self.seed,
                **replica,
                "data_fingerprint": datasets.fingerprint(self.data),
                **self.plan.identity,
            }
        )

    def tempdir(self) -> Path:
        """A temporary folder, removed with the job (or by the operating system)."""
        tmp = tempfile.TemporaryDirectory(prefix="fubench-history-")
        self._tmp.append(tmp)
        return Path(tmp.name)

    # ------------------------------------------------------------- references
    def references(self, needs_history: bool | None = None) -> tuple[Outcome, Outcome]:
        """θ^i and θ^r (cached or trained), and their evaluations."""
        if needs_history is None:
            needs_history = self.plan.needs_history()
        self.original = train_original(self, needs_history)
        self.reference = train_reference(self, self.original)
        for row, outcome in ((ORIGINAL, self.original), (REFERENCE_ROW, self.reference)):
            label = ORIGINAL if row == ORIGINAL else self.reference_name
            model = outcome.model if outcome.status == "ok" else self.original.model
            self.evaluations[row] = Evaluation(
                label,
                model,
                self.setup,
                self.plan.registry,
                outcome.info,
                self.evaluations,
                self.reference_name,
            )
        return self.original, self.reference

    def warnings(self) -> list[str]:
        """What the kind's ``check`` says about whether the scenario happened."""
        try:
            return list(
                self.plan.kind.check(self.evaluations[ORIGINAL], self.evaluations[REFERENCE_ROW])
            )
        except Exception as exc:
            return [f"the scenario's precondition check failed: {one_line(exc)}"]

    # ---------------------------------------------------------------- methods
    def unlearn(self, spec: MethodSpec, original: Outcome, outputs: Outputs) -> Outcome:
        return run_method(self, spec, original, outputs)

    def run(self, spec: MethodSpec) -> Outcome:
        """Run one method on a copy of the original; never raises for its failure."""
        assert self.original is not None, "call references() first"
        return run_method(self, spec, self.original, self._outputs)

    def context(
        self, name: str, label: str | None = None, upstream: dict[str, Any] | None = None
    ) -> Any:
        """The ``UnlearnContext`` method ``name`` gets in this job (for a plugin's own
        unit tests: call ``unlearn(ctx)`` and inspect ``ctx.federation.stats``)."""
        from fubench.engine.methods import make_context

        cls = self.plan.registry.methods.get(name)
        label = label or name
        federation = self.federation(cls.participation, label, reference=cls.reference)
        return make_context(self, cls, label, self.original, federation, upstream or {})

    def evaluate(self, label: str, outcome: Outcome) -> Evaluation:
        return Evaluation(
            label,
            outcome.model,
            self.setup,
            self.plan.registry,
            outcome.info,
            self.evaluations,
            self.reference_name,
        )

    # ------------------------------------------------------------------- rows
    def reference_rows(self) -> dict[str, dict[str, Any]]:
        """The rows of θ^i and θ^r, as the result file stores them."""
        rows = {}
        for row, outcome in ((ORIGINAL, self.original), (REFERENCE_ROW, self.reference)):
            label = ORIGINAL if row == ORIGINAL else self.reference_name
            rows[label] = make_row(label, {}, {}, outcome, self.evaluations[row], self.metrics)
        return rows

    def method_row(self, spec: MethodSpec, outcome: Outcome) -> dict[str, Any]:
        ev = self.evaluate(spec.label, outcome) if outcome.status == "ok" else None
        return make_row(spec.name, spec.params, spec.sweep, outcome, ev, self.metrics)


def make_row(
    name: str,
    params: dict[str, Any],
    sweep: dict[str, Any],
    outcome: Outcome,
    ev: Evaluation | None,
    metrics: list[str],
) -> dict[str, Any]:
    """One row of the result file (see :mod:`fubench.results` for the schema)."""
    values: dict[str, Any] = {}
    metric_errors: dict[str, str] = {}
    seconds = None
    if ev is not None and outcome.status == "ok":
        # metrics the method reported itself (e.g. reset_frac) join the row
        reported = [m for m in (ev.info.reported or {}) if m not in metrics]
        for metric in [*metrics, *reported]:
            try:
                values[metric] = clean_number(ev.value(metric))
            except Exception as exc:  # one broken metric must not lose the row
                values[metric] = None
                metric_errors[metric] = one_line(exc)
        seconds = ev.info.seconds
    row: dict[str, Any] = {
        "method": name,
        "params": params,
        "sweep": sweep,
        "metrics": values,
        "seconds": seconds,
        "status": outcome.status,
        "error": outcome.error,
    }
    if ev is not None:
        row["clients"] = list(ev.info.clients)
        if ev.info.work is not None:  # the split of the work metric, in FLOPs
            client = ev.info.client_work or 0
            row["flops"] = {"clients": client, "server": ev.info.work - client}
        row["timed_on"] = ev.info.timed_on
    if metric_errors:
        row["metric_errors"] = metric_errors
    if outcome.traceback:
        row["traceback"] = outcome.traceback
    return row
