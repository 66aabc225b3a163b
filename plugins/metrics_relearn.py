"""Relearning attack: ``relearn`` and ``relearn_ratio``.

Was the knowledge removed, or only suppressed? A model that hides what it was asked to
forget gets it back after a little fine-tuning on the forgotten data; a model that
never learned it (the gold standard, θ^r) has to learn it from scratch ("Jogging the
memory of unlearned LLMs via benign relearning", Hu et al. 2024; "Eight methods to
evaluate robust unlearning in LLMs", Lynch et al. 2024).

The attack, the same for every row of a seed: a copy of the row's model takes
``steps`` full-batch SGD steps (step size ``lr``) on ``samples`` examples of the
forget set D_T mixed with ``benign`` examples of what the clients keep (a seeded choice
from the setup's ``attack_seed``). The benign half keeps the attack from teaching the
label alone: D_T of a backdoor or a class is one label, and fine-tuning on it only
would make every model predict that label, whatever it remembered. The row's model and
the evaluation sets are not changed.

Then the kind's forgotten behaviour (``ScenarioKind.forgotten_behaviour``: ASR for a
backdoor, accuracy on D_T for class / client / sample, bias_gap for bias, feature
sensitivity for sensitive; accuracy on D_T where a kind declares none) is measured on
the attacked copy, with D_T's attacked examples taken out of the forget set, so what is
measured is never what was trained on.

* ``relearn``: that behaviour after the attack, in the behaviour metric's own unit (a
  share 0–1 for ASR and accuracies, S(f) for sensitivity); best = the gold standard's;
* ``relearn_ratio`` = relearn(θ) / relearn(θ^r): 1 = relearns no faster than a model
  that never saw the data; above 1 = the knowledge was hidden, not removed; below 1 =
  relearns slower than the gold standard (e.g. a damaged model).

Reference (the defaults and why, how to read them): docs/reference/relearning.md.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import nn
from torch.nn import functional as F

import fubench
from fubench import Evaluation, Metric, Param, RowInfo, ScenarioSetup, Split

#: the behaviour a kind that declares none is measured by: accuracy on held-out D_T
DEFAULT_BEHAVIOUR = "target_acc"
#: at most this share of D_T is attacked; the rest is what the behaviour is measured on
MAX_ATTACKED_SHARE = 0.5


def draw(parts: list[Split], n: int, gen: torch.Generator) -> Split:
    """``n`` examples (at most all) drawn without replacement from the concatenation of
    ``parts``, without building it (the clients' data may be large)."""
    sizes = torch.tensor([len(p) for p in parts])
    total = int(sizes.sum())
    picked = torch.randperm(total, generator=gen)[: min(n, total)].sort().values
    ends = sizes.cumsum(0)
    owner = torch.bucketize(picked, ends, right=True)
    chosen = []
    for part in owner.unique().tolist():
        start = int(ends[part] - sizes[part])
        local = (picked[owner == part] - start).to(parts[part].y.device)
        chosen.append(parts[part].subset(local))
    return Split.concat(chosen)


def attack_split(forget: Split, samples: int, gen: torch.Generator) -> torch.Tensor:
    """Bool mask over D_T of the attacked examples: ``samples`` of them, at most half of
    D_T, so that some are left to measure on."""
    k = min(samples, int(len(forget) * MAX_ATTACKED_SHARE))
    mask = torch.zeros(len(forget), dtype=torch.bool)
    mask[torch.randperm(len(forget), generator=gen)[:k]] = True
    return mask.to(forget.y.device)


def fine_tune(model: nn.Module, data: Split, steps: int, lr: float) -> nn.Module:
    """A copy of ``model`` after ``steps`` full-batch steps of plain SGD on ``data``;
    ``model`` itself is not touched."""
    attacked = copy.deepcopy(model)
    attacked.train()
    params = list(attacked.parameters())
    for p in params:
        p.requires_grad_(True)
    optimiser = torch.optim.SGD(params, lr=lr)
    with torch.enable_grad():  # also when a caller evaluates under no_grad
        for _ in range(steps):
            optimiser.zero_grad(set_to_none=True)
            F.cross_entropy(attacked(data.x), data.y).backward()
            optimiser.step()
    attacked.eval()
    return attacked


class Relearn(Metric):
    """The forgotten behaviour after a relearning attack: a copy of the row's model
    fine-tuned for ``steps`` full-batch SGD steps on ``samples`` examples of D_T (at most
    half of it) mixed with ``benign`` retained examples; then the kind's
    ``forgotten_behaviour`` metric (default: accuracy on D_T) measured on the copy, with
    the attacked examples left out of D_T. Every row gets the same attack (same data,
    steps and order, from the setup's attack seed). In the behaviour metric's unit (a
    share 0–1 where that metric shows %). Best: the gold standard's own value."""

    name = "relearn"
    higher_is_better = False
    ideal = fubench.REFERENCE  # relearns as much as a model that never learned it
    original_side = "above"  # a model that still holds the knowledge snaps back
    role = "forgetting"
    parameters = {
        "samples": Param(32, int, min=1, help="examples of D_T the attack trains on"),
        "benign": Param(32, int, min=0, help="retained examples mixed in"),
        "steps": Param(5, int, min=1, help="full-batch SGD steps"),
        "lr": Param(0.02, float, min=0.0, min_exclusive=True, help="SGD step size"),
    }

    def behaviour(self, setup: ScenarioSetup) -> str:
        name = setup.forgotten_behaviour or DEFAULT_BEHAVIOUR
        if name in RELEARN_METRICS:
            raise ValueError(
                f"forgotten_behaviour '{name}' is a relearning metric itself; name the "
                f"metric of the behaviour the request removes"
            )
        return name

    def attack_data(self, setup: ScenarioSetup) -> tuple[Split | None, ScenarioSetup]:
        """(what the attack trains on, the setup its result is measured on: D_T
        without the attacked examples); None to train on when D_T has fewer than two
        examples."""
        gen = torch.Generator().manual_seed(
            fubench.derive_seed(int(setup.attack_seed or 0), "relearn")
        )
        forget = setup.eval_sets["forget"]
        attacked = attack_split(forget, self.samples, gen)
        if not bool(attacked.any()):
            return None, setup  # D_T too small to attack part of it and measure the rest
        parts = [forget.subset(attacked)]
        kept = [s for s in setup.retained if len(s)]
        if self.benign and kept:
            parts.append(draw(kept, self.benign, gen))
        measured = replace(setup, eval_sets={**setup.eval_sets, "forget": forget.subset(~attacked)})
        return Split.concat(parts), measured

    def compute(self, ev: Evaluation) -> float | None:
        behaviour = self.behaviour(ev.setup)
        data, measured = self.attack_data(ev.setup)
        if data is None:
            return None
        model = fine_tune(ev.model, data, self.steps, self.lr)
        after = Evaluation(f"{ev.row} relearned", model, measured, ev.metrics, RowInfo())
        return after.value(behaviour)


class RelearnRatio(Metric):
    """relearn(θ) / relearn(θ^r): how much of the forgotten behaviour the same relearning
    attack brings back, against the gold standard, which never learned it. 1 = no
    faster than retraining; above 1 = the knowledge was hidden, not removed; below 1 =
    slower than the gold standard (a damaged model does not win: ranks go by the
    distance to 1). Undefined when the attacked gold standard shows none of the
    behaviour (relearn(θ^r) ≤ 0.001)."""

    name = "relearn_ratio"
    higher_is_better = False
    ideal = 1.0
    role = "forgetting"
    normalises = "relearn"
    normalisation = "ratio"

    def compute(self, ev: Evaluation) -> float | None:
        reference = ev.value("relearn", of=fubench.REFERENCE)
        if reference is None or reference <= 0:
            return None
        return fubench.ratio(ev.value("relearn"), reference)


RELEARN_METRICS = (Relearn.name, RelearnRatio.name)


@fubench.hookimpl
def fubench_metrics() -> list[type[Metric]]:
    return [Relearn, RelearnRatio]
