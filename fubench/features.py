"""Input features a request can ask to forget, described by how to perturb them.

Feature unlearning (Ferrari) and the feature-sensitivity metric both need to vary the
feature and nothing else. A pixel region or a tabular column is varied by Gaussian noise
inside its mask (:class:`RegionFeature`); a feature that is no region — the colour of a
digit, say — describes its own perturbation by subclassing :class:`Feature`."""

from __future__ import annotations

import torch


class Feature:
    """A feature of the input, as a perturbation.

    ``perturb(x, sigma, generator)`` returns δ, shaped like ``x``, that changes only the
    feature of each sample, with scale ``sigma[i]`` for sample ``i``; random numbers come
    from the CPU ``generator`` (so runs repeat) and δ is on ``x``'s device. ``mask`` is
    the input-shaped region when the feature is one (None otherwise)."""

    mask: torch.Tensor | None = None
    description: str = "a feature of the input"

    def perturb(
        self, x: torch.Tensor, sigma: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def to(self, device: torch.device) -> Feature:
        return self


class RegionFeature(Feature):
    """Inputs inside a bool ``mask`` (an image region, tabular columns): δ is Gaussian
    noise N(0, sigma²) there and zero elsewhere. A mask of all True is the whole input."""

    def __init__(self, mask: torch.Tensor, description: str = "an input region"):
        self.mask = mask
        self.description = description

    def perturb(self, x, sigma, generator):
        noise = torch.randn(x.shape, generator=generator)
        noise = sigma.reshape(-1, *([1] * (x.dim() - 1))) * noise
        return noise.to(x.device) * self.mask.to(x.device, x.dtype)

    def to(self, device: torch.device) -> RegionFeature:
        return RegionFeature(self.mask.to(device), self.description)


def whole_input(shape: tuple[int, ...], device: torch.device | str = "cpu") -> RegionFeature:
    """Every input dimension: the feature when a request names none."""
    return RegionFeature(torch.ones(shape, dtype=torch.bool, device=device), "the whole input")
