"""Scenario kind ``sample``: clients forget some of their own samples.

The setting of most centralised unlearning benchmarks, federated: each requesting
client (``clients``, default ``[0]``) forgets a random ``fraction`` of its own training
samples — the same share on every requesting client, drawn from the scenario's seeded
generator — and keeps the rest. The forget set D_T is the union of those samples; the
gold standard (retrain) trains on everything else, requesting clients included. Every
client keeps data, so methods that remove whole clients (FedEraser, distillation) do
not serve this kind.

What the metrics can show here: the forgotten samples are drawn from the same
distribution as the retained ones, so a retrained model classifies them about as well
as unseen test samples. ``target_acc`` then separates original and retrain only by what
the original memorised (its accuracy on its own training samples minus retrain's
generalisation), and ``nfs`` is undefined ("—") when that gap is below the seeds'
noise — that is honest, not a bug. Membership inference (``mia_acc``: D_T against
label-matched test samples, ~50% for retrain) is the forgetting signal; ``check`` warns
when the original did not memorise D_T measurably, as the ``client`` kind does.

Reference (the algorithm or formula, and the papers): docs/methods.md, "Scenario kinds".
"""

from __future__ import annotations

from typing import Any

import torch
from fubench_builtins.scenario_tools import (
    attack_seed,
    client_splits,
    memorisation_warnings,
    test_split,
)

import fubench
from fubench import (
    ConfigContext,
    Dataset,
    Evaluation,
    ForgetRequest,
    Param,
    ScenarioKind,
    ScenarioSetup,
    Split,
)


class SampleUnlearning(ScenarioKind):
    """Requesting clients forget a random share of their own samples."""

    name = "sample"
    forgotten_behaviour = "target_acc"  # accuracy on the forgotten samples
    parameters = {
        "clients": Param(
            [0], list, help="the requesting clients (each forgets `fraction` of its own samples)"
        ),
        "fraction": Param(
            0.1,
            float,
            min=0.0,
            max=1.0,
            min_exclusive=True,
            help="share of each requesting client's samples to forget (< 1)",
        ),
    }

    default_metrics = (
        "test_acc",
        "nta",
        "target_acc",
        "nfs",
        "mia_acc",
        "nfs_mia",
        "relearn",
        "relearn_ratio",
        "seconds",
        "rtr",
        "clients_involved",
    )

    @classmethod
    def validate_config(cls, params: dict[str, Any], context: ConfigContext):
        clients = params["clients"]
        if not clients:
            yield "clients", "expected at least one client index"
            return
        for i, client in enumerate(clients):
            if (
                isinstance(client, bool)
                or not isinstance(client, int)
                or not 0 <= client < context.clients
            ):
                yield (
                    f"clients[{i}]",
                    (f"expected a client index in 0..{context.clients - 1}, got {client!r}"),
                )
        if len(set(map(repr, clients))) != len(clients):
            yield "clients", f"a client is listed twice: {clients}"
        if params["fraction"] >= 1.0:
            yield (
                "fraction",
                (
                    "expected a share < 1; a client that forgets all its samples "
                    "leaves: use kind client"
                ),
            )

    def build(
        self, data: Dataset, partition: list[torch.Tensor], generator: torch.Generator
    ) -> ScenarioSetup:
        clients = client_splits(data, partition)
        masks: dict[int, torch.Tensor] = {}
        for c in sorted(self.clients):
            n = len(clients[c])
            if n < 2:
                raise ValueError(
                    f"sample: client {c} holds {n} samples; it needs at least 2 "
                    f"to forget some and keep some"
                )
            k = min(n - 1, max(1, round(self.fraction * n)))
            mask = torch.zeros(n, dtype=torch.bool)
            mask[torch.randperm(n, generator=generator)[:k]] = True
            masks[c] = mask
        retained = [s.subset(~masks[c]) if c in masks else s for c, s in enumerate(clients)]
        forget = Split.concat([clients[c].subset(m) for c, m in masks.items()])
        counts = {c: int(m.sum()) for c, m in masks.items()}
        request = ForgetRequest(
            clients=tuple(sorted(masks)),
            forget_masks=masks,
            description=f"clients {sorted(masks)} forget {self.fraction:.0%} of their samples "
            f"({len(forget)} in all)",
        )
        return ScenarioSetup(
            train=clients,
            retained=retained,
            request=request,
            eval_sets={"test": test_split(data), "forget": forget},
            default_metrics=list(self.default_metrics),
            info={
                "forget_samples": len(forget),
                "forget_per_client": counts,
                "client_sizes": [len(c) for c in clients],
            },
            attack_seed=attack_seed(generator),
        )

    def check(self, original: Evaluation, retrain: Evaluation) -> list[str]:
        return memorisation_warnings(original, "the forgotten samples")


@fubench.hookimpl
def fubench_scenario_kinds() -> list[type[ScenarioKind]]:
    return [SampleUnlearning]
