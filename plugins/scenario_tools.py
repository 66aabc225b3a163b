"""Small helpers shared by the built-in scenario kinds (not a plugin: no hooks).

They keep the kinds short and make them report configuration mistakes the same way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch

from fubench import ConfigContext, Dataset, Evaluation, Split


def client_splits(data: Dataset, partition: list[torch.Tensor]) -> list[Split]:
    """Each client's training data, in client order."""
    return [Split(data.x_train[idx], data.y_train[idx]) for idx in partition]


def test_split(data: Dataset) -> Split:
    return Split(data.x_test, data.y_test)


def attack_seed(generator: torch.Generator) -> int:
    """A seed for the metrics' attacks, drawn from the scenario's generator, so every
    attack is repeatable for a run seed yet differs between run seeds."""
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))


def bad_client(
    params: dict[str, Any], context: ConfigContext, key: str = "client"
) -> Iterator[tuple[str, str]]:
    value = params.get(key)
    if value is not None and value >= context.clients:
        yield key, f"expected a client index in 0..{context.clients - 1}, got {value}"


def bad_label(
    params: dict[str, Any], context: ConfigContext, key: str
) -> Iterator[tuple[str, str]]:
    value = params.get(key)
    if context.n_classes is not None and value is not None and value >= context.n_classes:
        yield (
            key,
            (
                f"expected a label in 0..{context.n_classes - 1} for dataset "
                f"'{context.dataset}', got {value}"
            ),
        )


def empty_like(split: Split) -> Split:
    """No samples, same trailing shape (what a fully forgotten client keeps)."""
    return split.subset(torch.zeros(len(split), dtype=torch.bool))


#: membership inference the original must reach on the forget set for MIA to show forgetting
MIN_ORIGINAL_MIA = 0.55


def memorisation_warnings(original: Evaluation, what: str) -> list[str]:
    """The precondition of kinds scored by membership inference: the original model
    must have memorised ``what`` (e.g. "client 0's data") measurably, or MIA cannot show
    forgetting."""
    mia = original.value("mia_acc")
    if mia is None or mia >= MIN_ORIGINAL_MIA:
        return []
    return [
        f"PRECONDITION FAILED: membership inference on the original model reaches "
        f"only {mia:.1%} (< {MIN_ORIGINAL_MIA:.0%}): it did not measurably memorise "
        f"{what}, so MIA cannot show forgetting; train longer or give clients fewer "
        f"samples"
    ]
