"""``fubench validate``, ``list``, ``show`` and ``plugins``: what is installed, what the
scenario files in a folder are, and whether they are right and their data are here,
without running anything."""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

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
#: declarations ``show`` prints, per component base class name
DECLARATIONS = {
    "Unlearner": (
        "participation",
        "needs_history",
        "unsupported_kinds",
        "reads",
        "reports",
        "reference",
    ),
    "Metric": (
        "role",
        "higher_is_better",
        "ideal",
        "normalises",
        "normalisation",
        "percent",
        "count",
    ),
    "ScenarioKind": ("showcase", "example_params", "forgotten_behaviour"),
    "DatasetLoader": ("modality", "n_classes"),
}


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
    from fubench.plugins import get_registry

    registry = get_registry()
    if args.what == "scenarios":
        return list_scenario_files(Path(args.folder) if args.folder else None, registry)
    if args.folder:
        raise ValueError(f"a folder is only for `fubench list scenarios`, not for {args.what}")
    wanted = [args.what] if args.what else list(LIST_WHAT)
    for i, what in enumerate(wanted):
        category = registry.category(LIST_WHAT[what])
        if len(wanted) > 1:  # everything: a heading per category
            if i:
                print()
            print(f"{what.capitalize()} ({len(category)}):")
        for name, cls in category.items():
            print_component(cls, category.owner(name), args.full)
    if args.what is None and Path(SCENARIO_FOLDER).is_dir():
        print()
        list_scenario_files(None, registry)
    if not args.full:
        print(
            "\n(first sentences only: `fubench list --full` or `fubench show NAME` for "
            "the full descriptions)"
        )
    return EXIT_OK


def print_component(cls: type, owner: str, full: bool) -> None:
    from fubench.params import as_param

    if full:  # the whole description, as written
        print(f"  {cls.name:<18} [{owner}]")
        for line in description(cls).splitlines():
            print(f"      {line}" if line else "")
    else:
        first, more = summary(cls)
        print(f"  {cls.name:<18} {first}{' …' if more else ''}  [{owner}]")
    for pname, spec in cls.parameters.items():
        print(f"      {param_text(pname, as_param(spec), full)}")


def summary(cls: type) -> tuple[str, bool]:
    """The description's first sentence, whole, and whether more text follows."""
    text = description(cls)
    paragraph = " ".join(text.split("\n\n")[0].split())
    first = paragraph
    for end in re.finditer(r"(?<=[.!?;:])\s+(?=[A-Z(`*])", paragraph):
        candidate = paragraph[: end.start()]
        if candidate.count("(") <= candidate.count(")"):  # never inside parentheses
            first = candidate
            break
    return first, len(" ".join(text.split())) > len(first)


def description(cls: type) -> str:
    """The component's full description: its docstring (or ``description``)."""
    own = cls.__dict__.get("__doc__") or getattr(cls, "description", "") or ""
    return inspect.cleandoc(own)


def param_text(name: str, spec: Any, full: bool = False) -> str:
    default = "required" if spec.required else f"default {spec.default!r}"
    parts = [default]
    if full:
        if spec.choices is not None:
            parts.append(f"one of {', '.join(map(repr, spec.choices))}")
        if spec.min is not None:
            parts.append(f"{'>' if spec.min_exclusive else '≥'} {spec.min:g}")
        if spec.max is not None:
            parts.append(f"≤ {spec.max:g}")
        if spec.nullable:
            parts.append("may be null")
    return f"{name}: {', '.join(parts)}{' — ' + spec.help if spec.help else ''}"


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
    from fubench.params import as_param
    from fubench.plugins import get_registry

    registry = get_registry()
    found = [
        (category, category.classes[args.name])
        for category in registry.categories
        if args.name in category
    ]
    if not found:
        for category in registry.categories:
            if args.name in category.failed_names:
                category.get(args.name)  # raises "... its plugin failed to load ..."
        every = {n for category in registry.categories for n in category}
        raise UnknownNameError(unknown("component", args.name, every))
    for i, (category, cls) in enumerate(found):
        if i:
            print()
        print(
            f"{category.what} '{cls.name}' — plugin {category.owner(cls.name)} "
            f"({registry.version(category, cls.name)})\n"
        )
        print(description(cls) or "(no description)")
        if cls.parameters:
            print("\nparameters:")
            for pname, spec in cls.parameters.items():
                print(f"  {param_text(pname, as_param(spec), full=True)}")
        declared = [
            (attr, getattr(cls, attr))
            for base in type.mro(cls)
            for attr in DECLARATIONS.get(base.__name__, ())
        ]
        if declared:
            print("\ndeclarations:")
            for attr, value in declared:
                print(f"  {attr} = {value!r}")
        if category.what == "scenario kind":
            print_kind_metrics(cls, registry)
    return EXIT_OK


def print_kind_metrics(cls: type, registry: Any) -> None:
    """The metrics a scenario of this kind shows when its file lists none: declared by
    the class, else found by building the kind on the conformance kit's tiny data."""
    metrics, how = list(cls.default_metrics), ""
    if not metrics:
        metrics, how = built_metrics(cls, registry)
    print("\ndefault metrics (a file's metrics: list replaces them; run --metrics a,b adds):")
    if metrics:
        print(f"  {', '.join(metrics)}{how}")
    else:
        print(f"  unknown{how}")
    every = [m for m in registry.row_metrics([], []) if m not in metrics]
    if every:
        print(f"  and on every row: {', '.join(every)}")


def built_metrics(cls: type, registry: Any) -> tuple[list[str], str]:
    """The default metrics ``build`` returns on the kit's tiny data (a kind that does
    not declare them), and how they were found."""
    from fubench.testing.world import TinyWorld

    world = TinyWorld(registry)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            instance, modality, refusals = world.kind_instance(cls.name)
            if instance is None:
                return [], f" (not declared; the kind refuses the kit's data: {refusals[0]})"
            metrics = list(world.job(cls.name, instance, modality).setup.default_metrics)
    except Exception as exc:  # a kind that cannot build: say so, show the rest
        return [], f" (not declared, and build() failed on the kit's data: {one_line(exc)})"
    return metrics, " (not declared by the kind: as build() returns them on the kit's data)"


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
