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
    from fubench.results import write_text_atomic

    registry = get_registry()
    results = load_results(args.results, registry)
    note = ""
    if all(r.get("purpose") == "tuning" for r in results):
        # a folder of tuning seeds alone (fubench run --tuning): shown as they are, said so
        results = [{**r, "purpose": "evaluation"} for r in results]
        note = (
            "Tuning seeds only (tuning_seed_*.json): they choose a swept method's point; "
            "tables of evaluation seeds never report them.\n\n"
        )
    text = note + render_report(results, registry, all_points=args.all_points)
    if args.output:
        write_text_atomic(args.output, text)
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

        results = load_results(args.results, get_registry())
        fig, dpi = cost_figure(results, get_registry(), args.metric, args.timed), 130
    elif args.plot == "budget":
        from fubench.report.budget_plot import budget_figure

        fig, dpi = budget_figure(load_results(args.results, get_registry()), get_registry()), 130
    else:
        from fubench.report.plots import tradeoff_figure

        fig, dpi = tradeoff_figure(load_results(args.results, get_registry()), get_registry()), 130
    print(f"wrote {save_figure(fig, output, dpi=dpi)}")
    return EXIT_OK


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from fubench.plugins import get_registry
    from fubench.report import leaderboard as lb
    from fubench.report import load_results
    from fubench.report.quality import code_problem, load_quality
    from fubench.report.reader import ResultsError, default_base

    registry = get_registry()
    if args.list_offline:
        return list_offline(args.paths, args.json, registry)
    if args.json:
        raise ValueError("--json is only used with --list-offline")
    if not args.output and not args.html:
        raise ValueError(
            "leaderboard needs -o FILE (the markdown to write or --check) and/or --html DIR "
            "(the site)"
        )
    base = Path(args.base) if args.base else default_base(args.paths)
    if args.output and Path(args.output).parent.resolve() != base.resolve():
        print(
            f"fubench: note: links are relative to {base}/ (--base), not to "
            f"{Path(args.output).parent}/",
            file=sys.stderr,
        )
    plots = Path(args.plots) if args.plots else base / "plots"
    results = load_results(args.paths, registry, one_code=args.check)
    quality = load_quality(args.paths)
    if args.check and (problem := code_problem(results, quality)):
        raise ResultsError(problem)
    board = lb.build_board(results, registry, args.paths, base, plots, quality)
    code = EXIT_OK
    if args.output:
        code = max(code, _markdown(board, Path(args.output), args))
    if args.html:
        code = max(code, _site(board, Path(args.html), args))
    return code


def _markdown(board, output: Path, args: argparse.Namespace) -> int:
    from fubench.report import leaderboard as lb
    from fubench.report import markdown
    from fubench.results import write_text_atomic

    text = markdown.render(board)
    regenerate = f"fubench leaderboard {' '.join(args.paths)} -o {output}"
    if args.check:
        if not output.is_file():
            print(f"fubench: {output} does not exist; write it: {regenerate}", file=sys.stderr)
            return EXIT_FAILED_ROWS
        diff = lb.stale_diff(text, output)
        if diff is None:
            print(f"{output} is up to date")
            return EXIT_OK
        print("\n".join(diff), file=sys.stderr)
        print(
            f"fubench: {output} is stale against {', '.join(args.paths)}; regenerate: {regenerate}",
            file=sys.stderr,
        )
        return EXIT_FAILED_ROWS
    write_text_atomic(output, text)
    print(f"wrote {output}")
    return EXIT_OK


def _site(board, folder: Path, args: argparse.Namespace) -> int:
    from fubench.report import html

    files = html.site(board)
    if args.check:
        stale = html.stale_files(files, folder)
        if not stale:
            print(f"{folder}/ is up to date")
            return EXIT_OK
        shown = ", ".join(stale[:5]) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        print(
            f"fubench: {folder}/ is stale against {', '.join(args.paths)} ({shown} missing or "
            f"different); regenerate: fubench leaderboard {' '.join(args.paths)} --html {folder}",
            file=sys.stderr,
        )
        return EXIT_FAILED_ROWS
    html.write_site(files, folder)
    print(f"wrote {folder}/index.html ({len(files)} files)")
    return EXIT_OK


def list_offline(files: list[str], as_json: bool, registry) -> int:
    from fubench.config.validate import load_scenario
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
