"""``fubench plot budget``: forgetting against work, one panel per scenario. The
baseline's curve (a method declaring ``baseline``, retraining cut to a budget: its
forgetting at each swept work ratio) and every other method as a point at its own work
ratio, mean ± std over seeds: a point on the far side of the curve from the ideal
forgets worse than retraining for the same price (the verdicts with their intervals are
the leaderboard's, :mod:`fubench.report.costmatch`).

The plot conventions of :mod:`fubench.report.plots`: one colour and marker per method,
the ideal forgetting (the gold standard's, 1 for a normalised score) a dashed line with
the gold standard itself ringed at its own work (1), a zoomed axis said, values beyond
the axes marked on the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fubench.registry import Registry
from fubench.report.costmatch import CostMatch, cost_match
from fubench.report.figures import (
    method_styles,
    panel_grid,
    row_style,
    save_figure,
    seeds_text,
)
from fubench.report.layout import (
    Label,
    Point,
    mark_cut_bars,
    mark_outliers,
    mark_zoom,
    place_labels,
    robust_limits,
)
from fubench.report.plots import IDEAL_RING, _marker_style, _named, _with_bars
from fubench.report.reader import Result
from fubench.report.style import IDEAL_COLOUR, MethodStyles
from fubench.report.sweeps import keep_best_sweep_points
from fubench.report.table import ScenarioTable, aggregate

#: the work ratio of the gold standard: the end of the x axis
GOLD_WORK = 1.0
#: the gold standard's value of the forgetting axis, a score normalised between the
#: original (0) and the gold standard (1) (:func:`fubench.report.axes.forgetting_axis`)
IDEAL = 1.0


def budget(results: list[Result], output: str | Path, registry: Registry) -> Path:
    """Write the forgetting-against-work figure (:func:`budget_figure`) to ``output``."""
    return save_figure(budget_figure(results, registry), output)


def budget_figure(results: list[Result], registry: Registry) -> Any:
    """One panel per scenario in ``results`` with a baseline swept over work budgets and
    a forgetting score; raise ValueError where no scenario has one."""
    panels = []
    for table in aggregate(results, registry):
        keep_best_sweep_points(table, registry)  # methods at the point their table shows
        match = cost_match(table, registry)
        if match is not None and match.forgetting:
            panels.append((table, match))
    if not panels:
        raise ValueError(
            "no scenario in these results has a baseline swept over work budgets with a "
            "forgetting score; add e.g. budget_retrain: {work_ratio: [0.1, 0.25, 0.5]}"
        )
    styles = method_styles(results, registry)
    fig, axes = panel_grid(len(panels), 5.2)
    labelled = [(ax, _panel(ax, styles, table, match)) for ax, (table, match) in zip(axes, panels)]
    fig.tight_layout()  # labels are placed in the final pixel layout
    for ax, labels in labelled:
        place_labels(ax, labels)
    return fig


def _panel(ax: Any, styles: MethodStyles, table: ScenarioTable, match: CostMatch) -> list[Label]:
    """Draw one scenario; return the labels of values beyond the axes, to place once the
    layout is final."""
    forgetting = match.forgetting
    assert forgetting is not None
    _, reference = table.references
    points: list[Point] = []
    handles = [_draw_curve(ax, styles, table, match, points)]
    for m in match.matches:
        stats = table.stats(m.row, forgetting)
        if stats is None:
            continue
        style = row_style(table, m.row, styles)
        bars = ax.errorbar(
            [m.work], [stats[0]], yerr=[stats[1]], linestyle="none", **_marker_style(style)
        )
        bars.lines[0].set_gid(f"row:{m.row}")
        handles.append(_named(bars, f"{m.row}: {m.verdict}"))
        points.append(Point(m.work, stats[0], 0.0, stats[1], m.row, style.colour))
    ideal = IDEAL
    handles.append(_draw_ideal(ax, reference, ideal))
    ax.set_xlim(-0.03 * GOLD_WORK, GOLD_WORK * 1.05)  # a method of no work stays visible
    ax.set_ylim(*robust_limits(_with_bars(points, "y"), anchors=(ideal,)))
    f_name = forgetting.upper()
    labels = mark_outliers(ax, points, "work ratio", f_name) + mark_cut_bars(ax, points)
    ax.set_title(f"{table.scenario}: forgetting against work ({seeds_text(table)})", fontsize=10)
    ax.set_xlabel(f"work ratio (counted work ÷ {reference}'s)")
    ax.set_ylabel(f"{f_name} (forgetting, {ideal:g} = as {reference})")
    mark_zoom(ax, "y")
    ax.grid(alpha=0.25, linewidth=0.6)
    ax.legend(
        [h for h, _ in handles],
        [name for _, name in handles],
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0,
    )
    return labels


def _draw_curve(
    ax: Any, styles: MethodStyles, table: ScenarioTable, match: CostMatch, points: list[Point]
) -> Any:
    """The baseline's forgetting at each budget, joined: the price curve of forgetting
    (its points added to ``points``)."""
    curve = match.curve
    kept = []
    for label, work in zip(curve.rows, curve.work):
        stats = table.stats(label, match.forgetting)
        if stats is not None:
            kept.append(Point(work, stats[0], 0.0, stats[1], label, styles.of(curve.method).colour))
    style = styles.of(curve.method)
    bars = ax.errorbar(
        [p.x for p in kept],
        [p.y for p in kept],
        yerr=[p.sy for p in kept],
        linewidth=1.6,
        **_marker_style(style),
    )
    bars.lines[0].set_gid(f"baseline:{curve.method}")
    points += kept
    return _named(bars, f"{curve.method} (baseline, swept over work budgets)")


def _draw_ideal(ax: Any, reference: str, ideal: float) -> Any:
    """The ideal forgetting as a dashed line, the gold standard ringed at its own work."""
    ax.axhline(ideal, color=IDEAL_COLOUR, linewidth=0.7, linestyle=(0, (4, 3)), alpha=0.6)
    (ring,) = ax.plot(
        [GOLD_WORK],
        [ideal],
        marker="o",
        markersize=IDEAL_RING,
        markerfacecolor="none",
        markeredgecolor=IDEAL_COLOUR,
        markeredgewidth=1.3,
        linestyle="none",
        zorder=3,
    )
    ring.set_gid("ideal")
    return _named(ring, f"{reference}: the ideal ({ideal:g}) at work {GOLD_WORK:g}")
