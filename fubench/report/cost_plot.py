"""``fubench plot cost``: each method's cost relative to the gold standard, as dots on
one log axis shared by every scenario's panel, so panels compare and a dot's place
means the same everywhere. By default the ratio of the counted work (work_ratio:
FLOPs, the same on every machine); ``timed`` adds the ratio of the wall time (rtr, it
depends on the machine) as a hollow dot under each row. The metrics are found by their
declarations: the cost metrics that divide one of the harness's own measurements
(RowInfo's work, seconds) by the gold standard's. Swept methods appear at the point their table
shows; a zero, which a log axis cannot place, sits on its left edge as an arrow head;
the values stand in a small table right of each panel."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fubench.registry import Registry
from fubench.report.figures import method_styles, new_figure, row_style, save_figure, seeds_text
from fubench.report.reader import Result
from fubench.report.style import EDGE, IDEAL_COLOUR, MethodStyles, Style
from fubench.report.sweeps import keep_best_sweep_points
from fubench.report.table import ScenarioTable, aggregate

#: the harness's own measurements (fields of RowInfo) a cost can be a ratio of: the
#: counted work (FLOPs, the same on every machine), plotted by default, and the wall
#: time (on the hardware the row records), added on request
COUNTED, TIMED = "work", "seconds"
COST_WHAT = {
    COUNTED: "counted FLOPs ÷ the gold standard's (the same on every machine)",
    TIMED: "wall time ÷ the gold standard's (depends on the machine)",
}


def cost_chart(
    results: list[Result],
    output: str | Path,
    registry: Registry,
    metric: str | None = None,
    timed: bool = False,
) -> Path:
    """Write the cost figure (see :func:`cost_figure`) to ``output``."""
    return save_figure(cost_figure(results, registry, metric, timed), output)


def cost_figure(
    results: list[Result], registry: Registry, metric: str | None = None, timed: bool = False
) -> Any:
    """Each method's cost relative to the gold standard (``metric``, default the ratio
    of the counted work, work_ratio; mean ± std over seeds) as a dot per row, one panel
    per scenario, every panel on the same log x axis; the gold standard is the line at
    1; swept methods at the point their table shows. ``timed`` adds the ratio of the
    wall time (rtr) as a hollow dot under each row. Raise ValueError for a metric that
    is no such ratio, or when no method has a value."""
    shown = shown_metrics(registry, metric, timed)
    panels = _panels(results, registry, shown[0])
    styles = method_styles(results, registry)
    cols = min(2, len(panels))
    grid_rows = [panels[i : i + cols] for i in range(0, len(panels), cols)]
    heights = [0.45 + (0.3 if timed else 0.22) * max(len(r) for _, r in row) for row in grid_rows]
    fig = new_figure(6.2 * cols, sum(heights) + 1.2, constrained=True)
    axes = fig.subplots(
        len(grid_rows), cols, squeeze=False, sharex=True, gridspec_kw={"height_ratios": heights}
    )
    limits = _cost_limits(panels, shown)
    for ax, (table, rows) in zip(axes.flat, panels):
        _cost_panel(ax, styles, table, rows, shown, limits)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    reference = panels[0][0].reference
    for ax in axes[-1]:  # the shared axis is labelled once per column, under it
        ax.set_xlabel(f"cost relative to {reference} (log scale, shared)")
        ax.xaxis.set_tick_params(labelbottom=True)
    fig.suptitle(_cost_title(shown, reference, registry), fontsize=10)
    fig.legend(
        handles=_cost_legend(shown, reference, _any_zero(panels, shown)),
        loc="outside lower center",
        ncols=4,
        fontsize=8,
        frameon=False,
    )
    return fig


def relative_costs(registry: Registry) -> dict[str, str]:
    """{metric: the raw metric it divides by the gold standard's} of the installed cost
    metrics that are such a ratio (work_ratio, rtr): what this plot can put on its
    axis, with the gold standard at 1."""
    return {
        name: cls.normalises
        for name, cls in sorted(registry.metrics.items())
        if cls.role == "cost" and cls.normalises and cls.normalisation == "ratio"
    }


def shown_metrics(registry: Registry, metric: str | None, timed: bool) -> list[str]:
    """The metrics to plot: ``metric`` (default the ratio of the counted work), then
    with ``timed`` the ratio of the wall time."""
    ratios = relative_costs(registry)
    of = {raw: name for name, raw in ratios.items()}
    metric = metric or of.get(COUNTED)
    if metric is None:
        raise ValueError("no installed cost metric is a ratio of the counted work; use --metric")
    if metric not in ratios:
        raise ValueError(
            f"--metric {metric}: not a cost relative to the gold standard; "
            f"choose one of: {', '.join(ratios)}"
        )
    clock = of.get(TIMED)
    return [metric] + ([clock] if timed and clock and clock != metric else [])


def _panels(
    results: list[Result], registry: Registry, metric: str
) -> list[tuple[ScenarioTable, list[str]]]:
    """(table, its rows with a ``metric`` value) per scenario that has any."""
    panels = []
    for table in aggregate(results, registry):
        keep_best_sweep_points(table, registry)
        rows = [
            label
            for label in table.rows
            if label not in table.references and table.stats(label, metric)
        ]
        if rows:
            panels.append((table, rows))
    if not panels:
        clock = {raw: name for name, raw in relative_costs(registry).items()}.get(TIMED)
        hint = f"; --metric {clock} draws the timed ratio" if clock and clock != metric else ""
        raise ValueError(f"no method has a {metric} value in these results{hint}")
    return panels


def _cost_title(shown: list[str], reference: str, registry: Registry) -> str:
    """What is plotted, in words: which metric each kind of dot is."""
    ratios = relative_costs(registry)

    def what(metric: str) -> str:
        default = f"{ratios[metric]} ÷ the gold standard's"
        return f"{metric} = {COST_WHAT.get(ratios[metric], default)}"

    if len(shown) == 1:
        return (
            f"Cost of unlearning relative to {reference}: {what(shown[0])}; mean ± std over seeds"
        )
    return (
        f"Cost of unlearning relative to {reference}, mean ± std over seeds. "
        f"Filled: {what(shown[0])};\nhollow: {what(shown[1])}"
    )


def _cost_limits(panels: list[tuple[ScenarioTable, list[str]]], shown: list[str]) -> tuple:
    """One log range for every panel: from a decade below the least positive value (or
    its error bar) to a little above the largest (and above 1, the gold standard)."""
    positive, top = [], 1.0
    for table, rows in panels:
        for label in rows:
            for metric in shown:
                stats = table.stats(label, metric)
                if stats and stats[0] > 0:
                    mean, std = stats
                    positive.append(mean - std if mean - std > 0 else mean)
                    top = max(top, mean + std)
    low = 10 ** math.floor(math.log10(min(positive))) if positive else 0.01
    return (low / 1.5, top * 1.6)


def _cost_panel(
    ax: Any,
    styles: MethodStyles,
    table: ScenarioTable,
    rows: list[str],
    shown: list[str],
    limits: tuple[float, float],
) -> None:
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    ax.set_xlim(*limits)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.axvline(1.0, color=IDEAL_COLOUR, linestyle="--", linewidth=1.0, zorder=1)
    for i, label in enumerate(rows):
        for j, metric in enumerate(shown):  # the timed dot just under the counted one
            stats = table.stats(label, metric)
            if stats is not None:
                style = row_style(table, label, styles)
                dot = _cost_dot(ax, i + 0.3 * j, *stats, style, j == 0, limits[0])
                dot.set_gid(f"{metric}:{label}")
    _value_columns(ax, table, rows, shown)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_ylim(len(rows) - 0.5 + 0.3 * (len(shown) - 1), -0.6)  # table order from the top
    ax.grid(axis="x", which="major", alpha=0.3, linewidth=0.6)
    ax.set_title(f"{table.scenario}: {', '.join(shown)} ({seeds_text(table)})", fontsize=9)


def _value_columns(ax: Any, table: ScenarioTable, rows: list[str], shown: list[str]) -> None:
    """The values as a small table right of the panel, one column per metric, so no
    number covers a dot."""
    for j, metric in enumerate(shown):
        at = dict(xycoords=("axes fraction", "data"), textcoords="offset points")
        offset = (6 + 48 * j, 0)
        ax.annotate(metric, (1.0, -0.6), xytext=offset, **at, **_CELL, va="bottom")
        for i, label in enumerate(rows):
            stats = table.stats(label, metric)
            text = "—" if stats is None else "0" if stats[0] <= 0 else f"{stats[0]:.2g}"
            ax.annotate(text, (1.0, i), xytext=offset, **at, **_CELL, va="center")


_CELL = dict(fontsize=7, color="0.2", ha="left", annotation_clip=False)


def _cost_dot(
    ax: Any, y: float, mean: float, std: float, style: Style, filled: bool, low: float
) -> Any:
    """A dot with its ± std bar (filled: the main metric, hollow: the timed one); a
    zero sits on the axis's left edge as an arrow head (a log axis has no place for
    it). Returns the dot's line."""
    look = dict(
        markersize=7 if filled else 6,
        color=style.colour,
        markerfacecolor=style.colour if filled else "white",
        markeredgecolor=EDGE if filled else style.colour,
        markeredgewidth=0.6 if filled else 1.4,
        linestyle="none",
    )
    if mean <= 0:
        (dot,) = ax.plot([low], [y], marker="<", clip_on=False, zorder=5, **look)
        return dot
    lower = min(std, mean - low)  # a bar reaching below the axis stops at its edge
    bars = ax.errorbar(
        [mean],
        [y],
        xerr=[[lower], [std]],
        marker=style.marker,
        capsize=2,
        elinewidth=0.8,
        zorder=4,
        **look,
    )
    return bars.lines[0]


def _any_zero(panels: list[tuple[ScenarioTable, list[str]]], shown: list[str]) -> bool:
    return any(
        (stats := table.stats(label, metric)) is not None and stats[0] <= 0
        for table, rows in panels
        for label in rows
        for metric in shown
    )


def _cost_legend(shown: list[str], reference: str, zero: bool) -> list[Any]:
    """Which dot is which metric, the gold standard's line, and (where one is drawn)
    the mark of a zero."""
    from matplotlib.lines import Line2D

    dot = dict(marker="o", color="0.3", markeredgecolor=EDGE, ls="none")
    kinds = [Line2D([], [], **dot, label=shown[0])]
    if len(shown) > 1:
        kinds.append(Line2D([], [], **dict(dot, markerfacecolor="white"), label=shown[1]))
    kinds.append(Line2D([], [], color=IDEAL_COLOUR, ls="--", label=f"{reference} = 1"))
    if zero:
        kinds.append(Line2D([], [], **dict(dot, marker="<"), label="0 (drawn on the left edge)"))
    return kinds
