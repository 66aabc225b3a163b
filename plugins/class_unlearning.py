"""Scenario kind ``class``: forget one class, or the client that holds it.

The TIS paper's categorical setting partitions the data ``preferential``-ly (each client
owns one class exclusively, the others are shared) and forgets one client's exclusive
class. The kind works with any partitioner:

* ``forget: class`` — every client drops its samples of ``target_class``; the request
  covers all of them (with ``preferential`` that is exactly the owner's class);
* ``forget: client`` — the client holding the most ``target_class`` samples (or
  ``client`` when given) leaves with all its data.

Evaluation sets: ``test``; ``forget`` (D_T). Membership inference pairs D_T with test
samples of the same labels, so with ``forget: class`` the label gives nothing away.

Reference (the algorithm or formula, and the papers): docs/methods.md, "Scenario kinds".
"""

from __future__ import annotations

from typing import Any

import torch
from fubench_builtins.scenario_tools import (
    attack_seed,
    bad_client,
    bad_label,
    client_splits,
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

#: the original must beat retrain on D_T by at least this much for the class to count
#: as learned (retrain never saw it, so it should be near 0% there)
MIN_TARGET_GAP = 0.3


class ClassUnlearning(ScenarioKind):
    """Forget one class (or the client that holds it)."""

    name = "class"
    forgotten_behaviour = "target_acc"  # accuracy on the forgotten samples
    parameters = {
        "target_class": Param(9, int, min=0, help="the class to forget"),
        "forget": Param(
            "class",
            choices=("class", "client"),
            help="class: every client drops the class; client: its holder leaves",
        ),
        "client": Param(
            None,
            int,
            min=0,
            nullable=True,
            help="forget: client — the leaving client (default: the one "
            "holding most of target_class)",
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
        yield from bad_label(params, context, "target_class")
        yield from bad_client(params, context)
        if params["client"] is not None and params["forget"] != "client":
            yield "client", "only used with forget: client"

    def holder(self, clients: list) -> int:
        if self.client is not None:
            return self.client
        counts = [int((c.y == self.target_class).sum()) for c in clients]
        return max(range(len(clients)), key=lambda c: counts[c])

    def build(
        self, data: Dataset, partition: list[torch.Tensor], generator: torch.Generator
    ) -> ScenarioSetup:
        clients = client_splits(data, partition)
        target = self.target_class
        if self.forget == "client":
            leaving = self.holder(clients)
            masks = {leaving: torch.ones(len(clients[leaving]), dtype=torch.bool)}
            what = (
                f"client {leaving} (holds {int((clients[leaving].y == target).sum())} "
                f"samples of class {target})"
            )
        else:
            masks = {
                c: split.y == target
                for c, split in enumerate(clients)
                if bool((split.y == target).any())
            }
            what = f"class {target} on clients {sorted(masks)}"
        if not masks or not any(bool(m.any()) for m in masks.values()):
            raise ValueError(f"class: no client holds class {target}")
        retained = [s.subset(~masks[c]) if c in masks else s for c, s in enumerate(clients)]
        test = test_split(data)
        forget = Split.concat([clients[c].subset(m) for c, m in masks.items()])
        n_forget = len(forget)
        request = ForgetRequest(
            clients=tuple(sorted(masks)),
            forget_masks=masks,
            target_class=target,
            description=f"forget {what}: {n_forget} samples",
        )
        return ScenarioSetup(
            train=clients,
            retained=retained,
            request=request,
            eval_sets={"test": test, "forget": forget},
            default_metrics=list(self.default_metrics),
            info={"forget_samples": n_forget, "forget_clients": sorted(masks)},
            attack_seed=attack_seed(generator),
        )

    def check(self, original: Evaluation, retrain: Evaluation) -> list[str]:
        own, ref = original.value("target_acc"), retrain.value("target_acc")
        if own is None or ref is None:
            return []
        if own - ref < MIN_TARGET_GAP:
            return [
                f"PRECONDITION FAILED: the original model's accuracy on the forget set "
                f"({own:.1%}) is not well above retrain's ({ref:.1%}): the data to forget "
                f"did not shape the model, so forgetting it measures nothing"
            ]
        return []


@fubench.hookimpl
def fubench_scenario_kinds() -> list[type[ScenarioKind]]:
    return [ClassUnlearning]
