"""Measuring one row (original, a method, the reference).

An :class:`Evaluation` computes metrics lazily and remembers them, so a normalised
metric (nta = test_acc / test_acc of the reference) reuses the accuracy already computed
and every model is run over each evaluation set at most once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from fubench.errors import FubenchError
from fubench.fl.training import predict
from fubench.metric_values import metric_value
from fubench.scenario import ScenarioSetup, Split


class MetricCatalog(Protocol):
    """Where an evaluation finds a metric's class by name (``registry.metrics``)."""

    def get(self, name: str) -> type:
        """The :class:`fubench.Metric` subclass registered as ``name``."""


#: below this, a normalised metric's denominator counts as zero: the metric is undefined
UNDEFINED_BELOW = 1e-3
#: ``ev.value(metric, of=REFERENCE_ROW)``: the gold standard's row (θ^r), whatever the
#: reference method is called
REFERENCE_ROW = "reference"
#: ``ev.value(metric, of=ORIGINAL_ROW)``: the original model's row (θ^i)
ORIGINAL_ROW = "original"


@dataclass
class RowInfo:
    """What a run measured outside the model, for one row: wall time, what it asked of
    the federation, and the metrics the method reported itself (``None`` for the
    original model, which was trained, not unlearned).

    ``work`` is the FLOPs the row computed, clients and server together, of which
    ``client_work`` on the clients (see :mod:`fubench.fl.flops`); ``timed_on`` is the
    hardware and thread count ``seconds`` was measured on."""

    seconds: float | None = None
    clients: tuple[int, ...] = ()
    comm_rounds: int = 0
    comm_bytes: int = 0
    reported: dict[str, float] | None = None
    work: int | None = None
    client_work: int | None = None
    timed_on: str | None = None
    #: how ``seconds`` was measured: threads, CPU share, load, and whether the machine
    #: was contended (:mod:`fubench.engine.timing`)
    timing: dict[str, Any] | None = None

    @property
    def clients_involved(self) -> int:
        return len(self.clients)

    def as_dict(self) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "clients": list(self.clients),
            "comm_rounds": self.comm_rounds,
            "comm_bytes": self.comm_bytes,
            "reported": self.reported,
            "work": self.work,
            "client_work": self.client_work,
            "timed_on": self.timed_on,
            "timing": self.timing,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RowInfo:
        return cls(
            data.get("seconds"),
            tuple(data.get("clients", ())),
            int(data.get("comm_rounds", 0)),
            int(data.get("comm_bytes", 0)),
            data.get("reported"),
            data.get("work"),
            data.get("client_work"),
            data.get("timed_on"),
            data.get("timing"),
        )


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None (undefined) when either is missing or the
    denominator is ~0."""
    if numerator is None or denominator is None or abs(denominator) < UNDEFINED_BELOW:
        return None
    return numerator / denominator


class Evaluation:
    """Metrics of one model on one scenario setup.

    ``metrics`` finds a metric's class by name (the registry's ``metrics``); ``info`` is
    what the run measured outside the model (:class:`fubench.RowInfo`:
    ``seconds``, ``clients_involved``, ``reported``...). ``references`` maps "original"
    and "reference" to their evaluations (shared, filled as they are made), so metrics
    can normalise against them; ``reference_name`` is the gold standard's row label
    ("retrain"), which ``of=`` accepts as well as "reference"."""

    def __init__(
        self,
        row: str,
        model: nn.Module,
        setup: ScenarioSetup,
        metrics: MetricCatalog,
        info: RowInfo | None = None,
        references: dict[str, Evaluation] | None = None,
        reference_name: str = REFERENCE_ROW,
    ):
        self.row = row
        self.model = model
        self.setup = setup
        self.metrics = metrics
        self.info = info if info is not None else RowInfo()
        self.references = references if references is not None else {}
        self.reference_name = reference_name
        self._values: dict[str, float | None] = {}
        self._predictions: dict[str, torch.Tensor] = {}
        self._computing: set[str] = set()

    # -- model outputs
    def split(self, name: str) -> Split:
        if name not in self.setup.eval_sets:
            raise KeyError(
                f"this scenario has no evaluation set '{name}' "
                f"(it has: {', '.join(sorted(self.setup.eval_sets))})"
            )
        return self.setup.eval_sets[name]

    def predictions(self, name: str) -> torch.Tensor:
        if name not in self._predictions:
            self._predictions[name] = predict(self.model, self.split(name).x)
        return self._predictions[name]

    def accuracy(self, name: str, labels: torch.Tensor | None = None) -> float | None:
        """Share of ``name``'s samples predicted as ``labels`` (default: their labels);
        None for an empty set."""
        data = self.split(name)
        if len(data) == 0:
            return None
        target = data.y if labels is None else labels
        return float((self.predictions(name) == target).float().mean())

    # -- other rows
    def of(self, row: str) -> Evaluation | None:
        """The evaluation of ``row``: this row (``"self"``), the original (``"original"``,
        θ^i) or the gold standard (``"reference"``, θ^r; its method name works too).
        None when that row has none (a reference that failed, or a row measured alone).
        Another method's row is not offered: a row's metrics must not depend on which
        other methods happened to run beside it."""
        if row == "self" or row == self.row:
            return self
        if row == self.reference_name:
            row = REFERENCE_ROW
        if row == REFERENCE_ROW and self.row == self.reference_name:
            return self
        if row not in (ORIGINAL_ROW, REFERENCE_ROW):
            raise KeyError(
                f"no row '{row}' to measure against: a metric reads 'self', "
                f"'{ORIGINAL_ROW}' or '{REFERENCE_ROW}' (or '{self.reference_name}')"
            )
        return self.references.get(row)

    def model_of(self, row: str = "self") -> nn.Module | None:
        """The model of ``row`` — ``"self"``, ``"original"`` (θ^i) or ``"reference"``
        (θ^r, the gold standard; its method name works too) — for a metric that compares
        models, e.g. the distance of this row's weights to the gold standard's::

            mine, gold = ev.model_of(), ev.model_of("reference")

        It is the model the row was measured on, in evaluation mode, shared with every
        metric of every row: read it, never change it (``copy.deepcopy`` it first).
        None when the row has no model here (see :meth:`of`)."""
        found = self.of(row)
        return None if found is None else found.model

    # -- metrics
    def value(self, metric: str, of: str = "self") -> float | None:
        """The value of ``metric`` for this row (``of="self"``) or for a reference row:
        ``"original"`` (θ^i) or ``"reference"`` (θ^r; its method name works too); None
        where it is undefined or that row has none."""
        if of != "self":
            found = self.of(of)
            return None if found is None else found.value(metric)
        reported = self.info.reported or {}
        if metric in reported:  # what the method reported, checked like a metric's value
            return metric_value(metric, reported[metric], self._percent(metric))
        if metric not in self._values:
            if metric in self._computing:
                raise RuntimeError(f"metric '{metric}' depends on itself")
            self._computing.add(metric)
            try:
                value = self.metrics.get(metric)().compute(self)
            finally:
                self._computing.discard(metric)
            self._values[metric] = metric_value(metric, value, self._percent(metric))
        return self._values[metric]

    def _percent(self, metric: str) -> bool:
        try:
            return bool(getattr(self.metrics.get(metric), "percent", False))
        except FubenchError:  # a reported value no metric describes
            return False

    def values(self, metrics: list[str]) -> dict[str, float | None]:
        return {m: self.value(m) for m in metrics}
