"""The component registry: every component the loaded plugins registered, one typed
accessor per category (``registry.methods``, ``.kinds``, ``.metrics``, ``.partitioners``,
``.datasets``, ``.models``), each with ``get(name)`` that fails with "did you mean"."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pluggy

from fubench.api import (
    CATEGORIES,
    Category,
    Component,
    DatasetLoader,
    Metric,
    ModelFactory,
    Partitioner,
    ScenarioKind,
    Unlearner,
    declaration_problems,
)
from fubench.errors import PluginError, UnknownNameError, origin, unknown
from fubench.exits import failure_line, plugin_code, users_interrupt

T = TypeVar("T", bound=Component)


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin."""

    name: str
    distribution: str
    version: str
    builtin: bool
    provides: dict[str, list[str]] = field(default_factory=dict)
    #: what is wrong with it, one line (None: it loaded)
    problem: str | None = None
    #: where it failed: "import" (the module did not import) or "load" (its hooks or
    #: the classes they returned are broken)
    failed_step: str = "load"
    #: the same as a phrase about the plugin: "failed to import (x.py:3): ..." or
    #: "failed to load: ..."
    failure_text: str | None = None

    @property
    def origin(self) -> str:
        """``fu-x 1.2`` (``(local)`` for a module registered by a test)."""
        return " ".join(filter(None, (self.distribution, self.version)))

    @property
    def described(self) -> str:
        """``plugin 'x' (fu-x 1.2)``, for messages."""
        where = "" if self.distribution == LOCAL else f" ({self.origin})"
        return f"plugin '{self.name}'{where}"

    @property
    def remedy(self) -> str:
        """How to get rid of the plugin, for an error message."""
        if self.distribution in ("", "?", LOCAL):
            return "fix it"
        return f"fix it or `pip uninstall {self.distribution}` ({SKIP_HINT})"


#: the distribution name of a plugin module passed to ``load_registry(extra_plugins=...)``
LOCAL = "(local)"
SKIP_HINT = (
    "FUBENCH_DISABLE_PLUGIN_AUTOLOAD=1 runs without third-party plugins, "
    "FUBENCH_PLUGINS=a,b with only those"
)


#: while true, a broken plugin is recorded but not printed (see :func:`plugin_failures_unreported`)
_HOLD_REPORTS = False


@contextlib.contextmanager
def plugin_failures_unreported() -> Iterator[None]:
    """Record broken plugins without printing the loader's line: for a caller that
    reports them itself (the conformance kit asked about a plugin prints one line, not
    the loader's and its own)."""
    global _HOLD_REPORTS
    before, _HOLD_REPORTS = _HOLD_REPORTS, True
    try:
        yield
    finally:
        _HOLD_REPORTS = before


def report_broken(info: PluginInfo, problem: str, failed_to: str = "load", at: str = "") -> None:
    """Record a broken plugin and say so on one line (``at``: where it failed, e.g.
    `` (module.py:3)``); a built-in plugin's failure is a bug of fubench and stays an
    error."""
    info.failed_step = failed_to
    info.problem = f"import failed{at}: {problem}" if failed_to == "import" else problem + at
    info.failure_text = (
        f"failed to import{at}: {problem}"
        if failed_to == "import"
        else f"failed to load: {info.problem}"
    )
    if info.builtin:
        raise PluginError(f"plugin '{info.name}': {info.problem}")
    if _HOLD_REPORTS:
        return
    verb = f"failed to import{at}" if failed_to == "import" else "is broken"
    print(
        f"fubench: {info.described} {verb} and was skipped: "
        f"{problem if failed_to == 'import' else info.problem}; {info.remedy}",
        file=sys.stderr,
    )


class Components(Generic[T]):
    """The components of one category, by name, with the plugin that registered each."""

    def __init__(self, category: Category):
        self.what, self.base, self.hook = category.what, category.base, category.hook
        self.classes: dict[str, type[T]] = {}
        self.owners: dict[str, str] = {}
        #: plugins that failed to import or load, so "unknown" can say why
        self.failed_plugins: dict[str, str] = {}
        #: names a failed plugin would have provided (its hook returned them, or, for a
        #: plugin whose hooks never ran, its entry-point name) -> that plugin
        self.failed_names: dict[str, PluginInfo] = {}

    def get(self, name: str) -> type[T]:
        if name not in self.classes:
            raise UnknownNameError(self._unknown(name))
        return self.classes[name]

    def _unknown(self, name: str) -> str:
        broken = self.failed_names.get(name)
        if broken is not None:
            return (
                f"{self.what} '{name}' is unavailable: its plugin failed to "
                f"{broken.failed_step} ({broken.described}: {broken.problem}); "
                f"{broken.remedy}"
            )
        text = unknown(self.what, name, self.classes)
        if self.failed_plugins:
            text += (
                f" (plugin(s) {', '.join(sorted(self.failed_plugins))} failed to load "
                f"and may provide it: `fubench plugins` shows why)"
            )
        return text

    def names(self) -> list[str]:
        return list(self.classes)

    def owner(self, name: str) -> str:
        return self.owners.get(name, "")

    def items(self) -> Iterator[tuple[str, type[T]]]:
        return iter(self.classes.items())

    def __contains__(self, name: object) -> bool:
        return name in self.classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.classes)

    def __len__(self) -> int:
        return len(self.classes)


class Registry:
    """Loaded plugins and every component they registered: one :class:`Components` per
    category of :data:`fubench.api.CATEGORIES`, under the category's attribute."""

    methods: Components[Unlearner]
    partitioners: Components[Partitioner]
    kinds: Components[ScenarioKind]
    metrics: Components[Metric]
    datasets: Components[DatasetLoader]
    models: Components[ModelFactory]

    def __init__(self, pm: pluggy.PluginManager, plugins: list[PluginInfo]):
        self.pm = pm
        self.plugins = plugins
        for category in CATEGORIES:
            setattr(self, category.attribute, Components(category))
        #: "<what> 'x' is registered by two plugins ..." (load_registry raises the first)
        self.conflicts: list[str] = []
        self._collect()

    @property
    def categories(self) -> list[Components[Any]]:
        return [getattr(self, category.attribute) for category in CATEGORIES]

    def category(self, what: str) -> Components[Any]:
        """The category a CLI / YAML word names ("method", "metric", ...)."""
        for category in self.categories:
            if category.what == what:
                return category
        raise UnknownNameError(unknown("component category", what, [c.what for c in CATEGORIES]))

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def version(self, category: Components[Any], name: str) -> str:
        """``"<distribution> <version>"`` of the plugin that registered ``name``."""
        owner = category.owner(name)
        for info in self.plugins:
            if info.name == owner:
                return f"{info.distribution} {info.version}"
        return owner

    def loaded_versions(self) -> dict[str, str]:
        """{plugin: version} of every plugin that loaded, as results record them."""
        return {p.name: p.version for p in self.plugins if p.problem is None}

    # -- the gold standard
    def reference(self) -> type[Unlearner]:
        """The one method that declares ``reference = True`` (the gold standard)."""
        found = [cls for _, cls in self.methods.items() if cls.reference]
        if len(found) != 1:
            names = ", ".join(f"'{c.name}' ({self.methods.owner(c.name)})" for c in found)
            raise PluginError(
                f"exactly one method must declare reference = True (the gold standard "
                f"every row is measured against); found {len(found)}"
                f"{': ' + names if names else ''}"
            )
        return found[0]

    @property
    def reference_name(self) -> str:
        return self.reference().name

    def row_metrics(self, metrics: list[str], methods: list[str]) -> list[str]:
        """The columns every row of a scenario gets: its ``metrics``, then those its
        ``methods`` report themselves (every row gets them, so e.g. 0 bytes of history
        stands beside a history-based method's), then the metrics every row gets
        (``Metric.always``)."""
        columns = list(metrics)
        for name in methods:
            columns += [m for m in self.methods.get(name).reports if m not in columns]
        columns += [
            name for name, cls in self.metrics.classes.items() if cls.always and name not in columns
        ]
        return columns

    # -- collection
    def _collect(self) -> None:
        """Ask every plugin for its components. A plugin whose hook raises or returns
        something wrong is skipped whole (a built-in one is an error); two plugins
        registering one name is a conflict."""
        infos: dict[str, PluginInfo] = {}  # by name, the plugin registered under it
        for plugin in self.plugins:  # (one of the same name that failed to load was not)
            held = infos.get(plugin.name)
            if held is None or (held.problem is not None and plugin.problem is None):
                infos[plugin.name] = plugin
        offered: dict[str, list[tuple[str, type[Component]]]] = {}
        for category in self.categories:
            offered[category.what] = []
            for impl in getattr(self.pm.hook, category.hook).get_hookimpls():
                info = infos.setdefault(
                    impl.plugin_name, PluginInfo(impl.plugin_name, LOCAL, "", builtin=False)
                )
                classes, problem = _offered(impl, category)
                if problem and info.problem is None:
                    report_broken(info, problem)
                offered[category.what] += [(info.name, cls) for cls in classes]
        for category in self.categories:
            for plugin, cls in offered[category.what]:
                info = infos[plugin]
                if info.problem is not None:  # asked for by name: "its plugin failed to load"
                    category.failed_names.setdefault(cls.__dict__["name"], info)
                elif cls.name in category.classes:
                    self.conflicts.append(
                        f"{category.what} '{cls.name}' is registered by two plugins: "
                        f"'{category.owners[cls.name]}' and '{plugin}'; rename one or "
                        f"uninstall a plugin"
                    )
                else:
                    category.classes[cls.name] = cls
                    category.owners[cls.name] = plugin
                    info.provides.setdefault(category.what, []).append(cls.name)
            category.classes = dict(sorted(category.classes.items()))
        for info in [*infos.values(), *(p for p in self.plugins if infos[p.name] is not p)]:
            if info.problem is None:
                continue
            if infos[info.name] is info and self.pm.get_plugin(info.name) is not None:
                self.pm.unregister(name=info.name)  # its lifecycle hooks stay silent
            for category in self.categories:
                category.failed_plugins[info.name] = info.problem
                if not any(i is info for i in category.failed_names.values()):
                    # its hooks never ran: the entry-point name is all that is known
                    category.failed_names.setdefault(info.name, info)


def _offered(impl: Any, category: Components[Any]) -> tuple[list[type[Component]], str | None]:
    """The well-formed classes a registration hook returned (with a name), and what is
    wrong with its answer, if anything."""
    try:
        with plugin_code():
            classes = impl.function() or []
    except BaseException as exc:  # sys.exit in a hook too: the plugin's failure
        if users_interrupt(exc):
            raise
        return [], f"{category.hook}() raised {failure_line(exc)}{origin(exc)}"
    if not isinstance(classes, (list, tuple)):  # `return X` instead of `[X]`
        example = getattr(classes, "__name__", "MyClass")
        named = [classes] if isinstance(classes, type) and _named(classes) else []
        return named, (
            f"{category.hook}() returned {classes!r}; return a list of classes, e.g. [{example}]"
        )
    problems = [p for p in (_component_problem(category, cls) for cls in classes) if p]
    return [c for c in classes if isinstance(c, type) and _named(c)], (
        problems[0] if problems else None
    )


def _named(cls: type) -> bool:
    name = cls.__dict__.get("name")
    return isinstance(name, str) and bool(name)


def _component_problem(category: Components[Any], cls: Any) -> str | None:
    """What is wrong with one class a registration hook returned (None: nothing)."""
    hook, base = category.hook, category.base
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return f"{hook}() returned {cls!r}, expected a subclass of fubench.{base.__name__}"
    if not _named(cls):
        return f'{cls.__name__} has no `name`; set a class attribute name = "..."'
    problems = declaration_problems(cls)
    if problems:
        return f"{category.what} '{cls.name}' ({cls.__name__}): {problems[0]}"
    return None
