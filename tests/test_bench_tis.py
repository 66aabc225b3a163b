"""Speed of TIS-Reset's curvature pass, as ratios measured in one run (no timed asserts).

For every curvature option, three variants run over the same synthetic MNIST-shaped data
(one client, 30% of it to forget) with the MNIST CNN, interleaved round by round:

* ``grad``     — plain gradient passes (forward + backward per mini-batch): the unit,
                 repeated ``GRAD_REPEATS`` times so that it too lasts about a second;
* ``bare``     — BackPACK doing the same passes on its own: a hand-written loop over the
                 same sub-batches with the model extended beforehand;
* ``tis``      — :func:`client_curvature`, what tis_reset's clients run.

Run with timing on (the project's default disables it)::

    pytest tests/test_bench_tis.py --benchmark-enable -s

and each option prints ``tis / bare`` (speed of the bare loop relative to tis_reset's
pass: the goal is at most 1.3) and ``tis / grad`` (one curvature pass in plain
gradient passes), each from the variant's fastest of 10 rounds, with the spread of the
rounds beside it. With timing off every code path still runs once, on fewer samples."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from fubench_builtins.models import MnistCNN
from fubench_builtins.tis_reset import CURVATURES, backpack_extension, client_curvature
from torch import nn
from torch.nn import functional as F

from fubench import Split
from tests.benchtools import Interleaved, run

BATCH = 32
#: samples per timed variant: about a second for the cheapest curvature on one core
N_SAMPLES = 512
GRAD_REPEATS = 3
LINES: list[str] = []


def workload(n: int):
    torch.manual_seed(0)
    model = MnistCNN().build((1, 28, 28), 10)
    g = torch.Generator().manual_seed(0)
    data = Split(torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))
    mask = torch.rand(n, generator=g) < 0.3
    return model, data, mask


def gradient_pass(model: nn.Module, data: Split) -> None:
    for start in range(0, len(data), BATCH):
        model.zero_grad(set_to_none=True)
        F.cross_entropy(
            model(data.x[start : start + BATCH]), data.y[start : start + BATCH]
        ).backward()


def bare_backpack(
    net: nn.Module, loss_fn: nn.Module, data: Split, mask: torch.Tensor, curvature: str
) -> dict[str, dict[str, torch.Tensor]]:
    """The same sub-batch passes, BackPACK alone: no copy, no conversion, no split
    bookkeeping beyond the sums."""
    from backpack import backpack

    sums = {
        part: {n: torch.zeros_like(p) for n, p in net.named_parameters()}
        for part in ("forget", "retained")
    }
    for start in range(0, len(data), BATCH):
        x, y, m = (
            data.x[start : start + BATCH],
            data.y[start : start + BATCH],
            mask[start : start + BATCH],
        )
        for part, select in (("forget", m), ("retained", ~m)):
            extension, field = backpack_extension(curvature, part)
            net.zero_grad(set_to_none=True)
            with backpack(extension), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Full backward hook is firing")
                loss_fn(net(x[select]), y[select]).backward()
            for n, p in net.named_parameters():
                sums[part][n] += getattr(p, field)
    return sums


@pytest.mark.benchmark(group="tis-curvature")
@pytest.mark.parametrize("curvature", CURVATURES)
def test_bench_tis_curvature(benchmark, curvature):
    from backpack import extend

    timed = not getattr(benchmark, "disabled", False)
    model, data, mask = workload(N_SAMPLES if timed else 2 * BATCH)
    net = extend(copy.deepcopy(model))  # set-up outside the timed region
    loss_fn = extend(nn.CrossEntropyLoss(reduction="sum"))
    torch.manual_seed(0)

    def grad() -> None:
        for _ in range(GRAD_REPEATS):
            gradient_pass(model, data)

    timer = Interleaved(
        {
            "grad": grad,
            "bare": lambda: bare_backpack(net, loss_fn, data, mask, curvature),
            "tis": lambda: client_curvature(model, data, mask, curvature, batch_size=BATCH),
        }
    )
    if not run(benchmark, timer):
        return
    per_grad = timer.best("grad") / GRAD_REPEATS
    LINES.append(
        f"  {curvature:<12} tis/bare {timer.ratio('bare', 'tis'):.2f}  "
        f"tis/grad {timer.best('tis') / per_grad:.1f}  "
        f"(tis {timer.spread('tis')}; bare {timer.spread('bare')}; "
        f"grad x{GRAD_REPEATS} {timer.spread('grad')})"
    )


def test_bench_ratios(capsys):
    """Print the ratios (runs last in this file). A report, not an assertion."""
    if not LINES:
        pytest.skip("benchmarks ran with timing disabled (use --benchmark-enable)")
    head = (
        f"TIS-Reset curvature pass ({N_SAMPLES} samples, batch {BATCH}, MNIST CNN, "
        f"{torch.get_num_threads()} thread(s)); ratios of each variant's fastest round:"
    )
    with capsys.disabled():
        print("\n" + "\n".join([head, *LINES]))
