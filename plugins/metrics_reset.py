"""Metric ``reset_frac``: the fraction of the model's parameters a reset method changed.

Only the method knows what it reset, so it reports the value itself
(``UnlearnResult.metrics["reset_frac"]``, e.g. tis_reset and random_reset); every other
row (original, retrain, fine-tune...) has no value and shows "—".

Reference (the algorithm or formula, and the papers): docs/methods.md, "Metrics".
"""

from __future__ import annotations

import fubench
from fubench import Evaluation, Metric


class ResetFraction(Metric):
    """Fraction of parameters a reset method changed (reported by the method)."""

    name = "reset_frac"
    higher_is_better = None  # a cost, but fewer resets also forget less: neither way is better
    percent = True

    def compute(self, ev: Evaluation) -> float | None:
        return (ev.info.reported or {}).get("reset_frac")


@fubench.hookimpl
def fubench_metrics() -> list[type[Metric]]:
    return [ResetFraction]
