"""``fubench plot tradeoff``: the TIS paper's Figure 1. For every swept method,
normalised utility (NTA) against the normalised forgetting score (NFS, or NFS_MIA where
the scenario has no NFS) over the sweep, as the mean over seeds with ± std error bars
and a shaded ± std band (both in the legend); methods that were not swept appear as
single points, the original model at (0, its utility). Every method keeps its colour
and marker in every plot (:mod:`fubench.report.style`). The ideal, the gold standard's
(1, 1), is a hollow ring under a dashed crosshair, so no point hides behind it.

The axes always hold the ideal; the utility axis spans at least ``MIN_UTILITY_SPAN``
and says "zoomed" (with a break mark) where it does not start at 0. An outlier is drawn
on the axis edge with its value rather than stretching the axes; an error bar cut by
the edge ends in an open arrow head with its end value. Sweep values label the points
where they fit (a sweep's ends always); a utility above 1 gets a line of explanation;
several scenarios make a grid. The axes come from the metrics' declarations (see
:mod:`fubench.report.sweeps`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fubench.registry import Registry
from fubench.report.axes import forgetting_axis, utility_axis
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
    inliers,
    mark_cut_bars,
    mark_outliers,
    mark_zoom,
    place_labels,
    robust_limits,
    widened,
)
from fubench.report.reader import Result
from fubench.report.style import EDGE, IDEAL_COLOUR, MethodStyles, Style
from fubench.report.sweeps import sweep_groups
from fubench.report.table import ScenarioTable, aggregate

#: the least span of the utility axis: a dip of one point of NTA is a tenth of it, so a
#: method a point below the gold standard does not look like a collapse
MIN_UTILITY_SPAN = 0.1


def _sweep_value(sweep: dict[str, Any]) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in sweep.values())


def _curve(
    table: ScenarioTable, rows: dict[str, dict[str, Any]], utility: str, forgetting: str
) -> list[tuple]:
    """(sweep values, x mean, x std, y mean, y std) per point with both metrics, in
    sweep order."""
    points = []
    for label, sweep in sorted(rows.items(), key=lambda item: tuple(item[1].values())):
        x, y = table.stats(label, forgetting), table.stats(label, utility)
        if x is not None and y is not None:
            points.append((sweep, *x, *y))
    return points


def tradeoff(results: list[Result], output: str | Path, registry: Registry) -> Path:
    """Write the trade-off figure (see :func:`tradeoff_figure`) to ``output``."""
    return save_figure(tradeoff_figure(results, registry), output)


def tradeoff_figure(results: list[Result], registry: Registry) -> Any:
    """The trade-off figure of every scenario in ``results`` (one panel each, in a grid
    of up to three columns); raise ValueError when no scenario has a sweep with both
    axes."""
    panels = []
    for table in aggregate(results, registry):
        utility, forgetting = utility_axis(table, registry), forgetting_axis(table, registry)
        groups = sweep_groups(table.results)
        if utility and forgetting and groups:
            panels.append((table, groups, utility, forgetting))
    if not panels:
        raise ValueError(
            "no swept method with a normalised utility and forgetting score in "
            "these results; list several values for a method parameter (e.g. "
            "gamma: [0.1, 0.5])"
        )
    styles = method_styles(results, registry)
    fig, axes = panel_grid(len(panels), 5.6)
    labelled = [(ax, _panel(ax, styles, *panel)) for ax, panel in zip(axes, panels)]
    fig.tight_layout()  # labels are placed in the final pixel layout
    for ax, (labels, obstacles) in labelled:
        place_labels(ax, labels, obstacles=obstacles, avoid=[_ideal_box(ax)])
    return fig


#: the ideal's ring, in points (its diameter)
IDEAL_RING = 13


def _panel(
    ax: Any,
    styles: MethodStyles,
    table: ScenarioTable,
    groups: dict[str, dict[str, dict[str, Any]]],
    utility: str,
    forgetting: str,
) -> tuple[list[Label], list[tuple[float, float]]]:
    """Draw one scenario's curves; return the labels to place once the layout is
    final, and the points they must not cover."""
    points: list[Point] = []
    labels: list[Label] = []
    handles: list[Any] = []
    for method, rows in sorted(groups.items()):
        curve = _curve(table, rows, utility, forgetting)
        if curve:
            handles.append(_draw_sweep(ax, method, curve, styles.of(method), points, labels))
    original, reference = table.references
    swept = {label for rows in groups.values() for label in rows}
    for label in table.rows:  # unswept methods and the original as single points
        if label in swept or label == reference:
            continue
        x = (0.0, 0.0) if label == original else table.stats(label, forgetting)
        y = table.stats(label, utility)
        if x is not None and y is not None:
            point = Point(x[0], y[0], x[1], y[1], label, row_style(table, label, styles).colour)
            handles.append(_draw_point(ax, point, row_style(table, label, styles)))
            points.append(point)
    handles.append(_draw_ideal(ax, reference))
    _set_limits(ax, points)
    f_name, u_name = forgetting.upper(), utility.upper()
    outliers = mark_outliers(ax, points, f_name, u_name)
    cut = mark_cut_bars(ax, points)
    ax.set_title(
        f"{table.scenario}: trade-off over {_swept_names(groups)} ({seeds_text(table)})",
        fontsize=10,
    )
    ax.set_xlabel(f"{f_name} (forgetting, 1 = as {reference})")
    ax.set_ylabel(f"{u_name} (utility, 1 = as {reference})")
    mark_zoom(ax, "x")
    mark_zoom(ax, "y")
    ax.grid(alpha=0.25, linewidth=0.6)
    handles += _legend_notes(
        u_name, band=len(table.seeds) > 1, outliers=bool(outliers), cut=bool(cut)
    )
    # beside the axes, so it hides no point and no label
    ax.legend(
        [handle for handle, _ in handles],
        [name for _, name in handles],
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0,
        handlelength=2.4,
    )
    if _above_one(points):
        ax.annotate(
            above_one_note(utility, reference),
            (0, 0),
            xycoords="axes fraction",
            xytext=(0, -48),
            textcoords="offset points",
            fontsize=7,
            va="top",
            color="dimgrey",
        )
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    inside = [(p.x, p.y) for p in points if x0 <= p.x <= x1 and y0 <= p.y <= y1]
    shown = [label for label in labels if x0 <= label.x <= x1 and y0 <= label.y <= y1]
    return outliers + cut + shown, inside


def _swept_names(groups: dict[str, dict[str, dict[str, Any]]]) -> str:
    return ", ".join(sorted({k for rows in groups.values() for s in rows.values() for k in s}))


def _marker_style(style: Style) -> dict[str, Any]:
    return dict(
        color=style.colour,
        marker=style.marker,
        markersize=7,
        markeredgecolor=EDGE,
        markeredgewidth=0.6,
        capsize=2.5,
        elinewidth=0.9,
        zorder=4,
    )


def _draw_sweep(
    ax: Any,
    method: str,
    curve: list[tuple],
    style: Style,
    points: list[Point],
    labels: list[Label],
) -> Any:
    """A swept method's curve with error bars and its ± std band; the legend handle
    shows both."""
    from matplotlib.patches import Patch

    sweeps, xs, sx, ys, sy = zip(*curve)
    bars = ax.errorbar(xs, ys, xerr=sx, yerr=sy, linewidth=1.4, **_marker_style(style))
    bars.lines[0].set_gid(f"row:{method}")  # what tests and scripts can find it by
    upper = [y + s for y, s in zip(ys, sy)]
    lower = [y - s for y, s in zip(ys, sy)]
    handle: Any = bars
    if any(sy):
        ax.fill(
            list(xs) + list(xs[::-1]),
            upper + lower[::-1],
            color=style.colour,
            alpha=0.18,
            linewidth=0,
            zorder=2,
        )
        handle = (Patch(facecolor=style.colour, alpha=0.18, linewidth=0), bars)
    for i, (sweep, x, y, dx, dy) in enumerate(zip(sweeps, xs, ys, sx, sy)):
        # every point gets a label where there is room; a sweep's ends always do
        text = _sweep_value(sweep)
        labels.append(Label(x, y, text, style.colour, always=i in (0, len(xs) - 1)))
        points.append(Point(x, y, dx, dy, f"{method} {text}", style.colour))
    return _named(handle, f"{method} (swept)")


def _draw_point(ax: Any, point: Point, style: Style) -> Any:
    bars = ax.errorbar(
        [point.x],
        [point.y],
        xerr=[point.sx],
        yerr=[point.sy],
        linestyle="none",
        **_marker_style(style),
    )
    bars.lines[0].set_gid(f"row:{point.name}")
    return _named(bars, point.name)


def _named(handle: Any, name: str) -> tuple[Any, str]:
    """(legend handle, its text): a handle may be a tuple of artists drawn on top of
    each other (a band under its curve), so it cannot carry its own label."""
    return (handle, name)


def _draw_ideal(ax: Any, reference: str) -> Any:
    """The ideal (1, 1) as a hollow ring under a dashed crosshair, beneath every point."""
    for line in (ax.axhline, ax.axvline):
        line(1.0, color=IDEAL_COLOUR, linewidth=0.7, linestyle=(0, (4, 3)), alpha=0.6, zorder=1)
    (ring,) = ax.plot(
        [1.0],
        [1.0],
        marker="o",
        markersize=IDEAL_RING,
        markerfacecolor="none",
        markeredgecolor=IDEAL_COLOUR,
        markeredgewidth=1.3,
        linestyle="none",
        zorder=3,
    )
    return _named(ring, f"{reference}: the ideal (1, 1)")


def _ideal_box(ax: Any) -> tuple[float, float, float, float]:
    """The ideal's ring in pixels, for the label placer to keep clear of."""
    px, py = ax.transData.transform((1.0, 1.0))
    r = IDEAL_RING / 2 * ax.figure.dpi / 72.0
    return (px - r, py - r, px + r, py + r)


def _legend_notes(utility: str, band: bool, outliers: bool, cut: bool) -> list[Any]:
    """Legend entries that explain the drawing rather than name a row."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    notes = []
    if band:
        shade = Patch(facecolor="0.55", alpha=0.3, linewidth=0)
        notes.append(_named(shade, f"band: {utility} ± std over seeds"))
    if outliers:
        arrow = Line2D([], [], marker=">", color="0.3", linestyle="none", markersize=8)
        notes.append(_named(arrow, "point beyond the axis (value named)"))
    if cut:
        tip = Line2D(
            [], [], marker=">", markerfacecolor="white", color="0.3", ls="none", markersize=6
        )
        notes.append(_named(tip, "error bar cut by the axis (its end named)"))
    return notes


def _set_limits(ax: Any, points: list[Point]) -> None:
    """Limits that hold the ideal, the points and their error bars, unless an outlier
    would squeeze everyone else into a corner (it is drawn on the edge instead)."""
    ax.set_xlim(*robust_limits(_with_bars(points, "x"), anchors=(0.0, 1.0)))
    y = robust_limits(_with_bars(points, "y"), anchors=(1.0,))
    ax.set_ylim(*widened(y, MIN_UTILITY_SPAN))


def _with_bars(points: list[Point], axis: str) -> list[float]:
    """The means that are no outliers, and the ends of their error bars."""
    means = [getattr(p, axis) for p in points]
    kept = set(inliers(means))
    values = []
    for p in points:
        mean, std = getattr(p, axis), getattr(p, "s" + axis)
        if mean in kept:
            values += [mean, mean - std, mean + std]
    return values


#: a utility above this (and above 1 by more than its spread over seeds) gets the note
ABOVE_ONE = 1.01


def _above_one(points: list[Point]) -> bool:
    return any(p.y > ABOVE_ONE and p.y - p.sy > 1.0 for p in points)


def above_one_note(utility: str, reference: str) -> str:
    """Why a normalised utility can exceed 1 (it reads as "better than the gold standard")."""
    return (
        f"{utility.upper()} above 1: more test accuracy than {reference}, which never "
        f"trained on the forgotten data.\nWhere that is a whole class still in the test "
        f"set, {reference} cannot predict it,\nso a model that still does scores above 1."
    )
