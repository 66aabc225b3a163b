"""Retrain: the gold standard. Train from the same initial weights, with the same
schedule, on the reference data: what the clients keep once the request is honoured
(for feature scenarios, the cleaned / noised / rebalanced data the scenario kind
prepared for it).

Its model is θ^r in every normalised metric (it declares ``reference = True``); the
engine computes it once per (scenario, seed) and caches it with the original.

Reference (the algorithm or formula, and the papers): docs/methods.md,
"Retrain (the gold standard)".
"""

from __future__ import annotations

import fubench
from fubench import UnlearnContext, Unlearner


class Retrain(Unlearner):
    """Federated training from scratch on the retained data."""

    name = "retrain"
    participation = "retained"
    reference = True  # the gold standard every row is measured against

    def unlearn(self, ctx: UnlearnContext):
        model = ctx.make_model()
        model.load_state_dict(ctx.initial_state)
        return ctx.federation.train(model, data="reference")


@fubench.hookimpl
def fubench_unlearners() -> list[type[Unlearner]]:
    return [Retrain]
