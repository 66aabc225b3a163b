"""A request stream: deletion requests that arrive while the federation trains.

A stream lists requests of other scenario kinds, each with the round at which it
arrives (a client leaves at round 5, a backdoor is reported at round 10, a class is
removed at round 15). Every request is built by its own kind on the same data and the
same partition; the stream composes them into one :class:`Stage` per request: what the
clients hold when it arrives (everything earlier requests left), what they keep once it
is honoured, and the request itself, restricted to what they still hold
(:mod:`fubench.stages` composes them). The engine (:mod:`fubench.engine.sequential`)
trains through the stages.

Rules of composition:

* a request removes samples: a kind that prepares other data for the gold standard (a
  feature replaced by noise, a colour rebalanced) cannot be composed, since the data the
  federation goes on training on after such a request is not defined;
* a request may change a client's data from round 0 (a backdoor poisons from the start
  and is *reported* at its round), keeping every sample in its place; at most one
  request may change any one client's data, so the data each client trains on is
  defined;
* a request must still find something to forget: one whose samples earlier requests
  removed entirely is refused."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fubench.api import ScenarioKind
from fubench.params import Param
from fubench.stages import KIND, ROUND, Stage, compose, summary

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from fubench.registry import Registry
    from fubench.scenario import Dataset, ScenarioSetup


class RequestStream(ScenarioKind):
    """Base of scenario kinds that are a stream of other kinds' requests (the engine
    runs them through :mod:`fubench.engine.sequential`).

    ``requests`` is a list of mappings ``{round: R, kind: NAME, ...NAME's parameters}``
    with strictly increasing rounds below ``federation.rounds``; a scenario file's are
    validated against each kind's declarations. As a plain kind (one request), the
    stream is every request honoured at once: :meth:`build` returns that summary."""

    parameters = {
        "requests": Param(
            type=list,
            help="the requests, in order: {round: R, kind: NAME, ...NAME's parameters}",
        )
    }

    @classmethod
    def validate_config(cls, params: dict[str, Any], context: Any):
        requests = params["requests"]
        if not requests:
            yield "requests", "expected at least one request"
        for i, request in enumerate(requests):
            if not isinstance(request, dict) or ROUND not in request or KIND not in request:
                yield f"requests[{i}]", "expected a mapping with 'round', 'kind' and its parameters"

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._registry: Registry | None = None

    def bind(self, registry: Registry) -> None:
        """Build the requests' kinds from ``registry`` (default: the loaded plugins)."""
        self._registry = registry

    def kinds(self) -> list[tuple[int, str, ScenarioKind]]:
        """(round, kind name, kind) of each request, in order."""
        registry = self._registry
        if registry is None:
            from fubench.plugins import get_registry

            registry = get_registry()
        out = []
        for request in self.requests:
            params = {k: v for k, v in request.items() if k not in (ROUND, KIND)}
            kind = registry.kinds.get(request[KIND])(**params)
            out.append((int(request[ROUND]), request[KIND], kind))
        return out

    # -- building
    def stages(
        self, data: Dataset, partition: list[torch.Tensor], generator: torch.Generator
    ) -> list[Stage]:
        """Every request built on ``data`` and ``partition`` and composed (module
        docstring; :func:`fubench.stages.compose`)."""
        return compose(self.kinds(), data, partition, generator)

    def build(
        self, data: Dataset, partition: list[torch.Tensor], generator: torch.Generator
    ) -> ScenarioSetup:
        """Every request honoured at once (the stream as one request)."""
        return summary(self.stages(data, partition, generator))
