"""Feature metrics: how much a model still uses an input feature.

* ``feature_sensitivity`` — Ferrari's S(f) on the requesting client's data;
* ``inversion_asr`` — success of ART's black-box attribute-inference (model-inversion)
  attack on the forgotten feature;
* ``bias_gap`` — accuracy on colour-biased minus colour-unbiased images (bias kind).

The feature is ``request.feature_mask`` (input-shaped, bool); without one, the whole
input is the feature (client / class scenarios, as for Ferrari: docs/methods.md).
"""

from __future__ import annotations

import numpy as np
import torch

import fubench
from fubench import Evaluation, Metric, Split

#: S(f) is averaged over this many samples of D_T (a seeded random choice) ...
SENSITIVITY_SAMPLES = 1000
#: ... and this many Gaussian perturbations per sample
SENSITIVITY_DRAWS = 10
#: per-sample noise scale σ ~ U(low, high), Ferrari's range (docs/methods.md)
SIGMA_RANGE = (0.05, 1.0)
#: the attribute-inference attack fits on / attacks at most this many samples each
ATTACK_SAMPLES = 2000
#: a tabular column with at most this many distinct values is attacked value by value
MAX_CATEGORIES = 10


def _seed(ev: Evaluation) -> int:
    return int(ev.setup.attack_seed or 0)


def _mask_for(ev: Evaluation, x: torch.Tensor) -> torch.Tensor:
    mask = ev.setup.request.feature_mask
    if mask is None:
        return torch.ones(x.shape[1:], dtype=torch.bool, device=x.device)
    return mask.to(x.device)


def _sample(n: int, k: int, seed: int) -> torch.Tensor:
    """At most ``k`` of ``range(n)``, a seeded choice, in order."""
    if n <= k:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:k].sort().values


# --------------------------------------------------------------- feature sensitivity


@torch.no_grad()
def feature_sensitivity(
    model: torch.nn.Module,
    x: torch.Tensor,
    feature: fubench.Feature,
    seed: int,
    draws: int = SENSITIVITY_DRAWS,
) -> float | None:
    """S(f) = E_x E_δ ||f(x + δ_F) − f(x)||₂ / ||δ_F||₂ with f the model's raw outputs
    (logits, as in Ferrari's code: a softmax saturates on confident predictions and
    hides the difference between a model that uses the feature and one that does not),
    δ_F the feature's perturbation (Gaussian noise inside a region), σ ~ U(0.05, 1.0)
    per sample and draw. Deterministic for ``seed``."""
    if len(x) == 0 or (feature.mask is not None and not bool(feature.mask.any())):
        return None
    model.eval()
    g = torch.Generator().manual_seed(seed)
    base = model(x)
    total = torch.zeros((), dtype=torch.float64)
    for _ in range(draws):
        low, high = SIGMA_RANGE
        sigma = low + (high - low) * torch.rand(len(x), generator=g)
        delta = feature.perturb(x, sigma, g)
        moved = model(x + delta)
        ratio = (moved - base).norm(dim=1) / delta.flatten(1).norm(dim=1).clamp_min(1e-12)
        total += ratio.double().sum().cpu()
    return float(total / (draws * len(x)))


class FeatureSensitivity(Metric):
    """Ferrari's feature sensitivity S(f) (lower = the feature matters less), measured on
    up to 1,000 samples of the requesting client's forget set D_T, perturbing the
    request's feature (a region by Gaussian noise; the bias kind's colour by random
    per-channel gains; the whole input when the request names none)."""

    name = "feature_sensitivity"
    higher_is_better = False
    role = "forgetting"

    def compute(self, ev: Evaluation) -> float | None:
        data = ev.split("forget")
        pick = _sample(len(data), SENSITIVITY_SAMPLES, _seed(ev)).to(data.x.device)
        x = data.x[pick]
        feature = ev.setup.request.perturbation() or fubench.whole_input(
            tuple(x.shape[1:]), x.device
        )
        return feature_sensitivity(ev.model, x, feature, _seed(ev))


# ---------------------------------------------------------------- attribute inference


def attribute_codes(x: torch.Tensor, mask: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The secret attribute of each row of ``x``, as a small integer code:

    * several masked tabular columns (a one-hot group, e.g. marital status): which is set;
    * one masked tabular column with at most 10 distinct values in ``reference``: the
      rank of the row's value among them;
    * otherwise (an image region, a continuous column): 1 if the masked values' mean is
      above the median of ``reference``'s, else 0."""
    if x.dim() == 2 and int(mask.sum()) > 1:
        return x[:, mask].argmax(dim=1)
    values = x[:, mask].flatten(1).mean(dim=1)
    ref = reference[:, mask].flatten(1).mean(dim=1)
    levels = torch.unique(ref)
    if x.dim() == 2 and len(levels) <= MAX_CATEGORIES:
        return torch.bucketize(values, levels).clamp_max(len(levels) - 1)
    return (values > ref.median()).long()


def inversion_success(
    model: torch.nn.Module, aux: Split, target: Split, mask: torch.Tensor, seed: int
) -> float | None:
    """Share of ``target`` records whose secret attribute ART's
    ``AttributeInferenceBlackBox`` infers correctly (see :class:`InversionASR`)."""
    from art.attacks.inference.attribute_inference import AttributeInferenceBlackBox
    from art.estimators.classification import BlackBoxClassifier
    from fubench_builtins.metrics_privacy import probabilities

    if len(aux) == 0 or len(target) == 0:
        return None
    aux = aux.subset(_sample(len(aux), ATTACK_SAMPLES, seed).to(aux.x.device))
    target = target.subset(_sample(len(target), ATTACK_SAMPLES, seed + 1).to(target.x.device))
    views, probs = [], []
    for part in (aux, target):
        code = attribute_codes(part.x, mask, aux.x).float().unsqueeze(1).cpu()
        probs.append(probabilities(model, part.x))
        # a record as the attacker holds it: the secret and the model's confidence vector
        # (float32: ART casts queries to float32 before looking them up)
        views.append(torch.cat([code, torch.from_numpy(probs[-1]).float()], 1).numpy())
    n_classes = probs[0].shape[1]
    # the attacker queries the model on a record: the lookup table maps each record's
    # view to the model's output on the real input
    estimator = BlackBoxClassifier(
        (np.concatenate(views), np.concatenate(probs)),
        input_shape=(views[0].shape[1],),
        nb_classes=n_classes,
    )
    attack = AttributeInferenceBlackBox(estimator, attack_feature=0, attack_model_type="rf")
    attack.attack_model.set_params(random_state=seed)  # after: see metrics_privacy
    y_aux, y_target = aux.y.cpu().numpy(), target.y.cpu().numpy()
    attack.fit(views[0], y=y_aux)
    levels = sorted(set(np.unique(views[0][:, 0]).tolist()))
    guess = attack.infer(
        views[1][:, 1:], y=y_target, pred=probs[1].argmax(axis=1).reshape(-1, 1), values=levels
    )
    return float((np.asarray(guess).ravel() == views[1][:, 0]).mean())


class InversionASR(Metric):
    """Attack success rate of black-box model inversion (attribute inference, ART's
    ``AttributeInferenceBlackBox``, random-forest attack model, seeded) on the forgotten
    feature.

    The attacker queries the model on a record and sees its softmax vector and predicted
    label; it also knows the record's true label, but none of its other features (they
    would let it guess the secret without the model — an image region from the pixels
    around it — and hide what the model leaks). It fits on up to 2,000 test samples,
    whose secret attribute (see :func:`attribute_codes`) it knows, then guesses the
    attribute of up to 2,000 of the requesting client's training records D_T.
    Success = share of right guesses. The floor is what the label alone tells (a blind
    guess of the commonest value scores that value's share): compare with retrain, whose
    model did not learn the feature.
    """

    name = "inversion_asr"
    higher_is_better = False
    ideal = fubench.REFERENCE  # the attack's floor is what the label alone tells
    original_side = "above"  # the original still carries it: the metric reads higher
    role = "forgetting"
    percent = True
    # within 2 points of retrain on the same seed: about one binomial standard error of a
    # success rate over a few hundred guessed records
    success_margin = 2.0

    def compute(self, ev: Evaluation) -> float | None:
        target = ev.split("forget")
        return inversion_success(
            ev.model, ev.split("test"), target, _mask_for(ev, target.x), _seed(ev)
        )


# ------------------------------------------------------------------------------ bias


class BiasGap(Metric):
    """accuracy(biased set) − accuracy(unbiased set): how much the model leans on the
    spurious feature (Colored-MNIST: images coloured with their label's colour vs. with
    another label's colour). ~0 = no reliance; undefined without both sets."""

    name = "bias_gap"
    higher_is_better = None
    ideal = fubench.REFERENCE
    original_side = "above"  # the original still carries it: the metric reads higher
    role = "forgetting"
    percent = True
    success_margin = 2.0  # points of retrain's gap on the same seed (it leans on no colour)

    def compute(self, ev: Evaluation) -> float | None:
        if "biased" not in ev.setup.eval_sets or "unbiased" not in ev.setup.eval_sets:
            return None
        biased, unbiased = ev.accuracy("biased"), ev.accuracy("unbiased")
        if biased is None or unbiased is None:
            return None
        return biased - unbiased


@fubench.hookimpl
def fubench_metrics() -> list[type[Metric]]:
    return [FeatureSensitivity, InversionASR, BiasGap]
