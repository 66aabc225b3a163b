"""The component registry: every component the loaded plugins registered, one typed
accessor per category (``registry.methods``, ``.kinds``, ``.metrics``, ``.partitioners``,
``.datasets``, ``.models``), each with ``get(name)`` that fails with "did you mean"."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Generic, Iterator, TypeVar

import pluggy

from fubench.api import (CATEGORIES, Component, DatasetLoader, Metric, ModelFactory,
                         Partitioner, ScenarioKind, Unlearner, declaration_problems)
from fubench.errors import PluginError, UnknownNameError, one_line, unknown

T = TypeVar("T", bound=Component)


@dataclass
class PluginInfo:
    """One loaded (or failed) plugin."""

    name: str
    distribution: str
    version: str
    builtin: bool
    provides: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None


class Category(Generic[T]):
    """The components of one category, by name, with the plugin that registered each."""

    def __init__(self, what: str, base: type[T], hook: str):
        self.what, self.base, self.hook = what, base, hook
        self.classes: dict[str, type[T]] = {}
        self.owners: dict[str, str] = {}
        #: names whose plugin failed to import, so "unknown" can say why
        self.failed_plugins: dict[str, str] = {}

    def get(self, name: str) -> type[T]:
        if name not in self.classes:
            raise UnknownNameError(self._unknown(name))
        return self.classes[name]

    def _unknown(self, name: str) -> str:
        broken = self.failed_plugins.get(name)
        if broken is not None:
            return (f"{self.what} '{name}' is unavailable: its plugin failed to import "
                    f"({broken}); fix it or `pip uninstall` it")
        text = unknown(self.what, name, self.classes)
        if self.failed_plugins:
            text += (f" (plugin(s) {', '.join(sorted(self.failed_plugins))} failed to load "
                     f"and may provide it: `fubench plugins` shows why)")
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
    """Loaded plugins and every component they registered."""

    def __init__(self, pm: pluggy.PluginManager, plugins: list[PluginInfo]):
        self.pm = pm
        self.plugins = plugins
        self.methods: Category[Unlearner] = Category("method", Unlearner, "fubench_unlearners")
        self.partitioners: Category[Partitioner] = Category(
            "partitioner", Partitioner, "fubench_partitioners")
        self.kinds: Category[ScenarioKind] = Category(
            "scenario kind", ScenarioKind, "fubench_scenario_kinds")
        self.metrics: Category[Metric] = Category("metric", Metric, "fubench_metrics")
        self.datasets: Category[DatasetLoader] = Category(
            "dataset", DatasetLoader, "fubench_datasets")
        self.models: Category[ModelFactory] = Category("model", ModelFactory, "fubench_models")
        for category in self.categories:
            self._collect(category)

    @property
    def categories(self) -> list[Category[Any]]:
        return [self.methods, self.partitioners, self.kinds, self.metrics, self.datasets,
                self.models]

    def category(self, what: str) -> Category[Any]:
        """The category a CLI / YAML word names ("method", "metric", ...)."""
        for category in self.categories:
            if category.what == what:
                return category
        raise UnknownNameError(unknown("component category", what, CATEGORIES))

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def version(self, category: Category[Any], name: str) -> str:
        """``"<distribution> <version>"`` of the plugin that registered ``name``."""
        owner = category.owner(name)
        for info in self.plugins:
            if info.name == owner:
                return f"{info.distribution} {info.version}"
        return owner

    def loaded_versions(self) -> dict[str, str]:
        """{plugin: version} of every plugin that loaded, as results record them."""
        return {p.name: p.version for p in self.plugins if p.error is None}

    # -- the gold standard
    def reference(self) -> type[Unlearner]:
        """The one method that declares ``reference = True`` (the gold standard)."""
        found = [cls for _, cls in self.methods.items() if cls.reference]
        if len(found) != 1:
            names = ", ".join(f"'{c.name}' ({self.methods.owner(c.name)})" for c in found)
            raise PluginError(
                f"exactly one method must declare reference = True (the gold standard "
                f"every row is measured against); found {len(found)}"
                f"{': ' + names if names else ''}")
        return found[0]

    @property
    def reference_name(self) -> str:
        return self.reference().name

    # -- collection
    def _collect(self, category: Category[Any]) -> None:
        caller = getattr(self.pm.hook, category.hook)
        info_by_name = {p.name: p for p in self.plugins}
        found: dict[str, type[Component]] = {}
        for impl in caller.get_hookimpls():
            plugin = impl.plugin_name
            try:
                classes = impl.function() or []
            except Exception as exc:  # a broken plugin must not take the others down
                self._fail(plugin, f"{category.hook}() raised {one_line(exc)}")
                continue
            if not isinstance(classes, (list, tuple)):  # `return X` instead of `[X]`
                example = getattr(classes, "__name__", "MyClass")
                raise PluginError(f"plugin '{plugin}': {category.hook}() returned {classes!r}; "
                                  f"return a list of classes, e.g. [{example}]")
            for cls in classes:
                _check_component(plugin, category, cls)
                name = cls.name
                if name in found:
                    raise PluginError(
                        f"{category.what} '{name}' is registered by two plugins: "
                        f"'{category.owners[name]}' and '{plugin}'; rename one or uninstall "
                        f"a plugin")
                found[name] = cls
                category.owners[name] = plugin
                if plugin in info_by_name:
                    info_by_name[plugin].provides.setdefault(category.what, []).append(name)
        category.classes = dict(sorted(found.items()))

    def _fail(self, plugin: str, message: str) -> None:
        for info in self.plugins:
            if info.name == plugin:
                info.error = message
        print(f"fubench: plugin '{plugin}' is broken and was skipped: {message}",
              file=sys.stderr)


def _check_component(plugin: str, category: Category[Any], cls: Any) -> None:
    hook, base = category.hook, category.base
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise PluginError(f"plugin '{plugin}': {hook}() returned {cls!r}, "
                          f"expected a subclass of fubench.{base.__name__}")
    name = cls.__dict__.get("name")
    if not isinstance(name, str) or not name:
        raise PluginError(f"plugin '{plugin}': {cls.__name__} has no `name`; set a "
                          f"class attribute name = \"...\"")
    problems = declaration_problems(cls)
    if problems:
        raise PluginError(f"plugin '{plugin}': {category.what} '{name}' ({cls.__name__}): "
                          f"{problems[0]}")
