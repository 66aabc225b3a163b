"""Forgetting quality as an ε, in the spirit of the NeurIPS 2023 machine-unlearning
challenge (Triantafillou et al., "Are we making progress in unlearning? Findings from
the first NeurIPS unlearning competition", 2024).

An unlearning method is good when nobody can tell its models from retrained ones. For
each forget example we look at one statistic — the logit-scaled confidence of its
label, φ = log(p_y / (1 − p_y)) — over K models the method unlearned and K retrained
models of the same scenario (same data, same forget set; K training seeds). An
attacker who sees φ from one model guesses "unlearned" when φ is above a threshold τ
(or below it: both sides are tried); over the pooled values as thresholds, its false
positive rate FPR (retrained called unlearned) and false negative rate FNR give

    ε_example = max over attacks of max( log((1 − δ − FPR) / FNR),
                                          log((1 − δ − FNR) / FPR) ),  at least 0,

an empirical lower bound on the ε of (ε, δ)-unlearning for that example. Rates of 0
are clipped to ``1 / (2K)`` (half a model: with K samples a rate below 1/K cannot be
told from 0), which caps ε at log((1 − δ − 1/(2K)) · 2K) ≈ 2.70 for K = 8, δ = 0.01.

Aggregate (the challenge's): each example scores 2 / 2^n with n the index of the bin of
width 0.5 its ε falls in (n = 1 for ε < 0.5, ..., 13 for ε ≥ 6); the score F is their
mean, 1 when no example can be told apart. We also give the mean ε.

**What to expect from K models.** The attack picks the best of 2K thresholds on the
same few samples it is scored on, so even a perfect unlearner (its models drawn from the
very distribution of retrain's) gets ε > 0 on most examples: sampling noise, not
leakage. The threshold attack depends only on the ranks of the pooled values, so this
*null* distribution does not depend on the data: :func:`null_reference` simulates it
for K and δ, and reports put every score beside it. Identical model sets give ε = 0
exactly; perfectly separated ones give the cap on every example.
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


def example_epsilons(
    unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA
) -> np.ndarray:
    """ε per example from statistics of shape (K_u, N) and (K_r, N) (models × examples)."""
    u, r = np.asarray(unlearned, float), np.asarray(retrained, float)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1]:
        raise ValueError(
            f"expected (models, examples) arrays with as many examples, got {u.shape} and {r.shape}"
        )
    if len(u) < 2 or len(r) < 2:
        raise ValueError("need at least 2 models on each side")
    thresholds = np.concatenate([u, r, np.full((1, u.shape[1]), -np.inf)])  # (T, N)
    fpr = (r[None, :, :] > thresholds[:, None, :]).mean(axis=1)  # retrained called unlearned
    fnr = (u[None, :, :] <= thresholds[:, None, :]).mean(axis=1)  # unlearned missed
    floor_r, floor_u = rate_floor(len(r)), rate_floor(len(u))
    best = np.zeros(u.shape[1])
    for a, b in ((fpr, fnr), (1.0 - fpr, 1.0 - fnr)):  # "above τ" and "below τ"
        a, b = np.maximum(a, floor_r), np.maximum(b, floor_u)
        with np.errstate(divide="ignore", invalid="ignore"):
            e1 = np.where(1 - delta - a > 0, np.log(1 - delta - a) - np.log(b), -np.inf)
            e2 = np.where(1 - delta - b > 0, np.log(1 - delta - b) - np.log(a), -np.inf)
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
) -> dict[str, dict]:
    """Per row: its status over the replicas, its parameters and, where at least 2
    replicas succeeded, ε and the score against the reference's models (with the null
    for that many)."""
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
            if len(mine) != replicas:
                entry["null"] = null_reference(len(mine), len(ref), delta)
        out[row] = entry
    return out


def _status(states: list[str]) -> str:
    if all(s == "ok" for s in states):
        return "ok"
    if not any(s == "ok" for s in states):
        return next((s for s in states if s == "failed"), states[0])
    return "partial"
