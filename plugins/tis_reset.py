"""TIS-Reset: forget by resetting the parameters that carry the most information about
the target data (Balordi et al., "Tackling federated unlearning as a parameter
estimation problem", sections 4-5 and Appendix 2).

The file follows the paper top to bottom:

1. eq. 29 — every client c computes, on its own data and in one pass, the Hessian
   diagonals of the mean loss over its forget part D_c^(f) and its retained part
   D_c^(r) (:func:`client_curvature`; BackPACK does the second-order backpropagation);
2. eq. 30 — the server aggregates them into h (all data) and h' (target data)
   (:func:`aggregate`);
3. eq. 28 — Target Information Score TIS_i = (h'_i / h_i)^2, 0 where h_i ≤ 0 and, as
   in the authors' released code, where h'_i ≤ 0 (:func:`target_information_score`);
4. section 5 — per parameter tensor ("layer"), reset the smallest set of entries, taken
   by descending TIS, whose TIS sum reaches γ of the tensor's total
   (:func:`smallest_prefix`, :func:`reset_masks`), to their initial values
   (:func:`reset_values`, :func:`apply_reset`);
5. Appendix 2 — optionally a "minimal retrain": a few federated rounds that train only
   the reset entries (the TRIM wrapper's effect; the harness's ``param_masks`` keeps
   every other entry exactly fixed) (:func:`minimal_retrain`).

Curvature (``curvature``): ``diag_hessian`` (BackPACK ``DiagHessian``), ``ggn_exact``
(``DiagGGNExact``), ``ggn_mc`` (``DiagGGNMC``, ``mc_samples`` Monte-Carlo samples) and
``hybrid`` (exact on the small forget part, MC on the large retained part: a single MC
sample scores a small forget set too noisily, while the retained part is large enough
to average the noise out). When hybrid is safe: when the forget set is a small,
distinctive part of the data (a backdoor, a class), its exact scores dominate the
ranking. When the forget set is statistically like the rest (a client in an IID
federation) the TIS ratio is close to 1 everywhere and the MC noise in h decides which
entries are reset: use ``ggn_exact`` there (the measurement: docs/methods.md).

Models. BackPACK's converter (torch.fx) rewrites residual additions, ``torch.flatten``
and in-place ReLUs into modules it knows, so the MNIST CNN, the MLP and ResNet-18 all
work with the GGN options. BatchNorm: BackPACK supports it only in evaluation mode (in
training mode it couples the samples of a batch, so per-part curvature is not even
defined). The curvature is therefore taken with the model in ``eval()`` mode — the
function the trained model computes at test time, with its running statistics fixed.
``diag_hessian`` has no BackPACK rule for BatchNorm or residual sums; for such models
the method stops with a one-line error pointing to ``ggn_exact``, which for ReLU
networks is the same diagonal (each output is linear in every single weight, so the
second term of the Hessian has a zero diagonal).
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import nn

import fubench
from fubench import (
    ClientView,
    NotApplicable,
    Param,
    Split,
    UnlearnContext,
    Unlearner,
    UnlearnResult,
    derive_seed,
)

CURVATURES = ("diag_hessian", "ggn_exact", "ggn_mc", "hybrid")
RESET_TO = ("init", "zero", "fresh")
PARTS = ("forget", "retained")

Curvature = dict[str, torch.Tensor]  # parameter name -> diagonal, shaped like the parameter


# ------------------------------------------------------------------------------------
# 1. eq. 29 — each client's Hessian diagonals over its forget and retained parts
# ------------------------------------------------------------------------------------


def backpack_extension(curvature: str, part: str, mc_samples: int = 1):
    """The BackPACK extension for one part of the data, and the attribute it fills.
    ``hybrid`` is exact on the forget part and Monte-Carlo on the retained part."""
    from backpack.extensions import DiagGGNExact, DiagGGNMC, DiagHessian

    if curvature == "hybrid":
        curvature = "ggn_exact" if part == "forget" else "ggn_mc"
    if curvature == "diag_hessian":
        return DiagHessian(), "diag_h"
    if curvature == "ggn_exact":
        return DiagGGNExact(), "diag_ggn_exact"
    if curvature == "ggn_mc":
        return DiagGGNMC(mc_samples=mc_samples), "diag_ggn_mc"
    raise ValueError(f"unknown curvature '{curvature}'; expected one of {', '.join(CURVATURES)}")


def backpack_model(model: nn.Module) -> nn.Module:
    """``model`` made BackPACK-ready. The converter keeps parameter names and shares the
    parameter tensors, so results map back to ``model.named_parameters()``.

    A plain ``nn.Sequential`` of leaf modules (the MNIST CNN, the MLP) has no functional
    call or residual sum to rewrite, so it is extended as it is: tracing it with torch.fx
    would only add a fixed cost to every client's pass."""
    from backpack import extend

    if isinstance(model, nn.Sequential) and all(
        next(child.children(), None) is None for child in model
    ):
        return extend(model)
    try:
        return extend(model, use_converter=True)
    except Exception as exc:  # fx cannot trace data-dependent control flow
        raise NotApplicable(
            f"BackPACK cannot convert {type(model).__name__}: {type(exc).__name__}: {exc}"
        ) from None


def _sum_diagonals(
    net: nn.Module,
    loss_fn: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    extension: Any,
    savefield: str,
    into: Curvature,
) -> None:
    """Add the diagonal of the *summed* loss over the samples (x, y) to ``into``."""
    from backpack import backpack

    net.zero_grad(set_to_none=True)
    with backpack(extension), warnings.catch_warnings():
        # the inputs need no gradient; torch warns that the full backward hooks BackPACK
        # installs then fire on module outputs, which is exactly what BackPACK wants
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        try:
            loss_fn(net(x), y).backward()
        except NotImplementedError as exc:  # a layer without a rule for this extension
            raise NotApplicable(
                f"BackPACK cannot compute {savefield} for this model "
                f"({exc}); ggn_exact covers BatchNorm and residual "
                f"blocks"
            ) from None
    for name, p in net.named_parameters():
        into[name] += getattr(p, savefield).detach()
        delattr(p, savefield)  # keeps the client's copy light between batches


def client_curvature(
    model: nn.Module,
    data: Split,
    forget_mask: torch.Tensor | None,
    curvature: str,
    batch_size: int = 128,
    mc_samples: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """eq. 29 on one client: the diagonals h_c^(f), h_c^(r) of the *mean* loss over the
    client's forget and retained samples, and their counts N_c^(f), N_c^(r).

    One pass over ``data``: each mini-batch is split by sample into its forget and its
    retained rows, and each sub-batch is backpropagated once with its part's extension.
    A part without samples is left out of the answer (nothing to send)."""
    n = len(data)
    mask = (
        torch.zeros(n, dtype=torch.bool, device=data.y.device)
        if forget_mask is None
        else forget_mask.to(device=data.y.device, dtype=torch.bool)
    )
    if mask.shape != (n,):
        raise ValueError(f"the forget mask has {tuple(mask.shape)} entries for {n} samples")
    from backpack import extend

    # BackPACK installs hooks on the modules: work on a copy so ``model`` stays plain
    net = backpack_model(copy.deepcopy(model))
    net.eval()  # BatchNorm: running statistics (see the module docstring)
    loss_fn = extend(nn.CrossEntropyLoss(reduction="sum"))
    extensions = {part: backpack_extension(curvature, part, mc_samples) for part in PARTS}
    sums = {
        part: {name: torch.zeros_like(p) for name, p in net.named_parameters()} for part in PARTS
    }
    counts = {"forget": int(mask.sum()), "retained": n - int(mask.sum())}
    devices = [data.x.device] if data.x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)  # the Monte-Carlo samples of ggn_mc / hybrid
        for start in range(0, n, batch_size):
            rows = slice(start, start + batch_size)
            x, y, in_forget = data.x[rows], data.y[rows], mask[rows]
            for part, select in (("forget", in_forget), ("retained", ~in_forget)):
                if select.any():
                    _sum_diagonals(
                        net, loss_fn, x[select], y[select], *extensions[part], into=sums[part]
                    )
    report: dict[str, Any] = {}
    for part in PARTS:
        if counts[part]:
            report[part] = {k: v / counts[part] for k, v in sums[part].items()}
            report[f"n_{part}"] = counts[part]
    return report


# ------------------------------------------------------------------------------------
# 2. eq. 30 — the server aggregates h (all data) and h' (target data)
# ------------------------------------------------------------------------------------


def aggregate(reports: list[dict[str, Any]]) -> tuple[Curvature, Curvature]:
    """h = (1/N) Σ_c (N_c^f h_c^f + N_c^r h_c^r) and h' = (1/N_T) Σ_c N_c^f h_c^f."""
    n_total = sum(r.get("n_forget", 0) + r.get("n_retained", 0) for r in reports)
    n_target = sum(r.get("n_forget", 0) for r in reports)
    if n_target == 0:
        raise ValueError("the unlearning request selects no sample: nothing to score")
    names = next(r[p] for r in reports for p in PARTS if p in r).keys()
    h = {name: 0.0 for name in names}
    h_prime = {name: 0.0 for name in names}
    for r in reports:
        for name in names:
            if "forget" in r:
                weighted = r["n_forget"] * r["forget"][name]
                h[name] = h[name] + weighted
                h_prime[name] = h_prime[name] + weighted
            if "retained" in r:
                h[name] = h[name] + r["n_retained"] * r["retained"][name]
    return ({k: v / n_total for k, v in h.items()}, {k: v / n_target for k, v in h_prime.items()})


# ------------------------------------------------------------------------------------
# 3. eq. 28 — Target Information Score
# ------------------------------------------------------------------------------------


#: what the score is where the target curvature h' is not positive
NEGATIVE_TARGET = ("zero", "square")


def target_information_score(
    h: Curvature, h_prime: Curvature, negative_target: str = "zero"
) -> Curvature:
    """TIS_i = (h'_i / h_i)^2 where h_i > 0, and 0 where h_i <= 0: the score is a ratio
    of Fisher informations, defined for positive curvature only (eq. 22 requires h > 0,
    and the authors' code zeroes h <= 0). Where h'_i <= 0 the authors' code
    (``information/diagonal.py``) zeroes the score too (``negative_target="zero"``, the
    default); ``"square"`` keeps the formula as written, which turns a negative h' into a
    positive score. The GGN options are never negative, and neither is the exact Hessian
    diagonal of a ReLU network (the GGN's); it can be on other layers (e.g. tanh)."""
    if negative_target not in NEGATIVE_TARGET:
        raise ValueError(
            f"unknown negative_target '{negative_target}'; expected {', '.join(NEGATIVE_TARGET)}"
        )
    scores = {}
    for name, total in h.items():
        defined = total > 0
        if negative_target == "zero":
            defined = defined & (h_prime[name] > 0)
        safe = torch.where(total > 0, total, torch.ones_like(total))
        scores[name] = torch.where(defined, (h_prime[name] / safe) ** 2, torch.zeros_like(total))
    return scores


# ------------------------------------------------------------------------------------
# 4. section 5 — per tensor, the smallest prefix by descending TIS reaching γ
# ------------------------------------------------------------------------------------


def smallest_prefix(scores: torch.Tensor, gamma: float) -> torch.Tensor:
    """Bool mask (shaped like ``scores``) of the fewest entries, taken by descending
    score, whose sum reaches ``gamma`` of the tensor's total. γ = 0 or an all-zero
    tensor select nothing; ties at the boundary are broken by position."""
    flat = scores.detach().flatten().double()  # double: a long cumsum must still reach γ
    order = torch.argsort(flat, descending=True, stable=True)
    cumulative = torch.cumsum(flat[order], 0)
    mask = torch.zeros_like(flat, dtype=torch.bool)
    if flat.numel() == 0 or gamma <= 0 or cumulative[-1] <= 0:
        return mask.view_as(scores)
    target = gamma * cumulative[-1]
    # first position whose running sum reaches the target; the prefix ends there
    k = int(torch.searchsorted(cumulative, target.reshape(1), right=False)) + 1
    mask[order[: min(k, flat.numel())]] = True
    return mask.view_as(scores)


def reset_masks(scores: Curvature, gamma: float) -> dict[str, torch.Tensor]:
    """:func:`smallest_prefix` for every parameter tensor."""
    return {name: smallest_prefix(s, gamma) for name, s in scores.items()}


def reset_values(ctx: UnlearnContext, how: str) -> dict[str, torch.Tensor]:
    """What reset entries become: the initial (pre-training) weights as in the paper,
    zeros as in the authors' library, or a fresh random initialisation as in their
    backdoor notebook."""
    params = dict(ctx.model.named_parameters())
    if how == "init":
        return {k: ctx.initial_state[k].to(p.device) for k, p in params.items()}
    if how == "zero":
        return {k: torch.zeros_like(p) for k, p in params.items()}
    if how == "fresh":
        fresh = dict(ctx.make_model().named_parameters())
        return {k: fresh[k].detach().to(p.device) for k, p in params.items()}
    raise ValueError(f"unknown reset_to '{how}'; expected one of {', '.join(RESET_TO)}")


@torch.no_grad()
def apply_reset(
    model: nn.Module, masks: dict[str, torch.Tensor], values: dict[str, torch.Tensor]
) -> None:
    """Set the masked entries of each parameter to ``values``, in place."""
    for name, p in model.named_parameters():
        if name in masks:
            p.copy_(torch.where(masks[name].to(p.device), values[name], p))


# ------------------------------------------------------------------------------------
# 5. Appendix 2 — minimal retrain of the reset entries only
# ------------------------------------------------------------------------------------


def minimal_retrain(
    ctx: UnlearnContext,
    model: nn.Module,
    masks: dict[str, torch.Tensor],
    rounds: int,
    lr: float | None,
) -> None:
    """``rounds`` FedAvg rounds of one local epoch (the paper: "a single epoch of
    federated retraining") on the retained data, training only the reset entries."""
    trainable = {k: m for k, m in masks.items() if bool(m.any())}
    if rounds <= 0 or not trainable:
        return
    settings = ctx.federation.settings.with_changes(epochs=1, lr=lr)
    ctx.federation.train(model, rounds=rounds, settings=settings, param_masks=trainable)


def reset_and_retrain(
    ctx: UnlearnContext,
    masks: dict[str, torch.Tensor],
    reset_to: str,
    rounds: int,
    lr: float | None,
) -> UnlearnResult:
    """Reset the masked entries of ``ctx.model``, optionally retrain them, and report
    the per-tensor counts (what random_reset mirrors) and the reset fraction."""
    apply_reset(ctx.model, masks, reset_values(ctx, reset_to))
    minimal_retrain(ctx, ctx.model, masks, rounds, lr)
    counts = {name: int(m.sum()) for name, m in masks.items()}
    total = sum(p.numel() for p in ctx.model.parameters())
    return UnlearnResult(
        ctx.model,
        artifacts={
            "reset_counts": counts,
            "reset_masks": masks,
            "settings": {
                "reset_to": reset_to,
                "minimal_retrain_rounds": rounds,
                "minimal_retrain_lr": lr,
            },
        },
        metrics={"reset_frac": sum(counts.values()) / total},
    )


# ------------------------------------------------------------------------------------
# the method
# ------------------------------------------------------------------------------------

RESET_PARAMETERS = {
    "reset_to": Param(
        "init",
        str,
        choices=RESET_TO,
        help="value of reset entries: initial weights, zero or a fresh init",
    ),
    "minimal_retrain_rounds": Param(
        0,
        int,
        min=0,
        help="federated rounds training only the reset entries (Appendix 2; 0 = none)",
    ),
    "minimal_retrain_lr": Param(
        None,
        float,
        min=0.0,
        min_exclusive=True,
        nullable=True,
        help="learning rate of the minimal retrain; null = the scenario's",
    ),
}


class TISReset(Unlearner):
    """Reset the parameters with the highest Target Information Score (TIS paper)."""

    name = "tis_reset"
    participation = "all"  # every client scores its own data (eq. 29)
    reports = ("reset_frac",)
    parameters = {
        "gamma": Param(
            0.5,
            float,
            min=0.0,
            max=1.0,
            help="γ_removal: share of each tensor's total TIS to reset",
        ),
        "curvature": Param(
            "ggn_exact",
            str,
            choices=CURVATURES,
            help="BackPACK diagonal: diag_hessian, ggn_exact, ggn_mc, hybrid",
        ),
        "mc_samples": Param(1, int, min=1, help="Monte-Carlo samples of ggn_mc / hybrid"),
        "negative_target": Param(
            "zero",
            str,
            choices=NEGATIVE_TARGET,
            help="TIS where the target curvature h' <= 0: zero (the authors' code) or "
            "square ((h'/h)², the formula as written)",
        ),
        "batch_size": Param(128, int, min=1, help="mini-batch of the curvature pass"),
        **RESET_PARAMETERS,
    }

    @classmethod
    def validate_config(cls, params, context):
        # a setting the others make pointless is a mistake, not a no-op (unless a sweep
        # of the other makes it count at some point)
        if (
            params["mc_samples"] != cls.parameters["mc_samples"].default
            and params["curvature"] not in ("ggn_mc", "hybrid")
            and "curvature" not in context.swept
        ):
            yield (
                "mc_samples",
                (
                    f"only used with curvature: ggn_mc or hybrid (curvature is "
                    f"{params['curvature']})"
                ),
            )
        if (
            params["minimal_retrain_lr"] is not None
            and params["minimal_retrain_rounds"] == 0
            and "minimal_retrain_rounds" not in context.swept
        ):
            yield "minimal_retrain_lr", "only used with minimal_retrain_rounds > 0"

    def unlearn(self, ctx: UnlearnContext) -> UnlearnResult:
        h, h_prime = aggregate(list(self.ask_clients(ctx).values()))
        scores = target_information_score(h, h_prime, self.negative_target)
        masks = reset_masks(scores, self.gamma)
        return reset_and_retrain(
            ctx, masks, self.reset_to, self.minimal_retrain_rounds, self.minimal_retrain_lr
        )

    def ask_clients(self, ctx: UnlearnContext) -> dict[int, dict[str, Any]]:
        """One round: every client with data runs :func:`client_curvature` on its own
        training data, its forget mask being the part of the request that concerns it.

        The curvature does not depend on γ nor on how entries are reset: the points of a
        sweep (and random_reset's upstream runs) share one pass per seed and curvature
        options (``share``), each row still charged its full cost."""
        fed = ctx.federation
        options = ("tis_reset curvature", self.curvature, self.mc_samples, self.batch_size)

        def work(model: nn.Module, view: ClientView) -> dict[str, Any]:
            return client_curvature(
                model,
                view.train,
                ctx.request.forget_masks.get(view.id),
                self.curvature,
                self.batch_size,
                self.mc_samples,
                seed=derive_seed(ctx.seed, "tis", view.id),
            )

        clients = fed.clients_holding("train")
        return fed.ask(clients, work, ctx.model, share=options)


@fubench.hookimpl
def fubench_unlearners() -> list[type[Unlearner]]:
    return [TISReset]
