"""``fubench validate``, ``list``, ``show`` and ``plugins``: what is installed, what the
scenario files in a folder are, and whether they are right and their data are here,
without running anything."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

from fubench.cli.cards import Card, ParamCard, description
from fubench.cli.common import EXIT_OK, EXIT_USAGE
from fubench.cli.parser import LIST_WHAT
from fubench.errors import (
    ConfigError,
    DataUnavailable,
    FubenchError,
    UnknownNameError,
    one_line,
    origin,
    unknown,
)

LIFECYCLE_HOOKS = ("fubench_run_start", "fubench_method_result", "fubench_run_end")
#: where ``fubench list`` looks for scenario files when given no folder
SCENARIO_FOLDER = "scenarios"


# ------------------------------------------------------------------------- validate
def cmd_validate(args: argparse.Namespace) -> int:
    from fubench.cli.common import load_changed
    from fubench.plugins import get_registry

    registry = get_registry()
    bad, lacking, checked = 0, 0, {}
    for file in args.files:
        try:
            config = load_changed(file, args, registry)
        except ConfigError as exc:
            print(f"{exc}", file=sys.stderr)
            bad += 1
            continue
        key = repr((config.dataset.name, sorted(config.dataset.params.items())))
        if key not in checked:
            checked[key] = data_here(config, registry)
        here, detail = checked[key]
        problem = setup_problem(config, registry) if here else None
        if problem:
            print(problem, file=sys.stderr)
            bad += 1
            continue
        methods = ", ".join(m.label for m in config.methods)
        print(
            f"{file}: ok ({config.kind} on {config.dataset.name}, v{config.version}; "
            f"methods: {methods}; seeds: {config.seeds})"
        )
        if config.overrides:
            from fubench.config.overrides import typed

            changed = " --set ".join(f"{k}={typed(v)}" for k, v in config.overrides.items())
            print(f"  changed by --set {changed}: results go to {config.name}/")
        lacking += not here
        print(
            f"  data: {config.dataset.name} — "
            + (
                f"here, no download needed: {detail}"
                if here
                else f"NOT here without a download or a package: {detail}"
            )
        )
    if lacking:
        print(
            f"{lacking} of {len(args.files) - bad} valid file(s) need data this machine "
            f"lacks: run them where the data are, or get them as the 'data:' lines say",
            file=sys.stderr,
        )
    return EXIT_USAGE if bad else EXIT_OK


def data_here(config: Any, registry: Any) -> tuple[bool, str]:
    """(whether the scenario's data set loads here without network, its source or why
    not). Loaders that can download are asked not to; their notes are kept quiet."""
    from fubench.data import data_root

    cls = registry.datasets.get(config.dataset.name)
    params = dict(config.dataset.params)
    if "download" in cls.parameters:
        params["download"] = False
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            data = cls(**params).load(data_root())
        except DataUnavailable as exc:
            return False, " ".join(str(exc).split())
        except Exception as exc:  # a broken loader: say so, do not stop validating
            return False, f"the loader failed: {one_line(exc)}"
    return True, data.source


def setup_problem(config: Any, registry: Any) -> str | None:
    """What ``run`` would refuse once the data are here (more clients than samples, a
    client left without data, a kind's setting the data do not allow, such as a column
    they lack), on one line; None when every seed's setup builds."""
    from fubench import preflight
    from fubench.engine.plan import Plan

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            data = preflight.load_data(config, registry)
            preflight.check_sizes(config, Plan.from_config(config, registry, "cpu"), data)
        except FubenchError as exc:
            return " ".join(str(exc).split())
        except Exception as exc:  # a broken loader or plugin: say so, validate the rest
            return f"{config.file}: {one_line(exc)}{origin(exc)}"
    return None


# ----------------------------------------------------------------------------- list
def cmd_list(args: argparse.Namespace) -> int:
    from fubench.cli.manifest import catalog
    from fubench.plugins import get_registry

    if args.what == "scenarios":
        return list_scenario_files(Path(args.folder) if args.folder else None, get_registry())
    if args.folder:
        raise ValueError(f"a folder is only for `fubench list scenarios`, not for {args.what}")
    scenarios_here = args.what is None and Path(SCENARIO_FOLDER).is_dir()
    if scenarios_here:  # checking the files needs the plugins: load them once, first
        get_registry()
    cards = catalog().categories
    wanted = [args.what] if args.what else list(LIST_WHAT)
    for i, what in enumerate(wanted):
        category = cards[LIST_WHAT[what]]
        if len(wanted) > 1:  # everything: a heading per category
            if i:
                print()
            print(f"{what.capitalize()} ({len(category)}):")
        for card in category:
            print_component(card, args.full)
    if scenarios_here:
        print()
        list_scenario_files(None, get_registry())
    if not args.full:
        print(
            "\n(first sentences only: `fubench list --full` or `fubench show NAME` for "
            "the full descriptions)"
        )
    return EXIT_OK


def print_component(card: Card, full: bool) -> None:
    if full:  # the whole description, as written
        print(f"  {card.name:<18} [{card.owner}]")
        for line in card.description.splitlines():
            print(f"      {line}" if line else "")
    else:
        first, more = first_sentence(card.description)
        print(f"  {card.name:<18} {first}{' …' if more else ''}  [{card.owner}]")
    for param in card.params:
        print(f"      {param_text(param, full)}")


def summary(cls: type) -> tuple[str, bool]:
    """The first sentence of a component's description, and whether more text follows."""
    return first_sentence(description(cls))


def first_sentence(text: str) -> tuple[str, bool]:
    """The description's first sentence, whole, and whether more text follows."""
    paragraph = " ".join(text.split("\n\n")[0].split())
    first = paragraph
    for end in re.finditer(r"(?<=[.!?;:])\s+(?=[A-Z(`*])", paragraph):
        candidate = paragraph[: end.start()]
        if candidate.count("(") <= candidate.count(")"):  # never inside parentheses
            first = candidate
            break
    return first, len(" ".join(text.split())) > len(first)


def param_text(param: ParamCard, full: bool = False) -> str:
    default = "required" if param.required else f"default {param.default}"
    parts = [default]
    if full:
        if param.choices is not None:
            parts.append(f"one of {', '.join(param.choices)}")
        if param.min is not None:
            parts.append(f"{'>' if param.min_exclusive else '≥'} {param.min:g}")
        if param.max is not None:
            parts.append(f"≤ {param.max:g}")
        if param.nullable:
            parts.append("may be null")
    return f"{param.name}: {', '.join(parts)}{' — ' + param.help if param.help else ''}"


def list_scenario_files(folder: Path | None, registry: Any) -> int:
    """The scenario files a user runs: ``*.yaml`` of ``folder`` (default ``scenarios/``
    here, else the current folder), one line each."""
    from fubench.config.validate import load_scenario

    if folder is None:
        folder = Path(SCENARIO_FOLDER) if Path(SCENARIO_FOLDER).is_dir() else Path(".")
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder")
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    print(
        f"Scenario files in {folder}/ ({len(files)}; `fubench validate FILE` checks one and "
        f"its data, `fubench list kinds` lists the scenario kinds):"
    )
    for file in files:
        try:
            config = load_scenario(str(file), registry)
        except ConfigError as exc:
            print(f"  {file.name:<30} INVALID: {exc}")
            continue
        fed = config.federation
        what = (
            f"{config.kind} on {config.dataset.name}, {config.model.name}, "
            f"{fed.clients} clients × {fed.rounds} rounds, {len(config.methods)} methods, "
            f"seeds {', '.join(map(str, config.seeds))}"
        )
        about = " ".join((config.description or "").split("\n\n")[0].split())
        print(f"  {file.name:<30} {what}{' — ' + about if about else ''}")
    return EXIT_OK


# ----------------------------------------------------------------------------- show
def cmd_show(args: argparse.Namespace) -> int:
    from fubench.cli.manifest import catalog

    shown = catalog()
    found = [
        card for cards in shown.categories.values() for card in cards if card.name == args.name
    ]
    if not found:
        unknown_component(args.name)
    for i, card in enumerate(found):
        if i:
            print()
        print(f"{card.what} '{card.name}' — plugin {card.owner} ({card.version})\n")
        print(card.description or "(no description)")
        if card.params:
            print("\nparameters:")
            for param in card.params:
                print(f"  {param_text(param, full=True)}")
        if card.declared:
            print("\ndeclarations:")
            for attr, value in card.declared:
                print(f"  {attr} = {value}")
        if card.what == "scenario kind":
            print_kind_metrics(card, shown.always_metrics)
    return EXIT_OK


def unknown_component(name: str) -> None:
    """Raise the error for a name no component has: "its plugin failed to load" where
    a broken plugin would provide it, else "did you mean"."""
    from fubench.plugins import get_registry

    registry = get_registry()
    for category in registry.categories:
        if name in category.failed_names:
            category.get(name)  # raises "... its plugin failed to load ..."
    every = {n for category in registry.categories for n in category}
    raise UnknownNameError(unknown("component", name, every))


def print_kind_metrics(card: Card, always: list[str]) -> None:
    """The metrics a scenario of this kind shows when its file lists none: declared by
    the class, else found by building the kind on the conformance kit's tiny data (when
    its card was made: :func:`fubench.cli.cards.built_metrics`)."""
    metrics, how = list(card.default_metrics), ""
    if not metrics:
        metrics, how = list(card.built_metrics), card.built_how
    print("\ndefault metrics (a file's metrics: list replaces them; run --metrics a,b adds):")
    if metrics:
        print(f"  {', '.join(metrics)}{how}")
    else:
        print(f"  unknown{how}")
    every = [m for m in always if m not in metrics]
    if every:
        print(f"  and on every row: {', '.join(every)}")


# -------------------------------------------------------------------------- plugins
def cmd_plugins(args: argparse.Namespace) -> int:
    from fubench.errors import PluginError
    from fubench.plugins import get_registry, load_registry

    try:
        registry = get_registry()
    except PluginError:
        # two plugins registering one name stop every other command; this one still
        # lists them, so the conflict can be diagnosed (a broken built-in still raises)
        with contextlib.redirect_stderr(io.StringIO()):  # said once already
            registry = load_registry(allow_conflicts=True)
    records = [
        {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "builtin": p.builtin,
            "hooks": hooks_of(registry, p.name),
            "provides": p.provides,
            "error": p.problem,
            "conflicts": [c for c in registry.conflicts if f"'{p.name}'" in c],
        }
        for p in registry.plugins
    ]
    if args.json:
        print(json.dumps(records, indent=1))
        return EXIT_OK
    for r in records:
        origin = " ".join(filter(None, (r["distribution"], r["version"])))
        origin += ", built-in" if r["builtin"] else ""
        provides = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["provides"].items())
        # lifecycle hooks register no component; show them so a logger plugin is visible
        lifecycle = [h for h in r["hooks"] if h in LIFECYCLE_HOOKS]
        extra = f"{'; ' if provides else ''}hooks: {', '.join(lifecycle)}" if lifecycle else ""
        status = f"FAILED: {r['error']}" if r["error"] else provides + extra
        print(f"{r['name']:<20} [{origin}] {status}")
    for conflict in registry.conflicts:
        print(f"CONFLICT: {conflict}")
    return EXIT_OK


def hooks_of(registry, plugin: str) -> list[str]:
    """The hooks a loaded plugin implements (none for one that failed)."""
    obj = registry.pm.get_plugin(plugin)
    if obj is None:
        return []
    return sorted(caller.name for caller in registry.pm.get_hookcallers(obj) or [])
