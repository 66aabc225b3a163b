"""One job: one scenario on one seed — its set-up, its two reference models, its methods
and its rows. The runner, the conformance kit, the ε replicas and the attention plots all
run jobs, so there is one way a row is produced.

Every random choice draws from generators seeded from (seed, purpose): the partition,
the scenario's poisoning or masking, each model's initialisation, each method's own
generator. With the CPU in its reproducible mode (:mod:`fubench.engine.determinism`,
set up when a job is made), a job is repeatable bit for bit on any thread count.

**The reference models** — the original (FedAvg on every client's training data, θ^i)
and the gold standard (the reference method on the reference data, θ^r) — are trained
once and cached (:mod:`fubench.engine.cache`). A model is looked up under its entry's
lock, so concurrent jobs that need the same reference train it once. The round history,
when a method needs it, is recorded into a scratch folder beside the entry and moved
into place only when training finished. Timings are kept per hardware (processor or GPU,
and thread count): the reference's ``seconds`` — what ``rtr`` divides by — always comes
from this hardware. A cached reference that was timed elsewhere is trained again here to
time it (``Plan.retime`` re-times it even when a timing exists); its weights must come
out identical, and the row records where it was timed (``timed_on``).

**A method** runs on a copy of the original model, as the federation allows it. Its own
failure never raises out of here: it becomes an :class:`Outcome` with status "n/a" (it
declared the kind unsupported, or raised ``NotApplicable``) or "failed" (anything else,
``sys.exit``, ``os._exit`` and a ``KeyboardInterrupt`` it raised included, with the
one-line error and the traceback), and the run goes on; only the user's Ctrl-C ends it
(:mod:`fubench.exits`).

**Every method gets its own inputs.** What a method is given — the copy of the
trained model, the initial state, the request's masks, the server's data, the round
history's reader, the results it reads from other methods — is its own copy, and the
clients hand it copies of their data (:class:`fubench.Federation`): whatever it does
to them in place, the next method (in this process or another) gets them as they
were."""

from __future__ import annotations

import copy
import tempfile
import traceback
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fubench import data as datasets
from fubench.api import UnlearnContext, Unlearner, UnlearnResult
from fubench.config.spec import MethodSpec
from fubench.engine import determinism
from fubench.engine.cache import CachedModel, ModelCache
from fubench.engine.outcome import Outcome, make_row, model_like, model_problem
from fubench.engine.plan import ModelBuilder, Plan, params_agree
from fubench.engine.timing import Stopwatch
from fubench.errors import NotApplicable
from fubench.evaluation import REFERENCE_ROW, Evaluation, RowInfo
from fubench.exits import failure_line, plugin_code, users_interrupt
from fubench.fl.federation import Federation, counting_server_work
from fubench.fl.history import RoundHistory
from fubench.fl.training import derive_seed, generator, state_copy
from fubench.progress import bar, say
from fubench.results import ORIGINAL, hardware
from fubench.scenario import Dataset, ScenarioSetup

#: results of methods already run in a job, by row label: other methods may read them
Outputs = dict[str, tuple[MethodSpec, UnlearnResult]]


class Job:
    """One (scenario, seed). Build it, call :meth:`references`, then
    :meth:`run_method` for each method and :meth:`method_row` for each outcome."""

    def __init__(
        self,
        plan: Plan,
        data: Dataset,
        seed: int,
        cache: ModelCache | None = None,
        data_seed: int | None = None,
    ):
        self.plan = plan
        self.data = data
        self.seed = seed
        #: seeds the partition, the kind's build and the attacks; ``seed`` seeds the
        #: training (initialisation, sampling, batches, methods). They differ only in a
        #: training replica (:mod:`fubench.engine.replicas`): same data, new training.
        self.data_seed = seed if data_seed is None else data_seed
        self.cache = cache if cache is not None else ModelCache(enabled=False)
        self.reference_name = plan.reference.name
        self.original: Outcome | None = None
        self.reference: Outcome | None = None
        self.evaluations: dict[str, Evaluation] = {}
        self._outputs: Outputs = {}
        self._tmp: list[tempfile.TemporaryDirectory] = []
        #: answers of ``Federation.ask(..., share=key)``, shared by the job's rows
        self.shared: dict[Any, Any] = {}
        determinism.configure()

    # ------------------------------------------------------------------ set-up
    @cached_property
    def setup(self) -> ScenarioSetup:
        """The kind's data for this seed, on the plan's device."""
        parts = self.plan.partitioner.partition(
            self.data.y_train, self.plan.n_clients, generator(self.data_seed, "partition")
        )
        setup = self.plan.kind.build(self.data, parts, generator(self.data_seed, "scenario"))
        setup.server_data = self.data.x_server  # the harness's, the same for every method
        setup.server_data_shifted = self.data.x_server_shifted
        setup.forgotten_behaviour = self.plan.kind.forgotten_behaviour  # for metrics
        setup.to(self.plan.device)
        if setup.attack_seed is None:
            setup.attack_seed = derive_seed(self.data_seed, "attack") % (2**31 - 1)
        return setup

    @cached_property
    def initial_state(self) -> dict[str, torch.Tensor]:
        """The weights every training of this job starts from."""
        return state_copy(self.make_model("init"))

    @cached_property
    def metrics(self) -> list[str]:
        return self.plan.row_metrics(self.setup.default_metrics)

    def make_model(self, *tag: object) -> nn.Module:
        """A model initialised from a seed derived from (seed, tag), without touching
        the global random state."""
        return self.fresh_models("").build(*tag)

    def load_model(self, state: dict[str, torch.Tensor]) -> nn.Module:
        model = self.make_model("init")
        model.load_state_dict(state)
        return model

    def fresh_models(self, label: str) -> FreshModels:
        """``ctx.make_model``: fresh, seeded models, a different one each call."""
        plan, data = self.plan, self.data
        return FreshModels(
            plan.build_model, data.input_shape, data.n_classes, plan.device, self.seed, label
        )

    def federation(self, participation: str, desc: str, reference: bool = False) -> Federation:
        plan = self.plan
        progress = (lambda it: bar(it, desc=desc, unit="round")) if plan.progress else None
        return Federation(
            self.setup,
            plan.settings,
            plan.rounds,
            plan.client_fraction,
            self.seed,
            plan.device,
            participation,
            progress=progress,
            reference=reference,
            shared=self.shared,
        )

    def row_info(
        self,
        seconds: float | None,
        federation: Federation,
        reported: dict[str, float] | None = None,
        timing: dict[str, Any] | None = None,
    ) -> RowInfo:
        stats = federation.stats
        client = federation.client_work
        return RowInfo(
            seconds,
            tuple(sorted(stats.clients_involved)),
            stats.rounds,
            stats.bytes,
            reported,
            work=client + federation.server_work,
            client_work=client,
            timed_on=hardware(self.plan.device) if seconds is not None else None,
            timing=timing,
        )

    def cache_key(self, role: str) -> str:
        if self.plan.identity is None:
            return f"uncached-{role}"
        replica = {"data_seed": self.data_seed} if self.data_seed != self.seed else {}
        return self.cache.key(
            {
                "role": role,
                "seed": self.seed,
                **replica,
                "data_fingerprint": datasets.fingerprint(self.data),
                **self.plan.identity,
            }
        )

    def tempdir(self) -> Path:
        """A temporary folder, removed with the job (or by the operating system)."""
        tmp = tempfile.TemporaryDirectory(prefix="fubench-history-")
        self._tmp.append(tmp)
        return Path(tmp.name)

    # ------------------------------------------------------------- references
    def references(self, needs_history: bool | None = None) -> tuple[Outcome, Outcome]:
        """θ^i and θ^r (cached or trained), and their evaluations."""
        if needs_history is None:
            needs_history = self.plan.needs_history()
        self.original = self._original(needs_history)
        self.reference = self._reference(self.original)
        for row, outcome in ((ORIGINAL, self.original), (REFERENCE_ROW, self.reference)):
            label = ORIGINAL if row == ORIGINAL else self.reference_name
            model = outcome.model if outcome.status == "ok" else self.original.model
            self.evaluations[row] = self._evaluation(label, model, outcome.info)
        return self.original, self.reference

    def warnings(self) -> list[str]:
        """What the kind's ``check`` says about whether the scenario happened."""
        try:
            with plugin_code():
                return list(
                    self.plan.kind.check(
                        self.evaluations[ORIGINAL], self.evaluations[REFERENCE_ROW]
                    )
                )
        except BaseException as exc:
            if users_interrupt(exc):
                raise
            return [f"the scenario's precondition check failed: {failure_line(exc)}"]

    def _original(self, needs_history: bool) -> Outcome:
        """θ^i from the cache, or trained now (and cached)."""
        cache, key = self.cache, self.cache_key("original")
        with cache.lock(key):
            cached = cache.get(key, need_history=needs_history)
            if cached is not None and needs_history:
                if cached.history_dtype != self.plan.history_dtype:
                    cached = None  # its history was stored at another precision: record anew
            model = self._load_cached(key, cached)
            if model is None:
                return self._train_original(key, needs_history)
            say(f"  seed {self.seed}: original model from cache")
            history = RoundHistory(cached.history_dir) if cached.history_dir else None
            return Outcome("ok", model, self._timed_here(cached), history=history)

    def _train_original(self, key: str, needs_history: bool) -> Outcome:
        cache, plan = self.cache, self.plan
        model = self.make_model("init")
        model.load_state_dict(self.initial_state)
        federation = self.federation("all", f"seed {self.seed} original")
        history = None
        if needs_history:
            folder = cache.scratch_history(key) if cache.enabled else self.tempdir()
            history = RoundHistory(folder, dtype=getattr(torch, plan.history_dtype))
        say(
            f"  seed {self.seed}: training the original model "
            f"({plan.rounds} rounds, {self.setup.n_clients} clients)"
        )
        watch = Stopwatch.started(torch.get_num_threads())
        federation.train(
            model,
            data="train",
            clients=range(self.setup.n_clients),
            on_round=history.record if history is not None else None,
        )
        info = self.row_info(watch.stop().seconds, federation, timing=watch.report())
        # not bool(history): an empty RoundHistory has len 0 and would read as False
        if history is not None and cache.enabled:
            history = RoundHistory(cache.keep_history(key, history.directory))
        entry = CachedModel(
            model.state_dict(),
            info,
            history.directory if history is not None else None,
            plan.history_dtype if history is not None else None,
        )
        entry.add_timing(info.timed_on, info.seconds, info.timing["contended"])
        cache.put(key, entry)
        return Outcome("ok", model, info, history=history)

    def _reference(self, original: Outcome) -> Outcome:
        """θ^r from the cache, or the reference method run now (and cached when it
        worked). Its time is what ``rtr`` divides by: a cached model without a timing on
        this hardware (or ``Plan.retime``) is trained again here to time it."""
        cache, key, name = self.cache, self.cache_key("reference"), self.reference_name
        with cache.lock(key):
            cached = cache.get(key)
            model = self._load_cached(key, cached)
            cached = cached if model is not None else None
            here = hardware(self.plan.device)
            timed = cached is not None and (
                here in cached.timings or here in cached.contended_timings
            )
            if model is not None and (not self.plan.timed or (timed and not self.plan.retime)):
                say(f"  seed {self.seed}: {name} reference from cache")
                return Outcome("ok", model, self._timed_here(cached))
            if cached is None:
                say(f"  seed {self.seed}: {name} without the forgotten data (the reference)")
            else:
                say(
                    f"  seed {self.seed}: {name} reference from cache; training it again "
                    f"to time it on {here}"
                )
            outcome = self._run(MethodSpec(name, {}), original, {})
            if outcome.status != "ok":
                return outcome
            contended = bool(outcome.info.timing and outcome.info.timing["contended"])
            if cached is None:
                entry = CachedModel(outcome.model.state_dict(), outcome.info)
                entry.add_timing(here, outcome.info.seconds, contended)
                cache.put(key, entry)
                return Outcome("ok", outcome.model, self._timed_here(entry))
            if not same_state(outcome.model.state_dict(), cached.state):
                say(
                    f"  !! seed {self.seed}: timing the reference again gave other weights "
                    f"than the cached ones (not reproducible on {self.plan.device}); the "
                    f"cached model is kept"
                )
            cached.add_timing(here, outcome.info.seconds, contended)
            cache.put(key, cached)
            return Outcome("ok", model, self._timed_here(cached))

    def _load_cached(self, key: str, cached: CachedModel | None) -> nn.Module | None:
        """The cached model, or None when there is none or its state does not fit this
        scenario's model (another shape or dtype): then it is named and trained again."""
        if cached is None:
            return None
        model = self.make_model("init")
        want = model.state_dict()
        problem = next(
            (
                f"'{k}' is {tuple(v.shape)} {v.dtype}, the model needs "
                f"{tuple(want[k].shape)} {want[k].dtype}"
                for k, v in cached.state.items()
                if k in want and (v.shape != want[k].shape or v.dtype != want[k].dtype)
            ),
            None,
        )
        if problem is None and cached.state.keys() != want.keys():
            problem = "holds other entries than the model has"
        if problem is not None:
            self.cache.discard(key, f"does not fit the model ({problem})")
            return None
        model.load_state_dict(cached.state)
        return model

    def _timed_here(self, cached: CachedModel) -> RowInfo:
        """The cached row info, with the fastest time measured on this hardware on a
        quiet machine — else, flagged, the fastest measured while it was contended —
        else the cached time and where it was measured."""
        here = hardware(self.plan.device)
        for timings, contended in ((cached.timings, False), (cached.contended_timings, True)):
            if here in timings:
                timing = dict(cached.info.timing or {}, contended=contended)
                return replace(cached.info, seconds=timings[here], timed_on=here, timing=timing)
        return cached.info

    # ---------------------------------------------------------------- methods
    def run_method(self, spec: MethodSpec) -> Outcome:
        """Run one method on a copy of the original; never raises for its failure."""
        assert self.original is not None, "call references() first"
        return self._run(spec, self.original, self._outputs)

    def _run(
        self, spec: MethodSpec, original: Outcome, outputs: Outputs, seen: tuple[str, ...] = ()
    ) -> Outcome:
        """Run ``spec``; ``outputs`` collects every successful result (methods that
        ``read`` another's find it there)."""
        cls = self.plan.registry.methods.get(spec.name)
        kind = self.plan.kind_name
        if kind in cls.unsupported_kinds:
            reason = cls.unsupported_kinds[kind]
            return Outcome("n/a", error=f"{spec.name} does not serve '{kind}' scenarios: {reason}")
        if cls.needs_history and original.history is None:
            return Outcome(
                "n/a",
                error=f"{spec.name} needs the round history; set "
                f"federation.record_history to true or auto",
            )
        say(f"  seed {self.seed}: {spec.label}")
        federation = self.federation(
            cls.participation, f"seed {self.seed} {spec.label}", reference=cls.reference
        )
        try:
            with plugin_code():
                upstream = {
                    name: self._upstream(name, spec, original, outputs, seen + (spec.name,))
                    for name in cls.reads
                }
                method = cls(**spec.params)
                ctx = self._context(cls, spec.label, original, federation, upstream)
                watch = Stopwatch.started(torch.get_num_threads())
                with counting_server_work(federation):  # FLOPs outside training and asks
                    answer = method.unlearn(ctx)
                if self.plan.device.type == "cuda":
                    torch.cuda.synchronize(self.plan.device)
            # shared asks answered from an earlier row are charged the time they took then
            seconds = watch.stop(extra_seconds=federation.stats.replayed_seconds).seconds
            result = answer if isinstance(answer, UnlearnResult) else UnlearnResult(answer)
            problem = model_problem(result.model, original.model)
            if problem:
                raise TypeError(f"{spec.name}.unlearn {problem}")
            try:
                result.model, converted = model_like(result.model, original.model)
            except TypeError as exc:
                raise TypeError(f"{spec.name}.unlearn {exc}") from None
            if converted:
                say(f"  {spec.label}: {converted}")
        except NotApplicable as exc:
            return Outcome("n/a", error=str(exc), info=self.row_info(None, federation))
        except BaseException as exc:  # a failing method is recorded, the run goes on
            if users_interrupt(exc):
                raise
            say(f"  !! {spec.label} failed: {failure_line(exc)}")
            return Outcome(
                "failed",
                error=failure_line(exc),
                traceback=traceback.format_exc(),
                exception=exc,
                info=self.row_info(None, federation),
            )
        outputs[spec.label] = (spec, result)
        info = self.row_info(seconds, federation, dict(result.metrics), watch.report())
        return Outcome("ok", result.model, info, result=result)

    def context(
        self, name: str, label: str | None = None, upstream: dict[str, Any] | None = None
    ) -> UnlearnContext:
        """The ``UnlearnContext`` method ``name`` gets in this job (for a plugin's own
        unit tests: call ``unlearn(ctx)`` and inspect ``ctx.federation.stats``)."""
        assert self.original is not None, "call references() first"
        cls = self.plan.registry.methods.get(name)
        label = label or name
        federation = self.federation(cls.participation, label, reference=cls.reference)
        return self._context(cls, label, self.original, federation, upstream or {})

    def _context(
        self,
        cls: type[Unlearner],
        label: str,
        original: Outcome,
        federation: Federation,
        upstream: dict[str, UnlearnResult],
    ) -> UnlearnContext:
        """What method ``cls`` gets for the row ``label``: a copy of θ^i, the seeded
        generator and fresh models of that row, the federation, and the round history
        when the method declares ``needs_history`` or the scenario asks for one
        (``record_history: true``) — never because another method happened to need it,
        so a row does not depend on which other methods ran."""
        wants_history = cls.needs_history or self.plan.record_history is True
        history = original.history if wants_history else None
        server_data, shifted = self.setup.server_data, self.setup.server_data_shifted
        return UnlearnContext(
            model=copy.deepcopy(original.model),
            initial_state={k: v.clone() for k, v in self.initial_state.items()},
            make_model=self.fresh_models(label),
            request=copy.deepcopy(self.setup.request),
            federation=federation,
            history=history.reader() if history is not None else None,
            device=self.plan.device,
            seed=self.seed,
            generator=generator(self.seed, label),
            scenario_kind=self.plan.kind_name,
            upstream=copy.deepcopy(upstream),
            server_data=server_data.clone() if server_data is not None else None,
            server_data_shifted=shifted.clone() if shifted is not None else None,
        )

    def _upstream(
        self,
        name: str,
        reader: MethodSpec,
        original: Outcome,
        outputs: Outputs,
        seen: tuple[str, ...],
    ) -> UnlearnResult:
        """The result of method ``name`` at the sweep point matching ``reader``: reused
        when this job computed it, else computed now (without a row of its own)."""
        if name in seen:
            raise RuntimeError(f"`reads` forms a cycle: {' -> '.join(seen + (name,))}")
        for done, result in outputs.values():
            if done.name == name and params_agree(done.params, reader.params):
                return result
        # the configured sweep point itself when there is one: same label, hence the same
        # random generator and fresh models as its own row
        spec = self.plan.upstream_spec(name, reader)
        outcome = self._run(spec, original, {}, seen)
        if outcome.status != "ok" or outcome.result is None:
            raise RuntimeError(f"upstream method {name} did not succeed: {outcome.error}")
        return outcome.result

    # ------------------------------------------------------------------- rows
    def evaluate(self, label: str, outcome: Outcome) -> Evaluation:
        """The evaluation of a method's outcome, beside the references'."""
        return self._evaluation(label, outcome.model, outcome.info)

    def _evaluation(self, label: str, model: nn.Module, info: RowInfo) -> Evaluation:
        return Evaluation(
            label,
            model,
            self.setup,
            self.plan.registry.metrics,
            info,
            self.evaluations,
            self.reference_name,
        )

    def reference_rows(self) -> dict[str, dict[str, Any]]:
        """The rows of θ^i and θ^r, as the result file stores them."""
        rows = {}
        for row, outcome in ((ORIGINAL, self.original), (REFERENCE_ROW, self.reference)):
            label = ORIGINAL if row == ORIGINAL else self.reference_name
            ev, code = self.evaluations[row], self.plan.row_code(None, self.metrics)
            rows[label] = make_row(label, {}, {}, outcome, ev, self.metrics, code)
        return rows

    def method_row(self, spec: MethodSpec, outcome: Outcome) -> dict[str, Any]:
        ev = self.evaluate(spec.label, outcome) if outcome.status == "ok" else None
        code = self.plan.row_code(spec.name, self.metrics)
        return make_row(spec.name, spec.params, spec.sweep, outcome, ev, self.metrics, code)


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


class FreshModels:
    """``ctx.make_model``: fresh models of the scenario's architecture, each initialised
    from a seed derived from (seed, label, how many came before), without touching the
    global random state. It holds what building takes and nothing of the job."""

    def __init__(
        self,
        build: ModelBuilder,
        input_shape: tuple[int, ...],
        n_classes: int,
        device: torch.device,
        seed: int,
        label: str,
    ):
        self._build, self._shape, self._classes = build, input_shape, n_classes
        self._device, self._seed, self._label = device, seed, label
        self._made = 0

    def __call__(self) -> nn.Module:
        self._made += 1
        return self.build("fresh", self._label, self._made - 1)

    def build(self, *tag: object) -> nn.Module:
        """The model seeded by (seed, *tag)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self._seed, *tag))
            model = self._build(self._shape, self._classes)
        return model.to(self._device)
