"""Partitioners: disjoint, covering, and with the skew each one promises."""

from __future__ import annotations

import pytest
import torch

from fubench.plugins import load_registry

LABELS = torch.arange(3000) % 10


def partitioner(name, **params):
    return load_registry().partitioners.get(name)(**params)


def check_disjoint_cover(parts, n):
    joined = torch.cat(parts)
    assert len(joined) == n, "every sample belongs to exactly one client"
    assert torch.equal(joined.sort().values, torch.arange(n))


@pytest.mark.parametrize(
    "name,params",
    [
        ("iid", {}),
        ("dirichlet", {"alpha": 0.5}),
        ("dirichlet", {"alpha": 100.0}),
        ("preferential", {}),
    ],
)
@pytest.mark.parametrize("clients", [1, 5])
def test_disjoint_and_covering(name, params, clients):
    parts = partitioner(name, **params).partition(LABELS, clients, torch.Generator().manual_seed(1))
    assert len(parts) == clients
    check_disjoint_cover(parts, len(LABELS))


def test_iid_is_balanced_and_seeded():
    p = partitioner("iid")
    a = p.partition(LABELS, 5, torch.Generator().manual_seed(3))
    b = p.partition(LABELS, 5, torch.Generator().manual_seed(3))
    c = p.partition(LABELS, 5, torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert {len(x) for x in a} == {600}


def label_skew(parts) -> float:
    """Mean total-variation distance between each client's label histogram and uniform."""
    distances = []
    for part in parts:
        hist = torch.bincount(LABELS[part], minlength=10).float()
        hist /= hist.sum()
        distances.append(0.5 * (hist - 0.1).abs().sum())
    return float(torch.stack(distances).mean())


def test_dirichlet_skew_grows_as_alpha_falls():
    skews = []
    for alpha in (100.0, 1.0, 0.1):
        runs = [
            label_skew(
                partitioner("dirichlet", alpha=alpha, min_size=1).partition(
                    LABELS, 5, torch.Generator().manual_seed(s)
                )
            )
            for s in range(5)
        ]
        skews.append(sum(runs) / len(runs))
    assert skews[0] < skews[1] < skews[2], skews
    assert skews[0] < 0.1 and skews[2] > 0.4


def test_dirichlet_gives_every_client_min_size():
    parts = partitioner("dirichlet", alpha=0.3, min_size=50).partition(
        LABELS, 5, torch.Generator().manual_seed(0)
    )
    assert min(len(p) for p in parts) >= 50


def test_preferential_exclusive_classes():
    parts = partitioner("preferential").partition(LABELS, 5, torch.Generator().manual_seed(0))
    for client, part in enumerate(parts):
        own = set(LABELS[part].tolist())
        exclusive = 5 + client
        assert exclusive in own
        others = [set(LABELS[p].tolist()) for i, p in enumerate(parts) if i != client]
        assert all(exclusive not in o for o in others), "the exclusive class is nobody else's"
        assert own - {exclusive} == {0, 1, 2, 3, 4}, "the shared classes are shared by all"
        shared = LABELS[part][LABELS[part] < 5]
        assert torch.bincount(shared, minlength=5)[:5].tolist() == [60] * 5, "shared evenly"


def test_preferential_rejects_too_many_clients():
    with pytest.raises(ValueError, match="fewer clients"):
        partitioner("preferential").partition(LABELS, 10, torch.Generator())
