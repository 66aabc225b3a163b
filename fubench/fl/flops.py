"""Work: the floating-point operations a row asked of the clients and the server,
counted, not timed, so the same on every machine.

What is counted is what ``torch.utils.flop_counter`` counts: the FLOPs of matrix
products and convolutions (forward and backward: ``mm``, ``addmm``, ``bmm``,
``convolution``, ``convolution_backward``, attention kernels...), from the shapes of the
operands. Elementwise operations, optimiser steps, losses and the server's averaging
are not counted; on the models here they are a few percent of the total.

* FedAvg training (``Federation.train``): samples processed (epochs × each selected
  client's data, every round) × the forward-and-backward FLOPs of one training sample,
  measured once per model architecture on a copy of the model (a batch of two, halved:
  the count is linear in the batch). That is exactly what the counter gives when it
  watches every batch, without slowing training down.
* Work a method asks of clients (``Federation.ask``: BackPACK's curvature passes,
  activation statistics, Ferrari's perturbed passes...): counted under the counter, as
  it runs.
* The method's own computations on the server (everything ``unlearn`` does outside
  ``Federation.train`` and ``Federation.ask``): counted under the counter.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from fubench.scenario import Split

_PER_SAMPLE: dict[tuple, int] = {}


def architecture_key(model: nn.Module, data: Split) -> tuple:
    """What a per-sample count depends on: the model's code and shapes, the input shape."""
    params = tuple((n, tuple(p.shape), p.requires_grad) for n, p in model.named_parameters())
    return (
        type(model).__module__,
        type(model).__qualname__,
        repr(model),
        params,
        tuple(data.x.shape[1:]),
        str(data.x.dtype),
        data.x.device.type,
    )


def training_flops_per_sample(
    model: nn.Module, data: Split, loss_fn: Callable = F.cross_entropy
) -> int:
    """Forward + backward FLOPs of one training sample of ``model`` on ``data``'s inputs
    (counted on a copy, so the model's state, BatchNorm statistics included, is left
    alone); cached per architecture."""
    key = architecture_key(model, data)
    if key not in _PER_SAMPLE:
        n = min(2, len(data))
        net = copy.deepcopy(model)
        net.train()
        with FlopCounterMode(display=False) as counter:
            loss_fn(net(data.x[:n]), data.y[:n]).backward()
        _PER_SAMPLE[key] = counter.get_total_flops() // n
    return _PER_SAMPLE[key]


class WorkMeter:
    """Counts FLOPs into ``counts["clients"]`` and ``counts["server"]``.

    :meth:`phase` switches what is being counted: ``"server"`` while a method runs,
    ``"clients"`` inside ``Federation.ask``, ``None`` (nothing: counted from the
    schedule) inside ``Federation.train``. One counter is active at a time, so nothing
    is counted twice."""

    def __init__(self) -> None:
        self.counts = {"clients": 0, "server": 0}
        self._phase: str | None = None
        self._mode: FlopCounterMode | None = None

    @contextlib.contextmanager
    def phase(self, name: str | None) -> Iterator[None]:
        previous = self._phase
        self._close()
        self._open(name)
        try:
            yield
        finally:
            self._close()
            self._open(previous)

    def add(self, phase: str, flops: int) -> None:
        self.counts[phase] += int(flops)

    def _open(self, name: str | None) -> None:
        self._phase = name
        if name is not None:
            self._mode = FlopCounterMode(display=False)
            self._mode.__enter__()

    def _close(self) -> None:
        if self._mode is not None:
            mode, self._mode = self._mode, None
            mode.__exit__(None, None, None)
            self.add(self._phase or "server", mode.get_total_flops())


def state_fingerprint(model: nn.Module) -> str:
    """A hash of the model's state: two models with the same one compute the same."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tensor.dtype).encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return h.hexdigest()
