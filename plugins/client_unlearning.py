"""Scenario kind ``client``: one client leaves and asks that all its data be forgotten.

Use it with an ``iid`` or ``dirichlet`` partition (the TIS paper: Dirichlet α = 0.8).
The forget set D_T is the client's whole training data; retraining runs without the
client. With IID data the retrain model classifies D_T about as well as the original
(the other clients teach the same task), so accuracy-based NFS is often undefined and
membership inference (``mia_acc``) is the forgetting signal.

Reference (the algorithm or formula, and the papers): docs/methods.md, "Scenario kinds".
"""

from __future__ import annotations

from typing import Any

import torch
from fubench_builtins.scenario_tools import (
    attack_seed,
    bad_client,
    client_splits,
    empty_like,
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
)


class ClientUnlearning(ScenarioKind):
    """Forget everything one client contributed."""

    name = "client"
    forgotten_behaviour = "target_acc"  # accuracy on the leaving client's samples
    parameters = {"client": Param(0, int, min=0, help="the leaving client")}

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
        "comm_rounds",
    )

    @classmethod
    def validate_config(cls, params: dict[str, Any], context: ConfigContext):
        yield from bad_client(params, context)
        if context.clients < 2:
            yield "client", "needs at least 2 clients: someone must remain"

    def build(
        self, data: Dataset, partition: list[torch.Tensor], generator: torch.Generator
    ) -> ScenarioSetup:
        clients = client_splits(data, partition)
        leaving = self.client
        own = clients[leaving]
        if len(own) == 0:
            raise ValueError(f"client: client {leaving} holds no data under this partition")
        retained = list(clients)
        retained[leaving] = empty_like(own)
        request = ForgetRequest(
            clients=(leaving,),
            forget_masks={leaving: torch.ones(len(own), dtype=torch.bool)},
            description=f"client {leaving} leaves ({len(own)} samples)",
        )
        return ScenarioSetup(
            train=clients,
            retained=retained,
            request=request,
            eval_sets={"test": test_split(data), "forget": own},
            default_metrics=list(self.default_metrics),
            info={
                "leaving_client": leaving,
                "leaving_client_samples": len(own),
                "client_sizes": [len(c) for c in clients],
            },
            attack_seed=attack_seed(generator),
        )

    def check(self, original: Evaluation, retrain: Evaluation) -> list[str]:
        leaving = original.setup.request.clients[0]
        return memorisation_warnings(original, f"client {leaving}'s data")


@fubench.hookimpl
def fubench_scenario_kinds() -> list[type[ScenarioKind]]:
    return [ClientUnlearning]
