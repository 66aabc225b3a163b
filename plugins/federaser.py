"""FedEraser: reconstruct the model from the stored round history with short calibration
training on the retained clients (Liu et al., "FedEraser: Enabling Efficient
Client-Level Data Removal from Federated Learning Models", IWQoS 2021).

During training the server keeps, every Δt-th round t_1 = 0, t_2 = Δt, ..., the
global model M^{t_j} the round started from and every client's update U_k^{t_j}
(local model − M^{t_j}). To forget the leaving clients it rebuilds the model from the
initial one, Ñ^{t_1} = M^{t_1}, one stored round at a time:

1. the retained clients that took part in round t_j train from the current
   calibrated model Ñ^{t_j} on their own data for ⌈r · E⌉ local epochs (r: the
   calibration epoch ratio, E: the scenario's local epochs) and send their update
   Ũ_k^{t_j} (calibration training);
2. each update is calibrated layer by layer: Û_k = ||U_k^{t_j}|| · Ũ_k / ||Ũ_k||
   (the stored update's length, the calibration update's direction);
3. Ñ^{t_{j+1}} = Ñ^{t_j} + Σ_k w_k Û_k with FedAvg's weights w_k ∝ n_k (samples).

At the first stored round Ñ^{t_1} = M^{t_1}, so the stored updates of the retained
clients are exactly what calibration would approximate; FedEraser uses them directly
there ("FedEraser can directly update the global model without calibration of the
remaining clients' parameters at the first reconstruction epoch"). With T training
rounds it runs ⌈T/Δt⌉ − 1 calibration rounds of ⌈r·E⌉ epochs: a share ≈ r/Δt of
retraining's client work.

**Defaults** r = 0.5 and Δt = 2, the paper's setting (the authors' code stores every
round, Δt = 1): about a quarter of retraining's client work when the scenario's local
epochs E are even; with E = 1, ⌈r·E⌉ = 1 whatever r, so r saves nothing and only Δt
does. This is the method itself, not a recovery phase, so it is not cut to
``finetune``'s 5 rounds × 1 epoch. A larger Δt is cheaper but rebuilds the model in
⌈T/Δt⌉ steps of one round's length each, so it ends short of the original's training;
scenario files sweep Δt and the tables show the point chosen on the tuning seeds (the
measurements, and what its calibration costs against retraining: docs/methods.md,
"FedEraser").

**Calibrating per client or after aggregating.** The paper calibrates each client's
update (step 2), which we do by default; the authors' code first averages the old and
the new client models and calibrates the aggregated update once per layer
(``normalise: aggregate``; we average with FedAvg's sample weights in both).

**What it touches.** The stored history (every Δt-th round: the global model and all
clients' updates; reported as ``history_bytes``) and, through the federation, the
retained clients' own data for calibration training (participation ``retained``; the
leaving clients are never asked).

**Which clients leave.** FedEraser removes whole clients (``request.clients``): the
``client`` kind, ``class`` with ``forget: client``, the feature kinds (``sensitive``,
``bias``: every sample of the requesting client carries the feature, so it keeps
nothing) and ``backdoor``, where the malicious client leaves with its clean samples.
A request that keeps part of a requesting client's data (``sample``, ``class`` with
``forget: class``) is not served ("n/a"): the same rule as FedRecovery and
distillation.
"""

from __future__ import annotations

import math

import torch
from fubench_builtins.client_removal import layer_slices, leaving_clients

import fubench
from fubench import (
    ClientView,
    NotApplicable,
    Param,
    UnlearnContext,
    Unlearner,
    UnlearnResult,
    derive_seed,
    flatten,
    log,
    train_local,
    unflatten,
)

PARTIAL = "FedEraser forgets whole clients; this kind keeps part of the requesting client's data"


def calibrate(old: torch.Tensor, new: torch.Tensor, slices: list[slice]) -> torch.Tensor:
    """Per layer: the length of ``old`` (the stored update) in the direction of ``new``
    (the calibration update); a layer the calibration left unchanged gets no step."""
    out = torch.zeros_like(new)
    for part in slices:
        norm_new = new[part].norm()
        if norm_new > 0:
            out[part] = old[part].norm() * new[part] / norm_new
    return out


def weighted_mean(vectors: dict[int, torch.Tensor], sizes: dict[int, int]) -> torch.Tensor:
    total = float(sum(sizes[c] for c in vectors))
    return sum(v * (sizes[c] / total) for c, v in vectors.items())


class FedEraser(Unlearner):
    """Rebuild from the initial model with the stored updates, calibrated by short
    training on the retained clients."""

    name = "federaser"
    description = "history reconstruction with calibration training (Liu et al. 2021)"
    participation = "retained"
    needs_history = True
    reports = ("history_bytes",)
    unsupported_kinds = {"sample": PARTIAL}
    parameters = {
        "interval": Param(
            2,
            int,
            min=1,
            help="calibration interval Δt: use every Δt-th recorded round (paper: 2)",
        ),
        "epoch_ratio": Param(
            0.5,
            float,
            min=0.0,
            max=1.0,
            min_exclusive=True,
            help="calibration epoch ratio r: ⌈r·E⌉ local epochs",
        ),
        "normalise": Param(
            "client",
            choices=("client", "aggregate"),
            help="client: calibrate each update (paper); aggregate: the "
            "averaged update (authors' code)",
        ),
    }

    def unlearn(self, ctx: UnlearnContext) -> UnlearnResult:
        leaving = leaving_clients(ctx, "FedEraser")
        history, federation = ctx.history, ctx.federation
        stored = list(range(0, len(history), self.interval))
        if not stored:
            raise NotApplicable("the round history is empty")
        like = ctx.model.state_dict()
        slices = layer_slices(like)
        epochs = math.ceil(self.epoch_ratio * federation.settings.epochs)
        settings = federation.settings.with_changes(epochs=epochs)
        base = int(torch.randint(0, 2**62, (1,), generator=ctx.generator))
        w = history[stored[0]].global_state.to(ctx.device).double()  # the initial model
        calibrated_rounds = 0
        for j, t in enumerate(stored):
            record = history[t]
            old = {
                c: u.to(ctx.device).double() for c, u in record.updates.items() if c not in leaving
            }
            if not old:
                continue  # only leaving clients trained in this round: nothing to keep
            if j == 0:
                new = old  # Ñ^{t_1} = M^{t_1}: the stored updates are exact here
            else:
                ctx.model.load_state_dict(unflatten(w, like))

                def work(model, client: ClientView, t=t):  # on the client, its own data
                    gen = torch.Generator().manual_seed(derive_seed(base, t, client.id))
                    train_local(model, client.retained, settings, gen)
                    return model.state_dict()

                answers = federation.ask(sorted(old), work, ctx.model)
                new = {c: flatten(s).to(ctx.device) - w for c, s in answers.items()}
                calibrated_rounds += 1
            w = w + self.step(old, new, record.sizes, slices, exact=j == 0)
        ctx.model.load_state_dict(unflatten(w, like))
        used = sum(history.round_bytes(t) for t in stored)
        log(
            f"  federaser: {len(stored)} stored rounds (Δt = {self.interval}), "
            f"{calibrated_rounds} calibration rounds of {epochs} local epochs"
        )
        return UnlearnResult(
            ctx.model, artifacts={"stored_rounds": stored}, metrics={"history_bytes": float(used)}
        )

    def step(
        self,
        old: dict[int, torch.Tensor],
        new: dict[int, torch.Tensor],
        sizes: dict[int, int],
        slices: list[slice],
        exact: bool,
    ) -> torch.Tensor:
        """Σ_k w_k Û_k: the calibrated step of one stored round."""
        if exact:
            return weighted_mean(old, sizes)
        if self.normalise == "aggregate":
            return calibrate(weighted_mean(old, sizes), weighted_mean(new, sizes), slices)
        return weighted_mean({c: calibrate(old[c], new[c], slices) for c in new}, sizes)


@fubench.hookimpl
def fubench_unlearners() -> list[type[Unlearner]]:
    return [FedEraser]
