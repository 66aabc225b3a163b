"""Plots of stored results (matplotlib, Agg backend: no display needed).

``tradeoff`` draws the TIS paper's Figure 1: for every swept method, normalised utility
(NTA) against the normalised forgetting score (NFS, or NFS_MIA where the scenario has no
NFS) over the sweep, as the mean over seeds with ± std error bars and a shaded ± std
band; the gold standard sits at (1, 1) and the original model at (its utility, 0).
Methods that were not swept appear as single points. Sweep values label the points where
they fit (a sweep's ends always); an outlier is drawn on the axis edge with its value
rather than stretching the axes; a utility above 1 gets a line of explanation; several
scenarios make a grid. ``cost_chart`` draws each method's
cost relative to the gold standard (rtr by default). The axes come from the metrics'
declarations (see :mod:`fubench.report.sweeps`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fubench.registry import Registry
from fubench.report.layout import Label, mark_outliers, place_labels, robust_limits
from fubench.report.reader import Result
from fubench.report.sweeps import (
    forgetting_axis,
    keep_best_sweep_points,
    sweep_groups,
    utility_axis,
)
from fubench.report.table import ScenarioTable, aggregate, metric_class


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, output: str | Path, dpi: int = 130) -> Path:
    """Lay out, write (creating the folder) and close a figure; return its path."""
    plt = pyplot()
    fig.tight_layout()
    output = Path(output)
    if not output.suffix:  # what matplotlib would write: say the name it gets
        output = output.with_suffix(".png")
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=dpi)
    plt.close(fig)
    return output


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
    """Write the trade-off figure of every scenario in ``results`` (one panel each, in a
    grid of up to three columns) to ``output``; raise ValueError when no scenario has a
    sweep with both axes."""
    return save_figure(tradeoff_figure(results, registry), output)


def tradeoff_figure(results: list[Result], registry: Registry) -> Any:
    """The trade-off figure (see :func:`tradeoff`), not yet written."""
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
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = pyplot().subplots(rows, cols, figsize=(8.0 * cols, 5.8 * rows), squeeze=False)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    labelled = [(ax, _panel(ax, *panel)) for ax, panel in zip(axes.flat, panels)]
    fig.tight_layout()  # labels are placed in the final pixel layout
    for ax, (labels, obstacles) in labelled:
        place_labels(ax, labels, obstacles=obstacles)
    return fig


def _panel(
    ax: Any,
    table: ScenarioTable,
    groups: dict[str, dict[str, dict[str, Any]]],
    utility: str,
    forgetting: str,
) -> tuple[list[Label], list[tuple[float, float]]]:
    """Draw one scenario's curves; return the sweep labels to place once the layout is
    final, and the points they must not cover."""
    swept_labels = {label for rows in groups.values() for label in rows}
    labels: list[Label] = []
    drawn: list[tuple[float, float, str, Any]] = []  # (x, y, name, colour)
    lowest: list[float] = []  # utility mean − std per point
    for method, rows in sorted(groups.items()):
        points = _curve(table, rows, utility, forgetting)
        if not points:
            continue
        sweeps, xs, sx, ys, sy = zip(*points)
        line = ax.errorbar(xs, ys, xerr=sx, yerr=sy, marker="o", capsize=3, label=method)
        colour = line[0].get_color()
        upper = [y + s for y, s in zip(ys, sy)]
        lower = [y - s for y, s in zip(ys, sy)]
        ax.fill(
            list(xs) + list(xs[::-1]), upper + lower[::-1], color=colour, alpha=0.15, linewidth=0
        )
        for i, (sweep, x, y) in enumerate(zip(sweeps, xs, ys)):
            # every point gets a label where there is room; a sweep's ends always do
            labels.append(Label(x, y, _sweep_value(sweep), colour, always=i in (0, len(xs) - 1)))
            drawn.append((x, y, f"{method} {_sweep_value(sweep)}", colour))
        lowest += [y - s for y, s in zip(ys, sy)]
    original, reference = table.references
    for label in table.rows:  # unswept methods and the original as single points
        if label in swept_labels or label == reference:
            continue
        x = (0.0, 0.0) if label == original else table.stats(label, forgetting)
        y = table.stats(label, utility)
        if x is not None and y is not None:
            line = ax.errorbar(
                [x[0]],
                [y[0]],
                xerr=[x[1]],
                yerr=[y[1]],
                marker="s",
                linestyle="none",
                capsize=3,
                label=label,
                color="grey" if label == original else None,
            )
            drawn.append((x[0], y[0], label, line[0].get_color()))
            lowest.append(y[0] - y[1])
    ax.plot(
        [1.0],
        [1.0],
        marker="x",
        color="red",
        markersize=12,
        mew=3,
        linestyle="none",
        label=f"{reference} (1, 1)",
    )
    # an outlier (e.g. NFS 3.5) must not squeeze everyone else into a corner: it is
    # drawn on the edge with its value instead
    ax.set_xlim(*robust_limits([d[0] for d in drawn], anchors=(0.0, 1.0)))
    ax.set_ylim(*robust_limits([d[1] for d in drawn], anchors=(1.0,)))
    outliers = mark_outliers(ax, drawn, forgetting.upper(), utility.upper())
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    inside = [(x, y) for x, y, _, _ in drawn if x0 <= x <= x1 and y0 <= y <= y1]
    swept = ", ".join(sorted({k for rows in groups.values() for s in rows.values() for k in s}))
    ax.set_title(f"{table.scenario}: trade-off over {swept} ({seeds_text(table)})", fontsize=10)
    ax.set_xlabel(f"{forgetting.upper()} (forgetting, 1 = as {reference})")
    ax.set_ylabel(f"{utility.upper()} (utility, 1 = as {reference})")
    ax.grid(alpha=0.3)
    # beside the axes, so it hides no point and no label
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if any(low > 1.0 and y > ABOVE_ONE for low, (_, y, _, _) in zip(lowest, drawn)):
        ax.annotate(
            above_one_note(utility, reference),
            (0, 0),
            xycoords="axes fraction",
            xytext=(0, -34),
            textcoords="offset points",
            fontsize=7,
            va="top",
            color="dimgrey",
        )
    return outliers + [
        label for label in labels if x0 <= label.x <= x1 and y0 <= label.y <= y1
    ], inside


#: a utility above this (and above 1 by more than its spread over seeds) gets the note
ABOVE_ONE = 1.01


def above_one_note(utility: str, reference: str) -> str:
    """Why a normalised utility can exceed 1 (it reads as "better than the gold standard")."""
    return (
        f"{utility.upper()} above 1: more test accuracy than {reference}, which never "
        f"trained on the forgotten data.\nWhere that is a whole class still in the test "
        f"set, {reference} cannot predict it,\nso a model that still does scores above 1."
    )


def seeds_text(table: ScenarioTable) -> str:
    """``3 seeds, mean ± std`` (a single seed has no spread: ``1 seed``)."""
    seeds = len(table.seeds)
    return f"{seeds} seeds, mean ± std" if seeds > 1 else "1 seed"


# ------------------------------------------------------------------------ cost bars


def cost_metric(table: ScenarioTable, registry: Registry) -> str | None:
    """The table's cost relative to the gold standard (a ratio-normalised cost metric)."""
    for metric in table.metrics:
        cls = metric_class(metric, registry)
        if (
            cls is not None
            and cls.role == "cost"
            and cls.normalises
            and cls.normalisation == "ratio"
        ):
            return metric
    return None


def cost_chart(
    results: list[Result], output: str | Path, registry: Registry, metric: str | None = None
) -> Path:
    """Horizontal bars of each method's cost relative to the gold standard (``metric``,
    default the table's ratio-normalised cost metric, e.g. rtr; mean ± std over seeds),
    one panel per scenario, swept methods at the point their table shows, the gold
    standard as the line at 1; raise ValueError when no method has a value."""
    panels = []
    for table in aggregate(results, registry):
        keep_best_sweep_points(table, registry)
        shown = metric or cost_metric(table, registry)
        bars = [
            (label, *table.stats(label, shown))
            for label in sorted(table.rows)
            if shown and label not in table.references and table.stats(label, shown)
        ]
        if bars:
            panels.append((table, bars, shown))
    if not panels:
        raise ValueError(
            f"no method has a {metric or 'relative cost (e.g. rtr)'} value in these results"
        )
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    height = max(2.6, 1.2 + 0.45 * max(len(b) for _, b, _ in panels))
    fig, axes = pyplot().subplots(rows, cols, squeeze=False, figsize=(7.0 * cols, height * rows))
    for ax, panel in zip(axes.flat, panels):
        _cost_panel(ax, *panel)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    return save_figure(fig, output)


def _cost_panel(
    ax: Any, table: ScenarioTable, bars: list[tuple[str, float, float]], metric: str
) -> None:
    labels, means, stds = zip(*bars)
    ys = range(len(labels))
    ax.barh(ys, means, xerr=stds, capsize=3, color="tab:blue", height=0.6)
    ax.set_yticks(list(ys), labels, fontsize=8)
    ax.set_ylim(max(len(labels), 3) - 0.5, -0.5)  # alphabetical from the top; thin bars
    ax.axvline(1.0, color="red", linestyle="--", label=f"{table.reference} = 1")
    for y, m, s in zip(ys, means, stds):  # the value just right of its error bar
        ax.annotate(f"{m:.2g}", (m + s, y), textcoords="offset points", xytext=(4, 5), fontsize=7)
    # costs often span orders of magnitude (a reset vs. a fine-tune)
    positive = [m for m in means if m > 0]
    if positive and max(max(positive), 1.0) / min(positive) > 50:
        ax.set_xscale("log")
    else:  # room for the value labels
        ax.set_xlim(0, 1.15 * max(1.0, *(m + s for m, s in zip(means, stds))))
    ax.set_title(f"{table.scenario}: {metric} ({seeds_text(table)})", fontsize=10)
    ax.set_xlabel(f"{metric} (relative to {table.reference}; lower is cheaper)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
