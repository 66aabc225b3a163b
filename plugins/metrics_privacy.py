"""Privacy metrics: membership inference against the forget set (``mia_acc``) and its
normalised form (``nfs_mia``).

The attack is ART's ``MembershipInferenceBlackBox`` with a logistic-regression attack
model. What it sees, per sample: the model's loss on that sample, −log softmax(f(x))_y
for the true label y (the signal of Yeom et al., 2018: a model fits its training samples
better than unseen ones); nothing else. On one scalar, logistic regression is a learnt
threshold on the loss. We feed the loss rather than the whole softmax vector because
the attack model is fitted on a few hundred samples, too few for a model of the whole
vector (the measurement: docs/methods.md, "Metrics").

Members and non-members, balanced and label-matched:

* members: the forget set D_T (``eval_sets["forget"]``), samples the original model
  trained on;
* non-members: test samples (``eval_sets["test"]``) with the same labels, one for each
  member (members of a label the test set holds too few of are dropped), so the label
  alone tells nothing — this matters when D_T is one class.

Each side is split in half per label: the attack model is fitted on one half of the
members against one half of the non-members and scored on the other two halves, never
on a sample it was fitted on. ``mia_acc`` is the attack's accuracy on that held-out,
balanced set: 50% is chance. For the retrain model D_T is unseen data, so it should
score ~50%; an original that memorised D_T scores above.

Reference (the algorithm or formula, and the papers): docs/methods.md, "Metrics".
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import fubench
from fubench import Evaluation, Metric, Split, ratio

#: at most this many members (and as many non-members) enter the attack, for speed
MAX_MEMBERS = 2000
#: fewer held-out pairs than this make the accuracy too noisy to report
MIN_PAIRS = 10
#: nfs_mia is undefined when original and retrain MIA differ by less than this: the
#: attack's own sampling noise on a few hundred pairs is about a percentage point
MIA_UNDEFINED_BELOW = 0.01


@torch.no_grad()
def logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Raw outputs of ``model`` on ``x`` in evaluation mode, in batches."""
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def probabilities(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Softmax outputs of ``model`` on ``x``."""
    return F.softmax(logits(model, x), dim=1).double().cpu().numpy()


def sample_losses(model: nn.Module, data: Split) -> np.ndarray:
    """Per-sample cross-entropy of ``model`` on ``data``, shape (N, 1)."""
    loss = F.cross_entropy(logits(model, data.x), data.y, reduction="none")
    return loss.double().cpu().numpy().reshape(-1, 1)


def mia_pairs(
    members: Split, pool: Split, seed: int, max_members: int = MAX_MEMBERS
) -> dict[str, torch.Tensor]:
    """Indices of label-matched members / non-members, each split in a fitting half and a
    held-out half: keys ``fit_in``, ``fit_out`` (into members, pool) and ``eval_in``,
    ``eval_out``. Deterministic for ``seed``."""
    g = torch.Generator().manual_seed(seed)
    y_in, y_out = members.y.cpu(), pool.y.cpu()
    parts: dict[str, list[torch.Tensor]] = {
        k: [] for k in ("fit_in", "fit_out", "eval_in", "eval_out")
    }
    share = min(1.0, max_members / max(1, len(y_in)))
    for label in torch.unique(y_in).tolist():
        idx_in = torch.nonzero(y_in == label).flatten()
        idx_out = torch.nonzero(y_out == label).flatten()
        n = min(len(idx_out), max(1, round(share * len(idx_in))))
        idx_in = idx_in[torch.randperm(len(idx_in), generator=g)[:n]]
        idx_out = idx_out[torch.randperm(len(idx_out), generator=g)[:n]]
        half = n // 2
        parts["fit_in"].append(idx_in[:half])
        parts["eval_in"].append(idx_in[half : 2 * half])
        parts["fit_out"].append(idx_out[:half])
        parts["eval_out"].append(idx_out[half : 2 * half])
    empty = torch.zeros(0, dtype=torch.long)
    return {k: torch.cat(v) if v else empty for k, v in parts.items()}


def membership_attack_accuracy(
    model: nn.Module, members: Split, pool: Split, seed: int
) -> float | None:
    """Accuracy of ART's black-box membership attack on held-out balanced pairs (see the
    module docstring); None when there are too few pairs."""
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import BlackBoxClassifier

    pairs = mia_pairs(members, pool, seed)
    if len(pairs["eval_in"]) < MIN_PAIRS or len(pairs["fit_in"]) < MIN_PAIRS:
        return None
    loss_in, loss_out = sample_losses(model, members), sample_losses(model, pool)
    # ART wants an estimator; the attack gets the losses through `pred`, so this one is
    # never queried
    estimator = BlackBoxClassifier(lambda x: np.zeros((len(x), 1)), input_shape=(1,), nb_classes=2)
    attack = MembershipInferenceBlackBox(estimator, input_type="prediction", attack_model_type="lr")
    fit_in, fit_out = pairs["fit_in"].numpy(), pairs["fit_out"].numpy()
    attack.fit(pred=loss_in[fit_in], test_pred=loss_out[fit_out])
    eval_in, eval_out = pairs["eval_in"].numpy(), pairs["eval_out"].numpy()
    said_in = attack.infer(None, None, pred=loss_in[eval_in]).ravel()
    said_out = attack.infer(None, None, pred=loss_out[eval_out]).ravel()
    correct = (said_in == 1).sum() + (said_out == 0).sum()
    return float(correct / (len(said_in) + len(said_out)))


class MembershipInferenceAccuracy(Metric):
    """Membership-inference accuracy, forget set vs label-matched test samples
    (balanced; attack fitted and scored on disjoint halves). 0.5 = chance.
    See :mod:`fubench_builtins.metrics_privacy` for exactly what the attack sees."""

    name = "mia_acc"
    higher_is_better = False
    ideal = fubench.REFERENCE  # read against the gold standard: ~50% only if it is
    original_side = "above"  # the original still carries it: the metric reads higher
    role = "forgetting"
    percent = True
    # within 3 points of retrain on the same seed: about one standard error of an attack
    # accuracy scored on a few hundred held-out pairs (retrain itself varies that much)
    success_margin = 3.0

    def compute(self, ev: Evaluation) -> float | None:
        seed = int(ev.setup.attack_seed or 0)
        return membership_attack_accuracy(ev.model, ev.split("forget"), ev.split("test"), seed)


class NormalisedMIAForgetting(Metric):
    """nfs_mia = (mia(θ^i) − mia(θ^u)) / (mia(θ^i) − mia(θ^r)); 1 = as forgotten as by
    retraining. Undefined when the original and retrain are equally exposed
    (|denominator| below ``MIA_UNDEFINED_BELOW``)."""

    name = "nfs_mia"
    higher_is_better = True
    ideal = 1.0
    role = "forgetting"
    success_margin = 0.1  # closed the original–retrain gap to within a tenth of it
    normalises = "mia_acc"
    normalisation = "gap"

    def compute(self, ev: Evaluation) -> float | None:
        original = ev.value("mia_acc", of="original")
        own, reference = ev.value("mia_acc"), ev.value("mia_acc", of=fubench.REFERENCE)
        if original is None or own is None or reference is None:
            return None
        if abs(original - reference) < MIA_UNDEFINED_BELOW:
            return None
        return ratio(original - own, original - reference)


@fubench.hookimpl
def fubench_metrics() -> list[type[Metric]]:
    return [MembershipInferenceAccuracy, NormalisedMIAForgetting]
