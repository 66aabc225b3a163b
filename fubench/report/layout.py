"""Readable scatter plots without extra dependencies: axis limits that an outlier does
not stretch (the outlier is drawn at the edge, with its value), error bars cut by the
axes marked where they leave, a note and a break mark on an axis that does not start
at 0, and point labels placed where they overlap neither each other nor the points."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fubench.report.style import EDGE, readable

#: a value beyond the quartiles by more than this many interquartile ranges is an
#: outlier (Tukey's fences, a little wider than his 1.5)
OUTLIER_SPREADS = 2.0
#: the smallest interquartile range assumed (normalised metrics live on a scale of
#: about 1), so that points bunched at one value do not make their neighbours outliers
MIN_SPREAD = 0.15


def robust_limits(
    values: Iterable[float], anchors: Iterable[float] = (), pad: float = 0.08
) -> tuple[float, float]:
    """Axis limits covering ``anchors`` and every value that is not an outlier (see
    :func:`inliers`), padded by ``pad`` of the span on each side."""
    values = [float(v) for v in values]
    anchors = [float(a) for a in anchors]
    everything = inliers(values) + anchors or [0.0, 1.0]
    lo, hi = min(everything), max(everything)
    margin = pad * (hi - lo) if hi > lo else 0.1
    return lo - margin, hi + margin


def inliers(values: list[float]) -> list[float]:
    """``values`` without the outliers: those beyond the quartiles by more than
    ``OUTLIER_SPREADS`` interquartile ranges (at least ``MIN_SPREAD``)."""
    if len(values) < 3:
        return list(values)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    reach = OUTLIER_SPREADS * max(q3 - q1, MIN_SPREAD)
    return [v for v in values if q1 - reach <= v <= q3 + reach]


def widened(limits: tuple[float, float], span: float) -> tuple[float, float]:
    """``limits`` spanning at least ``span``, widened downwards (a utility axis: the
    top holds the ideal 1, the room is needed below it), so that a dip of a point
    or two does not fill the whole axis."""
    lo, hi = limits
    return (min(lo, hi - span), hi)


def mark_zoom(ax: Any, axis: str, floor: float = 0.0) -> str | None:
    """When the ``axis`` ("x" or "y") does not reach down to ``floor`` (the metric's
    natural start), say so in its label and draw a break mark on the axis line where
    it starts; return the note (None when the axis is not zoomed)."""
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    if lo <= floor:
        return None
    note = f"zoomed: {lo:.3g}–{hi:.3g}, not from {floor:g}"
    if axis == "y":
        ax.set_ylabel(f"{ax.get_ylabel()}\n({note})")
    else:
        ax.set_xlabel(f"{ax.get_xlabel()}\n({note})")
    _break_mark(ax, axis)
    return note


def _break_mark(ax: Any, axis: str) -> None:
    """The "//" of a broken axis, across the axis line near its start."""
    size, gap = 0.012, 0.018
    for at in (0.03, 0.03 + gap):
        if axis == "y":
            xs, ys = (-size, size), (at - size, at + size)
        else:
            xs, ys = (at - size, at + size), (-size, size)
        ax.plot(xs, ys, transform=ax.transAxes, color="black", lw=1.0, clip_on=False, zorder=6)


@dataclass
class Point:
    """A drawn point: means and stds (its error bars) in data units, what it is."""

    x: float
    y: float
    sx: float
    sy: float
    name: str
    colour: Any = None


@dataclass
class Label:
    """A text to put next to the data point (x, y); ``always``: shown even where no
    free spot is found (e.g. the ends of a sweep)."""

    x: float
    y: float
    text: str
    colour: Any = None
    always: bool = False
    offset: tuple[float, float] | None = None  # points from the data point, once placed


#: where a label may go, in points from its data point (right, left, above, below...)
CANDIDATES = (
    (5, 4),
    (5, -11),
    (-5, 4),
    (-5, -11),
    (0, 9),
    (0, -17),
    (10, 14),
    (10, -21),
    (-10, 14),
    (-10, -21),
    (16, -3),
    (-16, -3),
)
#: farther spots, tried when the near ones are taken; a line leads back to the point
FAR = tuple(
    (dx * r, dy * r - 3)
    for r in (22, 34, 48)
    for dx, dy in ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0))
)


def place_labels(
    ax: Any,
    labels: list[Label],
    fontsize: float = 7.0,
    obstacles: Iterable[tuple[float, float]] = (),
    avoid: Iterable[tuple[float, float, float, float]] = (),
) -> list[Label]:
    """Annotate ``ax`` with ``labels``, each at the first candidate spot whose box
    overlaps no placed label (with its leader line), no data point (``obstacles`` and
    the labels' own points), no pixel box of ``avoid`` (e.g. the ideal's marker) and
    stays inside the axes: near the point first, then farther with a leader line. The
    ``always`` labels choose first; another label that finds no spot is left out. Call
    once the layout and the axis limits are final. Returns the labels shown."""
    fig = ax.figure
    scale = fig.dpi / 72.0  # points -> pixels
    char_w, line_h = 0.6 * fontsize * scale, 1.25 * fontsize * scale
    to_px = ax.transData.transform
    box = ax.get_window_extent()
    points = [
        tuple(to_px((x, y))) for x, y in [*obstacles, *((label.x, label.y) for label in labels)]
    ]
    dot = 4 * scale
    blocked = [(px - dot, py - dot, px + dot, py + dot) for px, py in points] + list(avoid)
    placed: list[tuple[float, float, float, float]] = []  # labels with their leader lines
    shown = []
    for label in sorted(labels, key=lambda label: not label.always):
        px, py = to_px((label.x, label.y))
        width = char_w * len(label.text)
        chosen = None
        for dx, dy in CANDIDATES + FAR:
            rect = _box(px, py, dx * scale, dy * scale, width, line_h)
            whole = rect if (dx, dy) in CANDIDATES else _union(rect, (px, py, px, py))
            inside = (
                rect[0] >= box.x0 and rect[2] <= box.x1 and rect[1] >= box.y0 and rect[3] <= box.y1
            )
            if (
                inside
                and not any(_overlap(rect, t) for t in blocked)
                and not any(_overlap(whole, t) for t in placed)
            ):
                chosen = (dx, dy), whole
                break
        if chosen is None and label.always:  # shown anyway, where it reads best
            dx, dy = CANDIDATES[0]
            chosen = (dx, dy), _box(px, py, dx * scale, dy * scale, width, line_h)
        if chosen is None:
            continue
        (dx, dy), whole = chosen
        placed.append(whole)
        label.offset = (dx, dy)
        ha = "right" if dx < 0 else "center" if dx == 0 else "left"
        far = (dx, dy) not in CANDIDATES
        ax.annotate(
            label.text,
            (label.x, label.y),
            textcoords="offset points",
            xytext=(dx, dy),
            fontsize=fontsize,
            color=readable(label.colour),
            ha=ha,
            va="bottom",
            # a light backing keeps the text readable where it crosses a line or a band
            bbox=dict(boxstyle="square,pad=0.05", facecolor="white", edgecolor="none", alpha=0.7),
            zorder=8,
            arrowprops=dict(arrowstyle="-", lw=0.5, color=readable(label.colour), shrinkB=3)
            if far
            else None,
        )
        shown.append(label)
    return shown


def _union(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float, float]:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _box(
    px: float, py: float, dx: float, dy: float, width: float, height: float
) -> tuple[float, float, float, float]:
    """The pixel box of a text of ``width`` × ``height`` at offset (dx, dy) from (px,
    py), aligned as :func:`place_labels` aligns it (left of the point: right-aligned)."""
    left = px - width / 2 if dx == 0 else px + dx - (width if dx < 0 else 0)
    return (left, py + dy, left + width, py + dy + height)


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def mark_outliers(ax: Any, points: list[Point], xname: str, yname: str) -> list[Label]:
    """Draw every point outside the axis limits as an arrow head on the edge it lies
    beyond; return the labels naming each with its true value (to place with the
    others)."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    labels = []
    for p in points:
        off_x, off_y = not x0 <= p.x <= x1, not y0 <= p.y <= y1
        if not (off_x or off_y):
            continue
        cx, cy = min(max(p.x, x0), x1), min(max(p.y, y0), y1)
        marker = (">" if p.x > x1 else "<") if off_x else ("^" if p.y > y1 else "v")
        _edge_marker(ax, cx, cy, marker, p.colour, 9)
        value = ", ".join(
            filter(
                None,
                (f"{xname} {p.x:.3g}" if off_x else "", f"{yname} {p.y:.3g}" if off_y else ""),
            )
        )
        labels.append(Label(cx, cy, f"{p.name}: {value} (off the axis)", p.colour, always=True))
    return labels


def mark_cut_bars(ax: Any, points: list[Point]) -> list[Label]:
    """For every point inside the axes whose error bar (mean ± std) runs past an
    edge, a small open arrow head where the bar leaves, and a label with the bar's end
    value (to place with the others)."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    labels = []
    for p in points:
        if not (x0 <= p.x <= x1 and y0 <= p.y <= y1):
            continue  # an outlier: marked by mark_outliers
        ends = (  # (its value, beyond the edge?, where it leaves, marker, arrow)
            (p.x - p.sx, p.x - p.sx < x0, (x0, p.y), "<", "←"),
            (p.x + p.sx, p.x + p.sx > x1, (x1, p.y), ">", "→"),
            (p.y - p.sy, p.y - p.sy < y0, (p.x, y0), "v", "↓"),
            (p.y + p.sy, p.y + p.sy > y1, (p.x, y1), "^", "↑"),
        )
        for value, cut, (cx, cy), marker, arrow in ends:
            if cut:
                _edge_marker(ax, cx, cy, marker, p.colour, 6, hollow=True)
                labels.append(Label(cx, cy, f"{arrow}{value:.3g}", p.colour, always=True))
    return labels


def _edge_marker(
    ax: Any, x: float, y: float, marker: str, colour: Any, size: float, hollow: bool = False
) -> None:
    ax.plot(
        [x],
        [y],
        marker=marker,
        color=colour,
        markerfacecolor="white" if hollow else colour,
        markeredgecolor=colour if hollow else EDGE,
        markeredgewidth=1.2 if hollow else 0.6,
        markersize=size,
        clip_on=False,
        linestyle="none",
        zorder=7,
    )
