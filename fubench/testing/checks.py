"""The checks of the conformance kit, one function per component category; each returns
one line per problem (an empty list: the component conforms)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from fubench.api import Unlearner, declaration_problems
from fubench.engine.outcome import Outcome, model_problem
from fubench.errors import one_line
from fubench.evaluation import REFERENCE_ROW, Evaluation
from fubench.fl.federation import Federation
from fubench.fl.training import TrainSettings, generator
from fubench.metric_values import MetricValueError, metric_value
from fubench.results import ORIGINAL
from fubench.scenario import ScenarioSetup
from fubench.testing.tiny import N_CLASSES, tiny_data
from fubench.testing.world import Stage, TinyWorld


def _same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _check_unlearner(kit: TinyWorld, name: str) -> list[str]:
    cls = kit.registry.methods.get(name)
    problems = _declarations(cls)
    if problems:
        return problems
    served, kinds_of = 0, {}
    for kind in kit.registry.kinds.names():
        stage = kit.stage(kind)
        if not stage.ok:
            continue  # the kind's own check reports it
        found, ok = _unlearner_on(kit, stage, name, cls)
        for problem in found:  # one line per problem, listing the kinds it occurs on
            kinds_of.setdefault(problem, []).append(f"'{kind}'")
        served += ok
    problems += [
        f"on scenario kind{'s' if len(k) > 1 else ''} {', '.join(k)}: {p}"
        for p, k in kinds_of.items()
    ]
    if not problems and not served:
        problems.append(
            "declined every registered scenario kind, so nothing about it could "
            "be checked; it must serve at least one"
        )
    return problems


def _declarations(cls: type[Unlearner]) -> list[str]:
    problems = declaration_problems(cls)
    if not isinstance(cls.unsupported_kinds, dict) or not all(
        isinstance(v, str) and v for v in cls.unsupported_kinds.values()
    ):
        problems.append("unsupported_kinds must map each kind to a non-empty reason string")
    if isinstance(cls.reads, str):
        problems.append(f"reads = {cls.reads!r} is a string; use a tuple: ({cls.reads!r},)")
    return problems


def _unlearner_on(
    kit: TinyWorld, stage: Stage, name: str, cls: type[Unlearner]
) -> tuple[list[str], bool]:
    """Problems of one method on one kind, and whether it served the kind."""
    first = kit.unlearn(stage, name)
    if first.status == "failed":
        return [first.error], False
    problems = _participation(cls, stage, set(first.info.clients))
    if first.status == "n/a":
        if not (first.error or "").strip():
            problems.append("declined (n/a) without a reason; say why in NotApplicable(...)")
        return problems, False
    problems += _model_problems(first.model, stage.job.original.model)
    if kit.check_determinism and not problems:
        problems += _determinism(kit, stage, name, first)
    return problems, True


def _participation(cls: type[Unlearner], stage: Stage, clients: set[int]) -> list[str]:
    fed = Federation(
        stage.setup,
        TrainSettings(),
        1,
        1.0,
        0,
        torch.device("cpu"),
        cls.participation,
        reference=cls.reference,
    )
    outside = sorted(c for c in clients if not fed.allowed(c))
    if outside:
        return [
            f"involved client(s) {outside} although participation="
            f"'{cls.participation}' excludes them"
        ]
    return []


def _model_problems(model: Any, original: nn.Module) -> list[str]:
    problem = model_problem(model, original)
    if problem:
        return [f"unlearn() {problem}"]
    bad = [
        k
        for k, v in model.state_dict().items()
        if v.is_floating_point() and not bool(torch.isfinite(v).all())
    ]
    if bad:
        return [f"returned a model with NaN/inf weights in {', '.join(bad[:3])}"]
    return []


def _determinism(kit: TinyWorld, stage: Stage, name: str, first: Outcome) -> list[str]:
    second = kit.unlearn(stage, name)
    if second.status != "ok":
        return [f"a second run with the same seed gave status '{second.status}' ({second.error})"]
    if not _same_state(first.model, second.model):
        return [
            "two runs with the same seed gave different models; draw every random "
            "number from ctx.generator (or ctx.make_model), not torch's global RNG"
        ]
    if first.result.metrics != second.result.metrics:
        return [
            f"two runs with the same seed reported different metrics "
            f"({first.result.metrics} vs {second.result.metrics})"
        ]
    return []


def _check_metric(kit: TinyWorld, name: str) -> list[str]:
    cls = kit.registry.metrics.get(name)
    stages = [kit.stage(k) for k in kit.registry.kinds.names()]
    stages = [s for s in stages if s.ok]
    # where some kind lists the metric, it is checked there (attacks are costly);
    # otherwise on every kind, and it must work on at least one
    listing = [s for s in stages if name in s.setup.default_metrics]
    problems, computed, declined = [], 0, []
    for stage in listing or stages:
        found, n_ok, refusal = _metric_on(kit, stage, cls, strict=bool(listing))
        problems += found
        computed += n_ok
        declined += [refusal] if refusal else []
    if not problems and not computed:
        problems.append(
            f"could not be computed on any registered scenario kind ({'; '.join(declined[:3])})"
        )
    return problems


def _metric_on(kit: TinyWorld, stage: Stage, cls: type, strict: bool) -> tuple[list[str], int, str]:
    """Problems on one kind (one line each), values computed, and why it declined.
    ``strict``: the kind lists the metric among its defaults, so it may not raise."""
    bad: dict[str, list[str]] = {}
    computed, refusal = 0, ""
    for row, ev in _rows(kit, stage).items():
        try:
            value = cls().compute(ev)
        except Exception as exc:
            if not strict:
                return [], 0, f"{stage.kind}: {one_line(exc)}"
            message = f"compute() raised {one_line(exc)} (it is a default metric there)"
        else:
            message = _bad_value(cls, value)
            computed += 1
        if message:
            bad.setdefault(message, []).append(row)
    return (
        [f"on '{stage.kind}', rows {', '.join(rows)}: {message}" for message, rows in bad.items()],
        computed,
        refusal,
    )


def _rows(kit: TinyWorld, stage: Stage) -> dict[str, Evaluation]:
    """original, retrain and a row between them (their average), so normalised metrics
    see a model that is neither reference."""
    mixed = copy.deepcopy(stage.refs[ORIGINAL].model)
    other = stage.refs[REFERENCE_ROW].model.state_dict()
    mixed.load_state_dict(
        {
            k: (v + other[k]) / 2 if v.is_floating_point() else v
            for k, v in mixed.state_dict().items()
        }
    )
    info = replace(stage.refs[ORIGINAL].info, seconds=0.5, reported={})
    return {
        ORIGINAL: stage.refs[ORIGINAL],
        stage.job.reference_name: stage.refs[REFERENCE_ROW],
        "unlearned": Evaluation(
            "unlearned",
            mixed,
            stage.setup,
            kit.registry.metrics,
            info,
            stage.refs,
            stage.job.reference_name,
        ),
    }


def _bad_value(cls: type, value: Any) -> str:
    """What is wrong with a value a metric computed, as a run would record it."""
    try:
        metric_value(cls.name, value, cls.percent)
    except MetricValueError as exc:
        return str(exc)
    return ""


def _check_partitioner(kit: TinyWorld, name: str) -> list[str]:
    cls = kit.registry.partitioners.get(name)
    labels = tiny_data("image", kit.seed).y_train
    problems = []
    for n_clients in (2, 3, 5):
        try:
            parts = cls().partition(labels, n_clients, generator(kit.seed, "kit", n_clients))
            again = cls().partition(labels, n_clients, generator(kit.seed, "kit", n_clients))
        except Exception as exc:
            problems.append(f"{n_clients} clients: partition() raised {one_line(exc)}")
            continue
        bad = _cover_problem(parts, len(labels), n_clients)
        if bad:
            problems.append(f"{n_clients} clients: {bad}")
        elif any(not torch.equal(a, b) for a, b in zip(parts, again)):
            problems.append(
                f"{n_clients} clients: the same generator seed gave another "
                f"partition; draw randomness from the generator argument only"
            )
    return problems


def _cover_problem(parts: Any, n: int, n_clients: int) -> str:
    if not isinstance(parts, (list, tuple)) or len(parts) != n_clients:
        return (
            f"returned {type(parts).__name__} {parts!r:.60}; return a list with one "
            f"index tensor per client ({n_clients})"
        )
    if any(
        not isinstance(p, torch.Tensor)
        or p.dim() != 1
        or p.is_floating_point()
        or p.dtype == torch.bool
        for p in parts
    ):
        return "every part must be a 1-D integer index tensor"
    joined = torch.cat(list(parts))
    if len(joined) != len(torch.unique(joined)):
        return "an index appears twice (parts must be disjoint)"
    if len(joined) != n or (n and (int(joined.min()) < 0 or int(joined.max()) >= n)):
        return f"the parts cover {len(joined)} indices, expected each of 0..{n - 1} once"
    return ""


def _check_scenario_kind(kit: TinyWorld, name: str) -> list[str]:
    stage = kit.stage(name)
    if not stage.ok:
        return stage.problems
    problems = _setup_problems(kit, stage.setup)
    declared = list(kit.registry.kinds.get(name).default_metrics)
    if declared and list(stage.setup.default_metrics) != declared:
        problems.append(
            f"build() returned default_metrics {list(stage.setup.default_metrics)} but the "
            f"class declares {declared}; return list(self.default_metrics)"
        )
    instance, modality, _ = kit.kind_instance(name)
    if not _same_setup(stage.setup, kit.job(name, instance, modality).setup):
        problems.append(
            "build() with the same generator seed gave different data; draw "
            "randomness from the generator argument only"
        )
    try:
        said = instance.check(stage.refs[ORIGINAL], stage.refs[REFERENCE_ROW])
        if not isinstance(said, list) or not all(isinstance(s, str) for s in said):
            problems.append(f"check() returned {said!r}; return a list of messages")
    except Exception as exc:
        problems.append(f"check() raised {one_line(exc)}")
    return problems


def _setup_problems(kit: TinyWorld, setup: ScenarioSetup) -> list[str]:
    problems = []
    n = len(setup.train)
    if len(setup.retained) != n:
        problems.append(f"{n} train splits but {len(setup.retained)} retained; one per client")
    request = setup.request
    if not request.clients or any(not 0 <= c < n for c in request.clients):
        problems.append(
            f"request.clients = {request.clients}; name the requesting clients, in 0..{n - 1}"
        )
    for c, mask in request.forget_masks.items():
        if not 0 <= c < n or mask.dtype != torch.bool or mask.shape != (len(setup.train[c]),):
            problems.append(
                f"forget_masks[{c}] must be a bool tensor with one entry per sample of client {c}"
            )
    missing = {"test", "forget"} - set(setup.eval_sets)
    if missing:
        problems.append(
            f"eval_sets lacks {sorted(missing)}; every kind provides 'test' and 'forget' (D_T)"
        )
    known = set(kit.registry.metrics.names())
    unknown = [m for m in setup.default_metrics if m not in known]
    if unknown:
        problems.append(f"default_metrics names unregistered metric(s) {unknown}")
    behaviour = setup.forgotten_behaviour
    if behaviour is not None and behaviour not in known:
        problems.append(
            f"forgotten_behaviour = {behaviour!r} is not a registered metric; name the "
            f"metric that measures what the request removes"
        )
    return problems


def _same_setup(a: ScenarioSetup, b: ScenarioSetup) -> bool:
    splits = lambda s: [*s.train, *s.retained, *s.eval_sets.values()]  # noqa: E731
    return len(splits(a)) == len(splits(b)) and all(
        torch.equal(x.x, y.x) and torch.equal(x.y, y.y) for x, y in zip(splits(a), splits(b))
    )


def _check_model(kit: TinyWorld, name: str) -> list[str]:
    cls = kit.registry.models.get(name)
    failures = []
    for modality in ("image", "tabular"):
        shape = tiny_data(modality).input_shape
        try:
            problem = _model_on(cls, shape)
        except Exception as exc:
            failures.append(f"{modality} input {shape}: {one_line(exc)}")
            continue
        if problem:
            return [f"{modality} input {shape}: {problem}"]
        return []  # builds and runs for at least one modality
    return [f"builds for neither the kit's images nor its rows ({'; '.join(failures)})"]


def _model_on(cls: type, shape: tuple[int, ...]) -> str:
    models = []
    for _ in range(2):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            models.append(cls().build(shape, N_CLASSES))
    model = models[0]
    if not isinstance(model, nn.Module):
        return f"build() returned {type(model).__name__}; return an nn.Module"
    model.eval()
    with torch.no_grad():
        out = model(torch.rand(4, *shape))
    if tuple(out.shape) != (4, N_CLASSES):
        return f"output shape {tuple(out.shape)} for 4 samples, expected (4, {N_CLASSES})"
    if not _same_state(models[0], models[1]):
        return "two builds under the same torch seed differ; initialise from torch's RNG"
    return ""


CHECKS: dict[str, Callable[[TinyWorld, str], list[str]]] = {
    "partitioner": _check_partitioner,
    "model": _check_model,
    "scenario kind": _check_scenario_kind,
    "metric": _check_metric,
    "method": _check_unlearner,
}
ORDER = list(CHECKS)
