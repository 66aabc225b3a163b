"""``fubench table``, ``plot`` and ``leaderboard``: reports from stored result files."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fubench.cli.common import EXIT_FAILED_ROWS, EXIT_OK


def cmd_table(args: argparse.Namespace) -> int:
    from fubench.plugins import get_registry
    from fubench.report import load_results, render_report

    text = render_report(load_results(args.results), get_registry(), all_points=args.all_points)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        print(text)
    return EXIT_OK


def cmd_plot(args: argparse.Namespace) -> int:
    from fubench.plugins import get_registry
    from fubench.report import load_results
    from fubench.report.figures import save_figure

    output = args.output
    if args.plot == "attention":
        from fubench.report.attention import attention_plot

        fig, output = attention_plot(
            args.file,
            args.output,
            seeds=args.seeds,
            methods=args.methods,
            results=args.results,
            n_images=args.images,
            split=args.split,
            device=args.device,
            use_cache=not args.no_cache,
        )
        dpi = 110
    elif args.plot == "cost":
        from fubench.report.cost_plot import cost_figure

        results = load_results(args.results)
        fig, dpi = cost_figure(results, get_registry(), args.metric, args.timed), 130
    else:
        from fubench.report.plots import tradeoff_figure

        fig, dpi = tradeoff_figure(load_results(args.results), get_registry()), 130
    print(f"wrote {save_figure(fig, output, dpi=dpi)}")
    return EXIT_OK


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from fubench.plugins import get_registry
    from fubench.report import leaderboard as lb
    from fubench.report import load_results
    from fubench.report.reader import default_base

    registry = get_registry()
    if args.list_offline:
        return list_offline(args.paths, args.json, registry)
    if args.json:
        raise ValueError("--json is only used with --list-offline")
    if not args.output:
        raise ValueError("leaderboard needs -o FILE (the markdown to write or --check)")
    output = Path(args.output)
    base = Path(args.base) if args.base else default_base(args.paths)
    if output.parent.resolve() != base.resolve():
        print(
            f"fubench: note: links are relative to {base}/ (--base), not to {output.parent}/",
            file=sys.stderr,
        )
    plots = Path(args.plots) if args.plots else base / "plots"
    text = lb.render_leaderboard(load_results(args.paths), registry, args.paths, base, plots)
    if args.check:
        if not output.is_file():
            print(
                f"fubench: {output} does not exist; write it: fubench leaderboard "
                f"{' '.join(args.paths)} -o {output}",
                file=sys.stderr,
            )
            return EXIT_FAILED_ROWS
        diff = lb.stale_diff(text, output)
        if diff is None:
            print(f"{output} is up to date")
            return EXIT_OK
        print("\n".join(diff), file=sys.stderr)
        print(
            f"fubench: {output} is stale against {', '.join(args.paths)}; regenerate: "
            f"fubench leaderboard {' '.join(args.paths)} -o {output}",
            file=sys.stderr,
        )
        return EXIT_FAILED_ROWS
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return EXIT_OK


def list_offline(files: list[str], as_json: bool, registry) -> int:
    from fubench.config import load_scenario
    from fubench.data import loads_offline

    offline = []
    for file in sorted(files):
        ok, why = loads_offline(load_scenario(file, registry), registry)
        if ok:
            offline.append(file)
        else:
            print(f"{file}: skipped, needs network: {why}", file=sys.stderr)
    print(json.dumps(offline) if as_json else "\n".join(offline))
    return EXIT_OK
