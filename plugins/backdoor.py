"""Scenario kind ``backdoor`` and its metrics ``asr`` and ``backdoor_acc``.

One malicious client stamps a trigger on part of its training images and relabels them
to a target class (TIS paper 6.1.1, Ferrari 5.x). The forget request is that client's
poisoned samples; retraining uses the clean data only (the malicious client keeps its
unpoisoned samples).

Triggers:

* ``art_pattern`` — ART's ``add_pattern_bd``: a checkerboard of white pixels filling a
  3x3 box, ``trigger_margin`` pixels from the bottom-right corner (the TIS paper's trigger);
* ``square`` — a filled square of side ``trigger_size`` at ``trigger_corner``.

Evaluation: ASR and backdoor accuracy are measured on triggered test images whose true
label is not the target (otherwise the ASR floor would be the target's share, ~10%).

Reference (the algorithm or formula, and the papers): docs/methods.md, "Scenario kinds".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from fubench_builtins.scenario_tools import bad_client, bad_label

import fubench
from fubench import (
    ConfigContext,
    Dataset,
    Evaluation,
    ForgetRequest,
    Metric,
    Param,
    ScenarioKind,
    ScenarioSetup,
    Split,
)

CORNERS = ("bottom_right", "bottom_left", "top_right", "top_left")
#: the original model must reach at least this ASR for the scenario to mean anything
MIN_ORIGINAL_ASR = 0.5


def trigger_box(
    height: int, width: int, size: int, corner: str, margin: int
) -> tuple[slice, slice]:
    """Rows and columns of a ``size`` x ``size`` box ``margin`` pixels from ``corner``."""
    top = margin if corner.startswith("top") else height - margin - size
    left = margin if corner.endswith("left") else width - margin - size
    return slice(top, top + size), slice(left, left + size)


class Backdoor(ScenarioKind):
    """A malicious client implants a trigger → target-label backdoor."""

    name = "backdoor"
    showcase = "backdoor"  # triggered test images show the forgotten feature
    forgotten_behaviour = "asr"  # what relearning attacks watch come back
    # the test set is clean: more clean accuracy than retrain's is no trace of the trigger
    overshoot_remembers = False
    parameters = {
        "client": Param(0, int, min=0, help="the malicious client"),
        "target_label": Param(9, int, min=0, help="label the trigger maps to"),
        "poison_fraction": Param(
            0.5,
            float,
            min=0.0,
            max=1.0,
            min_exclusive=True,
            help="share of the client's non-target samples poisoned",
        ),
        "trigger": Param("art_pattern", choices=("art_pattern", "square")),
        "trigger_size": Param(3, int, min=1, help="side of the square trigger"),
        "trigger_corner": Param("bottom_right", choices=CORNERS),
        "trigger_margin": Param(1, int, min=0, help="pixels between trigger and image edge"),
        "trigger_value": Param(1.0, float, min=0.0, max=1.0),
    }

    default_metrics = (
        "test_acc",
        "nta",
        "asr",
        "backdoor_acc",
        "nfs",
        "relearn",
        "relearn_ratio",
        "seconds",
        "rtr",
        "clients_involved",
    )

    @classmethod
    def validate_config(cls, params: dict[str, Any], context: ConfigContext):
        yield from bad_label(params, context, "target_label")
        yield from bad_client(params, context)
        if context.modality != "image":
            yield "kind", "backdoor needs an image data set"
        if params["trigger"] == "art_pattern" and params["trigger_corner"] != "bottom_right":
            yield "trigger_corner", "ART's pattern sits bottom-right; use trigger: square"

    # -- the trigger
    def feature_mask(self, image_shape: tuple[int, ...]) -> torch.Tensor:
        """Bool mask (C, H, W) of the trigger region."""
        _, height, width = image_shape
        mask = torch.zeros(image_shape, dtype=torch.bool)
        if self.trigger == "art_pattern":
            rows, cols = trigger_box(height, width, 3, "bottom_right", self.trigger_margin)
        else:
            rows, cols = trigger_box(
                height, width, self.trigger_size, self.trigger_corner, self.trigger_margin
            )
        mask[:, rows, cols] = True
        return mask

    def stamp(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) with the trigger applied."""
        if self.trigger == "art_pattern":
            from art.attacks.poisoning.perturbations import add_pattern_bd

            # ART's distance counts from the far edge: distance 1 touches the border
            out = add_pattern_bd(
                x.cpu().numpy(),
                distance=self.trigger_margin + 1,
                pixel_value=self.trigger_value,
                channels_first=True,
            )
            return torch.from_numpy(np.ascontiguousarray(out)).to(x.device)
        x = x.clone()
        x[:, self.feature_mask(tuple(x.shape[1:]))] = self.trigger_value
        return x

    # -- the scenario
    def build(
        self, data: Dataset, partition: list[torch.Tensor], generator: torch.Generator
    ) -> ScenarioSetup:
        _, height, width = data.input_shape
        size = 3 if self.trigger == "art_pattern" else self.trigger_size
        if size > min(height, width):
            raise ValueError(
                f"trigger_size: a {size}x{size} trigger does not fit {height}x{width} images"
            )
        if size + self.trigger_margin > min(height, width):
            raise ValueError(
                f"trigger_margin: a {size}x{size} trigger {self.trigger_margin} "
                f"pixels from the edge does not fit {height}x{width} images; "
                f"at most {min(height, width) - size}"
            )
        bad = self.client
        clients = [Split(data.x_train[idx], data.y_train[idx]) for idx in partition]
        own = clients[bad]
        candidates = torch.nonzero(own.y != self.target_label).flatten()
        n_poison = max(1, round(self.poison_fraction * len(candidates)))
        chosen = candidates[torch.randperm(len(candidates), generator=generator)[:n_poison]]
        poison = torch.zeros(len(own), dtype=torch.bool)
        poison[chosen] = True

        poisoned_x = own.x.clone()
        poisoned_x[poison] = self.stamp(own.x[poison])
        poisoned_y = own.y.clone()
        poisoned_y[poison] = self.target_label
        train = list(clients)
        train[bad] = Split(poisoned_x, poisoned_y)
        retained = list(clients)
        retained[bad] = own.subset(~poison)

        victims = data.y_test != self.target_label
        triggered = Split(self.stamp(data.x_test[victims]), data.y_test[victims])
        request = ForgetRequest(
            clients=(bad,),
            forget_masks={bad: poison},
            target_class=self.target_label,
            feature_mask=self.feature_mask(data.input_shape),
            description=f"client {bad}'s {n_poison} poisoned samples (trigger → "
            f"{self.target_label})",
        )
        return ScenarioSetup(
            train=train,
            retained=retained,
            request=request,
            eval_sets={
                "test": Split(data.x_test, data.y_test),
                "forget": train[bad].subset(poison),
                "backdoor": triggered,
            },
            default_metrics=list(self.default_metrics),
            info={
                "poisoned_samples": n_poison,
                "malicious_client": bad,
                "malicious_client_samples": len(own),
            },
        )

    def check(self, original: Evaluation, retrain: Evaluation) -> list[str]:
        warnings = []
        asr = original.value("asr")
        if asr is not None and asr < MIN_ORIGINAL_ASR:
            warnings.append(
                f"PRECONDITION FAILED: the original model's ASR is {asr:.1%} (< "
                f"{MIN_ORIGINAL_ASR:.0%}): the backdoor was not implanted, so forgetting it "
                f"measures nothing; raise poison_fraction or the training schedule"
            )
        retrain_asr = retrain.value("asr")
        if (
            retrain_asr is not None
            and asr is not None
            and asr >= MIN_ORIGINAL_ASR
            and retrain_asr >= asr - 0.2
        ):
            warnings.append(
                f"retrain still has ASR {retrain_asr:.1%} (original {asr:.1%}): the trigger "
                f"works without the poisoned data, so ASR does not measure forgetting here"
            )
        return warnings


class AttackSuccessRate(Metric):
    """Share of triggered test images (true label ≠ target) classified as the target."""

    name = "asr"
    higher_is_better = False
    ideal = fubench.REFERENCE  # the gold standard's rate, not 0: a broken model scores 0
    original_side = "above"  # the original still carries it: the metric reads higher
    role = "forgetting"
    percent = True
    success_margin = 2.0  # points of retrain's rate on the same seed (a trigger not learnt)

    def compute(self, ev: Evaluation) -> float | None:
        target = ev.setup.request.target_class
        data = ev.split("backdoor")
        return ev.accuracy("backdoor", torch.full_like(data.y, target))


class BackdoorAccuracy(Metric):
    """True-label accuracy on the same triggered test images."""

    name = "backdoor_acc"
    higher_is_better = True
    role = "utility"
    percent = True

    def compute(self, ev: Evaluation) -> float | None:
        return ev.accuracy("backdoor")


@fubench.hookimpl
def fubench_scenario_kinds() -> list[type[ScenarioKind]]:
    return [Backdoor]


@fubench.hookimpl
def fubench_metrics() -> list[type[Metric]]:
    return [AttackSuccessRate, BackdoorAccuracy]
