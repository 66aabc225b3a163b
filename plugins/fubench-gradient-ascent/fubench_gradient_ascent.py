"""Projected gradient ascent with recovery rounds, a fubench plugin.

After Halimi et al., "Federated Unlearning: How to Efficiently Erase a Client in FL?"
(2022). The client that asks to be forgotten *maximises* its loss on the data to forget,
by projected gradient ascent: every step is followed by a projection onto the L2 ball of
radius δ around a reference model w_ref, the average of the *other* clients' models, so
that the ascent cannot run off to an arbitrary (useless) model. A few FedAvg rounds on
the retained clients then recover the accuracy the ascent cost.

The reference model. With N samples in the last round, n_i of them the requesting
client's, FedAvg's last step gives w^T = (1/N) Σ_j n_j w_j, hence

    w_ref = (N w^T − n_i w_i) / (N − n_i)          (the paper's identity)

where w_i is the requesting client's own last local model, which only that client
knows. When the scenario recorded the round history (``federation.record_history``),
we take w_i from it (its update of the last round plus the global model that round
started from), which is exactly that identity. Without the history we approximate
w_ref by the global model w^T itself.

Choices made here (not fixed by the paper):

* the ascent starts from w_ref, which is already free of the client's last
  contribution;
* δ = ``radius_fraction`` × ||w_ref − w_fresh||, w_fresh a freshly initialised model
  (the paper ties δ to the distance between w_ref and a random model); ``radius``
  sets δ directly;
* the ascent stops early once the client's accuracy on its forget data falls to
  ``stop_accuracy`` — cross-entropy ascent is unbounded, and past that point it only
  damages the model;
* the model is in evaluation mode during the ascent, so a few samples to forget do not
  overwrite BatchNorm statistics learnt from every client;
* several requesting clients each ascend on their own copy; the server averages the
  results, weighted by their forget-set sizes.

Participation is ``"all"``: the requesting client ascends, the retained clients recover.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

import fubench
from fubench import flatten, unflatten

__version__ = "0.1.0"


def parameter_vector(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def project(model: nn.Module, centre: torch.Tensor, radius: float) -> None:
    """Move ``model``'s parameters onto the L2 ball of ``radius`` around ``centre``
    (a flat parameter vector) when they lie outside it; in place."""
    with torch.no_grad():
        offset = parameter_vector(model) - centre
        norm = float(offset.norm())
        if norm <= radius:
            return
        inside = centre + offset * (radius / norm)
        torch.nn.utils.vector_to_parameters(inside, model.parameters())


def reference_state(model: nn.Module, history, requesting: list[int]) -> dict[str, torch.Tensor]:
    """w_ref = (N w^T − Σ_{i requesting} n_i w_i) / (N − n_R) from the last recorded
    round; the global model w^T itself when there is no history (the approximation),
    or when no requesting client took part in the last round."""
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if history is None or len(history) == 0:
        return state
    last = history[len(history) - 1]
    own = [c for c in requesting if c in last.updates]
    total = sum(last.sizes.values())
    removed = sum(last.sizes[c] for c in own)
    if not own or removed >= total:
        return state
    global_now = flatten(state)
    theirs = sum(
        last.sizes[c] * (last.global_state.double() + last.updates[c].double()) for c in own
    )
    return unflatten((total * global_now - theirs) / (total - removed), state)


@torch.no_grad()
def accuracy(model: nn.Module, data: fubench.Split, batch_size: int = 1024) -> float:
    """Share of ``data`` the model classifies right, in batches (a leaving client may
    hold thousands of samples)."""
    right = sum(
        int((model(data.x[i : i + batch_size]).argmax(1) == data.y[i : i + batch_size]).sum())
        for i in range(0, len(data), batch_size)
    )
    return right / len(data)


class ProjectedGradientAscent(fubench.Unlearner):
    """Gradient ascent on the forget data inside an L2 ball around the other clients'
    model, then FedAvg recovery rounds (Halimi et al. 2022)."""

    name = "gradient_ascent"
    description = "projected gradient ascent on the forget data + recovery (Halimi et al.)"
    participation = "all"
    unsupported_kinds = {
        "sensitive": "gradient ascent erases samples, not one input feature of them",
        "bias": "gradient ascent erases the client's samples, not their colour shortcut",
    }
    parameters = {
        "lr": fubench.Param(
            0.01, float, min=0.0, min_exclusive=True, help="step size of the ascent"
        ),
        "epochs": fubench.Param(5, int, min=1, help="most passes over the forget data"),
        "batch_size": fubench.Param(32, int, min=1),
        "radius_fraction": fubench.Param(
            1 / 3, float, min=0.0, min_exclusive=True, help="δ as a share of ||w_ref − w_fresh||"
        ),
        "radius": fubench.Param(
            None,
            float,
            min=0.0,
            min_exclusive=True,
            nullable=True,
            help="δ itself; overrides radius_fraction",
        ),
        "stop_accuracy": fubench.Param(
            0.1, float, min=0.0, max=1.0, help="stop once forget-data accuracy is this low"
        ),
        "recovery_rounds": fubench.Param(
            2, int, min=0, help="FedAvg rounds on the retained clients"
        ),
        "recovery_lr": fubench.Param(
            None, float, min=0.0, min_exclusive=True, nullable=True, help="null = the scenario's lr"
        ),
    }

    def unlearn(self, ctx: fubench.UnlearnContext) -> fubench.UnlearnResult:
        model = ctx.model
        model.load_state_dict(reference_state(model, ctx.history, ctx.federation.requesting))
        centre = parameter_vector(model)
        radius = (
            self.radius
            if self.radius is not None
            else self.radius_fraction * float((centre - parameter_vector(ctx.make_model())).norm())
        )
        answers = ctx.federation.ask(
            ctx.federation.requesting,
            lambda local, view: self.ascend(local, view, centre, radius, ctx.generator),
            model,
        )
        answers = {c: a for c, a in answers.items() if a is not None}
        if not answers:
            raise fubench.NotApplicable("no requesting client holds data to forget")
        self.combine(model, answers)
        if self.recovery_rounds:
            settings = ctx.federation.settings.with_changes(lr=self.recovery_lr)
            ctx.federation.train(model, rounds=self.recovery_rounds, settings=settings)
        return fubench.UnlearnResult(model)

    def ascend(
        self,
        model: nn.Module,
        view: fubench.ClientView,
        centre: torch.Tensor,
        radius: float,
        generator: torch.Generator,
    ) -> dict | None:
        """What the requesting client runs on its own data: projected gradient ascent
        on the cross-entropy of its forget part; it sends back its model."""
        data = view.forget
        if len(data) == 0:
            return None
        model.eval()
        optimiser = torch.optim.SGD(model.parameters(), lr=self.lr)
        for _ in range(self.epochs):
            if accuracy(model, data) <= self.stop_accuracy:
                break
            order = torch.randperm(len(data), generator=generator).to(data.x.device)
            for start in range(0, len(data), self.batch_size):
                index = order[start : start + self.batch_size]
                optimiser.zero_grad(set_to_none=True)
                (-F.cross_entropy(model(data.x[index]), data.y[index])).backward()
                optimiser.step()
                project(model, centre, radius)
        return {
            "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "samples": len(data),
        }

    @staticmethod
    def combine(model: nn.Module, answers: dict[int, dict]) -> None:
        """The requesting clients' models, averaged by forget-set size, into ``model``."""
        total = sum(a["samples"] for a in answers.values())
        state = model.state_dict()
        averaged = {
            k: sum(a["state"][k].double() * a["samples"] for a in answers.values())
            .div(total)
            .to(v.dtype)
            if v.is_floating_point()
            else v
            for k, v in state.items()
        }
        model.load_state_dict(averaged)


@fubench.hookimpl
def fubench_unlearners():
    return [ProjectedGradientAscent]
