"""Fine-tune: continue federated training of the original model on the retained data
only (the Ferrari paper's baseline: 5 epochs). It forgets only as far as new training
overwrites the old.

Reference (the algorithm or formula, and the papers): docs/methods.md, "Fine-tune".
"""

from __future__ import annotations

import fubench
from fubench import Param, UnlearnContext, Unlearner


class FineTune(Unlearner):
    """FedAvg rounds on the retained clients' data, starting from θ^i."""

    name = "finetune"
    participation = "retained"
    parameters = {
        "rounds": Param(5, int, min=1, help="federated rounds of fine-tuning"),
        "local_epochs": Param(1, int, min=1),
        "lr": Param(
            None,
            float,
            min=0.0,
            min_exclusive=True,
            nullable=True,
            help="learning rate; null = the scenario's",
        ),
    }

    def unlearn(self, ctx: UnlearnContext):
        settings = ctx.federation.settings.with_changes(epochs=self.local_epochs, lr=self.lr)
        return ctx.federation.train(ctx.model, rounds=self.rounds, settings=settings)


@fubench.hookimpl
def fubench_unlearners() -> list[type[Unlearner]]:
    return [FineTune]
