"""Helpers shared by the built-in methods that remove whole clients using the round
history (FedEraser, distillation, FedRecovery); not a plugin (no hooks)."""

from __future__ import annotations

import torch
from torch import nn

from fubench import NotApplicable, UnlearnContext

#: kinds whose request keeps part of a requesting client's data, yet is served by
#: removing the whole client: a backdoor's malicious client is dropped with its clean
#: samples (they are collateral; retrain keeps them, so utility may differ slightly)
REMOVES_WHOLE_CLIENT = ("backdoor",)


def leaving_clients(ctx: UnlearnContext, method: str) -> set[int]:
    """The clients whose whole contribution the method removes: the requesting ones.
    NotApplicable when the request asks a client to forget only part of its data (except
    the kinds in ``REMOVES_WHOLE_CLIENT``) or covers every client."""
    leaving = set(ctx.request.clients)
    keeping = sorted(c for c in leaving if c in ctx.federation.retained_clients)
    if keeping and ctx.scenario_kind not in REMOVES_WHOLE_CLIENT:
        raise NotApplicable(
            f"{method} forgets whole clients, but client(s) "
            f"{', '.join(map(str, keeping))} keep part of their data under "
            f"this request"
        )
    if leaving >= set(range(ctx.federation.n_clients)):
        raise NotApplicable(
            "the request covers every client; removing them all leaves no federation"
        )
    return leaving


def layer_slices(state: dict[str, torch.Tensor]) -> list[slice]:
    """One slice of the flat vector (``fubench.flatten``) per floating-point entry of
    ``state``, in the same order."""
    slices, offset = [], 0
    for value in state.values():
        if value.is_floating_point():
            slices.append(slice(offset, offset + value.numel()))
            offset += value.numel()
    return slices


def parameter_mask(model: nn.Module) -> torch.Tensor:
    """Bool over the flat vector: True at trainable parameters, False at buffers (e.g.
    BatchNorm's running statistics, which are re-estimated rather than subtracted)."""
    names = {name for name, _ in model.named_parameters()}
    parts = [
        torch.full((v.numel(),), k in names, dtype=torch.bool)
        for k, v in model.state_dict().items()
        if v.is_floating_point()
    ]
    return torch.cat(parts)
