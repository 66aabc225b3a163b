"""The paired tests behind claims and the noise test, their intervals, and the adjustment
for testing many claims at once. docs/statistics.md explains the choices.

* **Test.** A sample (per-seed differences, or per-seed values against a fixed number)
  is tested with the exact sign-flip permutation test of its mean from
  :data:`PERMUTATION_FROM` seeds on: under "no effect" each difference is as likely
  positive as negative, so the p-value counts the sign patterns whose sum reaches the
  observed one. It needs no normality (bimodal outcomes are common here), but its
  smallest p-value is 2^-n: 0.125 at 3 seeds, so below :data:`PERMUTATION_FROM` seeds
  the one-sample t-test is used instead (it leans on normal differences and says so).
  A sample without spread has no t statistic; it gets the exact sign-flip p (2^-n for n
  equal differences beyond the bound, 1 for differences on it), never 0.
* **Interval.** The 95 % interval of the mean inverts the same test: with the
  permutation test it runs between order statistics of the means of all 2^n − 1
  non-empty subsets of the sample (Hartigan 1969, "Using subsample values as typical
  values"), unbounded where 2^-n exceeds 2.5 %; with the t-test it is the t interval.
* **Adjustment.** p-values of many claims are adjusted together by Benjamini–Hochberg
  (:func:`adjust`): the expected share of false verdicts among those declared stays at
  most α. Holm's bound on any false verdict cannot work at ten seeds: the smallest
  exact p (2^-10) times the ~180 tests of the board exceeds 0.05.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

#: from this many seeds on, the exact sign-flip permutation test replaces the t-test
PERMUTATION_FROM = 10
#: above this many values, random sign patterns replace the full enumeration
MAX_EXACT = 16
#: random sign patterns drawn above MAX_EXACT values (seeded: reports are deterministic)
DRAWS = 2**16
SEED = 0
LEVEL = 0.95

SIGN_FLIP = "sign-flip permutation test"
T_TEST = "t-test"


def test_of(sample: list[float]) -> str:
    """The name of the test :func:`one_sided_p` applies to ``sample``."""
    return SIGN_FLIP if uses_permutation(sample) else T_TEST


def uses_permutation(sample: list[float]) -> bool:
    """Whether ``sample`` is tested by sign flips: enough values, or no spread (no t)."""
    return len(sample) >= PERMUTATION_FROM or _no_spread(np.asarray(sample, dtype=float))


def one_sided_p(sample: list[float], bound: float, greater: bool) -> float:
    """p of the one-sided test that mean(sample) > bound (``greater``) or < bound (at
    least two values)."""
    x = np.asarray(sample, dtype=float)
    shifted = x - bound if greater else bound - x
    if uses_permutation(sample):
        return _sign_flip_p(shifted)
    from scipy import stats

    n = len(x)
    t = shifted.mean() / (shifted.std(ddof=1) / math.sqrt(n))
    return float(stats.t.sf(t, n - 1))


def two_sided_p(sample: list[float], bound: float = 0.0) -> float:
    """p of the two-sided test that mean(sample) ≠ bound: twice the smaller one-sided p."""
    return min(1.0, 2 * min(one_sided_p(sample, bound, True), one_sided_p(sample, bound, False)))


def mean_interval(sample: list[float], level: float = LEVEL) -> tuple[float, float]:
    """The ``level`` interval of mean(sample) that inverts the test (at least two
    values); an end is ±inf where no shift of the sample is rejected that far."""
    x = np.asarray(sample, dtype=float)
    tail = (1 - level) / 2
    if uses_permutation(sample):
        means = np.sort(_subset_means(x))
        # p of "mean > δ" is (1 + #{subset means ≤ δ}) / patterns: the lower end is the
        # smallest δ where that exceeds the tail (mirrored for the upper end)
        patterns = len(means) + 1
        k = math.floor(tail * patterns - 1) + 1
        if k < 1:
            return -math.inf, math.inf
        return float(means[k - 1]), float(means[len(means) - k])
    from scipy import stats

    n = len(x)
    half = stats.t.ppf(1 - tail, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean() - half), float(x.mean() + half)


def adjust(pvalues: list[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (same order); a verdict is declared where its
    adjusted p is below α."""
    if not pvalues:
        return []
    from scipy import stats

    return [float(p) for p in stats.false_discovery_control(pvalues, method="bh")]


# ------------------------------------------------------------------------- sign flips
def _no_spread(x: np.ndarray) -> bool:
    return bool(np.ptp(x) <= 1e-12 * max(1.0, float(np.max(np.abs(x)))))


def _sign_flip_p(y: np.ndarray) -> float:
    """p of "mean(y) > 0" over sign flips: flipping the signs of a subset A of the values
    reaches the observed sum exactly when sum(y over A) ≤ 0, so p counts those subsets
    (the empty one, the observed pattern, always counts)."""
    subsets = _subsets(len(y))
    sums = subsets @ y
    reached = int(np.count_nonzero(sums <= 1e-12 * max(1.0, float(np.abs(y).sum()))))
    return (1 + reached) / (len(subsets) + 1)


def _subset_means(x: np.ndarray) -> np.ndarray:
    subsets = _subsets(len(x))
    return (subsets @ x) / subsets.sum(axis=1)


@cache
def _subsets(n: int) -> np.ndarray:
    """Indicator rows of the non-empty subsets of n values: all 2^n − 1 of them up to
    MAX_EXACT values, else DRAWS seeded random ones (the empty set excluded)."""
    if n <= MAX_EXACT:
        codes = np.arange(1, 2**n, dtype=np.int64)
        rows = (codes[:, None] >> np.arange(n)) & 1
    else:
        rng = np.random.default_rng(SEED)
        rows = rng.integers(0, 2, size=(DRAWS, n))
        rows = rows[rows.any(axis=1)]
    rows = rows.astype(float)
    rows.flags.writeable = False
    return rows
