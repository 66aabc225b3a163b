"""Budget retrain: the cost-matched gold standard. Retrain from the initial model on what
the clients keep, but only for a share of retraining's client work — the question every
unlearning method must answer: does it forget better than simply retraining for the
same price?

It runs FedAvg from ``ctx.initial_state`` on the retained data with the scenario's
schedule (local epochs, batch size, learning rate, client sampling), for
``max(1, round(work_ratio · T))`` rounds, T the reference's rounds: the budget's share
of retraining at the scenario's local epochs, at least one round. Its row reports the
work it actually used (the ``work_ratio`` metric): the rounding, and retained data that
differ from the reference's (a feature kind's reference data are not the clients'),
move it off the nominal budget.

It is a baseline, not a contender (``baseline = True``): tables show its rows but rank
none of them, and the leaderboard reads every method against its sweep at the method's
own work ratio. Reference: docs/methods.md, "Budget retrain".
"""

from __future__ import annotations

import fubench
from fubench import Param, UnlearnContext, Unlearner, log


def budget_rounds(work_ratio: float, reference_rounds: int) -> int:
    """Rounds of FedAvg that spend ``work_ratio`` of ``reference_rounds``, at least one."""
    return max(1, round(work_ratio * reference_rounds))


class BudgetRetrain(Unlearner):
    """FedAvg from the initial model on the retained data, cut to a work budget."""

    name = "budget_retrain"
    description = "retraining from scratch on the retained data, cut to a work budget"
    participation = "retained"
    baseline = True
    parameters = {
        "work_ratio": Param(
            0.25,
            float,
            min=0.0,
            max=1.0,
            min_exclusive=True,
            help="budget as a share of retraining's work: round(work_ratio·T) rounds, at least one",
        ),
    }

    def unlearn(self, ctx: UnlearnContext):
        federation = ctx.federation
        rounds = budget_rounds(self.work_ratio, federation.default_rounds)
        model = ctx.make_model()
        model.load_state_dict(ctx.initial_state)
        log(
            f"  budget_retrain: {rounds} of {federation.default_rounds} rounds "
            f"(budget {self.work_ratio:g} of retraining's work)"
        )
        return federation.train(model, rounds=rounds, data="retained")


@fubench.hookimpl
def fubench_unlearners() -> list[type[Unlearner]]:
    return [BudgetRetrain]
