"""Ranks that respect each metric's ideal, metrics undefined where they measure noise,
the papers' claims tested over the seeds, and rank intervals from a bootstrap."""

from __future__ import annotations

import math

import pytest

from fubench.config.validate import load_scenario
from fubench.errors import ConfigError
from fubench.plugins import get_registry
from fubench.report import leaderboard as lb
from fubench.report import uncertainty
from fubench.report.claims import check_claims
from fubench.report.table import aggregate, render
from tests.test_leaderboard import result, row


def seeds(rows_of, n=3, claims=None, scenario="alpha", kind="class"):
    """Results of one scenario: ``rows_of(seed)`` -> {label: metrics}; original and
    retrain come from the same mapping."""
    out = []
    for s in range(n):
        values = rows_of(s)
        r = result(
            s,
            {k: row(v) for k, v in values.items() if k not in ("original", "retrain")},
            scenario=scenario,
            kind=kind,
        )
        r["methods"]["original"] = row(values["original"], method="original")
        r["methods"]["retrain"] = row(values["retrain"], method="retrain")
        r["reference"] = "retrain"
        r["scenario"]["config"] = {"claims": claims or []}
        out.append(r)
    return out


def test_an_overshoot_never_ranks_above_a_closer_value():
    """nta 1.145 (retrain lacks a class) is further from 1 than 0.99 is."""
    results = seeds(
        lambda s: {
            "original": {"nta": 1.15},
            "retrain": {"nta": 1.0},
            "over": {"nta": 1.145 + s / 1000},
            "close": {"nta": 0.99},
        }
    )
    (section,) = lb.build_sections(results, get_registry())
    assert section.ranks["close"] < section.ranks["over"]
    text = lb.render_table(section, get_registry())
    close = next(line for line in text.splitlines() if line.startswith("| close"))
    assert "**0.990 ± 0.000**" in close and "nta →1" in text


def test_more_accuracy_is_better_where_the_kind_says_overshoot_cannot_remember():
    """A backdoor's test set is clean: 1.03 × retrain's accuracy is no trace of the
    trigger, so nta reads ↑ there (and →1 where the test set holds the forgotten class)."""

    def rows(seed):
        return {
            "original": {"nta": 1.02},
            "retrain": {"nta": 1.0},
            "more": {"nta": 1.03},
            "same": {"nta": 1.0},
            "less": {"nta": 0.98},
        }

    (clean,) = lb.build_sections(seeds(rows, kind="backdoor"), get_registry())
    assert clean.ranks["more"] < clean.ranks["same"] < clean.ranks["less"]
    assert "nta ↑" in lb.render_table(clean, get_registry())
    (forgotten,) = lb.build_sections(seeds(rows, kind="class"), get_registry())
    assert forgotten.ranks["same"] < forgotten.ranks["more"]
    assert "nta →1" in lb.render_table(forgotten, get_registry())


def test_attacks_are_read_against_the_gold_standard():
    """mia_acc: the retrain's 52% is the ideal, not 0 — 0.45 is a broken overshoot."""
    results = seeds(
        lambda s: {
            "original": {"mia_acc": 0.70 + s / 100},
            "retrain": {"mia_acc": 0.52},
            "near": {"mia_acc": 0.53},
            "low": {"mia_acc": 0.45},
        }
    )
    (section,) = lb.build_sections(results, get_registry())
    assert section.ranked_columns == ["mia_acc"]
    assert section.ranks["near"] < section.ranks["low"]


def test_a_normalised_score_of_noise_is_undefined_and_its_attack_unranked():
    """class_fmnist's case: original and retrain MIA 50.6% vs 52.8% with seed noise."""
    mia = {0: (0.48, 0.53), 1: (0.52, 0.52), 2: (0.52, 0.53)}
    results = seeds(
        lambda s: {
            "original": {"mia_acc": mia[s][0], "nfs_mia": 0.0},
            "retrain": {"mia_acc": mia[s][1], "nfs_mia": 1.0},
            "m": {"mia_acc": 0.51, "nfs_mia": -0.45 + s},
        }
    )
    (table,) = aggregate(results, get_registry())
    assert (
        "nfs_mia" in table.undefined and "does not see the forgetting" in table.undefined["nfs_mia"]
    )
    assert "mia_acc" in table.unranked
    m_line = next(li for li in render(table, get_registry()).splitlines() if li.startswith("| m "))
    assert m_line.split("|")[3].strip() == "—"  # nfs_mia shown undefined
    (section,) = lb.build_sections(results, get_registry())
    assert section.ranked_columns == []


@pytest.mark.parametrize(
    "gaps, defined",
    [
        ((-0.010, -0.0125, -0.020), False),  # significant two-sided, but the original is below
        ((0.14, 0.08, 0.055), True),  # the original clearly more exposed: one-sided test
        ((0.03, -0.01, 0.01), False),  # noise
    ],
)
def test_the_gap_must_lie_on_the_side_the_metric_declares(gaps, defined):
    results = seeds(
        lambda s: {
            "original": {"mia_acc": 0.52 + gaps[s], "nfs_mia": 0.0},
            "retrain": {"mia_acc": 0.52, "nfs_mia": 1.0},
            "m": {"mia_acc": 0.53, "nfs_mia": 0.5},
        }
    )
    (table,) = aggregate(results, get_registry())
    assert ("nfs_mia" not in table.undefined) == defined, table.undefined
    if not defined:
        assert "one-sided (original above) paired t-test" in table.undefined["nfs_mia"]


def test_a_clear_gap_keeps_the_normalised_score():
    results = seeds(
        lambda s: {
            "original": {"target_acc": 0.95 + s / 200, "nfs": 0.0},
            "retrain": {"target_acc": 0.10, "nfs": 1.0},
            "m": {"target_acc": 0.2, "nfs": 0.88},
        }
    )
    (table,) = aggregate(results, get_registry())
    assert not table.undefined and not table.unranked
    (section,) = lb.build_sections(results, get_registry())
    assert section.ranked_columns == ["nfs"], "target_acc is nfs's raw twin"


# ---------------------------------------------------------------------------------- claims

CLAIMS = [
    {
        "id": "lower",
        "source": "paper A, Table 1",
        "metric": "asr",
        "row": "good",
        "relation": "below",
        "other": "bad",
        "value": None,
        "tolerance": None,
        "note": "",
    },
    {
        "id": "wrong",
        "source": "paper A, Table 1",
        "metric": "asr",
        "row": "bad",
        "relation": "below",
        "other": "good",
        "value": None,
        "tolerance": None,
        "note": "",
    },
    {
        "id": "value",
        "source": "paper B",
        "metric": "asr",
        "row": "good",
        "relation": "near",
        "other": None,
        "value": 2.0,
        "tolerance": 1.5,
        "note": "",
    },
    {
        "id": "noisy",
        "source": "paper B",
        "metric": "asr",
        "row": "noisy",
        "relation": "below",
        "other": "good",
        "value": None,
        "tolerance": None,
        "note": "",
    },
    {
        "id": "far",
        "source": "paper B",
        "metric": "asr",
        "row": "bad",
        "relation": "near",
        "other": None,
        "value": 10.0,
        "tolerance": 5.0,
        "note": "",
    },
    # a claim of a large effect: the ordering must hold by more than the margin
    {
        "id": "by_far",
        "source": "paper C",
        "metric": "asr",
        "row": "good",
        "relation": "below",
        "other": "bad",
        "value": None,
        "tolerance": None,
        "note": "",
        "margin": 50.0,
    },
    {
        "id": "not_that_far",
        "source": "paper C",
        "metric": "asr",
        "row": "good",
        "relation": "below",
        "other": "bad",
        "value": None,
        "tolerance": None,
        "note": "",
        "margin": 95.0,
    },
]


def claim_results(n):
    values = {0: 0.01, 1: 0.02, 2: 0.03}
    results = seeds(
        lambda s: {
            "original": {"asr": 0.99},
            "retrain": {"asr": 0.01},
            "good": {"asr": 0.015 + s / 200},
            "bad": {"asr": 0.90 + s / 100},
            "noisy": {"asr": values[s] + (0.05 if s == 1 else -0.02)},
        },
        n=n,
        claims=CLAIMS,
    )
    (table,) = aggregate(results, get_registry())
    return {r.claim.id: r for r in check_claims(table, get_registry())}


def test_claims_are_held_not_held_or_inconclusive_over_the_seeds():
    found = claim_results(3)
    assert found["lower"].verdict == "held"
    assert found["wrong"].verdict == "not held"
    assert found["value"].verdict == "held"  # 2.0 ± 0.5 % within 2 ± 1.5
    assert found["noisy"].verdict == "inconclusive"
    assert found["far"].verdict == "not held"  # 91 % is far from 10 ± 5
    assert found["by_far"].verdict == "held"  # 89 points below, beyond 50
    assert found["not_that_far"].verdict == "not held"  # 89 points: short of 95
    assert found["by_far"].claim.statement() == "asr of good below bad by > 50"
    assert "good 2.0 vs bad 91.0" in found["lower"].measured


def test_one_seed_cannot_test_a_claim():
    found = claim_results(1)
    assert {r.verdict for r in found.values()} == {"inconclusive"}
    assert "1 seed: untested" in found["lower"].measured


def test_the_leaderboard_shows_the_claims(tmp_path):
    results = seeds(
        lambda s: {
            "original": {"asr": 0.99},
            "retrain": {"asr": 0.01},
            "good": {"asr": 0.015 + s / 200},
            "bad": {"asr": 0.9},
            "noisy": {"asr": 0.02},
        },
        claims=CLAIMS[:2],
    )
    text = lb.render_leaderboard(
        results, get_registry(), ["lb/results"], tmp_path, tmp_path / "plots"
    )
    section = text.split("## Claims of the papers")[1].split("\n## ")[0]
    assert "1 held, 1 not held, 0 inconclusive" in section
    assert "| lower | paper A, Table 1 | asr of good below bad |" in section


@pytest.mark.parametrize(
    "claim, message",
    [
        (
            "{id: a, source: s, metric: asr, row: ferrari}",
            "claims[0]: expected exactly one of below, above, near, near_row, got none",
        ),
        (
            "{id: a, source: s, metric: asr, row: ferari, below: original}",
            "claims[0].row: unknown row 'ferari'; did you mean 'ferrari'?",
        ),
        (
            "{id: a, source: s, metric: asr, row: qqq, below: original}",  # each row named once
            "claims[0].row: unknown row 'qqq'; rows: original, retrain, finetune, ferrari",
        ),
        (
            "{id: a, source: s, metric: asrr, row: ferrari, below: original}",
            "claims[0].metric: unknown metric 'asrr'; did you mean 'asr'?",
        ),
        (
            "{id: a, source: s, metric: asr, row: ferrari, near: 3}",
            "claims[0].tolerance: missing required key with near",
        ),
        (
            "{id: a, source: s, metric: asr, row: ferrari, below: original, tolerance: 1}",
            "claims[0].tolerance: only used with near or near_row, not below",
        ),
        (
            "{id: a, source: s, metric: asr, row: ferrari, below: original, colour: red}",
            "claims[0].colour: unknown key",
        ),
        (
            "{id: a, source: s, metric: asr, row: ferrari, near: 3, tolerance: 1, margin: 2}",
            "claims[0].margin: only used with below or above, not near",
        ),
        (
            "{id: a, source: s, metric: asr, row: ferrari, below: original, margin: -1}",
            "claims[0].margin: expected a number >= 0, got -1",
        ),
    ],
)
def test_a_wrong_claim_is_one_line_naming_the_key(backdoor_yaml, test_registry, claim, message):
    path = backdoor_yaml()
    text = path.read_text().replace(
        "methods: {retrain: {}, finetune: {rounds: 1}}", "methods: [retrain, finetune, ferrari]"
    )
    path.write_text(text + f"claims:\n  - {claim}\n")
    with pytest.raises(ConfigError) as info:
        load_scenario(path, test_registry)
    assert f"{path}: {message}" in str(info.value)
    assert "\n" not in str(info.value)


def test_claims_do_not_change_the_configuration_hash(backdoor_yaml, test_registry, tmp_path):
    from fubench.runner import Runner
    from tests.conftest import TinyImages

    path = backdoor_yaml()
    plain = load_scenario(path, test_registry)
    path.write_text(
        path.read_text() + "claims:\n  - {id: a, source: s, metric: test_acc, "
        "row: finetune, above: original}\n"
    )
    claimed = load_scenario(path, test_registry)
    assert claimed.claims and not plain.claims
    data = TinyImages().load(None)
    from fubench import data as datasets

    data = datasets.split(data, 0.3, 0)
    assert Runner(plain, test_registry, tmp_path).config_hash(data) == Runner(
        claimed, test_registry, tmp_path
    ).config_hash(data)


# ------------------------------------------------------------------------------- bootstrap


def test_the_exact_bootstrap_enumerates_every_resample():
    samples = uncertainty.resamples(["a", "b", "c"])
    assert len(samples) == math.comb(5, 3) == 10
    assert sum(w for _, w in samples) == pytest.approx(1.0)
    assert (["a", "a", "a"], pytest.approx(1 / 27)) in [(s, w) for s, w in samples]


def test_overlapping_intervals_share_a_place():
    intervals = {"a": (1.0, 1.5), "b": (1.4, 2.0), "c": (2.5, 3.0)}
    assert uncertainty.places(["a", "b", "c"], intervals) == {"a": 1, "b": 1, "c": 3}


def test_the_leaderboard_ranks_carry_their_spread(tmp_path):
    results = seeds(
        lambda s: {
            "original": {"asr": 0.99 - s / 100},  # a gap with spread: testable at 3 seeds
            "retrain": {"asr": 0.01},
            "steady": {"asr": 0.02},
            "shaky": {"asr": [0.01, 0.5, 0.03][s]},
            "bad": {"asr": 0.9},
        }
    )
    (section,) = lb.build_sections(results, get_registry())
    low, high = section.intervals["shaky"]
    assert low < high and section.intervals["bad"] == (1.0, 1.0)
    text = lb.render_leaderboard(
        results, get_registry(), ["lb/results"], tmp_path, tmp_path / "plots"
    )
    assert "(95% over seeds)" in text
