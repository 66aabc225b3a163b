"""The plots read back from their matplotlib figures: one colour and marker per method
in every plot, the ideal drawn and inside the axes, zoomed axes said, values beyond the
axes marked, the band in the legend; the cost plot on one shared work_ratio axis;
attention maps with a colour bar, class names, the trigger outlined, the colour kept
for a feature that is no region; and the CLI writes real PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fubench.report.attention import (
    HEAT,
    Column,
    attention_figure,
    attention_title,
    columns,
    gradcam,
    outline_box,
    pick_images,
    shares,
)
from fubench.report.cost_plot import cost_figure
from fubench.report.plots import tradeoff_figure
from tests.conftest import run_cli
from tests.resultfiles import write
from tests.test_leaderboard import result, row, two_scenarios

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def registry():
    from fubench.plugins import get_registry

    return get_registry()


def drawn(path: Path) -> np.ndarray:
    """The image's RGB pixels, after checking it is a PNG with more than a blank canvas."""
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)[..., :3]
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50, "the figure is (nearly) empty"
    return pixels


def spread_results(points: dict[str, tuple], scenario: str = "s") -> list[dict]:
    """Two seeds of rows label -> (nta, nfs[, nta spread, nfs spread[, work_ratio]]):
    seed 0 at value - spread, seed 1 at value + spread (std = spread·√2)."""
    results = []
    for seed, sign in ((0, -1.0), (1, 1.0)):
        methods = {}
        for label, values in {
            "original": (1.0, 0.0, 0.0, 0.0, 1.1),
            **points,
            "retrain": (1.0, 1.0, 0.0, 0.0, 1.0),
        }.items():
            nta, nfs, d_nta, d_nfs, work = (*values, *(0.0, 0.0, 0.5)[len(values) - 2 :])
            name, _, rest = label.partition("[gamma=")
            sweep = {"gamma": float(rest[:-1])} if rest else {}
            methods[label] = {
                "method": name,
                "params": dict(sweep),
                "sweep": sweep,
                "metrics": {
                    "nta": nta + sign * d_nta,
                    "nfs": nfs + sign * d_nfs,
                    "work_ratio": work,
                    "rtr": 2 * work,
                },
                "status": "ok",
            }
        results.append(
            {
                "schema": 1,
                "scenario": {"name": scenario, "kind": "backdoor", "version": 1},
                "seed": seed,
                "dataset": {"source": "synthetic"},
                "methods": methods,
                "warnings": [],
            }
        )
    return results


BOARD = {
    "tis_reset[gamma=0.1]": (0.99, 0.3, 0.004, 0.05),
    "tis_reset[gamma=0.5]": (0.97, 0.9, 0.004, 0.05),
    "random_reset[gamma=0.1]": (0.99, 0.05),
    "random_reset[gamma=0.5]": (0.96, 0.2),
    "finetune": (0.995, 0.1),
    "fedcdp": (0.98, 0.6),
    "ferrari": (0.99, 0.95),
}


def row_lines(ax) -> dict[str, tuple]:
    """{row: (colour, marker)} of the rows drawn in ``ax`` (their data lines)."""
    from matplotlib.colors import to_hex

    return {
        line.get_gid().split(":", 1)[1]: (to_hex(line.get_color()), line.get_marker())
        for line in ax.lines
        if (line.get_gid() or "").startswith("row:")
    }


# ------------------------------------------------------------------------ trade-off
def test_every_row_has_its_own_colour_and_marker_the_same_in_every_plot():
    fig = tradeoff_figure(spread_results(BOARD), registry())
    styles = row_lines(fig.axes[0])
    assert set(styles) == {"original", "tis_reset", "random_reset", "finetune", "fedcdp", "ferrari"}
    colours = [c for c, _ in styles.values()]
    markers = [m for _, m in styles.values()]
    assert len(set(colours)) == len(colours) and len(set(markers)) == len(markers)
    # another scenario with fewer methods: finetune and ferrari look the same there
    other = tradeoff_figure(
        spread_results(
            {
                "tis_reset[gamma=0.1]": (0.9, 0.5),
                "tis_reset[gamma=0.5]": (0.8, 0.9),
                "ferrari": (0.9, 0.9),
                "finetune": (0.99, 0.1),
            },
            scenario="t",
        ),
        registry(),
    )
    again = row_lines(other.axes[0])
    for method in ("finetune", "ferrari", "tis_reset", "original"):
        assert again[method] == styles[method], method


def test_the_ideal_is_inside_the_axes_beneath_the_points():
    # every point far from (1, 1): the axes still hold the ideal
    fig = tradeoff_figure(
        spread_results({"tis_reset[gamma=0.1]": (0.3, 0.1), "tis_reset[gamma=0.5]": (0.2, 0.2)}),
        registry(),
    )
    ax = fig.axes[0]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 < 1.0 < x1 and y0 < 1.0 < y1
    ring = next(line for line in ax.lines if line.get_markerfacecolor() == "none")
    assert list(ring.get_xydata()[0]) == [1.0, 1.0]
    points = [line for line in ax.lines if (line.get_gid() or "").startswith("row:")]
    assert all(line.get_zorder() > ring.get_zorder() for line in points), "nothing hides below"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "retrain: the ideal (1, 1)" in legend


def test_a_zoomed_utility_axis_says_so_and_spans_a_tenth():
    fig = tradeoff_figure(spread_results(BOARD), registry())
    ax = fig.axes[0]
    y0, y1 = ax.get_ylim()
    assert y0 > 0 and y1 - y0 >= 0.1 - 1e-9, "a one-point dip does not fill the axis"
    assert "zoomed" in ax.get_ylabel() and f"{y0:.3g}" in ax.get_ylabel()
    assert "zoomed" not in ax.get_xlabel(), "NFS starts at 0"
    # utilities down to 0: the axis starts at 0 and says nothing
    full = tradeoff_figure(
        spread_results({"tis_reset[gamma=0.1]": (0.9, 0.5), "tis_reset[gamma=0.5]": (0.02, 0.9)}),
        registry(),
    )
    assert full.axes[0].get_ylim()[0] <= 0 and "zoomed" not in full.axes[0].get_ylabel()


def test_values_beyond_the_axes_are_marked_at_the_edge_with_their_value():
    points = dict(BOARD, fedrecovery=(0.97, 3.5), ferrari=(0.99, 0.95, 0.0, 0.6))
    fig = tradeoff_figure(spread_results(points), registry())
    ax = fig.axes[0]
    x1 = ax.get_xlim()[1]
    texts = [t.get_text() for t in ax.texts]
    assert "fedrecovery: NFS 3.5 (off the axis)" in texts
    edge = [line for line in ax.lines if not line.get_clip_on()]
    arrow = [line for line in edge if line.get_marker() == ">" and line.get_xdata()[0] == x1]
    assert any(line.get_markerfacecolor() != "white" for line in arrow), "the outlier's arrow"
    # ferrari's error bar (0.95 ± 0.85) leaves the axis: an open arrow head and its end
    end = 0.95 + 0.6 * np.sqrt(2)
    assert f"→{end:.3g}" in texts
    assert any(line.get_markerfacecolor() == "white" for line in arrow), "the cut bar's tip"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "error bar cut by the axis (its end named)" in legend


def test_the_band_is_in_the_legend_with_several_seeds_only():
    fig = tradeoff_figure(spread_results(BOARD), registry())
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "band: NTA ± std over seeds" in legend and "tis_reset (swept)" in legend
    one_seed = [r for r in spread_results(BOARD) if r["seed"] == 0]
    legend = [
        t.get_text() for t in tradeoff_figure(one_seed, registry()).axes[0].get_legend().get_texts()
    ]
    assert not any(text.startswith("band") for text in legend)


def test_crowded_sweep_labels_do_not_overlap_and_keep_clear_of_the_ideal():
    points = {
        f"tis_reset[gamma={g}]": (1.0 - g / 60, 1.0 - g / 50) for g in (0.01, 0.02, 0.05, 0.1)
    }
    points.update(
        {f"random_reset[gamma={g}]": (1.0 - g / 55, 1.0 - g / 45) for g in (0.01, 0.05, 0.1)}
    )
    fig = tradeoff_figure(spread_results(points), registry())
    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [t.get_window_extent(renderer) for t in ax.texts]
    assert len(boxes) >= 4, "a sweep's ends are always labelled"
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)


# ------------------------------------------------------------------------------ cost
def cost_board() -> list[dict]:
    return spread_results(
        {
            "finetune": (0.99, 0.1, 0, 0, 0.17),
            "ferrari": (0.98, 0.9, 0, 0, 0.07),
            "fedrecovery": (0.98, 0.2, 0, 0, 0.0),
        },
        scenario="a",
    ) + spread_results(
        {"finetune": (0.99, 0.1, 0, 0, 0.5), "fedcdp": (0.9, 0.5, 0, 0, 0.02)}, scenario="b"
    )


def test_cost_plot_draws_work_ratio_on_one_shared_axis():
    fig = cost_figure(cost_board(), registry())
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in panels] == [
        "a: work_ratio (2 seeds, mean ± std)",
        "b: work_ratio (2 seeds, mean ± std)",
    ]
    assert "work_ratio = counted FLOPs" in fig.get_suptitle()
    assert all(ax.get_xscale() == "log" for ax in panels)
    assert panels[0].get_shared_x_axes().joined(panels[0], panels[1])
    assert panels[0].get_xlim() == panels[1].get_xlim()
    dots = {line.get_gid(): line for line in panels[0].lines if line.get_gid()}
    assert dots["work_ratio:finetune"].get_xdata()[0] == pytest.approx(0.17)
    # a zero has no place on a log axis: an arrow head on the left edge
    zero = dots["work_ratio:fedrecovery"]
    assert zero.get_marker() == "<" and zero.get_xdata()[0] == panels[0].get_xlim()[0]
    assert "0 (drawn on the left edge)" in [t.get_text() for t in fig.legends[0].get_texts()]
    assert not any(gid.startswith("rtr:") for gid in dots), "rtr only with --timed"
    # the same method, the same colour and marker as in the trade-off plot
    from matplotlib.colors import to_hex

    trade = row_lines(tradeoff_figure(spread_results(BOARD), registry()).axes[0])
    fine = dots["work_ratio:finetune"]
    assert (to_hex(fine.get_color()), fine.get_marker()) == trade["finetune"]


def test_cost_plot_timed_adds_rtr_and_says_so():
    fig = cost_figure(cost_board(), registry(), timed=True)
    assert "hollow: rtr = wall time" in fig.get_suptitle()
    dots = {line.get_gid(): line for line in fig.axes[0].lines if line.get_gid()}
    assert dots["rtr:finetune"].get_xdata()[0] == pytest.approx(0.34)
    assert dots["rtr:finetune"].get_markerfacecolor() in ("white", (1.0, 1.0, 1.0, 1.0))


def test_plot_cost_cli_and_its_errors(tmp_path, capsys):
    for r in cost_board():
        write(tmp_path / "res" / r["scenario"]["name"] / f"seed_{r['seed']}.json", r)
    out = tmp_path / "a.png"
    assert run_cli("plot", "cost", str(tmp_path / "res"), "-o", str(out), "--timed") == 0
    drawn(out)
    # results without the counted work (older ones): said, with the way to the timed ratio
    for r in two_scenarios():
        write(tmp_path / "old" / r["scenario"]["name"] / f"seed_{r['seed']}.json", r)
    capsys.readouterr()
    assert run_cli("plot", "cost", str(tmp_path / "old"), "-o", str(tmp_path / "b.png")) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("fubench: error: no method has a work_ratio value") and "--metric rtr" in err
    )
    assert not (tmp_path / "b.png").exists()
    assert (
        run_cli(
            "plot", "cost", str(tmp_path / "old"), "-o", str(tmp_path / "c.png"), "--metric", "rtr"
        )
        == 0
    )
    capsys.readouterr()
    args = ("plot", "cost", str(tmp_path / "old"), "-o", str(tmp_path / "s.png"))
    assert run_cli(*args, "--metric", "seconds") == 2
    assert (
        "--metric seconds: not a cost relative to the gold standard; choose one of: rtr, "
        "work_ratio" in capsys.readouterr().err
    )
    no_rtr = result(0, {"m": row({"test_acc": 0.5})})
    for r in no_rtr["methods"].values():
        r["metrics"].pop("rtr", None)
    write(tmp_path / "bare" / "s" / "seed_0.json", no_rtr)
    capsys.readouterr()
    assert (
        run_cli(
            "plot", "cost", str(tmp_path / "bare"), "-o", str(tmp_path / "d.png"), "--metric", "rtr"
        )
        == 2
    )
    assert capsys.readouterr().err.startswith("fubench: error: no method has a rtr value")


# ------------------------------------------------------------------------ GradCAM
def corner_model(channels: int = 1) -> nn.Module:
    """A conv net whose class-1 logit is the brightness it sees: GradCAM must follow it."""
    conv = nn.Conv2d(channels, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, :, 1, 1] = 1.0
    head = nn.Linear(1, 2)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        head.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head)


def test_gradcam_peaks_where_the_evidence_is():
    x = torch.zeros(2, 1, 12, 12)
    x[0, 0, :3, :3] = 1.0  # bright top-left
    x[1, 0, -3:, -3:] = 1.0  # bright bottom-right
    cams, predicted = gradcam(corner_model(), x)
    assert predicted.tolist() == [1, 1]
    assert cams.shape == (2, 12, 12) and float(cams.max()) == pytest.approx(1.0)
    assert cams[0, :3, :3].mean() > 5 * cams[0, -3:, -3:].mean()
    assert cams[1, -3:, -3:].mean() > 5 * cams[1, :3, :3].mean()


def test_gradcam_needs_a_conv_layer():
    with pytest.raises(ValueError, match="convolutional"):
        gradcam(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), torch.zeros(1, 1, 2, 2))


def test_pick_images_shares_and_trigger_box():
    assert pick_images(torch.tensor([3, 3, 1, 3, 2]), 3).tolist() == [0, 2, 4]
    assert pick_images(torch.tensor([5, 5, 5]), 2).tolist() == [0, 1]
    # classes another seed already shows come last
    assert pick_images(torch.tensor([3, 1, 2, 4]), 2, shown={3, 1}).tolist() == [2, 3]
    assert pick_images(torch.tensor([3, 1, 3]), 2, shown={3, 1}).tolist() == [0, 1]
    assert shares(8, 2) == [4, 4] and shares(5, 2) == [3, 2] and shares(3, 3) == [1, 1, 1]
    mask = torch.zeros(1, 10, 10, dtype=torch.bool)
    mask[0, 6:9, 6:9] = True
    assert outline_box(mask) == (6, 6, 3, 3)
    assert outline_box(None) is None


def two_seed_columns(channels: int) -> list[Column]:
    x = torch.zeros(4, channels, 12, 12)
    x[:, 0, 2:9, 4:7] = 1.0
    models = {"original": corner_model(channels), "retrain": corner_model(channels)}
    return columns(0, models, x[:2], torch.tensor([1, 0])) + columns(
        1, models, x[2:], torch.tensor([2, 1])
    )


NAMES = ["T-shirt/top", "Trouser", "Pullover"]


def test_attention_figure_has_a_colour_bar_class_names_and_the_trigger():
    cols = two_seed_columns(1)
    title = attention_title("s", "backdoor", [0, 1], trigger=True)
    fig = attention_figure(cols, title, NAMES, box=(8, 8, 3, 3))
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 1 and "each map scaled to its own maximum" in bars[0].get_ylabel()
    cells = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(cells) == 3 * 4  # inputs, original, retrain x 4 images
    headers = [ax.get_title() for ax in cells[:4]]
    assert headers == [
        "seed 0\nTrouser",
        "seed 0\nT-shirt/top",
        "seed 1\nPullover",
        "seed 1\nTrouser",
    ]
    assert cells[4].get_title() == "→ Trouser", "the corner model predicts class 1"
    from matplotlib.patches import Rectangle

    for ax in cells:
        (box,) = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_label() == "trigger"]
        assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (7.5, 7.5, 3, 3)
        assert not box.get_fill() and box.get_linewidth() >= 1.2
    assert "cyan box: the trigger" in fig.get_suptitle()
    # the title is the figure's, above the column headers, never over them
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    top = fig._suptitle.get_window_extent(renderer)
    for ax in cells[:4]:
        assert not top.overlaps(ax.title.get_window_extent(renderer))
    # grey inputs: each map is laid over its image
    assert all(len(ax.images) == 2 for ax in cells[4:])


def test_a_feature_that_is_no_region_keeps_the_inputs_untouched():
    """The bias kind: a heat map over a coloured digit would recolour the feature; the
    inputs are shown as they are, the maps apart with the image's outline."""
    cols = two_seed_columns(3)
    fig = attention_figure(cols, "bias", None, apart=True)
    cells = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    for ax, col in zip(cells[:4], cols):
        (image,) = ax.images
        assert np.array_equal(image.get_array(), col.image.permute(1, 2, 0).numpy())
        assert ax.get_title().endswith(str(col.label)), "no class names: the number"
    for ax in cells[4:]:
        (image,) = ax.images  # the map alone, no image under it
        assert image.get_cmap().name == HEAT and image.get_array().ndim == 2
        assert ax.collections, "the image's outline"


def test_plot_attention_cli_reruns_the_scenario(
    backdoor_yaml, test_registry, tmp_path, monkeypatch
):
    """End to end on the synthetic test data: original, finetune and retrain rows, the
    triggered images of two seeds, nothing left in a results folder."""
    import fubench.report.figures as figure_module

    file = backdoor_yaml(rounds=1)
    monkeypatch.chdir(tmp_path)  # where `fubench run` would write results/
    figures = []
    save = figure_module.save_figure
    monkeypatch.setattr(
        figure_module, "save_figure", lambda fig, *a, **k: figures.append(fig) or save(fig, *a, **k)
    )
    out = tmp_path / "{scenario}.png"
    assert (
        run_cli("plot", "attention", str(file), "--seeds", "0,1", "--images", "3", "-o", str(out))
        == 0
    )
    drawn(tmp_path / "tiny_backdoor.png")
    (fig,) = figures
    cells = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title().split("\n")[0] for ax in cells[:3]] == ["seed 0", "seed 0", "seed 1"]
    assert [ax.get_ylabel() for ax in cells[::3]] == [
        "input (true class)",
        "original",
        "finetune",
        "retrain",
    ]
    assert "'backdoor' images, seeds 0, 1" in fig.get_suptitle().replace("\n", " ")
    assert not (tmp_path / "results").exists()


def test_plot_attention_needs_an_image_per_seed(backdoor_yaml, tmp_path, capsys):
    file = backdoor_yaml(rounds=1)
    assert (
        run_cli(
            "plot",
            "attention",
            str(file),
            "--seeds",
            "0,1,2",
            "--images",
            "2",
            "-o",
            str(tmp_path / "a.png"),
        )
        == 2
    )
    assert "--images 2 is fewer than the 3 seeds" in capsys.readouterr().err
