"""The two reference models of a job, trained once and cached together: the original
(FedAvg on every client's training data, θ^i) and the gold standard (the reference
method on the reference data, θ^r).

A model is looked up under its entry's lock, so concurrent jobs that need the same
reference train it once. The round history, when a method needs it, is recorded into a
scratch folder beside the entry and moved into place only when training finished.

Timings are kept per hardware (processor or GPU, and thread count): the reference's
``seconds`` — what ``rtr`` divides by — always comes from this hardware. A cached
reference that was timed elsewhere (another machine, another thread count) is trained
again here to time it (``Plan.retime`` re-times it even when a timing exists); its
weights must come out identical, and the row records where it was timed
(``timed_on``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from torch import nn

from fubench.api import UnlearnResult
from fubench.config.spec import MethodSpec
from fubench.engine.cache import CachedModel
from fubench.evaluation import RowInfo
from fubench.fl.history import RoundHistory
from fubench.progress import say
from fubench.results import hardware

if TYPE_CHECKING:  # pragma: no cover
    from fubench.engine.job import Job


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


def train_original(job: Job, needs_history: bool) -> Outcome:
    """θ^i from the cache, or trained now (and cached)."""
    cache, key = job.cache, job.cache_key("original")
    dtype = job.plan.history_dtype
    with cache.lock(key):
        cached = cache.get(key, need_history=needs_history)
        if cached is not None and needs_history and cached.history_dtype != dtype:
            cached = None  # its history was stored at another precision: record anew
        if cached is not None:
            say(f"  seed {job.seed}: original model from cache")
            history = RoundHistory(cached.history_dir) if cached.history_dir else None
            return Outcome(
                "ok", job.load_model(cached.state), timed_here(job, cached), history=history
            )
        return _train_original(job, key, needs_history)


def _train_original(job: Job, key: str, needs_history: bool) -> Outcome:
    cache, plan = job.cache, job.plan
    model = job.make_model("init")
    model.load_state_dict(job.initial_state)
    federation = job.federation("all", f"seed {job.seed} original")
    history = None
    if needs_history:
        folder = cache.scratch_history(key) if cache.enabled else job.tempdir()
        history = RoundHistory(folder, dtype=getattr(torch, plan.history_dtype))
    say(
        f"  seed {job.seed}: training the original model "
        f"({plan.rounds} rounds, {job.setup.n_clients} clients)"
    )
    start = time.perf_counter()
    federation.train(
        model,
        data="train",
        clients=range(job.setup.n_clients),
        on_round=history.record if history is not None else None,
    )
    info = job.row_info(time.perf_counter() - start, federation, reported=None)
    # not bool(history): an empty RoundHistory has len 0 and would read as False
    if history is not None and cache.enabled:
        history = RoundHistory(cache.keep_history(key, history.directory))
    cache.put(
        key,
        CachedModel(
            model.state_dict(),
            info,
            history.directory if history is not None else None,
            plan.history_dtype if history is not None else None,
            timings={info.timed_on: info.seconds},
        ),
    )
    return Outcome("ok", model, info, history=history)


def train_reference(job: Job, original: Outcome) -> Outcome:
    """θ^r from the cache, or the reference method run now (and cached when it worked)."""
    cache, key = job.cache, job.cache_key("reference")
    with cache.lock(key):
        cached = cache.get(key)
        here = hardware(job.plan.device)
        timed_here_already = cached is not None and here in cached.timings
        if cached is not None and (
            not job.plan.timed or (timed_here_already and not job.plan.retime)
        ):
            say(f"  seed {job.seed}: {job.reference_name} reference from cache")
            return Outcome("ok", job.load_model(cached.state), timed_here(job, cached))
        if cached is None:
            say(
                f"  seed {job.seed}: {job.reference_name} without the forgotten data "
                f"(the reference)"
            )
        else:
            say(
                f"  seed {job.seed}: {job.reference_name} reference from cache; training "
                f"it again to time it on {here}"
            )
        outcome = job.unlearn(MethodSpec(job.reference_name, {}), original, {})
        if outcome.status != "ok":
            return outcome
        if cached is None:
            cache.put(
                key,
                CachedModel(
                    outcome.model.state_dict(), outcome.info, timings={here: outcome.info.seconds}
                ),
            )
            return outcome
        if not same_state(outcome.model.state_dict(), cached.state):
            say(
                f"  !! seed {job.seed}: timing the reference again gave other weights than "
                f"the cached ones (not reproducible on {job.plan.device}); the cached "
                f"model is kept"
            )
        cached.timings[here] = outcome.info.seconds
        cache.put(key, cached)
        return Outcome("ok", job.load_model(cached.state), timed_here(job, cached))


def timed_here(job: Job, cached: CachedModel) -> RowInfo:
    """The cached row info, with the time measured on this hardware when there is one
    (else the cached time and where it was measured)."""
    here = hardware(job.plan.device)
    if here in cached.timings:
        return replace(cached.info, seconds=cached.timings[here], timed_on=here)
    return cached.info


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)
