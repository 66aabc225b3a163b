"""Plugin discovery: entry points, registration checks, the process-wide registry.

Plugins are found through the entry-point group ``fubench``. The built-ins ship in
this distribution and are registered through the same group, so they use nothing a
third-party plugin cannot.

Environment switches:

* ``FUBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` — load only the built-ins, no third-party plugin;
* ``FUBENCH_PLUGINS=name1,name2`` — load only these third-party entry points (by
  entry-point name), besides the built-ins.
"""

from __future__ import annotations

import importlib.metadata as md
import os
from collections.abc import Iterable
from typing import Any

import pluggy

from fubench import hookspecs
from fubench.errors import PluginError, origin
from fubench.exits import failure_line, plugin_code, users_interrupt
from fubench.registry import LOCAL, PluginInfo, Registry, report_broken

ENTRY_POINT_GROUP = "fubench"
BUILTIN_DISTRIBUTION = "fubench"

hookimpl = pluggy.HookimplMarker("fubench")


def plugin_entry_points() -> list[md.EntryPoint]:
    """Every installed entry point of the ``fubench`` group, by name (none loaded)."""
    return sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _is_builtin(ep: md.EntryPoint) -> bool:
    return ep.dist is not None and ep.dist.name == BUILTIN_DISTRIBUTION


def wanted(ep: md.EntryPoint) -> bool:
    """Whether the environment's switches let this entry point load."""
    if _is_builtin(ep):
        return True
    if os.environ.get("FUBENCH_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    only = os.environ.get("FUBENCH_PLUGINS")
    if only:
        return ep.name in {n.strip() for n in only.split(",") if n.strip()}
    return True


def load_registry(
    extra_plugins: Iterable[Any] = (),
    entry_points: Iterable[md.EntryPoint] | None = None,
    allow_conflicts: bool = False,
) -> Registry:
    """Discover plugins and build the registry.

    ``extra_plugins`` are registered besides the entry points (tests use this); each
    is a module or object with hook implementations, named by its ``__name__``.

    A third-party plugin that fails to import, implements a hook wrongly or returns
    broken classes is skipped with one line on stderr and shows as FAILED in ``fubench
    plugins``; the others load. A broken built-in plugin, and two plugins registering
    one name, raise :class:`PluginError` (``allow_conflicts`` keeps the first of two and
    lists the conflict in ``registry.conflicts``, for ``fubench plugins``).
    """
    pm = pluggy.PluginManager("fubench")
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    eps = plugin_entry_points() if entry_points is None else list(entry_points)
    # the built-ins first: a third-party plugin that takes one of their names is the
    # one refused
    for ep in sorted(eps, key=lambda ep: not _is_builtin(ep)):
        if not wanted(ep):
            continue
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        info = PluginInfo(ep.name, dist, version, builtin=_is_builtin(ep))
        infos.append(info)
        try:
            with plugin_code():
                obj = ep.load()
        except BaseException as exc:  # sys.exit at import too: the plugin's failure
            if users_interrupt(exc):
                raise
            report_broken(info, failure_line(exc), "import", at=origin(exc))
            continue
        _register(pm, obj, ep.name, info, infos)
    for obj in extra_plugins:
        name = getattr(obj, "__name__", type(obj).__name__)
        info = PluginInfo(name, LOCAL, "", builtin=False)
        infos.append(info)
        _register(pm, obj, name, info, infos)
    registry = Registry(pm, infos)
    if registry.conflicts and not allow_conflicts:
        raise PluginError(registry.conflicts[0])
    return registry


def _unmarked_hooks(obj: Any) -> list[str]:
    """Functions named like a hook but not decorated: pluggy would silently ignore them."""
    return [
        n
        for n in dir(obj)
        if n.startswith("fubench_")
        and callable(getattr(obj, n))
        and n in dir(hookspecs)
        and not hasattr(getattr(obj, n), "fubench_impl")
    ]


def _register(
    pm: pluggy.PluginManager, obj: Any, name: str, info: PluginInfo, infos: list[PluginInfo]
) -> None:
    """Register one plugin module; a wrong hook, or a name another plugin registered
    first (``infos``), marks it broken (see :func:`load_registry`)."""
    unmarked = _unmarked_hooks(obj)
    if unmarked:
        report_broken(
            info,
            f"{', '.join(unmarked)} lacks the @fubench.hookimpl decorator, "
            f"so fubench would never call it; decorate it",
        )
        return
    if pm.get_plugin(name) is not None:
        first = next(i for i in infos if i.name == name and i is not info)
        report_broken(
            info,
            f"its entry-point name '{name}' is taken by {first.described}"
            f"{' (built in)' if first.builtin else ''}; entry-point names must be unique: "
            f"rename it",
        )
        return
    try:
        pm.register(obj, name=name)
        pm.check_pending()  # a hook name no spec knows is a typo, not an extension
    except pluggy.PluginValidationError as exc:
        if pm.get_plugin(name) is not None:
            pm.unregister(name=name)
        report_broken(info, _explain_validation(exc))


def _explain_validation(exc: pluggy.PluginValidationError) -> str:
    """pluggy's multi-line message -> one line saying what to fix."""
    from fubench.errors import did_you_mean

    text = str(exc)
    known = [n for n in dir(hookspecs) if n.startswith("fubench_")]
    if "unknown hook" in text:
        hook = text.split("unknown hook")[-1].split()[0].strip("'")
        return f"unknown hook '{hook}'{did_you_mean(hook, known)}"
    hook = text.split("for hook '")[-1].split("'")[0]
    spec = getattr(hookspecs, hook, None)
    if spec is not None:
        import inspect

        expected = list(inspect.signature(spec).parameters)
        impl = getattr(exc.plugin, hook, None)
        got = list(inspect.signature(impl).parameters) if impl is not None else []
        extra = [a for a in got if a not in expected]
        return (
            f"hook {hook}() has argument(s) {', '.join(extra) or '?'} that the hook does "
            f"not provide; use any of: {', '.join(expected)}"
        )
    return text.splitlines()[0]


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = load_registry()
    return _REGISTRY


def loaded_registry() -> Registry | None:
    """The process-wide registry if it is loaded (or set), without loading it."""
    return _REGISTRY


def reset_registry(registry: Registry | None = None) -> None:
    """Replace (or drop) the cached registry; tests and the conformance kit use it."""
    global _REGISTRY
    _REGISTRY = registry
