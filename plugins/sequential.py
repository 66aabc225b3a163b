"""Scenario kind ``sequential``: deletion requests that arrive while the federation
trains.

The scenario lists requests of the other kinds with the round at which each arrives,
e.g. a client leaves at round 5, a backdoor is reported at round 10, a class is removed
at round 15. At each request the method unlearns from the current global model and
federated training resumes from its output without the forgotten data; the gold
standard retrains from scratch without everything forgotten so far, at each request.
How requests compose (which kinds, which data): :mod:`fubench.stream`; how the engine
trains through them: :mod:`fubench.engine.sequential`.

Reference (the algorithm or formula, and the papers): docs/methods.md, "Scenario kinds"
(sequential).
"""

from __future__ import annotations

import fubench
from fubench import RequestStream, ScenarioKind


class Sequential(RequestStream):
    """Requests of the other kinds, each at its round; unlearned one after the other."""

    name = "sequential"
    description = "deletion requests that arrive while training goes on (a mix of kinds)"
    # what the conformance kit's tiny world (3 clients, 10 classes) can build
    example_params = {
        "requests": [
            {"round": 1, "kind": "client", "client": 1},
            {"round": 2, "kind": "class", "target_class": 0},
        ]
    }


@fubench.hookimpl
def fubench_scenario_kinds() -> list[type[ScenarioKind]]:
    return [Sequential]
