"""``fubench run``: run a scenario file's seeds and print its table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fubench.cli.common import EXIT_FAILED_ROWS, EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    from fubench import progress
    from fubench.config import load_scenario
    from fubench.engine import ModelCache
    from fubench.plugins import get_registry
    from fubench.report import render_report
    from fubench.results import ORIGINAL, read_result, result_path
    from fubench.runner import Runner

    progress.set_quiet(args.quiet)
    registry = get_registry()
    config = load_scenario(args.file, registry)
    config = config.with_overrides(methods=args.methods, seeds=args.seeds, registry=registry)
    if args.fresh:
        for seed in config.seeds:
            result_path(args.out, config.name, seed).unlink(missing_ok=True)
    runner = Runner(config, registry, out=args.out, cache=ModelCache(enabled=not args.no_cache),
                    device=args.device, jobs=getattr(args, "jobs", 1),
                    executor=getattr(args, "executor", "local"),
                    address=getattr(args, "address", None),
                    threads=getattr(args, "threads", None), retime=getattr(args, "retime", False))
    paths = runner.run()
    results = [read_result(p) for p in paths]
    wanted = {ORIGINAL, runner.plan.reference.name, *(m.label for m in config.methods)}
    for result in results:  # show only what this invocation asked for
        result["methods"] = {k: v for k, v in result["methods"].items() if k in wanted}
    text = render_report(results, registry)
    print(text)
    if args.table:
        Path(args.table).parent.mkdir(parents=True, exist_ok=True)
        Path(args.table).write_text(text, encoding="utf-8")
    print(f"results: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    failed = any(row["status"] == "failed" for r in results for row in r["methods"].values())
    return EXIT_FAILED_ROWS if failed else EXIT_OK
