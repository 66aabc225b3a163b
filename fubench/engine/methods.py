"""Running one method on a copy of the original model, as the federation allows it.

A method's own failure never raises out of here: it becomes an :class:`Outcome` with
status "n/a" (it declared the kind unsupported, or raised ``NotApplicable``) or "failed"
(anything else, with the one-line error and the traceback), and the run goes on."""

from __future__ import annotations

import copy
import time
import traceback
from typing import TYPE_CHECKING

import torch
from torch import nn

from fubench.api import UnlearnContext, Unlearner, UnlearnResult
from fubench.config.spec import MethodSpec
from fubench.engine.plan import agree
from fubench.engine.references import Outcome
from fubench.errors import NotApplicable, one_line
from fubench.fl.federation import Federation
from fubench.fl.training import generator
from fubench.progress import say

if TYPE_CHECKING:  # pragma: no cover
    from fubench.engine.job import Job

#: results of methods already run in a job, by row label: other methods may read them
Outputs = dict[str, tuple[MethodSpec, UnlearnResult]]


def run_method(
    job: Job, spec: MethodSpec, original: Outcome, outputs: Outputs, seen: tuple[str, ...] = ()
) -> Outcome:
    """Run ``spec`` on ``job``; ``outputs`` collects every successful result."""
    cls = job.plan.registry.methods.get(spec.name)
    kind = job.plan.kind_name
    if kind in cls.unsupported_kinds:
        return Outcome(
            "n/a",
            error=f"{spec.name} does not serve '{kind}' scenarios: {cls.unsupported_kinds[kind]}",
        )
    if cls.needs_history and original.history is None:
        return Outcome(
            "n/a",
            error=f"{spec.name} needs the round history; set "
            f"federation.record_history to true or auto",
        )
    say(f"  seed {job.seed}: {spec.label}")
    federation = job.federation(
        cls.participation, f"seed {job.seed} {spec.label}", reference=cls.reference
    )
    try:
        upstream = {
            name: upstream_result(job, name, spec, original, outputs, seen + (spec.name,))
            for name in cls.reads
        }
        method = cls(**spec.params)
        ctx = make_context(job, cls, spec.label, original, federation, upstream)
        start = time.perf_counter()
        with federation.meter.phase("server"):  # FLOPs outside training and asks
            answer = method.unlearn(ctx)
        if job.plan.device.type == "cuda":
            torch.cuda.synchronize(job.plan.device)
        # shared asks answered from an earlier row are charged the time they took then
        seconds = time.perf_counter() - start + federation.stats.replayed_seconds
        result = answer if isinstance(answer, UnlearnResult) else UnlearnResult(answer)
        problem = model_problem(result.model, original.model)
        if problem:
            raise TypeError(f"{spec.name}.unlearn {problem}")
    except NotApplicable as exc:
        return Outcome("n/a", error=str(exc), info=job.row_info(None, federation))
    except Exception as exc:  # a failing method is recorded, the run goes on
        say(f"  !! {spec.label} failed: {one_line(exc)}")
        return Outcome(
            "failed",
            error=one_line(exc),
            traceback=traceback.format_exc(),
            exception=exc,
            info=job.row_info(None, federation),
        )
    outputs[spec.label] = (spec, result)
    info = job.row_info(seconds, federation, reported=dict(result.metrics))
    return Outcome("ok", result.model, info, result=result)


def make_context(
    job: Job,
    cls: type[Unlearner],
    label: str,
    original: Outcome,
    federation: Federation,
    upstream: dict[str, UnlearnResult],
) -> UnlearnContext:
    """What method ``cls`` gets for the row ``label``: a copy of θ^i, the seeded generator
    and fresh models of that row, the federation, and the round history when the method
    declares ``needs_history`` or the scenario asks for one (``record_history: true``) —
    never because another method happened to need it, so a row does not depend on which
    other methods ran."""
    wants_history = cls.needs_history or job.plan.record_history is True
    return UnlearnContext(
        model=copy.deepcopy(original.model),
        initial_state=job.initial_state,
        make_model=job.fresh_models(label),
        request=job.setup.request,
        federation=federation,
        history=original.history if wants_history else None,
        device=job.plan.device,
        seed=job.seed,
        generator=generator(job.seed, label),
        scenario_kind=job.plan.kind_name,
        upstream=upstream,
        server_data=job.setup.server_data,
    )


def upstream_result(
    job: Job,
    name: str,
    reader: MethodSpec,
    original: Outcome,
    outputs: Outputs,
    seen: tuple[str, ...],
) -> UnlearnResult:
    """The result of method ``name`` at the sweep point matching ``reader``: reused when
    this job computed it, else computed now (without a row of its own)."""
    if name in seen:
        raise RuntimeError(f"`reads` forms a cycle: {' -> '.join(seen + (name,))}")
    for done, result in outputs.values():
        if done.name == name and agree(done.params, reader.params):
            return result
    # the configured sweep point itself when there is one: same label, hence the same
    # random generator and fresh models as its own row
    spec = job.plan.upstream_spec(name, reader)
    outcome = run_method(job, spec, original, {}, seen)
    if outcome.status != "ok" or outcome.result is None:
        raise RuntimeError(f"upstream method {name} did not succeed: {outcome.error}")
    return outcome.result


def model_problem(model: object, original: nn.Module) -> str | None:
    """Why a method's answer is not a model like the original (None when it is)."""
    if not isinstance(model, nn.Module):
        return (
            f"returned {type(model).__name__}; return an nn.Module or fubench.UnlearnResult(model)"
        )
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    want = {k: tuple(v.shape) for k, v in original.state_dict().items()}
    if got != want:
        where = next(k for k in sorted(got.keys() | want.keys()) if got.get(k) != want.get(k))
        return (
            f"returned a model of another architecture (state entry '{where}': "
            f"{got.get(where, 'missing')} instead of {want.get(where, 'none')}); "
            f"return ctx.model changed in place, or a model built like it"
        )
    return None
