"""The report's reading of methods against a baseline (retraining cut to a budget) at
equal cost, on hand-made results with known answers; and the declarations the tables
read: baselines shown and never ranked, variants reported side by side, caveats on
row labels."""

from __future__ import annotations

import pytest

from fubench.plugins import get_registry
from fubench.report import costmatch
from fubench.report import leaderboard as lb
from fubench.report.costmatch import BEATS, LOSES, MATCHES, interpolate
from fubench.report.sweeps import best_sweep_points, sweep_groups
from fubench.report.table import aggregate
from tests.test_leaderboard import result, row

SEEDS = (0, 1, 2)
#: a small per-seed wobble, so that the seeds have a spread (a t interval)
WOBBLE = (-0.01, 0.0, 0.01)


def point(nfs, work, nta=0.95, seed=0, wobbly_nta=False, **extra):
    """One row's metrics; ``wobbly_nta``: nta wobbles too (a method's, against the
    baseline's steady one, so that their difference has a spread)."""
    jitter = WOBBLE[seed]
    nta = nta + jitter if wobbly_nta else nta
    return {
        "test_acc": 0.9 * nta,
        "nta": nta,
        "asr": 0.02,
        "seconds": 1.0,
        "rtr": 0.1,
        "target_acc": 0.5,
        "nfs": nfs + jitter,
        "work_ratio": work,
        **extra,
    }


def results(methods):
    """Three seeds of one backdoor scenario: the original remembers (nfs 0), retrain
    forgets (nfs 1); a baseline swept over two budgets; ``methods``: {label: (nfs, work,
    nta)}."""
    out = []
    for s in SEEDS:
        rows = {
            "budget_retrain[work_ratio=0.1]": row(
                point(1.30, 0.1, 0.80, s), method="budget_retrain", sweep={"work_ratio": 0.1}
            ),
            "budget_retrain[work_ratio=0.5]": row(
                point(1.10, 0.5, 0.96, s), method="budget_retrain", sweep={"work_ratio": 0.5}
            ),
        }
        for label, (nfs, work, nta) in methods.items():
            rows[label] = row(point(nfs, work, nta, s, wobbly_nta=True), method=label)
        r = result(s, rows)
        r["methods"]["original"]["metrics"].update(nfs=0.0, target_acc=0.99 - s / 100)
        r["methods"]["original"]["metrics"]["work_ratio"] = 1.0
        r["methods"]["retrain"]["metrics"].update(nfs=1.0, target_acc=0.05, work_ratio=1.0)
        out.append(r)
    return out


KNOWN = {
    # at work 0.3 the baseline's nfs is 1.2 (distance 0.2 from the ideal 1)
    "closer": (1.00, 0.3, 0.97),  # distance 0.0: beats
    "level": (1.20, 0.3, 0.97),  # the same distance: matches
    "farther": (0.50, 0.3, 0.97),  # distance 0.5: loses
    "broken": (1.00, 0.3, 0.40),  # forgets, but its model is broken
    "cheap": (0.98, 0.01, 0.97),  # below every budget, closer than the cheapest: beats
    "cheap_weak": (0.20, 0.0, 0.97),  # below every budget and farther: no verdict
    "dear": (0.60, 0.9, 0.97),  # above every budget and farther: loses
}


@pytest.fixture
def section():
    (found,) = lb.build_sections(results(KNOWN), get_registry())
    return found


def test_interpolation_between_budgets_and_flat_beyond_them():
    assert interpolate([0.1, 0.5], [1.3, 1.1], 0.3) == pytest.approx(1.2)
    assert interpolate([0.1, 0.5], [1.3, 1.1], 0.0) == pytest.approx(1.3)
    assert interpolate([0.5, 0.1, 0.1], [1.1, 1.2, 1.4], 0.1) == pytest.approx(1.3)  # averaged


def test_each_method_against_retraining_at_its_own_work_ratio(section):
    match = section.cost_match
    assert match.curve.rows == ["budget_retrain[work_ratio=0.1]", "budget_retrain[work_ratio=0.5]"]
    assert match.forgetting == "nfs" and match.utility == "nta"
    got = {m.row: m for m in match.matches}
    assert set(got) == set(KNOWN), "every shown method row, never the baseline's"
    closer = got["closer"]
    assert closer.verdict == BEATS and closer.where == "inside"
    assert closer.forgetting.baseline == pytest.approx(1.2)
    # |1 ± wobble − 1| against |1.2 ± wobble − 1|: 0.01 − 0.19, 0 − 0.2, 0.01 − 0.21
    assert closer.forgetting.difference == pytest.approx(-0.58 / 3)
    assert closer.forgetting.interval[1] < 0
    assert got["level"].verdict == MATCHES
    assert got["level"].forgetting.difference == pytest.approx(0.0, abs=1e-12)
    assert got["farther"].verdict == LOSES
    assert got["farther"].forgetting.difference == pytest.approx(0.3)
    assert got["broken"].verdict == BEATS and got["broken"].utility.baseline == pytest.approx(0.88)
    assert got["cheap"].where == "below" and got["cheap"].verdict == BEATS
    assert got["cheap_weak"].verdict == costmatch.APART
    assert got["dear"].where == "above" and got["dear"].verdict == LOSES


def test_the_board_shows_the_comparison_near_the_top_and_under_the_scenario(tmp_path):
    text = lb.render_leaderboard(
        results(KNOWN), get_registry(), ["lb/results"], tmp_path, tmp_path / "plots"
    )
    top = text.split("## Against retraining at equal cost")[1].split("\n## ")[0]
    assert text.index("## Overall ranking") < text.index("## Against retraining at equal cost")
    assert text.index("## Against retraining at equal cost") < text.index("## alpha")
    lines = {line.split("|")[1].strip(): line for line in top.splitlines() if line.startswith("| ")}
    assert "| 1 " in lines["closer"] and "| beats " in lines["closer"]
    assert "| loses to " in lines["farther"] and "| matches " in lines["level"]
    scenario = text.split("## alpha")[1]
    caption = "Against retraining at equal cost: budget_retrain retrains"
    assert caption in scenario
    matched = first_table(scenario.split(caption)[1])
    (closer,) = [line for line in matched if line.startswith("| closer ")]
    # work ratio, nfs and the baseline's at 0.3, nta and the baseline's, the verdict
    assert "| 0.3 " in closer and "| 1.000 " in closer and "| 1.200 " in closer
    assert "beats; Δ −0.193, " in closer
    (broken,) = [line for line in matched if line.startswith("| broken ")]
    assert "keeps less utility" in broken
    (level,) = [line for line in matched if line.startswith("| level ")]
    assert "matches; Δ 0, −∞ to ∞" in level  # no float noise such as −2.22e−16
    (cheap,) = [line for line in matched if line.startswith("| cheap ")]
    assert "cheaper than the smallest budget, 0.1" in cheap


def first_table(text):
    """The lines of the first markdown table in ``text``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_a_baseline_is_shown_at_every_budget_and_never_ranked(section, tmp_path):
    table = section.table
    budgets = [r for r in table.rows if r.startswith("budget_retrain")]
    assert len(budgets) == 2, "a baseline's sweep is a curve: every point stays"
    assert set(budgets) == table.baselines
    assert not set(budgets) & set(section.ranks) and not set(budgets) & set(section.cost_ranks)
    text = lb.render_leaderboard(
        results(KNOWN), get_registry(), ["lb/results"], tmp_path, tmp_path / "plots"
    )
    scenario_rows = [
        line for line in text.split("## alpha")[1].splitlines() if "| budget_retrain[" in line
    ]
    assert scenario_rows and all("| baseline " in line for line in scenario_rows[:2])
    ranking = text.split("## Overall ranking")[1].split("\n## ")[0]
    assert "budget_retrain" not in ranking


def test_without_a_baseline_sweep_there_is_no_comparison(tmp_path):
    plain = results({"closer": (1.0, 0.3, 0.97)})
    for r in plain:
        del r["methods"]["budget_retrain[work_ratio=0.5]"]
    (found,) = lb.build_sections(plain, get_registry())
    assert found.cost_match is None
    text = lb.render_leaderboard(plain, get_registry(), ["x"], tmp_path, tmp_path / "p")
    assert "Against retraining at equal cost" not in text


def test_variants_are_reported_side_by_side_each_at_its_best_point(tmp_path):
    """distillation declares server_data a variant: a sweep over it and lr shows one row
    per server_data, each at its own best lr; a sweep over lr alone shows one row."""
    rows = {}
    for data, lr, nfs in (
        ("reserve", 0.001, 0.5),
        ("reserve", 0.01, 0.9),
        ("shifted", 0.001, 0.7),
        ("shifted", 0.01, 0.3),
    ):
        label = f"distillation[server_data={data},lr={lr:g}]"
        rows[label] = (nfs, 0.05, 0.97, {"server_data": data, "lr": lr})
    found = []
    for s in SEEDS:
        methods = {
            label: row(point(nfs, work, nta, s), method="distillation", sweep=sweep)
            for label, (nfs, work, nta, sweep) in rows.items()
        }
        for label, stored in methods.items():
            stored["params"] = dict(rows[label][3])  # a stored row's params hold its point
        r = result(s, methods)
        r["methods"]["original"]["metrics"].update(nfs=0.0, target_acc=0.99 - s / 100)
        r["methods"]["retrain"]["metrics"].update(nfs=1.0, target_acc=0.05)
        found.append(r)
    registry = get_registry()
    groups = sweep_groups(found, registry)
    assert set(groups) == {"distillation[server_data=reserve]", "distillation[server_data=shifted]"}
    assert set(sweep_groups(found)) == {"distillation"}  # without declarations: one group
    (table,) = aggregate(found, registry)
    chosen = {g: c.label for g, c in best_sweep_points(table, registry).items()}
    assert chosen == {
        "distillation[server_data=reserve]": "distillation[server_data=reserve,lr=0.01]",
        "distillation[server_data=shifted]": "distillation[server_data=shifted,lr=0.001]",
    }
    (section,) = lb.build_sections(found, registry)
    assert sorted(section.table.rows[1:-1]) == sorted(chosen.values())
    # the shifted rows carry their method's caveat in every table
    text = lb.render_leaderboard(found, registry, ["x"], tmp_path, tmp_path / "plots")
    shifted = "distillation[server_data=shifted,lr=0.001] (server data from another data set)"
    assert shifted in text


def test_fedrecovery_rows_carry_their_caveat_in_tables():
    found = []
    for s in SEEDS:
        methods = {"fedrecovery": row(point(0.4, 0.0, 0.97, s), method="fedrecovery")}
        methods["fedrecovery"]["params"] = {"noise": "sigma", "sigma": 0.02}
        r = result(s, methods)
        r["methods"]["original"]["metrics"].update(nfs=0.0, target_acc=0.99 - s / 100)
        r["methods"]["retrain"]["metrics"].update(nfs=1.0, target_acc=0.05)
        found.append(r)
    (table,) = aggregate(found, get_registry())
    assert table.caveats == {"fedrecovery": "σ not DP-calibrated"}
    from fubench.report.table import render

    assert "fedrecovery (σ not DP-calibrated)" in render(table, get_registry())


# ------------------------------------------------------------------ the budget plot
def test_budget_plot_draws_the_baseline_curve_and_each_method_at_its_work():
    from matplotlib.colors import to_hex

    from fubench.report.budget_plot import budget_figure
    from fubench.report.style import MethodStyles

    registry = get_registry()
    fig = budget_figure(results(KNOWN), registry)
    (ax,) = [a for a in fig.axes if a.get_visible()]
    lines = {line.get_gid(): line for line in ax.lines if line.get_gid()}
    curve = lines["baseline:budget_retrain"]
    assert list(curve.get_xdata()) == pytest.approx([0.1, 0.5])
    assert list(curve.get_ydata()) == pytest.approx([1.3, 1.1])
    closer = lines["row:closer"]
    assert closer.get_xdata()[0] == pytest.approx(0.3) and closer.get_ydata()[0] == pytest.approx(1)
    assert set(lines) >= {f"row:{label}" for label in KNOWN}
    # the ideal ringed at the gold standard's work, inside the axes
    ring = lines["ideal"]
    assert (ring.get_xdata()[0], ring.get_ydata()[0]) == (1.0, 1.0)
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 <= 0.0 and x1 >= 1.0 and y0 < 1.0 < y1
    # one style per method, as in every plot; the verdict in the legend
    style = MethodStyles(registry, KNOWN).of("budget_retrain")
    assert to_hex(curve.get_color()) == to_hex(style.colour)
    assert curve.get_marker() == style.marker
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "closer: beats" in legend and "farther: loses to" in legend
    # the y axis does not reach 0 here (the points lie between 0.2 and 1.3): said
    assert y0 > 0.0 and "zoomed" in ax.get_ylabel()


def test_plot_budget_cli_and_results_without_a_baseline(tmp_path, capsys):
    from tests.conftest import run_cli
    from tests.resultfiles import write

    for r in results(KNOWN):
        write(tmp_path / "res" / r["scenario"]["name"] / f"seed_{r['seed']}.json", r)
    out = tmp_path / "b.png"
    assert run_cli("plot", "budget", str(tmp_path / "res"), "-o", str(out)) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plain = results({"closer": (1.0, 0.3, 0.97)})
    for r in plain:
        del r["methods"]["budget_retrain[work_ratio=0.5]"]
        write(tmp_path / "plain" / r["scenario"]["name"] / f"seed_{r['seed']}.json", r)
    capsys.readouterr()
    assert run_cli("plot", "budget", str(tmp_path / "plain"), "-o", str(tmp_path / "c.png")) == 2
    err = capsys.readouterr().err
    assert "no scenario in these results has a baseline swept over work budgets" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "c.png").exists()


def test_the_site_shows_the_comparison_on_the_index_and_the_scenario_page(tmp_path):
    from fubench.report import html

    board = lb.build_board(results(KNOWN), get_registry(), ["x"], tmp_path, tmp_path / "p")
    files = html.site(board)
    index, scenario = files["index.html"].decode(), files["scenario-alpha.html"].decode()
    for page in (index, scenario):
        assert "<h2>Against retraining at equal cost</h2>" in page
        assert "t-cost-match" in page
    assert index.index("Against retraining at equal cost") < index.index("<h2>Scenarios</h2>")
    assert "beats; Δ −0.193" in scenario and "keeps less utility" in scenario


def test_the_equal_cost_table_names_rows_with_their_caveat():
    found = results({"fedrecovery": (0.4, 0.0, 0.97)})
    for r in found:
        r["methods"]["fedrecovery"]["params"] = {"noise": "sigma", "sigma": 0.02}
    registry = get_registry()
    (section,) = lb.build_sections(found, registry)
    _, matched = costmatch.view(section.cost_match, section.table, registry)
    assert [r.cells[0].text for r in matched.rows] == ["fedrecovery (σ not DP-calibrated)"]


def test_the_overview_counts_a_variant_with_a_caveat_apart():
    found = results({"distillation": (1.0, 0.05, 0.97), "shifted": (0.5, 0.05, 0.97)})
    for r in found:
        stored = r["methods"].pop("shifted")
        stored.update(method="distillation", params={"server_data": "shifted"})
        r["methods"]["distillation[server_data=shifted]"] = stored
    registry = get_registry()
    (section,) = lb.build_sections(found, registry)
    _, overview = costmatch.summary({"alpha": section.cost_match})
    verdicts = {r.cells[0].text: r.cells[-1].text for r in overview.rows}
    assert verdicts == {
        "distillation": BEATS,
        "distillation (server data from another data set)": costmatch.APART,
    }
