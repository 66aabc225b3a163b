"""Scenario × seeds → result files.

Per seed, a :class:`fubench.engine.Job` builds the scenario, gets the original and the
reference model (cached), checks the scenario's preconditions and runs every method.
After each row the seed's JSON is rewritten atomically, so an interrupted run loses at
most the row in progress, and a re-run reuses every row already computed under the same
configuration and parameters. Lifecycle hooks tell plugins as the run proceeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fubench import data as datasets
from fubench.config import MethodSpec, ScenarioConfig
from fubench.engine import Job, ModelCache, Plan
from fubench.plugins import get_registry
from fubench.progress import bar, say
from fubench.records import Dataset
from fubench.registry import Registry
from fubench.results import (ORIGINAL, SCHEMA_VERSION, clean_number, provenance, read_result,
                             result_path, row_order, stable_hash, write_json_atomic)


class Runner:
    """Runs one scenario file's seeds and writes ``<out>/<scenario>/seed_<n>.json``."""

    def __init__(self, config: ScenarioConfig, registry: Registry | None = None,
                 out: str | Path = "results", cache: ModelCache | None = None,
                 device: str | None = None):
        self.config = config
        self.registry = registry or get_registry()
        self.out = Path(out)
        self.cache = cache or ModelCache()
        self.plan = Plan.from_config(config, self.registry, device)

    def run(self) -> list[Path]:
        cfg = self.config
        self._hook("fubench_run_start", scenario=cfg, seeds=cfg.seeds,
                   methods=[m.label for m in self.plan.methods])
        data = datasets.load(cfg, self.registry)
        say(f"{cfg.name}: {data.name} from {data.source}; {len(data.y_train)} train / "
            f"{len(data.y_test)} test; device {self.plan.device}")
        self.cache.sweep_stale()
        paths = [self.run_seed(data, seed) for seed in cfg.seeds]
        self._hook("fubench_run_end", scenario=cfg, result_paths=[str(p) for p in paths])
        return paths

    def run_seed(self, data: Dataset, seed: int) -> Path:
        path = result_path(self.out, self.config.name, seed)
        config_hash = self.config_hash(data)
        result = self._previous(path, config_hash) or self._fresh(data, seed, config_hash)
        job = Job(self.plan, data, seed, self.cache)
        result["setup"] = {k: clean_number(v) for k, v in job.setup.info.items()}
        job.references()
        result["warnings"] = job.warnings()
        for warning in result["warnings"]:
            say(f"  !! {warning}")
        for label, row in job.reference_rows().items():
            self._store(result, path, seed, label, row)
        for spec in bar(self.plan.method_rows(), desc=f"seed {seed} methods", unit="method"):
            if self._reusable(result, spec, job.metrics):
                say(f"  {spec.label}: reused from {path.name}")
                continue
            self._store(result, path, seed, spec.label, job.method_row(spec, job.run(spec)))
        return path

    # ------------------------------------------------------------------ result file
    def config_hash(self, data: Dataset) -> str:
        """What the rows of a result file were computed under (not which methods or
        seeds ran, nor the device or how the history is stored)."""
        cfg = self.config.resolved()
        for key in ("methods", "seeds", "metrics", "device", "claims"):
            cfg.pop(key)
        cfg["federation"].pop("record_history")
        cfg["federation"].pop("history_dtype")
        cfg["data_fingerprint"] = datasets.fingerprint(data)
        return stable_hash(cfg)

    def _fresh(self, data: Dataset, seed: int, config_hash: str) -> dict[str, Any]:
        cfg = self.config
        return {
            "schema": SCHEMA_VERSION,
            "scenario": {"name": cfg.name, "kind": cfg.kind, "version": cfg.version,
                         "file": cfg.file, "description": cfg.description,
                         "config": cfg.resolved()},
            "config_hash": config_hash,
            "seed": seed,
            "dataset": {"name": data.name, "source": data.source,
                        "fingerprint": datasets.fingerprint(data),
                        "n_train": len(data.y_train), "n_test": len(data.y_test)},
            "reference": self.plan.reference.name,
            "setup": {}, "warnings": [], "methods": {},
            "provenance": provenance(self.plan.device, self.registry.loaded_versions()),
        }

    def _previous(self, path: Path, config_hash: str) -> dict[str, Any] | None:
        """The existing result file, if it was computed under this configuration."""
        if not path.exists():
            return None
        try:
            previous = read_result(path)
        except (ValueError, OSError) as exc:
            say(f"  {path} is unreadable ({exc}); starting it afresh")
            return None
        if previous.get("config_hash") != config_hash:
            say(f"  {path} was computed under another configuration; starting it afresh")
            return None
        previous["provenance"] = provenance(self.plan.device, self.registry.loaded_versions())
        # the file keeps describing the rows it holds: a partial run (--methods, --seeds)
        # adds its methods and seeds to those recorded, never drops them
        config, before = self.config.resolved(), previous["scenario"].get("config") or {}
        config["methods"] = {**before.get("methods", {}), **config["methods"]}
        config["seeds"] = sorted({*before.get("seeds", []), *config["seeds"]})
        previous["scenario"]["config"] = config
        previous["reference"] = self.plan.reference.name
        return previous

    @staticmethod
    def _reusable(result: dict[str, Any], spec: MethodSpec, metrics: list[str]) -> bool:
        row = result["methods"].get(spec.label)
        return (row is not None and row.get("status") == "ok"
                and row.get("params") == spec.params and set(metrics) <= set(row["metrics"]))

    def _store(self, result: dict[str, Any], path: Path, seed: int, label: str,
               row: dict[str, Any]) -> None:
        stored = result["methods"].get(label)
        if label in (ORIGINAL, self.plan.reference.name) and stored is not None \
                and stored.get("status") == "ok" == row["status"]:
            # a reference row again (a partial run): when its model measures the same as
            # the stored row's, keep that row (its seconds, and the metrics methods not
            # run now made every row compute) and only add the metrics it lacks
            cost = {m for m, c in self.registry.metrics.items() if c.role == "cost"}
            shared = (set(stored["metrics"]) & set(row["metrics"])) - cost
            if all(stored["metrics"][m] == row["metrics"][m] for m in shared):
                row = dict(stored, metrics={**row["metrics"], **stored["metrics"]})
            else:
                say(f"  seed {seed}: the {label} model differs from the one {path.name} "
                    f"was measured with (retrained elsewhere?); rows not recomputed now "
                    f"refer to the earlier one: --fresh recomputes every row")
        methods = dict(result["methods"], **{label: row})
        listed = [m.label for m in self.config.methods]
        result["methods"] = {k: methods[k] for k in row_order(methods, self.plan.reference.name,
                                                              listed)}
        write_json_atomic(path, result)
        public = {k: v for k, v in row.items() if k != "traceback"}
        self._hook("fubench_method_result", scenario=self.config, seed=seed, method=label,
                   result=public)

    def _hook(self, name: str, **kwargs: Any) -> None:
        try:
            getattr(self.registry.hook, name)(**kwargs)
        except Exception as exc:  # a logging plugin must not stop the benchmark
            say(f"  !! a plugin's {name} hook failed: {type(exc).__name__}: {exc}")
