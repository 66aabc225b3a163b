"""Scenario × seed × method → result files.

Per seed: build the scenario (partition, poisoning / masking), train the original model
and the retrain reference (each cached), check the scenario's preconditions, then run
every method on a copy of the original and measure it. After each row the seed's JSON is
rewritten atomically, so an interrupted run loses at most the row in progress, and a
re-run reuses every row already computed under the same configuration."""

from __future__ import annotations

import copy
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from fubench import data as datasets
from fubench.api import Dataset, ScenarioSetup, UnlearnContext, UnlearnResult
from fubench.cache import ModelCache
from fubench.config import MethodSpec, ScenarioConfig
from fubench.errors import NotApplicable
from fubench.evaluation import Evaluation
from fubench.fl.federation import Federation
from fubench.fl.history import RoundHistory
from fubench.fl.training import TrainSettings, float_state, generator, derive_seed
from fubench.plugins import Registry, get_registry
from fubench.progress import bar, say
from fubench.results import (SCHEMA_VERSION, clean_number, provenance, read_result,
                             result_path, stable_hash, write_json_atomic)

REFERENCE_ROWS = ("original", "retrain")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' was asked for but CUDA is not available")
    return torch.device(name)


@dataclass
class Trained:
    """A trained reference model and what its training cost."""

    model: nn.Module
    info: dict[str, Any]
    history: RoundHistory | None = None
    status: str = "ok"
    error: str | None = None
    result: UnlearnResult | None = None


class Runner:
    def __init__(self, config: ScenarioConfig, registry: Registry | None = None,
                 out: str | Path = "results", cache: ModelCache | None = None,
                 device: str | None = None):
        self.config = config
        self.registry = registry or get_registry()
        self.out = Path(out)
        self.cache = cache or ModelCache()
        self.device = resolve_device(device or config.device)
        self.kind = self.registry.get("fubench_scenario_kinds", config.kind)(**config.scenario.params)
        self.factory = self.registry.get("fubench_models", config.model.name)(**config.model.params)
        fed = config.federation
        self.settings = TrainSettings(fed.local_epochs, fed.batch_size, fed.lr, fed.momentum,
                                      fed.weight_decay)
        self.methods = self._ordered(config.methods)
        self._tmp: list[tempfile.TemporaryDirectory] = []
        #: set to {} to keep every row's model, {(seed, label): model} (attention maps)
        self.kept_models: dict[tuple[int, str], nn.Module] | None = None

    # ------------------------------------------------------------------ top level
    def run(self) -> list[Path]:
        cfg = self.config
        labels = [m.label for m in self.methods]
        self._hook("fubench_run_start", scenario=cfg, seeds=cfg.seeds, methods=labels)
        data = datasets.load(cfg, self.registry)
        say(f"{cfg.name}: {data.name} from {data.source}; {len(data.y_train)} train / "
            f"{len(data.y_test)} test; device {self.device}")
        paths = [self.run_seed(data, seed) for seed in cfg.seeds]
        self._hook("fubench_run_end", scenario=cfg, result_paths=[str(p) for p in paths])
        return paths

    def run_seed(self, data: Dataset, seed: int) -> Path:
        path = result_path(self.out, self.config.name, seed)
        self._shape = (data.input_shape, data.n_classes)
        self._fingerprint = datasets.fingerprint(data)
        result = self._previous(path) or self._fresh(data, seed)
        setup = self.build_setup(data, seed)
        result["setup"] = {k: clean_number(v) for k, v in setup.info.items()}
        initial_state = float_state(self.make_model(seed, "init"))
        needs_history = self._needs_history()

        original = self.train_original(data, setup, seed, initial_state, needs_history)
        retrain = self.train_retrain(data, setup, seed, initial_state, original)
        metrics = self._metrics(setup)
        refs: dict[str, Evaluation] = {}
        for row, trained in (("original", original), ("retrain", retrain)):
            refs[row] = Evaluation(row, trained.model, setup, self.registry, trained.info, refs)
        result["warnings"] = self._check(refs)
        for warning in result["warnings"]:
            say(f"  !! {warning}")
        for row, trained in (("original", original), ("retrain", retrain)):
            self._store(result, path, seed, row, self._row(row, {}, {}, refs[row], metrics,
                                                             trained.status, trained.error))
            self._keep(seed, row, trained)

        outputs: dict[str, tuple[MethodSpec, UnlearnResult]] = {}
        todo = [m for m in self.methods if m.name != "retrain"]
        for spec in bar(todo, desc=f"seed {seed} methods", unit="method"):
            if self._reusable(result, spec, metrics):
                say(f"  {spec.label}: reused from {path.name}")
                continue
            row = self.run_method(spec, setup, seed, original, initial_state, refs, metrics,
                                  outputs)
            self._store(result, path, seed, spec.label, row)
        return path

    # -------------------------------------------------------------------- set-up
    def build_setup(self, data: Dataset, seed: int) -> ScenarioSetup:
        fed = self.config.federation
        partitioner = self.registry.get("fubench_partitioners",
                                        fed.partition.name)(**fed.partition.params)
        parts = partitioner.partition(data.y_train, fed.clients, generator(seed, "partition"))
        setup = self.kind.build(data, parts, generator(seed, "scenario"))
        dev = self.device
        setup.train = [s.to(dev) for s in setup.train]
        setup.retained = [s.to(dev) for s in setup.retained]
        setup.eval_sets = {k: s.to(dev) for k, s in setup.eval_sets.items()}
        setup.request.forget_masks = {c: m.to(dev) for c, m in setup.request.forget_masks.items()}
        if setup.request.feature_mask is not None:
            setup.request.feature_mask = setup.request.feature_mask.to(dev)
        return setup

    def make_model(self, seed: int, *tag: object) -> nn.Module:
        """A model initialised from a seed derived from (seed, tag), without touching
        the global random state."""
        data_shape, n_classes = self._shape
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(seed, *tag))
            model = self.factory.build(data_shape, n_classes)
        return model.to(self.device)

    def federation(self, setup: ScenarioSetup, seed: int, participation: str,
                   desc: str) -> Federation:
        fed = self.config.federation
        return Federation(setup, self.settings, fed.rounds, fed.client_fraction, seed,
                          self.device, participation,
                          progress=lambda it: bar(it, desc=desc, unit="round"))

    # ---------------------------------------------------------- reference models
    def _cache_key(self, data: Dataset, seed: int, role: str) -> str:
        cfg = self.config.resolved()
        fed = dict(cfg["federation"])
        fed.pop("record_history")
        fed.pop("history_dtype")  # how the history is stored does not change the model
        versions = {hook: self._version(hook, name) for hook, name in (
            ("fubench_datasets", self.config.dataset.name),
            ("fubench_models", self.config.model.name),
            ("fubench_partitioners", self.config.federation.partition.name),
            ("fubench_scenario_kinds", self.config.kind),
            ("fubench_unlearners", "retrain"))}
        return self.cache.key({"role": role, "seed": seed, "dataset": cfg["dataset"],
                               "data_fingerprint": datasets.fingerprint(data),
                               "model": cfg["model"], "federation": fed,
                               "scenario": cfg["scenario"], "plugins": versions})

    def train_original(self, data: Dataset, setup: ScenarioSetup, seed: int,
                       initial_state: dict, needs_history: bool) -> Trained:
        key = self._cache_key(data, seed, "original")
        model = self.make_model(seed, "init")
        dtype = self.config.federation.history_dtype
        cached = self.cache.get(key, need_history=needs_history)
        if (cached is not None and needs_history
                and cached.info.get("history_dtype", "float32") != dtype):
            cached = None  # its history was stored at another precision: record anew
        if cached is not None:
            model.load_state_dict(cached.state)
            history = RoundHistory(cached.history_dir) if cached.history_dir else None
            say(f"  seed {seed}: original model from cache")
            return Trained(model, cached.info, history)
        model.load_state_dict(initial_state)
        federation = self.federation(setup, seed, "all", f"seed {seed} original")
        history = None
        if needs_history:
            folder = (self.cache.scratch_history(key) if self.cache.enabled
                      else Path(self._tempdir()))
            history = RoundHistory(folder, dtype=getattr(torch, dtype))
        say(f"  seed {seed}: training the original model "
            f"({self.config.federation.rounds} rounds, {setup.n_clients} clients)")
        start = time.perf_counter()
        federation.train(model, data="train", clients=range(setup.n_clients),
                         on_round=history.record if history is not None else None)
        # not bool(history): an empty RoundHistory has len 0 and would read as False
        info = self._info(time.perf_counter() - start, federation,
                          has_history=history is not None,
                          history_dtype=dtype if history is not None else None)
        if history is not None and self.cache.enabled:
            history = RoundHistory(self.cache.keep_history(key, history.directory))
        self.cache.put(key, model.state_dict(), info)
        return Trained(model, info, history)

    def train_retrain(self, data: Dataset, setup: ScenarioSetup, seed: int,
                      initial_state: dict, original: Trained) -> Trained:
        key = self._cache_key(data, seed, "retrain")
        cached = self.cache.get(key)
        if cached is not None:
            model = self.make_model(seed, "init")
            model.load_state_dict(cached.state)
            say(f"  seed {seed}: retrain reference from cache")
            return Trained(model, cached.info)
        say(f"  seed {seed}: retraining without the forgotten data (the reference)")
        spec = MethodSpec("retrain", {})
        trained = self._unlearn(spec, setup, seed, original, initial_state, {})
        if trained.status == "ok":
            self.cache.put(key, trained.model.state_dict(), trained.info)
        return trained

    # ------------------------------------------------------------------- methods
    def run_method(self, spec: MethodSpec, setup: ScenarioSetup, seed: int,
                   original: Trained, initial_state: dict, refs: dict[str, Evaluation],
                   metrics: list[str], outputs: dict) -> dict[str, Any]:
        trained = self._unlearn(spec, setup, seed, original, initial_state, outputs)
        if trained.status != "ok":
            row = self._row(spec.name, spec.params, spec.sweep, None, metrics,
                            trained.status, trained.error, trained.info.get("seconds"))
            if "traceback" in trained.info:
                row["traceback"] = trained.info["traceback"]
            return row
        self._keep(seed, spec.label, trained)
        ev = Evaluation(spec.label, trained.model, setup, self.registry, trained.info, refs)
        return self._row(spec.name, spec.params, spec.sweep, ev, metrics)

    def _unlearn(self, spec: MethodSpec, setup: ScenarioSetup, seed: int, original: Trained,
                 initial_state: dict, outputs: dict) -> Trained:
        """Run one method; never raises for a method's own failure."""
        cls = self.registry.unlearner(spec.name)
        if self.config.kind in cls.unsupported_kinds:
            return self._na(f"{spec.name} does not serve '{self.config.kind}' scenarios: "
                            f"{cls.unsupported_kinds[self.config.kind]}")
        if cls.needs_history and original.history is None:
            return self._na(f"{spec.name} needs the round history; set "
                            f"federation.record_history to true or auto")
        say(f"  seed {seed}: {spec.label}")
        try:
            upstream = {name: self._upstream(name, spec, setup, seed, original,
                                             initial_state, outputs) for name in cls.reads}
            method = cls(**spec.params)
            federation = self.federation(setup, seed, cls.participation,
                                         f"seed {seed} {spec.label}")
            ctx = UnlearnContext(
                model=copy.deepcopy(original.model), initial_state=initial_state,
                make_model=self._fresh_models(seed, spec.label),
                request=setup.request, federation=federation, history=original.history,
                device=self.device, seed=seed, generator=generator(seed, spec.label),
                scenario_kind=self.config.kind, upstream=upstream)
            start = time.perf_counter()
            answer = method.unlearn(ctx)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            seconds = time.perf_counter() - start
            result = answer if isinstance(answer, UnlearnResult) else UnlearnResult(answer)
            self._check_model(spec.name, result.model, original.model)
        except NotApplicable as exc:
            return self._na(str(exc))
        except Exception as exc:  # a failing method is recorded, the run goes on
            message = f"{type(exc).__name__}: {exc}"
            say(f"  !! {spec.label} failed: {message}")
            return Trained(original.model, {"traceback": traceback.format_exc()},
                           status="failed", error=message)
        outputs[spec.label] = (spec, result)
        info = self._info(seconds, federation)
        info["metrics"] = dict(result.metrics)
        return Trained(result.model, info, result=result)

    def _upstream(self, name: str, spec: MethodSpec, setup, seed, original, initial_state,
                  outputs) -> UnlearnResult:
        """The result of method ``name`` at the sweep point matching ``spec``: reuse it
        when this seed computed it, else compute it now (without a row of its own)."""
        for done_spec, result in outputs.values():
            if done_spec.name == name and _matches(done_spec.params, spec.params):
                return result
        # the configured sweep point itself when there is one: same label, hence the same
        # random generator and fresh models as its own row
        listed = next((m for m in self.config.methods
                       if m.name == name and _matches(m.params, spec.params)), None)
        cls = self.registry.unlearner(name)
        shared = {k: v for k, v in spec.params.items() if k in cls.parameters}
        defaults = next((m.params for m in self.config.methods if m.name == name), {})
        upstream_spec = listed or MethodSpec(name, {**defaults, **shared})
        trained = self._unlearn(upstream_spec, setup, seed, original, initial_state, {})
        if trained.status != "ok" or trained.result is None:
            raise RuntimeError(f"upstream method {name} did not succeed: {trained.error}")
        return trained.result

    # -------------------------------------------------------------------- helpers
    def _fresh_models(self, seed: int, label: str) -> Callable[[], nn.Module]:
        count = iter(range(1_000_000))
        return lambda: self.make_model(seed, "fresh", label, next(count))

    @staticmethod
    def _check_model(name: str, model: Any, original: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"{name}.unlearn returned {type(model).__name__}, expected an "
                            f"nn.Module or UnlearnResult")
        got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        want = {k: tuple(v.shape) for k, v in original.state_dict().items()}
        if got != want:
            raise TypeError(f"{name}.unlearn returned a model of another architecture")

    def _info(self, seconds: float, federation: Federation, **extra: Any) -> dict[str, Any]:
        stats = federation.stats
        return {"seconds": seconds, "clients_involved": len(stats.clients_involved),
                "clients": sorted(stats.clients_involved), "comm_rounds": stats.rounds,
                "comm_bytes": stats.bytes, **extra}

    def _na(self, reason: str) -> Trained:
        return Trained(None, {}, status="n/a", error=reason)  # type: ignore[arg-type]

    def _row(self, name: str, params: dict, sweep: dict, ev: Evaluation | None,
             metrics: list[str], status: str = "ok", error: str | None = None,
             seconds: float | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        metric_errors: dict[str, str] = {}
        if ev is not None and status == "ok":
            # metrics the method reported itself (e.g. reset_frac) join the row
            reported = [m for m in ev.info.get("metrics", {}) if m not in metrics]
            for metric in [*metrics, *reported]:
                try:
                    values[metric] = clean_number(ev.value(metric))
                except Exception as exc:  # one broken metric must not lose the row
                    values[metric] = None
                    metric_errors[metric] = f"{type(exc).__name__}: {exc}"
            seconds = ev.info.get("seconds")
        row = {"method": name, "params": params, "sweep": sweep, "metrics": values,
               "seconds": seconds, "status": status, "error": error}
        if ev is not None:
            row["clients"] = ev.info.get("clients")
        if metric_errors:
            row["metric_errors"] = metric_errors
        return row

    def _metrics(self, setup: ScenarioSetup) -> list[str]:
        """The scenario's metrics, then those its methods report themselves (every row
        gets them, so e.g. 0 bytes of history stands beside FedRecovery's)."""
        metrics = list(self.config.metrics or setup.default_metrics)
        for spec in self.methods:
            metrics += [m for m in self.registry.unlearner(spec.name).reports
                        if m not in metrics]
        return metrics

    def _check(self, refs: dict[str, Evaluation]) -> list[str]:
        try:
            return list(self.kind.check(refs["original"], refs["retrain"]))
        except Exception as exc:
            return [f"the scenario's precondition check failed: {type(exc).__name__}: {exc}"]

    def _needs_history(self) -> bool:
        wanted = self.config.federation.record_history
        if wanted is True:
            return True
        if wanted is False:
            return False
        return any(self.registry.unlearner(m.name).needs_history for m in self.methods)

    def _ordered(self, methods: list[MethodSpec]) -> list[MethodSpec]:
        """Methods that read another method's output run after the methods they read."""
        reads = {m.name: set(self.registry.unlearner(m.name).reads) for m in methods}
        return sorted(methods, key=lambda m: bool(reads[m.name]))

    def _version(self, hook: str, name: str) -> str:
        owner = self.registry.owner.get((hook, name), "")
        for info in self.registry.plugins:
            if info.name == owner:
                return f"{info.distribution} {info.version}"
        return owner

    def _keep(self, seed: int, label: str, trained: Trained) -> None:
        if self.kept_models is not None and trained.status == "ok":
            self.kept_models[(seed, label)] = trained.model

    def _tempdir(self) -> str:
        tmp = tempfile.TemporaryDirectory(prefix="fubench-history-")
        self._tmp.append(tmp)
        return tmp.name

    def _hook(self, name: str, **kwargs: Any) -> None:
        try:
            getattr(self.registry.hook, name)(**kwargs)
        except Exception as exc:  # a logging plugin must not stop the benchmark
            say(f"  !! a plugin's {name} hook failed: {type(exc).__name__}: {exc}")

    # ------------------------------------------------------------------ result file
    def _config_hash(self) -> str:
        cfg = self.config.resolved()
        for key in ("methods", "seeds", "metrics", "device"):
            cfg.pop(key)
        cfg["federation"].pop("record_history")
        cfg["federation"].pop("history_dtype")
        cfg["data_fingerprint"] = self._fingerprint
        return stable_hash(cfg)

    def _fresh(self, data: Dataset, seed: int) -> dict[str, Any]:
        cfg = self.config
        plugins = {p.name: p.version for p in self.registry.plugins if p.error is None}
        return {
            "schema": SCHEMA_VERSION,
            "scenario": {"name": cfg.name, "kind": cfg.kind, "version": cfg.version,
                         "file": cfg.file, "description": cfg.description,
                         "config": cfg.resolved()},
            "config_hash": self._config_hash(),
            "seed": seed,
            "dataset": {"name": data.name, "source": data.source,
                        "fingerprint": datasets.fingerprint(data),
                        "n_train": len(data.y_train), "n_test": len(data.y_test)},
            "setup": {}, "warnings": [], "methods": {},
            "provenance": provenance(self.device, plugins),
        }

    def _previous(self, path: Path) -> dict[str, Any] | None:
        """The existing result file, if it was computed under this configuration."""
        if not path.exists():
            return None
        try:
            previous = read_result(path)
        except (ValueError, OSError):
            return None
        if previous.get("config_hash") != self._config_hash():
            say(f"  {path} was computed under another configuration; starting it afresh")
            return None
        plugins = {p.name: p.version for p in self.registry.plugins if p.error is None}
        previous["provenance"] = provenance(self.device, plugins)
        previous["scenario"]["config"] = self.config.resolved()
        return previous

    @staticmethod
    def _reusable(result: dict[str, Any], spec: MethodSpec, metrics: list[str]) -> bool:
        row = result["methods"].get(spec.label)
        return (row is not None and row.get("status") == "ok"
                and row.get("params") == spec.params and set(metrics) <= set(row["metrics"]))

    def _store(self, result: dict[str, Any], path: Path, seed: int, label: str,
               row: dict[str, Any]) -> None:
        methods = result["methods"]
        methods[label] = row
        # keep the reading order: original, methods in config order, retrain
        order = ["original"] + [m.label for m in self.config.methods if m.name != "retrain"]
        order += ["retrain"]
        result["methods"] = {k: methods[k] for k in order if k in methods}
        result["methods"].update({k: v for k, v in methods.items() if k not in result["methods"]})
        write_json_atomic(path, result)
        public = {k: v for k, v in row.items() if k != "traceback"}
        self._hook("fubench_method_result", scenario=self.config, seed=seed, method=label,
                   result=public)


def _matches(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two parameter sets agree on every key they share."""
    return all(a[k] == b[k] for k in a.keys() & b.keys())
