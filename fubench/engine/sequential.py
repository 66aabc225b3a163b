"""A request stream on one seed (:mod:`fubench.stream`): requests that arrive while the
federation trains, each unlearned from the model of the moment.

Every model here comes from FedAvg on one schedule: round r draws its clients and
batch orders from (seed, r) whatever happened before it (``first_round``), so a
federation that resumes training at round r goes on as a run from round 0 would. With
R the scenario's rounds and r_1 < r_2 < ... the requests' rounds:

* **the original** (θ^i) trains on everything, rounds 0..R, and never unlearns; it is
  kept at each request's round (θ^i_k, what every method's request k is measured
  against) and at the end;
* **the gold standard at request k** (θ^r_k) is the reference method (retraining) run
  on request k's stage: from the initial model, on what the clients keep once requests
  1..k are honoured, for r_k rounds; cached like any reference. **The final gold
  standard** is the last one trained on to R, which the shared schedule makes
  retraining from scratch without everything for R rounds;
* **a method's trajectory** follows the original to r_1; at request k the method
  unlearns from the current model (its context is request k's stage: the request, the
  clients' data then, the round history of this very trajectory); FedAvg resumes from
  its output on what the clients keep until the next request, or R.

Rows: every metric of a request is measured right after it (``nfs@2``, against θ^i_k
and θ^r_k) and at the end on the final models (``nfs@2.end``); unqualified metrics are
the final models' (the last request's evaluation sets) and the cost. Cost (seconds,
work, communication) adds up over the unlearning steps only: the resumed training is
the federation's own work, which every method (and retraining) does alike. The gold
standard's cost is its K retrainings. See docs/methods.md, "Scenario kinds"."""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from fubench import code_fingerprint, metric_names
from fubench.api import UnlearnContext
from fubench.config.spec import MethodSpec
from fubench.engine.cache import CachedModel, ModelCache
from fubench.engine.job import Job
from fubench.engine.outcome import Outcome, make_row
from fubench.engine.plan import Plan
from fubench.engine.timing import Stopwatch
from fubench.evaluation import REFERENCE_ROW, Evaluation, RowInfo
from fubench.fl.federation import Federation
from fubench.fl.history import RoundHistory, RoundRecord
from fubench.fl.training import generator
from fubench.progress import bar, say
from fubench.registry import Registry
from fubench.results import ORIGINAL
from fubench.scenario import Dataset, ScenarioSetup
from fubench.stages import Stage
from fubench.stream import RequestStream

#: the code record's name of this part of the harness (:mod:`fubench.code_fingerprint`)
STREAM_CODE = f"{code_fingerprint.HARNESS_MODULE}stream"
#: the roles of the metrics measured at each request (the cost adds up instead)
QUALITY = ("utility", "forgetting")


def job_for(
    plan: Plan,
    data: Dataset,
    seed: int,
    cache: ModelCache | None = None,
    data_seed: int | None = None,
) -> Job | SequentialJob:
    """The job of one (scenario, seed): a :class:`SequentialJob` for a request stream,
    else a :class:`~fubench.engine.job.Job`. Both answer the runner alike."""
    if isinstance(plan.kind, RequestStream):
        return SequentialJob(plan, data, seed, cache, data_seed)
    return Job(plan, data, seed, cache, data_seed)


class TrajectoryHistory(RoundHistory):
    """The round history of one trajectory: the original's rounds before the first
    request (``prefix``, shared and read-only) and the rounds this trajectory trained
    since (recorded into ``directory``, numbered on from the prefix)."""

    def __init__(self, prefix: RoundHistory, directory: str | Path, dtype: torch.dtype):
        super().__init__(directory, dtype)
        self.prefix = prefix

    def reader(self) -> TrajectoryHistory:
        """A reader of its own over the same rounds (what a method's context gets)."""
        return TrajectoryHistory(self.prefix.reader(), self.directory, self.dtype)

    def __len__(self) -> int:
        return len(self.prefix) + super().__len__()

    def __getitem__(self, r: int) -> RoundRecord:
        return self.prefix[r] if r < len(self.prefix) else super().__getitem__(r)

    @property
    def size_bytes(self) -> int:
        return self.prefix.size_bytes + super().size_bytes

    def round_bytes(self, r: int) -> int:
        return self.prefix.round_bytes(r) if r < len(self.prefix) else super().round_bytes(r)


class StageJob(Job):
    """The job of one request of a stream: its setup is the request's stage, its
    reference the gold standard at that request (cached under the stage's own key,
    which the stage's plan identity makes), and a method draws its randomness anew at
    each request."""

    def __init__(self, plan: Plan, data: Dataset, seed: int, cache, data_seed, stage: Stage):
        super().__init__(plan, data, seed, cache, data_seed)
        self.stage = stage
        self.setup = stage.setup  # the stage's, not a build of the plan's kind

    def _context(self, cls, label, original, federation, upstream) -> UnlearnContext:
        ctx = super()._context(cls, label, original, federation, upstream)
        at = metric_names.qualify(label, metric_names.after(self.stage.index))
        return replace(ctx, make_model=self.fresh_models(at), generator=generator(self.seed, at))


@dataclass
class StreamOutcome(Outcome):
    """A row of a stream: the final model, the cost of every unlearning step, and how
    it measures at each point (``evaluation``)."""

    evaluation: StreamEvaluation | None = None


class StreamEvaluation:
    """A row's evaluations, read by qualified metric names (:mod:`fubench.metric_names`):
    ``total`` for unqualified ones (the final model, the cost), ``after[k-1]`` for
    ``m@k``, ``end[k-1]`` for ``m@k.end``. It stands where an Evaluation does."""

    def __init__(self, total: Evaluation, after: list[Evaluation], end: list[Evaluation]):
        self.total, self.after, self.end = total, after, end
        self.info = total.info

    def value(self, metric: str) -> float | None:
        base, where = metric_names.split(metric)
        if where is None:
            return self.total.value(base)
        point = metric_names.point(where)
        if point is None or not 1 <= point[0] <= len(self.after):
            raise KeyError(f"'{metric}' names no request of this stream (1..{len(self.after)})")
        request, at_end = point
        return (self.end if at_end else self.after)[request - 1].value(base)


class SequentialJob:
    """One request stream on one seed. Answers as a :class:`~fubench.engine.job.Job`
    does: :meth:`references`, then :meth:`run_method` and :meth:`method_row`."""

    def __init__(
        self,
        plan: Plan,
        data: Dataset,
        seed: int,
        cache: ModelCache | None = None,
        data_seed: int | None = None,
    ):
        assert isinstance(plan.kind, RequestStream)
        plan.kind.bind(plan.registry)
        self.plan = plan
        self.data = data
        self.seed = seed
        self.reference_name = plan.reference.name
        #: the stream's own keys and building blocks (initial model, cache, timings)
        self.base = Job(replace(plan, identity=self._identity(None)), data, seed, cache, data_seed)
        self.cache = self.base.cache
        self.data_seed = self.base.data_seed
        self.original: Outcome | None = None
        self.reference: Outcome | None = None
        #: the final models on the last request's evaluation sets (unqualified metrics)
        self.evaluations: dict[str, Evaluation] = {}
        self._original_at: list[Outcome] = []  # θ^i at each request's round
        self._ends: list[dict[str, Evaluation]] = []  # per request: the final models
        self._rows: dict[str, StreamEvaluation] = {}

    # ------------------------------------------------------------------ set-up
    @cached_property
    def setup(self) -> ScenarioSetup:
        """Every request honoured at once (what the result file records as set-up)."""
        return self.base.setup

    @cached_property
    def stages(self) -> list[Stage]:
        """One stage per request, on the plan's device."""
        plan = self.plan
        parts = plan.partitioner.partition(
            self.data.y_train, plan.n_clients, generator(self.data_seed, "partition")
        )
        stages = plan.kind.stages(self.data, parts, generator(self.data_seed, "scenario"))
        for stage in stages:
            stage.setup.server_data = self.data.x_server
            stage.setup.to(plan.device)
        return stages

    @cached_property
    def jobs(self) -> list[StageJob]:
        """The job of each request (its stage, its gold standard)."""
        return [
            StageJob(
                replace(
                    self.plan,
                    kind=stage.kind,
                    kind_name=stage.kind_name,
                    rounds=stage.round,
                    identity=self._identity(stage.index),
                ),
                self.data,
                self.seed,
                self.cache,
                self.data_seed,
                stage,
            )
            for stage in self.stages
        ]

    def _identity(self, request: int | None) -> dict[str, Any] | None:
        """The plan identity of the stream's models (``request``: the gold standard at
        that request), with the code that composes and trains the stream."""
        identity = self.plan.identity
        if identity is None:
            return None
        kinds = [type(kind) for _, _, kind in self.plan.kind.kinds()]
        stream = {"code": code_fingerprint.record(("stream",), kinds), "request": request}
        return {**identity, "stream": stream}

    @cached_property
    def metrics(self) -> list[str]:
        """The row's columns: the scenario's (or the stream's defaults), then what
        methods report and every row gets: a cost unqualified (it adds up over the
        requests); any other (``reset_frac``) per request, unless the scenario lists its
        metrics (then it lists the ones it shows: ``reset_frac@2``)."""
        registry, stages = self.plan.registry, self.stages
        columns = list(self.plan.metrics or self._default_metrics())
        for metric in registry.row_metrics([], [spec.name for spec in self.plan.methods]):
            if registry.metrics.get(metric).role == "cost":
                names = [metric]
            elif self.plan.metrics is None:
                names = [metric_names.qualify(metric, metric_names.after(s.index)) for s in stages]
            else:
                names = []
            columns += [name for name in names if name not in columns]
        return columns

    def _default_metrics(self) -> list[str]:
        """The final model's utility metrics that every request lists; per request,
        its quality metrics right after it (not a utility metric's raw twin) and its
        forgetting metrics at the end; the cost metrics any request lists."""
        get = self.plan.registry.metrics.get
        lists = [stage.setup.default_metrics for stage in self.stages]
        shared = [m for m in lists[0] if get(m).role == "utility" and all(m in x for x in lists)]
        columns = list(shared)
        for stage, listed in zip(self.stages, lists):
            twins = {get(m).normalises for m in listed if get(m).role == "utility"}
            columns += [
                metric_names.qualify(m, metric_names.after(stage.index))
                for m in listed
                if get(m).role in QUALITY and m not in twins
            ]
        for stage, listed in zip(self.stages, lists):
            columns += [
                metric_names.qualify(m, metric_names.at_end(stage.index))
                for m in listed
                if get(m).role == "forgetting"
            ]
        for listed in lists:
            columns += [m for m in listed if get(m).role == "cost" and m not in columns]
        return columns

    def row_code(self, method: str | None) -> dict[str, Any]:
        """The code record of a row: the plan's, the requests' kinds, and this part of
        the harness (:mod:`fubench.code_fingerprint`)."""
        code = self.plan.row_code(method, self.metrics)
        kinds = code_fingerprint.record((), [type(stage.kind) for stage in self.stages])
        modules = {**code["modules"], **kinds["modules"]}
        modules[STREAM_CODE] = code_fingerprint.module(STREAM_CODE)
        return {"harness": code["harness"], "modules": modules}

    # ------------------------------------------------------------- references
    def references(self, needs_history: bool | None = None) -> tuple[Outcome, Outcome]:
        """θ^i at every request and at the end, θ^r at every request and at the end
        (cached or trained), and their evaluations."""
        if needs_history is None:
            needs_history = self.plan.needs_history()
        trajectory = self._original_trajectory(needs_history)
        self._original_at = trajectory[:-1]
        golds = []
        for job, original in zip(self.jobs, self._original_at):
            job.original = original
            job.reference = job._reference(original)
            gold = job.reference if job.reference.status == "ok" else original
            job.evaluations[ORIGINAL] = job.evaluate(ORIGINAL, original)
            job.evaluations[REFERENCE_ROW] = job._evaluation(
                self.reference_name, gold.model, gold.info
            )
            golds.append(job.reference)
        self.original = replace(trajectory[-1], info=total_info(trajectory))
        self.reference = self._final_reference(golds)
        for stage in self.stages:
            refs: dict[str, Evaluation] = {}
            refs[ORIGINAL] = self._evaluation(ORIGINAL, self.original, stage.setup, refs)
            model = self.reference if self.reference.status == "ok" else self.original
            refs[REFERENCE_ROW] = self._evaluation(
                self.reference_name, replace(model, info=self.reference.info), stage.setup, refs
            )
            self._ends.append(refs)
        self.evaluations = self._ends[-1]
        for row in (ORIGINAL, REFERENCE_ROW):
            self._rows[row] = StreamEvaluation(
                self.evaluations[row],
                [job.evaluations[row] for job in self.jobs],
                [refs[row] for refs in self._ends],
            )
        return self.original, self.reference

    def _original_trajectory(self, needs_history: bool) -> list[Outcome]:
        """θ^i at each request's round and at the end: one cached stretch each, the
        first with the round history when a method needs it."""
        rounds = [stage.round for stage in self.stages] + [self.plan.rounds]
        setup = self.stages[0].setup
        model = self.base.load_model(self.base.initial_state)
        trajectory, start = [], 0
        for i, end in enumerate(rounds):
            outcome = self._stretch(
                f"stream-original@{end}",
                model,
                setup,
                "train",
                start,
                end,
                needs_history and i == 0,
            )
            trajectory.append(outcome)
            model, start = outcome.model, end
        return trajectory

    def _final_reference(self, golds: list[Outcome]) -> Outcome:
        """The final gold standard (the last request's trained on to the end), with the
        cost of every request's retraining."""
        info = total_info(golds, self.plan.registry)
        if any(gold.status != "ok" for gold in golds):
            failed = next(gold for gold in golds if gold.status != "ok")
            return replace(failed, info=info)
        stage = self.stages[-1]
        final = self._stretch(
            "stream-reference@end",
            golds[-1].model,
            stage.setup,
            "retained",
            stage.round,
            self.plan.rounds,
            False,
        )
        return replace(final, info=info)

    def _stretch(
        self,
        role: str,
        start: torch.nn.Module,
        setup: ScenarioSetup,
        data: str,
        first: int,
        last: int,
        with_history: bool,
    ) -> Outcome:
        """FedAvg rounds ``first``..``last`` − 1 from a copy of ``start`` (cached under
        ``role``), with their round history when asked."""
        base, cache, key = self.base, self.cache, self.base.cache_key(role)
        with cache.lock(key):
            cached = cache.get(key, need_history=with_history)
            if cached is not None and with_history:
                if cached.history_dtype != self.plan.history_dtype:
                    cached = None  # its history was stored at another precision
            model = base._load_cached(key, cached)
            if model is not None:
                history = RoundHistory(cached.history_dir) if with_history else None
                return Outcome("ok", model, base._timed_here(cached), history=history)
            model = copy.deepcopy(start)
            history = None
            if with_history:
                folder = cache.scratch_history(key) if cache.enabled else base.tempdir()
                history = RoundHistory(folder, dtype=getattr(torch, self.plan.history_dtype))
            say(f"  seed {self.seed}: {role} (rounds {first}..{last - 1})")
            info = self.train(model, setup, data, first, last, history, role)
            if history is not None and cache.enabled:
                history = RoundHistory(cache.keep_history(key, history.directory))
            entry = CachedModel(
                model.state_dict(),
                info,
                history.directory if history is not None else None,
                self.plan.history_dtype if history is not None else None,
            )
            entry.add_timing(info.timed_on, info.seconds, info.timing["contended"])
            cache.put(key, entry)
            return Outcome("ok", model, info, history=history)

    def train(
        self,
        model: torch.nn.Module,
        setup: ScenarioSetup,
        data: str,
        first: int,
        last: int,
        history: RoundHistory | None = None,
        desc: str = "",
    ) -> RowInfo:
        """FedAvg rounds ``first``..``last`` − 1 on the schedule, in place, on every
        client's ``data`` of ``setup`` ("train": what they hold when its request
        arrives; "retained": what they keep after it)."""
        plan = self.plan
        progress = (
            (lambda it: bar(it, desc=f"seed {self.seed} {desc}", unit="round"))
            if plan.progress
            else None
        )
        federation = Federation(
            setup,
            plan.settings,
            plan.rounds,
            plan.client_fraction,
            self.seed,
            plan.device,
            "all",
            progress=progress,
        )
        watch = Stopwatch.started(torch.get_num_threads())
        federation.train(
            model,
            rounds=last - first,
            clients=range(setup.n_clients),
            data=data,
            first_round=first,
            on_round=history.record if history is not None else None,
        )
        return self.base.row_info(watch.stop().seconds, federation, timing=watch.report())

    def _evaluation(
        self, row: str, outcome: Outcome, setup: ScenarioSetup, refs: dict[str, Evaluation]
    ) -> Evaluation:
        registry = self.plan.registry
        return Evaluation(
            row, outcome.model, setup, registry.metrics, outcome.info, refs, self.reference_name
        )

    def warnings(self) -> list[str]:
        """What each request's kind says about whether it happened (the original at its
        round against its gold standard)."""
        return [
            f"request {stage.index} ({stage.kind_name}, round {stage.round}): {warning}"
            for stage, job in zip(self.stages, self.jobs)
            for warning in job.warnings()
        ]

    # ---------------------------------------------------------------- methods
    def run_method(self, spec: MethodSpec) -> Outcome:
        """Run one method through the stream; never raises for its failure. A request
        it does not serve, or fails on, ends the row with that request named."""
        assert self._original_at, "call references() first"
        cls = self.plan.registry.methods.get(spec.name)
        kind = self.plan.kind_name
        if kind in cls.unsupported_kinds:
            reason = cls.unsupported_kinds[kind]
            return Outcome("n/a", error=f"{spec.name} does not serve '{kind}' scenarios: {reason}")
        with tempfile.TemporaryDirectory(prefix="fubench-trajectory-") as folder:
            return self._trajectory(
                spec, cls.needs_history or self.plan.record_history is True, folder
            )

    def _trajectory(self, spec: MethodSpec, wants_history: bool, folder: str) -> Outcome:
        first = self._original_at[0]
        history = None
        if wants_history and first.history is not None:
            dtype = getattr(torch, self.plan.history_dtype)
            history = TrajectoryHistory(first.history, folder, dtype)
        model = first.model
        steps: list[Outcome] = []
        after: list[Evaluation] = []
        for stage, job in zip(self.stages, self.jobs):
            outcome = job._run(spec, replace(first, model=model, history=history), {})
            if outcome.status != "ok":
                error = (
                    f"request {stage.index} ({stage.kind_name}, round {stage.round}): "
                    f"{outcome.error}"
                )
                info = total_info([*steps, outcome], self.plan.registry)
                return replace(outcome, error=error, info=info)
            steps.append(outcome)
            after.append(
                job.evaluate(spec.label, replace(outcome, model=copy.deepcopy(outcome.model)))
            )
            model = outcome.model
            last = stage.index == len(self.stages)
            end = self.plan.rounds if last else self.stages[stage.index].round
            self.train(
                model,
                stage.setup,
                "retained",
                stage.round,
                end,
                None if last else history,
                f"{spec.label} after request {stage.index}",
            )
        info = total_info(steps, self.plan.registry)
        final = StreamOutcome("ok", model, info)
        total = self._evaluation(spec.label, final, self.stages[-1].setup, self.evaluations)
        ends = [
            self._evaluation(spec.label, final, stage.setup, refs)
            for stage, refs in zip(self.stages, self._ends)
        ]
        final.evaluation = StreamEvaluation(total, after, ends)
        return final

    # ------------------------------------------------------------------- rows
    def reference_rows(self) -> dict[str, dict[str, Any]]:
        """The rows of the original and the gold standard, as the result file stores
        them."""
        rows = {}
        code = self.row_code(None)
        for row, outcome in ((ORIGINAL, self.original), (REFERENCE_ROW, self.reference)):
            label = ORIGINAL if row == ORIGINAL else self.reference_name
            rows[label] = make_row(label, {}, {}, outcome, self._rows[row], self.metrics, code)
        return rows

    def method_row(self, spec: MethodSpec, outcome: Outcome) -> dict[str, Any]:
        evaluation = outcome.evaluation if isinstance(outcome, StreamOutcome) else None
        code = self.row_code(spec.name)
        return make_row(spec.name, spec.params, spec.sweep, outcome, evaluation, self.metrics, code)


def total_info(outcomes: list[Outcome], registry: Registry | None = None) -> RowInfo:
    """The cost of several steps together: times, work, rounds and bytes add up, the
    clients are those any step involved. With ``registry``, the cost metrics the steps
    reported themselves, summed (the others are each request's: ``reset_frac@2``);
    without, nothing is reported (the original: trained, not unlearned)."""
    infos = [o.info for o in outcomes]
    seconds = [i.seconds for i in infos]
    work = [i.work for i in infos]
    timings = [i.timing for i in infos if i.timing]
    timing = None
    if timings:
        shares = [t["cpu_share"] for t in timings if t.get("cpu_share") is not None]
        loads = [t["load"] for t in timings if t.get("load") is not None]
        timing = {
            "threads": timings[0]["threads"],
            "cpu_share": min(shares) if shares else None,
            "load": max(loads) if loads else None,
            "contended": any(t["contended"] for t in timings),
        }
    reported: dict[str, float] | None = None
    if registry is not None:
        reported = {}
        for info in infos:
            for metric, value in (info.reported or {}).items():
                cls = registry.metrics.classes.get(metric)
                if cls is not None and cls.role == "cost":
                    reported[metric] = reported.get(metric, 0.0) + value
    return RowInfo(
        sum(seconds) if None not in seconds else None,
        tuple(sorted({c for i in infos for c in i.clients})),
        sum(i.comm_rounds for i in infos),
        sum(i.comm_bytes for i in infos),
        reported,
        sum(work) if None not in work else None,
        sum(i.client_work or 0 for i in infos) if None not in work else None,
        next((i.timed_on for i in infos if i.timed_on), None),
        timing,
    )
