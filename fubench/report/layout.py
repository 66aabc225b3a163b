"""Readable scatter plots without extra dependencies: axis limits that an outlier does
not stretch (the outlier is drawn at the edge, with its value), and point labels placed
where they overlap neither each other nor the points."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

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


def place_labels(
    ax: Any,
    labels: list[Label],
    fontsize: float = 7.0,
    obstacles: Iterable[tuple[float, float]] = (),
    avoid: Iterable[tuple[float, float, float, float]] = (),
) -> list[Label]:
    """Annotate ``ax`` with ``labels``, each at the first candidate spot whose box
    overlaps no placed label, no data point (``obstacles`` and the labels' own points),
    no pixel box of ``avoid`` (e.g. the legend) and stays inside the axes; a label that
    finds no spot is left out unless ``always``. Call once the layout and the axis
    limits are final. Returns the labels shown."""
    fig = ax.figure
    scale = fig.dpi / 72.0  # points -> pixels
    char_w, line_h = 0.6 * fontsize * scale, 1.25 * fontsize * scale
    to_px = ax.transData.transform
    box = ax.get_window_extent()
    points = [
        tuple(to_px((x, y))) for x, y in [*obstacles, *((label.x, label.y) for label in labels)]
    ]
    dot = 4 * scale
    taken = [(px - dot, py - dot, px + dot, py + dot) for px, py in points] + list(avoid)
    shown = []
    for label in labels:
        px, py = to_px((label.x, label.y))
        width = char_w * len(label.text)
        chosen = None
        for dx, dy in CANDIDATES:
            left = px + dx * scale - (width if dx < 0 else 0)
            if dx == 0:
                left = px - width / 2
            bottom = py + dy * scale
            rect = (left, bottom, left + width, bottom + line_h)
            inside = (
                rect[0] >= box.x0 and rect[2] <= box.x1 and rect[1] >= box.y0 and rect[3] <= box.y1
            )
            if inside and not any(_overlap(rect, t) for t in taken):
                chosen = (dx, dy), rect
                break
        if chosen is None and label.always:
            chosen = CANDIDATES[0], (px, py, px + width, py + line_h)
        if chosen is None:
            continue
        (dx, dy), rect = chosen
        taken.append(rect)
        label.offset = (dx, dy)
        ha = "right" if dx < 0 else "center" if dx == 0 else "left"
        ax.annotate(
            label.text,
            (label.x, label.y),
            textcoords="offset points",
            xytext=(dx, dy),
            fontsize=fontsize,
            color=label.colour,
            ha=ha,
            va="bottom",
        )
        shown.append(label)
    return shown


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def mark_outliers(
    ax: Any, points: list[tuple[float, float, str, Any]], xname: str, yname: str
) -> list[Label]:
    """Draw every point outside the axis limits as an arrow head on the edge it lies
    beyond; return the labels naming each with its true value (to place with the
    others)."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    labels = []
    for x, y, name, colour in points:
        off_x, off_y = not x0 <= x <= x1, not y0 <= y <= y1
        if not (off_x or off_y):
            continue
        cx, cy = min(max(x, x0), x1), min(max(y, y0), y1)
        marker = (">" if x > x1 else "<") if off_x else ("^" if y > y1 else "v")
        ax.plot(
            [cx],
            [cy],
            marker=marker,
            color=colour,
            markersize=9,
            clip_on=False,
            linestyle="none",
            zorder=5,
        )
        value = ", ".join(
            filter(None, (f"{xname} {x:.3g}" if off_x else "", f"{yname} {y:.3g}" if off_y else ""))
        )
        labels.append(Label(cx, cy, f"{name}: {value} (off the axis)", colour, always=True))
    return labels
