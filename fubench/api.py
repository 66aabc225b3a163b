"""The contracts plugins implement.

A plugin module returns its component classes from the registration hooks in
:mod:`fubench.hookspecs`. Everything a component declares about itself is a class
attribute defined here, so the harness reads declarations and never names a plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from fubench.params import Component

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

    from fubench.evaluation import Evaluation
    from fubench.fl.federation import Federation
    from fubench.fl.history import RoundHistory
    from fubench.scenario import Dataset, ForgetRequest, ScenarioSetup

#: who a method may ask for work (``Unlearner.participation``)
PARTICIPATION = ("requesting", "retained", "all", "none")
#: row names no method may take: the trained model's row (``results.ORIGINAL``) and the
#: name metrics read the gold standard's row by (``evaluation.REFERENCE_ROW``)
RESERVED_NAMES = ("original", "reference")
#: what a metric measures (``Metric.role``): how well the model still works, how much it
#: forgot, what unlearning cost, or a description that is not ranked
ROLES = ("utility", "forgetting", "cost", "info")
#: ``Metric.ideal = REFERENCE``: the best value is the gold standard's own value
REFERENCE = "reference"
#: how a normalised metric relates to its raw metric (``Metric.normalisation``)
NORMALISATIONS = ("ratio", "gap")
#: where the original sits against the gold standard on a raw forgetting metric
#: (``Metric.original_side``)
SIDES = ("above", "below", None)


@dataclass
class UnlearnContext:
    """What an unlearning method gets. It never sees client data directly: it asks
    clients to work through ``federation``. Everything here is the method's own (copies
    where another method could see a change): what it changes in place reaches no other
    method.

    ``generator`` is a CPU ``torch.Generator`` seeded for this row: draw every random
    number from it on the CPU and move the result to ``device``
    (``torch.randn(shape, generator=ctx.generator).to(ctx.device)``) so runs repeat.
    ``initial_state`` is the model's whole ``state_dict()`` (parameters and buffers, on
    ``device``) when training started; ``federation.train`` trains a model in place and
    returns that same model.

    ``server_data`` holds the unlabeled inputs the server keeps (the scenario's
    ``dataset.server_fraction``; the same values for every method of a job), or None
    when the scenario gives the server no data. No client's data are among them.
    ``server_data_shifted`` holds as many unlabeled inputs from another data set (the
    scenario's ``dataset.server_shifted``: server data from a shifted distribution), or
    None; a method uses it only where a parameter of its own asks for it."""

    model: nn.Module  # a copy of the trained global model, θ^i
    initial_state: dict[str, torch.Tensor]  # state_dict() training started from (a copy)
    make_model: Callable[[], nn.Module]  # a fresh, randomly initialised model
    request: ForgetRequest
    federation: Federation
    history: RoundHistory | None
    device: torch.device
    seed: int
    generator: torch.Generator
    scenario_kind: str
    upstream: dict[str, UnlearnResult] = field(default_factory=dict)
    server_data: torch.Tensor | None = None
    server_data_shifted: torch.Tensor | None = None


@dataclass
class UnlearnResult:
    """A method's answer: the unlearned model, optional artifacts other methods may
    read (see ``Unlearner.reads``) and optional extra metric values (e.g. reset_frac)."""

    model: nn.Module
    artifacts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


class DatasetLoader(Component):
    """Loads a data set. ``load(root)`` returns a :class:`Dataset`; it raises
    :class:`fubench.DataUnavailable` with instructions when the data cannot be had.

    ``modality`` ("image" or "tabular") and ``n_classes`` let scenario files be checked
    before any data is loaded."""

    modality: ClassVar[str] = "image"
    n_classes: ClassVar[int | None] = None

    def load(self, root: Any) -> Dataset:  # pragma: no cover - interface
        raise NotImplementedError


class ModelFactory(Component):
    """Builds a fresh ``nn.Module`` for an input shape and number of classes."""

    def build(self, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:  # pragma: no cover
        raise NotImplementedError


class Partitioner(Component):
    """Splits training indices between clients. Must return disjoint index tensors that
    together cover every index."""

    def partition(
        self, labels: torch.Tensor, n_clients: int, generator: torch.Generator
    ) -> list[torch.Tensor]:  # pragma: no cover
        raise NotImplementedError


class ScenarioKind(Component):
    """A kind of forgetting request (backdoor, class, client, sensitive, bias).

    ``build`` poisons / masks / colours the data as the kind requires and returns a
    :class:`ScenarioSetup`. ``check`` runs after the original and retrain models exist
    and returns warnings when the scenario did not happen (e.g. no backdoor learned).

    Class attributes:

    * ``showcase``: the evaluation set whose images show the forgotten feature (attention
      maps draw from it; None: "test");
    * ``example_params``: parameters that let the kind build on a small example data
      set (the conformance kit uses them) when its defaults cannot;
    * ``overshoot_remembers``: whether a model more accurate on the test set than the
      gold standard may owe it to what is forgotten (the test set holds the forgotten
      class or the leaving client's kind of data). True: utility metrics with an ideal
      (nta → 1) rank by distance to it. False (the test set is clean and the gold
      standard does without a trigger, a feature or a shortcut): more is simply better,
      and they rank by their direction (↑).
    * ``forgotten_behaviour``: the metric that measures what the request removes, on the
      row's own model (backdoor: ASR; class: accuracy on D_T). Relearning attacks watch it
      come back after fine-tuning a copy of the model on part of D_T; they read it where
      metrics work, as ``ScenarioSetup.forgotten_behaviour``. None: the attack's own
      default (see its metric's description).
    * ``default_metrics``: the metrics a scenario of this kind shows when its file lists
      none (``fubench show KIND`` lists them; ``fubench run --metrics a,b`` adds to them).
      ``build`` returns the same list as ``ScenarioSetup.default_metrics`` (the
      conformance kit checks that they agree); left empty, only ``build`` knows them.
    """

    showcase: ClassVar[str | None] = None
    default_metrics: ClassVar[tuple[str, ...]] = ()
    example_params: ClassVar[dict[str, Any]] = {}
    overshoot_remembers: ClassVar[bool] = True
    forgotten_behaviour: ClassVar[str | None] = None

    def build(
        self, data: Dataset, partition: list[torch.Tensor], generator: torch.Generator
    ) -> ScenarioSetup:  # pragma: no cover
        raise NotImplementedError

    def check(self, original: Evaluation, retrain: Evaluation) -> list[str]:
        return []


class Unlearner(Component):
    """A federated unlearning method.

    Class attributes:

    * ``participation``: which clients it may ask for work — ``"requesting"`` (only the
      clients that asked to be forgotten), ``"retained"`` (every client that still holds
      data once the request is honoured, ``federation.retained_clients``: a requesting
      client that keeps part of its data is included, one that forgets all of it is
      not), ``"all"``, or ``"none"``. The federation refuses any other client.
    * ``needs_history``: the scenario must record the round history.
    * ``unsupported_kinds``: ``{kind: reason}``; those scenarios show "n/a".
    * ``reads``: names of methods whose :class:`UnlearnResult` this one reads; the runner
      runs them first (same seed and sweep point) and passes them in ``ctx.upstream``.
    * ``reports``: metrics it reports itself in ``UnlearnResult.metrics`` (e.g.
      ``history_bytes``); a scenario that lists the method computes them for every row,
      so the other rows show their own value (e.g. 0 bytes of history) beside it.
    * ``reference``: this method is the gold standard every row is measured against
      (exactly one installed method declares it; the built-in is ``retrain``). It trains
      on the scenario's reference data and its model is cached with the original's.
    * ``baseline``: a yardstick, not a contender (the built-in ``budget_retrain``:
      retraining cut to a budget). Tables show its rows, marked, but never rank them:
      they take no place among the methods, in a scenario or overall. When it reports a
      budget sweep (several rows with their ``work_ratio``), the leaderboard compares
      every method with it at the method's own work ratio ("against retraining at
      equal cost", docs/explanation/statistics.md).
    * ``variants``: names of parameters whose values are different settings to report
      side by side, not knobs to tune (distillation's ``server_data``: the server's
      inputs from the clients' distribution or a shifted one). A sweep over them gives
      one row per value in every table, each showing its own best point of the other
      swept parameters; a sweep over any other parameter shows its best point only.

    ``caveat(params)`` (a classmethod) returns a few words a table appends to the row
    label of a row run with ``params`` — what a reader must know to read its numbers
    (FedRecovery: "σ not DP-calibrated" when its noise is a direct σ rather than the
    paper's (ε, β) calibration) — or None; the default returns None.

    ``unlearn(ctx)`` returns an ``nn.Module`` or an :class:`UnlearnResult`; raise
    :class:`fubench.NotApplicable` for a case it cannot serve.
    """

    participation: ClassVar[str] = "all"
    needs_history: ClassVar[bool] = False
    unsupported_kinds: ClassVar[dict[str, str]] = {}
    reads: ClassVar[tuple[str, ...]] = ()
    reports: ClassVar[tuple[str, ...]] = ()
    reference: ClassVar[bool] = False
    baseline: ClassVar[bool] = False
    variants: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def caveat(cls, params: dict[str, Any]) -> str | None:
        """What a table appends to the label of a row run with ``params``, or None."""
        return None

    def unlearn(self, ctx: UnlearnContext) -> nn.Module | UnlearnResult:  # pragma: no cover
        raise NotImplementedError


class Metric(Component):
    """A number computed for every row (original, each method, retrain).

    ``compute(ev)`` returns a float, or None where the metric is undefined (e.g. a
    normalised metric whose denominator is ~0); the table shows "—".

    Class attributes (reports and the leaderboard read these, never metric names):

    * ``higher_is_better``: ↑/↓ in tables (None: neither);
    * ``ideal``: the value to approach, when that is not an extreme (nta, nfs: 1.0;
      ``REFERENCE``: the gold standard's own value, for attacks read against retrain);
      ranks then go by distance to it, so overshooting never beats a closer value;
    * ``role``: "utility", "forgetting", "cost" (what a method spends: ranked apart) or
      "info" (described, never ranked);
    * ``normalises`` / ``normalisation``: the raw metric this one normalises and how —
      "ratio" = raw(θ)/raw(θ^r) (nta, rtr), "gap" = (raw(θ^i) − raw(θ)) / (raw(θ^i) −
      raw(θ^r)) (nfs); a table ranks the normalised column, not its raw twin, and shows a
      "gap" metric only where its denominator stands clearly above the seeds' noise;
    * ``original_side``: for a raw metric that tells forgetting (a "gap" metric's raw
      twin, or one read against the gold standard): where the original model sits
      against the gold standard while it still carries what is forgotten — "above"
      (attack success, accuracy on the forget set), "below", or None (either way). The
      test of whether the metric separates the two models is one-sided in that
      direction: a gap the other way means the metric cannot see the forgetting;
    * ``success_margin``: for a metric with an ideal, how close to it (the number, or
      the gold standard's value on the same seed) one seed's value must come to count as
      reaching the gold standard, in the unit the table shows (points for ``percent``);
      tables report the share of seeds that do for forgetting metrics. None: no rate;
    * ``percent``: shown ×100; ``count``: an integer count (no decimals when whole);
    * ``always``: every row of every scenario gets it, listed or not (a measurement the
      harness makes of every run, like the counted work);
    * ``timed``: its value comes from a clock (seconds, rtr), so it differs between
      runs and machines; ``fubench verify`` does not compare it, everything else must
      reproduce.
    """

    higher_is_better: ClassVar[bool | None] = None
    ideal: ClassVar[float | str | None] = None
    original_side: ClassVar[str | None] = None
    role: ClassVar[str] = "info"
    normalises: ClassVar[str | None] = None
    normalisation: ClassVar[str] = "ratio"
    success_margin: ClassVar[float | None] = None
    percent: ClassVar[bool] = False
    count: ClassVar[bool] = False
    always: ClassVar[bool] = False
    timed: ClassVar[bool] = False

    def compute(self, ev: Evaluation) -> float | None:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def ranked(cls) -> bool:
        """Whether tables rank this metric (a direction or an ideal, and not "info")."""
        return cls.role != "info" and (cls.higher_is_better is not None or cls.ideal is not None)


@dataclass(frozen=True)
class Category:
    """A kind of component: what YAML files and the CLI call it (``what``), the
    registry's accessor (``attribute``: ``registry.methods``), its base class and the
    registration hook that returns its classes."""

    what: str
    attribute: str
    base: type[Component]
    hook: str


#: every component category; the registry, the hooks and the kit are built from it
CATEGORIES: tuple[Category, ...] = (
    Category("method", "methods", Unlearner, "fubench_unlearners"),
    Category("partitioner", "partitioners", Partitioner, "fubench_partitioners"),
    Category("scenario kind", "kinds", ScenarioKind, "fubench_scenario_kinds"),
    Category("metric", "metrics", Metric, "fubench_metrics"),
    Category("dataset", "datasets", DatasetLoader, "fubench_datasets"),
    Category("model", "models", ModelFactory, "fubench_models"),
)


def declaration_problems(cls: type) -> list[str]:
    """What is wrong with a component class's declarations (empty when nothing)."""
    from fubench.params import as_param

    problems = []
    for name, spec in getattr(cls, "parameters", {}).items():
        problem = as_param(spec).declaration_problem()
        if problem:
            problems.append(f"parameter '{name}': {problem}")
    if issubclass(cls, Unlearner) and cls.__dict__.get("name") in RESERVED_NAMES:
        problems.append(
            f"the name '{cls.name}' is reserved for a row of every table "
            f"({', '.join(RESERVED_NAMES)}); name the method otherwise"
        )
    if issubclass(cls, Unlearner) and cls.participation not in PARTICIPATION:
        problems.append(
            f"participation = {cls.participation!r}; expected one of {', '.join(PARTICIPATION)}"
        )
    if issubclass(cls, Unlearner):
        unknown = [v for v in cls.variants if v not in getattr(cls, "parameters", {})]
        if unknown:
            problems.append(f"variants names no parameter: {', '.join(map(repr, unknown))}")
        if cls.baseline and cls.reference:
            problems.append("a method is the reference or a baseline, not both")
    if issubclass(cls, Metric):
        if cls.role not in ROLES:
            problems.append(f"role = {cls.role!r}; expected one of {', '.join(ROLES)}")
        if cls.normalisation not in NORMALISATIONS:
            problems.append(
                f"normalisation = {cls.normalisation!r}; expected one of "
                f"{', '.join(NORMALISATIONS)}"
            )
        if cls.original_side not in SIDES:
            problems.append(
                f"original_side = {cls.original_side!r}; expected one of "
                f"{', '.join(map(repr, SIDES))}"
            )
        margin = cls.success_margin
        if margin is not None and (
            isinstance(margin, bool) or not isinstance(margin, (int, float)) or margin <= 0
        ):
            problems.append(f"success_margin = {margin!r}; expected a number > 0 or None")
        elif margin is not None and cls.ideal is None:
            problems.append("success_margin needs an ideal to come close to")
        if isinstance(cls.ideal, str) and cls.ideal != REFERENCE:
            problems.append(f"ideal = {cls.ideal!r}; expected a number, None or fubench.REFERENCE")
    return problems
