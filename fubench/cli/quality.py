"""``fubench quality``: the forgetting-quality ε of a scenario's methods from K training
replicas (see :mod:`fubench.forget_quality` and :mod:`fubench.engine.replicas`)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from fubench.cli.common import EXIT_FAILED_ROWS, EXIT_OK

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable

    from fubench.config.spec import MethodSpec, ScenarioConfig
    from fubench.engine.plan import Plan
    from fubench.executors.replicas import ReplicaPool
    from fubench.runner import Runner

SCHEMA = 1


def quality_path(out: str | Path, scenario: str, seed: int) -> Path:
    """Beside the seed's result file: ``<out>/<scenario>/forget_quality_seed_<n>.json``."""
    return Path(out) / scenario / f"forget_quality_seed_{seed}.json"


def cmd_quality(args: argparse.Namespace) -> int:
    from fubench import forget_quality as fq
    from fubench import preflight, progress
    from fubench.cli.common import load_changed
    from fubench.config.validate import apply_overrides
    from fubench.engine import determinism
    from fubench.engine.cache import ModelCache
    from fubench.engine.replicas import run_replicas
    from fubench.plugins import get_registry
    from fubench.report.quality import render_records
    from fubench.results import computed_at, provenance, write_json_atomic
    from fubench.runner import Runner

    progress.set_quiet(args.quiet)
    registry = get_registry()
    config = load_changed(args.file, args, registry)
    superseded = earlier_sweeps(config.methods)
    config = apply_overrides(
        config, methods=args.methods, seeds=args.seeds or [0], registry=registry
    )
    cache = ModelCache(enabled=not args.no_cache)
    device, data = preflight.before_training(
        config, registry, args.device, args.out, None, cache.root if cache.enabled else None
    )
    runner = Runner(config, registry, out=args.out, cache=cache, device=device)
    plan = runner.plan
    elsewhere = _replica_pool(args, config, runner)
    determinism.configure(args.threads or 1)  # the threads a worker would use
    records, failed = [], False
    for seed in config.seeds:
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        rows = run_replicas(
            plan,
            data,
            seed,
            args.replicas,
            runner.cache,
            on_replica=lambda n, k, seed=seed: progress.say(
                f"{config.name} seed {seed}: {n} of {k} replicas done"
            ),
            elsewhere=elsewhere,
        )
        stats = {row: rows.matrix(row) for row in rows.stats}
        record = {
            "schema": SCHEMA,
            "what": "forget_quality",
            "scenario": {
                "name": config.name,
                "kind": config.kind,
                "version": config.version,
                "file": config.file,
                **({"overrides": config.overrides} if config.overrides else {}),
            },
            "config_hash": runner.config_hash(data),
            "code": code_record(plan),
            "seed": seed,
            "replicas": args.replicas,
            "replica_seeds": rows.seeds,
            "statistic": fq.STATISTIC,
            "estimator": fq.ESTIMATOR,
            "delta": args.delta,
            "rate_floor": fq.rate_floor(args.replicas),
            "epsilon_cap": fq.cap(args.replicas, args.replicas, args.delta),
            "aggregate": f"mean of 2/2^n, n = bin of width {fq.BIN_WIDTH} ({fq.BINS} bins)",
            "forget_examples": rows.examples,
            "reference": rows.reference,
            "null": {
                **fq.null_reference(args.replicas, args.replicas, args.delta),
                "epsilon_mean_interval": fq.null_interval(
                    args.replicas, args.replicas, max(rows.examples, 1), args.delta
                ),
                "interval": "5-95 % of the mean ε over the forget examples if independent",
            },
            "rows": fq.rows_record(
                stats,
                rows.status,
                rows.errors,
                rows.reference,
                args.replicas,
                args.delta,
                {spec.label: spec.params for spec in plan.method_rows()},
                seed,
            ),
            "seconds": {"wall": rows.wall_seconds, "per_row": rows.seconds},
            "started": started,
            "provenance": provenance(plan.device, registry.loaded_versions()),
        }
        for row in record["rows"].values():  # a merged file keeps where each row ran
            row["computed_at"] = computed_at(record["provenance"])
        path = quality_path(args.out, config.name, seed)
        record = merge(path, record, superseded)
        write_json_atomic(path, record)
        print(f"wrote {path}", file=sys.stderr)
        records.append(record)
        failed |= any(r["status"] == "failed" for r in record["rows"].values())
    print(render_records(records))
    return EXIT_FAILED_ROWS if failed else EXIT_OK


def code_record(plan: Plan) -> dict:
    """The code the ε comes from (:mod:`fubench.code_fingerprint`): the harness that
    trains and scores, as the seed results record it (``harness``), the harness of the
    replicas and the attack (``epsilon``), and the modules of every component involved."""
    from fubench import code_fingerprint
    from fubench.engine.plan import ROW_HARNESS

    methods = [plan.registry.methods.get(spec.name) for spec in plan.methods]
    classes = [*plan.model_components, *dict.fromkeys([*methods, plan.reference])]
    record = code_fingerprint.record(ROW_HARNESS, classes)
    return {**record, "epsilon": code_fingerprint.harness("epsilon")}


def _replica_pool(
    args: argparse.Namespace, config: ScenarioConfig, runner: Runner
) -> ReplicaPool | None:
    """The worker processes that run the replicas (``--jobs``), or None: one after the
    other in this process (one job, or a plugin that exists only in this process)."""
    from fubench.engine.tasks import FORWARDED_ENV
    from fubench.executors import default_jobs
    from fubench.executors.replicas import ReplicaPool

    jobs = args.jobs if args.jobs is not None else default_jobs(runner.plan.device)
    if jobs < 2:
        return None
    plugins = runner.worker_plugins()
    if plugins is None:
        return None
    cache = runner.cache
    return ReplicaPool(
        config,
        jobs,
        runner.device,
        str(cache.root) if cache.enabled else None,
        threads=args.threads or 1,
        plugins=plugins,
        env={k: os.environ[k] for k in FORWARDED_ENV if k in os.environ},
    )


#: what must agree for an earlier file's rows to stand beside this run's
SAME = ("config_hash", "seed", "replicas", "replica_seeds", "delta", "statistic", "estimator")


def earlier_sweeps(methods: list[MethodSpec]) -> Callable[[str], bool]:
    """Whether a stored row's label is an earlier sweep point of a method the scenario
    file lists (its method listed, its label not): a row the file no longer asks for."""
    labels = {m.label for m in methods}
    names = {m.name for m in methods}
    return lambda label: label.split("[", 1)[0] in names and label not in labels


def merge(path: Path, record: dict, superseded: Callable[[str], bool] = lambda _: False) -> dict:
    """``record`` with the rows of the file already at ``path`` that this run did not
    compute, when that file was made under the same configuration, replicas and δ (so a
    method added or changed later costs only its own K runs), less the ``superseded``
    ones (points of an earlier sweep); the runtime adds up."""
    import json

    from fubench.progress import say
    from fubench.results import computed_at

    try:
        previous = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return record
    if any(previous.get(key) != record[key] for key in SAME):
        return record
    kept = {k: v for k, v in previous.get("rows", {}).items() if k not in record["rows"]}
    for row in kept.values():  # rows of a file written before rows said where they ran
        row.setdefault("computed_at", computed_at(previous.get("provenance", {})))
    dropped = sorted(k for k in kept if superseded(k))
    if dropped:
        say(
            f"  {path.name}: dropping {', '.join(dropped)} (the scenario file no longer lists them)"
        )
        kept = {k: v for k, v in kept.items() if k not in dropped}
    if kept:
        say(f"  {path.name}: keeping {', '.join(sorted(kept))} from the earlier run")
    record["rows"] = {**kept, **record["rows"]}
    before = previous.get("seconds", {})
    record["seconds"] = {
        "wall": before.get("wall", 0.0) + record["seconds"]["wall"],
        "per_row": {**before.get("per_row", {}), **record["seconds"]["per_row"]},
    }
    return record
