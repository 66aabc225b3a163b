"""The statistics behind claims, the noise test, success rates and ranks, on cases whose
answers can be computed by hand (docs/statistics.md)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import fubench
from fubench.api import declaration_problems
from fubench.config.claims import Claim
from fubench.plugins import get_registry
from fubench.report import leaderboard as lb
from fubench.report import markdown, ranking, significance
from fubench.report.claims import ClaimResult, check_claims, check_report, decide, effect_text
from fubench.report.separation import paired_p_value
from fubench.report.success import success_view, summarise
from fubench.report.table import aggregate
from fubench.report.text import render_report
from tests.test_ranking_claims import seeds

# ------------------------------------------------------------------------- the tests


def test_the_sign_flip_p_counts_sign_patterns():
    """Nine +1 and one −1: a sign pattern reaches the observed sum 8 only by flipping
    nothing, the −1 alone, or the −1 with one +1 — 11 of the 2^10 patterns."""
    sample = [1.0] * 9 + [-1.0]
    assert significance.one_sided_p(sample, 0.0, greater=True) == pytest.approx(11 / 1024)
    assert significance.test_of(sample) == significance.SIGN_FLIP


@pytest.mark.parametrize("n", [10, 12])
def test_the_sign_flip_p_agrees_with_scipy(n):
    x = np.random.default_rng(n).normal(0.3, 1.0, n)
    ours = significance.one_sided_p(list(x), 0.0, greater=True)
    theirs = stats.permutation_test(
        (x,), np.mean, permutation_type="samples", alternative="greater", n_resamples=2**n
    ).pvalue
    assert ours == pytest.approx(theirs)


def test_below_ten_seeds_the_t_test_is_used():
    x = [0.5, 1.5, 1.2]
    assert significance.test_of(x) == significance.T_TEST
    expected = stats.ttest_1samp(x, 0.2, alternative="less").pvalue
    assert significance.one_sided_p(x, 0.2, greater=False) == pytest.approx(expected)


@pytest.mark.parametrize("n", [3, 10])
def test_a_zero_spread_gets_the_exact_p_never_zero(n):
    """Equal differences on every seed: 2^-n one-sided (no t statistic, no division by
    zero); differences all 0 are no evidence of a difference at all."""
    equal = [2.5] * n
    assert significance.one_sided_p(equal, 0.0, greater=True) == pytest.approx(2.0**-n)
    assert significance.one_sided_p(equal, 0.0, greater=False) == 1.0
    zeros = [0.0] * n
    assert significance.two_sided_p(zeros) == 1.0
    assert paired_p_value(zeros) == 1.0 and paired_p_value(zeros, "above") == 1.0


def test_the_interval_inverts_the_sign_flip_test():
    """x = nine 0s and a 10: of the 1023 subset means 511 are 0 (the lower end, the 25th
    smallest, is 0); the largest are 10 (1 subset), 5 (9), 10/3 (36): the 25th largest
    is 10/3."""
    x = [0.0] * 9 + [10.0]
    low, high = significance.mean_interval(x)
    assert (low, high) == (pytest.approx(0.0), pytest.approx(10 / 3))
    y = list(np.random.default_rng(1).normal(1.0, 2.0, 10))
    low, high = significance.mean_interval(y)
    # shifts just outside the interval are rejected at 2.5 % one-sided, its ends are not
    assert significance.one_sided_p(y, low - 1e-9, greater=True) <= 0.025
    assert significance.one_sided_p(y, low, greater=True) > 0.025
    assert significance.one_sided_p(y, high + 1e-9, greater=False) <= 0.025
    assert significance.one_sided_p(y, high, greater=False) > 0.025


def test_the_interval_is_the_t_interval_below_ten_seeds_and_unbounded_without_spread():
    x = [1.0, 2.0, 4.0]
    expected = stats.t.interval(0.95, 2, loc=np.mean(x), scale=stats.sem(x))
    assert significance.mean_interval(x) == pytest.approx(expected)
    # three equal values: no sign pattern is rare enough (1/8 > 2.5 %) to bound the mean
    assert significance.mean_interval([3.0] * 3) == (-math.inf, math.inf)


def test_benjamini_hochberg_on_a_small_list():
    """Sorted 0.01, 0.03, 0.04, 0.5 of m = 4: p·m/rank = 0.04, 0.06, 0.053, 0.5, then the
    running minimum from the top."""
    adjusted = significance.adjust([0.01, 0.04, 0.03, 0.5])
    assert adjusted == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5])


# ------------------------------------------------------------------------------ claims
def claim(id_, relation, other=None, value=None, tolerance=None, margin=0.0):
    return Claim(id_, "paper", "asr", "m", relation, other, value, tolerance, "", margin)


def checked(values_of, claims, n):
    results = seeds(
        lambda s: {
            "original": {"asr": 0.99 - s / 1000},
            "retrain": {"asr": 0.01},
            **{row: {"asr": value(s)} for row, value in values_of.items()},
        },
        n=n,
        claims=[c.as_dict() for c in claims],
    )
    (table,) = aggregate(results, get_registry())
    return {r.claim.id: r for r in check_claims(table, get_registry())}


def test_ten_seeds_use_the_permutation_test_with_margins_and_equivalence():
    """m's asr is 2 % on every seed (retrain 1 %): the differences never vary, so every
    verdict rests on exact sign-flip p-values of 2^-10."""
    found = checked(
        {"m": lambda s: 0.02},
        [
            claim("above", "above", "retrain"),  # +1 point: held
            claim("by_far", "above", "retrain", margin=5.0),  # not by 5 points: not held
            claim("near", "near_row", "retrain", tolerance=2.0),  # within ± 2: held
            claim("value", "near", value=10.0, tolerance=3.0),  # 2 is beyond 10 ± 3
        ],
        n=10,
    )
    assert {k: r.verdict for k, r in found.items()} == {
        "above": "held",
        "by_far": "not held",
        "near": "held",
        "value": "not held",
    }
    assert found["above"].p_values[0] == pytest.approx(2**-10)
    assert found["above"].test == significance.SIGN_FLIP
    assert "10 seeds, sign-flip permutation test" in found["above"].measured
    assert found["above"].effect == pytest.approx(1.0)


def test_three_equal_seeds_cannot_decide_a_claim():
    """The same differences at 3 seeds: 1/8 is the smallest p there is."""
    found = checked({"m": lambda s: 0.02}, [claim("above", "above", "retrain")], n=3)
    assert found["above"].verdict == "inconclusive"
    assert found["above"].p_values[0] == pytest.approx(1 / 8)
    assert "unbounded at 3 seeds" in effect_text(found["above"])


def test_a_bimodal_row_is_not_taken_for_a_difference():
    """45.9 / 89.0 / 0.6 % against retrain's 0.4 %: a mean 45 points above, and no test
    can say so from three seeds this spread."""
    asr = [0.459, 0.89, 0.006]
    found = checked({"m": lambda s: asr[s]}, [claim("above", "above", "retrain")], n=3)
    result = found["above"]
    assert result.verdict == "inconclusive"
    low, high = result.interval
    assert low < 0 < high


def test_p_values_are_adjusted_across_every_claim_decided_together():
    """Both verdict tests of every claim enter: p = 0.02 and 0.9 alone adjust to
    0.02 · 2 = 0.04 (held); beside three claims with p = 0.9 both ways, BH over the 8
    p-values makes it 0.02 · 8 = 0.16: inconclusive."""

    def result(p_held):
        return ClaimResult(claim("c", "below", "x"), "inconclusive", "", 3, p_values=(p_held, 0.9))

    alone = [result(0.02)]
    decide(alone)
    assert alone[0].verdict == "held" and alone[0].adjusted[0] == pytest.approx(0.04)
    board = [result(0.02)] + [result(0.9) for _ in range(3)]
    decide(board)
    assert board[0].verdict == "inconclusive"
    assert board[0].adjusted[0] == pytest.approx(0.16)


def test_fubench_table_adjusts_across_all_scenarios_it_shows():
    """Scenario "two" alone: its claim's p of 0.02 (t = 4.85, 2 df) adjusts to 0.04 —
    held. Beside scenario "one", whose claim is noise (p = 0.5 both ways), BH over the 4
    p-values makes it 0.08: inconclusive, in ``fubench table`` as on the leaderboard."""
    gap = {"one": [-1.0, 0.0, 1.0], "two": [-10 - 3.5707, -10.0, -10 + 3.5707]}
    results = []
    for name, diffs in gap.items():
        results += seeds(
            lambda s, diffs=diffs: {
                "original": {"asr": 0.9 - s / 1000},
                "retrain": {"asr": 0.01},
                "m": {"asr": 0.9 - s / 1000 + diffs[s] / 100},
            },
            claims=[claim("c", "below", "original").as_dict()],
            scenario=name,
        )
    one, two = aggregate(results, get_registry())
    (alone,) = check_claims(two, get_registry())
    assert alone.p_values[0] == pytest.approx(0.02, abs=1e-4) and alone.verdict == "held"
    found = check_report([one, two], get_registry())
    raw = [p for results in found for r in results for p in r.p_values]
    adjusted = [p for results in found for r in results for p in r.adjusted]
    assert adjusted == pytest.approx(significance.adjust(raw))
    assert found[1][0].verdict == "inconclusive"
    assert found[1][0].adjusted[0] == pytest.approx(0.08, abs=1e-3)
    text = render_report(results, get_registry())
    assert "p adjusted across every claim shown, Benjamini–Hochberg" in text
    assert "**held**" not in text.split("## two")[1]


# --------------------------------------------------------------------------- separation
def test_the_noise_test_uses_the_permutation_test_from_ten_seeds():
    """A gap of 1 point on nine seeds and −1 on one: exact p 11/1024, separated."""
    gaps = [0.01] * 9 + [-0.01]
    results = seeds(
        lambda s: {
            "original": {"mia_acc": 0.52 + gaps[s], "nfs_mia": 0.0},
            "retrain": {"mia_acc": 0.52, "nfs_mia": 1.0},
            "m": {"mia_acc": 0.53, "nfs_mia": 0.5},
        },
        n=10,
    )
    (table,) = aggregate(results, get_registry())
    assert not table.undefined
    assert paired_p_value(gaps, "above") == pytest.approx(11 / 1024)
    # and the note of an unseparated gap names the test
    flat = seeds(
        lambda s: {
            "original": {"mia_acc": 0.52 + (0.01 if s % 2 else -0.01), "nfs_mia": 0.0},
            "retrain": {"mia_acc": 0.52, "nfs_mia": 1.0},
            "m": {"mia_acc": 0.53, "nfs_mia": 0.5},
        },
        n=10,
    )
    (table,) = aggregate(flat, get_registry())
    assert (
        "one-sided (original above) paired sign-flip permutation test"
        in (table.undefined["nfs_mia"])
    )


# ------------------------------------------------------------------------------ success
def bimodal():
    """FedCDP on backdoor_mnist: ASR 45.9 / 89.0 / 0.6 % against retrain's ~0.4 %."""
    asr = [0.459, 0.89, 0.006]
    nfs = [0.455, 0.095, 0.984]
    return seeds(
        lambda s: {
            "original": {"asr": 0.99 - s / 100, "nfs": 0.0},
            "retrain": {"asr": [0.0046, 0.0037, 0.0028][s], "nfs": 1.0},
            "fedcdp": {"asr": asr[s], "nfs": nfs[s]},
            "ferrari": {"asr": 0.006, "nfs": 0.99},
        },
        kind="backdoor",
    )


def test_a_bimodal_row_shows_its_median_and_success_rate():
    (table,) = aggregate(bimodal(), get_registry())
    asr = summarise(table, "fedcdp", "asr", get_registry())
    assert asr.median == pytest.approx(0.459)
    assert (asr.successes, asr.judged) == (1, 3)  # only seed 2 is within 2 points
    nfs = summarise(table, "fedcdp", "nfs", get_registry())
    assert (nfs.successes, nfs.judged) == (1, 3)  # only 0.984 is within 0.1 of 1
    caption, grid = success_view(table, get_registry())
    text = markdown.table(grid)
    assert "asr % →ref (±2)" in text and "nfs →1 (±0.1)" in text
    fedcdp = next(line for line in text.splitlines() if line.startswith("| fedcdp"))
    assert "45.9 · 1/3" in fedcdp and "0.455 · 1/3" in fedcdp
    ferrari = next(line for line in text.splitlines() if line.startswith("| ferrari"))
    assert "0.6 · 3/3" in ferrari


def test_the_leaderboard_and_fubench_table_show_the_success_rates(tmp_path):
    board = lb.render_leaderboard(
        bimodal(), get_registry(), ["lb/results"], tmp_path, tmp_path / "plots"
    )
    table = render_report(bimodal(), get_registry())
    for text in (board, table):
        assert "Forgetting over the seeds: median · seeds within the margin" in text
        assert "45.9 · 1/3" in text


def test_the_success_margin_declaration_is_checked():
    class Bad(fubench.Metric):
        name = "bad"
        success_margin = -1.0
        ideal = 1.0

    class NoIdeal(fubench.Metric):
        name = "no_ideal"
        success_margin = 1.0

    assert "success_margin = -1.0; expected a number > 0 or None" in declaration_problems(Bad)
    assert "success_margin needs an ideal to come close to" in declaration_problems(NoIdeal)


# -------------------------------------------------------------------------------- ranks
def test_normalised_ranks_put_the_last_of_n_at_one():
    assert ranking.normalised({"a": 1.0, "b": 2.5, "c": 2.5, "d": 4.0}) == {
        "a": 0.0,
        "b": 0.5,
        "c": 0.5,
        "d": 1.0,
    }
    assert ranking.normalised({"a": 1.0, "b": 2.0}) == {"a": 0.0, "b": 1.0}
    assert ranking.normalised({"alone": 1.0}) == {}  # no place among others


def test_the_overall_rank_averages_only_the_scenarios_every_method_ran(tmp_path):
    """x, y, z all run in s1 and s2; z is missing from s3, where x is first of two.
    Averaged over s1 and s2 only: x's s3 rank is shown beside, not averaged in."""

    def scenario(name, order):
        return seeds(
            lambda s: {
                "original": {"asr": 0.99 - s / 100},
                "retrain": {"asr": 0.01},
                **{m: {"asr": 0.02 + 0.1 * i} for i, m in enumerate(order)},
            },
            scenario=name,
        )

    results = scenario("s1", ["x", "y", "z"]) + scenario("s2", ["z", "x", "y"])
    results += scenario("s3", ["x", "y"])
    sections = lb.build_sections(results, get_registry())
    ranks = lb.overall(sections)
    assert ranks["x"] == {"s1": 0.0, "s2": 0.5, "s3": 0.0}
    assert ranking.common_scenarios(ranks, ["s1", "s2", "s3"]) == ["s1", "s2"]
    assert ranking.mean_over(ranks, ["s1", "s2"]) == {"x": 0.25, "y": 0.75, "z": 0.5}
    board = lb.build_board(results, get_registry(), ["results"], Path("."), Path("plots"))
    text = markdown.ranking(board)
    x = next(line for line in text.splitlines() if "| x " in line)
    assert "| 0.25 " in x and x.rstrip(" |").endswith("0.00")  # s3 shown last
    assert "s3 (not shared)" in text
    assert "over the 2 scenarios every ranked method ran (s1, s2)" in text
