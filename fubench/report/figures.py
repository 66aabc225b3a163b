"""What every plot of fubench shares: figures built outside pyplot (no display,
nothing left open), written by one function, and the method styles of a board."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fubench.registry import Registry
from fubench.report.reader import Result
from fubench.report.style import MethodStyles, Style
from fubench.report.table import ScenarioTable


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_figure(width: float, height: float, constrained: bool = False) -> Any:
    """A matplotlib Figure on the Agg canvas, outside pyplot (nothing to close)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def panel_grid(panels: int, panel_height: float) -> tuple[Any, list[Any]]:
    """A figure of ``panels`` axes, at most three a row (the spare cells hidden): the
    figure and the axes in reading order."""
    cols = min(3, panels)
    rows = -(-panels // cols)
    fig = new_figure(7.8 * cols, panel_height * rows)
    axes = list(fig.subplots(rows, cols, squeeze=False).flat)
    for ax in axes[panels:]:
        ax.set_visible(False)
    return fig, axes[:panels]


def save_figure(fig: Any, output: str | Path, dpi: int = 130) -> Path:
    """Write a figure as laid out by its builder (creating the folder); return its
    path. Whatever sits outside the axes (legends, notes) is kept in the image."""
    output = Path(output)
    if not output.suffix:  # what matplotlib would write: say the name it gets
        output = output.with_suffix(".png")
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=dpi, bbox_inches="tight", pad_inches=0.1)
    return output


def method_styles(results: list[Result], registry: Registry) -> MethodStyles:
    """The styles of every method installed or named in ``results``."""
    named = {row.get("method") or label for r in results for label, row in r["methods"].items()}
    return MethodStyles(registry, named)


def row_style(table: ScenarioTable, label: str, styles: MethodStyles) -> Style:
    original, _ = table.references
    return styles.of(label if label == original else table.method_of(label))


def seeds_text(table: ScenarioTable) -> str:
    """``3 seeds, mean ± std`` (a single seed has no spread: ``1 seed``)."""
    seeds = len(table.seeds)
    return f"{seeds} seeds, mean ± std" if seeds > 1 else "1 seed"
