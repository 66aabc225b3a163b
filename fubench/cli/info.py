"""``fubench validate``, ``list`` and ``plugins``: what is installed and whether scenario
files are right, without running anything."""

from __future__ import annotations

import argparse
import json
import sys

from fubench.cli.common import EXIT_OK, EXIT_USAGE
from fubench.cli.parser import LIST_WHAT
from fubench.errors import ConfigError

LIFECYCLE_HOOKS = ("fubench_run_start", "fubench_method_result", "fubench_run_end")


def cmd_validate(args: argparse.Namespace) -> int:
    from fubench.config import load_scenario
    from fubench.plugins import get_registry

    registry = get_registry()
    bad = 0
    for file in args.files:
        try:
            config = load_scenario(file, registry)
        except ConfigError as exc:
            print(f"{exc}", file=sys.stderr)
            bad += 1
            continue
        methods = ", ".join(m.label for m in config.methods)
        print(f"{file}: ok ({config.kind} on {config.dataset.name}, v{config.version}; "
              f"methods: {methods}; seeds: {config.seeds})")
    return EXIT_USAGE if bad else EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from fubench.params import as_param
    from fubench.plugins import get_registry

    registry = get_registry()
    category = registry.category(LIST_WHAT[args.what])
    for name, cls in category.items():
        doc = (cls.__doc__ or "").strip().splitlines()
        summary = doc[0] if doc else ""
        print(f"{name:<18} {summary}  [{category.owner(name)}]")
        for pname, spec in cls.parameters.items():
            spec = as_param(spec)
            default = "required" if spec.required else f"default {spec.default!r}"
            print(f"    {pname}: {default}{' — ' + spec.help if spec.help else ''}")
    return EXIT_OK


def cmd_plugins(args: argparse.Namespace) -> int:
    from fubench.plugins import get_registry

    registry = get_registry()
    records = [{"name": p.name, "distribution": p.distribution, "version": p.version,
                "builtin": p.builtin, "hooks": hooks_of(registry, p.name),
                "provides": p.provides, "error": p.error}
               for p in registry.plugins]
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
    return EXIT_OK


def hooks_of(registry, plugin: str) -> list[str]:
    """The hooks a loaded plugin implements (none for one that failed to import)."""
    obj = registry.pm.get_plugin(plugin)
    if obj is None:
        return []
    return sorted(caller.name for caller in registry.pm.get_hookcallers(obj) or [])
