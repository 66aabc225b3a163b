"""The ``fubench`` argument parser."""

from __future__ import annotations

import argparse

from fubench.cli.common import count, csv_list, device_name, path_name, probability, seed_list
from fubench.config.overrides import setting

#: ``fubench list WHAT``: the component categories, by the word the command line uses
LIST_WHAT = {
    "methods": "method",
    "kinds": "scenario kind",
    "metrics": "metric",
    "partitioners": "partitioner",
    "datasets": "dataset",
    "models": "model",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fubench", description="A benchmark suite for federated unlearning."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _run(sub)
    validate = sub.add_parser("validate", help="check scenario files without running them")
    validate.add_argument("files", nargs="+", metavar="FILE")
    _settings(validate)
    lst = sub.add_parser(
        "list",
        help="list installed components, or the scenario files of a folder",
        description="With no argument: every installed component, a heading per category, "
        "then the scenario files in ./scenarios. `list scenarios [DIR]`: the "
        "scenario files (*.yaml) of DIR (default ./scenarios, else .); `list "
        "kinds`: the installed scenario kinds (what a file's `kind:` may name).",
    )
    lst.add_argument(
        "what", nargs="?", choices=[*LIST_WHAT, "scenarios"], help="one category (default: all)"
    )
    lst.add_argument(
        "folder", nargs="?", metavar="DIR", help="with `scenarios`: the folder of scenario files"
    )
    lst.add_argument(
        "--full",
        action="store_true",
        help="full descriptions and parameter ranges, not first sentences",
    )
    show = sub.add_parser(
        "show",
        help="the full description of a component",
        description="Everything about one installed component: its "
        "plugin, full description, parameters (defaults, "
        "ranges, help) and declarations.",
    )
    show.add_argument(
        "name", help="a method, scenario kind, metric, partitioner, data set or model"
    )
    plugins = sub.add_parser("plugins", help="list loaded plugins and what they provide")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    report = sub.add_parser("table", help="print the table of stored result files")
    report.add_argument("results", nargs="+", help="result JSON files or folders")
    report.add_argument("-o", "--output", type=path_name, help="write markdown to this file")
    report.add_argument(
        "--all-points",
        action="store_true",
        help="show every sweep point, not only each method's best",
    )
    _plot(sub)
    _leaderboard(sub)
    _quality(sub)
    return parser


def _quality(sub: argparse._SubParsersAction) -> None:
    quality = sub.add_parser(
        "quality",
        help="forgetting quality ε of each method from K training replicas",
        description="Train K replicas of each seed (same data and forget set, K training "
        "seeds), run every method in each, and compare each method's K models "
        "with the K retrained ones on every forget example (logit-scaled "
        "confidence; NeurIPS 2023 unlearning challenge's ε and score). Costs K "
        "runs of every method; the original and reference models are cached "
        "(replica 0 is the seed's own run). Writes "
        "OUT/<scenario>/forget_quality_seed_<n>.json.",
    )
    quality.add_argument("file", help="scenario YAML file")
    quality.add_argument(
        "--replicas",
        type=count(2, 1000),
        default=8,
        metavar="K",
        help="training replicas per seed (default 8)",
    )
    quality.add_argument("--seeds", type=seed_list, help="comma-separated seeds (default 0)")
    quality.add_argument(
        "--methods", type=csv_list, help="comma-separated methods (default: the file's)"
    )
    quality.add_argument(
        "--delta",
        type=probability,
        default=0.01,
        help="the δ of (ε, δ)-unlearning (default 0.01, the challenge's)",
    )
    quality.add_argument(
        "--out", type=path_name, default="results", help="result folder (default: results/)"
    )
    quality.add_argument(
        "--device", type=device_name, help="auto, cpu, cuda or cuda:N (default: the file's)"
    )
    quality.add_argument(
        "--no-cache",
        action="store_true",
        help="retrain the original and reference models of every replica",
    )
    _jobs_and_threads(quality, "replicas", "; the same ε either way")
    quality.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    _settings(quality)

    check = sub.add_parser(
        "verify",
        help="run stored rows again from an empty cache and compare with the results",
        description="For every scenario under RESULTS, run the named seeds and methods "
        "again (from the scenario file the results name, this checkout's code, an empty "
        "private model cache) and compare each row with the stored one: bit for bit where "
        "the provenance says the stored row was computed on the same instruction set and "
        "library versions, else within the stored seeds' spread with every claim verdict "
        "and rank interval unchanged. One verdict per row; exit 1 on a mismatch.",
    )
    check.add_argument("results", nargs="+", metavar="RESULTS", help="result files or folders")
    check.add_argument("--seeds", type=seed_list, help="comma-separated seeds (default: all)")
    check.add_argument(
        "--methods", type=csv_list, help="comma-separated methods (default: every stored one)"
    )
    check.add_argument(
        "--device", type=device_name, help="auto, cpu, cuda or cuda:N (default: the file's)"
    )
    check.add_argument(
        "--jobs", type=count(1, 4096), metavar="N", help="tasks at once (default: one per core)"
    )
    check.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    submit = sub.add_parser(
        "submit",
        help="run a community method's submission and add its rows to the results",
        description="For each SUBMISSION.yaml (package: a folder or name==version; methods; "
        "scenarios): install the package into an environment of its own, run the "
        "conformance kit, run its methods on every scenario it names with the committed "
        "seeds, check its original and reference rows equal the committed ones, and only "
        "then add its rows, marked as a community contribution, to RESULTS.",
    )
    submit.add_argument("files", nargs="+", metavar="SUBMISSION", help="submission YAML files")
    submit.add_argument(
        "--results",
        type=path_name,
        default="leaderboard/results",
        help="the committed result folders (default: leaderboard/results)",
    )


def _run(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser(
        "run",
        help="run a scenario and print its table",
        description="Train the federation, run every method, score each "
        "against the gold standard and print a table.",
    )
    run.add_argument("file", help="scenario YAML file")
    run.add_argument(
        "--methods", type=csv_list, help="comma-separated methods (default: the file's)"
    )
    run.add_argument("--seeds", type=seed_list, help="comma-separated seeds (default: the file's)")
    run.add_argument(
        "--tuning",
        action="store_true",
        help="run the file's tuning_seeds (or --seeds) into tuning_seed_<n>.json: the seeds a "
        "swept method's point is chosen on, never reported",
    )
    run.add_argument(
        "--out", type=path_name, default="results", help="result folder (default: results/)"
    )
    run.add_argument(
        "--device", type=device_name, help="auto, cpu, cuda or cuda:N (default: the file's)"
    )
    run.add_argument(
        "--table", type=path_name, metavar="FILE", help="also save the table as markdown"
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="retrain the original and reference models instead of reusing them",
    )
    run.add_argument(
        "--fresh",
        action="store_true",
        help="recompute the rows asked for instead of resuming from existing "
        "results (other methods' stored rows stay)",
    )
    run.add_argument(
        "--prune",
        action="store_true",
        help="remove from the result files the rows the scenario file no longer lists "
        "(an earlier sweep, a removed method; community rows stay)",
    )
    run.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    run.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="name every row reused from earlier results (default: how many)",
    )
    run.add_argument(
        "--wide",
        action="store_true",
        help="print the table as one, however wide (default: in parts of at most 120 "
        "characters; --table saves it whole)",
    )
    _settings(run)
    _scale(run)


def _settings(command: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` and ``--metrics a,b``: the scenario file as changed for this
    command (:mod:`fubench.config.overrides`)."""
    group = command.add_argument_group("changing the scenario file")
    group.add_argument(
        "--set",
        dest="settings",
        action="append",
        type=setting,
        default=[],
        metavar="KEY=VALUE",
        help="set a key of the file (repeatable), the value read as YAML, e.g. --set "
        "federation.clients=10 --set methods.tis_reset.gamma=[0.1,0.3]; checked like the "
        "file; the results go to a folder of their own, <name>+<hash>",
    )
    group.add_argument(
        "--metrics",
        type=csv_list,
        metavar="a,b",
        help="add these metrics to the scenario's (the file's list, else its kind's "
        "defaults); the results stay in the scenario's folder",
    )


def _jobs_and_threads(group: argparse._ActionsContainer, units: str, note: str = "") -> None:
    """``--jobs`` and ``--threads``, for a command whose independent ``units`` (a run's
    tasks, the ε's replicas) can run side by side in worker processes."""
    group.add_argument(
        "--jobs",
        type=count(1, 1024),
        metavar="N",
        help=f"{units} at once, in worker processes (default: one per CPU core, one per GPU "
        f"on CUDA; 1 = one after the other in this process){note}",
    )
    group.add_argument(
        "--threads",
        type=count(1, 1024),
        metavar="T",
        help=f"torch threads per {units[:-1]} (default 1: every one timed at one thread count)",
    )


def _scale(run: argparse.ArgumentParser) -> None:
    scale = run.add_argument_group("running at scale")
    _jobs_and_threads(scale, "tasks")
    scale.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help='local worker processes (default) or a Ray cluster (pip install "fubench[ray]")',
    )
    scale.add_argument(
        "--address",
        metavar="ADDR",
        help="with --executor ray: the cluster to join (e.g. auto, or "
        "HOST:6379); default: a local Ray",
    )
    scale.add_argument(
        "--retime",
        action="store_true",
        help="time the reference again on this machine even when the cache holds a timing for it",
    )


def _plot(sub: argparse._SubParsersAction) -> None:
    plot = sub.add_parser("plot", help="draw figures from stored result files")
    plot_sub = plot.add_subparsers(dest="plot", metavar="FIGURE", required=True)
    tradeoff = plot_sub.add_parser(
        "tradeoff",
        help="normalised utility against forgetting over each method's sweep",
        description="The TIS paper's Figure 1: every swept method's NTA against its "
        "forgetting score, mean ± std over seeds (error bars and a shaded band), "
        "unswept methods as single points, the gold standard's ideal (1, 1) as a "
        "ring under a dashed crosshair. Each method keeps one colour and marker in "
        "every plot; a zoomed axis says so; values beyond the axes are marked at the "
        "edge with their value.",
    )
    tradeoff.add_argument("results", nargs="+", help="result JSON files or folders")
    tradeoff.add_argument(
        "-o",
        "--output",
        type=path_name,
        required=True,
        metavar="FILE.png",
        help="image file to write",
    )
    cost = plot_sub.add_parser(
        "cost",
        help="dot plot of each method's cost relative to the gold standard",
        description="One panel per scenario, all on one shared log axis: each method's "
        "counted work relative to the gold standard (work_ratio: FLOPs, the same on "
        "every machine), mean ± std over seeds, the gold standard at 1, swept "
        "methods at the point their table shows; a zero sits on the left edge.",
    )
    cost.add_argument("results", nargs="+", help="result JSON files or folders")
    cost.add_argument("-o", "--output", type=path_name, required=True, metavar="FILE.png")
    cost.add_argument(
        "--metric",
        help="the cost relative to the gold standard to draw: work_ratio (default, counted "
        "FLOPs) or rtr (wall time)",
    )
    cost.add_argument(
        "--timed",
        action="store_true",
        help="add rtr (wall time relative to the gold standard, on the machine that ran "
        "the rows) as a hollow dot under each row",
    )
    budget = plot_sub.add_parser(
        "budget",
        help="forgetting against work: each method against retraining at equal cost",
        description="One panel per scenario with a baseline swept over work budgets "
        "(budget_retrain): the baseline's forgetting at each work ratio as a curve, every "
        "other method a point at its own work ratio (mean ± std over seeds, swept methods "
        "at the point their table shows), the gold standard's forgetting a dashed line "
        "with the gold standard ringed at work 1. The legend gives each method's verdict "
        "(beats / matches / loses to retraining at equal cost).",
    )
    budget.add_argument("results", nargs="+", help="result JSON files or folders")
    budget.add_argument("-o", "--output", type=path_name, required=True, metavar="FILE.png")
    attention = plot_sub.add_parser(
        "attention",
        help="GradCAM attention maps of the same test images per model",
        description="Runs the scenario's seeds again (trained models come from the cache; "
        "methods run again, nothing is written to your results) and draws "
        "GradCAM maps of test images under original, each method and the "
        "gold standard (Ferrari paper, Fig. 5): one column per image, headed by "
        "seed and true class, each map scaled to its own maximum (colour bar), the "
        "trigger outlined. Each seed costs its methods' training time again.",
    )
    attention.add_argument("file", help="scenario YAML file")
    attention.add_argument(
        "-o",
        "--output",
        type=path_name,
        required=True,
        metavar="FILE.png",
        help="image file; {scenario} is replaced by the scenario's name",
    )
    attention.add_argument(
        "--seeds",
        "--seed",
        type=seed_list,
        default=[0, 1],
        help="comma-separated seeds to re-run; the images are shared out over them "
        "(default 0,1; each seed runs its methods again)",
    )
    attention.add_argument("--methods", type=csv_list, help="methods to show (default: the file's)")
    attention.add_argument(
        "--results",
        metavar="DIR",
        help="this scenario's results: show each swept method only at the point its table shows",
    )
    attention.add_argument(
        "--images",
        type=count(1, 64),
        default=8,
        help="how many test images in all, distinct classes first (default 8)",
    )
    attention.add_argument(
        "--split",
        help="evaluation set to draw from (default: the one the scenario kind declares, else test)",
    )
    attention.add_argument(
        "--device", type=device_name, help="auto, cpu, cuda or cuda:N (default: the file's)"
    )
    attention.add_argument(
        "--no-cache",
        action="store_true",
        help="train the original and reference models instead of reusing cached ones",
    )


def _leaderboard(sub: argparse._SubParsersAction) -> None:
    board = sub.add_parser(
        "leaderboard",
        help="write the leaderboard (markdown and/or a static HTML site) from stored result files",
        description="Per scenario a table of methods x metrics (best per column in bold), "
        "an overall ranking and a provenance footer, from result files only: as markdown "
        "(-o FILE) and/or as a static site (--html DIR) with sortable, filterable tables, a "
        "page per scenario and per method, that opens from the file system.",
    )
    board.add_argument(
        "paths",
        nargs="+",
        metavar="RESULTS",
        help="result JSON files or folders (scenario files with --list-offline)",
    )
    board.add_argument(
        "-o", "--output", type=path_name, metavar="FILE", help="markdown file to write"
    )
    board.add_argument(
        "--html",
        type=path_name,
        metavar="DIR",
        help="write the leaderboard as a static site into DIR (index.html, a page per "
        "scenario and per method, the plots copied)",
    )
    board.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when FILE (or the site in DIR) differs from what the "
        "results give",
    )
    board.add_argument(
        "--base",
        metavar="DIR",
        help="folder links are relative to (default: the folder holding the "
        "first RESULTS, e.g. leaderboard/ for leaderboard/results)",
    )
    board.add_argument(
        "--plots", metavar="DIR", help="folder of the plots to link (default: BASE/plots)"
    )
    board.add_argument(
        "--list-offline",
        action="store_true",
        help="print the scenario files given whose data load without network",
    )
    board.add_argument("--json", action="store_true", help="with --list-offline: a JSON list")
