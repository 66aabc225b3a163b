"""``fubench run``: run a scenario file's seeds and print its table.

Everything that can be checked is checked before any training (:mod:`fubench.preflight`):
bad input exits 2 with one line. A run that started and then stops because the machine
failed (a disk filled up, a folder turned read-only) exits 3 with one line; what finished
is saved and a rerun resumes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fubench.cli.common import EXIT_FAILED_ROWS, EXIT_OK

if TYPE_CHECKING:  # pragma: no cover
    from fubench.config.spec import ScenarioConfig


def cmd_run(args: argparse.Namespace) -> int:
    from fubench import data as datasets
    from fubench import preflight, progress
    from fubench.cli.common import load_changed
    from fubench.config.validate import apply_overrides
    from fubench.engine.cache import ModelCache
    from fubench.errors import UnknownNameError
    from fubench.plugins import get_registry
    from fubench.report import render_report
    from fubench.report.fit import TERMINAL_WIDTH
    from fubench.results import ORIGINAL, drop_rows, read_result, result_path, write_text_atomic
    from fubench.runner import Runner

    progress.set_quiet(args.quiet)
    registry = get_registry()
    config = load_changed(args.file, args, registry)
    file_methods = config.methods
    try:
        config = apply_overrides(
            config, methods=args.methods, seeds=args.seeds, registry=registry, tuning=args.tuning
        )
    except UnknownNameError as exc:
        raise preflight.PreflightError(f"argument --methods: {exc}") from None
    cache = ModelCache(enabled=not args.no_cache)
    if args.address is not None and args.executor != "ray":
        raise preflight.PreflightError("argument --address: only used with --executor ray")
    device, _ = preflight.before_training(
        config, registry, args.device, args.out, args.table, cache.root if cache.enabled else None
    )
    runner = Runner(
        config,
        registry,
        out=args.out,
        cache=cache,
        device=device,
        jobs=args.jobs,
        executor=args.executor,
        address=args.address,
        threads=args.threads,
        retime=args.retime,
        verbose=args.verbose,
    )
    wanted = {ORIGINAL, runner.plan.reference.name, *(m.label for m in config.methods)}
    if args.fresh:  # recompute what this invocation asks for; other methods' rows stay
        for seed in config.seeds:
            drop_rows(result_path(args.out, config.name, seed, config.purpose), wanted)
    # rows an earlier version of the file made stay in the tables unless pruned
    listed = wanted | {m.label for m in file_methods}
    unlisted = leftover_rows(args.out, config, listed, prune=args.prune)
    if unlisted:
        progress.say(unlisted)
    folders = [Path(args.out), cache.root, datasets.data_folder()]
    try:
        paths = runner.run()
    except (OSError, RuntimeError, MemoryError) as exc:
        failure = preflight.environment_failure(exc, folders)
        if failure is None:
            raise
        raise failure from None
    results = [read_result(p) for p in paths]
    for result in results:  # show only what this invocation asked for
        result["methods"] = {k: v for k, v in result["methods"].items() if k in wanted}
    # a run of some methods cannot test the claims about the others: it leaves them out
    partial = args.methods is not None
    whole = render_report(results, registry, only_testable=partial)
    if args.wide:
        print(whole)
    else:
        print(render_report(results, registry, width=TERMINAL_WIDTH, only_testable=partial))
    if args.table:
        try:
            write_text_atomic(args.table, whole)
        except OSError as exc:
            raise preflight.environment_failure(exc, folders) from None
    print(f"results: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    failed = any(row["status"] == "failed" for r in results for row in r["methods"].values())
    return EXIT_FAILED_ROWS if failed else EXIT_OK


def leftover_rows(out: str, config: ScenarioConfig, listed: set[str], prune: bool) -> str:
    """The rows of ``config``'s stored result files that ``listed`` does not name, as
    one line to show (removed from the files first when ``prune``); "" when none."""
    from fubench.results import (
        read_result,
        result_path,
        unlisted_rows,
        without_rows,
        write_json_atomic,
    )

    found: set[str] = set()
    for seed in config.seeds:
        path = result_path(out, config.name, seed, config.purpose)
        try:
            result = read_result(path) if path.exists() else None
        except (OSError, ValueError):
            continue  # the run names an unreadable file and starts it afresh
        labels = unlisted_rows(result, listed) if result is not None else []
        if labels and prune:
            write_json_atomic(path, without_rows(result, set(labels)))
        found.update(labels)
    if not found:
        return ""
    names = ", ".join(sorted(found))
    folder = result_path(out, config.name, 0).parent
    rows = f"{len(found)} row{'s' if len(found) > 1 else ''}"
    if prune:
        return f"  {folder}: removed {rows} the scenario file no longer lists: {names}"
    return (
        f"  {folder} holds {rows} the scenario file no longer lists ({names}): "
        "tables still show them; --prune removes them"
    )
