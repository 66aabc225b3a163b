"""Scenario kind ``sensitive``: forget an input feature of the requesting client.

The feature is an image rectangle (``region: [top, left, height, width]``, all channels)
or tabular columns (``columns``: feature names; a name also selects its one-hot columns
``name=value``). The request covers all the client's samples, with the feature marked by
``feature_mask``; the client stays in the federation.

Reference data, for the gold standard only (Ferrari, Appendix A.2): data whose feature
is replaced by Gaussian noise N(0, ``noise_std``²) — in the requesting client's data
(``noise_scope: client``, the default) or in every client's (``noise_scope: all``,
which is how we read the paper's retrain: its feature sensitivity is ~0 and its accuracy
drops, which cannot happen while the other clients still teach the feature). Methods
see the clients' own data: the requesting client's samples (all of which carry the
feature) are its forget set and it keeps none; the other clients keep theirs.

Evaluation sets: ``test``; ``forget`` = the client's (clean) training data, on which
``feature_sensitivity`` and ``inversion_asr`` are measured.

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

#: retrain must be at most this fraction as sensitive to the feature as the original
MAX_RETRAIN_SENSITIVITY_SHARE = 0.8


def region_mask(shape: tuple[int, ...], region: list[int]) -> torch.Tensor:
    """Bool mask (C, H, W) of the rectangle ``[top, left, height, width]``."""
    _, height, width = shape
    top, left, h, w = region
    if top + h > height or left + w > width:
        raise ValueError(f"sensitive: region {region} does not fit {height}x{width} images")
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[:, top : top + h, left : left + w] = True
    return mask


def column_mask(feature_names: list[str], columns: list[str]) -> torch.Tensor:
    """Bool mask over the features named in ``columns`` (or their one-hot ``name=...``)."""
    mask = torch.zeros(len(feature_names), dtype=torch.bool)
    for wanted in columns:
        hits = [
            i
            for i, name in enumerate(feature_names)
            if name == wanted or name.startswith(f"{wanted}=")
        ]
        if not hits:
            raise ValueError(
                f"columns: no feature '{wanted}'; the data set has: {', '.join(feature_names)}"
            )
        mask[hits] = True
    return mask


def with_noise(split: Split, mask: torch.Tensor, std: float, generator: torch.Generator) -> Split:
    """The same samples with the feature replaced by Gaussian noise."""
    x = split.x.clone()
    noise = torch.randn(x.shape, generator=generator) * std
    x[:, mask] = noise[:, mask]
    return Split(x, split.y)


class SensitiveFeature(ScenarioKind):
    """Forget an image region or tabular columns of one client."""

    name = "sensitive"
    forgotten_behaviour = "feature_sensitivity"  # S(f): the outputs move with the feature
    example_params = {"region": [2, 2, 4, 4]}  # an image region; it has no default
    # the gold standard learns without the feature (noise in its place) and may lose
    # accuracy for it; keeping more accuracy is the point (Ferrari, Sec. 4.3)
    overshoot_remembers = False
    parameters = {
        "client": Param(0, int, min=0, help="the requesting client"),
        "region": Param(
            None, list, nullable=True, help="images: [top, left, height, width] of the feature"
        ),
        "columns": Param(None, list, nullable=True, help="tabular: names of the feature's columns"),
        "noise_std": Param(
            1.0,
            float,
            min=0.0,
            min_exclusive=True,
            help="std of the noise that replaces the feature for retrain",
        ),
        "noise_scope": Param(
            "client",
            choices=("client", "all"),
            help="whose data retrain noises: the requesting client's or all",
        ),
    }

    default_metrics = (
        "test_acc",
        "nta",
        "feature_sensitivity",
        "inversion_asr",
        "target_acc",
        "relearn",
        "relearn_ratio",
        "seconds",
        "rtr",
        "clients_involved",
    )

    @classmethod
    def validate_config(cls, params: dict[str, Any], context: ConfigContext):
        yield from bad_client(params, context)
        image = context.modality == "image"
        region, columns = params["region"], params["columns"]
        if image and region is None:
            yield "region", "an image data set needs region: [top, left, height, width]"
        if not image and columns is None:
            yield "columns", "a tabular data set needs columns: [feature names]"
        if region is not None and (columns is not None or not image):
            yield "region", "region is for image data sets; use columns for tabular ones"
        if region is not None and (
            len(region) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in region)
            or region[2] == 0
            or region[3] == 0
        ):
            yield (
                "region",
                f"expected [top, left, height, width], non-negative integers "
                f"with height, width > 0, got {region}",
            )
        if columns is not None and (not columns or not all(isinstance(c, str) for c in columns)):
            yield "columns", f"expected a non-empty list of feature names, got {columns}"
        elif columns is not None and len(set(columns)) < len(columns):
            twice = next(c for c in columns if columns.count(c) > 1)
            yield "columns", f"'{twice}' is listed twice"

    def feature_mask(self, data: Dataset) -> torch.Tensor:
        if data.x_train.dim() == 2:
            if self.columns is None:
                raise ValueError("columns: a tabular data set needs columns: [feature names]")
            return column_mask(data.feature_names or [], self.columns)
        if self.region is None:
            raise ValueError("region: an image data set needs region: [top, left, height, width]")
        return region_mask(data.input_shape, self.region)

    def build(
        self, data: Dataset, partition: list[torch.Tensor], generator: torch.Generator
    ) -> ScenarioSetup:
        mask = self.feature_mask(data)
        clients = client_splits(data, partition)
        own = clients[self.client]
        noised = range(len(clients)) if self.noise_scope == "all" else [self.client]
        reference = [
            with_noise(s, mask, self.noise_std, generator) if c in noised else s
            for c, s in enumerate(clients)
        ]
        # what methods may use: the requesting client's samples all carry the feature, so
        # it keeps none of them; the others keep their data as it is
        retained = list(clients)
        retained[self.client] = empty_like(own)
        request = ForgetRequest(
            clients=(self.client,),
            forget_masks={self.client: torch.ones(len(own), dtype=torch.bool)},
            feature_mask=mask,
            description=f"client {self.client} forgets the feature "
            f"{self.columns or self.region} ({int(mask.sum())} inputs)",
        )
        return ScenarioSetup(
            train=clients,
            retained=retained,
            reference=reference,
            request=request,
            eval_sets={"test": test_split(data), "forget": own},
            default_metrics=list(self.default_metrics),
            info={
                "requesting_client": self.client,
                "feature_inputs": int(mask.sum()),
                "noised_clients": list(noised),
            },
            attack_seed=attack_seed(generator),
        )

    def check(self, original: Evaluation, retrain: Evaluation) -> list[str]:
        own, ref = original.value("feature_sensitivity"), retrain.value("feature_sensitivity")
        if own is None or ref is None or ref <= MAX_RETRAIN_SENSITIVITY_SHARE * own:
            return []
        hint = (
            " (noise_scope: client — the other clients still teach the feature; "
            "try noise_scope: all)"
            if self.noise_scope == "client"
            else ""
        )
        return [
            f"PRECONDITION FAILED: retrain is about as sensitive to the feature as the "
            f"original ({ref:.3g} vs {own:.3g}): the retrain reference did not lose the "
            f"feature, so forgetting it cannot be measured against it{hint}"
        ]


@fubench.hookimpl
def fubench_scenario_kinds() -> list[type[ScenarioKind]]:
    return [SensitiveFeature]
