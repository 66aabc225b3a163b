"""Knowledge-distillation unlearning (Wu et al., "Federated Unlearning with Knowledge
Distillation", 2022): subtract the leaving client's accumulated updates from the final
global model, then restore utility on the server by distilling the original model into
the result, on unlabeled data the server holds. No client takes part.

1. **Removal.** FedAvg built the model as M_T = M_0 + Σ_t Σ_{k∈S_t} p_k^t U_k^t, with
   U_k^t client k's update in round t and p_k^t = n_k / Σ_{j∈S_t} n_j its weight. The
   method subtracts the leaving clients' terms over every round of the stored history:
   M' = M_T − Σ_t Σ_{u∈U∩S_t} p_u^t U_u^t. Later rounds started from models the
   leaving client had shaped, so M' is a *skewed* model, not the model trained without
   it; its accuracy typically drops.
2. **Distillation.** The original model M_T is the teacher, M' the student: for
   ``epochs`` passes over the server's unlabeled inputs x the student minimises
   T² · KL(softmax(M_T(x)/T) || softmax(M'(x)/T)) with SGD (temperature T, step
   ``lr``; the scenario's momentum and batch size). The teacher still
   carries the leaving client's knowledge, but only its behaviour on the server's
   inputs is transferred; what the leaving client alone taught (a trigger absent from
   clean inputs, its own samples' idiosyncrasies) is not asked of the teacher.

Only trainable parameters are subtracted; buffers such as BatchNorm's running
statistics are left to be re-estimated during distillation (subtracting them can make
a variance negative).

**What it touches.** The stored round history (every round's updates; reported as
``history_bytes``), the original model, and the server's unlabeled inputs
``ctx.server_data`` — the scenario's ``dataset.server_fraction`` reserve, held out
before partitioning (or from the test split, ``server_from: test``), which no client
holds and no metric evaluates on. It reads no client data (participation ``none``).
Without server data it is "n/a".

**Server data from a shifted distribution** (``server_data: shifted``). The reserve
comes from the clients' own distribution, which is the best case for distillation; a
real server rarely holds such data. With ``shifted`` the method distils on
``ctx.server_data_shifted`` instead: as many inputs of another data set (the scenario's
``dataset.server_shifted``, e.g. Fashion-MNIST images for an MNIST scenario). The
parameter is a variant (``variants``): a scenario that sweeps it reports both rows.

**Defaults** (ours; the paper leaves them open): T = 2, 10 passes at step 0.005. The
budget is of ``finetune``'s order: 10 passes over 300 server images (backdoor_mnist)
are 3,000 sample gradients, over 1,000 (the Fashion-MNIST scenarios) 10,000, against
finetune's 5 rounds × 1 epoch over the retained data (17,000 and 6,000). The scenario's
step (0.05 with momentum 0.9) diverges on the T²-scaled loss; how 0.005 was chosen, and
on which seed: docs/methods.md, "Knowledge distillation".

**Which clients leave.** Whole clients, as FedEraser: the ``client`` kind, ``class``
with ``forget: client``, the feature kinds (the requesting client keeps nothing there)
and ``backdoor`` (the malicious client leaves with its clean samples); requests that
keep part of a requesting client's data (``sample``, ``class`` with ``forget: class``)
are "n/a".
"""

from __future__ import annotations

import copy

import torch
from fubench_builtins.client_removal import leaving_clients, parameter_mask
from torch.nn import functional as F

import fubench
from fubench import (
    NotApplicable,
    Param,
    UnlearnContext,
    Unlearner,
    UnlearnResult,
    flatten,
    log,
    unflatten,
)

PARTIAL = "it removes whole clients; this kind keeps part of the requesting client's data"


def accumulated_updates(history, leaving: set[int], device: torch.device) -> torch.Tensor:
    """Σ_t Σ_{u∈leaving∩S_t} p_u^t U_u^t over the (on-disk) history."""
    total = None
    for record in history:
        weight = float(sum(record.sizes.values()))
        for c in leaving & set(record.updates):
            term = record.updates[c].to(device).double() * (record.sizes[c] / weight)
            total = term if total is None else total + term
    if total is None:
        raise NotApplicable("the leaving clients took part in no recorded round")
    return total


def distil(
    student,
    teacher,
    inputs: torch.Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    temperature: float,
    generator: torch.Generator,
) -> None:
    """Train ``student`` to match ``teacher``'s softened outputs on ``inputs``."""
    optimiser = torch.optim.SGD(student.parameters(), lr=lr, momentum=momentum)
    teacher.eval()
    for _ in range(epochs):
        student.train()
        order = torch.randperm(len(inputs), generator=generator).to(inputs.device)
        for start in range(0, len(inputs), batch_size):
            x = inputs[order[start : start + batch_size]]
            with torch.no_grad():
                target = F.softmax(teacher(x) / temperature, dim=1)
            log_p = F.log_softmax(student(x) / temperature, dim=1)
            loss = F.kl_div(log_p, target, reduction="batchmean") * temperature**2
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()


class Distillation(Unlearner):
    """Subtract the leaving client's accumulated updates, then distil the original model
    into the result on the server's unlabeled data."""

    name = "distillation"
    description = "history subtraction + server-side distillation (Wu et al. 2022)"
    participation = "none"
    needs_history = True
    reports = ("history_bytes",)
    unsupported_kinds = {"sample": PARTIAL}
    variants = ("server_data",)
    parameters = {
        "server_data": Param(
            "reserve",
            choices=("reserve", "shifted"),
            help="reserve: the server's share of the scenario's data; shifted: its inputs "
            "of another data set (dataset.server_shifted)",
        ),
        "epochs": Param(
            10, int, min=0, help="distillation passes over the server's data (0 = subtraction only)"
        ),
        "temperature": Param(
            2.0,
            float,
            min=0.0,
            min_exclusive=True,
            help="softmax temperature T of teacher and student",
        ),
        "lr": Param(
            0.005,
            float,
            min=0.0,
            min_exclusive=True,
            nullable=True,
            help="SGD step of the distillation; null = the scenario's",
        ),
        "batch_size": Param(None, int, min=1, nullable=True, help="null = the scenario's"),
    }

    @classmethod
    def validate_config(cls, params, context):
        # without distillation passes, its settings do nothing: a mistake, not a no-op
        if params["epochs"] == 0 and "epochs" not in context.swept:
            for key in ("server_data", "temperature", "lr", "batch_size"):
                if params[key] != cls.parameters[key].default:
                    yield key, "only used with epochs > 0 (epochs: 0 is subtraction only)"

    @classmethod
    def caveat(cls, params):
        if params.get("server_data") == "shifted":
            return "server data from another data set"
        return None

    def unlearn(self, ctx: UnlearnContext) -> UnlearnResult:
        leaving = leaving_clients(ctx, "distillation")
        server = self.server_inputs(ctx)
        teacher = copy.deepcopy(ctx.model)
        state = ctx.model.state_dict()
        removal = accumulated_updates(ctx.history, leaving, ctx.device)
        removal = removal * parameter_mask(ctx.model).to(ctx.device)
        ctx.model.load_state_dict(unflatten(flatten(state).to(ctx.device) - removal, state))
        settings = ctx.federation.settings
        if self.epochs:
            distil(
                ctx.model,
                teacher,
                server.to(ctx.device),
                self.epochs,
                self.batch_size or settings.batch_size,
                self.lr or settings.lr,
                settings.momentum,
                self.temperature,
                ctx.generator,
            )
        log(
            f"  distillation: subtracted ||Σ p U|| = {float(removal.norm()):.4g} of clients "
            f"{sorted(leaving)}, distilled {self.epochs} epochs on "
            f"{0 if server is None else len(server)} server samples ({self.server_data})"
        )
        return UnlearnResult(ctx.model, metrics={"history_bytes": float(ctx.history.size_bytes)})

    def server_inputs(self, ctx: UnlearnContext):
        """The server's inputs this variant distils on (None: it holds none)."""
        shifted = self.server_data == "shifted"
        server = ctx.server_data_shifted if shifted else ctx.server_data
        if self.epochs and (server is None or len(server) == 0):
            if shifted:
                raise NotApplicable(
                    "the server holds no data of another distribution; give the scenario "
                    "some with dataset.server_shifted"
                )
            raise NotApplicable(
                "the server holds no data to distil on; give the scenario "
                "some with dataset.server_fraction"
            )
        return server


@fubench.hookimpl
def fubench_unlearners() -> list[type[Unlearner]]:
    return [Distillation]
