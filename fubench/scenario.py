"""What a scenario kind builds and the harness hands around: data sets as tensors, the
splits each client holds, the forget request, and the set-up of one seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from fubench.features import Feature, RegionFeature


@dataclass
class Dataset:
    """A data set held as tensors. Images are float in [0, 1], shape (N, C, H, W);
    tabular rows are float, shape (N, F). ``x_test`` is None when the source defines no
    split (the harness then splits by ``test_fraction``)."""

    name: str
    source: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor | None
    y_test: torch.Tensor | None
    n_classes: int
    modality: str = "image"
    feature_names: list[str] | None = None
    class_names: list[str] | None = None
    #: unlabeled inputs the server holds (``dataset.server_fraction``), disjoint from
    #: every client's data and from the test set; None: the server holds no data
    x_server: torch.Tensor | None = None
    #: as many unlabeled inputs from another data set (``dataset.server_shifted``): server
    #: data from a shifted distribution, for methods that ask for it; None: none
    x_server_shifted: torch.Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])


@dataclass
class Split:
    """Inputs and labels on one device."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: torch.Tensor) -> Split:
        return Split(self.x[index], self.y[index])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))

    @staticmethod
    def concat(parts: list[Split]) -> Split:
        parts = [p for p in parts if len(p)]
        return Split(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]))


@dataclass
class ForgetRequest:
    """What a scenario asks the methods to forget.

    ``forget_masks[c]`` selects, within client ``c``'s training data, the samples to
    forget (D_T). For feature scenarios, ``feature_mask`` (input-shaped, bool) marks an
    input region to forget, or ``feature`` (a :class:`fubench.Feature`) describes a
    feature that is no region by how to perturb it (the colour of a digit);
    ``target_class`` is the class the request is about (the backdoor target, the class
    to forget)."""

    clients: tuple[int, ...]
    forget_masks: dict[int, torch.Tensor]
    target_class: int | None = None
    feature_mask: torch.Tensor | None = None
    description: str = ""
    feature: Feature | None = None

    def perturbation(self) -> Feature | None:
        """The feature to perturb: ``feature``, else the region of ``feature_mask``, else
        None (the request names no feature)."""
        if self.feature is not None:
            return self.feature
        if self.feature_mask is not None:
            return RegionFeature(self.feature_mask, "the request's feature region")
        return None

    def to(self, device: torch.device) -> None:
        """Move the masks to ``device``, in place."""
        self.forget_masks = {c: m.to(device) for c, m in self.forget_masks.items()}
        if self.feature_mask is not None:
            self.feature_mask = self.feature_mask.to(device)
        if self.feature is not None:
            self.feature = self.feature.to(device)


@dataclass
class ScenarioSetup:
    """Everything a scenario kind builds for one seed.

    ``train[c]`` is what client ``c`` trains the original model on; ``retained[c]`` is
    what it keeps once the request is honoured, and what methods may ask it to work on;
    ``reference[c]`` is what the gold standard (retrain) trains on — the retained data
    unless the kind prepares something else; ``eval_sets`` holds named evaluation
    splits ("test" always, "forget" = D_T). ``attack_seed`` seeds the metrics' attacks
    (the harness derives one from the run seed when the kind leaves it None).
    ``server_data``, ``server_data_shifted`` and ``forgotten_behaviour`` are filled by the
    harness, not the kind: the unlabeled inputs the server holds
    (``dataset.server_fraction``) and as many from another data set
    (``dataset.server_shifted``), or None; the kind's declared
    ``ScenarioKind.forgotten_behaviour`` (a metric name), or None."""

    train: list[Split]
    retained: list[Split]
    request: ForgetRequest
    eval_sets: dict[str, Split]
    default_metrics: list[str]
    info: dict[str, Any] = field(default_factory=dict)
    reference: list[Split] | None = None
    attack_seed: int | None = None
    server_data: torch.Tensor | None = None
    server_data_shifted: torch.Tensor | None = None
    forgotten_behaviour: str | None = None

    @property
    def n_clients(self) -> int:
        return len(self.train)

    def reference_data(self) -> list[Split]:
        return self.retained if self.reference is None else self.reference

    def forget_part(self, client: int) -> Split:
        mask = self.request.forget_masks.get(client)
        data = self.train[client]
        if mask is None:
            return data.subset(torch.zeros(len(data), dtype=torch.bool, device=data.y.device))
        return data.subset(mask)

    def to(self, device: torch.device) -> None:
        """Move every split and mask to ``device``, in place."""
        self.train = [s.to(device) for s in self.train]
        self.retained = [s.to(device) for s in self.retained]
        if self.reference is not None:
            self.reference = [s.to(device) for s in self.reference]
        self.eval_sets = {k: s.to(device) for k, s in self.eval_sets.items()}
        if self.server_data is not None:
            self.server_data = self.server_data.to(device)
        if self.server_data_shifted is not None:
            self.server_data_shifted = self.server_data_shifted.to(device)
        self.request.to(device)
