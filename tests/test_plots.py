"""`fubench plot cost` and `fubench plot attention` write real PNGs; GradCAM looks where
the evidence is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fubench.report.attention import draw, gradcam, outline_box, pick_images
from fubench.report.plots import cost_chart
from tests.conftest import run_cli
from tests.resultfiles import write
from tests.test_leaderboard import result, row, two_scenarios

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def drawn(path: Path) -> np.ndarray:
    """The image's RGB pixels, after checking it is a PNG with more than a blank canvas."""
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)[..., :3]
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50, "the figure is (nearly) empty"
    return pixels


def share_near(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 30) -> float:
    return float((np.abs(pixels * 255 - np.array(rgb)).max(axis=-1) < tol).mean())


# ---------------------------------------------------------------------------- cost
def test_cost_chart_draws_a_bar_per_method(tmp_path):
    from fubench.plugins import get_registry

    out = cost_chart(two_scenarios(), tmp_path / "cost.png", get_registry())
    pixels = drawn(out)
    assert share_near(pixels, (31, 119, 180)) > 0.01  # the blue bars are there


def test_plot_cost_cli_and_its_error(tmp_path, capsys):
    for r in two_scenarios():
        write(tmp_path / "res" / r["scenario"]["name"] / f"seed_{r['seed']}.json", r)
    assert run_cli("plot", "cost", str(tmp_path / "res"), "-o", str(tmp_path / "a.png")) == 0
    drawn(tmp_path / "a.png")
    no_rtr = result(0, {"m": row({"test_acc": 0.5})})
    for r in no_rtr["methods"].values():
        r["metrics"].pop("rtr", None)
    write(tmp_path / "bare" / "s" / "seed_0.json", no_rtr)
    capsys.readouterr()
    assert run_cli("plot", "cost", str(tmp_path / "bare"), "-o", str(tmp_path / "b.png")) == 2
    assert capsys.readouterr().err.startswith("fubench: error: no method has a relative cost")
    assert not (tmp_path / "b.png").exists()


# ------------------------------------------------------------------------ GradCAM
def corner_model() -> nn.Module:
    """A conv net whose class-1 logit is the brightness it sees: GradCAM must follow it."""
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
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


def test_pick_images_and_trigger_box():
    assert pick_images(torch.tensor([3, 3, 1, 3, 2]), 3).tolist() == [0, 2, 4]
    assert pick_images(torch.tensor([5, 5, 5]), 2).tolist() == [0, 1]
    mask = torch.zeros(1, 10, 10, dtype=torch.bool)
    mask[0, 6:9, 6:9] = True
    assert outline_box(mask) == (6, 6, 3, 3)
    assert outline_box(None) is None


def test_draw_writes_one_panel_per_model_and_image(tmp_path):
    x = torch.rand(3, 3, 12, 12)
    models = {"original": corner_model_rgb(), "retrain": corner_model_rgb()}
    out = draw(models, x, torch.tensor([0, 1, 2]), tmp_path / "att.png", "title", box=(8, 8, 3, 3))
    drawn(out)


def corner_model_rgb() -> nn.Module:
    model = corner_model()
    model[0] = nn.Conv2d(3, 1, 3, padding=1)
    return model


def test_plot_attention_cli_reruns_the_scenario(
    backdoor_yaml, test_registry, tmp_path, monkeypatch
):
    """End to end on the synthetic test data: original, finetune and retrain rows, the
    triggered images, nothing left in a results folder."""
    file = backdoor_yaml(rounds=1)
    monkeypatch.chdir(tmp_path)  # where `fubench run` would write results/
    out = tmp_path / "att.png"
    assert (
        run_cli("plot", "attention", str(file), "--seed", "0", "--images", "2", "-o", str(out)) == 0
    )
    pixels = drawn(out)
    assert pixels.shape[0] > pixels.shape[1] * 0.8  # three model rows, two image columns
    assert not (tmp_path / "results").exists()
