"""Random Reset: the TIS paper's control (section 6.2). It resets exactly as many
entries of each parameter tensor as ``tis_reset`` did for the same scenario, seed and
γ, but chooses them uniformly at random, so comparing the two isolates the value of
*which* parameters TIS-Reset picks.

It reads tis_reset's result through the harness (``reads = ("tis_reset",)``; the runner
passes it in ``ctx.upstream``): the per-tensor counts, and the reset value and minimal
retrain tis_reset used, so that only the choice of entries differs. ``gamma`` selects
which tis_reset sweep point to mirror; list the same values as tis_reset's sweep. When
tis_reset also sweeps another parameter, the runner mirrors the first matching point.

Reference (the algorithm or formula, and the papers): docs/methods.md, "Random Reset".
"""

from __future__ import annotations

import torch
from fubench_builtins.tis_reset import reset_and_retrain

import fubench
from fubench import Param, UnlearnContext, Unlearner, UnlearnResult


def random_masks(
    counts: dict[str, int], shapes: dict[str, torch.Size], generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """For each tensor, a bool mask with exactly ``counts[name]`` entries set, chosen
    uniformly at random without replacement."""
    masks = {}
    for name, shape in shapes.items():
        numel = int(torch.Size(shape).numel())
        k = counts.get(name, 0)
        if not 0 <= k <= numel:
            raise ValueError(f"cannot reset {k} entries of '{name}', which has {numel}")
        flat = torch.zeros(numel, dtype=torch.bool)
        flat[torch.randperm(numel, generator=generator)[:k]] = True
        masks[name] = flat.view(shape)
    return masks


class RandomReset(Unlearner):
    """Reset as many entries per tensor as tis_reset did, chosen at random."""

    name = "random_reset"
    reads = ("tis_reset",)
    reports = ("reset_frac",)
    participation = "retained"  # only its minimal retrain, if tis_reset used one, asks clients
    parameters = {
        "gamma": Param(
            0.5,
            float,
            min=0.0,
            max=1.0,
            help="the tis_reset sweep point whose per-tensor counts to mirror",
        ),
    }

    def unlearn(self, ctx: UnlearnContext) -> UnlearnResult:
        upstream = ctx.upstream.get("tis_reset")
        if upstream is None or "reset_counts" not in upstream.artifacts:
            raise RuntimeError("random_reset needs tis_reset's reset_counts in ctx.upstream")
        settings = upstream.artifacts["settings"]
        shapes = {name: p.shape for name, p in ctx.model.named_parameters()}
        masks = random_masks(upstream.artifacts["reset_counts"], shapes, ctx.generator)
        masks = {name: m.to(ctx.device) for name, m in masks.items()}
        return reset_and_retrain(
            ctx,
            masks,
            settings["reset_to"],
            settings["minimal_retrain_rounds"],
            settings["minimal_retrain_lr"],
        )


@fubench.hookimpl
def fubench_unlearners() -> list[type[Unlearner]]:
    return [RandomReset]
