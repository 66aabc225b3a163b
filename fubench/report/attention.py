"""GradCAM attention maps of the same test images under every model of a scenario
(Ferrari paper, Fig. 5): original, each method, retrain.

Result files hold numbers, not models, so ``fubench plot attention FILE --seed N``
runs that seed's job again through the engine: the original and reference models come
from the model cache (trained once by ``fubench run``), the methods run again
(deterministic per seed: the same models as in the results on the same hardware and
thread setting). Nothing is written to your results.

GradCAM (Selvaraju et al. 2017): at the last ``Conv2d`` layer, weight each channel by
the mean gradient of the predicted class's logit, sum, ReLU, upsample to the input and
scale to [0, 1] per image. On a backdoor scenario the original model's map should sit
on the trigger, retraining's on the digit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fubench.report.plots import pyplot, save_figure


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


def pick_images(y: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of ``n`` images, distinct labels first, in data order (deterministic)."""
    chosen, seen = [], set()
    for i, label in enumerate(y.tolist()):
        if label not in seen:
            chosen.append(i)
            seen.add(label)
        if len(chosen) == n:
            break
    rest = [i for i in range(len(y)) if i not in chosen][: n - len(chosen)]
    return torch.tensor(sorted(chosen + rest), dtype=torch.long)


def outline_box(mask: torch.Tensor | None) -> tuple[int, int, int, int] | None:
    """(top, left, height, width) of a feature mask (C, H, W), to outline the trigger."""
    if mask is None or mask.dim() != 3 or not mask.any():
        return None
    rows = torch.nonzero(mask.any(dim=0).any(dim=1)).flatten()
    cols = torch.nonzero(mask.any(dim=0).any(dim=0)).flatten()
    return (int(rows[0]), int(cols[0]), int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1))


def draw(
    models: dict[str, nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    output: str | Path,
    title: str,
    box: tuple[int, int, int, int] | None = None,
) -> Path:
    """One column per image; the first row shows the inputs, then one row per model with
    its GradCAM map over the image, titled with the model's prediction; the trigger
    (``box``) outlined in dashes."""
    n_rows, n_cols = len(models) + 1, len(x)
    fig, axes = pyplot().subplots(
        n_rows, n_cols, squeeze=False, figsize=(1.6 * n_cols + 1.4, 1.7 * n_rows + 0.6)
    )
    images = x.detach().cpu()
    for c in range(n_cols):  # first row: the inputs alone, so the overlays can be read
        _show(axes[0][c], images[c], None, box, f"true {int(y[c])}")
    axes[0][0].set_ylabel("input", fontsize=8)
    for r, (label, model) in enumerate(models.items(), 1):
        cams, predicted = gradcam(model, x)
        for c in range(n_cols):
            _show(
                axes[r][c], images[c], cams[c], box, f"pred {int(predicted[c])} (true {int(y[c])})"
            )
        axes[r][0].set_ylabel(label, fontsize=8)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, output, dpi=110)


def _show(
    ax: Any,
    img: torch.Tensor,
    cam: torch.Tensor | None,
    box: tuple[int, int, int, int] | None,
    title: str,
) -> None:
    from matplotlib.patches import Rectangle

    if img.shape[0] == 1:
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
    else:
        ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
    if cam is not None:
        ax.imshow(cam.numpy(), cmap="jet", alpha=0.45, vmin=0, vmax=1)
    if box is not None:
        top, left, h, w = box
        ax.add_patch(
            Rectangle(
                (left - 0.5, top - 0.5),
                w,
                h,
                fill=False,
                edgecolor="white",
                linestyle="--",
                linewidth=1,
            )
        )
    ax.set_title(title, fontsize=7)
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


def scenario_job(
    file: str,
    seed: int,
    methods: list[str] | None = None,
    results: str | None = None,
    device: str | None = None,
    use_cache: bool = True,
) -> tuple[Any, Any]:
    """(config, the seed's job), checked as a run is before any training: the device,
    the data, the sizes (refusals are one line)."""
    from fubench import preflight
    from fubench.config.validate import apply_overrides, load_scenario
    from fubench.engine.cache import ModelCache
    from fubench.engine.job import Job
    from fubench.engine.plan import Plan
    from fubench.plugins import get_registry

    registry = get_registry()
    config = load_scenario(file, registry)
    config = apply_overrides(config, methods=methods, seeds=[seed], registry=registry)
    config.methods = chosen_methods(config, results, registry)
    cache = ModelCache(enabled=use_cache)
    device, data = preflight.before_training(
        config, registry, device, None, None, cache.root if cache.enabled else None
    )
    plan = Plan.from_config(config, registry, device)
    plan.progress, plan.timed = False, False
    return config, Job(plan, data, seed, cache)


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
    seed: int = 0,
    methods: list[str] | None = None,
    results: str | None = None,
    n_images: int = 4,
    split: str | None = None,
    device: str | None = None,
    use_cache: bool = True,
) -> Path:
    if n_images < 1:
        raise ValueError(f"--images must be at least 1, got {n_images}")
    from fubench import preflight, progress
    from fubench.plugins import get_registry

    with (
        progress.shown_on_success()
    ):  # refused here: the refusal is the only line, no loading notes
        config, job = scenario_job(file, seed, methods, results, device, use_cache)
        split = split or get_registry().kinds.get(config.kind).showcase or "test"
        setup = job.setup  # built from the partition and the kind: no training yet
        if split not in setup.eval_sets:
            raise ValueError(
                f"--split: scenario '{config.name}' has no evaluation set "
                f"'{split}' (it has: {', '.join(sorted(setup.eval_sets))})"
            )
        # "{scenario}" in the path lets a script name the file without reading the YAML
        output = Path(str(output).replace("{scenario}", config.name))
        problem = preflight.folder_problem(output.parent)
        if problem:
            raise preflight.PreflightError(f"-o {output}: its folder {output.parent} {problem}")
    models = trained_models(config, job)
    data = setup.eval_sets[split]
    index = pick_images(data.y.cpu(), n_images).to(data.y.device)
    box = outline_box(setup.request.feature_mask)
    title = (
        f"{config.name}, seed {seed}: GradCAM of the predicted class at the last conv "
        f"layer, '{split}' images" + ("; dashed: the feature" if box else "")
    )
    return draw(models, data.x[index], data.y[index].cpu(), output, title, box)
