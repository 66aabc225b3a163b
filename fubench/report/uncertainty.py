"""How much a rank owes to the seeds: a bootstrap over seeds.

A scenario's ranks are recomputed on every resample of its seeds (with replacement);
with few seeds every distinct resample is enumerated with its multinomial weight (an
exact bootstrap), otherwise :data:`DRAWS` seeded draws are taken. The choices made on
all seeds — which sweep point a method shows, which columns are ranked — stay fixed, so
only the values vary. A method's overall mean rank combines one resample per scenario
(drawn by weight, seeded). Intervals are the 2.5–97.5 % quantiles; two methods whose
intervals overlap cannot be told apart and share a place.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable

import numpy as np

from fubench.report.reader import Result

#: resamples drawn when there are too many distinct ones to enumerate
DRAWS = 400
#: draws of one resample per scenario for the overall mean rank
COMBINATIONS = 2000
MAX_EXACT = 500
LEVEL = (2.5, 97.5)
SEED = 0

Ranks = dict[str, float]


def resamples(results: list[Result]) -> list[tuple[list[Result], float]]:
    """(results of a resample of the seeds, its probability), exact when affordable."""
    n = len(results)
    if n <= 1:
        return [(list(results), 1.0)]
    if math.comb(2 * n - 1, n) <= MAX_EXACT:
        out = []
        for combo in itertools.combinations_with_replacement(range(n), n):
            counts = Counter(combo)
            weight = math.factorial(n) / math.prod(math.factorial(c) for c in counts.values())
            out.append(([results[i] for i in combo], weight / n**n))
        return out
    rng = np.random.default_rng(SEED)
    return [([results[i] for i in rng.integers(0, n, n)], 1.0 / DRAWS) for _ in range(DRAWS)]


def rank_samples(
    results: list[Result], ranks_of: Callable[[list[Result]], Ranks]
) -> list[tuple[Ranks, float]]:
    """The scenario's ranks on every resample of its seeds, with their weights."""
    return [(ranks_of(sample), weight) for sample, weight in resamples(results)]


def interval(values: list[float], weights: list[float]) -> tuple[float, float]:
    """The weighted 2.5–97.5 % quantiles of ``values``."""
    order = np.argsort(values, kind="stable")
    v = np.asarray(values, dtype=float)[order]
    w = np.asarray(weights, dtype=float)[order]
    cumulative = np.cumsum(w) / w.sum()
    low = v[min(np.searchsorted(cumulative, LEVEL[0] / 100), len(v) - 1)]
    high = v[min(np.searchsorted(cumulative, LEVEL[1] / 100), len(v) - 1)]
    return float(low), float(high)


def row_intervals(samples: list[tuple[Ranks, float]]) -> dict[str, tuple[float, float]]:
    """Per row, the interval of its rank over the resamples."""
    rows = {row for ranks, _ in samples for row in ranks}
    return {
        row: interval([r[row] for r, _ in samples if row in r], [w for r, w in samples if row in r])
        for row in rows
    }


def overall_intervals(
    per_scenario: dict[str, list[tuple[dict[str, float], float]]],
) -> dict[str, tuple[float, float]]:
    """Per method, the interval of its mean rank over the scenarios given (the
    leaderboard gives those every ranked method ran), drawing one resample per scenario
    by weight (``per_scenario``: {scenario: [({method: rank}, weight)]})."""
    rng = np.random.default_rng(SEED)
    picks = {}
    for scenario, samples in per_scenario.items():
        weights = np.asarray([w for _, w in samples], dtype=float)
        picks[scenario] = rng.choice(len(samples), size=COMBINATIONS, p=weights / weights.sum())
    methods = sorted(
        {m for samples in per_scenario.values() for ranks, _ in samples for m in ranks}
    )
    out = {}
    for method in methods:
        totals = np.zeros(COMBINATIONS)
        counts = np.zeros(COMBINATIONS)
        for scenario, samples in per_scenario.items():
            values = np.asarray([ranks.get(method, np.nan) for ranks, _ in samples])
            drawn = values[picks[scenario]]
            present = ~np.isnan(drawn)
            totals[present] += drawn[present]
            counts[present] += 1
        means = totals[counts > 0] / counts[counts > 0]
        if len(means):
            out[method] = interval(list(means), [1.0] * len(means))
    return out


def places(order: list[str], intervals: dict[str, tuple[float, float]]) -> dict[str, int]:
    """Each method's place: 1 + the methods whose whole interval lies below its own
    (methods whose intervals overlap share a place)."""
    return {
        m: 1
        + sum(
            1
            for o in order
            if o != m and o in intervals and m in intervals and intervals[o][1] < intervals[m][0]
        )
        for m in order
    }
