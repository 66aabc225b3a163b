"""Forgetting quality as an ε, in the spirit of the NeurIPS 2023 machine-unlearning
challenge (Triantafillou et al., "Are we making progress in unlearning? Findings from
the first NeurIPS unlearning competition", 2024).

An unlearning method is good when nobody can tell its models from retrained ones. For
each forget example we look at one statistic — the logit-scaled confidence of its
label, φ = log(p_y / (1 − p_y)) — over K models the method unlearned and K retrained
models of the same scenario (same data, same forget set; K training seeds). An
attacker who sees φ from one model guesses "unlearned" when φ is above a threshold τ
(or below it); its false positive rate FPR (retrained called unlearned) and false
negative rate FNR give

    ε_example = max( log((1 − δ − FPR) / FNR), log((1 − δ − FNR) / FPR) ),  at least 0,

an empirical lower bound on the ε of (ε, δ)-unlearning for that example.

**Cross-fitted.** A threshold chosen on the very models it is scored on fits their
noise (the best of 2K thresholds). So the replicas alternate between two halves; the
threshold is chosen on one half and its errors are counted on the other, and the other
way round, and the errors are pooled: each model is scored once, by a threshold chosen
without it, and the pooled rates are those of one attack (toss a coin for the half
whose threshold to use). This is done for four attack families — above or below τ,
tuned for either bound — and ε is the largest of their four ε: a choice among 4 attacks
fixed before the held-out models are seen, not among 2K thresholds. Rates of 0 are
clipped to ``1 / (2K)`` (half a model: with K samples a rate below 1/K cannot be told
from 0), which caps ε at log((1 − δ − 1/(2K)) · 2K) ≈ 2.70 for K = 8, δ = 0.01. The
in-sample estimator of older files stays as :func:`example_epsilons_in_sample`.

Aggregate (the challenge's): each example scores 2 / 2^n with n the index of the bin of
width 0.5 its ε falls in (n = 1 for ε < 0.5, ..., 13 for ε ≥ 6); the score F is their
mean, 1 when no example can be told apart. We also give the mean ε.

**What to expect from K models.** Even a perfect unlearner (its models drawn from the
very distribution of retrain's) gets ε > 0 on some examples: sampling noise, not
leakage. The attack depends only on the ranks of the values, so the mean of this *null*
does not depend on the data: :func:`null_reference` simulates it for K and δ. How far a
row's mean ε may stray from it does depend on the data (the examples share models), so
:func:`permutation_null` re-splits the row's and retrain's pooled models at random for
the interval a perfect unlearner's mean ε falls in and a p-value. Identical model sets
give ε = 0 exactly; perfectly separated ones give the cap on every example.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn

#: the competition's δ
DELTA = 0.01
#: the challenge's bins: width 0.5, 13 of them
BIN_WIDTH = 0.5
BINS = 13
STATISTIC = "logit_confidence"


@torch.no_grad()
def logit_confidence(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024
) -> np.ndarray:
    """φ = log(p_y / (1 − p_y)) per sample, computed stably from the logits as
    z_y − logsumexp_{j≠y} z_j."""
    model.eval()
    out = []
    for i in range(0, len(y), batch_size):
        z = model(x[i : i + batch_size]).double()
        label = y[i : i + batch_size]
        own = z.gather(1, label[:, None]).squeeze(1)
        others = z.scatter(1, label[:, None], float("-inf")).logsumexp(dim=1)
        out.append((own - others).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)


def rate_floor(k: int) -> float:
    return 1.0 / (2 * k)


def _check(u: np.ndarray, r: np.ndarray) -> None:
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1]:
        raise ValueError(
            f"expected (models, examples) arrays with as many examples, got {u.shape} and {r.shape}"
        )
    if len(u) < 2 or len(r) < 2:
        raise ValueError("need at least 2 models on each side")


def _bounds(
    fpr: np.ndarray, fnr: np.ndarray, floor_r: float, floor_u: float, delta: float
) -> tuple[np.ndarray, np.ndarray]:
    """The two (ε, δ) bounds one attack's clipped rates give: log((1 − δ − FPR)/FNR) and
    log((1 − δ − FNR)/FPR), −∞ where 1 − δ − rate is not positive."""
    a, b = np.maximum(fpr, floor_r), np.maximum(fnr, floor_u)
    with np.errstate(divide="ignore", invalid="ignore"):
        e1 = np.where(1 - delta - a > 0, np.log(1 - delta - a) - np.log(b), -np.inf)
        e2 = np.where(1 - delta - b > 0, np.log(1 - delta - b) - np.log(a), -np.inf)
    return e1, e2


#: the attack families: (side, bound) — "unlearned if above τ" or "below τ", and which
#: of the two bounds the threshold is tuned for
FAMILIES = ((True, 0), (True, 1), (False, 0), (False, 1))


def example_epsilons(
    unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA
) -> np.ndarray:
    """Cross-fitted ε per example from statistics of shape (K_u, N) and (K_r, N) (models ×
    examples). Replicas alternate between two halves; in each attack family the threshold
    is chosen on one half and its errors counted on the other, then the other way round.
    Every model is thus scored once, by a threshold chosen without it; the pooled rates
    are those of the attack "toss a coin for the half whose threshold to use". ε is the
    largest of the four families' ε (a choice among 4 fixed attacks, not 2K thresholds)."""
    u, r = np.asarray(unlearned, float), np.asarray(retrained, float)
    _check(u, r)
    false_pos = np.zeros((len(FAMILIES), u.shape[1]))
    false_neg = np.zeros_like(false_pos)
    for fit, held in ((0, 1), (1, 0)):
        for i, tau in enumerate(_best_thresholds(u[fit::2], r[fit::2], delta)):
            fp, fn = _errors(u[held::2], r[held::2], tau, FAMILIES[i][0])
            false_pos[i] += fp
            false_neg[i] += fn
    eps = np.zeros(u.shape[1])
    floor_r, floor_u = rate_floor(len(r)), rate_floor(len(u))
    for i, (_, bound) in enumerate(FAMILIES):
        rates = false_pos[i] / len(r), false_neg[i] / len(u)
        eps = np.maximum(eps, _bounds(*rates, floor_r, floor_u, delta)[bound])
    return eps


def _best_thresholds(u: np.ndarray, r: np.ndarray, delta: float) -> list[np.ndarray]:
    """Per attack family, per example, the threshold with the largest ε on these models,
    midway between neighbouring pooled values (or ±∞)."""
    pooled = np.concatenate([u, r])
    order = np.argsort(pooled, axis=0, kind="stable")
    values = np.take_along_axis(pooled, order, axis=0)
    is_u = order < len(u)
    zero = np.zeros((1, pooled.shape[1]))
    # cut i separates the sorted positions < i (below τ) from those ≥ i (above τ)
    below_u = np.concatenate([zero, np.cumsum(is_u, axis=0)])
    below_r = np.concatenate([zero, np.cumsum(~is_u, axis=0)])
    inside_tie = np.concatenate([zero, values[1:] == values[:-1], zero]).astype(bool)
    edges = np.concatenate([zero - np.inf, values, zero + np.inf])
    with np.errstate(invalid="ignore"):  # −∞ + ∞ never happens: K ≥ 2 values per column
        cuts = (edges[:-1] + edges[1:]) / 2
    cuts[0], cuts[-1] = -np.inf, np.inf
    fpr, fnr = 1 - below_r / len(r), below_u / len(u)  # for "unlearned if above τ"
    floors = rate_floor(len(r)), rate_floor(len(u))
    columns = np.arange(pooled.shape[1])
    out = []
    for above, bound in FAMILIES:
        rates = (fpr, fnr) if above else (1 - fpr, 1 - fnr)
        eps = _bounds(*rates, *floors, delta)[bound]
        eps[inside_tie] = -np.inf  # a cut inside a tie is no threshold
        out.append(cuts[eps.argmax(axis=0), columns])
    return out


def _errors(
    u: np.ndarray, r: np.ndarray, tau: np.ndarray, above: bool
) -> tuple[np.ndarray, np.ndarray]:
    """False positives (retrained called unlearned) and false negatives per example."""
    called_u, called_r = (u > tau, r > tau) if above else (u < tau, r < tau)
    return called_r.sum(axis=0).astype(float), (~called_u).sum(axis=0).astype(float)


def example_epsilons_in_sample(
    unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA
) -> np.ndarray:
    """The former estimator (files without an ``estimator`` field): the best of the 2K
    pooled thresholds, chosen and scored on the same models. Kept for comparison."""
    u, r = np.asarray(unlearned, float), np.asarray(retrained, float)
    _check(u, r)
    thresholds = np.concatenate([u, r, np.full((1, u.shape[1]), -np.inf)])  # (T, N)
    fpr = (r[None, :, :] > thresholds[:, None, :]).mean(axis=1)  # retrained called unlearned
    fnr = (u[None, :, :] <= thresholds[:, None, :]).mean(axis=1)  # unlearned missed
    floor_r, floor_u = rate_floor(len(r)), rate_floor(len(u))
    best = np.zeros(u.shape[1])
    for a, b in ((fpr, fnr), (1.0 - fpr, 1.0 - fnr)):  # "above τ" and "below τ"
        e1, e2 = _bounds(a, b, floor_r, floor_u, delta)
        best = np.maximum(best, np.maximum(e1, e2).max(axis=0))
    return best


def bucket_scores(epsilons: np.ndarray) -> np.ndarray:
    """2 / 2^n per example, n the index of its ε's bin (1 for ε < 0.5)."""
    n = np.digitize(np.asarray(epsilons, float), np.arange(BINS) * BIN_WIDTH)
    return 2.0 / 2.0**n


def summary(epsilons: np.ndarray) -> dict[str, float]:
    eps = np.asarray(epsilons, float)
    return {
        "epsilon_mean": float(eps.mean()),
        "epsilon_median": float(np.median(eps)),
        "score": float(bucket_scores(eps).mean()),
    }


@lru_cache(maxsize=32)
def null_reference(
    k_unlearned: int, k_retrained: int, delta: float = DELTA, examples: int = 20_000
) -> dict[str, float]:
    """What a perfect unlearner scores with this many models: both sides drawn from one
    distribution (the attack is rank-based, so any continuous one gives the same);
    a fixed seed keeps reports repeatable."""
    rng = np.random.default_rng(0)
    u = rng.standard_normal((k_unlearned, examples))
    r = rng.standard_normal((k_retrained, examples))
    return summary(example_epsilons(u, r, delta))


@lru_cache(maxsize=32)
def null_interval(
    k_unlearned: int, k_retrained: int, examples: int, delta: float = DELTA, rounds: int = 200
) -> list[float]:
    """The 5–95 % interval of a perfect unlearner's mean ε over ``examples`` examples
    *if they were independent*: ``rounds`` simulated exchangeable experiments (a fixed
    seed). Examples that share models spread wider: :func:`permutation_null` keeps that."""
    rng = np.random.default_rng(1)
    means = [
        example_epsilons(
            rng.standard_normal((k_unlearned, examples)),
            rng.standard_normal((k_retrained, examples)),
            delta,
        ).mean()
        for _ in range(rounds)
    ]
    return [float(q) for q in np.quantile(means, NULL_QUANTILES)]


#: names the estimator in result files; files without the field used the in-sample one
ESTIMATOR = "cross_fitted_2fold"
#: re-splits of the pooled replicas behind a row's null interval
PERMUTATIONS = 200
NULL_QUANTILES = (0.05, 0.95)


def permutation_null(
    unlearned: np.ndarray,
    retrained: np.ndarray,
    delta: float = DELTA,
    seed: int = 0,
    rounds: int = PERMUTATIONS,
) -> dict[str, float | list[float]]:
    """Where a perfect unlearner's mean ε falls with these models: if the method's models
    were drawn like retrain's, the two sets would be exchangeable, so re-splitting the
    pooled K_u + K_r models at random (the same split for every example, which keeps the
    examples' dependence through shared models) draws from the null. Returns the 5–95 %
    interval of the mean ε over ``rounds`` splits and the permutation p-value of the
    observed mean ε (small: distinguishable from a perfect unlearner)."""
    u, r = np.asarray(unlearned, float), np.asarray(retrained, float)
    observed = example_epsilons(u, r, delta).mean()
    pooled = np.concatenate([u, r])
    rng = np.random.default_rng(seed)
    means = np.empty(rounds)
    for i in range(rounds):
        order = rng.permutation(len(pooled))
        means[i] = example_epsilons(pooled[order[: len(u)]], pooled[order[len(u) :]], delta).mean()
    low, high = np.quantile(means, NULL_QUANTILES)
    return {
        "epsilon_mean_interval": [float(low), float(high)],
        "p": float((1 + np.sum(means >= observed)) / (1 + rounds)),
    }


def cap(k_unlearned: int, k_retrained: int, delta: float = DELTA) -> float:
    """The largest ε the clipped rates allow (perfectly separated samples)."""
    a, b = rate_floor(k_retrained), rate_floor(k_unlearned)
    return float(max(np.log(1 - delta - a) - np.log(b), np.log(1 - delta - b) - np.log(a)))


def rows_record(
    stats: dict[str, np.ndarray],
    status: dict[str, list[str]],
    errors: dict[str, str],
    reference: str,
    replicas: int,
    delta: float = DELTA,
    params: dict[str, dict] | None = None,
    seed: int = 0,
) -> dict[str, dict]:
    """Per row: its status over the replicas, its parameters and, where at least 2
    replicas succeeded, ε and the score against the reference's models, the interval a
    perfect unlearner's mean ε falls in with these models and the p-value (permutations
    seeded by ``seed``), and the simulated null when fewer than K replicas succeeded."""
    ref = stats.get(reference)
    out: dict[str, dict] = {}
    for row, states in status.items():
        if row == reference:
            out[row] = {"status": "reference", "replicas_ok": states.count("ok")}
            continue
        entry: dict = {"status": _status(states), "replicas_ok": states.count("ok")}
        if params and row in params:
            entry["params"] = params[row]
        if errors.get(row):
            entry["error"] = errors[row]
        mine = stats.get(row)
        if mine is not None and len(mine) >= 2 and ref is not None and len(ref) >= 2:
            entry.update(summary(example_epsilons(mine, ref, delta)))
            entry["null"] = permutation_null(mine, ref, delta, seed)
            if len(mine) != replicas:
                entry["null"].update(null_reference(len(mine), len(ref), delta))
        out[row] = entry
    return out


def _status(states: list[str]) -> str:
    if all(s == "ok" for s in states):
        return "ok"
    if not any(s == "ok" for s in states):
        return next((s for s in states if s == "failed"), states[0])
    return "partial"
