"""One colour and one marker per method, the same in every plot of a board.

A method's style follows from its place among the installed methods (sorted by name),
not from the rows a figure happens to hold, so ``finetune`` looks the same in every
scenario's trade-off plot and in the cost plot. Colours are Paul Tol's "muted" scheme,
designed to stay distinct for colour-blind readers and in print; the original model is
black, the gold standard is drawn as the ideal (a hollow ring with a crosshair, or the
line at 1), not as a coloured row. Markers differ too, so no two rows share a colour
and a marker even where a reader cannot tell the colours apart."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fubench.registry import Registry
from fubench.results import ORIGINAL

#: Paul Tol's muted qualitative scheme (colour-blind safe, nine colours)
MUTED = (
    "#CC6677",  # rose
    "#332288",  # indigo
    "#DDCC77",  # sand
    "#117733",  # green
    "#88CCEE",  # cyan
    "#882255",  # wine
    "#44AA99",  # teal
    "#999933",  # olive
    "#AA4499",  # purple
)
#: one marker per method; "o" is the original's. Ten markers against nine colours: the
#: (colour, marker) pair stays unique for 90 methods
MARKERS = ("s", "^", "D", "v", "P", "X", "<", ">", "p", "h")
ORIGINAL_COLOUR, ORIGINAL_MARKER = "black", "o"
#: the gold standard (the ideal point, the line at 1)
IDEAL_COLOUR = "black"
#: the edge every marker gets, so light colours (sand, cyan) stay visible on white
EDGE = "#222222"


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str


class MethodStyles:
    """Styles of the installed methods (the gold standard excluded) and, after them in
    name order, of ``others``: methods in the results that no installed plugin
    provides."""

    def __init__(self, registry: Registry, others: Iterable[str] = ()):
        reference = registry.reference_name
        installed = sorted(name for name in registry.methods.names() if name != reference)
        extra = sorted(set(others) - set(installed) - {reference, ORIGINAL})
        self._index = {name: i for i, name in enumerate(installed + extra)}

    def of(self, method: str) -> Style:
        if method == ORIGINAL:
            return Style(ORIGINAL_COLOUR, ORIGINAL_MARKER)
        i = self._index.get(method)
        if i is None:  # the gold standard drawn as a row, or a name nobody announced
            return Style(IDEAL_COLOUR, "*")
        return Style(MUTED[i % len(MUTED)], MARKERS[i % len(MARKERS)])


def readable(colour: Any) -> Any:
    """``colour`` for text on white: a light colour (sand, cyan) darkened, keeping its
    hue, so a label in a method's colour can be read."""
    from matplotlib.colors import to_rgb

    if colour is None:
        return None
    r, g, b = to_rgb(colour)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    if luminance <= 0.45:
        return colour
    k = 0.45 / luminance
    return (r * k, g * k, b * k)
