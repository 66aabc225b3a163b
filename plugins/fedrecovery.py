"""FedRecovery: differentially private unlearning from the round history (Zhang et al.,
"FedRecovery: Differentially Private Machine Unlearning for Federated Learning
Frameworks", IEEE TIFS 2023; docs/methods.md, "FedRecovery"). Also the metric
``history_bytes``.

No client takes part: the server unlearns from what it kept during training — the
global model w_i each round i started from and every client's update — and pays for
it in storage (reported as ``history_bytes``).

With n clients in round i, u the leaving client and η the learning rate:

    residual   δ_i = (η/n) [ (1/(n−1)) Σ_{j≠u} g_j(w_i) − g_u(w_i) ]
    weight     p_i = ||∇F(w_i)||² / Σ_j ||∇F(w_j)||²
    removal    w̄   = w_T − Σ_i p_i δ_i
    noise      w_u = w̄ + N(0, σ² I) on the parameters (never on BatchNorm buffers)
    privacy    σ = d / (√2 (√(log(1/β) + ε) − √(log(1/β))))

**Gradients from stored updates.** The history stores each client's update
Δ_j = (local model − w_i), not its gradient. For one local SGD step without momentum
Δ_j = −η g_j(w_i) exactly, so we read g_j(w_i) = −Δ_j / η. With several local steps
(or momentum) −Δ_j / η is the client's accumulated gradient along its local path: an
approximation of g_j(w_i), the usual one in history-based unlearning. In these terms
η cancels: δ_i = (1/n) [Δ_u − mean_{j≠u} Δ_j], exactly the part of round i's FedAvg
step that u contributed (for equal client weights). Likewise ∇F(w_i) = −ΔW_i / η with
ΔW_i round i's aggregated (sample-weighted) update, and η cancels from p_i.
Several leaving clients U (m of them in the round): δ_i = (1/n)[Σ_U Δ_u − m·mean_{j∉U} Δ_j];
a round in which no leaving client took part has δ_i = 0.

**Noise: a direct σ by default, the literal calibration on request.** The privacy
calibration gives σ from (ε, β) and a bound d on the sensitivity; the public
re-implementations bound it by d = ||w_0 − w_T|| + √(2 T η |L_0 − L_T|) (T rounds).
On the small CNNs here that d is about 12, so ε = 1 gives σ ≈ 60 per weight while the
weights' rms is ~0.02: the model is destroyed (chance accuracy on every scenario). The
default is therefore ``noise: sigma`` with a direct ``sigma`` (0.02, as a public
re-implementation uses), and the row reports the ε that this σ and the bound d imply
(``dp_epsilon``, inverting the formula above: ε = (√log(1/β) + d/(√2 σ))² − log(1/β)).
``noise: dp_calibrated`` is the literal calibration from ``epsilon`` and ``beta``. The
server holds no data, so it cannot evaluate the losses L_0, L_T without asking clients,
which FedRecovery never does: |L_0 − L_T| is bounded by log K (K classes; L_T ≥ 0 and a
standard initialisation starts near the uniform prediction, whose cross-entropy is
log K). ``loss_gap`` passes a measured value, ``d`` the bound itself.

**Which clients leave.** FedRecovery forgets whole clients: ``request.clients``, by the
rule every history-based client remover here follows (FedEraser and distillation too,
``client_removal.leaving_clients``). It serves a request whose clients leave whole (the
client kind; the feature kinds, where the requesting client keeps nothing) and the
backdoor kind, where the malicious client leaves with its clean data (the Ferrari paper
applied it this way). Where the requesting client keeps part of its data (the sample
kind, the class kind with ``forget: class``) removing it whole would also forget what
it keeps, so the row is "n/a"; so is a request covering every client.

Defaults ε = 1, β = 1e-5 (for ``dp_calibrated``, and β for the reported ε) are the
conventional (ε, δ)-DP operating point; the paper leaves them to the user.
docs/methods.md ("FedRecovery") has the measured effect of σ and of the residual
removal alone.
"""

from __future__ import annotations

import math

import torch
from fubench_builtins.client_removal import leaving_clients
from torch import nn

import fubench
from fubench import (
    Evaluation,
    Metric,
    NotApplicable,
    Param,
    RoundRecord,
    UnlearnContext,
    Unlearner,
    UnlearnResult,
    flatten,
    log,
    unflatten,
)


def round_residual(record: RoundRecord, leaving: set[int]) -> torch.Tensor:
    """δ_i: what the leaving clients contributed to round i's (equal-weight) step."""
    updates = {c: u.double() for c, u in record.updates.items()}
    gone = [c for c in updates if c in leaving]
    stay = [c for c in updates if c not in leaving]
    n = len(updates)
    residual = (
        sum(updates[c] for c in gone)
        if gone
        else torch.zeros_like(record.global_state, dtype=torch.float64)
    )
    if gone and stay:
        residual = residual - len(gone) * sum(updates[c] for c in stay) / len(stay)
    return residual / n


def global_step_norm2(record: RoundRecord) -> float:
    """||ΔW_i||², the squared norm of round i's aggregated update (∝ ||∇F(w_i)||²)."""
    total = sum(record.sizes[c] for c in record.updates)
    step = sum(u.double() * (record.sizes[c] / total) for c, u in record.updates.items())
    return float(step.pow(2).sum())


def weighted_residual(history, leaving: set[int]) -> tuple[torch.Tensor, list[float]]:
    """Σ_i p_i δ_i in one pass over the (on-disk) history, and the weights p_i."""
    acc, norms = None, []
    for record in history:
        norm2 = global_step_norm2(record)
        term = round_residual(record, leaving) * norm2
        acc = term if acc is None else acc + term
        norms.append(norm2)
    if acc is None:
        raise NotApplicable("the round history is empty")
    total = sum(norms)
    if total == 0:
        return torch.zeros_like(acc), [0.0] * len(norms)
    return acc / total, [v / total for v in norms]


def sensitivity_bound(
    w0: torch.Tensor, wT: torch.Tensor, rounds: int, lr: float, loss_gap: float
) -> float:
    """d = ||w_0 − w_T|| + √(2 T η |L_0 − L_T|)."""
    return float((w0 - wT).norm()) + math.sqrt(2 * rounds * lr * abs(loss_gap))


def noise_std(d: float, epsilon: float, beta: float) -> float:
    """σ = d / (√2 (√(log(1/β) + ε) − √(log(1/β))))."""
    log_term = math.log(1 / beta)
    return d / (math.sqrt(2) * (math.sqrt(log_term + epsilon) - math.sqrt(log_term)))


def implied_epsilon(sigma: float, d: float, beta: float) -> float | None:
    """The ε for which :func:`noise_std` gives ``sigma``: (√log(1/β) + d/(√2 σ))² − log(1/β);
    None (unbounded) for σ = 0 with d > 0."""
    log_term = math.log(1 / beta)
    if d == 0:
        return 0.0
    if sigma <= 0:
        return None
    return (math.sqrt(log_term) + d / (math.sqrt(2) * sigma)) ** 2 - log_term


def shown(value: float | None) -> str:
    """A number as the log line shows it: four significant digits (``None``: "none")."""
    return "none" if value is None else f"{value:.4g}"


def parameter_entries(model: nn.Module) -> torch.Tensor:
    """A bool vector over :func:`fubench.flatten`'s entries: True for parameters, False
    for buffers (BatchNorm running statistics must not get noise: a negative running
    variance breaks the model)."""
    names = {name for name, _ in model.named_parameters()}
    return torch.cat(
        [
            torch.full((v.numel(),), k in names, dtype=torch.bool)
            for k, v in model.state_dict().items()
            if v.is_floating_point()
        ]
    )


def n_classes(model: nn.Module) -> int:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise NotApplicable("cannot tell the number of classes: no nn.Linear output layer")
    return linears[-1].out_features


class FedRecovery(Unlearner):
    """Subtract the leaving clients' weighted residuals, then add Gaussian noise."""

    name = "fedrecovery"
    description = "history-based residual removal + Gaussian noise (no client takes part)"
    participation = "none"
    needs_history = True
    reports = ("history_bytes", "dp_epsilon")
    parameters = {
        "noise": Param(
            "sigma",
            str,
            choices=("sigma", "dp_calibrated"),
            help="sigma: add N(0, sigma²) and report the ε it implies; "
            "dp_calibrated: σ from epsilon and beta (destroys small models)",
        ),
        "sigma": Param(
            0.02,
            float,
            min=0.0,
            help="noise std per parameter with noise: sigma (a public "
            "re-implementation uses 0.02-0.025; 0 = no noise)",
        ),
        "epsilon": Param(
            1.0, float, min=0.0, min_exclusive=True, help="privacy ε of noise: dp_calibrated"
        ),
        "beta": Param(
            1e-5,
            float,
            min=0.0,
            max=1.0,
            min_exclusive=True,
            help="privacy failure probability β (the δ of (ε, δ)-DP)",
        ),
        "d": Param(
            None,
            float,
            min=0.0,
            nullable=True,
            help="sensitivity bound; null = ||w0−wT|| + √(2Tη|L0−LT|)",
        ),
        "loss_gap": Param(
            None, float, min=0.0, nullable=True, help="|L0−LT| in the bound; null = log(classes)"
        ),
    }

    @classmethod
    def caveat(cls, params):
        # a direct σ carries no privacy guarantee worth the name: say so on the row
        return "σ not DP-calibrated" if params.get("noise", "sigma") == "sigma" else None

    @classmethod
    def validate_config(cls, params, context):
        # a setting the chosen noise ignores is a mistake, not a no-op (unless the noise
        # is swept)
        unused = {"sigma": "epsilon", "dp_calibrated": "sigma"}[params["noise"]]
        if params[unused] != cls.parameters[unused].default and "noise" not in context.swept:
            other = "dp_calibrated" if params["noise"] == "sigma" else "sigma"
            yield unused, f"only used with noise: {other} (noise is {params['noise']})"

    def unlearn(self, ctx: UnlearnContext) -> UnlearnResult:
        leaving = leaving_clients(ctx, "FedRecovery")
        state = ctx.model.state_dict()
        w_T = flatten(state)
        removal, weights = weighted_residual(ctx.history, leaving)
        removal = removal.to(w_T.device)
        w_bar = w_T - removal  # w̄ = w_T − Σ p_i δ_i
        try:
            d = self.bound(ctx, w_T)
        except NotApplicable:
            if self.noise == "dp_calibrated":
                raise
            d = None  # the bound needs the class count; without it no ε is reported
        sigma = self.sigma if self.noise == "sigma" else noise_std(d, self.epsilon, self.beta)
        noise = torch.randn(w_bar.shape, generator=ctx.generator, dtype=torch.float64)
        noise = noise * parameter_entries(ctx.model).to(noise.dtype)
        ctx.model.load_state_dict(unflatten((w_bar + sigma * noise.to(w_bar.device)), state))
        epsilon = None if d is None else implied_epsilon(sigma, d, self.beta)
        log(
            f"  fedrecovery: removed ||Σ p_i δ_i|| = {float(removal.norm()):.4g}, "
            f"noise σ = {sigma:.4g} per parameter, sensitivity bound d = {shown(d)}, "
            f"implied ε = {shown(epsilon)}"
        )
        return UnlearnResult(
            ctx.model,
            artifacts={"sigma": sigma, "d": d, "weights": weights},
            metrics={"history_bytes": float(ctx.history.size_bytes), "dp_epsilon": epsilon},
        )

    def bound(self, ctx: UnlearnContext, w_T: torch.Tensor) -> float:
        """The sensitivity bound d: given, or the public re-implementations' formula."""
        if self.d is not None:
            return self.d
        gap = self.loss_gap if self.loss_gap is not None else math.log(n_classes(ctx.model))
        w_0 = flatten(ctx.initial_state).to(w_T.device)
        return sensitivity_bound(w_0, w_T, len(ctx.history), ctx.federation.settings.lr, gap)


class HistoryBytes(Metric):
    """Bytes of round history on disk a method relied on (its storage cost). Reported by
    a history-based method itself; 0 for a method (or retrain) that reported none, since
    it needs no history kept; undefined ("—") for the original model, which is no
    unlearning method."""

    name = "history_bytes"
    higher_is_better = False
    role = "cost"

    def compute(self, ev: Evaluation) -> float | None:
        reported = ev.info.reported
        if reported is None:  # the original row: trained, not unlearned
            return None
        return float(reported.get("history_bytes", 0.0))


class DPEpsilon(Metric):
    """The (ε, β)-differential-privacy ε that a method's noise implies (reported by the
    method; FedRecovery: from its σ and sensitivity bound d). Lower is more private;
    "—" for rows without such a guarantee. A description, not ranked: a huge ε means no
    meaningful guarantee."""

    name = "dp_epsilon"
    role = "info"

    def compute(self, ev: Evaluation) -> float | None:
        return (ev.info.reported or {}).get("dp_epsilon")


@fubench.hookimpl
def fubench_unlearners() -> list[type[Unlearner]]:
    return [FedRecovery]


@fubench.hookimpl
def fubench_metrics() -> list[type[Metric]]:
    return [HistoryBytes, DPEpsilon]
