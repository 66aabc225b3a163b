"""What one row produced — a model (ok), or why not (n/a, failed) — and the row of the
result file it becomes (see :mod:`fubench.results` for the schema)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from fubench.api import UnlearnResult
from fubench.errors import single_line
from fubench.evaluation import Evaluation, RowInfo
from fubench.exits import failure_line, plugin_code, users_interrupt
from fubench.fl.history import RoundHistory
from fubench.metric_values import MetricValueError
from fubench.results import clean_number


@dataclass
class Outcome:
    """What one row produced: a model (ok), or why not (n/a, failed)."""

    status: str  # "ok" | "n/a" | "failed"
    model: nn.Module | None = None
    info: RowInfo = None  # type: ignore[assignment]
    result: UnlearnResult | None = None
    history: RoundHistory | None = None  # the original's round history, when recorded
    error: str | None = None
    traceback: str | None = None
    exception: BaseException | None = None

    def __post_init__(self) -> None:
        if self.info is None:
            self.info = RowInfo()

    @property
    def clients(self) -> set[int]:
        """The clients the row asked for work."""
        return set(self.info.clients)


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


def model_like(model: nn.Module, original: nn.Module) -> tuple[nn.Module, str]:
    """``model`` (of the original's architecture) on the original's device and in its
    floating-point precision, and what was converted ("" when nothing was). A model on
    the "meta" device holds no weights: TypeError."""
    want = original.state_dict()
    got = model.state_dict()
    off = [k for k, v in got.items() if (v.device, v.dtype) != (want[k].device, want[k].dtype)]
    if not off:
        return model, ""
    key, first = off[0], got[off[0]]
    if any(v.device.type == "meta" for v in got.values()):
        raise TypeError(
            f"returned a model on the 'meta' device (state entry '{key}'), which holds no "
            f"weights; return ctx.model changed in place, or a model built like it"
        )
    before = f"'{key}' as {str(first.dtype).removeprefix('torch.')} on {first.device}"
    target = want[key]
    model = model.to(device=target.device)
    floats = {v.dtype for v in want.values() if v.is_floating_point()}
    if len(floats) == 1:
        model = model.to(dtype=floats.pop())
    got = model.state_dict()
    still = [k for k, v in got.items() if (v.device, v.dtype) != (want[k].device, want[k].dtype)]
    if still:
        raise TypeError(
            f"returned a model with state entry '{still[0]}' as {got[still[0]].dtype} on "
            f"{got[still[0]].device}, unlike the original's {want[still[0]].dtype} on "
            f"{want[still[0]].device}; return it as ctx.model is"
        )
    return model, (
        f"returned its model with {before}; converted to the original's "
        f"{str(target.dtype).removeprefix('torch.')} on {target.device}"
    )


def make_row(
    name: str,
    params: dict[str, Any],
    sweep: dict[str, Any],
    outcome: Outcome,
    ev: Evaluation | None,
    metrics: list[str],
    code: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One row of the result file: the outcome measured by ``ev`` on ``metrics``, with
    the record of the code that made it (:mod:`fubench.code_fingerprint`)."""
    values: dict[str, Any] = {}
    metric_errors: dict[str, str] = {}
    seconds = None
    if ev is not None and outcome.status == "ok":
        # metrics the method reported itself (e.g. reset_frac) join the row
        reported = [m for m in (ev.info.reported or {}) if m not in metrics]
        for metric in [*metrics, *reported]:
            try:
                with plugin_code():
                    values[metric] = clean_number(ev.value(metric))
            except BaseException as exc:  # one broken metric must not lose the row
                if users_interrupt(exc):
                    raise
                values[metric] = None
                metric_errors[metric] = (
                    single_line(str(exc))
                    if isinstance(exc, MetricValueError)
                    else failure_line(exc)
                )
        seconds = ev.info.seconds
    row: dict[str, Any] = {
        "method": name,
        "params": params,
        "sweep": sweep,
        "metrics": values,
        "seconds": seconds,
        "status": outcome.status,
        "error": outcome.error,
    }
    if ev is not None:
        row["clients"] = list(ev.info.clients)
        if ev.info.work is not None:  # the split of the work metric, in FLOPs
            client = ev.info.client_work or 0
            row["flops"] = {"clients": client, "server": ev.info.work - client}
        row["timed_on"] = ev.info.timed_on
        if ev.info.timing is not None:  # how seconds was measured (contention)
            row["timing"] = ev.info.timing
    if code is not None:
        row["code"] = code
    if metric_errors:
        row["metric_errors"] = metric_errors
    if outcome.traceback:
        row["traceback"] = outcome.traceback
    return row
