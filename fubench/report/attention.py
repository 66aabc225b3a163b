"""GradCAM attention maps of the same test images under every model of a scenario
(Ferrari paper, Fig. 5): original, each method, retrain.

Result files hold numbers, not models, so ``fubench plot attention FILE --seeds 0,1``
runs those seeds' jobs again through the engine: the original and reference models come
from the model cache (trained once by ``fubench run``), the methods run again
(deterministic per seed: the same models as in the results on the same hardware and
thread setting). Nothing is written to your results. Every seed costs its methods'
training time again, so the default is two seeds (four images each).

GradCAM (Selvaraju et al. 2017): at the last ``Conv2d`` layer, weight each channel by
the mean gradient of the predicted class's logit, sum, ReLU, upsample to the input and
scale each map to its own maximum (so maps show where a model looks, not how strongly
compared with another model). On a backdoor scenario the original model's map should
sit on the trigger (outlined), retraining's on the digit.

The figure: one column per image (seed and true class on top), the inputs in the first
row, then one row per model, captioned with its prediction (in red where it is not the
true class), and one colour bar. Where the forgotten feature is no region of the image
(a digit's colour), a heat map laid over the image would recolour what the scenario is
about: the maps are then drawn apart, with the image's outline, under the untouched
inputs.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fubench.report.figures import new_figure

#: the heat map's colours: perceptually uniform, readable in grey print and by
#: colour-blind readers
HEAT = "inferno"
#: the trigger's outline: bright, on a dark stroke, visible on any map
TRIGGER = "#00E5FF"
#: a caption whose prediction is not the true class
WRONG = "#D55E00"
NORMALISATION = "GradCAM, each map scaled to its own maximum"


def last_conv(model: nn.Module) -> nn.Conv2d:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("attention maps need a convolutional model (no Conv2d layer found)")
    return convs[-1]


def gradcam(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(maps (N, H, W) in [0, 1], predicted labels (N,)) for images ``x`` (N, C, H, W)."""
    model.eval()
    captured: dict[str, torch.Tensor] = {}

    def hook(_module, _inputs, output):
        output.retain_grad()
        captured["act"] = output

    handle = last_conv(model).register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(x.detach().clone().requires_grad_(True))
            predicted = logits.argmax(dim=1)
            logits.gather(1, predicted[:, None]).sum().backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    act = captured["act"]
    weights = act.grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * act).sum(dim=1, keepdim=True)).detach()
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peak = cam.flatten(1).max(dim=1).values.clamp_min(1e-12)
    return (cam / peak[:, None, None]).cpu(), predicted.cpu()


def pick_images(
    y: torch.Tensor, n: int, shown: set[int] | frozenset[int] = frozenset()
) -> torch.Tensor:
    """Indices of ``n`` images in data order (deterministic): one of each label not in
    ``shown`` first (the classes other seeds' columns already show), then of the other
    labels, then any."""
    labels = y.tolist()
    chosen: list[int] = []
    for fresh in (True, False):
        seen = set(shown) if fresh else {labels[i] for i in chosen}
        for i, label in enumerate(labels):
            if len(chosen) == n:
                break
            if label not in seen and i not in chosen:
                chosen.append(i)
                seen.add(label)
    rest = [i for i in range(len(labels)) if i not in chosen][: n - len(chosen)]
    return torch.tensor(sorted(chosen + rest), dtype=torch.long)


def outline_box(mask: torch.Tensor | None) -> tuple[int, int, int, int] | None:
    """(top, left, height, width) of a feature mask (C, H, W), to outline the trigger."""
    if mask is None or mask.dim() != 3 or not mask.any():
        return None
    rows = torch.nonzero(mask.any(dim=0).any(dim=1)).flatten()
    cols = torch.nonzero(mask.any(dim=0).any(dim=0)).flatten()
    return (int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1))


@dataclass
class Column:
    """One image of the figure and every model's map of it."""

    seed: int
    image: torch.Tensor  # (C, H, W), on the CPU
    label: int
    #: row label -> (GradCAM map (H, W) in [0, 1], predicted class)
    maps: dict[str, tuple[torch.Tensor, int]] = field(default_factory=dict)


def columns(
    seed: int, models: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor
) -> list[Column]:
    """The columns of images ``x`` (labels ``y``) under one seed's ``models``."""
    cols = [Column(seed, img.detach().cpu(), int(label)) for img, label in zip(x, y.tolist())]
    for row, model in models.items():
        cams, predicted = gradcam(model, x)
        for col, cam, pred in zip(cols, cams, predicted.tolist()):
            col.maps[row] = (cam, int(pred))
    return cols


def attention_figure(
    cols: list[Column],
    title: str,
    class_names: list[str] | None = None,
    box: tuple[int, int, int, int] | None = None,
    apart: bool = False,
) -> Any:
    """The figure: the inputs in the first row (headed by seed and true class), one row
    per model with its map and prediction, a colour bar; the trigger (``box``: top,
    left, height, width) outlined in every cell. ``apart``: the maps are not laid over
    the image (whose colour must stay visible) but drawn alone with its outline."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    rows = list(dict.fromkeys(row for col in cols for row in col.maps))
    n_rows, n_cols = len(rows) + 1, len(cols)
    fig = new_figure(1.25 * n_cols + 1.9, 1.32 * n_rows + 0.9, constrained=True)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    name = _namer(class_names)
    for c, col in enumerate(cols):
        ax = axes[0][c]
        _image(ax, col.image)
        _outline_trigger(ax, box)
        ax.set_title(f"seed {col.seed}\n{name(col.label)}", fontsize=7)
        for r, row in enumerate(rows, 1):
            ax = axes[r][c]
            if row not in col.maps:  # the method failed on this seed
                ax.set_title("(no model)", fontsize=7)
                _bare(ax)
                continue
            cam, pred = col.maps[row]
            _map(ax, col.image, cam, apart)
            _outline_trigger(ax, box)
            ax.set_title(
                f"→ {name(pred)}", fontsize=7, color=WRONG if pred != col.label else "black"
            )
    for ax, row in zip(axes[:, 0], ["input (true class)", *rows]):
        ax.set_ylabel(row, fontsize=8)
    for ax in axes.flat:
        _bare(ax)
    fig.colorbar(
        ScalarMappable(Normalize(0.0, 1.0), HEAT),
        ax=axes,
        shrink=min(0.6, 4.0 / n_rows),
        aspect=25,
        label=f"{NORMALISATION} (0–1)",
    )
    width = int(fig.get_figwidth() * 72 / (0.55 * 9))  # characters of 9 pt on a line
    fig.suptitle("\n".join(textwrap.fill(line, width) for line in title.splitlines()), fontsize=9)
    return fig


def _namer(class_names: list[str] | None) -> Any:
    def name(label: int) -> str:
        if class_names and 0 <= label < len(class_names):
            return class_names[label]
        return str(label)

    return name


def _image(ax: Any, img: torch.Tensor) -> None:
    """The input, untouched."""
    if img.shape[0] == 1:
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())


def _map(ax: Any, img: torch.Tensor, cam: torch.Tensor, apart: bool) -> None:
    """The map over the image, opaque where the model looks and clear where it does
    not (so the image stays readable); ``apart``: the map alone, the image's outline
    drawn over it."""
    if apart:
        ax.imshow(cam.numpy(), cmap=HEAT, vmin=0, vmax=1)
        brightness = img.max(dim=0).values.numpy()
        ax.contour(
            brightness, levels=[0.5 * float(brightness.max())], colors="white", linewidths=0.7
        )
        return
    import matplotlib

    _image(ax, img)
    rgba = matplotlib.colormaps[HEAT](cam.numpy())
    rgba[..., 3] = 0.2 + 0.6 * cam.numpy()
    ax.imshow(rgba)


def _outline_trigger(ax: Any, box: tuple[int, int, int, int] | None) -> None:
    from matplotlib import patheffects
    from matplotlib.patches import Rectangle

    if box is None:
        return
    top, left, h, w = box
    ax.add_patch(
        Rectangle(
            (left - 0.5, top - 0.5),
            w,
            h,
            fill=False,
            edgecolor=TRIGGER,
            linewidth=1.4,
            label="trigger",
            path_effects=[patheffects.withStroke(linewidth=2.8, foreground="black")],
        )
    )


def _bare(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


# ------------------------------------------------------------------ from a scenario
def chosen_methods(config: Any, results: str | None, registry: Any) -> list[Any]:
    """The config's methods; with ``results``, only the rows those results hold, and
    swept methods only at the point the scenario's table shows (the leaderboard's
    choice), so the figure shows the rows of the table it illustrates."""
    if not results:
        return config.methods
    from fubench.report.reader import load_results, of_scenario
    from fubench.report.sweeps import best_sweep_points, sweep_groups
    from fubench.report.table import aggregate

    found = of_scenario(load_results([results]), config.name)
    if not found:
        raise ValueError(f"no results of scenario '{config.name}' under {results}")
    (table,) = aggregate(found, registry)
    groups = sweep_groups(found, registry)
    hidden = {
        label
        for method, choice in best_sweep_points(table, registry).items()
        for label in groups[method]
        if label != choice.label
    }
    stored = {label for r in found for label in r["methods"]}
    return [m for m in config.methods if m.label in stored - hidden]


def scenario_jobs(
    file: str,
    seeds: list[int],
    methods: list[str] | None = None,
    results: str | None = None,
    device: str | None = None,
    use_cache: bool = True,
) -> tuple[Any, list[Any]]:
    """(config, one job per seed), checked as a run is before any training: the device,
    the data, the sizes (refusals are one line)."""
    from fubench import preflight
    from fubench.config.validate import apply_overrides, load_scenario
    from fubench.engine.cache import ModelCache
    from fubench.engine.job import Job
    from fubench.engine.plan import Plan
    from fubench.plugins import get_registry

    registry = get_registry()
    config = load_scenario(file, registry)
    config = apply_overrides(config, methods=methods, seeds=list(seeds), registry=registry)
    config.methods = chosen_methods(config, results, registry)
    cache = ModelCache(enabled=use_cache)
    device, data = preflight.before_training(
        config, registry, device, None, None, cache.root if cache.enabled else None
    )
    plan = Plan.from_config(config, registry, device)
    plan.progress, plan.timed = False, False
    return config, [Job(plan, data, seed, cache) for seed in seeds]


def trained_models(config: Any, job: Any) -> dict[str, nn.Module]:
    """{row label: model} in table order: original, each method, the gold standard."""
    from fubench.results import ORIGINAL, row_order

    original, reference = job.references()
    ran = {spec.label: job.run_method(spec) for spec in job.plan.method_rows()}  # readers last
    models = {ORIGINAL: original.model}
    models.update({label: ran[label].model for label in ran if ran[label].status == "ok"})
    if reference.status == "ok":
        models[job.reference_name] = reference.model
    listed = [m.label for m in config.methods]
    return {k: models[k] for k in row_order(models, job.reference_name, listed)}


def attention_plot(
    file: str,
    output: str | Path,
    seeds: list[int] | tuple[int, ...] = (0, 1),
    methods: list[str] | None = None,
    results: str | None = None,
    n_images: int = 8,
    split: str | None = None,
    device: str | None = None,
    use_cache: bool = True,
) -> tuple[Any, Path]:
    """(the attention figure of scenario ``file``, the file to write it to: ``output``
    with ``{scenario}`` replaced, its folder checked). ``n_images`` are shared out over
    ``seeds`` (each seed's models see its own images); all checks run before any
    training."""
    from fubench import preflight, progress
    from fubench.plugins import get_registry

    seeds = list(dict.fromkeys(seeds))
    if n_images < len(seeds):
        raise ValueError(
            f"--images {n_images} is fewer than the {len(seeds)} seeds to show (--seeds): "
            f"every seed needs an image"
        )
    # refused here: the refusal is the only line, no loading notes
    with progress.shown_on_success():
        config, jobs = scenario_jobs(file, seeds, methods, results, device, use_cache)
        split = split or get_registry().kinds.get(config.kind).showcase or "test"
        for job in jobs:  # built from the partition and the kind: no training yet
            if split not in job.setup.eval_sets:
                raise ValueError(
                    f"--split: scenario '{config.name}' has no evaluation set "
                    f"'{split}' (it has: {', '.join(sorted(job.setup.eval_sets))})"
                )
        # "{scenario}" in the path lets a script name the file without reading the YAML
        output = Path(str(output).replace("{scenario}", config.name))
        problem = preflight.folder_problem(output.parent)
        if problem:
            raise preflight.PreflightError(f"-o {output}: its folder {output.parent} {problem}")
    cols: list[Column] = []
    for job, n in zip(jobs, shares(n_images, len(jobs))):
        data = job.setup.eval_sets[split]
        index = pick_images(data.y.cpu(), n, {c.label for c in cols}).to(data.y.device)
        cols += columns(job.seed, trained_models(config, job), data.x[index], data.y[index])
    request = jobs[0].setup.request
    box = outline_box(request.feature_mask)
    apart = request.feature is not None and request.feature.mask is None
    title = attention_title(
        config.name, split, seeds, box is not None, request.feature if apart else None
    )
    return attention_figure(cols, title, jobs[0].data.class_names, box, apart), output


def shares(n: int, parts: int) -> list[int]:
    """``n`` split into ``parts`` near-equal whole shares, the larger first."""
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def attention_title(
    scenario: str, split: str, seeds: list[int], trigger: bool, feature: Any = None
) -> str:
    """What the figure shows and how to read it (normalisation, marks)."""
    seeds_text = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    marks = [f"{NORMALISATION} (colour bar)"]
    if trigger:
        marks.append("cyan box: the trigger")
    if feature is not None:
        marks.append(
            f"the forgotten feature is {feature.description}: maps drawn apart from the "
            f"untouched inputs (white: the image's outline)"
        )
    marks.append("red caption: prediction ≠ true class")
    return (
        f"{scenario}: GradCAM of the predicted class at the last conv layer, "
        f"'{split}' images, {seeds_text}\n" + "; ".join(marks)
    )
